/*
 * fuzz_agent_config.c - fuzz target for agent/agent_config.c: the input is
 * an agent.conf text loaded with agent_config_load_buf() and freed.
 *
 * The loader checks the files a config names, so on its first call the
 * target makes a fixture directory (mkdtemp, removed at exit) holding
 * ca.pem, cert.pem, key.pem (0600), auth (0600) and consent; every "@D" in
 * the input is replaced by that directory, so corpus inputs can load
 * successfully. The input is cut at its first NUL.
 *
 * Invariants (abort on violation): a failure is a negative error with
 * *out untouched and at least one bounded message; a success has no
 * message, 1..AGENT_MAX_RELAYS relays, at most AGENT_MAX_SERVICES services
 * each found by its name and port, non-NULL strings, and compares equal
 * to itself (no diff bit, every service "same").
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"
#include "err.h"
#include "fixture.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fuzz_file fixtures[] = {
	{ "ca.pem", "CA\n", 0644 },
	{ "cert.pem", "CERT\n", 0644 },
	{ "key.pem", "KEY\n", 0600 },
	{ "auth", "user:password\n", 0600 },
	{ "consent", "", 0644 },
};

#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static const char *fixture_dir;

static void
check_str(const char *s)
{
	if (s == NULL)
		abort();
}

static void
check_config(const struct agent_config *c)
{
	if (c->nrelays == 0 || c->nrelays > AGENT_MAX_RELAYS ||
	    c->nservices > AGENT_MAX_SERVICES)
		abort();
	check_str(c->path);
	for (size_t i = 0; i < c->nrelays; i++) {
		check_str(c->relay_host[i]);
		check_str(c->relay_port[i]);
	}
	check_str(c->tls_ca);
	check_str(c->tls_cert);
	check_str(c->tls_key);
	check_str(c->tls_server_name);
	check_str(c->ssh_host_key_fp);
	check_str(c->proxy_host);
	check_str(c->proxy_port);
	check_str(c->proxy_auth_file);
	check_str(c->consent_file);
	check_str(c->consent_command);
	for (size_t i = 0; i < c->nservices; i++) {
		const struct agent_service *s = &c->services[i];

		check_str(s->name);
		check_str(s->target_host);
		check_str(s->target_port);
		if (agent_config_service_by_name(c, s->name) != s ||
		    agent_config_service_by_port(c, s->port) != s ||
		    !agent_config_service_same(c, c, s->name))
			abort();
	}
	if (agent_config_diff(c, c) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	static struct cfgu_errors errs;
	struct agent_config *c = NULL;
	char *text;
	int r;

	if (!inited) {
		log_init("fuzz_agent_config", 0, LOG_LVL_ERR);
		fixture_dir = fuzz_fixture_make(fixtures, NFIXTURES, 0);
		inited = 1;
	}
	if ((text = fuzz_expand(fixture_dir, data, size)) == NULL)
		return 0;
	r = agent_config_load_buf(text, "fuzz.conf", &c, &errs);
	if (errs.n > CFGU_MAX_ERRORS)
		abort();
	for (unsigned int i = 0; i < errs.n; i++)
		if (memchr(errs.msg[i], '\0', CFGU_ERRLEN) == NULL)
			abort();
	if (r == 0) {
		if (c == NULL || errs.n != 0)
			abort();
		check_config(c);
	} else if (r > 0 || c != NULL || errs.n == 0) {
		abort();
	}
	agent_config_free(c);
	free(text);
	return 0;
}
