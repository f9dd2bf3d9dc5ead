/*
 * control.h - the agent's built-in services: `control` (status, config
 * show / set / apply, logs [-f], reload) and `shell` (a PTY, shell.h),
 * spoken over forwarded channels in the ctlproto.h framing, and the
 * rollback of remote configuration changes.
 *
 * Channels: bridge.c hands over every forwarded channel whose service is
 * built in (control_accept); control_pump() services them once per SSH
 * pump, round-robin, and reaps the dead; control_session_gone() forgets
 * them when the SSH session is freed (libssh2 frees the channels). A
 * channel: REQ -> command (-> stdin for `config apply`) -> output frames
 * -> EXIT -> close. Output is bounded per channel (CONTROL_OUT_MAX) and
 * written only while the session's to_relay is below its high-water mark.
 *
 * Writes (`config set`, `config apply`): the new text is validated with
 * agent_config_load_buf() first; a bad one is answered with the parser's
 * messages and exit status 1, nothing written. A good one is installed
 * by cfgstore (atomic; the running file kept as .last-good), answered
 * with what changed, then reloaded exactly like SIGHUP once the answer
 * has left the agent.
 *
 * Rollback: after such a change the agent is on probation for
 * control.rollback_timeout. It ends well when the SSH session is up
 * again (a new session when relay settings changed). Otherwise the agent
 * restores .last-good itself, reloads, logs a warning and records a
 * config_rollback event. The probation survives a restart through
 * state_dir/probation.
 *
 * Events ({"id":N,"event":...}, ids increasing, see ctlproto.h) go to
 * state_dir/event.pending (the last one; `status` shows it as
 * last_event), to the event hook (MQTT) and to the relay's audit log: the
 * relay opens an events channel (CTL_REQ "relay\0events") once the
 * agent's control service is registered, the agent sends every event
 * not yet acknowledged, and forgets one only when the relay has acked
 * it. Until then events wait in a queue kept in state_dir/events.queue
 * (written atomically on every change), so they survive the outage that
 * caused them and a restart. The queue holds at most CONTROL_EVQ_MAX
 * events and CONTROL_EVQ_BYTES bytes: a new event drops the oldest ones
 * (logged; counted in the "dropped" member of later events; their ids
 * leave a gap). Delivery is at least once: an event whose ack was lost
 * comes again with the same id.
 */
#ifndef RT_CONTROL_H
#define RT_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include <libssh2.h>

struct agent;
struct control;
struct sshc;

#define CONTROL_MAX_CHANNELS	16		/* built-in channels at once */
#define CONTROL_OUT_MAX		(1088 * 1024)	/* frames to the relay: a
						 * whole config file fits */
#define CONTROL_FOLLOW_BACKLOG	(64 * 1024)	/* per `logs -f` */
#define CONTROL_EVENT_MAX	1024		/* one event's JSON, with NUL */
#define CONTROL_EVQ_MAX		32		/* events waiting for the relay */
#define CONTROL_EVQ_BYTES	(16 * 1024)	/* ... and their bytes at most */

/* Events waiting for the relay's ack, oldest first. */
struct control_evq {
	uint64_t next_id;		/* id of the next event, >= 1 */
	uint64_t dropped;		/* events dropped for room, ever */
	unsigned int n;
	size_t bytes;			/* sum of the JSON lengths */
	uint64_t id[CONTROL_EVQ_MAX];
	char *json[CONTROL_EVQ_MAX];
};

/* Receives events as one JSON object, e.g.
 * {"event":"config_rollback","reason":"...","from":"alice"}. */
typedef void (*control_event_fn)(void *arg, const char *json);

/* Creates the control service (no channels). Returns 0 and *out or
 * RT_ERR_NOMEM. */
int control_new(struct agent *a, struct control **out);

/* Hangs up shells, forgets channels and frees. NULL is a no-op. */
void control_free(struct control *c);

/* At start-up: resumes a probation a restart interrupted and loads a
 * pending event from state_dir. */
void control_start(struct control *c);

/*
 * Takes ownership of ch, a forwarded channel for built-in service svc
 * ("control" or "shell") from the relay named relay. Refuses (closes
 * it) when the cap is reached, the agent is stopping, or for `shell` when
 * shell.enable is off or the consent gate is closed. Returns 0 if
 * accepted, RT_ERR_REFUSED / RT_ERR_LIMIT / RT_ERR_NOMEM otherwise.
 */
int control_accept(struct control *c, LIBSSH2_CHANNEL *ch, const char *svc,
		   const char *relay);

/* Services every built-in channel once (at most a quota each) and reaps
 * the dead ones. s is the owning session (for its output high-water
 * mark). Returns 1 if some channel stopped at its quota with work left
 * (pump again soon), else 0. */
int control_pump(struct control *c, struct sshc *s);

/* The SSH session is being freed with its channels: forget ours (no
 * libssh2 calls) and hang up their shells. */
void control_session_gone(struct control *c);

/* Operator sessions on built-in channels (the relay's events channel is
 * not one). */
unsigned int control_count(const struct control *c);

/* Runs once per agent pump, before a pending reload: probation
 * bookkeeping, rollback when due, reaping shells whose channel is gone. */
void control_check(struct control *c);

/* Called by the agent after a reload swapped a new config in: a change
 * on probation is judged from then on; sessions of a built-in service
 * the new config removed (or shell.enable turned off) are closed. */
void control_reloaded(struct control *c);

/* SIGCHLD: reaps exited shells. */
void control_sigchld(struct control *c);

/* Installs the event hook (NULL to remove). */
void control_set_event_hook(struct control *c, control_event_fn fn,
			    void *arg);

/* Writes the status report ("key: value" lines) into a new string.
 * Returns 0 and *out (free() it) or RT_ERR_NOMEM. */
int control_status_text(struct control *c, char **out);

/*
 * Pure helpers (unit-tested):
 *
 * control_redact() returns a copy of a config text where the value of
 * every option whose name contains "password", "secret", "passphrase" or
 * "token" is replaced by "<redacted>". 0 and *out, or RT_ERR_NOMEM.
 *
 * control_config_set() returns a copy of text with option KEY set to
 * VALUE: KEY is "opt", "section.opt" or "service.NAME.opt"; the option's
 * line is replaced, or added at the end of its section, or the section
 * is appended. VALUE is written as is when it is a number, true/false or
 * a { } list, else quoted. 0 and *out, RT_ERR_INVAL (bad KEY or VALUE,
 * reason in err) or RT_ERR_NOMEM.
 */
int control_redact(const char *text, char **out);
int control_config_set(const char *text, const char *key, const char *value,
		       char **out, char *err, size_t errsz);

/*
 * The event queue (pure: no I/O; the caller persists it):
 *
 * control_evq_init() empties q (next_id 1, dropped 0) without freeing;
 * control_evq_clear() frees the events and keeps next_id and dropped.
 *
 * control_evq_room() drops the oldest events until one more of len bytes
 * fits both bounds; returns how many it dropped (added to q->dropped).
 *
 * control_evq_push() queues a copy of json, which must be an event
 * (ctl_event_id) whose id is >= next_id and shorter than
 * CONTROL_EVENT_MAX; next_id becomes id + 1 even when the copy fails.
 * Makes room first (as control_evq_room). Returns the number dropped
 * (>= 0), RT_ERR_INVAL (nothing changed) or RT_ERR_NOMEM (counted as
 * dropped).
 *
 * control_evq_ack() forgets every event with an id <= id; returns how
 * many.
 *
 * control_evq_format() writes q as the events.queue text: a line
 * "revtun-events 1", "next N", "dropped N", then one event per line.
 * 0 and *out (free() it) or RT_ERR_NOMEM.
 *
 * control_evq_parse() reads that text into q (emptied first; q must be
 * initialised). A bad first line refuses the whole text (RT_ERR_INVAL,
 * reason in err, q empty). Event lines that are not events (ctl_event_id,
 * printable ASCII, shorter than CONTROL_EVENT_MAX) or whose ids do not
 * increase are skipped; what exceeds the bounds drops the oldest. Returns
 * the number of lines skipped (>= 0; err names the first) or
 * RT_ERR_NOMEM.
 */
void control_evq_init(struct control_evq *q);
void control_evq_clear(struct control_evq *q);
unsigned int control_evq_room(struct control_evq *q, size_t len);
int control_evq_push(struct control_evq *q, const char *json);
unsigned int control_evq_ack(struct control_evq *q, uint64_t id);
int control_evq_format(const struct control_evq *q, char **out);
int control_evq_parse(const char *text, struct control_evq *q, char *err,
		      size_t errsz);

#endif
