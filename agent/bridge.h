/*
 * bridge.h - forwarded channels: one libssh2 channel from the relay
 * bridged to one TCP connection to a local target.
 *
 * A channel is accepted only for a service in the agent's own config (the
 * relay is never trusted), while the consent gate allows sessions and
 * fewer than max_channels are open; otherwise it is closed at once and
 * nothing is dialed. Channels of built-in services (control, shell) are
 * handed to control_accept() (control.h) and serviced by control_pump()
 * from bridge_pump(). The target is dialed with target_connect_timeout; a
 * failure closes that channel only, with a logged reason.
 *
 * Data paths, each bounded by channel_buffer:
 *   relay -> to_target -> target socket
 *   target socket -> from_target -> relay
 * The channel is read only while to_target has room, so SSH window credit
 * (libssh2 grants it as the channel is read) follows what the target
 * drained. Channel writes stop while the session's to_relay buffer is
 * above its high-water mark.
 *
 * Wake-ups: the target socket wakes the pump when it can take or give
 * bytes; relay bytes arrive through libssh2, which may already hold them
 * (read from TLS while servicing another channel), so no socket event
 * announces them. bridge_pump() therefore reports a channel that stopped
 * at its quota with work left, and the session pumps again after a pass
 * that read anything from the relay (sshc.c), until a pass is idle.
 *
 * Half-close: channel EOF -> shutdown(SHUT_WR) once to_target is drained;
 * target EOF -> channel EOF once from_target is drained, and the channel
 * is still read until the relay closes it.
 *
 * Lifetime: fd callbacks only move bytes and mark state; channels are
 * closed and freed by bridge_pump() (never inside a callback).
 */
#ifndef RT_BRIDGE_H
#define RT_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <libssh2.h>

struct agent;
struct sshc;
struct bridge;

/* Bytes moved per channel per direction per pump (fairness quota). */
#define BRIDGE_QUOTA (32 * 1024)

/* Creates an empty channel set. Returns 0 and *out, or RT_ERR_NOMEM. */
int bridge_new(struct agent *a, struct bridge **out);

/*
 * Frees every channel: target sockets closed, dials cancelled. libssh2
 * channels are not freed (the session frees them). NULL is a no-op.
 */
void bridge_free(struct bridge *b);

/*
 * Takes ownership of ch, accepted on the forward of service svc (the name
 * the agent registered). Refuses (closes ch) when the service is not in
 * the current config, consent is closed or the cap is reached; otherwise
 * starts dialing the target. Returns 0 if accepted, RT_ERR_REFUSED /
 * RT_ERR_LIMIT / RT_ERR_NOMEM if refused (ch handed to closing).
 */
int bridge_accept(struct bridge *b, LIBSSH2_CHANNEL *ch, const char *svc,
		  const char *relay);

/*
 * Services every channel once, round-robin starting after the one served
 * first last time, then reaps closed channels. s is the owning session
 * (for its output high-water mark). *more is set to 1 when a channel
 * stopped at its quota with work left: no fd event will announce that
 * work (libssh2 already holds the bytes, or the target socket is parked
 * because from_target is full), so the caller must pump again soon.
 * Returns 0, RT_ERR_PROTO when the relay leaves too many channels
 * unclosed, or RT_ERR_SSH as soon as sshc_lib_broken(s) (no channel is
 * touched after that).
 */
int bridge_pump(struct bridge *b, struct sshc *s, int *more);

/* Starts closing every channel of service svc (NULL = all), logging why. */
void bridge_close_service(struct bridge *b, const char *svc, const char *why);

/* Channels open (closing ones included). */
unsigned int bridge_count(const struct bridge *b);

/* Logs one line per channel. */
void bridge_log(const struct bridge *b);

#endif
