/*
 * relay_config.c - revtun-relay's configuration (relay_config.h): the
 * libconfuse schema, validation of every value, operators' public keys
 * and the ACL they grant.
 *
 * Flow: schema -> cfgu_parse*() (syntax and types only) -> build(), which
 * checks every value, collects every problem as "FILE:LINE: message" and
 * fills a new struct relay_config. Nothing is half-built on return: either
 * the whole struct or nothing.
 *
 * Line numbers: libconfuse 3.3 keeps no line per option, and a section's
 * line is the line of its closing brace. So every option of the schema
 * has a hidden twin "@name" (an int, 0 = not in the file) and a validator
 * that stores the line the option was read on into it; for a list, the
 * line of its first element. Problems with a value name that line; those
 * with a whole section (an operator without keys) name the section's
 * line. The validators never fail the parse: the semantic checks all run
 * afterwards, so one pass reports every problem.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "acl.h"
#include "err.h"
#include "log.h"
#include "privs.h"
#include "relay_config.h"
#include "util.h"

#define RELAY_KEYS_FILE_MAX (1024 * 1024)
#define RELAY_KEY_LINE_MAX 16384	/* an RSA-16384 line is ~2.8 KiB */
#define RELAY_MAX_KEYS 1024		/* per operator */

/* An option and its line-number twin. */
#define O_STR(n, d)	CFG_STR(n, d, CFGF_NONE), CFG_INT("@" n, 0, CFGF_NONE)
#define O_LIST(n, d)	CFG_STR_LIST(n, d, CFGF_NONE), \
			CFG_INT("@" n, 0, CFGF_NONE)
#define O_INT(n, d)	CFG_INT(n, d, CFGF_NONE), CFG_INT("@" n, 0, CFGF_NONE)
#define O_BOOL(n, d)	CFG_BOOL(n, d, CFGF_NONE), CFG_INT("@" n, 0, CFGF_NONE)

#define HOST_KEY_DEFAULT "{\"" SYSCONFDIR "/revtun/ssh_host_ed25519_key\"}"
#define AUDIT_DEFAULT LOCALSTATEDIR "/log/revtun/audit.log"

struct build {
	const char *name;		/* file name for messages */
	struct cfgu_errors *e;
	unsigned int nerr;		/* problems found by build() */
	int nomem;
};

static void
add_err(struct build *b, const char *file, long line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
add_err(struct build *b, const char *file, long line, const char *fmt, ...)
{
	char msg[CFGU_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		cfgu_errors_add(b->e, "%s:%ld: %s", file, line, msg);
	else
		cfgu_errors_add(b->e, "%s: %s", file, msg);
	b->nerr++;
}

/* Line of option name in sec, or the section's own line if the option
 * was not in the file. */
static long
opt_line(cfg_t *sec, const char *name)
{
	char twin[64];
	long l;

	snprintf(twin, sizeof(twin), "@%s", name);
	l = cfg_getint(sec, twin);
	return l > 0 ? l : sec->line;
}

/* Reports a problem with option name of section sec. */
#define OPT_ERR(b, sec, opt, ...) \
	add_err((b), (b)->name, opt_line((sec), (opt)), __VA_ARGS__)

static int
note_line(cfg_t *cfg, cfg_opt_t *opt)
{
	char twin[64];

	snprintf(twin, sizeof(twin), "@%s", opt->name);
	/* A list calls this once per element and once more at its end:
	 * keep the line of its first element (a new assignment starts
	 * again at one element; "+=" keeps the first line). A scalar set
	 * twice keeps the last. */
	if (!(opt->flags & CFGF_LIST) || opt->nvalues <= 1 ||
	    cfg_getint(cfg, twin) == 0)
		cfg_setint(cfg, twin, cfg->line);
	return 0;
}

static cfg_t *
schema(void)
{
	static cfg_opt_t tls_opts[] = {
		O_STR("ca", ""),
		O_STR("cert", ""),
		O_STR("key", ""),
		O_STR("crl", ""),
		O_STR("min_version", "1.3"),
		CFG_END()
	};
	static cfg_opt_t agents_opts[] = {
		O_LIST("allow", "{}"),
		O_LIST("services", "{\"*\"}"),
		O_INT("max_services", 32),
		O_INT("max_channels", 64),
		O_STR("keepalive_interval", "15s"),
		O_INT("keepalive_count", 3),
		CFG_END()
	};
	static cfg_opt_t limits_opts[] = {
		O_STR("handshake_timeout", "10s"),
		O_INT("max_pending", 256),
		O_INT("max_pending_per_source", 8),
		O_INT("max_connections", 4096),
		O_STR("channel_buffer", "256k"),
		O_INT("operator_max_channels", 32),
		O_STR("operator_idle_timeout", "0"),
		O_STR("operator_channel_idle_timeout", "0"),
		O_INT("operator_max_denials", 10),
		O_STR("operator_denial_window", "10s"),
		O_BOOL("penalties", cfg_true),
		O_LIST("penalty_exempt", "{\"127.0.0.0/8\", \"::1\"}"),
		O_STR("penalty_authfail", "5s"),
		O_STR("penalty_noauth", "1s"),
		O_STR("penalty_guessing", "30s"),
		O_STR("penalty_min", "15s"),
		O_STR("penalty_max", "10m"),
		O_INT("penalty_max_sources", 65536),
		O_STR("auth_timeout", "30s"),
		O_INT("auth_max_tries", 6),
		O_STR("shutdown_timeout", "10s"),
		CFG_END()
	};
	static cfg_opt_t op_opts[] = {
		O_LIST("keys", "{}"),
		O_STR("keys_file", ""),
		O_LIST("allow", "{}"),
		O_LIST("rights", "{}"),
		CFG_END()
	};
	static cfg_opt_t opts[] = {
		O_LIST("listen", "{\"*:443\"}"),
		O_LIST("operator_listen", "{}"),
		O_LIST("host_keys", HOST_KEY_DEFAULT),
		O_STR("user", ""),
		O_STR("pid_file", ""),
		O_STR("log_level", "info"),
		O_BOOL("syslog", cfg_false),
		O_STR("audit_log", AUDIT_DEFAULT),
		O_STR("domain_suffix", ".edge"),
		O_BOOL("acl_allow_glob", cfg_false),
		CFG_SEC("tls", tls_opts, CFGF_NONE),
		CFG_SEC("agents", agents_opts, CFGF_NONE),
		CFG_SEC("limits", limits_opts, CFGF_NONE),
		CFG_SEC("operator", op_opts,
		    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_END()
	};
	char path[128];
	cfg_t *cfg;

	/* cfg_init() copies the tables; they are never written. */
	if ((cfg = cfg_init(opts, CFGF_NONE)) == NULL)
		return NULL;
	for (cfg_opt_t *o = cfg->opts; o->name != NULL; o++) {
		if (o->name[0] == '@')
			continue;
		if (o->type != CFGT_SEC) {
			cfg_set_validate_func(cfg, o->name, note_line);
			continue;
		}
		for (cfg_opt_t *s = o->subopts; s->name != NULL; s++) {
			if (s->name[0] == '@')
				continue;
			snprintf(path, sizeof(path), "%s|%s", o->name, s->name);
			cfg_set_validate_func(cfg, path, note_line);
		}
	}
	return cfg;
}

/* --- values --- */

/* "ADDR:PORT", "[V6]:PORT" or "*:PORT"; addresses are literals. */
static int
valid_listen(const char *s, char *why, size_t len)
{
	char addr[INET6_ADDRSTRLEN + 2];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *port, *end;
	size_t alen;
	long p;

	if (s[0] == '[') {
		if ((end = strstr(s, "]:")) == NULL) {
			snprintf(why, len, "expected [IPV6]:PORT");
			return 0;
		}
		alen = (size_t)(end - s - 1);
		port = end + 2;
		if (alen == 0 || alen >= sizeof(addr)) {
			snprintf(why, len, "bad IPv6 address");
			return 0;
		}
		memcpy(addr, s + 1, alen);
		addr[alen] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			snprintf(why, len, "bad IPv6 address \"%s\"", addr);
			return 0;
		}
	} else {
		if ((end = strrchr(s, ':')) == NULL) {
			snprintf(why, len, "expected ADDR:PORT");
			return 0;
		}
		alen = (size_t)(end - s);
		port = end + 1;
		if (alen == 0 || alen >= sizeof(addr)) {
			snprintf(why, len, "bad address");
			return 0;
		}
		memcpy(addr, s, alen);
		addr[alen] = '\0';
		if (strchr(addr, ':') != NULL) {
			snprintf(why, len, "IPv6 addresses go in brackets: "
			    "[::1]:443");
			return 0;
		}
		if (strcmp(addr, "*") != 0 &&
		    inet_pton(AF_INET, addr, bin) != 1) {
			snprintf(why, len, "bad IPv4 address \"%s\" (use a "
			    "literal address or *)", addr);
			return 0;
		}
	}
	if (strlen(port) == 0 || strlen(port) > 5 ||
	    strspn(port, "0123456789") != strlen(port) ||
	    (p = strtol(port, NULL, 10)) < 1 || p > 65535) {
		snprintf(why, len, "bad port \"%s\" (1-65535)", port);
		return 0;
	}
	return 1;
}

/* Copies list name of sec into a new array; checks count and syntax. */
static char **
get_list(struct build *b, cfg_t *sec, const char *name, size_t *np)
{
	size_t n = cfg_size(sec, name), i;
	char **v;

	*np = 0;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL) {
		b->nomem = 1;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if ((v[i] = strdup(cfg_getnstr(sec, name, i))) == NULL) {
			b->nomem = 1;
			break;
		}
	}
	/* Only the copies made: callers walk v[0 .. *np). */
	*np = i;
	return v;
}

static void
free_list(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char *
get_str(struct build *b, cfg_t *sec, const char *name)
{
	const char *s = cfg_getstr(sec, name);
	char *d;

	if ((d = strdup(s != NULL ? s : "")) == NULL)
		b->nomem = 1;
	return d;
}

static unsigned int
get_uint(struct build *b, cfg_t *sec, const char *sname, const char *name,
	 long min, long max)
{
	long v = cfg_getint(sec, name);

	if (v < min || v > max) {
		OPT_ERR(b, sec, name, "%s%s%s: %ld is out of range (%ld-%ld)",
		    sname, *sname ? "." : "", name, v, min, max);
		return (unsigned int)min;
	}
	return (unsigned int)v;
}

static int64_t
get_duration(struct build *b, cfg_t *sec, const char *sname,
	     const char *name, int64_t min_ms, int64_t max_ms)
{
	const char *s = cfg_getstr(sec, name);
	int64_t ms;

	if (s == NULL || cfgu_parse_duration(s, &ms) < 0) {
		OPT_ERR(b, sec, name, "%s.%s: bad duration \"%s\" (e.g. "
		    "\"250ms\", \"30s\", \"5m\")", sname, name, s ? s : "");
		return min_ms;
	}
	if (ms < min_ms || ms > max_ms) {
		OPT_ERR(b, sec, name, "%s.%s: \"%s\" is out of range "
		    "(%lldms-%lldms)", sname, name, s, (long long)min_ms,
		    (long long)max_ms);
		return min_ms;
	}
	return ms;
}

static void
check_file(struct build *b, cfg_t *sec, const char *label, const char *name,
	   const char *path, int allow_dir)
{
	struct stat st;

	if (path[0] != '/') {
		OPT_ERR(b, sec, name, "%s: \"%s\" is not an absolute path",
		    label, path);
		return;
	}
	if (stat(path, &st) < 0) {
		OPT_ERR(b, sec, name, "%s: %s: %s", label, path,
		    strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode) && !(allow_dir && S_ISDIR(st.st_mode)))
		OPT_ERR(b, sec, name, "%s: %s: not a regular file", label,
		    path);
}

static void
check_key_file(struct build *b, cfg_t *sec, const char *label,
	       const char *name, const char *path, uid_t run_uid)
{
	char why[CFGU_ERRLEN];

	if (path[0] != '/') {
		OPT_ERR(b, sec, name, "%s: \"%s\" is not an absolute path",
		    label, path);
		return;
	}
	if (cfgu_check_key_perms_for(path, run_uid, why, sizeof(why)) < 0)
		OPT_ERR(b, sec, name, "%s: %s", label, why);
}

/* --- top level, tls, agents, limits --- */

static void
build_listen(struct build *b, cfg_t *root, struct relay_config *c)
{
	static const char *const names[] = { "listen", "operator_listen" };
	char why[128];
	char **all[2] = { c->listen, c->op_listen };
	size_t *counts[2] = { &c->nlisten, &c->nop_listen };

	for (size_t k = 0; k < 2; k++) {
		size_t n = cfg_size(root, names[k]);

		if (k == 0 && n == 0)
			OPT_ERR(b, root, names[k], "listen: at least one "
			    "address is needed");
		if (n > RELAY_MAX_LISTEN) {
			OPT_ERR(b, root, names[k], "%s: %zu addresses, at most "
			    "%d", names[k], n, RELAY_MAX_LISTEN);
			n = RELAY_MAX_LISTEN;
		}
		for (size_t i = 0; i < n; i++) {
			const char *s = cfg_getnstr(root, names[k], i);

			if (!valid_listen(s, why, sizeof(why))) {
				OPT_ERR(b, root, names[k], "%s: \"%s\": %s",
				    names[k], s, why);
				continue;
			}
			/* Same address twice, in either list. */
			for (size_t kk = 0; kk <= k; kk++) {
				for (size_t j = 0; j < *counts[kk]; j++) {
					if (strcmp(all[kk][j], s) == 0)
						OPT_ERR(b, root, names[k],
						    "%s: duplicate address "
						    "\"%s\"", names[k], s);
				}
			}
			if ((all[k][*counts[k]] = strdup(s)) == NULL) {
				b->nomem = 1;
				return;
			}
			(*counts[k])++;
		}
	}
}

static void
build_top(struct build *b, cfg_t *root, struct relay_config *c)
{
	enum log_level lvl;
	ssh_key key;
	const char *s;

	build_listen(b, root, c);

	/* user first: keys owned by that user are acceptable (the relay
	 * reads them again after the drop, on reload) */
	c->user = get_str(b, root, "user");
	c->user_uid = (uid_t)-1;
	if (c->user != NULL && *c->user != '\0') {
		struct privs_user pu;
		char why[CFGU_ERRLEN / 2];

		if (privs_lookup(c->user, &pu, why, sizeof(why)) != 0)
			OPT_ERR(b, root, "user", "%s", why);
		else
			c->user_uid = pu.uid;
	}
	c->pid_file = get_str(b, root, "pid_file");
	if (c->pid_file != NULL && *c->pid_file != '\0' &&
	    c->pid_file[0] != '/')
		OPT_ERR(b, root, "pid_file", "pid_file: \"%s\" must be an "
		    "absolute path or \"\" (none)", c->pid_file);

	c->host_keys = get_list(b, root, "host_keys", &c->nhost_keys);
	if (c->nhost_keys == 0)
		OPT_ERR(b, root, "host_keys", "host_keys: at least one key "
		    "is needed");
	for (size_t i = 0; c->host_keys != NULL && i < c->nhost_keys; i++) {
		const char *p = c->host_keys[i];
		unsigned int before = b->nerr;

		check_key_file(b, root, "host_keys", "host_keys", p,
		    c->user_uid);
		if (b->nerr != before)
			continue;
		/* Reloading after the drop: a root-only host key cannot be
		 * read, and need not be (host keys need a restart anyway;
		 * the running relay keeps the ones it loaded). */
		if (geteuid() != 0 && access(p, R_OK) != 0 &&
		    errno == EACCES) {
			c->host_keys_unreadable++;
			continue;
		}
		key = NULL;
		if (ssh_pki_import_privkey_file(p, NULL, NULL, NULL, &key) !=
		    SSH_OK)
			OPT_ERR(b, root, "host_keys", "host_keys: %s: not a "
			    "private key libssh can load (or it has a "
			    "passphrase)", p);
		ssh_key_free(key);
	}

	s = cfg_getstr(root, "log_level");
	if (log_level_parse(s, &lvl) < 0) {
		OPT_ERR(b, root, "log_level", "log_level: \"%s\" is not one "
		    "of error, warning, info, debug", s);
		lvl = LOG_LVL_INFO;
	}
	c->log_level = (int)lvl;
	c->log_syslog = cfg_getbool(root, "syslog") != cfg_false;

	c->audit_log = get_str(b, root, "audit_log");
	if (c->audit_log != NULL && *c->audit_log != '\0' &&
	    strcmp(c->audit_log, "-") != 0 && c->audit_log[0] != '/')
		OPT_ERR(b, root, "audit_log", "audit_log: \"%s\" must be an "
		    "absolute path, \"-\" (stderr) or \"\" (off)",
		    c->audit_log);

	c->domain_suffix = get_str(b, root, "domain_suffix");
	s = c->domain_suffix;
	if (s != NULL && *s != '\0' && (s[0] != '.' || !rt_valid_id(s + 1)))
		OPT_ERR(b, root, "domain_suffix", "domain_suffix: \"%s\" must "
		    "be \"\" or a dot and a name, like \".edge\"", s);

	c->acl_allow_glob = cfg_getbool(root, "acl_allow_glob") != cfg_false;
}

static void
build_tls(struct build *b, cfg_t *root, struct relay_config *c)
{
	cfg_t *t = cfgu_getsec(root, "tls");
	const char *v;

	c->tls_ca = get_str(b, t, "ca");
	c->tls_cert = get_str(b, t, "cert");
	c->tls_key = get_str(b, t, "key");
	c->tls_crl = get_str(b, t, "crl");
	if (b->nomem)
		return;
	if (*c->tls_ca == '\0')
		OPT_ERR(b, t, "ca", "tls.ca: required (CA that signs agent "
		    "certificates)");
	else
		check_file(b, t, "tls.ca", "ca", c->tls_ca, 1);
	if (*c->tls_cert == '\0')
		OPT_ERR(b, t, "cert", "tls.cert: required");
	else
		check_file(b, t, "tls.cert", "cert", c->tls_cert, 0);
	if (*c->tls_key == '\0')
		OPT_ERR(b, t, "key", "tls.key: required");
	else
		check_key_file(b, t, "tls.key", "key", c->tls_key,
		    c->user_uid);
	if (*c->tls_crl != '\0')
		check_file(b, t, "tls.crl", "crl", c->tls_crl, 0);

	v = cfg_getstr(t, "min_version");
	if (strcmp(v, "1.2") == 0)
		c->tls_min_version = TLS1_2_VERSION;
	else if (strcmp(v, "1.3") == 0)
		c->tls_min_version = TLS1_3_VERSION;
	else
		OPT_ERR(b, t, "min_version", "tls.min_version: \"%s\" is not "
		    "\"1.2\" or \"1.3\"", v);
}

static int
valid_service_pattern(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._-*?[]!") == n;
}

static void
build_agents(struct build *b, cfg_t *root, struct relay_config *c)
{
	cfg_t *a = cfgu_getsec(root, "agents");

	c->agent_allow = get_list(b, a, "allow", &c->nagent_allow);
	for (size_t i = 0; c->agent_allow != NULL && i < c->nagent_allow;
	    i++) {
		if (!rt_valid_id(c->agent_allow[i]))
			OPT_ERR(b, a, "allow", "agents.allow: \"%s\" is not "
			    "a valid agent id", c->agent_allow[i]);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(c->agent_allow[i], c->agent_allow[j]) == 0)
				OPT_ERR(b, a, "allow", "agents.allow: "
				    "duplicate id \"%s\"", c->agent_allow[i]);
		}
	}
	c->service_allow = get_list(b, a, "services", &c->nservice_allow);
	/* "{}" could mean none or any: make the writer say which. */
	if (c->nservice_allow == 0)
		OPT_ERR(b, a, "services", "agents.services: empty; use {\"*\"} "
		    "for any service");
	for (size_t i = 0; c->service_allow != NULL &&
	    i < c->nservice_allow; i++) {
		if (!valid_service_pattern(c->service_allow[i]))
			OPT_ERR(b, a, "services", "agents.services: bad "
			    "pattern \"%s\"", c->service_allow[i]);
	}
	c->agent_max_services = get_uint(b, a, "agents", "max_services", 1,
	    1024);
	c->agent_max_channels = get_uint(b, a, "agents", "max_channels", 1,
	    4096);
	c->keepalive_interval_ms = get_duration(b, a, "agents",
	    "keepalive_interval", 1000, 3600 * 1000);
	c->keepalive_count = get_uint(b, a, "agents", "keepalive_count", 1,
	    100);
}

/* limits.penalties and limits.penalty_*: see penalty.h. */
static void
build_penalties(struct build *b, cfg_t *l, struct relay_config *c)
{
	struct pen_policy *p = &c->penalty;
	size_t n = cfg_size(l, "penalty_exempt");
	const char *why;

	c->penalties = cfg_getbool(l, "penalties") != cfg_false;
	if ((c->penalty_exempt = calloc(n + 1, sizeof(*c->penalty_exempt))) ==
	    NULL) {
		b->nomem = 1;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *s = cfg_getnstr(l, "penalty_exempt", i);

		if (pen_net_parse(s, &c->penalty_exempt[i], &why) != 0)
			OPT_ERR(b, l, "penalty_exempt", "limits.penalty_exempt: "
			    "\"%s\": %s", s, why);
	}
	c->npenalty_exempt = n;
	p->ms[PEN_AUTHFAIL] = get_duration(b, l, "limits", "penalty_authfail",
	    0, 86400 * 1000);
	p->ms[PEN_NOAUTH] = get_duration(b, l, "limits", "penalty_noauth", 0,
	    86400 * 1000);
	p->ms[PEN_GUESSING] = get_duration(b, l, "limits", "penalty_guessing",
	    0, 86400 * 1000);
	p->min_ms = get_duration(b, l, "limits", "penalty_min", 0,
	    86400 * 1000);
	p->max_ms = get_duration(b, l, "limits", "penalty_max", 1000,
	    86400 * 1000);
	if (p->min_ms > p->max_ms)
		OPT_ERR(b, l, "penalty_min", "limits.penalty_min: longer than "
		    "limits.penalty_max: no source would ever be refused");
	p->max_sources = get_uint(b, l, "limits", "penalty_max_sources", 1,
	    1000000);
}

static void
build_limits(struct build *b, cfg_t *root, struct relay_config *c)
{
	cfg_t *l = cfgu_getsec(root, "limits");
	const char *s;

	c->handshake_timeout_ms = get_duration(b, l, "limits",
	    "handshake_timeout", 1000, 300 * 1000);
	c->max_pending = get_uint(b, l, "limits", "max_pending", 1, 1000000);
	c->max_pending_per_source = get_uint(b, l, "limits",
	    "max_pending_per_source", 1, 1000000);
	if (c->max_pending_per_source > c->max_pending)
		OPT_ERR(b, l, "max_pending_per_source", "limits."
		    "max_pending_per_source: %u exceeds max_pending %u",
		    c->max_pending_per_source, c->max_pending);
	c->max_connections = get_uint(b, l, "limits", "max_connections", 1,
	    1000000);
	s = cfg_getstr(l, "channel_buffer");
	if (cfgu_parse_size(s, &c->channel_buffer) < 0 ||
	    c->channel_buffer < 4096 || c->channel_buffer > 64 * 1024 * 1024) {
		OPT_ERR(b, l, "channel_buffer", "limits.channel_buffer: bad "
		    "size \"%s\" (4k-64M)", s);
		c->channel_buffer = 256 * 1024;
	}
	c->operator_max_channels = get_uint(b, l, "limits",
	    "operator_max_channels", 1, 4096);
	c->operator_idle_timeout_ms = get_duration(b, l, "limits",
	    "operator_idle_timeout", 0, 30LL * 86400 * 1000);
	c->auth_timeout_ms = get_duration(b, l, "limits", "auth_timeout",
	    1000, 3600 * 1000);
	c->auth_max_tries = get_uint(b, l, "limits", "auth_max_tries", 1, 100);
	c->shutdown_timeout_ms = get_duration(b, l, "limits",
	    "shutdown_timeout", 0, 3600 * 1000);
	c->operator_channel_idle_timeout_ms = get_duration(b, l, "limits",
	    "operator_channel_idle_timeout", 0, 30LL * 86400 * 1000);
	if (c->operator_channel_idle_timeout_ms > 0 &&
	    c->operator_channel_idle_timeout_ms < 1000)
		OPT_ERR(b, l, "operator_channel_idle_timeout", "limits."
		    "operator_channel_idle_timeout: at least 1s (or 0: "
		    "none)");
	c->operator_max_denials = get_uint(b, l, "limits",
	    "operator_max_denials", 0, 1000000);
	c->operator_denial_window_ms = get_duration(b, l, "limits",
	    "operator_denial_window", 1000, 86400 * 1000);
	build_penalties(b, l, c);
}

/* --- operators --- */

/* Makes room for one more key in op's three arrays. */
static int
grow_keys(struct relay_operator *op)
{
	size_t n = op->nkeys + 1;
	ssh_key *k;
	char **f, **c;

	if ((k = reallocarray(op->keys, n, sizeof(*k))) == NULL)
		return -1;
	op->keys = k;
	if ((f = reallocarray(op->key_fps, n, sizeof(*f))) == NULL)
		return -1;
	op->key_fps = f;
	if ((c = reallocarray(op->key_comments, n, sizeof(*c))) == NULL)
		return -1;
	op->key_comments = c;
	return 0;
}

/*
 * Parses one authorized_keys line "TYPE BASE64 [COMMENT]" into op's key
 * arrays. Returns 1 if a key was added, 0 if the line is refused (why
 * says why), -1 on allocation failure.
 */
static int
parse_key_line(struct relay_operator *op, const char *line, char *why,
	       size_t len)
{
	char type[64], *b64 = NULL, *fp = NULL, *comment = NULL;
	const char *p = line, *q;
	enum ssh_keytypes_e kt;
	unsigned char *hash = NULL;
	size_t hlen = 0, n;
	ssh_key key = NULL;
	int r = 0;

	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (n == 0) {
		snprintf(why, len, "empty key line");
		goto out;
	}
	kt = SSH_KEYTYPE_UNKNOWN;
	if (n < sizeof(type)) {
		memcpy(type, p, n);
		type[n] = '\0';
		kt = ssh_key_type_from_name(type);
	}
	if (kt == SSH_KEYTYPE_UNKNOWN) {
		snprintf(why, len, "\"%.*s\" is not a key type (like "
		    "ssh-ed25519); authorized_keys options are not supported",
		    (int)RT_MIN(n, 40), p);
		goto out;
	}
	if (strstr(type, "-cert-") != NULL) {
		snprintf(why, len, "certificate keys (%s) are not supported",
		    type);
		goto out;
	}
	p += n;
	p += strspn(p, " \t");
	n = strcspn(p, " \t\r\n");
	if (n == 0) {
		snprintf(why, len, "%s key without base64 data", type);
		goto out;
	}
	if ((b64 = strndup(p, n)) == NULL) {
		r = -1;
		goto out;
	}
	if (ssh_pki_import_pubkey_base64(b64, kt, &key) != SSH_OK ||
	    ssh_key_type(key) != kt) {
		snprintf(why, len, "bad %s key data", type);
		goto out;
	}
	p += n;
	p += strspn(p, " \t");
	q = p + strlen(p);
	while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r' ||
	    q[-1] == '\n'))
		q--;
	if ((comment = strndup(p, (size_t)(q - p))) == NULL) {
		r = -1;
		goto out;
	}
	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
	    &hlen) != 0 || (fp = ssh_get_fingerprint_hash(
	    SSH_PUBLICKEY_HASH_SHA256, hash, hlen)) == NULL) {
		snprintf(why, len, "cannot hash %s key", type);
		goto out;
	}
	for (size_t i = 0; i < op->nkeys; i++) {
		if (ssh_key_cmp(op->keys[i], key, SSH_KEY_CMP_PUBLIC) == 0) {
			snprintf(why, len, "duplicate key %s", fp);
			goto out;
		}
	}
	if (op->nkeys >= RELAY_MAX_KEYS) {
		snprintf(why, len, "more than %d keys", RELAY_MAX_KEYS);
		goto out;
	}
	if (grow_keys(op) < 0) {
		r = -1;
		goto out;
	}
	op->keys[op->nkeys] = key;
	op->key_fps[op->nkeys] = fp;
	op->key_comments[op->nkeys] = comment;
	op->nkeys++;
	key = NULL;
	fp = comment = NULL;
	r = 1;
 out:
	ssh_key_free(key);
	free(b64);
	free(comment);
	if (fp != NULL)
		ssh_string_free_char(fp);
	if (hash != NULL)
		ssh_clean_pubkey_hash(&hash);
	return r;
}

/* Reads an authorized_keys file into op; problems name file:line. */
static void
load_keys_file(struct build *b, cfg_t *sec, struct relay_operator *op,
	       const char *path)
{
	char line[RELAY_KEY_LINE_MAX], why[256];
	struct stat st;
	FILE *f = NULL;
	long lineno = 0;
	int fd, r;

	if (path[0] != '/') {
		OPT_ERR(b, sec, "keys_file", "operator %s: keys_file \"%s\" "
		    "is not an absolute path", op->name, path);
		return;
	}
	/* O_NONBLOCK so a FIFO cannot hang a (re)load before fstat()
	 * refuses it; reads of a regular file ignore it. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) < 0) {
		OPT_ERR(b, sec, "keys_file", "operator %s: keys_file %s: %s",
		    op->name, path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > RELAY_KEYS_FILE_MAX) {
		OPT_ERR(b, sec, "keys_file", "operator %s: keys_file %s: not "
		    "a regular file of at most %d bytes", op->name, path,
		    RELAY_KEYS_FILE_MAX);
		close(fd);
		return;
	}
	/* Whoever can write it can log in as this operator. */
	if ((st.st_mode & 022) != 0) {
		OPT_ERR(b, sec, "keys_file", "operator %s: keys_file %s: mode "
		    "%04o is writable by group or others", op->name, path,
		    (unsigned int)(st.st_mode & 07777));
		close(fd);
		return;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		b->nomem = 1;
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line + strspn(line, " \t");

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			add_err(b, path, lineno, "operator %s: line longer "
			    "than %d bytes", op->name, RELAY_KEY_LINE_MAX - 1);
			/* Skip the rest of it. */
			while (fgets(line, sizeof(line), f) != NULL &&
			    strchr(line, '\n') == NULL)
				;
			continue;
		}
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		if ((r = parse_key_line(op, p, why, sizeof(why))) < 0) {
			b->nomem = 1;
			break;
		}
		if (r == 0)
			add_err(b, path, lineno, "operator %s: %s", op->name,
			    why);
	}
	if (ferror(f))
		OPT_ERR(b, sec, "keys_file", "operator %s: keys_file %s: read "
		    "error", op->name, path);
	fclose(f);
}

static void
build_operator(struct build *b, cfg_t *sec, struct relay_config *c,
	       struct relay_operator *op)
{
	static const struct {
		const char *opt;
		enum acl_kind kind;
	} grants[] = {
		{ "allow", ACL_SERVICE },
		{ "rights", ACL_RIGHT },
	};
	char why[256], where[CFGU_ERRLEN];
	const char *kf;
	int r;

	if ((op->name = strdup(cfg_title(sec))) == NULL) {
		b->nomem = 1;
		return;
	}
	if (!rt_valid_id(op->name)) {
		add_err(b, b->name, sec->line, "operator \"%s\": bad name "
		    "(1-64 of A-Z a-z 0-9 . _ -)", op->name);
		return;
	}
	for (unsigned int i = 0; i < cfg_size(sec, "keys"); i++) {
		r = parse_key_line(op, cfg_getnstr(sec, "keys", i), why,
		    sizeof(why));
		if (r < 0) {
			b->nomem = 1;
			return;
		}
		if (r == 0)
			OPT_ERR(b, sec, "keys", "operator %s: keys entry %u: "
			    "%s", op->name, i + 1, why);
	}
	kf = cfg_getstr(sec, "keys_file");
	if (kf != NULL && *kf != '\0')
		load_keys_file(b, sec, op, kf);
	if (op->nkeys == 0)
		add_err(b, b->name, sec->line, "operator %s: no keys (set keys "
		    "or keys_file)", op->name);

	for (size_t g = 0; g < RT_ARRAY_SIZE(grants); g++) {
		const char *o = grants[g].opt;

		snprintf(where, sizeof(where), "%s:%ld", b->name,
		    opt_line(sec, o));
		for (unsigned int i = 0; i < cfg_size(sec, o); i++) {
			r = acl_add(c->acl, op->name, grants[g].kind,
			    cfg_getnstr(sec, o, i), where, why, sizeof(why));
			if (r == RT_ERR_NOMEM) {
				b->nomem = 1;
				return;
			}
			if (r < 0)
				OPT_ERR(b, sec, o, "operator %s: %s: %s",
				    op->name, o, why);
		}
	}
}

static void
build_operators(struct build *b, cfg_t *root, struct relay_config *c)
{
	size_t n = cfg_size(root, "operator");

	if (acl_new(c->acl_allow_glob, &c->acl) < 0 ||
	    (c->operators = calloc(n + 1, sizeof(*c->operators))) == NULL) {
		b->nomem = 1;
		return;
	}
	for (size_t i = 0; i < n && !b->nomem; i++) {
		build_operator(b, cfgu_getnsec(root, "operator", i), c,
		    &c->operators[i]);
		c->noperators++;
	}
	/* One key, two operators: whoever logs in would be ambiguous. */
	for (size_t i = 0; i < c->noperators; i++) {
		struct relay_operator *a = &c->operators[i];

		for (size_t k = 0; k < a->nkeys; k++) {
			for (size_t j = 0; j < i; j++) {
				struct relay_operator *o = &c->operators[j];

				for (size_t l = 0; l < o->nkeys; l++) {
					if (ssh_key_cmp(a->keys[k], o->keys[l],
					    SSH_KEY_CMP_PUBLIC) != 0)
						continue;
					add_err(b, b->name, cfgu_getnsec(root,
					    "operator", i)->line, "operator "
					    "%s: key %s also belongs to "
					    "operator %s", a->name,
					    a->key_fps[k], o->name);
				}
			}
		}
	}
}

static int
build(cfg_t *root, const char *name, struct relay_config **out,
      struct cfgu_errors *errs)
{
	struct build b = { name, errs, 0, 0 };
	struct relay_config *c;
	int r;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(name)) == NULL) {
		cfgu_errors_add(errs, "%s: out of memory", name);
		r = RT_ERR_NOMEM;
		goto out;
	}
	build_top(&b, root, c);
	if (!b.nomem)
		build_tls(&b, root, c);
	if (!b.nomem)
		build_agents(&b, root, c);
	if (!b.nomem)
		build_limits(&b, root, c);
	if (!b.nomem)
		build_operators(&b, root, c);
	if (b.nomem) {
		cfgu_errors_add(errs, "%s: out of memory", name);
		r = RT_ERR_NOMEM;
		goto out;
	}
	if (b.nerr > 0) {
		r = RT_ERR_CONFIG;
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
 out:
	relay_config_free(c);
	return r;
}

int
relay_config_load(const char *path, struct relay_config **out,
		  struct cfgu_errors *errs)
{
	cfg_t *cfg;
	int r;

	*out = NULL;
	if ((cfg = schema()) == NULL) {
		cfgu_errors_add(errs, "%s: out of memory", path);
		return RT_ERR_NOMEM;
	}
	if ((r = cfgu_parse(cfg, path, 0, errs)) == 0)
		r = build(cfg, path, out, errs);
	cfg_free(cfg);
	return r;
}

int
relay_config_load_buf(const char *text, const char *name,
		      struct relay_config **out, struct cfgu_errors *errs)
{
	cfg_t *cfg;
	int r;

	*out = NULL;
	if ((cfg = schema()) == NULL) {
		cfgu_errors_add(errs, "%s: out of memory", name);
		return RT_ERR_NOMEM;
	}
	if ((r = cfgu_parse_buf(cfg, text, name, errs)) == 0)
		r = build(cfg, name, out, errs);
	cfg_free(cfg);
	return r;
}

void
relay_config_free(struct relay_config *c)
{
	if (c == NULL)
		return;
	free(c->path);
	for (size_t i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	for (size_t i = 0; i < c->nop_listen; i++)
		free(c->op_listen[i]);
	free_list(c->host_keys, c->nhost_keys);
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_crl);
	free_list(c->agent_allow, c->nagent_allow);
	free_list(c->service_allow, c->nservice_allow);
	free(c->domain_suffix);
	free(c->penalty_exempt);
	acl_free(c->acl);
	for (size_t i = 0; i < c->noperators; i++) {
		struct relay_operator *op = &c->operators[i];

		for (size_t k = 0; k < op->nkeys; k++) {
			ssh_key_free(op->keys[k]);
			ssh_string_free_char(op->key_fps[k]);
			free(op->key_comments[k]);
		}
		free(op->keys);
		free(op->key_fps);
		free(op->key_comments);
		free(op->name);
	}
	free(c->operators);
	free(c->audit_log);
	free(c->user);
	free(c->pid_file);
	free(c);
}

const struct relay_operator *
relay_config_operator(const struct relay_config *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->noperators; i++) {
		if (strcmp(c->operators[i].name, name) == 0)
			return &c->operators[i];
	}
	return NULL;
}

static int
lists_differ(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return 1;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i], b[i]) != 0)
			return 1;
	}
	return 0;
}

static void
append_name(char *buf, size_t len, int n, const char *name)
{
	size_t used;

	if (len == 0)
		return;
	used = strlen(buf);
	snprintf(buf + used, len - used, "%s%s", n > 0 ? ", " : "", name);
}

int
relay_config_restart_needed(const struct relay_config *o,
			    const struct relay_config *n, char *buf, size_t len)
{
	int count = 0;

	if (len > 0)
		*buf = '\0';
	if (lists_differ(o->listen, o->nlisten, n->listen, n->nlisten))
		append_name(buf, len, count++, "listen");
	if (lists_differ(o->op_listen, o->nop_listen, n->op_listen,
	    n->nop_listen))
		append_name(buf, len, count++, "operator_listen");
	if (lists_differ(o->host_keys, o->nhost_keys, n->host_keys,
	    n->nhost_keys))
		append_name(buf, len, count++, "host_keys");
	if (strcmp(o->user, n->user) != 0)
		append_name(buf, len, count++, "user");
	if (strcmp(o->pid_file, n->pid_file) != 0)
		append_name(buf, len, count++, "pid_file");
	return count;
}
