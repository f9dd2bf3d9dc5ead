/*
 * telemetry.h - what the agent publishes over MQTT: a bounded JSON writer,
 * the system collectors (pure parsers of /proc and /sys text plus a thin
 * reader), user metrics from a file or a command, and the builders of the
 * telemetry and events payloads. No MQTT here: the daemon schedules the
 * collections and hands the payloads to the MQTT client.
 *
 * Every payload is one JSON object, no whitespace, members in this order:
 *   {"agent":"gw-17","ts":"2026-11-22T01:02:03.456Z","seq":42, ...body...
 *    [,"hmac":"<64 lowercase hex>"]}
 * seq counts per topic (telemetry, events) from 1 in each process: it is
 * not persisted, so a seq going down means the agent restarted. With a
 * key, "hmac" is always the last member and is HMAC-SHA256(key, U) where U
 * is the exact payload with that member removed, i.e. the payload minus
 * its last 75 bytes (,"hmac":"<64 hex>"}) plus "}". In Python:
 *   u = p[:-75] + b"}"; hmac.new(key, u, "sha256").hexdigest() == p[-66:-2]
 * and with openssl: printf '%s' "$u" | openssl dgst -sha256 -mac HMAC
 *   -macopt hexkey:$(cat keyfile)
 *
 * User metrics, from a file or a command's stdout, at most TM_USER_MAX
 * bytes: "key value" lines. Blank lines and lines starting with '#' are
 * skipped; key is 1..64 of [A-Za-z0-9_.-], then spaces or tabs, then the
 * value up to the end of the line (trailing blanks dropped, 1..256 bytes,
 * printable UTF-8). A value in JSON number syntax is published as a
 * number, anything else as a string. At most TM_USER_METRICS keys, no
 * duplicates; one bad line refuses the whole set (the previous values
 * should be kept by the caller).
 *
 * Commands run with /bin/sh -c in their own process group, stdin and
 * stderr on /dev/null, stdout on a non-blocking pipe the loop watches;
 * nothing here blocks (see tm_cmd_start). When the shell exits, whatever
 * it left running in its group is killed, so a stray background child
 * cannot hold the pipe open. The daemon's other fds must be close-on-exec.
 */
#ifndef RT_TELEMETRY_H
#define RT_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- bounded JSON writer ---- */

#define TJ_MAX_DEPTH	16

/*
 * Writes into a caller buffer, never past cap, never allocating. Errors
 * are sticky: after the first one every call is a no-op and tj_finish()
 * reports it. key is the member name inside an object and must be NULL
 * inside an array (and for the top-level value). Strings are escaped
 * (", \, control characters; invalid UTF-8 bytes become U+FFFD).
 */
struct tjson {
	char		*buf;
	size_t		 cap;
	size_t		 len;
	int		 err;		/* 0 or the first RT_ERR_* */
	unsigned int	 depth;
	uint32_t	 is_arr;	/* bit d: level d is an array */
	uint32_t	 has_item;	/* bit d: level d has a member */
};

/* Starts writing into buf of cap bytes (cap > 0). */
void tj_init(struct tjson *j, char *buf, size_t cap);

/* Open / close an object or array (tj_close closes either). */
void tj_obj(struct tjson *j, const char *key);
void tj_arr(struct tjson *j, const char *key);
void tj_close(struct tjson *j);

/* Members / elements. tj_strn takes len bytes; tj_fixed writes v with
 * `decimals` digits after the point (0..6), or null if v is not finite. */
void tj_str(struct tjson *j, const char *key, const char *s);
void tj_strn(struct tjson *j, const char *key, const char *s, size_t len);
void tj_int(struct tjson *j, const char *key, int64_t v);
void tj_uint(struct tjson *j, const char *key, uint64_t v);
void tj_fixed(struct tjson *j, const char *key, double v, int decimals);
void tj_bool(struct tjson *j, const char *key, int v);
void tj_null(struct tjson *j, const char *key);

/* Appends len bytes the caller guarantees are one valid JSON value. */
void tj_raw(struct tjson *j, const char *key, const char *v, size_t len);

/*
 * Ends the document: NUL-terminates and sets *len to its length (without
 * the NUL). Returns 0, RT_ERR_FULL (did not fit in cap - 1 bytes),
 * RT_ERR_INVAL (unbalanced, key misuse or depth over TJ_MAX_DEPTH).
 * *len is 0 on error.
 */
int tj_finish(struct tjson *j, size_t *len);

/* ---- system collectors ---- */

#define TM_MAX_IFACES	16
#define TM_MAX_DISKS	8
#define TM_MAX_TEMPS	8
#define TM_PROC_MAX	65536	/* max bytes of a /proc or /sys file */

struct tm_iface {
	char		name[16];
	uint64_t	rx_bytes, rx_errs;
	uint64_t	tx_bytes, tx_errs;
};

struct tm_disk {
	const char	*path;		/* the caller's, not copied */
	uint64_t	 total, avail;	/* bytes; avail as for non-root */
};

struct tm_temp {
	char		zone[16];	/* "thermal_zone0" */
	int64_t		mdeg;		/* millidegrees Celsius */
};

/* One sample; has_* say which parts were read (absent ones are left out
 * of the payload rather than published as zero). */
struct tm_sys {
	int		has_uptime, has_load, has_mem;
	double		uptime_s;
	double		load[3];
	uint64_t	mem_total_kb, mem_avail_kb;
	size_t		n_disks, n_temps, n_ifaces;
	struct tm_disk	disks[TM_MAX_DISKS];
	struct tm_temp	temps[TM_MAX_TEMPS];
	struct tm_iface	ifaces[TM_MAX_IFACES];
};

/* Pure parsers of the text of /proc/uptime, /proc/loadavg, /proc/meminfo,
 * a thermal zone's temp file and /proc/net/dev (NUL-terminated). Each
 * returns 0 or RT_ERR_INVAL, filling its outputs only on success.
 * tm_parse_netdev keeps the first max interfaces and sets *n; "lo" is
 * skipped. */
int tm_parse_uptime(const char *text, double *up_s);
int tm_parse_loadavg(const char *text, double load[3]);
int tm_parse_meminfo(const char *text, uint64_t *total_kb,
    uint64_t *avail_kb);
int tm_parse_temp(const char *text, int64_t *mdeg);
int tm_parse_netdev(const char *text, struct tm_iface *out, size_t max,
    size_t *n);

/*
 * Fills *s from root/proc/... and root/sys/class/thermal/thermal_zone*
 * (root "" for the real system; tests pass a fixture tree) and statvfs()
 * of the first TM_MAX_DISKS of the ndisks paths (kept by pointer). Parts
 * that cannot be read are just absent. Reads small files only: does not
 * block on anything but the local filesystem. Returns 0.
 */
int tm_sys_collect(const char *root, const char *const *disks,
    size_t ndisks, struct tm_sys *s);

/* ---- tunnel state, passed in by the daemon ---- */

struct tm_tunnel {
	const char	*state;		/* "up", "down", ... */
	int64_t		 rtt_ms;	/* < 0: unknown, left out */
	uint32_t	 sessions;	/* open operator sessions */
	uint64_t	 bytes_to_relay, bytes_from_relay;
	uint64_t	 reconnects;	/* since the process started */
};

/* ---- user metrics ---- */

#define TM_USER_MAX	8192	/* bytes of file or command output */
#define TM_USER_METRICS	64
#define TM_KEY_MAX	64
#define TM_VAL_MAX	256

struct tm_metric {
	char	key[TM_KEY_MAX + 1];
	char	val[TM_VAL_MAX + 1];
	int	is_num;
};

struct tm_metrics {
	size_t			n;
	struct tm_metric	m[TM_USER_METRICS];
};

/*
 * Parses len bytes of "key value" lines (header comment) into *out.
 * Returns 0, RT_ERR_TOOBIG (len > TM_USER_MAX) or RT_ERR_INVAL with err
 * saying which line and why ("line 3: duplicate key 'x'"). *out is
 * emptied first and holds nothing on error. Pure.
 */
int tm_metrics_parse(const char *text, size_t len, struct tm_metrics *out,
    char *err, size_t errlen);

/* Reads path (a regular file of at most TM_USER_MAX bytes) and parses it
 * as tm_metrics_parse. Returns its codes, or RT_ERR_SYS (errno set). */
int tm_metrics_read_file(const char *path, struct tm_metrics *out,
    char *err, size_t errlen);

/* A running metrics command. fd is the read end of its stdout (-1 when
 * not running); out collects up to TM_USER_MAX bytes. */
struct tm_cmd {
	pid_t	pid;		/* -1 when reaped */
	int	fd;		/* from_child, non-blocking; -1 at EOF */
	int	status;		/* wait status once reaped */
	int64_t	deadline_ms;	/* monotonic */
	size_t	len;
	char	out[TM_USER_MAX + 1];
};

/*
 * Starts /bin/sh -c cmdline in a new process group. The daemon then
 * watches c->fd for reading and calls tm_cmd_poll() when it is readable,
 * on SIGCHLD, and from a timer at c->deadline_ms (now_ms + timeout_ms).
 * Returns 0 or RT_ERR_SYS (pipe/fork failed; c is left idle).
 */
int tm_cmd_start(struct tm_cmd *c, const char *cmdline, int64_t now_ms,
    int64_t timeout_ms);

/*
 * Reads what the pipe holds and reaps the child if it has exited; never
 * blocks. Returns RT_ERR_AGAIN while running; 0 when stdout hit EOF and
 * the child exited with status 0 (output in c->out, NUL-terminated, c->len
 * bytes); RT_ERR_TIMEOUT (past the deadline), RT_ERR_TOOBIG (more than
 * TM_USER_MAX bytes of output) or RT_ERR_PROTO (non-zero exit or killed by
 * a signal). On every result but RT_ERR_AGAIN the process group has been
 * killed if needed, the child reaped and the fd closed: the daemon must
 * drop its fd watch whenever c->fd changed.
 */
int tm_cmd_poll(struct tm_cmd *c, int64_t now_ms);

/* Kills the process group and reaps (SIGKILL then waitpid), closes the
 * fd. Safe on an idle or finished tm_cmd. */
void tm_cmd_abort(struct tm_cmd *c);

/* ---- payloads ---- */

enum tm_topic { TM_TOPIC_TELEMETRY, TM_TOPIC_EVENTS, TM_TOPIC_MAX };

enum tm_ev {
	TM_EV_TUNNEL_UP = 1,
	TM_EV_TUNNEL_DOWN,
	TM_EV_SESSION_OPEN,
	TM_EV_SESSION_CLOSE,
	TM_EV_CONFIG_CHANGE,
};

/* An event; NULL strings and zero numbers that do not apply are left
 * out. "session" is written for the session events only. */
struct tm_event {
	enum tm_ev	 type;
	uint64_t	 session;	/* session id */
	const char	*service;	/* service name */
	const char	*peer;		/* operator name */
	const char	*reason;	/* why: "relay closed", "reload ok" */
	uint64_t	 bytes_in, bytes_out;	/* session close */
	int64_t		 duration_ms;	/* < 0: absent */
};

/* Per-agent publishing state: agent id, optional HMAC key, seq counters. */
struct tm_pub;

/*
 * Creates the state for agent id (rt_valid_id) with an HMAC key of keylen
 * bytes (key NULL/keylen 0: no "hmac" member; otherwise 1..64 bytes,
 * copied). Returns 0 and *out, RT_ERR_INVAL or RT_ERR_NOMEM.
 */
int tm_new(const char *agent, const uint8_t *key, size_t keylen,
    struct tm_pub **out);

/* Wipes the key and frees; NULL is a no-op. */
void tm_free(struct tm_pub *t);

/*
 * Builds a telemetry payload into buf (cap bytes, NUL-terminated) with the
 * parts that are not NULL: "system", "tunnel", and "user": {name: {...}}
 * for a metric set. Uses the next telemetry seq only on success. Returns
 * 0 and *len, RT_ERR_FULL or RT_ERR_INVAL (*len 0).
 *   "system": {"uptime_s":N.N,"load":[a,b,c],"mem":{"total_kb":N,
 *     "avail_kb":N},"disks":[{"path":S,"total":N,"avail":N}],
 *     "temps":[{"zone":S,"mdeg":N}],"ifaces":[{"name":S,"rx_bytes":N,
 *     "rx_errs":N,"tx_bytes":N,"tx_errs":N}]}
 *   "tunnel": {"state":S,"rtt_ms":N,"sessions":N,"bytes_to_relay":N,
 *     "bytes_from_relay":N,"reconnects":N}
 */
int tm_build_telemetry(struct tm_pub *t, int64_t wall_ms,
    const struct tm_sys *sys, const struct tm_tunnel *tun,
    const char *user_name, const struct tm_metrics *user,
    char *buf, size_t cap, size_t *len);

/*
 * Builds an events payload: the envelope, "event": one of "tunnel-up",
 * "tunnel-down", "session-open", "session-close", "config-change", then
 * "session", "service", "peer", "reason", "bytes_in", "bytes_out",
 * "duration_ms" as they apply. Same returns as tm_build_telemetry.
 */
int tm_build_event(struct tm_pub *t, int64_t wall_ms, const struct tm_event *ev,
    char *buf, size_t cap, size_t *len);

/*
 * Closes the object being written in j and finishes it: when keylen > 0,
 * first adds "hmac" as the last member, computed as described at the top
 * of this file. Returns what tj_finish() returns (0 and *len, or the
 * sticky error).
 */
int tm_seal(struct tjson *j, const uint8_t *key, size_t keylen, size_t *len);

/* HMAC-SHA256 of len bytes with key (EVP_MAC). Returns 0 or RT_ERR_TLS. */
int tm_hmac_sha256(const uint8_t *key, size_t keylen, const void *data,
    size_t len, uint8_t out[32]);

#endif
