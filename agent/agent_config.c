/*
 * agent_config.c - revtun-agent's configuration: the libconfuse schema,
 * per-value validation, cross-field checks, the on-disk checks of the files
 * it names, and the reload diff (agent_config.h).
 *
 * Validation runs in two passes, both collecting every problem in a
 * struct cfgu_errors and never stopping at the first:
 *
 *  1. while parsing: libconfuse validators check each scalar value where
 *     it is read (so the line is the option's own). They report through
 *     cfg_error() and return 0, so libconfuse keeps parsing and finds the
 *     next problem too; only syntax errors stop the parser.
 *  2. after parsing: lists, required options, cross-field rules
 *     (initial <= max, consent needs file or command, unique ports) and
 *     file permissions. These are reported at the line libconfuse keeps
 *     for the enclosing section (where it was closed), and name the
 *     section and option. The relays list is top-level and has no line.
 *
 * The result is a fresh, immutable struct agent_config; nothing here
 * touches a running agent. Optional strings are "" when unset, never NULL.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/ssl.h>

#include "agent_config.h"
#include "err.h"
#include "log.h"
#include "mqtt_codec.h"
#include "privs.h"
#include "util.h"

#define FP_PREFIX "SHA256:"
#define FP_B64LEN 43			/* base64 of 32 bytes, unpadded */
#define CHANBUF_MIN (16 * 1024)
#define CHANBUF_MAX (16 * 1024 * 1024)
#define MAX_CHANNELS_MAX 4096
#define KEEPALIVE_COUNT_MAX 100
#define JITTER_MAX 50
#define MQTT_INFLIGHT_MAX 1024
#define MQTT_QUEUE_MSGS_MAX 1000000
#define MQTT_QUEUE_BYTES_MIN (64 * 1024)
#define MQTT_QUEUE_BYTES_MAX (1024ULL * 1024 * 1024)
#define MQTT_SPOOL_BYTES_MIN (1024 * 1024)
#define MQTT_SPOOL_BYTES_MAX (64ULL * 1024 * 1024 * 1024)
#define MQTT_KEEPALIVE_MAX_S 65535
#define MQTT_PREFIX_MAX 128
#define MQTT_CLIENT_ID_MAX 128

/* One load: where problems go and what kind they were. */
struct load_ctx {
	const char *name;		/* file name or label, for messages */
	struct cfgu_errors *errs;
	unsigned int nperm;		/* of which unsafe key permissions */
	uid_t run_uid;			/* `user`'s uid, (uid_t)-1 if none:
					 * it may own the key files */
};

/*
 * Error reporting
 */

static unsigned int
err_count(const struct cfgu_errors *e)
{
	return e->n + e->dropped;
}

/* "FILE:LINE: section[ title]: message", or "FILE: message" when the
 * section has no line (it was not in the file). */
static void __attribute__((format(printf, 3, 4)))
sec_err(struct load_ctx *lc, cfg_t *sec, const char *fmt, ...)
{
	char msg[CFGU_ERRLEN], where[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	where[0] = '\0';
	if (sec != NULL && sec->name != NULL && strcmp(sec->name, "root") != 0)
		snprintf(where, sizeof(where), "%s%s%s: ", sec->name,
		    sec->title != NULL ? " " : "",
		    sec->title != NULL ? sec->title : "");
	if (sec != NULL && sec->line > 0)
		cfgu_errors_add(lc->errs, "%s:%d: %s%s", lc->name, sec->line,
		    where, msg);
	else
		cfgu_errors_add(lc->errs, "%s: %s%s", lc->name, where, msg);
}

/* Reports from a validator: cfg_error() goes to cfgutil's error function,
 * which prefixes FILE:LINE. The message starts with "section[ title]: opt". */
static void __attribute__((format(printf, 3, 4)))
opt_err(cfg_t *cfg, cfg_opt_t *opt, const char *fmt, ...)
{
	char msg[CFGU_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cfg->name != NULL && strcmp(cfg->name, "root") != 0)
		cfg_error(cfg, "%s%s%s: %s: %s", cfg->name,
		    cfg->title != NULL ? " " : "",
		    cfg->title != NULL ? cfg->title : "", opt->name, msg);
	else
		cfg_error(cfg, "%s: %s", opt->name, msg);
}

/*
 * Value syntax
 */

static int
parse_port(const char *s, int *port)
{
	long v = 0;
	size_t i;

	if (s == NULL || *s == '\0' || strlen(s) > 5)
		return RT_ERR_INVAL;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return RT_ERR_INVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return RT_ERR_INVAL;
	*port = (int)v;
	return 0;
}

static int
valid_hostname(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 253 || s[0] == '-' || s[0] == '.')
		return 0;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		    ch == '_'))
			return 0;
	}
	return 1;
}

static int
valid_v6(const char *s, size_t len)
{
	size_t i, colons = 0;

	if (len < 2 || len > 45)
		return 0;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (ch == ':')
			colons++;
		else if (!((ch >= '0' && ch <= '9') ||
		    (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
		    ch == '.'))
			return 0;
	}
	return colons >= 2;
}

/*
 * Splits "HOST:PORT" or "[V6]:PORT" into new strings (host without the
 * brackets, port as canonical decimal). host/port may be NULL to only
 * check. Returns 0, RT_ERR_INVAL or RT_ERR_NOMEM.
 */
static int
split_hostport(const char *s, char **hostp, char **portp)
{
	const char *h, *colon;
	size_t hlen;
	char pbuf[8];
	int port;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || end[1] != ':')
			return RT_ERR_INVAL;
		h = s + 1;
		hlen = (size_t)(end - h);
		colon = end + 1;
		if (!valid_v6(h, hlen))
			return RT_ERR_INVAL;
	} else {
		colon = strchr(s, ':');
		if (colon == NULL || strchr(colon + 1, ':') != NULL)
			return RT_ERR_INVAL;	/* bare IPv6 needs brackets */
		h = s;
		hlen = (size_t)(colon - s);
		if (!valid_hostname(h, hlen))
			return RT_ERR_INVAL;
	}
	if (parse_port(colon + 1, &port) != 0)
		return RT_ERR_INVAL;
	if (hostp == NULL)
		return 0;
	snprintf(pbuf, sizeof(pbuf), "%d", port);
	if ((*hostp = strndup(h, hlen)) == NULL)
		return RT_ERR_NOMEM;
	if ((*portp = strdup(pbuf)) == NULL) {
		free(*hostp);
		*hostp = NULL;
		return RT_ERR_NOMEM;
	}
	return 0;
}

static int
valid_fingerprint(const char *s)
{
	size_t i, plen = strlen(FP_PREFIX);

	if (strncmp(s, FP_PREFIX, plen) != 0 || strlen(s) != plen + FP_B64LEN)
		return 0;
	for (i = plen; s[i] != '\0'; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return 0;
	}
	return 1;
}

static int
parse_consent_mode(const char *s, enum agent_consent_mode *m)
{
	if (strcmp(s, "off") == 0)
		*m = CONSENT_OFF;
	else if (strcmp(s, "sessions") == 0)
		*m = CONSENT_SESSIONS;
	else if (strcmp(s, "connect") == 0)
		*m = CONSENT_CONNECT;
	else
		return RT_ERR_INVAL;
	return 0;
}

/*
 * libconfuse validators (pass 1). Each reports and returns 0 so that the
 * parser goes on and finds the next problem; pass 2 skips bad values.
 */

static const char *
opt_str(cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	return s != NULL ? s : "";
}

static int
check_duration(cfg_t *cfg, cfg_opt_t *opt, int allow_zero)
{
	int64_t ms;

	if (cfgu_parse_duration(opt_str(opt), &ms) != 0)
		opt_err(cfg, opt, "\"%s\" is not a duration "
		    "(e.g. \"500ms\", \"30s\", \"5m\", \"1h\")", opt_str(opt));
	else if (ms == 0 && !allow_zero)
		opt_err(cfg, opt, "must be longer than 0");
	return 0;
}

static int
v_duration(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_duration(cfg, opt, 0);
}

static int
v_duration0(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_duration(cfg, opt, 1);
}

static int
check_int(cfg_t *cfg, cfg_opt_t *opt, long lo, long hi)
{
	long v;

	if (cfg_opt_size(opt) == 0)
		return 0;
	v = cfg_opt_getnint(opt, 0);
	if (v < lo || v > hi)
		opt_err(cfg, opt, "%ld is not in %ld..%ld", v, lo, hi);
	return 0;
}

static int
v_port(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_int(cfg, opt, 1, 65535);
}

static int
v_jitter(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_int(cfg, opt, 0, JITTER_MAX);
}

static int
v_keepalive_count(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_int(cfg, opt, 1, KEEPALIVE_COUNT_MAX);
}

static int
v_max_channels(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_int(cfg, opt, 1, MAX_CHANNELS_MAX);
}

static int
check_size(cfg_t *cfg, cfg_opt_t *opt, uint64_t lo, uint64_t hi,
    const char *range)
{
	uint64_t b;

	if (cfgu_parse_size(opt_str(opt), &b) != 0)
		opt_err(cfg, opt, "\"%s\" is not a size (e.g. \"64k\", "
		    "\"1M\")", opt_str(opt));
	else if (b < lo || b > hi)
		opt_err(cfg, opt, "\"%s\" is not in %s", opt_str(opt), range);
	return 0;
}

static int
v_channel_buffer(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_size(cfg, opt, CHANBUF_MIN, CHANBUF_MAX, "16k..16M");
}

static int
v_log_level(cfg_t *cfg, cfg_opt_t *opt)
{
	enum log_level l;

	if (log_level_parse(opt_str(opt), &l) != 0)
		opt_err(cfg, opt, "\"%s\" is not one of error, warning, info, "
		    "debug", opt_str(opt));
	return 0;
}

static int
v_tls_version(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = opt_str(opt);

	if (strcmp(s, "1.2") != 0 && strcmp(s, "1.3") != 0)
		opt_err(cfg, opt, "\"%s\" is not \"1.2\" or \"1.3\"", s);
	return 0;
}

static int
v_fingerprint(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = opt_str(opt);

	if (*s != '\0' && !valid_fingerprint(s))
		opt_err(cfg, opt, "\"%s\" is not \"SHA256:\" followed by 43 "
		    "base64 characters (as ssh-keygen -l prints)", s);
	return 0;
}

static int
v_consent_mode(cfg_t *cfg, cfg_opt_t *opt)
{
	enum agent_consent_mode m;

	if (parse_consent_mode(opt_str(opt), &m) != 0)
		opt_err(cfg, opt, "\"%s\" is not one of off, sessions, "
		    "connect", opt_str(opt));
	return 0;
}

static int
v_mqtt_queue_bytes(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_size(cfg, opt, MQTT_QUEUE_BYTES_MIN, MQTT_QUEUE_BYTES_MAX,
	    "64k..1G");
}

static int
v_mqtt_spool_bytes(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_size(cfg, opt, MQTT_SPOOL_BYTES_MIN, MQTT_SPOOL_BYTES_MAX,
	    "1M..64G");
}

static int
v_mqtt_qos(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_int(cfg, opt, 0, 1);
}

static int
v_mqtt_inflight(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_int(cfg, opt, 1, MQTT_INFLIGHT_MAX);
}

static int
v_mqtt_queue_msgs(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_int(cfg, opt, 1, MQTT_QUEUE_MSGS_MAX);
}

/* Keepalive: whole seconds, 0 (off) .. 65535 s (MQTT's 16 bits). */
static int
v_mqtt_keepalive(cfg_t *cfg, cfg_opt_t *opt)
{
	int64_t ms;

	if (cfgu_parse_duration(opt_str(opt), &ms) != 0)
		opt_err(cfg, opt, "\"%s\" is not a duration (e.g. \"30s\")",
		    opt_str(opt));
	else if (ms % 1000 != 0 || ms / 1000 > MQTT_KEEPALIVE_MAX_S)
		opt_err(cfg, opt, "\"%s\" is not whole seconds in 0..65535 s",
		    opt_str(opt));
	return 0;
}

/* A topic prefix: a valid topic name (no wildcards), no leading or
 * trailing '/'. */
static int
v_mqtt_prefix(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = opt_str(opt);
	size_t n = strlen(s);

	if (n == 0 || n > MQTT_PREFIX_MAX ||
	    mqtt_topic_check((const uint8_t *)s, n) != 0 || s[0] == '/' ||
	    s[n - 1] == '/')
		opt_err(cfg, opt, "\"%s\" is not a topic prefix (1..%d bytes "
		    "of UTF-8, no '+' or '#', no leading or trailing '/')", s,
		    MQTT_PREFIX_MAX);
	return 0;
}

/* Client id / user name: UTF-8 without NUL, bounded. */
static int
v_mqtt_text(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = opt_str(opt);

	if (strlen(s) > MQTT_CLIENT_ID_MAX ||
	    mqtt_utf8_check((const uint8_t *)s, strlen(s)) != 0)
		opt_err(cfg, opt, "not UTF-8 text of at most %d bytes",
		    MQTT_CLIENT_ID_MAX);
	return 0;
}

/* Absolute path; "" passes when the option is optional. */
static int
check_path(cfg_t *cfg, cfg_opt_t *opt, int optional)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s == NULL)
		return 0;	/* unset required option: pass 2 says so */
	if (*s == '\0' && optional)
		return 0;
	if (*s != '/')
		opt_err(cfg, opt, "\"%s\" is not an absolute path", s);
	return 0;
}

static int
v_path(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_path(cfg, opt, 0);
}

static int
v_path_opt(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_path(cfg, opt, 1);
}

static int
v_uplink_mode(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = opt_str(opt);

	if (strcmp(s, "always") != 0 && strcmp(s, "on-demand") != 0)
		opt_err(cfg, opt, "\"%s\" is not \"always\" or \"on-demand\"",
		    s);
	return 0;
}

/* At least a second: telemetry periods and the command window. */
static int
v_duration_1s(cfg_t *cfg, cfg_opt_t *opt)
{
	int64_t ms;

	if (cfgu_parse_duration(opt_str(opt), &ms) != 0)
		return check_duration(cfg, opt, 0);
	if (ms < 1000 || ms > 86400000)
		opt_err(cfg, opt, "\"%s\" must be between 1s and 24h",
		    opt_str(opt));
	return 0;
}

static int
v_target(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = cfg_opt_getnstr(opt, 0);

	if (s != NULL && split_hostport(s, NULL, NULL) != 0)
		opt_err(cfg, opt, "\"%s\" is not HOST:PORT or [IPV6]:PORT", s);
	return 0;
}

static int
v_log_lines(cfg_t *cfg, cfg_opt_t *opt)
{
	return check_int(cfg, opt, 10, 100000);
}

static int
v_shell_user(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = opt_str(opt);

	if (*s == '\0' || strlen(s) > 32 || strspn(s,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
	    != strlen(s))
		opt_err(cfg, opt, "\"%s\" is not a user name", s);
	return 0;
}

static int
v_user(cfg_t *cfg, cfg_opt_t *opt)
{
	if (*opt_str(opt) == '\0')
		return 0;	/* "" = keep the account we were started as */
	return v_shell_user(cfg, opt);
}

static int
v_proxy_host(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *s = opt_str(opt);

	if (*s != '\0' && !valid_hostname(s, strlen(s)) &&
	    !valid_v6(s, strlen(s)))
		opt_err(cfg, opt, "\"%s\" is not a host name or address", s);
	return 0;
}

/*
 * Schema
 */

static cfg_t *
schema_new(void)
{
	cfg_opt_t tls_opts[] = {
		CFG_STR("ca", NULL, CFGF_NODEFAULT),
		CFG_STR("cert", NULL, CFGF_NODEFAULT),
		CFG_STR("key", NULL, CFGF_NODEFAULT),
		CFG_STR("min_version", "1.3", CFGF_NONE),
		CFG_STR("server_name", "", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t ssh_opts[] = {
		CFG_STR("host_key_fingerprint", "", CFGF_NONE),
		CFG_STR("keepalive_interval", "15s", CFGF_NONE),
		CFG_INT("keepalive_count", 3, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t reconnect_opts[] = {
		CFG_STR("initial", "1s", CFGF_NONE),
		CFG_STR("max", "60s", CFGF_NONE),
		CFG_INT("jitter", 20, CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t proxy_opts[] = {
		CFG_STR("host", "", CFGF_NONE),
		CFG_INT("port", 3128, CFGF_NONE),
		CFG_STR("auth_file", "", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t limits_opts[] = {
		CFG_INT("max_channels", 64, CFGF_NONE),
		CFG_STR("channel_buffer", "256k", CFGF_NONE),
		CFG_STR("target_connect_timeout", "10s", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t consent_opts[] = {
		CFG_STR("mode", "off", CFGF_NONE),
		CFG_STR("file", "", CFGF_NONE),
		CFG_STR("command", "", CFGF_NONE),
		CFG_STR("interval", "5s", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t service_opts[] = {
		CFG_INT("port", 0, CFGF_NODEFAULT),
		CFG_STR("target", NULL, CFGF_NODEFAULT),
		CFG_END()
	};
	cfg_opt_t mqtt_tls_opts[] = {
		CFG_STR("ca", "", CFGF_NONE),
		CFG_STR("cert", "", CFGF_NONE),
		CFG_STR("key", "", CFGF_NONE),
		CFG_STR("min_version", "1.2", CFGF_NONE),
		CFG_STR("server_name", "", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t mqtt_opts[] = {
		CFG_BOOL("enable", cfg_false, CFGF_NONE),
		CFG_STR_LIST("brokers", "{\"broker.example.com:8883\"}",
		    CFGF_NONE),
		CFG_STR("topic_prefix", "revtun", CFGF_NONE),
		CFG_STR("client_id", "", CFGF_NONE),
		CFG_STR("username", "", CFGF_NONE),
		CFG_STR("password_file", "", CFGF_NONE),
		CFG_SEC("tls", mqtt_tls_opts, CFGF_NONE),
		CFG_STR("keepalive", "30s", CFGF_NONE),
		CFG_BOOL("clean_session", cfg_false, CFGF_NONE),
		CFG_INT("qos", 1, CFGF_NONE),
		CFG_INT("inflight", 20, CFGF_NONE),
		CFG_INT("queue_max_messages", 10000, CFGF_NONE),
		CFG_STR("queue_max_bytes", "4M", CFGF_NONE),
		CFG_STR("spool_dir", "", CFGF_NONE),
		CFG_STR("spool_max_bytes", "64M", CFGF_NONE),
		CFG_STR("connect_timeout", "20s", CFGF_NONE),
		CFG_STR("backoff_max", "60s", CFGF_NONE),
		CFG_STR("cmd_key_file", "", CFGF_NONE),
		CFG_STR("cmd_window", "60s", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t telemetry_opts[] = {
		CFG_STR("interval", "60s", CFGF_NONE),
		CFG_STR_LIST("disks", "{\"/\"}", CFGF_NONE),
		CFG_STR("hmac_key_file", "", CFGF_NONE),
		CFG_STR("metrics_file", "", CFGF_NONE),
		CFG_STR("metrics_file_interval", "60s", CFGF_NONE),
		CFG_STR("metrics_command", "", CFGF_NONE),
		CFG_STR("metrics_command_interval", "60s", CFGF_NONE),
		CFG_STR("metrics_command_timeout", "10s", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t control_opts[] = {
		CFG_STR("rollback_timeout", "120s", CFGF_NONE),
		CFG_INT("log_lines", 1000, CFGF_NONE),
		CFG_STR("state_dir", "/var/lib/revtun", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t shell_opts[] = {
		CFG_BOOL("enable", cfg_false, CFGF_NONE),
		CFG_STR("user", "root", CFGF_NONE),
		CFG_STR("command", "", CFGF_NONE),
		CFG_STR("idle_timeout", "15m", CFGF_NONE),
		CFG_END()
	};
	cfg_opt_t opts[] = {
		CFG_STR_LIST("relays", NULL, CFGF_NODEFAULT),
		CFG_STR("log_level", "info", CFGF_NONE),
		CFG_BOOL("syslog", cfg_false, CFGF_NONE),
		CFG_STR("user", "", CFGF_NONE),
		CFG_STR("pid_file", "", CFGF_NONE),
		CFG_STR("connect_timeout", "20s", CFGF_NONE),
		CFG_STR("tcp_user_timeout", "45s", CFGF_NONE),
		CFG_STR("shutdown_timeout", "10s", CFGF_NONE),
		CFG_STR("uplink_mode", "always", CFGF_NONE),
		CFG_STR("on_demand_idle", "10m", CFGF_NONE),
		CFG_SEC("tls", tls_opts, CFGF_NONE),
		CFG_SEC("ssh", ssh_opts, CFGF_NONE),
		CFG_SEC("reconnect", reconnect_opts, CFGF_NONE),
		CFG_SEC("proxy", proxy_opts, CFGF_NONE),
		CFG_SEC("limits", limits_opts, CFGF_NONE),
		CFG_SEC("consent", consent_opts, CFGF_NONE),
		CFG_SEC("service", service_opts,
		    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
		CFG_SEC("mqtt", mqtt_opts, CFGF_NONE),
		CFG_SEC("telemetry", telemetry_opts, CFGF_NONE),
		CFG_SEC("control", control_opts, CFGF_NONE),
		CFG_SEC("shell", shell_opts, CFGF_NONE),
		CFG_END()
	};
	static const struct {
		const char *opt;
		cfg_validate_callback_t fn;
	} vtab[] = {
		{ "log_level", v_log_level },
		{ "user", v_user },
		{ "pid_file", v_path_opt },
		{ "connect_timeout", v_duration },
		{ "tcp_user_timeout", v_duration0 },
		{ "shutdown_timeout", v_duration },
		{ "tls|ca", v_path },
		{ "tls|cert", v_path },
		{ "tls|key", v_path },
		{ "tls|min_version", v_tls_version },
		{ "ssh|host_key_fingerprint", v_fingerprint },
		{ "ssh|keepalive_interval", v_duration },
		{ "ssh|keepalive_count", v_keepalive_count },
		{ "reconnect|initial", v_duration },
		{ "reconnect|max", v_duration },
		{ "reconnect|jitter", v_jitter },
		{ "proxy|host", v_proxy_host },
		{ "proxy|port", v_port },
		{ "proxy|auth_file", v_path_opt },
		{ "limits|max_channels", v_max_channels },
		{ "limits|channel_buffer", v_channel_buffer },
		{ "limits|target_connect_timeout", v_duration },
		{ "consent|mode", v_consent_mode },
		{ "consent|file", v_path_opt },
		{ "consent|interval", v_duration },
		{ "service|port", v_port },
		{ "service|target", v_target },
		{ "mqtt|topic_prefix", v_mqtt_prefix },
		{ "mqtt|client_id", v_mqtt_text },
		{ "mqtt|username", v_mqtt_text },
		{ "mqtt|password_file", v_path_opt },
		{ "mqtt|tls|ca", v_path_opt },
		{ "mqtt|tls|cert", v_path_opt },
		{ "mqtt|tls|key", v_path_opt },
		{ "mqtt|tls|min_version", v_tls_version },
		{ "mqtt|keepalive", v_mqtt_keepalive },
		{ "mqtt|qos", v_mqtt_qos },
		{ "mqtt|inflight", v_mqtt_inflight },
		{ "mqtt|queue_max_messages", v_mqtt_queue_msgs },
		{ "mqtt|queue_max_bytes", v_mqtt_queue_bytes },
		{ "mqtt|spool_dir", v_path_opt },
		{ "mqtt|spool_max_bytes", v_mqtt_spool_bytes },
		{ "mqtt|connect_timeout", v_duration },
		{ "mqtt|backoff_max", v_duration },
		{ "mqtt|cmd_key_file", v_path_opt },
		{ "mqtt|cmd_window", v_duration_1s },
		{ "uplink_mode", v_uplink_mode },
		{ "on_demand_idle", v_duration_1s },
		{ "telemetry|interval", v_duration_1s },
		{ "telemetry|hmac_key_file", v_path_opt },
		{ "telemetry|metrics_file", v_path_opt },
		{ "telemetry|metrics_file_interval", v_duration_1s },
		{ "telemetry|metrics_command_interval", v_duration_1s },
		{ "telemetry|metrics_command_timeout", v_duration_1s },
		{ "control|rollback_timeout", v_duration },
		{ "control|log_lines", v_log_lines },
		{ "control|state_dir", v_path },
		{ "shell|user", v_shell_user },
		{ "shell|command", v_path_opt },
		{ "shell|idle_timeout", v_duration0 },
	};
	cfg_t *cfg;
	size_t i;

	/* cfg_init() copies the option arrays, so they may live here. */
	if ((cfg = cfg_init(opts, CFGF_NONE)) == NULL)
		return NULL;
	for (i = 0; i < RT_ARRAY_SIZE(vtab); i++)
		cfg_set_validate_func(cfg, vtab[i].opt, vtab[i].fn);
	return cfg;
}

/*
 * Pass 2: build the struct, with the checks that need more than one value
 */

static int
dupstr(char **dst, const char *s)
{
	if ((*dst = strdup(s != NULL ? s : "")) == NULL)
		return RT_ERR_NOMEM;
	return 0;
}

/* A duration already checked in pass 1; 0 when it was bad. */
static int64_t
get_ms(cfg_t *sec, const char *opt)
{
	int64_t ms;

	if (cfgu_parse_duration(cfg_getstr(sec, opt), &ms) != 0)
		return 0;
	return ms;
}

static int
load_relays(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	unsigned int i, n = cfg_size(cfg, "relays");
	int r;

	if (n == 0) {
		sec_err(lc, NULL, "relays: at least one \"HOST:PORT\" is "
		    "required");
		return 0;
	}
	if (n > AGENT_MAX_RELAYS) {
		sec_err(lc, NULL, "relays: %u given, at most %d allowed", n,
		    AGENT_MAX_RELAYS);
		n = AGENT_MAX_RELAYS;
	}
	for (i = 0; i < n; i++) {
		const char *s = cfg_getnstr(cfg, "relays", i);
		size_t k = ac->nrelays;

		r = split_hostport(s, &ac->relay_host[k], &ac->relay_port[k]);
		if (r == RT_ERR_NOMEM)
			return r;
		if (r != 0) {
			sec_err(lc, NULL, "relays: \"%s\" is not HOST:PORT or "
			    "[IPV6]:PORT", s);
			continue;
		}
		ac->nrelays++;
	}
	return 0;
}

/* Refuses a secret file that group or others could read, naming it. */
static void
check_secret(struct load_ctx *lc, cfg_t *sec, const char *opt,
    const char *path)
{
	char err[CFGU_ERRLEN / 2];
	int r;

	if (path == NULL || *path != '/')
		return;		/* missing or relative: already reported */
	err[0] = '\0';
	if ((r = cfgu_check_key_perms_for(path, lc->run_uid, err,
	    sizeof(err))) == 0)
		return;
	if (r == RT_ERR_PERM)
		lc->nperm++;
	sec_err(lc, sec, "%s: %s", opt,
	    err[0] != '\0' ? err : rt_strerror(r));
}

static void
check_readable(struct load_ctx *lc, cfg_t *sec, const char *opt,
    const char *path)
{
	struct stat st;

	if (path == NULL || *path != '/')
		return;
	if (stat(path, &st) != 0)
		sec_err(lc, sec, "%s: %s: %s", opt, path, strerror(errno));
}

static int
load_tls(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	cfg_t *sec = cfgu_getsec(cfg, "tls");
	static const char *req[] = { "ca", "cert", "key" };
	const char *v;
	size_t i;
	int r;

	for (i = 0; i < RT_ARRAY_SIZE(req); i++)
		if (cfg_getstr(sec, req[i]) == NULL)
			sec_err(lc, sec, "%s: required (a file under "
			    "/etc/revtun/)", req[i]);
	check_readable(lc, sec, "ca", cfg_getstr(sec, "ca"));
	check_readable(lc, sec, "cert", cfg_getstr(sec, "cert"));
	check_secret(lc, sec, "key", cfg_getstr(sec, "key"));

	v = cfg_getstr(sec, "min_version");
	ac->tls_min_version = strcmp(v, "1.2") == 0 ? TLS1_2_VERSION :
	    TLS1_3_VERSION;
	if ((r = dupstr(&ac->tls_ca, cfg_getstr(sec, "ca"))) != 0 ||
	    (r = dupstr(&ac->tls_cert, cfg_getstr(sec, "cert"))) != 0 ||
	    (r = dupstr(&ac->tls_key, cfg_getstr(sec, "key"))) != 0 ||
	    (r = dupstr(&ac->tls_server_name,
	    cfg_getstr(sec, "server_name"))) != 0)
		return r;
	return 0;
}

static int
load_ssh_reconnect(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	cfg_t *sec = cfgu_getsec(cfg, "ssh");
	int r;

	if ((r = dupstr(&ac->ssh_host_key_fp,
	    cfg_getstr(sec, "host_key_fingerprint"))) != 0)
		return r;
	ac->keepalive_interval_ms = get_ms(sec, "keepalive_interval");
	ac->keepalive_count = (unsigned int)cfg_getint(sec, "keepalive_count");

	sec = cfgu_getsec(cfg, "reconnect");
	ac->backoff_initial_ms = get_ms(sec, "initial");
	ac->backoff_max_ms = get_ms(sec, "max");
	ac->backoff_jitter_pct = (unsigned int)cfg_getint(sec, "jitter");
	if (ac->backoff_initial_ms > 0 && ac->backoff_max_ms > 0 &&
	    ac->backoff_initial_ms > ac->backoff_max_ms)
		sec_err(lc, sec, "initial (%s) is longer than max (%s)",
		    cfg_getstr(sec, "initial"), cfg_getstr(sec, "max"));
	return 0;
}

static int
load_proxy(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	cfg_t *sec = cfgu_getsec(cfg, "proxy");
	char pbuf[16];
	const char *auth = cfg_getstr(sec, "auth_file");
	int r;

	snprintf(pbuf, sizeof(pbuf), "%ld", cfg_getint(sec, "port"));
	if ((r = dupstr(&ac->proxy_host, cfg_getstr(sec, "host"))) != 0 ||
	    (r = dupstr(&ac->proxy_port, pbuf)) != 0 ||
	    (r = dupstr(&ac->proxy_auth_file, auth)) != 0)
		return r;
	if (*auth != '\0') {
		if (*ac->proxy_host == '\0')
			sec_err(lc, sec, "auth_file is set but host is not");
		check_secret(lc, sec, "auth_file", auth);
	}
	return 0;
}

static int
load_limits_consent(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	cfg_t *sec = cfgu_getsec(cfg, "limits");
	enum agent_consent_mode mode = CONSENT_OFF;
	const char *file, *cmd;
	int r;

	ac->max_channels = (unsigned int)cfg_getint(sec, "max_channels");
	if (cfgu_parse_size(cfg_getstr(sec, "channel_buffer"),
	    &ac->channel_buffer) != 0)
		ac->channel_buffer = 0;
	ac->target_connect_timeout_ms = get_ms(sec, "target_connect_timeout");

	sec = cfgu_getsec(cfg, "consent");
	(void)parse_consent_mode(cfg_getstr(sec, "mode"), &mode);
	ac->consent_mode = mode;
	file = cfg_getstr(sec, "file");
	cmd = cfg_getstr(sec, "command");
	ac->consent_interval_ms = get_ms(sec, "interval");
	if ((r = dupstr(&ac->consent_file, file)) != 0 ||
	    (r = dupstr(&ac->consent_command, cmd)) != 0)
		return r;
	if (mode != CONSENT_OFF && (*file == '\0') == (*cmd == '\0'))
		sec_err(lc, sec, "mode \"%s\" needs exactly one of file or "
		    "command", cfg_getstr(sec, "mode"));
	return 0;
}

static int
is_builtin(const char *name)
{
	return strcmp(name, "control") == 0 || strcmp(name, "shell") == 0;
}

static int
load_services(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	unsigned int i, n = cfg_size(cfg, "service");
	int r;

	for (i = 0; i < n; i++) {
		cfg_t *sec = cfgu_getnsec(cfg, "service", i);
		const char *name = cfg_title(sec);
		const char *target = cfg_getstr(sec, "target");
		struct agent_service *s;
		int port, bad = 0;
		size_t j;

		if (ac->nservices == AGENT_MAX_SERVICES) {
			sec_err(lc, sec, "more than %d services",
			    AGENT_MAX_SERVICES);
			break;
		}
		if (!rt_valid_id(name)) {
			sec_err(lc, sec, "invalid name: use 1..64 of "
			    "A-Z a-z 0-9 . _ -, not starting with . or -");
			bad = 1;
		}
		port = cfg_size(sec, "port") > 0 ?
		    (int)cfg_getint(sec, "port") : 0;
		if (cfg_size(sec, "port") == 0) {
			sec_err(lc, sec, "port: required (the nominal port "
			    "announced to the relay)");
			bad = 1;
		} else if (port < 1 || port > 65535)
			bad = 1;	/* reported in pass 1 */
		if (is_builtin(name) && target != NULL) {
			sec_err(lc, sec, "target: not allowed, \"%s\" is "
			    "built in", name);
			bad = 1;
		} else if (!is_builtin(name) && target == NULL) {
			sec_err(lc, sec, "target: required (HOST:PORT)");
			bad = 1;
		} else if (target != NULL &&
		    split_hostport(target, NULL, NULL) != 0)
			bad = 1;	/* reported in pass 1 */
		for (j = 0; !bad && j < ac->nservices; j++) {
			if (ac->services[j].port == port) {
				sec_err(lc, sec, "port %d already used by "
				    "service %s", port, ac->services[j].name);
				bad = 1;
			}
		}
		if (bad)
			continue;

		s = &ac->services[ac->nservices];
		if ((s->name = strdup(name)) == NULL)
			return RT_ERR_NOMEM;
		ac->nservices++;	/* from here freed with ac */
		s->port = port;
		s->builtin = is_builtin(name);
		if (s->builtin) {
			if ((r = dupstr(&s->target_host, "")) != 0 ||
			    (r = dupstr(&s->target_port, "")) != 0)
				return r;
		} else if ((r = split_hostport(target, &s->target_host,
		    &s->target_port)) != 0)
			return r;
	}
	/*
	 * An agent without a single registration cannot keep its session:
	 * libssh2 1.10 reads the session only through a listener or a
	 * channel, so keepalive answers would never be read and the agent
	 * would reconnect forever. Say so at -t time instead.
	 */
	if (n == 0)
		sec_err(lc, NULL, "service: none configured; the relay would "
		    "have nothing to reach (add at least "
		    "`service control { port = N }`)");
	return 0;
}

/*
 * The control and shell sections. A `service shell` needs shell.enable:
 * a PTY on the gateway is never offered by accident.
 */
static int
load_control_shell(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	cfg_t *sec = cfgu_getsec(cfg, "control");
	int r;

	ac->control_rollback_timeout_ms = get_ms(sec, "rollback_timeout");
	ac->control_log_lines = (unsigned int)cfg_getint(sec, "log_lines");
	if ((r = dupstr(&ac->control_state_dir,
	    cfg_getstr(sec, "state_dir"))) != 0)
		return r;
	sec = cfgu_getsec(cfg, "shell");
	ac->shell_enable = cfg_getbool(sec, "enable") ? 1 : 0;
	ac->shell_idle_timeout_ms = get_ms(sec, "idle_timeout");
	if ((r = dupstr(&ac->shell_user, cfg_getstr(sec, "user"))) != 0 ||
	    (r = dupstr(&ac->shell_command, cfg_getstr(sec, "command"))) != 0)
		return r;
	if (agent_config_service_by_name(ac, "shell") != NULL &&
	    !ac->shell_enable)
		sec_err(lc, sec, "service shell is configured but "
		    "shell.enable is false (set enable = true to offer a "
		    "PTY shell)");
	/* After the drop nothing can become another account. */
	if (ac->shell_enable && *ac->user != '\0' &&
	    strcmp(ac->shell_user, ac->user) != 0)
		sec_err(lc, sec, "user = \"%s\", but the agent drops to "
		    "user \"%s\" at start and cannot become anyone else "
		    "after that; set user = \"%s\" here (or remove the "
		    "top-level user)", ac->shell_user, ac->user, ac->user);
	return 0;
}

/*
 * The mqtt section. Values were checked in pass 1; the files it names are
 * checked only when the client is enabled (a disabled section may keep
 * placeholder paths).
 */
static int
load_mqtt(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	struct agent_mqtt_config *mc = &ac->mqtt;
	cfg_t *sec = cfgu_getsec(cfg, "mqtt");
	cfg_t *tls = cfgu_getsec(sec, "tls");
	unsigned int i, n = cfg_size(sec, "brokers");
	const char *ca, *cert, *key, *pw;
	uint64_t b;
	int r;

	mc->enable = cfg_getbool(sec, "enable") ? 1 : 0;
	if (n == 0)
		sec_err(lc, sec, "brokers: at least one \"HOST:PORT\" is "
		    "required");
	if (n > AGENT_MQTT_MAX_BROKERS) {
		sec_err(lc, sec, "brokers: %u given, at most %d allowed", n,
		    AGENT_MQTT_MAX_BROKERS);
		n = AGENT_MQTT_MAX_BROKERS;
	}
	for (i = 0; i < n; i++) {
		const char *b_s = cfg_getnstr(sec, "brokers", i);
		size_t k = mc->nbrokers;

		r = split_hostport(b_s, &mc->broker_host[k],
		    &mc->broker_port[k]);
		if (r == RT_ERR_NOMEM)
			return r;
		if (r != 0) {
			sec_err(lc, sec, "brokers: \"%s\" is not HOST:PORT or "
			    "[IPV6]:PORT", b_s);
			continue;
		}
		mc->nbrokers++;
	}
	ca = cfg_getstr(tls, "ca");
	cert = cfg_getstr(tls, "cert");
	key = cfg_getstr(tls, "key");
	pw = cfg_getstr(sec, "password_file");
	if ((r = dupstr(&mc->topic_prefix, cfg_getstr(sec, "topic_prefix")))
	    != 0 ||
	    (r = dupstr(&mc->client_id, cfg_getstr(sec, "client_id"))) != 0 ||
	    (r = dupstr(&mc->username, cfg_getstr(sec, "username"))) != 0 ||
	    (r = dupstr(&mc->password_file, pw)) != 0 ||
	    (r = dupstr(&mc->tls_ca, ca)) != 0 ||
	    (r = dupstr(&mc->tls_cert, cert)) != 0 ||
	    (r = dupstr(&mc->tls_key, key)) != 0 ||
	    (r = dupstr(&mc->tls_server_name,
	    cfg_getstr(tls, "server_name"))) != 0 ||
	    (r = dupstr(&mc->spool_dir, cfg_getstr(sec, "spool_dir"))) != 0 ||
	    (r = dupstr(&mc->cmd_key_file, cfg_getstr(sec, "cmd_key_file")))
	    != 0)
		return r;
	mc->cmd_window_ms = get_ms(sec, "cmd_window");
	mc->tls_min_version = strcmp(cfg_getstr(tls, "min_version"), "1.3")
	    == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
	(void)cfgu_parse_duration(cfg_getstr(sec, "keepalive"),
	    &mc->keepalive_ms);
	mc->clean_session = cfg_getbool(sec, "clean_session") ? 1 : 0;
	mc->qos = (int)cfg_getint(sec, "qos");
	mc->inflight = (unsigned int)cfg_getint(sec, "inflight");
	mc->queue_max_messages = (size_t)cfg_getint(sec, "queue_max_messages");
	mc->queue_max_bytes = cfgu_parse_size(cfg_getstr(sec,
	    "queue_max_bytes"), &b) == 0 ? b : 0;
	mc->spool_max_bytes = cfgu_parse_size(cfg_getstr(sec,
	    "spool_max_bytes"), &b) == 0 ? b : 0;
	mc->connect_timeout_ms = get_ms(sec, "connect_timeout");
	mc->backoff_max_ms = get_ms(sec, "backoff_max");

	if (!mc->enable)
		return 0;
	if (*ca == '\0')
		sec_err(lc, sec, "tls: ca: required when enable = true");
	if ((*cert == '\0') != (*key == '\0'))
		sec_err(lc, sec, "tls: cert and key go together");
	if (*pw != '\0' && *mc->username == '\0')
		sec_err(lc, sec, "password_file is set but username is not "
		    "(MQTT-3.1.2-22)");
	check_readable(lc, sec, "tls: ca", ca);
	check_readable(lc, sec, "tls: cert", cert);
	check_secret(lc, sec, "tls: key", key);
	check_secret(lc, sec, "password_file", pw);
	check_secret(lc, sec, "cmd_key_file", mc->cmd_key_file);
	return 0;
}

/*
 * The telemetry section and uplink_mode. On-demand needs the MQTT client
 * and a command key: without them a tunnel-open could never arrive and
 * the agent would never connect.
 */
static int
load_telemetry(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	struct agent_telemetry_config *tc = &ac->telemetry;
	cfg_t *sec = cfgu_getsec(cfg, "telemetry");
	unsigned int i, n = cfg_size(sec, "disks");
	int r;

	tc->interval_ms = get_ms(sec, "interval");
	tc->metrics_file_interval_ms = get_ms(sec, "metrics_file_interval");
	tc->metrics_command_interval_ms = get_ms(sec,
	    "metrics_command_interval");
	tc->metrics_command_timeout_ms = get_ms(sec,
	    "metrics_command_timeout");
	if (n > AGENT_TM_MAX_DISKS) {
		sec_err(lc, sec, "disks: %u given, at most %d allowed", n,
		    AGENT_TM_MAX_DISKS);
		n = AGENT_TM_MAX_DISKS;
	}
	for (i = 0; i < n; i++) {
		const char *d = cfg_getnstr(sec, "disks", i);

		if (d == NULL || *d != '/') {
			sec_err(lc, sec, "disks: \"%s\" is not an absolute "
			    "path", d != NULL ? d : "");
			continue;
		}
		if ((r = dupstr(&tc->disks[tc->ndisks], d)) != 0)
			return r;
		tc->ndisks++;
	}
	if ((r = dupstr(&tc->hmac_key_file, cfg_getstr(sec,
	    "hmac_key_file"))) != 0 ||
	    (r = dupstr(&tc->metrics_file, cfg_getstr(sec, "metrics_file")))
	    != 0 ||
	    (r = dupstr(&tc->metrics_command, cfg_getstr(sec,
	    "metrics_command"))) != 0)
		return r;
	if (ac->mqtt.enable)
		check_secret(lc, sec, "hmac_key_file", tc->hmac_key_file);

	ac->uplink_mode = strcmp(cfg_getstr(cfg, "uplink_mode"),
	    "on-demand") == 0 ? UPLINK_ON_DEMAND : UPLINK_ALWAYS;
	ac->on_demand_idle_ms = get_ms(cfg, "on_demand_idle");
	if (ac->uplink_mode == UPLINK_ON_DEMAND && (!ac->mqtt.enable ||
	    *ac->mqtt.cmd_key_file == '\0'))
		sec_err(lc, cfgu_getsec(cfg, "mqtt"), "uplink_mode = "
		    "\"on-demand\" needs enable = true and cmd_key_file (the "
		    "tunnel opens only on a signed tunnel-open command)");
	return 0;
}

/* First: key files owned by `user` are fine (checked as root, before
 * the drop; read again as the user on every reconnect). */
static int
load_user(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	struct privs_user pu;
	char why[CFGU_ERRLEN / 2];
	int r;

	if ((r = dupstr(&ac->user, cfg_getstr(cfg, "user"))) != 0 ||
	    (r = dupstr(&ac->pid_file, cfg_getstr(cfg, "pid_file"))) != 0)
		return r;
	if (*ac->user == '\0' || strspn(ac->user, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(ac->user))
		return 0;	/* none, or v_user said what is wrong */
	if (privs_lookup(ac->user, &pu, why, sizeof(why)) != 0)
		sec_err(lc, NULL, "%s", why);
	else
		lc->run_uid = pu.uid;
	return 0;
}

static int
build(struct agent_config *ac, cfg_t *cfg, struct load_ctx *lc)
{
	enum log_level level = LOG_LVL_INFO;
	int r;

	if ((r = dupstr(&ac->path, lc->name)) != 0 ||
	    (r = load_user(ac, cfg, lc)) != 0 ||
	    (r = load_relays(ac, cfg, lc)) != 0 ||
	    (r = load_tls(ac, cfg, lc)) != 0 ||
	    (r = load_ssh_reconnect(ac, cfg, lc)) != 0 ||
	    (r = load_proxy(ac, cfg, lc)) != 0 ||
	    (r = load_limits_consent(ac, cfg, lc)) != 0 ||
	    (r = load_services(ac, cfg, lc)) != 0 ||
	    (r = load_mqtt(ac, cfg, lc)) != 0 ||
	    (r = load_telemetry(ac, cfg, lc)) != 0 ||
	    (r = load_control_shell(ac, cfg, lc)) != 0)
		return r;
	ac->connect_timeout_ms = get_ms(cfg, "connect_timeout");
	ac->tcp_user_timeout_ms = get_ms(cfg, "tcp_user_timeout");
	ac->shutdown_timeout_ms = get_ms(cfg, "shutdown_timeout");
	(void)log_level_parse(cfg_getstr(cfg, "log_level"), &level);
	ac->log_level = (int)level;
	ac->log_syslog = cfg_getbool(cfg, "syslog") ? 1 : 0;
	return 0;
}

/*
 * libconfuse creates the single (untitled) sections at cfg_init(), before
 * it knows the file name, and keeps them while parsing, so their messages
 * would carry no "FILE:LINE: ". Name them here; the line is set by the
 * parser when the section opens (0 if the file has none).
 */
static int
label_sections(cfg_t *cfg, const char *name)
{
	static const char *secs[] = {
		"tls", "ssh", "reconnect", "proxy", "limits", "consent",
		"mqtt", "mqtt|tls", "telemetry", "control", "shell",
	};
	size_t i;

	for (i = 0; i < RT_ARRAY_SIZE(secs); i++) {
		cfg_t *sec = cfgu_getsec(cfg, secs[i]);
		char *fn;

		if (sec == NULL)
			continue;
		if ((fn = strdup(name)) == NULL)
			return RT_ERR_NOMEM;
		free(sec->filename);
		sec->filename = fn;
	}
	return 0;
}

static int
load(const char *text, const char *name, struct agent_config **out,
    struct cfgu_errors *errs)
{
	struct cfgu_errors local;
	struct load_ctx lc;
	struct agent_config *ac = NULL;
	cfg_t *cfg = NULL;
	unsigned int n0, nerr;
	int r;

	if (errs == NULL)
		errs = &local;
	cfgu_errors_init(errs);
	lc.name = name;
	lc.errs = errs;
	lc.nperm = 0;
	lc.run_uid = (uid_t)-1;

	if ((cfg = schema_new()) == NULL) {
		cfgu_errors_add(errs, "%s: out of memory", name);
		r = RT_ERR_NOMEM;
		goto out;
	}
	if ((r = label_sections(cfg, name)) != 0) {
		cfgu_errors_add(errs, "%s: out of memory", name);
		goto out;
	}
	n0 = err_count(errs);
	if (text != NULL)
		r = cfgu_parse_buf(cfg, text, name, errs);
	else
		r = cfgu_parse(cfg, name, 0, errs);
	if (r != 0)
		goto out;	/* syntax or I/O: the values are incomplete */

	if ((ac = calloc(1, sizeof(*ac))) == NULL) {
		cfgu_errors_add(errs, "%s: out of memory", name);
		r = RT_ERR_NOMEM;
		goto out;
	}
	if ((r = build(ac, cfg, &lc)) != 0) {
		cfgu_errors_add(errs, "%s: out of memory", name);
		goto out;
	}
	nerr = err_count(errs) - n0;
	if (nerr > 0) {
		r = nerr == lc.nperm ? RT_ERR_PERM : RT_ERR_CONFIG;
		goto out;
	}
	*out = ac;
	ac = NULL;
	r = 0;
 out:
	agent_config_free(ac);
	if (cfg != NULL)
		cfg_free(cfg);
	return r;
}

int
agent_config_load(const char *path, struct agent_config **out,
    struct cfgu_errors *errs)
{
	if (path == NULL || out == NULL)
		return RT_ERR_INVAL;
	return load(NULL, path, out, errs);
}

int
agent_config_load_buf(const char *text, const char *name,
    struct agent_config **out, struct cfgu_errors *errs)
{
	if (out == NULL)
		return RT_ERR_INVAL;
	return load(text != NULL ? text : "", name != NULL ? name : "[buf]",
	    out, errs);
}

void
agent_config_free(struct agent_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	for (i = 0; i < AGENT_MAX_RELAYS; i++) {
		free(cfg->relay_host[i]);
		free(cfg->relay_port[i]);
	}
	free(cfg->tls_ca);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->tls_server_name);
	free(cfg->ssh_host_key_fp);
	free(cfg->proxy_host);
	free(cfg->proxy_port);
	free(cfg->proxy_auth_file);
	for (i = 0; i < AGENT_MAX_SERVICES; i++) {
		free(cfg->services[i].name);
		free(cfg->services[i].target_host);
		free(cfg->services[i].target_port);
	}
	free(cfg->consent_file);
	free(cfg->consent_command);
	for (i = 0; i < AGENT_MQTT_MAX_BROKERS; i++) {
		free(cfg->mqtt.broker_host[i]);
		free(cfg->mqtt.broker_port[i]);
	}
	free(cfg->mqtt.topic_prefix);
	free(cfg->mqtt.client_id);
	free(cfg->mqtt.username);
	free(cfg->mqtt.password_file);
	free(cfg->mqtt.tls_ca);
	free(cfg->mqtt.tls_cert);
	free(cfg->mqtt.tls_key);
	free(cfg->mqtt.tls_server_name);
	free(cfg->mqtt.spool_dir);
	free(cfg->mqtt.cmd_key_file);
	for (i = 0; i < AGENT_TM_MAX_DISKS; i++)
		free(cfg->telemetry.disks[i]);
	free(cfg->telemetry.hmac_key_file);
	free(cfg->telemetry.metrics_file);
	free(cfg->telemetry.metrics_command);
	free(cfg->control_state_dir);
	free(cfg->shell_user);
	free(cfg->shell_command);
	free(cfg->user);
	free(cfg->pid_file);
	free(cfg);
}

/*
 * Lookups and diff
 */

const struct agent_service *
agent_config_service_by_name(const struct agent_config *cfg, const char *name)
{
	size_t i;

	if (cfg == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cfg->nservices; i++)
		if (strcmp(cfg->services[i].name, name) == 0)
			return &cfg->services[i];
	return NULL;
}

const struct agent_service *
agent_config_service_by_port(const struct agent_config *cfg, int port)
{
	size_t i;

	if (cfg == NULL)
		return NULL;
	for (i = 0; i < cfg->nservices; i++)
		if (cfg->services[i].port == port)
			return &cfg->services[i];
	return NULL;
}

/* NULL-safe string inequality. */
static int
sdiff(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

static int
service_eq(const struct agent_service *a, const struct agent_service *b)
{
	return a->port == b->port && a->builtin == b->builtin &&
	    !sdiff(a->target_host, b->target_host) &&
	    !sdiff(a->target_port, b->target_port);
}

int
agent_config_service_same(const struct agent_config *old_cfg,
    const struct agent_config *new_cfg, const char *name)
{
	const struct agent_service *a, *b;

	a = agent_config_service_by_name(old_cfg, name);
	b = agent_config_service_by_name(new_cfg, name);
	return a != NULL && b != NULL && service_eq(a, b);
}

static int
uplink_differs(const struct agent_config *a, const struct agent_config *b)
{
	size_t i;

	if (a->nrelays != b->nrelays)
		return 1;
	for (i = 0; i < a->nrelays; i++)
		if (sdiff(a->relay_host[i], b->relay_host[i]) ||
		    sdiff(a->relay_port[i], b->relay_port[i]))
			return 1;
	return sdiff(a->tls_ca, b->tls_ca) ||
	    sdiff(a->tls_cert, b->tls_cert) ||
	    sdiff(a->tls_key, b->tls_key) ||
	    a->tls_min_version != b->tls_min_version ||
	    sdiff(a->tls_server_name, b->tls_server_name) ||
	    sdiff(a->ssh_host_key_fp, b->ssh_host_key_fp) ||
	    a->keepalive_interval_ms != b->keepalive_interval_ms ||
	    a->keepalive_count != b->keepalive_count ||
	    a->connect_timeout_ms != b->connect_timeout_ms ||
	    a->tcp_user_timeout_ms != b->tcp_user_timeout_ms ||
	    sdiff(a->proxy_host, b->proxy_host) ||
	    sdiff(a->proxy_port, b->proxy_port) ||
	    sdiff(a->proxy_auth_file, b->proxy_auth_file);
}

static int
services_differ(const struct agent_config *a, const struct agent_config *b)
{
	size_t i;

	if (a->nservices != b->nservices)
		return 1;
	/* Same count and every old one unchanged in new: same set. */
	for (i = 0; i < a->nservices; i++)
		if (!agent_config_service_same(a, b, a->services[i].name))
			return 1;
	return 0;
}

static int
mqtt_differs(const struct agent_mqtt_config *a,
    const struct agent_mqtt_config *b)
{
	size_t i;

	if (a->nbrokers != b->nbrokers)
		return 1;
	for (i = 0; i < a->nbrokers; i++)
		if (sdiff(a->broker_host[i], b->broker_host[i]) ||
		    sdiff(a->broker_port[i], b->broker_port[i]))
			return 1;
	return a->enable != b->enable ||
	    sdiff(a->topic_prefix, b->topic_prefix) ||
	    sdiff(a->client_id, b->client_id) ||
	    sdiff(a->username, b->username) ||
	    sdiff(a->password_file, b->password_file) ||
	    sdiff(a->tls_ca, b->tls_ca) || sdiff(a->tls_cert, b->tls_cert) ||
	    sdiff(a->tls_key, b->tls_key) ||
	    a->tls_min_version != b->tls_min_version ||
	    sdiff(a->tls_server_name, b->tls_server_name) ||
	    a->keepalive_ms != b->keepalive_ms ||
	    a->clean_session != b->clean_session || a->qos != b->qos ||
	    a->inflight != b->inflight ||
	    a->queue_max_messages != b->queue_max_messages ||
	    a->queue_max_bytes != b->queue_max_bytes ||
	    sdiff(a->spool_dir, b->spool_dir) ||
	    a->spool_max_bytes != b->spool_max_bytes ||
	    a->connect_timeout_ms != b->connect_timeout_ms ||
	    a->backoff_max_ms != b->backoff_max_ms ||
	    sdiff(a->cmd_key_file, b->cmd_key_file) ||
	    a->cmd_window_ms != b->cmd_window_ms;
}

static int
telemetry_differs(const struct agent_telemetry_config *a,
    const struct agent_telemetry_config *b)
{
	size_t i;

	if (a->ndisks != b->ndisks)
		return 1;
	for (i = 0; i < a->ndisks; i++)
		if (sdiff(a->disks[i], b->disks[i]))
			return 1;
	return a->interval_ms != b->interval_ms ||
	    sdiff(a->hmac_key_file, b->hmac_key_file) ||
	    sdiff(a->metrics_file, b->metrics_file) ||
	    a->metrics_file_interval_ms != b->metrics_file_interval_ms ||
	    sdiff(a->metrics_command, b->metrics_command) ||
	    a->metrics_command_interval_ms != b->metrics_command_interval_ms ||
	    a->metrics_command_timeout_ms != b->metrics_command_timeout_ms;
}

unsigned int
agent_config_diff(const struct agent_config *old_cfg,
    const struct agent_config *new_cfg)
{
	const struct agent_config *a = old_cfg, *b = new_cfg;
	unsigned int d = 0;

	if (a == NULL || b == NULL)
		return a == b ? 0 : AGENT_DIFF_UPLINK | AGENT_DIFF_SERVICES |
		    AGENT_DIFF_CONSENT | AGENT_DIFF_LIMITS | AGENT_DIFF_LOG |
		    AGENT_DIFF_MQTT | AGENT_DIFF_CONTROL |
		    AGENT_DIFF_TELEMETRY | AGENT_DIFF_UPLINK_MODE;
	if (uplink_differs(a, b))
		d |= AGENT_DIFF_UPLINK;
	if (services_differ(a, b))
		d |= AGENT_DIFF_SERVICES;
	if (a->consent_mode != b->consent_mode ||
	    sdiff(a->consent_file, b->consent_file) ||
	    sdiff(a->consent_command, b->consent_command) ||
	    a->consent_interval_ms != b->consent_interval_ms)
		d |= AGENT_DIFF_CONSENT;
	if (a->max_channels != b->max_channels ||
	    a->channel_buffer != b->channel_buffer ||
	    a->target_connect_timeout_ms != b->target_connect_timeout_ms ||
	    a->shutdown_timeout_ms != b->shutdown_timeout_ms ||
	    a->backoff_initial_ms != b->backoff_initial_ms ||
	    a->backoff_max_ms != b->backoff_max_ms ||
	    a->backoff_jitter_pct != b->backoff_jitter_pct)
		d |= AGENT_DIFF_LIMITS;
	if (a->log_syslog != b->log_syslog || a->log_level != b->log_level)
		d |= AGENT_DIFF_LOG;
	if (mqtt_differs(&a->mqtt, &b->mqtt))
		d |= AGENT_DIFF_MQTT;
	if (telemetry_differs(&a->telemetry, &b->telemetry))
		d |= AGENT_DIFF_TELEMETRY;
	if (a->uplink_mode != b->uplink_mode ||
	    a->on_demand_idle_ms != b->on_demand_idle_ms)
		d |= AGENT_DIFF_UPLINK_MODE;
	if (a->control_rollback_timeout_ms != b->control_rollback_timeout_ms ||
	    a->control_log_lines != b->control_log_lines ||
	    sdiff(a->control_state_dir, b->control_state_dir) ||
	    a->shell_enable != b->shell_enable ||
	    sdiff(a->shell_user, b->shell_user) ||
	    sdiff(a->shell_command, b->shell_command) ||
	    a->shell_idle_timeout_ms != b->shell_idle_timeout_ms)
		d |= AGENT_DIFF_CONTROL;
	return d;
}
