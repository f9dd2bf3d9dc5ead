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
 * config_rollback event: kept in state_dir/event.pending (shown by
 * `status` as last_event) and given to the event hook (MQTT). The
 * probation survives a restart through state_dir/probation.
 *
 * libssh2 1.10 has no call to send an arbitrary global request, so the
 * "event@revtun" request to the relay is not sent; the relay learns of a
 * rollback from `status` (last_event line).
 */
#ifndef RT_CONTROL_H
#define RT_CONTROL_H

#include <stddef.h>

#include <libssh2.h>

struct agent;
struct control;
struct sshc;

#define CONTROL_MAX_CHANNELS	16		/* built-in channels at once */
#define CONTROL_OUT_MAX		(1088 * 1024)	/* frames to the relay: a
						 * whole config file fits */
#define CONTROL_FOLLOW_BACKLOG	(64 * 1024)	/* per `logs -f` */

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

/* Built-in channels open. */
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

#endif
