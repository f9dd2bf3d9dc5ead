/*
 * audit.h - the relay's audit log: one JSON object per line per security
 * event, in its own file, separate from the debug log.
 *
 * Every line has "ts" (UTC, ms) and "event" first, then the event's
 * fields, in this order ("[x]" = only sometimes; docs/relay.md has the
 * meanings). Keep this list in step with the audit_rec_* callers:
 *   auth_ok / auth_fail   operator, key_fp, src, method, [reason]
 *                         (operator.c)
 *   agent_up              agent, src, cert_fp, version (agent_conn.c)
 *   agent_down            agent, src, cert_fp, reason
 *   agent_deny            agent (null before an id is known), src, reason;
 *                         only refusals involving a certificate or an id
 *   forward_ok            agent, service, port
 *   forward_deny          agent, service, port, reason
 *   channel_open          operator, agent, service, port, src, rule, id
 *                         (bridge.c)
 *   channel_deny          refused before a bridge exists (operator.c):
 *                         operator, agent, service, target, port, src,
 *                         rule, reason (agent/service null if unknown);
 *                         refused by the agent or on the way (bridge.c):
 *                         operator, agent, service, src, rule, reason, id
 *   channel_close         operator, agent, service, id, bytes_to_agent,
 *                         bytes_from_agent, duration_ms, reason
 *   exec / exec_deny      agent commands (ctlexec.c): operator, agent,
 *                         command, src, rule, [reason] (exec_deny);
 *                         relay-local ones (operator.c: agents, help,
 *                         unknown): operator, command, src
 *   config                a change sent to an agent (ctlexec.c): operator,
 *                         agent, change, [bytes, sha256] (apply),
 *                         exit_status (null: no answer before the end);
 *                         a relay reload (relay.c): change "reload", file
 *   agent_event           agent, detail (ctlexec.c: the JSON object the
 *                         agent reported, as a string)
 * Strings are JSON-escaped bytewise: '"' and '\' get a backslash, bytes
 * below 0x20, 0x7f and every byte >= 0x80 become \u00XX. So lines are
 * pure ASCII and a peer-supplied value cannot break or forge one; UTF-8
 * text appears as one escape per byte ("é" is "\u00c3\u00a9"), which a
 * reader turns back into the original bytes with latin-1. Each line is
 * written with one write(2) on an O_APPEND|O_CLOEXEC fd (file created
 * 0640), so lines never interleave. A record that would exceed
 * AUDIT_LINE_MAX is cut at a field boundary: the field that does not fit
 * and every later one are dropped and "truncated":true is added, so the
 * line is still one valid JSON object.
 */
#ifndef RT_AUDIT_H
#define RT_AUDIT_H

#include <stddef.h>
#include <sys/types.h>

#define AUDIT_LINE_MAX 4096

struct audit;

struct audit_rec {
	char buf[AUDIT_LINE_MAX];
	size_t len;
	int truncated;
};

/*
 * Opens path for appending (created 0640; a symbolic link is refused);
 * "-" means stderr. Returns 0,
 * RT_ERR_INVAL for an empty path ("" = audit off is the caller's choice:
 * pass NULL to audit_write), RT_ERR_SYS or RT_ERR_NOMEM, with err naming
 * the file.
 */
int audit_open(const char *path, struct audit **out, char *err,
	       size_t errlen);

/* Reopens the same path (after log rotation, on HUP); no-op for stderr.
 * On failure logs it, keeps the old fd and returns RT_ERR_SYS. */
int audit_reopen(struct audit *a);

/*
 * Before the relay drops root: hands a root-owned audit file to uid:gid
 * through the open fd (never by name), so the user can reopen it after
 * rotation. A file not owned by root is left alone (0); a root-owned one
 * that is not a regular file with a single link is refused (RT_ERR_PERM:
 * a hard link planted by the user would give away another root file).
 * RT_ERR_SYS if fstat/fchown fail. err names the file. No-op for stderr
 * or NULL.
 */
int audit_give(struct audit *a, uid_t uid, gid_t gid, char *err,
	       size_t errlen);

/* Path given to audit_open(). */
const char *audit_path(const struct audit *a);

/* Closes; NULL is a no-op. */
void audit_close(struct audit *a);

/* Starts a record for event with the current time. A record is plain
 * memory: no cleanup, reusable after begin. */
void audit_rec_begin(struct audit_rec *r, const char *event);

/* Adds a string field (NULL is written as null). */
void audit_rec_str(struct audit_rec *r, const char *key, const char *val);

/* Adds an integer field. */
void audit_rec_int(struct audit_rec *r, const char *key, long long val);

/* Adds a boolean field. */
void audit_rec_bool(struct audit_rec *r, const char *key, int val);

/* Finishes the record (closing brace and newline) and returns the line
 * (r->buf, NUL-terminated, ending in '\n', r->len bytes). Calling it
 * again returns the same line; fields added after it are ignored. */
const char *audit_rec_end(struct audit_rec *r);

/*
 * Finishes r and writes it. a may be NULL (audit off: nothing written).
 * Returns 0 or RT_ERR_SYS (logged, rate limited, once per burst).
 */
int audit_write(struct audit *a, struct audit_rec *r);

#endif
