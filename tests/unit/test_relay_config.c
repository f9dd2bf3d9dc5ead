/*
 * test_relay_config.c - unit tests of relay/relay_config.c: a full config,
 * defaults, every kind of validation error with its line, key file
 * permissions, authorized_keys files, fingerprints against ssh-keygen,
 * restart detection, and the shipped conf/relay.conf.
 *
 * Key and TLS files live in a private temporary directory made by the
 * suite set-up; keys come from ssh-keygen.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <CUnit/CUnit.h>
#include <openssl/ssl.h>

#include "acl.h"
#include "err.h"
#include "log.h"
#include "relay_config.h"
#include "runner.h"

int suite_relay_config(void);

static char dir[256];
static char key1[1024], key2[1024];	/* "ssh-ed25519 AAAA... comment" */
static char fp1[128];			/* ssh-keygen -lf of key1 */

static int
read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	int ok;

	if (f == NULL)
		return -1;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int
setup(void)
{
	char path[512], out[512];
	FILE *p;

	if (unit_tmpdir(dir, sizeof(dir)) < 0)
		return -1;
	if (unit_sh("cd %s && ssh-keygen -q -t ed25519 -N '' -C host -f host_key"
	    " && ssh-keygen -q -t ed25519 -N '' -C alice@laptop -f op1"
	    " && ssh-keygen -q -t ed25519 -N '' -C bob@laptop -f op2"
	    " && ssh-keygen -q -t ed25519 -N '' -C carol -f op3"
	    " && echo CA > ca.pem && echo CERT > cert.pem"
	    " && echo KEY > key.pem && chmod 600 key.pem"
	    " && cp host_key loose_key && chmod 644 loose_key"
	    " && mkdir -p revtun && cp host_key revtun/ssh_host_ed25519_key"
	    " && cp ca.pem revtun/ca.pem && cp cert.pem revtun/relay.pem"
	    " && cp key.pem revtun/relay.key", dir) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/op1.pub", dir);
	if (read_line(path, key1, sizeof(key1)) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/op2.pub", dir);
	if (read_line(path, key2, sizeof(key2)) < 0)
		return -1;
	/* A keys file: comment, blank, good key, then a bad line 4. */
	if (unit_sh("cd %s && { echo '# bob'; echo; cat op3.pub; "
	    "echo 'ssh-ed25519 AAAAnotbase64!! x'; } > keys_bad && "
	    "{ echo '  # carol'; cat op3.pub; } > keys_good && "
	    "chmod 600 keys_bad keys_good", dir) < 0)
		return -1;
	snprintf(path, sizeof(path), "ssh-keygen -lf %s/op1.pub", dir);
	if ((p = popen(path, "r")) == NULL)
		return -1;
	if (fgets(out, sizeof(out), p) == NULL ||
	    sscanf(out, "%*s %127s", fp1) != 1) {
		pclose(p);
		return -1;
	}
	return pclose(p) == 0 && strncmp(fp1, "SHA256:", 7) == 0 ? 0 : -1;
}

static int
teardown(void)
{
	unit_rmtree(dir);
	return 0;
}

/*
 * The base config: lines 1-10 fixed, extra from line 11 on. tls_line is
 * line 3 (the CA line by default).
 */
static void
base(char *buf, size_t len, const char *tls_line, const char *extra)
{
	char ca[512];

	snprintf(ca, sizeof(ca), "ca = \"%s/ca.pem\"", dir);
	snprintf(buf, len,
	    "host_keys = {\"%s/host_key\"}\n"		/* 1 */
	    "tls {\n"					/* 2 */
	    "\t%s\n"					/* 3 */
	    "\tcert = \"%s/cert.pem\"\n"		/* 4 */
	    "\tkey = \"%s/key.pem\"\n"			/* 5 */
	    "}\n"					/* 6 */
	    "operator alice {\n"			/* 7 */
	    "\tkeys = {\"%s\"}\n"			/* 8 */
	    "\tallow = {\"gw-17:ssh\"}\n"		/* 9 */
	    "}\n"					/* 10 */
	    "%s",					/* 11.. */
	    dir, tls_line ? tls_line : ca, dir, dir, key1, extra);
}

static int
has_error(const struct cfgu_errors *e, const char *prefix, const char *sub)
{
	for (unsigned int i = 0; i < e->n; i++) {
		if (strncmp(e->msg[i], prefix, strlen(prefix)) == 0 &&
		    strstr(e->msg[i], sub) != NULL)
			return 1;
	}
	return 0;
}

static void
dump(const struct cfgu_errors *e)
{
	for (unsigned int i = 0; i < e->n; i++)
		fprintf(stderr, "    | %s\n", e->msg[i]);
}

static void
test_full(void)
{
	char text[8192];
	struct cfgu_errors e;
	struct relay_config *c = NULL;
	const struct relay_operator *op;
	const char *rule;
	int r;

	snprintf(text, sizeof(text),
	    "listen = {\"*:443\", \"[::1]:8443\"}\n"		/* 1 */
	    "operator_listen = {\"127.0.0.1:2222\"}\n"		/* 2 */
	    "host_keys = {\"%s/host_key\"}\n"			/* 3 */
	    "user = \"nobody\"\n"					/* 4 */
	    "log_level = \"debug\"\n"				/* 5 */
	    "syslog = true\n"					/* 6 */
	    "audit_log = \"-\"\n"				/* 7 */
	    "domain_suffix = \".plant.example\"\n"		/* 8 */
	    "acl_allow_glob = true\n"				/* 9 */
	    "tls {\n ca = \"%s\"\n cert = \"%s/cert.pem\"\n"	/* 10-12 */
	    " key = \"%s/key.pem\"\n crl = \"%s/ca.pem\"\n"	/* 13-14 */
	    " min_version = \"1.2\"\n}\n"			/* 15-16 */
	    "agents {\n allow = {\"gw-17\", \"gw-18\"}\n"	/* 17-18 */
	    " services = {\"ssh\", \"plc*\"}\n"			/* 19 */
	    " max_services = 5\n max_channels = 9\n"		/* 20-21 */
	    " keepalive_interval = \"20s\"\n"			/* 22 */
	    " keepalive_count = 4\n}\n"				/* 23-24 */
	    "limits {\n handshake_timeout = \"5s\"\n"		/* 25-26 */
	    " max_pending = 100\n max_pending_per_source = 3\n"	/* 27-28 */
	    " max_connections = 1000\n"				/* 29 */
	    " channel_buffer = \"512k\"\n"			/* 30 */
	    " operator_max_channels = 7\n"			/* 31 */
	    " operator_idle_timeout = \"1h\"\n"			/* 32 */
	    " auth_timeout = \"20s\"\n auth_max_tries = 3\n"	/* 33-34 */
	    " shutdown_timeout = \"2s\"\n}\n"			/* 35-36 */
	    "operator alice {\n"				/* 37 */
	    " keys = {\"%s\"}\n"				/* 38 */
	    " allow = {\"gw-17:ssh\", \"gw-*:hmi\"}\n"		/* 39 */
	    " rights = {\"gw-17:read\"}\n"			/* 40 */
	    "}\n"						/* 41 */
	    "operator bob {\n"					/* 42 */
	    " keys = {\"%s\"}\n"				/* 43 */
	    " keys_file = \"%s/keys_good\"\n"			/* 44 */
	    "}\n",
	    dir, dir, dir, dir, dir, key1, key2, dir);
	cfgu_errors_init(&e);
	r = relay_config_load_buf(text, "full.conf", &c, &e);
	if (r != 0)
		dump(&e);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->path, "full.conf");
	CU_ASSERT_EQUAL(c->nlisten, 2);
	CU_ASSERT_STRING_EQUAL(c->listen[1], "[::1]:8443");
	CU_ASSERT_EQUAL(c->nop_listen, 1);
	CU_ASSERT_STRING_EQUAL(c->op_listen[0], "127.0.0.1:2222");
	CU_ASSERT_EQUAL(c->nhost_keys, 1);
	CU_ASSERT_STRING_EQUAL(c->user, "nobody");
	CU_ASSERT_NOT_EQUAL(c->user_uid, 0);
	CU_ASSERT_STRING_EQUAL(c->pid_file, "");
	CU_ASSERT_EQUAL(c->log_level, LOG_LVL_DEBUG);
	CU_ASSERT_EQUAL(c->log_syslog, 1);
	CU_ASSERT_STRING_EQUAL(c->audit_log, "-");
	CU_ASSERT_STRING_EQUAL(c->domain_suffix, ".plant.example");
	CU_ASSERT_EQUAL(c->acl_allow_glob, 1);
	CU_ASSERT_EQUAL(c->tls_min_version, TLS1_2_VERSION);
	CU_ASSERT_PTR_NOT_NULL(strstr(c->tls_crl, "ca.pem"));
	CU_ASSERT_EQUAL(c->nagent_allow, 2);
	CU_ASSERT_EQUAL(c->nservice_allow, 2);
	CU_ASSERT_STRING_EQUAL(c->service_allow[1], "plc*");
	CU_ASSERT_EQUAL(c->agent_max_services, 5);
	CU_ASSERT_EQUAL(c->agent_max_channels, 9);
	CU_ASSERT_EQUAL(c->keepalive_interval_ms, 20000);
	CU_ASSERT_EQUAL(c->keepalive_count, 4);
	CU_ASSERT_EQUAL(c->handshake_timeout_ms, 5000);
	CU_ASSERT_EQUAL(c->max_pending, 100);
	CU_ASSERT_EQUAL(c->max_pending_per_source, 3);
	CU_ASSERT_EQUAL(c->max_connections, 1000);
	CU_ASSERT_EQUAL(c->channel_buffer, 512 * 1024);
	CU_ASSERT_EQUAL(c->operator_max_channels, 7);
	CU_ASSERT_EQUAL(c->operator_idle_timeout_ms, 3600 * 1000);
	CU_ASSERT_EQUAL(c->auth_timeout_ms, 20000);
	CU_ASSERT_EQUAL(c->auth_max_tries, 3);
	CU_ASSERT_EQUAL(c->shutdown_timeout_ms, 2000);

	CU_ASSERT_EQUAL(c->noperators, 2);
	op = relay_config_operator(c, "alice");
	CU_ASSERT_PTR_NOT_NULL_FATAL(op);
	CU_ASSERT_EQUAL(op->nkeys, 1);
	CU_ASSERT_STRING_EQUAL(op->key_comments[0], "alice@laptop");
	CU_ASSERT_STRING_EQUAL(op->key_fps[0], fp1);
	op = relay_config_operator(c, "bob");
	CU_ASSERT_PTR_NOT_NULL_FATAL(op);
	CU_ASSERT_EQUAL(op->nkeys, 2);	/* keys + keys_file */
	CU_ASSERT_STRING_EQUAL(op->key_comments[1], "carol");
	CU_ASSERT_PTR_NULL(relay_config_operator(c, "carol"));

	/* The ACL was built, with lines naming the grants. */
	CU_ASSERT_EQUAL(acl_check(c->acl, "alice", ACL_SERVICE, "gw-17",
	    "ssh", &rule), 1);
	CU_ASSERT_STRING_EQUAL(rule, "alice gw-17:ssh (full.conf:39)");
	CU_ASSERT_EQUAL(acl_check(c->acl, "alice", ACL_SERVICE, "gw-9",
	    "hmi", NULL), 1);
	CU_ASSERT_EQUAL(acl_check(c->acl, "alice", ACL_RIGHT, "gw-17",
	    "read", &rule), 1);
	CU_ASSERT_STRING_EQUAL(rule, "alice gw-17:read (full.conf:40)");
	CU_ASSERT_EQUAL(acl_check(c->acl, "bob", ACL_SERVICE, "gw-17", "ssh",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_glob_count(c->acl), 1);
	relay_config_free(c);
	relay_config_free(NULL);
}

static void
test_defaults(void)
{
	char text[4096];
	struct cfgu_errors e;
	struct relay_config *c = NULL;
	int r;

	base(text, sizeof(text), NULL, "");
	cfgu_errors_init(&e);
	r = relay_config_load_buf(text, "min.conf", &c, &e);
	if (r != 0)
		dump(&e);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(e.n, 0);
	CU_ASSERT_EQUAL(c->nlisten, 1);
	CU_ASSERT_STRING_EQUAL(c->listen[0], "*:443");
	CU_ASSERT_EQUAL(c->nop_listen, 0);
	CU_ASSERT_STRING_EQUAL(c->user, "");
	CU_ASSERT_EQUAL(c->log_level, LOG_LVL_INFO);
	CU_ASSERT_EQUAL(c->log_syslog, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(c->audit_log, "/log/revtun/audit.log"));
	CU_ASSERT_STRING_EQUAL(c->domain_suffix, ".edge");
	CU_ASSERT_EQUAL(c->acl_allow_glob, 0);
	CU_ASSERT_STRING_EQUAL(c->tls_crl, "");
	CU_ASSERT_EQUAL(c->tls_min_version, TLS1_3_VERSION);
	CU_ASSERT_EQUAL(c->nagent_allow, 0);
	CU_ASSERT_EQUAL(c->nservice_allow, 1);
	CU_ASSERT_STRING_EQUAL(c->service_allow[0], "*");
	CU_ASSERT_EQUAL(c->agent_max_services, 32);
	CU_ASSERT_EQUAL(c->agent_max_channels, 64);
	CU_ASSERT_EQUAL(c->keepalive_interval_ms, 15000);
	CU_ASSERT_EQUAL(c->keepalive_count, 3);
	CU_ASSERT_EQUAL(c->handshake_timeout_ms, 10000);
	CU_ASSERT_EQUAL(c->max_pending, 256);
	CU_ASSERT_EQUAL(c->max_pending_per_source, 8);
	CU_ASSERT_EQUAL(c->max_connections, 4096);
	CU_ASSERT_EQUAL(c->channel_buffer, 256 * 1024);
	CU_ASSERT_EQUAL(c->operator_max_channels, 32);
	CU_ASSERT_EQUAL(c->operator_idle_timeout_ms, 0);
	CU_ASSERT_EQUAL(c->auth_timeout_ms, 30000);
	CU_ASSERT_EQUAL(c->auth_max_tries, 6);
	CU_ASSERT_EQUAL(c->shutdown_timeout_ms, 10000);
	CU_ASSERT_EQUAL(c->operator_channel_idle_timeout_ms, 0);
	CU_ASSERT_EQUAL(c->operator_max_denials, 10);
	CU_ASSERT_EQUAL(c->operator_denial_window_ms, 10000);
	CU_ASSERT_EQUAL(c->penalties, 1);
	CU_ASSERT_EQUAL(c->penalty.ms[PEN_AUTHFAIL], 5000);
	CU_ASSERT_EQUAL(c->penalty.ms[PEN_NOAUTH], 1000);
	CU_ASSERT_EQUAL(c->penalty.ms[PEN_GUESSING], 30000);
	CU_ASSERT_EQUAL(c->penalty.min_ms, 15000);
	CU_ASSERT_EQUAL(c->penalty.max_ms, 600000);
	CU_ASSERT_EQUAL(c->penalty.max_sources, 65536);
	/* the relay's own host (a local proxy, a health check) */
	CU_ASSERT_EQUAL(c->npenalty_exempt, 2);
	CU_ASSERT(pen_net_match(c->penalty_exempt, c->npenalty_exempt,
	    "127.0.0.2"));
	CU_ASSERT(pen_net_match(c->penalty_exempt, c->npenalty_exempt,
	    "::1"));
	CU_ASSERT(!pen_net_match(c->penalty_exempt, c->npenalty_exempt,
	    "192.0.2.1"));
	relay_config_free(c);
}

/* The operator abuse settings, set. */
static void
test_penalty_settings(void)
{
	char text[4096];
	struct cfgu_errors e;
	struct relay_config *c = NULL;
	int r;

	base(text, sizeof(text), NULL, "limits {\n"
	    " penalties = false\n"
	    " penalty_exempt = {\"10.0.0.0/8\", \"2001:db8::/32\"}\n"
	    " penalty_authfail = \"2s\"\n penalty_noauth = \"0\"\n"
	    " penalty_guessing = \"1m\"\n penalty_min = \"0\"\n"
	    " penalty_max = \"1h\"\n penalty_max_sources = 100\n"
	    " operator_max_denials = 0\n"
	    " operator_denial_window = \"1m\"\n"
	    " operator_channel_idle_timeout = \"5m\"\n}\n");
	cfgu_errors_init(&e);
	r = relay_config_load_buf(text, "p.conf", &c, &e);
	if (r != 0)
		dump(&e);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(c->penalties, 0);
	CU_ASSERT_EQUAL(c->npenalty_exempt, 2);
	CU_ASSERT(pen_net_match(c->penalty_exempt, 2, "10.9.8.7"));
	CU_ASSERT(pen_net_match(c->penalty_exempt, 2, "2001:db8:5::1"));
	CU_ASSERT(!pen_net_match(c->penalty_exempt, 2, "127.0.0.1"));
	CU_ASSERT_EQUAL(c->penalty.ms[PEN_AUTHFAIL], 2000);
	CU_ASSERT_EQUAL(c->penalty.ms[PEN_NOAUTH], 0);
	CU_ASSERT_EQUAL(c->penalty.ms[PEN_GUESSING], 60000);
	CU_ASSERT_EQUAL(c->penalty.min_ms, 0);
	CU_ASSERT_EQUAL(c->penalty.max_ms, 3600000);
	CU_ASSERT_EQUAL(c->penalty.max_sources, 100);
	CU_ASSERT_EQUAL(c->operator_max_denials, 0);
	CU_ASSERT_EQUAL(c->operator_denial_window_ms, 60000);
	CU_ASSERT_EQUAL(c->operator_channel_idle_timeout_ms, 300000);
	relay_config_free(c);

	/* an empty exempt list: loopback is penalized too */
	base(text, sizeof(text), NULL, "limits {\n penalty_exempt = {}\n}\n");
	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL_FATAL(relay_config_load_buf(text, "p.conf", &c, &e),
	    0);
	CU_ASSERT_EQUAL(c->npenalty_exempt, 0);
	relay_config_free(c);
}

struct bad_case {
	const char *tls_line;	/* NULL = the good CA line */
	const char *extra;	/* from line 11; "%s" = the temp dir */
	const char *where;	/* "FILE:LINE:" prefix expected */
	const char *msg;	/* substring expected */
};

static void
run_bad(const struct bad_case *bc)
{
	char text[8192], extra[2048], tls[512], where[512];
	struct cfgu_errors e;
	struct relay_config *c = (struct relay_config *)1;
	int r;

	snprintf(extra, sizeof(extra), bc->extra, dir, dir);
	if (bc->tls_line != NULL)
		snprintf(tls, sizeof(tls), bc->tls_line, dir);
	base(text, sizeof(text), bc->tls_line ? tls : NULL, extra);
	snprintf(where, sizeof(where), bc->where, dir);
	cfgu_errors_init(&e);
	r = relay_config_load_buf(text, "t.conf", &c, &e);
	CU_ASSERT(r == RT_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(c);
	if (!has_error(&e, where, bc->msg)) {
		fprintf(stderr, "\n  expected \"%s ...%s...\", got:\n", where,
		    bc->msg);
		dump(&e);
		CU_FAIL("error with line");
	}
	if (c != NULL && c != (struct relay_config *)1)
		relay_config_free(c);
}

static void
test_errors(void)
{
	char k1[1200], dup_key[1400], dup_op[1400];
	const struct bad_case cases[] = {
		{ NULL, "listen = {\"*:443\", \"*:443\"}\n", "t.conf:11:",
		    "duplicate address \"*:443\"" },
		{ NULL, "listen = {\"*:443\"}\noperator_listen = "
		    "{\"*:443\"}\n", "t.conf:12:", "duplicate address" },
		{ NULL, "listen = {\"1.2.3:80\"}\n", "t.conf:11:",
		    "bad IPv4 address" },
		{ NULL, "listen = {\"[::1]:0\"}\n", "t.conf:11:", "bad port" },
		{ NULL, "listen = {\"::1:443\"}\n", "t.conf:11:", "brackets" },
		{ NULL, "listen = {\"*:1\",\"*:2\",\"*:3\",\"*:4\",\"*:5\","
		    "\"*:6\",\"*:7\",\"*:8\",\"*:9\"}\n", "t.conf:11:",
		    "at most 8" },
		{ NULL, "\n\noperator bob {\n}\n", "t.conf:14:",
		    "operator bob: no keys" },
		{ NULL, dup_op, "t.conf:", "duplicate title 'alice'" },
		{ NULL, "agents {\n allow = {\"gw-1\", \"bad id\"}\n}\n",
		    "t.conf:12:", "\"bad id\" is not a valid agent id" },
		{ NULL, "agents {\n services = {\"a/b\"}\n}\n", "t.conf:12:",
		    "bad pattern" },
		{ NULL, "agents {\n\n services = {}\n}\n", "t.conf:",
		    "agents.services: empty" },
		{ NULL, "operator bob {\n keys_file = \"%s/keys_good\"\n "
		    "rights = {\"gw-1:admin\"}\n}\n", "t.conf:13:",
		    "unknown right \"admin\"" },
		{ NULL, "operator bob {\n keys_file = \"%s/keys_good\"\n "
		    "allow = {\"gw-17:ssh\",\n \"gw-*:ssh\"}\n}\n",
		    "t.conf:13:", "acl_allow_glob is off" },
		{ NULL, "limits {\n max_pending = 0\n}\n", "t.conf:12:",
		    "limits.max_pending: 0 is out of range" },
		{ NULL, "limits {\n\n max_pending_per_source = 9999\n "
		    "max_pending = 10\n}\n", "t.conf:13:", "exceeds" },
		{ NULL, "limits {\n auth_timeout = \"forever\"\n}\n",
		    "t.conf:12:", "bad duration \"forever\"" },
		{ NULL, "limits {\n handshake_timeout = \"1h\"\n}\n",
		    "t.conf:12:", "out of range" },
		{ NULL, "limits {\n channel_buffer = \"1k\"\n}\n",
		    "t.conf:12:", "channel_buffer" },
		{ NULL, "agents {\n max_channels = 100000\n}\n",
		    "t.conf:12:", "agents.max_channels: 100000" },
		{ "ca = \"\"", "", "t.conf:3:", "tls.ca: required" },
		{ "ca = \"%s/nope.pem\"", "", "t.conf:3:",
		    "No such file" },
		{ "ca = \"%s/ca.pem\" min_version = \"1.1\"", "", "t.conf:3:",
		    "tls.min_version: \"1.1\"" },
		{ NULL, "host_keys = {\"%s/loose_key\"}\n", "t.conf:11:",
		    "0644" },
		{ NULL, "host_keys = {\"%s/key.pem\"}\n", "t.conf:11:",
		    "not a private key" },
		/* An empty list calls no validator: the line is that of
		 * the first assignment. */
		{ NULL, "host_keys = {}\n", "t.conf:", "at least one" },
		{ NULL, "operator bob {\n keys_file = \"%s/keys_bad\"\n}\n",
		    "%s/keys_bad:4:", "operator bob: bad ssh-ed25519 key" },
		{ NULL, "operator bob {\n keys_file = \"%s/missing\"\n}\n",
		    "t.conf:12:", "No such file" },
		{ NULL, "operator bob {\n keys = {\"restrict ssh-ed25519 "
		    "AAAA x\"}\n}\n", "t.conf:12:", "options are not "
		    "supported" },
		{ NULL, dup_key, "t.conf:14:", "also belongs to operator "
		    "alice" },
		{ NULL, "operator \"b d\" {\n keys = {\"x\"}\n}\n",
		    "t.conf:13:", "operator \"b d\": bad name" },
		{ NULL, "domain_suffix = \"edge\"\n", "t.conf:11:",
		    "domain_suffix" },
		{ NULL, "log_level = \"loud\"\n", "t.conf:11:", "log_level" },
		{ NULL, "audit_log = \"rel/a.log\"\n", "t.conf:11:",
		    "absolute" },
		{ NULL, "user = \"no-such-user-rt\"\n", "t.conf:11:",
		    "no such user" },
		{ NULL, "user = \"root\"\n", "t.conf:11:",
		    "uid 0, which drops nothing" },
		{ NULL, "pid_file = \"run/r.pid\"\n", "t.conf:11:",
		    "pid_file: \"run/r.pid\" must be an absolute path" },
		{ NULL, "bogus = 1\n", "t.conf:11:", "bogus" },
		{ NULL, "limits {\n penalty_exempt = {\"10.0.0.0/8\",\n"
		    " \"10.0.0.1/8\"}\n}\n", "t.conf:12:", "\"10.0.0.1/8\": "
		    "address has bits set past the prefix length" },
		{ NULL, "limits {\n penalty_exempt = {\"gw.example\"}\n}\n",
		    "t.conf:12:", "not a literal IPv4 or IPv6 address" },
		{ NULL, "limits {\n penalty_exempt = {\"::1/129\"}\n}\n",
		    "t.conf:12:", "prefix length must be 0-128" },
		{ NULL, "limits {\n\n penalty_min = \"20m\"\n}\n",
		    "t.conf:13:", "limits.penalty_min: longer than "
		    "limits.penalty_max" },
		{ NULL, "limits {\n penalty_max = \"0\"\n}\n", "t.conf:12:",
		    "limits.penalty_max" },
		{ NULL, "limits {\n penalty_max_sources = 0\n}\n",
		    "t.conf:12:", "limits.penalty_max_sources: 0 is out of "
		    "range" },
		{ NULL, "limits {\n penalties = maybe\n}\n", "t.conf:",
		    "penalties" },
		{ NULL, "limits {\n operator_channel_idle_timeout = "
		    "\"500ms\"\n}\n", "t.conf:12:", "at least 1s" },
		{ NULL, "limits {\n operator_denial_window = \"0\"\n}\n",
		    "t.conf:12:", "limits.operator_denial_window" },
	};

	snprintf(k1, sizeof(k1), "%s", key1);
	snprintf(dup_key, sizeof(dup_key), "\noperator bob {\n keys = "
	    "{\"%s\"}\n}\n", k1);
	snprintf(dup_op, sizeof(dup_op), "operator alice {\n keys = "
	    "{\"%s\"}\n}\n", key2);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_bad(&cases[i]);
}

static void
test_all_errors_at_once(void)
{
	char text[4096];
	struct cfgu_errors e;
	struct relay_config *c = NULL;

	base(text, sizeof(text), "ca = \"\"",
	    "listen = {\"x\"}\n"			/* 11 */
	    "agents {\n allow = {\"-x\"}\n}\n"		/* 12-14 */
	    "limits {\n auth_max_tries = 0\n}\n");	/* 15-17 */
	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL(relay_config_load_buf(text, "t.conf", &c, &e),
	    RT_ERR_CONFIG);
	CU_ASSERT_EQUAL(e.n, 4);
	CU_ASSERT(has_error(&e, "t.conf:3:", "tls.ca"));
	CU_ASSERT(has_error(&e, "t.conf:11:", "listen"));
	CU_ASSERT(has_error(&e, "t.conf:13:", "\"-x\""));
	CU_ASSERT(has_error(&e, "t.conf:16:", "auth_max_tries"));
	CU_ASSERT_PTR_NULL(c);
}

static void
test_load_file(void)
{
	char text[4096], path[512];
	struct cfgu_errors e;
	struct relay_config *c = NULL;
	FILE *f;

	base(text, sizeof(text), NULL, "");
	snprintf(path, sizeof(path), "%s/relay.conf", dir);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL_FATAL(relay_config_load(path, &c, &e), 0);
	CU_ASSERT_STRING_EQUAL(c->path, path);
	relay_config_free(c);

	c = NULL;
	snprintf(path, sizeof(path), "%s/absent.conf", dir);
	cfgu_errors_init(&e);
	CU_ASSERT(relay_config_load(path, &c, &e) < 0);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT(e.n >= 1 && strstr(e.msg[0], "absent.conf") != NULL);
}

static void
test_restart_needed(void)
{
	char text[4096], buf[128];
	struct cfgu_errors e;
	struct relay_config *a = NULL, *b = NULL, *c = NULL;

	base(text, sizeof(text), NULL, "listen = {\"*:443\"}\n");
	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL_FATAL(relay_config_load_buf(text, "a", &a, &e), 0);
	CU_ASSERT_EQUAL_FATAL(relay_config_load_buf(text, "b", &b, &e), 0);
	base(text, sizeof(text), NULL, "listen = {\"*:8443\"}\n"
	    "user = \"nobody\"\npid_file = \"/run/r.pid\"\n"
	    "limits {\n max_pending = 70\n}\n");
	CU_ASSERT_EQUAL_FATAL(relay_config_load_buf(text, "c", &c, &e), 0);

	strcpy(buf, "junk");
	CU_ASSERT_EQUAL(relay_config_restart_needed(a, b, buf, sizeof(buf)),
	    0);
	CU_ASSERT_STRING_EQUAL(buf, "");
	CU_ASSERT_EQUAL(relay_config_restart_needed(a, c, buf, sizeof(buf)),
	    3);
	CU_ASSERT_STRING_EQUAL(buf, "listen, user, pid_file");
	relay_config_free(a);
	relay_config_free(b);
	relay_config_free(c);
}

/* Broken input: an error, never a crash or a half-built config. */
static void
test_garbage(void)
{
	static const char *const texts[] = {
		"",
		"tls {",
		"operator {\n}\n",
		"operator alice {\n keys = {\"ssh-ed25519\"}\n}\n",
		"operator alice {\n keys = {\"\"}\n}\n",
		"operator alice {\n keys = {\"ssh-ed25519 AAAA\"}\n}\n",
		"listen = {\"[\", \":\", \"[]:1\", \"*:\", \"*:99999\"}\n",
		"limits {\n max_pending = \"x\"\n}\n",
		"agents = 1\n",
		"\"\xff\xfe\" = {\n",
	};
	struct cfgu_errors e;
	struct relay_config *c;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		c = NULL;
		cfgu_errors_init(&e);
		CU_ASSERT(relay_config_load_buf(texts[i], "g.conf", &c, &e) <
		    0);
		CU_ASSERT_PTR_NULL(c);
		CU_ASSERT(e.n > 0);
	}
	/* No tls section at all: named without a line. */
	cfgu_errors_init(&e);
	c = NULL;
	CU_ASSERT(relay_config_load_buf("listen = {\"*:1\"}\n", "g.conf", &c,
	    &e) == RT_ERR_CONFIG);
	CU_ASSERT(has_error(&e, "g.conf: ", "tls.ca: required"));
}

/* conf/relay.conf loads once /etc/revtun points at the temp dir. */
static void
test_example_conf(void)
{
	char path[1024], *text = NULL, *out = NULL, *p, *q;
	const char *top = getenv("top_srcdir");
	struct cfgu_errors e;
	struct relay_config *c = NULL;
	size_t n, m;
	FILE *f;
	int r;

	if (top != NULL)
		snprintf(path, sizeof(path), "%s/conf/relay.conf", top);
	else {
		snprintf(path, sizeof(path), "%s", __FILE__);
		if ((p = strstr(path, "tests/unit/")) != NULL)
			strcpy(p, "conf/relay.conf");
	}
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	text = calloc(1, 65536);
	out = calloc(1, 131072);
	CU_ASSERT_FATAL(text != NULL && out != NULL);
	n = fread(text, 1, 65535, f);
	fclose(f);
	CU_ASSERT(n > 0 && n < 65535);
	/* Every "/etc/revtun" becomes dir/revtun. */
	for (p = text, m = 0; (q = strstr(p, "/etc/revtun")) != NULL;
	    p = q + strlen("/etc/revtun")) {
		m += (size_t)snprintf(out + m, 131072 - m, "%.*s%s/revtun",
		    (int)(q - p), p, dir);
	}
	snprintf(out + m, 131072 - m, "%s", p);
	cfgu_errors_init(&e);
	r = relay_config_load_buf(out, "relay.conf", &c, &e);
	if (r != 0)
		dump(&e);
	CU_ASSERT_EQUAL(r, 0);
	if (c != NULL) {
		CU_ASSERT_STRING_EQUAL(c->listen[0], "*:443");
		CU_ASSERT_PTR_NOT_NULL(relay_config_operator(c, "alice"));
		CU_ASSERT_EQUAL(acl_check(c->acl, "alice", ACL_SERVICE,
		    "gw-17", "hmi", NULL), 1);
	}
	relay_config_free(c);
	free(text);
	free(out);
}

int
suite_relay_config(void)
{
	CU_pSuite s = CU_add_suite("relay_config", setup, teardown);

	if (s == NULL ||
	    CU_add_test(s, "full config", test_full) == NULL ||
	    CU_add_test(s, "defaults", test_defaults) == NULL ||
	    CU_add_test(s, "penalty settings", test_penalty_settings) ==
	    NULL ||
	    CU_add_test(s, "errors with lines", test_errors) == NULL ||
	    CU_add_test(s, "all errors at once",
	    test_all_errors_at_once) == NULL ||
	    CU_add_test(s, "load file", test_load_file) == NULL ||
	    CU_add_test(s, "restart needed", test_restart_needed) == NULL ||
	    CU_add_test(s, "garbage", test_garbage) == NULL ||
	    CU_add_test(s, "example conf", test_example_conf) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
