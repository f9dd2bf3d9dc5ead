/*
 * uplink.h - the agent's one connection to a relay: dial (directly or
 * through an HTTP CONNECT proxy), TLS, then the SSH session (sshc.h).
 *
 * States: IDLE (not wanted: consent gate closed in connect mode, or
 * stopping) -> WAIT (backoff timer) -> TCP -> PROXY -> TLS -> SSH -> UP.
 * Any failure tears the connection down and goes back to WAIT.
 *
 * Relay endpoints are tried in config order; when one fails before the
 * session comes up the next is tried at once; after the whole list failed
 * the uplink waits backoff_initial, doubling up to backoff_max, each delay
 * scaled by a random factor of 1 +/- backoff_jitter_pct %, then starts
 * again at the first relay. A session that was up for at least 30 s and
 * dropped starts over at the first relay after backoff_initial
 * (jittered) with the backoff reset; a shorter one counts as a failure
 * of the whole list. It retries forever; network trouble never ends the
 * daemon.
 *
 * The whole TCP + proxy + TLS + SSH handshake and auth must finish within
 * connect_timeout. Sockets get TCP keepalive and TCP_USER_TIMEOUT.
 */
#ifndef RT_UPLINK_H
#define RT_UPLINK_H

#include <stddef.h>

struct agent;
struct uplink;
struct sshc;

/* Creates an idle uplink. Returns 0 and *out or RT_ERR_NOMEM. */
int uplink_new(struct agent *a, struct uplink **out);

/* Tears down any connection (nothing sent) and frees. NULL is a no-op. */
void uplink_free(struct uplink *u);

/* Wants a connection: starts connecting now if idle (no-op otherwise). */
void uplink_start(struct uplink *u);

/* Does not want a connection: drops it (SSH disconnect best effort) and
 * stays idle until uplink_start(). why is logged. */
void uplink_stop(struct uplink *u, const char *why);

/* Drops the connection and reconnects at once from the first relay with
 * a fresh backoff (e.g. the relay settings were reloaded). */
void uplink_restart(struct uplink *u, const char *why);

/*
 * Marks the connection failed with a reason; the teardown happens in the
 * next pump, never inside the caller. Safe from any callback.
 */
void uplink_fail(struct uplink *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Runs one pump (called by the agent's deferred kick). */
void uplink_pump(struct uplink *u);

/* The SSH session when in state SSH or UP, else NULL. */
struct sshc *uplink_session(const struct uplink *u);

/*
 * Graceful stop: closes channels and sends SSH_MSG_DISCONNECT and TLS
 * close_notify; returns 1 once nothing is left to send (or no
 * connection), 0 while still flushing.
 */
int uplink_shutdown(struct uplink *u);

/* Called by sshc when the session is authenticated. */
void uplink_session_up(struct uplink *u);

/* Writes a one-line summary (state, relay, since, backoff) into buf. */
void uplink_status(const struct uplink *u, char *buf, size_t len);

#endif
