/*
 * fuzz_relay_config.c - fuzz target for relay/relay_config.c: the input is
 * a relay.conf text loaded with relay_config_load_buf() and freed.
 *
 * The loader checks the files a config names, so on its first call the
 * target makes a fixture directory (mkdtemp, removed at exit) holding
 * ca.pem, cert.pem, crl.pem, key.pem (0600), host_key (an ed25519 key made
 * for this target only, 0600), keys (an authorized_keys file, 0600) and
 * fifo (a named pipe, 0600: naming it must not hang the loader); every
 * "@D" in the input is replaced by that directory, so corpus inputs can
 * load successfully. The input is cut at its first NUL.
 *
 * Invariants (abort on violation): a failure is RT_ERR_CONFIG, RT_ERR_SYS
 * or RT_ERR_NOMEM with *out NULL and at least one bounded message; a
 * success has no message, lists within their limits, non-NULL strings, an
 * ACL, every operator found by name, and compares equal to itself.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fixture.h"
#include "log.h"
#include "relay_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Test-only key, made for this fuzz target; it guards nothing. */
static const char fixture_host_key[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACDYwy75wJhjjNLjd4UJyZeuyTlXQbR8Rk6HxszAPpAwuwAAAJADIOt5AyDr\n"
    "eQAAAAtzc2gtZWQyNTUxOQAAACDYwy75wJhjjNLjd4UJyZeuyTlXQbR8Rk6HxszAPpAwuw\n"
    "AAAEBupUdq+w6kk2mekH/78moGW+JHwakwv/5EXcDHgaYsbNjDLvnAmGOM0uN3hQnJl67J\n"
    "OVdBtHxGTofGzMA+kDC7AAAACWZ1enotaG9zdAECAwQ=\n"
    "-----END OPENSSH PRIVATE KEY-----\n";

static const char fixture_keys[] =
    "# operator keys for the fuzz fixture\n"
    "\n"
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK/bo+pbaOCUhODZ8wAgNfPktSwxVt1WXq"
    "BTnuRS2OMA fuzz-op\n";

static const struct fuzz_file fixtures[] = {
	{ "ca.pem", "CA\n", 0644 },
	{ "cert.pem", "CERT\n", 0644 },
	{ "crl.pem", "CRL\n", 0644 },
	{ "key.pem", "KEY\n", 0600 },
	{ "host_key", fixture_host_key, 0600 },
	{ "keys", fixture_keys, 0600 },
};

#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

static const char *fixture_dir;

static void
check_config(const struct relay_config *c)
{
	char buf[128];

	if (c->path == NULL || c->acl == NULL || c->nlisten > RELAY_MAX_LISTEN ||
	    c->nop_listen > RELAY_MAX_LISTEN || c->nhost_keys == 0)
		abort();
	for (size_t i = 0; i < c->nlisten; i++)
		if (c->listen[i] == NULL)
			abort();
	for (size_t i = 0; i < c->nop_listen; i++)
		if (c->op_listen[i] == NULL)
			abort();
	for (size_t i = 0; i < c->nhost_keys; i++)
		if (c->host_keys[i] == NULL || c->host_keys[i][0] != '/')
			abort();
	if (c->tls_ca == NULL || c->tls_cert == NULL || c->tls_key == NULL ||
	    c->tls_crl == NULL || c->domain_suffix == NULL ||
	    c->audit_log == NULL || c->user == NULL)
		abort();
	for (size_t i = 0; i < c->nagent_allow; i++)
		if (c->agent_allow[i] == NULL)
			abort();
	if (c->nservice_allow == 0)
		abort();
	for (size_t i = 0; i < c->nservice_allow; i++)
		if (c->service_allow[i] == NULL)
			abort();
	for (size_t i = 0; i < c->noperators; i++) {
		const struct relay_operator *op = &c->operators[i];

		if (op->name == NULL || op->nkeys == 0 ||
		    relay_config_operator(c, op->name) != op)
			abort();
		for (size_t k = 0; k < op->nkeys; k++)
			if (op->keys[k] == NULL || op->key_fps[k] == NULL ||
			    strncmp(op->key_fps[k], "SHA256:", 7) != 0 ||
			    op->key_comments[k] == NULL)
				abort();
	}
	memset(buf, 'x', sizeof(buf));
	if (relay_config_restart_needed(c, c, buf, sizeof(buf)) != 0 ||
	    buf[0] != '\0')
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	static struct cfgu_errors errs;
	struct relay_config *c = (struct relay_config *)&errs;
	char *text;
	int r;

	if (!inited) {
		log_init("fuzz_relay_config", 0, LOG_LVL_ERR);
		fixture_dir = fuzz_fixture_make(fixtures, NFIXTURES, 1);
		inited = 1;
	}
	if ((text = fuzz_expand(fixture_dir, data, size)) == NULL)
		return 0;
	cfgu_errors_init(&errs);
	r = relay_config_load_buf(text, "fuzz.conf", &c, &errs);
	if (errs.n > CFGU_MAX_ERRORS)
		abort();
	for (unsigned int i = 0; i < errs.n; i++)
		if (memchr(errs.msg[i], '\0', CFGU_ERRLEN) == NULL)
			abort();
	if (r == 0) {
		if (c == NULL || errs.n != 0)
			abort();
		check_config(c);
	} else {
		if (c != NULL || errs.n == 0 || (r != RT_ERR_CONFIG &&
		    r != RT_ERR_SYS && r != RT_ERR_NOMEM))
			abort();
	}
	relay_config_free(c);
	free(text);
	return 0;
}
