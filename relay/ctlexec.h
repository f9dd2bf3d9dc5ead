/*
 * ctlexec.h - operator exec commands answered by an agent's built-in
 * `control` (or `shell`) service: status, config show|set|apply, logs,
 * reload, shell.
 *
 * One struct ctlexec hangs off an operator's exec session (struct
 * opexec, operator.c) once the channel asked for a PTY or ran one of
 * these commands. A command is parsed strictly (bad syntax: usage on
 * stderr, exit status 2), checked against the ACL right it needs (read:
 * status, config show; write: config set|apply, reload; logs: logs;
 * shell: shell) and audited (exec / exec_deny; config for changes). An
 * unknown agent, an offline one and a forbidden one get the same line on
 * stderr and exit status 1. Then a forwarded-tcpip channel is opened to
 * the agent's registered service exactly as a direct-tcpip open would be
 * routed, and the two channels are joined with ctlproto framing
 * (common/ctlproto.h):
 *
 *   operator stdin  -> CTL_DATA frames, CTL_EOF at stdin EOF -> agent
 *   agent CTL_DATA  -> operator stdout
 *   agent CTL_EXIT  -> SSH exit-status, then EOF and close
 *   pty-req (kept until `shell`) -> CTL_PTY, window-change -> CTL_WINCH
 *
 * States: IDLE (PTY remembered, no command yet) -> OPENING (forwarded
 * open in flight, bounded by handshake_timeout) -> OPEN -> FINISHING
 * (exit status known: drain stdout, then stderr, then exit-status, EOF,
 * close) -> done (the opexec is marked dead and reaped by operator.c). A
 * protocol error, the agent channel ending without CTL_EXIT, or the agent
 * going away end the command with exit status 255 and one line on
 * stderr.
 *
 * Buffers per command, each bounded (channel_buffer = limits.
 * channel_buffer, at least one whole frame): op_in (operator stdin as
 * received: channel_buffer from callbacks plus BRIDGE_PULL_ROOM for the
 * all-at-once pull, see bridge.c dir_pull), to_agent (frames,
 * channel_buffer), from_agent (agent frames as received: like op_in),
 * to_op (stdout bytes, channel_buffer) and to_op_err (one line). A source
 * is read only while the buffer it fills has room; SSH window credit goes
 * back only as bytes move on. At most BRIDGE_QUOTA bytes per direction
 * per pump round.
 *
 * Lifetime: callbacks only append or set flags; everything else runs from
 * the pump (ctlexec_service) and the reaper (ctlexec_reap_check,
 * ctlexec_free). The agent is referenced by pointer while the command
 * lives: ctlexec_reap_check() lets go of it when it is marked dead, which
 * the reaper runs before any agent is freed.
 */
#ifndef RT_CTLEXEC_H
#define RT_CTLEXEC_H

#include <stddef.h>
#include <stdint.h>

#include "ctlproto.h"
#include "relay.h"

struct ctlexec;

#define CTL_CMD_MAX 4096	/* a command line, and CTL_REQ's command */

enum ctl_kind {
	KIND_READ = 0,		/* status, config show, logs [-f] */
	KIND_SET,		/* config set KEY VALUE */
	KIND_APPLY,		/* config apply */
	KIND_RELOAD,
	KIND_SHELL,
};

/* One parsed exec command line. */
struct ctl_cmd {
	enum ctl_kind kind;
	const char *right;		/* ACL right needed (static string) */
	char agent[RELAY_ID_MAX + 1];	/* "" if too long to be an id */
	char service[16];		/* "control" or "shell" */
	char cmd[CTL_CMD_MAX + 1];	/* canonical, sent in CTL_REQ */
	char audit[512];		/* as audited: no secret values */
	char change[256];		/* config audit summary, "" if none */
	int secret;			/* set of a key that looks secret */
};

/*
 * Parses an exec command line (pure, no I/O): "status A", "config A show",
 * "config A set KEY VALUE" (VALUE = the rest of the line, inner blanks
 * kept, outer ones dropped; KEY of [A-Za-z0-9._-[]], at most 128),
 * "config A apply", "logs A [-f]", "reload A", "shell A"; words split by
 * blanks, anything else is a usage error. Lines with control characters
 * or longer than CTL_CMD_MAX - 64 are refused. A KEY containing "pass",
 * "secret", "token", "key", "hmac", "credential", "psk", "private" or
 * "auth" (any case) is secret: its VALUE appears in neither audit nor
 * change. Returns 0 with *p filled, or RT_ERR_INVAL with only p->audit
 * set (at most the first three words, for the exec_deny record).
 */
int ctlexec_parse(const char *line, struct ctl_cmd *p);

/*
 * The agent that command p of operator op_name may run on: granted
 * p->right by the ACL (*rule gets the deciding rule; rule may be NULL)
 * and up. NULL otherwise, with *why "forbidden", "no such agent" or
 * "agent offline" for the audit; the operator sees one answer for all
 * three (DESIGN.md, ACL).
 */
struct agent *ctlexec_target(struct relay *r, const char *op_name,
			     const struct ctl_cmd *p, const char **rule,
			     const char **why);

/* 1 if word (the first word of an exec command) is handled here. */
int ctlexec_is_command(const char *word);

/*
 * A pty-req on x's channel before its exec: remembers TERM and size for a
 * later `shell` (the relay itself allocates no PTY). Returns 0 (answer
 * success), RT_ERR_INVAL (bad values) or RT_ERR_NOMEM (answer failure).
 */
int ctlexec_pty(struct opexec *x, const char *term, int cols, int rows);

/* A window-change on x's channel: forwarded as CTL_WINCH once a shell is
 * open, remembered before. Returns 0 or RT_ERR_INVAL (no PTY was asked
 * for, or bad values). */
int ctlexec_winch(struct opexec *x, int cols, int rows);

/*
 * Runs exec command line cmd (its first word satisfied
 * ctlexec_is_command) on x: parse, ACL check, audit, then the open toward
 * the agent is started. Every outcome, failures included, ends in an
 * exit status sent by ctlexec_service(); x->ran is set.
 */
void ctlexec_start(struct opexec *x, const char *cmd);

/* 1 once ctlexec_start() ran on x: channel data and EOF go to
 * ctlexec_op_data / ctlexec_op_eof. */
int ctlexec_active(const struct opexec *x);

/* Operator channel callbacks (libssh context: append / flag only).
 * Returns how many bytes were taken; the rest stays in libssh. */
int ctlexec_op_data(struct opexec *x, const void *data, uint32_t len);
void ctlexec_op_eof(struct opexec *x);

/* One pump round for x. Returns 1 if it moved anything. Marks x dead
 * once exit status, EOF and close went to the operator. */
int ctlexec_service(struct opexec *x);

/* Channels that commands hold open on ag (they count toward
 * agent_max_channels with its bridges). */
unsigned int ctlexec_channels_on(struct relay *r, const struct agent *ag);

/* Reaper, before agents are freed: a command whose agent is dead lets go
 * of the agent channel and ends with exit status 255. */
void ctlexec_reap_check(struct opexec *x);

/* Frees x->ctl and closes / frees the agent channel if the agent is
 * still there (the operator channel is operator.c's). Writes the config
 * audit record of a change whose end was not seen. NULL x->ctl is a
 * no-op. Reaper only. */
void ctlexec_free(struct opexec *x);

/*
 * An agent's event report (one CTL_DATA frame on its events channel):
 * checks it is one JSON object of at most CTLEXEC_EVENT_MAX printable
 * bytes and writes it to the audit log as event "agent_event" with agent
 * and detail. Returns 0, RT_ERR_INVAL / RT_ERR_TOOBIG (nothing written;
 * logged) or RT_ERR_SYS (the audit log could not be written).
 */
#define CTLEXEC_EVENT_MAX CTL_EVENT_MAX
int ctlexec_agent_event(struct agent *a, const char *json, size_t len);

/*
 * The agent's events channel (protocol in ctlproto.h). Once agent a is up
 * and its `control` service is registered, the relay opens a forwarded
 * channel to that service itself (originator 127.0.0.1:0; no operator is
 * involved, and ctlexec_parse() never builds the "events" command) and
 * sends CTL_REQ "relay\0events". Each CTL_DATA frame from the agent is
 * an event: written to the audit log (ctlexec_agent_event), then acked
 * with "ack ID"; an event the audit log could not take is not acked (the
 * agent keeps it) and is tried again on the next tick. One that is not
 * valid JSON is logged and acked, so it cannot block the agent's queue.
 * At most CTLEXEC_EVENTS_PER_MIN events a minute are read per agent; the
 * rest wait in the channel (flow control, nothing lost). An open the
 * agent refuses or leaves unanswered (handshake_timeout), a protocol
 * error, or the agent closing the channel: tried again after
 * CTLEXEC_EVENTS_RETRY_MS while the service is registered. An agent that
 * answers with something that is not an event (DATA without a leading id,
 * or CTL_EXIT: it does not know the command) is not asked again on this
 * connection.
 *
 * ctlexec_events_service() runs after the agent's session was polled and
 * on every tick: it starts, advances and pumps the channel. Returns 1 if
 * anything moved (the caller syncs the session). ctlexec_events_free()
 * closes the channel; call it before the agent's session is freed.
 */
#define CTLEXEC_EVENTS_RETRY_MS 30000
#define CTLEXEC_EVENTS_PER_MIN 60
int ctlexec_events_service(struct agent *a);
void ctlexec_events_free(struct agent *a);

/* Pure check used by ctlexec_agent_event(): 1 if json[0..len) is one
 * JSON object (RFC 8259, nesting <= 16) made of printable ASCII or UTF-8
 * bytes (no control characters), 0 otherwise. */
int ctlexec_json_object_ok(const char *json, size_t len);

#endif
