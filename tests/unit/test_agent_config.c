/*
 * test_agent_config.c - unit tests of agent_config.c: a full valid config
 * with every default, each validation error with its file:line, key file
 * permissions, the reload diff, and that conf/agent.conf parses.
 *
 * Each test builds its config text from BASE (whose line numbers the
 * tests rely on) in a private temporary directory holding the TLS files.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/ssl.h>

#include "agent_config.h"
#include "err.h"
#include "log.h"
#include "runner.h"

int suite_agent_config(void);

/* 17 lines; "@" is replaced by the temporary directory. */
static const char BASE[] =
	"relays = {\"relay.example.com:443\", \"[2001:db8::1]:8443\"}\n"	/* 1 */
	"tls {\n"							/* 2 */
	"\tca = \"@/ca.pem\"\n"						/* 3 */
	"\tcert = \"@/agent.pem\"\n"					/* 4 */
	"\tkey = \"@/agent.key\"\n"					/* 5 */
	"}\n"								/* 6 */
	"service ssh {\n"						/* 7 */
	"\tport = 22\n"							/* 8 */
	"\ttarget = \"127.0.0.1:22\"\n"					/* 9 */
	"}\n"								/* 10 */
	"service plc {\n"						/* 11 */
	"\tport = 502\n"						/* 12 */
	"\ttarget = \"[fd00::20]:502\"\n"				/* 13 */
	"}\n"								/* 14 */
	"service control {\n"						/* 15 */
	"\tport = 7000\n"						/* 16 */
	"}\n";								/* 17 */

#define NAME "t.conf"

struct fx {
	char dir[256];
	char text[16384];
	struct cfgu_errors errs;
	struct agent_config *cfg;
};

static int
write_file(const char *dir, const char *name, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)) < 0)
		return -1;
	(void)!write(fd, "x\n", 2);
	close(fd);
	return chmod(path, mode);
}

/* Temp dir with ca.pem, agent.pem (0644) and agent.key (0600). */
static int
fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	if (unit_tmpdir(f->dir, sizeof(f->dir)) != 0)
		return -1;
	if (write_file(f->dir, "ca.pem", 0644) != 0 ||
	    write_file(f->dir, "agent.pem", 0644) != 0 ||
	    write_file(f->dir, "agent.key", 0600) != 0)
		return -1;
	return 0;
}

static void
fx_done(struct fx *f)
{
	agent_config_free(f->cfg);
	f->cfg = NULL;
	unit_rmtree(f->dir);
}

/* f->text = tmpl with every "@" replaced by f->dir. */
static void
fx_text(struct fx *f, const char *tmpl)
{
	size_t o = 0, dl = strlen(f->dir);
	const char *p;

	for (p = tmpl; *p != '\0' && o + dl + 1 < sizeof(f->text); p++) {
		if (*p == '@') {
			memcpy(f->text + o, f->dir, dl);
			o += dl;
		} else
			f->text[o++] = *p;
	}
	f->text[o] = '\0';
}

/* Loads BASE followed by extra (which starts on line 18). */
static int
fx_load(struct fx *f, const char *extra)
{
	char tmpl[8192];

	snprintf(tmpl, sizeof(tmpl), "%s%s", BASE, extra);
	fx_text(f, tmpl);
	agent_config_free(f->cfg);
	f->cfg = NULL;
	return agent_config_load_buf(f->text, NAME, &f->cfg, &f->errs);
}

/* Loads exactly tmpl (no BASE). */
static int
fx_load_only(struct fx *f, const char *tmpl)
{
	fx_text(f, tmpl);
	agent_config_free(f->cfg);
	f->cfg = NULL;
	return agent_config_load_buf(f->text, NAME, &f->cfg, &f->errs);
}

/* 1 if some message starts with prefix and contains needle. */
static int
has_err(const struct fx *f, const char *prefix, const char *needle)
{
	unsigned int i;

	for (i = 0; i < f->errs.n; i++) {
		if (strncmp(f->errs.msg[i], prefix, strlen(prefix)) == 0 &&
		    strstr(f->errs.msg[i], needle) != NULL)
			return 1;
	}
	if (getenv("RT_TEST_DEBUG") != NULL)
		for (i = 0; i < f->errs.n; i++)
			fprintf(stderr, "  [%s]\n", f->errs.msg[i]);
	return 0;
}

/* A load expected to fail with exactly one message at prefix. */
#define EXPECT_ONE(f, extra, prefix, needle) do {			\
	CU_ASSERT_EQUAL(fx_load((f), (extra)), RT_ERR_CONFIG);		\
	CU_ASSERT_PTR_NULL((f)->cfg);					\
	CU_ASSERT_EQUAL((f)->errs.n, 1);				\
	CU_ASSERT_TRUE(has_err((f), (prefix), (needle)));		\
} while (0)

static void
test_defaults(void)
{
	struct fx f;
	const struct agent_config *c;
	const struct agent_service *s;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_EQUAL(fx_load(&f, ""), 0);
	CU_ASSERT_EQUAL(f.errs.n, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.cfg);
	c = f.cfg;

	CU_ASSERT_STRING_EQUAL(c->path, NAME);
	CU_ASSERT_EQUAL(c->nrelays, 2);
	CU_ASSERT_STRING_EQUAL(c->relay_host[0], "relay.example.com");
	CU_ASSERT_STRING_EQUAL(c->relay_port[0], "443");
	CU_ASSERT_STRING_EQUAL(c->relay_host[1], "2001:db8::1");
	CU_ASSERT_STRING_EQUAL(c->relay_port[1], "8443");
	CU_ASSERT_TRUE(strstr(c->tls_ca, "/ca.pem") != NULL);
	CU_ASSERT_TRUE(strstr(c->tls_cert, "/agent.pem") != NULL);
	CU_ASSERT_TRUE(strstr(c->tls_key, "/agent.key") != NULL);
	CU_ASSERT_EQUAL(c->tls_min_version, TLS1_3_VERSION);
	CU_ASSERT_STRING_EQUAL(c->tls_server_name, "");
	CU_ASSERT_STRING_EQUAL(c->ssh_host_key_fp, "");
	CU_ASSERT_EQUAL(c->keepalive_interval_ms, 15000);
	CU_ASSERT_EQUAL(c->keepalive_count, 3);
	CU_ASSERT_EQUAL(c->connect_timeout_ms, 20000);
	CU_ASSERT_EQUAL(c->tcp_user_timeout_ms, 45000);
	CU_ASSERT_EQUAL(c->backoff_initial_ms, 1000);
	CU_ASSERT_EQUAL(c->backoff_max_ms, 60000);
	CU_ASSERT_EQUAL(c->backoff_jitter_pct, 20);
	CU_ASSERT_STRING_EQUAL(c->proxy_host, "");
	CU_ASSERT_STRING_EQUAL(c->proxy_port, "3128");
	CU_ASSERT_STRING_EQUAL(c->proxy_auth_file, "");
	CU_ASSERT_EQUAL(c->max_channels, 64);
	CU_ASSERT_EQUAL(c->channel_buffer, 256 * 1024);
	CU_ASSERT_EQUAL(c->target_connect_timeout_ms, 10000);
	CU_ASSERT_EQUAL(c->shutdown_timeout_ms, 10000);
	CU_ASSERT_EQUAL(c->consent_mode, CONSENT_OFF);
	CU_ASSERT_STRING_EQUAL(c->consent_file, "");
	CU_ASSERT_STRING_EQUAL(c->consent_command, "");
	CU_ASSERT_EQUAL(c->consent_interval_ms, 5000);
	CU_ASSERT_EQUAL(c->log_syslog, 0);
	CU_ASSERT_EQUAL(c->log_level, LOG_LVL_INFO);

	CU_ASSERT_EQUAL(c->nservices, 3);
	s = agent_config_service_by_name(c, "ssh");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->port, 22);
	CU_ASSERT_STRING_EQUAL(s->target_host, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(s->target_port, "22");
	CU_ASSERT_EQUAL(s->builtin, 0);
	s = agent_config_service_by_port(c, 502);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s->name, "plc");
	CU_ASSERT_STRING_EQUAL(s->target_host, "fd00::20");
	CU_ASSERT_STRING_EQUAL(s->target_port, "502");
	s = agent_config_service_by_name(c, "control");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(s->builtin, 1);
	CU_ASSERT_EQUAL(s->port, 7000);
	CU_ASSERT_PTR_NULL(agent_config_service_by_name(c, "hmi"));
	CU_ASSERT_PTR_NULL(agent_config_service_by_port(c, 80));
	fx_done(&f);
}

static void
test_every_option(void)
{
	struct fx f;
	const struct agent_config *c;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(write_file(f.dir, "proxy.auth", 0600) == 0);
	CU_ASSERT_EQUAL(fx_load(&f,
	    "log_level = \"debug\"\n"
	    "syslog = true\n"
	    "connect_timeout = \"5s\"\n"
	    "tcp_user_timeout = \"0\"\n"
	    "shutdown_timeout = \"2m\"\n"
	    "ssh {\n"
	    "\thost_key_fingerprint = "
	    "\"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n"
	    "\tkeepalive_interval = \"30s\"\n"
	    "\tkeepalive_count = 5\n"
	    "}\n"
	    "reconnect {\n\tinitial = \"500ms\"\n\tmax = \"5m\"\n"
	    "\tjitter = 50\n}\n"
	    "proxy {\n\thost = \"proxy.plant.local\"\n\tport = 8080\n"
	    "\tauth_file = \"@/proxy.auth\"\n}\n"
	    "limits {\n\tmax_channels = 8\n\tchannel_buffer = \"1M\"\n"
	    "\ttarget_connect_timeout = \"3s\"\n}\n"
	    "consent {\n\tmode = \"connect\"\n"
	    "\tcommand = \"/usr/local/bin/maint-switch\"\n"
	    "\tinterval = \"1s\"\n}\n"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.cfg);
	c = f.cfg;
	CU_ASSERT_EQUAL(c->log_level, LOG_LVL_DEBUG);
	CU_ASSERT_EQUAL(c->log_syslog, 1);
	CU_ASSERT_EQUAL(c->connect_timeout_ms, 5000);
	CU_ASSERT_EQUAL(c->tcp_user_timeout_ms, 0);
	CU_ASSERT_EQUAL(c->shutdown_timeout_ms, 120000);
	CU_ASSERT_STRING_EQUAL(c->ssh_host_key_fp,
	    "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");
	CU_ASSERT_EQUAL(c->keepalive_interval_ms, 30000);
	CU_ASSERT_EQUAL(c->keepalive_count, 5);
	CU_ASSERT_EQUAL(c->backoff_initial_ms, 500);
	CU_ASSERT_EQUAL(c->backoff_max_ms, 300000);
	CU_ASSERT_EQUAL(c->backoff_jitter_pct, 50);
	CU_ASSERT_STRING_EQUAL(c->proxy_host, "proxy.plant.local");
	CU_ASSERT_STRING_EQUAL(c->proxy_port, "8080");
	CU_ASSERT_TRUE(strstr(c->proxy_auth_file, "/proxy.auth") != NULL);
	CU_ASSERT_EQUAL(c->max_channels, 8);
	CU_ASSERT_EQUAL(c->channel_buffer, 1024 * 1024);
	CU_ASSERT_EQUAL(c->target_connect_timeout_ms, 3000);
	CU_ASSERT_EQUAL(c->consent_mode, CONSENT_CONNECT);
	CU_ASSERT_STRING_EQUAL(c->consent_command,
	    "/usr/local/bin/maint-switch");
	CU_ASSERT_EQUAL(c->consent_interval_ms, 1000);

	/* min_version 1.2 */
	CU_ASSERT_EQUAL(fx_load_only(&f,
	    "relays = {\"r:1\"}\ntls {\n\tca = \"@/ca.pem\"\n"
	    "\tcert = \"@/agent.pem\"\n\tkey = \"@/agent.key\"\n"
	    "\tmin_version = \"1.2\"\n\tserver_name = \"relay.plant\"\n}\n"
	    "service control {\n\tport = 7000\n}\n"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.cfg);
	CU_ASSERT_EQUAL(f.cfg->tls_min_version, TLS1_2_VERSION);
	CU_ASSERT_STRING_EQUAL(f.cfg->tls_server_name, "relay.plant");
	CU_ASSERT_EQUAL(f.cfg->nservices, 1);
	fx_done(&f);
}

static void
test_bad_ports(void)
{
	struct fx f;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	EXPECT_ONE(&f, "service hmi {\n\tport = 0\n"
	    "\ttarget = \"10.0.0.5:80\"\n}\n",
	    NAME ":19: service hmi: port:", "0 is not in 1..65535");
	EXPECT_ONE(&f, "service hmi {\n\ttarget = \"10.0.0.5:80\"\n"
	    "\tport = 70000\n}\n",
	    NAME ":20: service hmi: port:", "70000 is not in 1..65535");
	EXPECT_ONE(&f, "proxy {\n\thost = \"p\"\n\tport = 0\n}\n",
	    NAME ":20: proxy: port:", "0 is not in 1..65535");
	EXPECT_ONE(&f, "service hmi {\n\ttarget = \"10.0.0.5:80\"\n}\n",
	    NAME ":", "service hmi: port: required");
	fx_done(&f);
}

static void
test_service_names_and_ports(void)
{
	struct fx f;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	/* libconfuse itself refuses the second title and stops. */
	CU_ASSERT_EQUAL(fx_load(&f, "service ssh {\n\tport = 2222\n"
	    "\ttarget = \"10.0.0.1:22\"\n}\n"), RT_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(f.cfg);
	CU_ASSERT_TRUE(has_err(&f, NAME ":18:", "ssh"));

	/* Duplicate ports: reported at the section's closing line. */
	EXPECT_ONE(&f, "service ssh2 {\n\tport = 22\n"
	    "\ttarget = \"10.0.0.1:22\"\n}\n",
	    NAME ":21: service ssh2:", "port 22 already used by service ssh");

	EXPECT_ONE(&f, "service \"bad name\" {\n\tport = 80\n"
	    "\ttarget = \"10.0.0.1:80\"\n}\n",
	    NAME ":21: service bad name:", "invalid name");
	EXPECT_ONE(&f, "service -x {\n\tport = 80\n"
	    "\ttarget = \"10.0.0.1:80\"\n}\n",
	    NAME ":21: service -x:", "invalid name");

	/* Targets */
	EXPECT_ONE(&f, "service hmi {\n\tport = 80\n"
	    "\ttarget = \"10.0.0.5\"\n}\n",
	    NAME ":20: service hmi: target:", "not HOST:PORT");
	EXPECT_ONE(&f, "service hmi {\n\tport = 80\n"
	    "\ttarget = \"fd00::5:80\"\n}\n",
	    NAME ":20: service hmi: target:", "not HOST:PORT");
	EXPECT_ONE(&f, "service hmi {\n\tport = 80\n"
	    "\ttarget = \"10.0.0.5:0\"\n}\n",
	    NAME ":20: service hmi: target:", "not HOST:PORT");
	EXPECT_ONE(&f, "service hmi {\n\tport = 80\n}\n",
	    NAME ":", "service hmi: target: required");
	EXPECT_ONE(&f, "service shell {\n\tport = 80\n"
	    "\ttarget = \"10.0.0.5:80\"\n}\n",
	    NAME ":", "service shell: target: not allowed");

	/* shell without a target is a builtin, offered only when enabled */
	EXPECT_ONE(&f, "service shell {\n\tport = 2200\n}\n",
	    NAME ":", "shell.enable is false");
	CU_ASSERT_EQUAL(fx_load(&f, "service shell {\n\tport = 2200\n}\n"
	    "shell {\n\tenable = true\n}\n"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.cfg);
	CU_ASSERT_EQUAL(agent_config_service_by_name(f.cfg, "shell")->builtin,
	    1);
	fx_done(&f);
}

static void
test_too_many_services(void)
{
	struct fx f;
	char extra[4096];
	size_t o = 0;
	int i;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	/* BASE has 3; add 30 more for 33. */
	for (i = 0; i < 30; i++)
		o += (size_t)snprintf(extra + o, sizeof(extra) - o,
		    "service s%d {\n\tport = %d\n\ttarget = \"h:%d\"\n}\n",
		    i, 1000 + i, 1000 + i);
	CU_ASSERT_EQUAL(fx_load(&f, extra), RT_ERR_CONFIG);
	CU_ASSERT_TRUE(has_err(&f, NAME ":", "more than 32 services"));
	fx_done(&f);
}

/* No service at all: refused at -t time, not a reconnect loop later. */
static void
test_no_services(void)
{
	struct fx f;
	static const char t[] = "relays = {\"r:443\"}\ntls {\n"
	    "\tca = \"@/ca.pem\"\n\tcert = \"@/agent.pem\"\n"
	    "\tkey = \"@/agent.key\"\n}\n";

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_EQUAL(fx_load_only(&f, t), RT_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(f.cfg);
	CU_ASSERT_EQUAL(f.errs.n, 1);
	CU_ASSERT_TRUE(has_err(&f, NAME ": service:", "none configured"));
	fx_done(&f);
}

static void
test_relays(void)
{
	struct fx f;
	static const char tls[] = "tls {\n\tca = \"@/ca.pem\"\n"
	    "\tcert = \"@/agent.pem\"\n\tkey = \"@/agent.key\"\n}\n"
	    "service control {\n\tport = 7000\n}\n";
	char t[1024];

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	snprintf(t, sizeof(t), "relays = {}\n%s", tls);
	CU_ASSERT_EQUAL(fx_load_only(&f, t), RT_ERR_CONFIG);
	CU_ASSERT_EQUAL(f.errs.n, 1);
	CU_ASSERT_TRUE(has_err(&f, NAME ": relays:", "at least one"));

	CU_ASSERT_EQUAL(fx_load_only(&f, tls), RT_ERR_CONFIG);
	CU_ASSERT_TRUE(has_err(&f, NAME ": relays:", "at least one"));

	snprintf(t, sizeof(t), "relays = {\"ok:1\", \"nocolon\", "
	    "\"2001:db8::1:443\", \"[zz]:1\", \"h:99999\"}\n%s", tls);
	CU_ASSERT_EQUAL(fx_load_only(&f, t), RT_ERR_CONFIG);
	CU_ASSERT_EQUAL(f.errs.n, 4);
	CU_ASSERT_TRUE(has_err(&f, NAME ": relays:", "\"nocolon\""));
	CU_ASSERT_TRUE(has_err(&f, NAME ": relays:", "\"2001:db8::1:443\""));
	CU_ASSERT_TRUE(has_err(&f, NAME ": relays:", "\"[zz]:1\""));
	CU_ASSERT_TRUE(has_err(&f, NAME ": relays:", "\"h:99999\""));

	snprintf(t, sizeof(t), "relays = {\"a:1\", \"b:1\", \"c:1\", \"d:1\", "
	    "\"e:1\", \"f:1\", \"g:1\", \"h:1\", \"i:1\"}\n%s", tls);
	CU_ASSERT_EQUAL(fx_load_only(&f, t), RT_ERR_CONFIG);
	CU_ASSERT_TRUE(has_err(&f, NAME ": relays:", "at most 8"));
	fx_done(&f);
}

static void
test_value_errors(void)
{
	struct fx f;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	EXPECT_ONE(&f, "tls {\n\tmin_version = \"1.1\"\n}\n",
	    NAME ":19: tls: min_version:", "\"1.1\"");
	EXPECT_ONE(&f, "ssh {\n\thost_key_fingerprint = \"SHA256:abc\"\n}\n",
	    NAME ":19: ssh: host_key_fingerprint:", "43 base64");
	EXPECT_ONE(&f, "ssh {\n\thost_key_fingerprint = "
	    "\"MD5:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n}\n",
	    NAME ":19: ssh: host_key_fingerprint:", "43 base64");
	EXPECT_ONE(&f, "reconnect {\n\tinitial = \"2m\"\n\tmax = \"1m\"\n}\n",
	    NAME ":21: reconnect:", "initial (2m) is longer than max (1m)");
	EXPECT_ONE(&f, "reconnect {\n\tjitter = 51\n}\n",
	    NAME ":19: reconnect: jitter:", "51 is not in 0..50");
	EXPECT_ONE(&f, "consent {\n\tmode = \"sessions\"\n}\n",
	    NAME ":20: consent:", "needs exactly one of file or command");
	EXPECT_ONE(&f, "consent {\n\tmode = \"connect\"\n"
	    "\tfile = \"/run/x\"\n\tcommand = \"/bin/true\"\n}\n",
	    NAME ":22: consent:", "needs exactly one of file or command");
	EXPECT_ONE(&f, "consent {\n\tmode = \"always\"\n}\n",
	    NAME ":19: consent: mode:", "\"always\"");
	EXPECT_ONE(&f, "limits {\n\tchannel_buffer = \"8k\"\n}\n",
	    NAME ":19: limits: channel_buffer:", "16k..16M");
	EXPECT_ONE(&f, "limits {\n\tchannel_buffer = \"lots\"\n}\n",
	    NAME ":19: limits: channel_buffer:", "not a size");
	EXPECT_ONE(&f, "connect_timeout = \"soon\"\n",
	    NAME ":18: connect_timeout:", "not a duration");
	EXPECT_ONE(&f, "shutdown_timeout = \"0s\"\n",
	    NAME ":18: shutdown_timeout:", "longer than 0");
	EXPECT_ONE(&f, "log_level = \"loud\"\n",
	    NAME ":18: log_level:", "\"loud\"");
	EXPECT_ONE(&f, "tls {\n\tca = \"ca.pem\"\n}\n",
	    NAME ":19: tls: ca:", "not an absolute path");
	EXPECT_ONE(&f, "tls {\n\tca = \"@/nonexistent.pem\"\n}\n",
	    NAME ":20: tls:", "No such file");
	fx_done(&f);
}

static void
test_syntax_and_typo(void)
{
	struct fx f;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_EQUAL(fx_load(&f, "limits {\n\tmax_chanels = 3\n}\n"),
	    RT_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(f.cfg);
	CU_ASSERT_TRUE(has_err(&f, NAME ":19:", "max_chanels"));

	CU_ASSERT_EQUAL(fx_load(&f, "relayz = {\"a:1\"}\n"), RT_ERR_CONFIG);
	CU_ASSERT_TRUE(has_err(&f, NAME ":18:", "relayz"));

	CU_ASSERT_EQUAL(fx_load(&f, "syslog = true\nlimits {\n"
	    "\tmax_channels = = 3\n}\n"), RT_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(f.cfg);
	CU_ASSERT_TRUE(has_err(&f, NAME ":20:", ""));

	CU_ASSERT_EQUAL(fx_load(&f, "}\n"), RT_ERR_CONFIG);
	CU_ASSERT_TRUE(has_err(&f, NAME ":18:", ""));
	fx_done(&f);
}

/* Every problem in one file is reported, not only the first. */
static void
test_collects_all(void)
{
	struct fx f;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_EQUAL(fx_load_only(&f,
	    "relays = {}\n"				/* 1 */
	    "log_level = \"chatty\"\n"			/* 2 */
	    "tls {\n"					/* 3 */
	    "\tca = \"@/ca.pem\"\n"			/* 4 */
	    "\tmin_version = \"1.0\"\n"			/* 5 */
	    "}\n"					/* 6 */
	    "service a {\n\tport = 0\n\ttarget = \"x\"\n}\n"), /* 7-10 */
	    RT_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(f.cfg);
	CU_ASSERT_TRUE(has_err(&f, NAME ": relays:", "at least one"));
	CU_ASSERT_TRUE(has_err(&f, NAME ":2: log_level:", "chatty"));
	CU_ASSERT_TRUE(has_err(&f, NAME ":5: tls: min_version:", "1.0"));
	CU_ASSERT_TRUE(has_err(&f, NAME ":6: tls:", "cert: required"));
	CU_ASSERT_TRUE(has_err(&f, NAME ":6: tls:", "key: required"));
	CU_ASSERT_TRUE(has_err(&f, NAME ":8: service a: port:", "0 is not"));
	CU_ASSERT_TRUE(has_err(&f, NAME ":9: service a: target:", "\"x\""));
	CU_ASSERT_EQUAL(f.errs.n, 7);
	fx_done(&f);
}

static void
test_key_perms(void)
{
	struct fx f;
	char key[512];

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	snprintf(key, sizeof(key), "%s/agent.key", f.dir);
	CU_ASSERT_FATAL(chmod(key, 0644) == 0);
	CU_ASSERT_EQUAL(fx_load(&f, ""), RT_ERR_PERM);
	CU_ASSERT_PTR_NULL(f.cfg);
	CU_ASSERT_EQUAL(f.errs.n, 1);
	CU_ASSERT_TRUE(has_err(&f, NAME ":6: tls: key:", "0644"));
	CU_ASSERT_TRUE(has_err(&f, NAME ":6: tls: key:", key));

	CU_ASSERT_FATAL(chmod(key, 0600) == 0);
	CU_ASSERT_EQUAL(fx_load(&f, ""), 0);
	CU_ASSERT_PTR_NOT_NULL(f.cfg);

	/* The proxy's credentials are held to the same rule. */
	CU_ASSERT_FATAL(write_file(f.dir, "proxy.auth", 0640) == 0);
	CU_ASSERT_EQUAL(fx_load(&f, "proxy {\n\thost = \"p\"\n"
	    "\tauth_file = \"@/proxy.auth\"\n}\n"), RT_ERR_PERM);
	CU_ASSERT_TRUE(has_err(&f, NAME ":21: proxy: auth_file:", "0640"));
	fx_done(&f);
}

static void
test_diff(void)
{
	struct fx f;
	struct agent_config *a;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(fx_load(&f, "") == 0);
	a = f.cfg;
	f.cfg = NULL;

	/* Identical */
	CU_ASSERT_FATAL(fx_load(&f, "") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), 0);
	CU_ASSERT_TRUE(agent_config_service_same(a, f.cfg, "ssh"));
	CU_ASSERT_TRUE(agent_config_service_same(a, f.cfg, "control"));

	/* One service's target changes, one is added */
	CU_ASSERT_FATAL(fx_load(&f,
	    "service hmi {\n\tport = 80\n\ttarget = \"10.0.0.5:80\"\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_SERVICES);
	CU_ASSERT_TRUE(agent_config_service_same(a, f.cfg, "ssh"));
	CU_ASSERT_FALSE(agent_config_service_same(a, f.cfg, "hmi"));

	fx_text(&f, BASE);
	{
		char *p = strstr(f.text, "127.0.0.1:22");

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		memcpy(p, "127.0.0.2", 9);
	}
	agent_config_free(f.cfg);
	f.cfg = NULL;
	CU_ASSERT_FATAL(agent_config_load_buf(f.text, NAME, &f.cfg,
	    &f.errs) == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_SERVICES);
	CU_ASSERT_FALSE(agent_config_service_same(a, f.cfg, "ssh"));
	CU_ASSERT_TRUE(agent_config_service_same(a, f.cfg, "plc"));
	CU_ASSERT_FALSE(agent_config_service_same(a, f.cfg, "nosuch"));

	/* Relays: order matters (it is the dial order) */
	fx_text(&f, BASE);
	{
		char *p = strstr(f.text, "relay.example.com");

		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		p[0] = 'R';
	}
	agent_config_free(f.cfg);
	f.cfg = NULL;
	CU_ASSERT_FATAL(agent_config_load_buf(f.text, NAME, &f.cfg,
	    &f.errs) == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_UPLINK);

	/* The other groups, one at a time */
	CU_ASSERT_FATAL(fx_load(&f, "consent {\n\tmode = \"sessions\"\n"
	    "\tfile = \"/run/revtun/consent\"\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_CONSENT);
	CU_ASSERT_FATAL(fx_load(&f, "limits {\n\tmax_channels = 9\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_LIMITS);
	CU_ASSERT_FATAL(fx_load(&f, "log_level = \"debug\"\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_LOG);
	CU_ASSERT_FATAL(fx_load(&f, "ssh {\n\tkeepalive_count = 4\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_UPLINK);
	CU_ASSERT_FATAL(fx_load(&f, "tls {\n\tmin_version = \"1.2\"\n}\n")
	    == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_UPLINK);
	CU_ASSERT_EQUAL(agent_config_diff(f.cfg, f.cfg), 0);

	agent_config_free(a);
	fx_done(&f);
}

/* conf/agent.conf parses once its /etc/revtun/ files exist. */
static void
test_example_conf(void)
{
	struct fx f;
	char path[1024], *text = NULL, *tmpl = NULL;
	const char *src = getenv("srcdir");
	FILE *fp;
	long len;
	size_t i, o = 0;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	if (src != NULL)
		snprintf(path, sizeof(path), "%s/conf/agent.conf", src);
	else {
		/* Run by hand: find the source tree from this file's path. */
		const char *me = __FILE__, *t = strstr(me, "tests/unit/");
		int n = t != NULL ? (int)(t - me) : 0;

		snprintf(path, sizeof(path), "%.*sconf/agent.conf", n, me);
	}
	fp = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL(fp);
	if (fp == NULL) {
		fprintf(stderr, "cannot open %s\n", path);
		goto out;
	}
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	CU_ASSERT_FATAL(len > 0 && len < 65536);
	text = calloc(1, (size_t)len + 1);
	tmpl = calloc(1, (size_t)len * 2 + 1);
	CU_ASSERT_FATAL(text != NULL && tmpl != NULL);
	CU_ASSERT_FATAL(fread(text, 1, (size_t)len, fp) == (size_t)len);
	fclose(fp);

	/* "/etc/revtun/x" -> "@/x" so fx_text() points it at our dir. */
	for (i = 0; text[i] != '\0'; ) {
		if (strncmp(text + i, "/etc/revtun/", 12) == 0) {
			tmpl[o++] = '@';
			tmpl[o++] = '/';
			i += 12;
		} else
			tmpl[o++] = text[i++];
	}
	CU_ASSERT_FATAL(write_file(f.dir, "relay-ca.pem", 0644) == 0);
	CU_ASSERT_EQUAL(fx_load_only(&f, tmpl), 0);
	CU_ASSERT_EQUAL(f.errs.n, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.cfg);
	CU_ASSERT_PTR_NOT_NULL(agent_config_service_by_name(f.cfg, "ssh"));
	CU_ASSERT_PTR_NOT_NULL(agent_config_service_by_name(f.cfg, "hmi"));
	CU_ASSERT_PTR_NOT_NULL(agent_config_service_by_port(f.cfg, 502));
	CU_ASSERT_EQUAL(f.cfg->consent_mode, CONSENT_OFF);
 out:
	free(text);
	free(tmpl);
	fx_done(&f);
}

static void
test_load_file(void)
{
	struct fx f;
	char path[512];
	FILE *fp;
	int r;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	fx_text(&f, BASE);
	snprintf(path, sizeof(path), "%s/agent.conf", f.dir);
	CU_ASSERT_FATAL((fp = fopen(path, "w")) != NULL);
	fputs(f.text, fp);
	fputs("syslog = yes\nlog_level = \"nope\"\n", fp);
	fclose(fp);
	r = agent_config_load(path, &f.cfg, &f.errs);
	CU_ASSERT_EQUAL(r, RT_ERR_CONFIG);
	CU_ASSERT_PTR_NULL(f.cfg);
	{
		char want[600];

		snprintf(want, sizeof(want), "%s:19: log_level:", path);
		CU_ASSERT_TRUE(has_err(&f, want, "nope"));
	}
	snprintf(path, sizeof(path), "%s/missing.conf", f.dir);
	CU_ASSERT_EQUAL(agent_config_load(path, &f.cfg, &f.errs), RT_ERR_SYS);
	CU_ASSERT_TRUE(has_err(&f, path, "No such file"));
	agent_config_free(NULL);
	fx_done(&f);
}

/* The mqtt section: defaults (disabled, nothing checked on disk). */
static void
test_mqtt_defaults(void)
{
	struct fx f;
	const struct agent_mqtt_config *m;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_EQUAL_FATAL(fx_load(&f, ""), 0);
	m = &f.cfg->mqtt;
	CU_ASSERT_EQUAL(m->enable, 0);
	CU_ASSERT_EQUAL_FATAL(m->nbrokers, 1);
	CU_ASSERT_STRING_EQUAL(m->broker_host[0], "broker.example.com");
	CU_ASSERT_STRING_EQUAL(m->broker_port[0], "8883");
	CU_ASSERT_STRING_EQUAL(m->topic_prefix, "revtun");
	CU_ASSERT_STRING_EQUAL(m->client_id, "");
	CU_ASSERT_STRING_EQUAL(m->username, "");
	CU_ASSERT_STRING_EQUAL(m->password_file, "");
	CU_ASSERT_STRING_EQUAL(m->tls_ca, "");
	CU_ASSERT_STRING_EQUAL(m->tls_cert, "");
	CU_ASSERT_STRING_EQUAL(m->tls_key, "");
	CU_ASSERT_EQUAL(m->tls_min_version, TLS1_2_VERSION);
	CU_ASSERT_STRING_EQUAL(m->tls_server_name, "");
	CU_ASSERT_EQUAL(m->keepalive_ms, 30000);
	CU_ASSERT_EQUAL(m->clean_session, 0);
	CU_ASSERT_EQUAL(m->qos, 1);
	CU_ASSERT_EQUAL(m->inflight, 20);
	CU_ASSERT_EQUAL(m->queue_max_messages, 10000);
	CU_ASSERT_EQUAL(m->queue_max_bytes, 4 * 1024 * 1024);
	CU_ASSERT_STRING_EQUAL(m->spool_dir, "");
	CU_ASSERT_EQUAL(m->spool_max_bytes, 64 * 1024 * 1024);
	CU_ASSERT_EQUAL(m->connect_timeout_ms, 20000);
	CU_ASSERT_EQUAL(m->backoff_max_ms, 60000);
	/* Disabled: paths are only checked for syntax, not on disk. */
	CU_ASSERT_EQUAL(fx_load(&f, "mqtt {\n\ttls {\n\t\tca = "
	    "\"/nonexistent/ca.pem\"\n\t}\n}\n"), 0);
	fx_done(&f);
}

static void
test_mqtt_every_option(void)
{
	struct fx f;
	const struct agent_mqtt_config *m;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(write_file(f.dir, "mqtt.pass", 0600) == 0);
	CU_ASSERT_EQUAL_FATAL(fx_load(&f,
	    "mqtt {\n"
	    "\tenable = true\n"
	    "\tbrokers = {\"mqtt1.plant:8883\", \"[fd00::7]:1883\"}\n"
	    "\ttopic_prefix = \"plant/a\"\n"
	    "\tclient_id = \"gw17-telemetry\"\n"
	    "\tusername = \"gw-17\"\n"
	    "\tpassword_file = \"@/mqtt.pass\"\n"
	    "\ttls {\n\t\tca = \"@/ca.pem\"\n\t\tcert = \"@/agent.pem\"\n"
	    "\t\tkey = \"@/agent.key\"\n\t\tmin_version = \"1.3\"\n"
	    "\t\tserver_name = \"mqtt.plant\"\n\t}\n"
	    "\tkeepalive = \"1m\"\n"
	    "\tclean_session = true\n"
	    "\tqos = 0\n"
	    "\tinflight = 100\n"
	    "\tqueue_max_messages = 500\n"
	    "\tqueue_max_bytes = \"1M\"\n"
	    "\tspool_dir = \"/var/spool/revtun\"\n"
	    "\tspool_max_bytes = \"16M\"\n"
	    "\tconnect_timeout = \"5s\"\n"
	    "\tbackoff_max = \"2m\"\n"
	    "}\n"), 0);
	m = &f.cfg->mqtt;
	CU_ASSERT_EQUAL(m->enable, 1);
	CU_ASSERT_EQUAL_FATAL(m->nbrokers, 2);
	CU_ASSERT_STRING_EQUAL(m->broker_host[0], "mqtt1.plant");
	CU_ASSERT_STRING_EQUAL(m->broker_host[1], "fd00::7");
	CU_ASSERT_STRING_EQUAL(m->broker_port[1], "1883");
	CU_ASSERT_STRING_EQUAL(m->topic_prefix, "plant/a");
	CU_ASSERT_STRING_EQUAL(m->client_id, "gw17-telemetry");
	CU_ASSERT_STRING_EQUAL(m->username, "gw-17");
	CU_ASSERT_TRUE(strstr(m->password_file, "/mqtt.pass") != NULL);
	CU_ASSERT_TRUE(strstr(m->tls_key, "/agent.key") != NULL);
	CU_ASSERT_EQUAL(m->tls_min_version, TLS1_3_VERSION);
	CU_ASSERT_STRING_EQUAL(m->tls_server_name, "mqtt.plant");
	CU_ASSERT_EQUAL(m->keepalive_ms, 60000);
	CU_ASSERT_EQUAL(m->clean_session, 1);
	CU_ASSERT_EQUAL(m->qos, 0);
	CU_ASSERT_EQUAL(m->inflight, 100);
	CU_ASSERT_EQUAL(m->queue_max_messages, 500);
	CU_ASSERT_EQUAL(m->queue_max_bytes, 1024 * 1024);
	CU_ASSERT_STRING_EQUAL(m->spool_dir, "/var/spool/revtun");
	CU_ASSERT_EQUAL(m->spool_max_bytes, 16 * 1024 * 1024);
	CU_ASSERT_EQUAL(m->connect_timeout_ms, 5000);
	CU_ASSERT_EQUAL(m->backoff_max_ms, 120000);
	fx_done(&f);
}

static void
test_mqtt_errors(void)
{
	struct fx f;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(write_file(f.dir, "open.pass", 0644) == 0);
	CU_ASSERT_FATAL(write_file(f.dir, "ok.pass", 0600) == 0);
	EXPECT_ONE(&f, "mqtt {\n\tqos = 2\n}\n",
	    NAME ":19: mqtt: qos:", "2 is not in 0..1");
	EXPECT_ONE(&f, "mqtt {\n\tinflight = 0\n}\n",
	    NAME ":19: mqtt: inflight:", "0 is not in 1..1024");
	EXPECT_ONE(&f, "mqtt {\n\tqueue_max_messages = 0\n}\n",
	    NAME ":19: mqtt: queue_max_messages:", "not in 1..1000000");
	EXPECT_ONE(&f, "mqtt {\n\tkeepalive = \"1500ms\"\n}\n",
	    NAME ":19: mqtt: keepalive:", "whole seconds");
	EXPECT_ONE(&f, "mqtt {\n\tkeepalive = \"19h\"\n}\n",
	    NAME ":19: mqtt: keepalive:", "0..65535 s");
	EXPECT_ONE(&f, "mqtt {\n\ttopic_prefix = \"plant/#\"\n}\n",
	    NAME ":19: mqtt: topic_prefix:", "no '+' or '#'");
	EXPECT_ONE(&f, "mqtt {\n\ttopic_prefix = \"plant/\"\n}\n",
	    NAME ":19: mqtt: topic_prefix:", "trailing");
	EXPECT_ONE(&f, "mqtt {\n\tqueue_max_bytes = \"1k\"\n}\n",
	    NAME ":19: mqtt: queue_max_bytes:", "64k..1G");
	EXPECT_ONE(&f, "mqtt {\n\tspool_max_bytes = \"lots\"\n}\n",
	    NAME ":19: mqtt: spool_max_bytes:", "not a size");
	EXPECT_ONE(&f, "mqtt {\n\tspool_dir = \"spool\"\n}\n",
	    NAME ":19: mqtt: spool_dir:", "not an absolute path");
	EXPECT_ONE(&f, "mqtt {\n\tconnect_timeout = \"0s\"\n}\n",
	    NAME ":19: mqtt: connect_timeout:", "longer than 0");
	EXPECT_ONE(&f, "mqtt {\n\ttls {\n\t\tmin_version = \"1.0\"\n\t}\n}\n",
	    NAME ":20: tls: min_version:", "\"1.0\"");
	EXPECT_ONE(&f, "mqtt {\n\tbrokers = {\"broker\"}\n}\n",
	    NAME ":20: mqtt:", "\"broker\" is not HOST:PORT");
	EXPECT_ONE(&f, "mqtt {\n\tbrokers = {}\n}\n",
	    NAME ":20: mqtt:", "at least one");
	EXPECT_ONE(&f, "mqtt {\n\tenable = true\n}\n",
	    NAME ":20: mqtt:", "ca: required when enable = true");
	EXPECT_ONE(&f, "mqtt {\n\tenable = true\n\ttls {\n\t\tca = "
	    "\"@/ca.pem\"\n\t\tcert = \"@/agent.pem\"\n\t}\n}\n",
	    NAME ":24: mqtt:", "cert and key go together");
	EXPECT_ONE(&f, "mqtt {\n\tenable = true\n\tpassword_file = "
	    "\"@/ok.pass\"\n\ttls {\n\t\tca = \"@/ca.pem\"\n\t}\n}\n",
	    NAME ":24: mqtt:", "username is not");
	/* A password file group or others may read: refused like a key. */
	CU_ASSERT_EQUAL(fx_load(&f, "mqtt {\n\tenable = true\n\tusername = "
	    "\"gw-17\"\n\tpassword_file = \"@/open.pass\"\n\ttls {\n\t\tca = "
	    "\"@/ca.pem\"\n\t}\n}\n"), RT_ERR_PERM);
	CU_ASSERT_TRUE(has_err(&f, NAME ":25: mqtt:",
	    "readable by group or others"));
	fx_done(&f);
}

static void
test_mqtt_diff(void)
{
	struct fx f;
	struct agent_config *a;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(fx_load(&f, "mqtt {\n\tinflight = 10\n}\n") == 0);
	a = f.cfg;
	f.cfg = NULL;
	CU_ASSERT_FATAL(fx_load(&f, "mqtt {\n\tinflight = 10\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), 0);
	CU_ASSERT_FATAL(fx_load(&f, "mqtt {\n\tinflight = 11\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_MQTT);
	CU_ASSERT_FATAL(fx_load(&f, "mqtt {\n\tinflight = 10\n\tbrokers = "
	    "{\"broker.example.com:8884\"}\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_MQTT);
	CU_ASSERT_TRUE(agent_config_diff(a, NULL) & AGENT_DIFF_MQTT);
	agent_config_free(a);
	fx_done(&f);
}

/* telemetry { }, uplink_mode, mqtt.cmd_key_file: defaults. */
static void
test_telemetry_defaults(void)
{
	struct fx f;
	const struct agent_telemetry_config *t;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_EQUAL_FATAL(fx_load(&f, ""), 0);
	t = &f.cfg->telemetry;
	CU_ASSERT_EQUAL(t->interval_ms, 60000);
	CU_ASSERT_EQUAL_FATAL(t->ndisks, 1);
	CU_ASSERT_STRING_EQUAL(t->disks[0], "/");
	CU_ASSERT_STRING_EQUAL(t->hmac_key_file, "");
	CU_ASSERT_STRING_EQUAL(t->metrics_file, "");
	CU_ASSERT_EQUAL(t->metrics_file_interval_ms, 60000);
	CU_ASSERT_STRING_EQUAL(t->metrics_command, "");
	CU_ASSERT_EQUAL(t->metrics_command_interval_ms, 60000);
	CU_ASSERT_EQUAL(t->metrics_command_timeout_ms, 10000);
	CU_ASSERT_EQUAL(f.cfg->uplink_mode, UPLINK_ALWAYS);
	CU_ASSERT_EQUAL(f.cfg->on_demand_idle_ms, 600000);
	CU_ASSERT_STRING_EQUAL(f.cfg->mqtt.cmd_key_file, "");
	CU_ASSERT_EQUAL(f.cfg->mqtt.cmd_window_ms, 60000);
	fx_done(&f);
}

/* An mqtt section that may be enabled (CA present). */
#define MQTT_ON(extra)							\
	"mqtt {\n\tenable = true\n\tcmd_key_file = \"@/cmd.key\"\n"	\
	"\ttls {\n\t\tca = \"@/ca.pem\"\n\t}\n" extra "}\n"

static void
test_telemetry_every_option(void)
{
	struct fx f;
	const struct agent_telemetry_config *t;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(write_file(f.dir, "cmd.key", 0600) == 0);
	CU_ASSERT_FATAL(write_file(f.dir, "tm.key", 0600) == 0);
	CU_ASSERT_EQUAL_FATAL(fx_load(&f,
	    "uplink_mode = \"on-demand\"\n"
	    "on_demand_idle = \"90s\"\n"
	    MQTT_ON("\tcmd_window = \"30s\"\n")
	    "telemetry {\n"
	    "\tinterval = \"15s\"\n"
	    "\tdisks = {\"/\", \"/data\"}\n"
	    "\thmac_key_file = \"@/tm.key\"\n"
	    "\tmetrics_file = \"/run/site/metrics\"\n"
	    "\tmetrics_file_interval = \"5s\"\n"
	    "\tmetrics_command = \"/usr/local/bin/plc-metrics --short\"\n"
	    "\tmetrics_command_interval = \"2m\"\n"
	    "\tmetrics_command_timeout = \"3s\"\n"
	    "}\n"), 0);
	t = &f.cfg->telemetry;
	CU_ASSERT_EQUAL(f.cfg->uplink_mode, UPLINK_ON_DEMAND);
	CU_ASSERT_EQUAL(f.cfg->on_demand_idle_ms, 90000);
	CU_ASSERT_TRUE(strstr(f.cfg->mqtt.cmd_key_file, "/cmd.key") != NULL);
	CU_ASSERT_EQUAL(f.cfg->mqtt.cmd_window_ms, 30000);
	CU_ASSERT_EQUAL(t->interval_ms, 15000);
	CU_ASSERT_EQUAL_FATAL(t->ndisks, 2);
	CU_ASSERT_STRING_EQUAL(t->disks[1], "/data");
	CU_ASSERT_TRUE(strstr(t->hmac_key_file, "/tm.key") != NULL);
	CU_ASSERT_STRING_EQUAL(t->metrics_file, "/run/site/metrics");
	CU_ASSERT_EQUAL(t->metrics_file_interval_ms, 5000);
	CU_ASSERT_STRING_EQUAL(t->metrics_command,
	    "/usr/local/bin/plc-metrics --short");
	CU_ASSERT_EQUAL(t->metrics_command_interval_ms, 120000);
	CU_ASSERT_EQUAL(t->metrics_command_timeout_ms, 3000);
	fx_done(&f);
}

static void
test_telemetry_errors(void)
{
	struct fx f;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(write_file(f.dir, "cmd.key", 0600) == 0);
	CU_ASSERT_FATAL(write_file(f.dir, "open.key", 0644) == 0);
	EXPECT_ONE(&f, "telemetry {\n\tinterval = \"500ms\"\n}\n",
	    NAME ":19: telemetry: interval:", "between 1s and 24h");
	EXPECT_ONE(&f, "telemetry {\n\tmetrics_command_timeout = \"x\"\n}\n",
	    NAME ":19: telemetry: metrics_command_timeout:", "not a duration");
	EXPECT_ONE(&f, "telemetry {\n\tmetrics_file = \"m.txt\"\n}\n",
	    NAME ":19: telemetry: metrics_file:", "not an absolute path");
	EXPECT_ONE(&f, "telemetry {\n\tdisks = {\"/\", \"data\"}\n}\n",
	    NAME ":20: telemetry:", "\"data\" is not an absolute path");
	EXPECT_ONE(&f, "telemetry {\n\tdisks = {\"/a\", \"/b\", \"/c\", "
	    "\"/d\", \"/e\", \"/f\", \"/g\", \"/h\", \"/i\"}\n}\n",
	    NAME ":20: telemetry:", "9 given, at most 8");
	EXPECT_ONE(&f, "uplink_mode = \"sometimes\"\n",
	    NAME ":18:", "uplink_mode: \"sometimes\" is not");
	EXPECT_ONE(&f, "on_demand_idle = \"0s\"\n",
	    NAME ":18:", "on_demand_idle:");
	EXPECT_ONE(&f, "mqtt {\n\tcmd_key_file = \"cmd.key\"\n}\n",
	    NAME ":19: mqtt: cmd_key_file:", "not an absolute path");
	/* On-demand without MQTT, or without a command key: never opens. */
	EXPECT_ONE(&f, "uplink_mode = \"on-demand\"\n",
	    NAME, "needs enable = true and cmd_key_file");
	EXPECT_ONE(&f, "uplink_mode = \"on-demand\"\nmqtt {\n\tenable = "
	    "true\n\ttls {\n\t\tca = \"@/ca.pem\"\n\t}\n}\n",
	    NAME ":24: mqtt:", "needs enable = true and cmd_key_file");
	/* Key files group or others may read: refused like a TLS key. */
	CU_ASSERT_EQUAL(fx_load(&f, MQTT_ON("") "telemetry {\n\t"
	    "hmac_key_file = \"@/open.key\"\n}\n"), RT_ERR_PERM);
	CU_ASSERT_TRUE(has_err(&f, NAME, "readable by group or others"));
	CU_ASSERT_EQUAL(fx_load(&f, "mqtt {\n\tenable = true\n\tcmd_key_file "
	    "= \"@/open.key\"\n\ttls {\n\t\tca = \"@/ca.pem\"\n\t}\n}\n"),
	    RT_ERR_PERM);
	CU_ASSERT_TRUE(has_err(&f, NAME ":24: mqtt:", "cmd_key_file"));
	/* Disabled: the key files are not checked on disk. */
	CU_ASSERT_EQUAL(fx_load(&f, "mqtt {\n\tcmd_key_file = \"@/open.key\""
	    "\n}\ntelemetry {\n\thmac_key_file = \"/nonexistent/k\"\n}\n"), 0);
	fx_done(&f);
}

static void
test_telemetry_diff(void)
{
	struct fx f;
	struct agent_config *a;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_FATAL(fx_load(&f, "telemetry {\n\tinterval = \"10s\"\n}\n")
	    == 0);
	a = f.cfg;
	f.cfg = NULL;
	CU_ASSERT_FATAL(fx_load(&f, "telemetry {\n\tinterval = \"10s\"\n}\n")
	    == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), 0);
	CU_ASSERT_FATAL(fx_load(&f, "telemetry {\n\tinterval = \"11s\"\n}\n")
	    == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_TELEMETRY);
	CU_ASSERT_FATAL(fx_load(&f, "telemetry {\n\tinterval = \"10s\"\n\t"
	    "disks = {\"/\", \"/var\"}\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_TELEMETRY);
	CU_ASSERT_FATAL(fx_load(&f, "telemetry {\n\tinterval = \"10s\"\n}\n"
	    "on_demand_idle = \"1m\"\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_UPLINK_MODE);
	CU_ASSERT_FATAL(fx_load(&f, "telemetry {\n\tinterval = \"10s\"\n}\n"
	    "mqtt {\n\tcmd_window = \"2m\"\n}\n") == 0);
	CU_ASSERT_EQUAL(agent_config_diff(a, f.cfg), AGENT_DIFF_MQTT);
	CU_ASSERT_TRUE(agent_config_diff(a, NULL) & AGENT_DIFF_TELEMETRY);
	CU_ASSERT_TRUE(agent_config_diff(NULL, a) & AGENT_DIFF_UPLINK_MODE);
	agent_config_free(a);
	fx_done(&f);
}

/* user, pid_file; a key owned by `user` is fine; the shell must run as
 * that user. */
static void
test_user(void)
{
	char key[600];
	struct fx f;

	CU_ASSERT_FATAL(fx_init(&f) == 0);
	CU_ASSERT_EQUAL(fx_load(&f, ""), 0);
	CU_ASSERT_STRING_EQUAL(f.cfg->user, "");
	CU_ASSERT_STRING_EQUAL(f.cfg->pid_file, "");
	CU_ASSERT_EQUAL(fx_load(&f, "user = \"nobody\"\n"
	    "pid_file = \"/run/revtun-agent.pid\"\n"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.cfg);
	CU_ASSERT_STRING_EQUAL(f.cfg->user, "nobody");
	CU_ASSERT_STRING_EQUAL(f.cfg->pid_file, "/run/revtun-agent.pid");
	EXPECT_ONE(&f, "user = \"no-such-user-rt\"\n", NAME ":",
	    "no such user");
	EXPECT_ONE(&f, "user = \"root\"\n", NAME ":",
	    "uid 0, which drops nothing");
	EXPECT_ONE(&f, "user = \"a b\"\n", NAME ":18:",
	    "not a user name");
	EXPECT_ONE(&f, "pid_file = \"run/a.pid\"\n", NAME ":18:",
	    "pid_file");
	/* the shell cannot become anyone else after the drop */
	EXPECT_ONE(&f, "user = \"nobody\"\nshell {\n\tenable = true\n}\n",
	    NAME ":", "drops to user \"nobody\" at start");
	CU_ASSERT_EQUAL(fx_load(&f, "user = \"nobody\"\nshell {\n"
	    "\tenable = true\n\tuser = \"nobody\"\n}\n"), 0);
	if (geteuid() == 0) {
		/* checked as root before the drop: the key may be nobody's,
		 * not some third account's */
		snprintf(key, sizeof(key), "%s/agent.key", f.dir);
		CU_ASSERT_FATAL(chown(key, 65534, 65534) == 0);
		CU_ASSERT_EQUAL(fx_load(&f, "user = \"nobody\"\n"), 0);
		CU_ASSERT_EQUAL(fx_load(&f, ""), RT_ERR_PERM);
		CU_ASSERT_TRUE(has_err(&f, NAME ":", "neither root nor"));
	}
	fx_done(&f);
}

int
suite_agent_config(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
		{ "defaults", test_defaults },
		{ "every_option", test_every_option },
		{ "bad_ports", test_bad_ports },
		{ "service_names_and_ports", test_service_names_and_ports },
		{ "too_many_services", test_too_many_services },
		{ "relays", test_relays },
		{ "no_services", test_no_services },
		{ "value_errors", test_value_errors },
		{ "syntax_and_typo", test_syntax_and_typo },
		{ "collects_all", test_collects_all },
		{ "key_perms", test_key_perms },
		{ "user", test_user },
		{ "diff", test_diff },
		{ "example_conf", test_example_conf },
		{ "load_file", test_load_file },
		{ "mqtt_defaults", test_mqtt_defaults },
		{ "mqtt_every_option", test_mqtt_every_option },
		{ "mqtt_errors", test_mqtt_errors },
		{ "mqtt_diff", test_mqtt_diff },
		{ "telemetry_defaults", test_telemetry_defaults },
		{ "telemetry_every_option", test_telemetry_every_option },
		{ "telemetry_errors", test_telemetry_errors },
		{ "telemetry_diff", test_telemetry_diff },
	};
	CU_pSuite s = CU_add_suite("agent_config", NULL, NULL);
	size_t i;

	if (s == NULL)
		return (int)CU_get_error();
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
			return (int)CU_get_error();
	return CUE_SUCCESS;
}
