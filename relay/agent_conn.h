/*
 * agent_conn.h - agents' connections: TLS with a required client
 * certificate, the TLS plaintext pumped through a socketpair into a libssh
 * server session, auth "none", service registrations (tcpip-forward) and
 * keepalive.
 *
 * States: TLS (handshake; handshake_timeout from accept) -> SSH (key
 * exchange and auth none, same deadline) -> UP (registered by id; a
 * previous connection with the same id is torn down at once).
 *
 * Agent id = certificate CN, [A-Za-z0-9._-]{1,64}, optionally limited to
 * agents.allow. Registrations: bind address = service name (an id), port =
 * its nominal port 1..65535; unique name and port per agent; the name must
 * match an agents.services pattern; at most agent_max_services. A refused
 * registration gets REQUEST_FAILURE and the session stays up.
 *
 * Keepalive: when nothing came from the agent for keepalive_interval, the
 * relay sends keepalive@openssh.com (want reply) every interval; after
 * keepalive_interval * keepalive_count without a byte the agent is dead.
 * Detection bound: interval * count + RELAY_TICK_MS.
 */
#ifndef RT_AGENT_CONN_H
#define RT_AGENT_CONN_H

#include "relay.h"

/*
 * Takes over fd (its first byte was a TLS record), accepted at t_accept
 * (monotonic ms): handshake_timeout counts from then, not from the first
 * byte, so a peer cannot hold a slot for twice the bound. Returns 0 or an
 * RT_ERR_* code (fd closed, reason logged).
 */
int agent_start(struct relay *r, int fd, const char *src, const char *host,
		int64_t t_accept);

/* Marks a dead with a reason (logged and audited at reap). */
void agent_kill(struct agent *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Answers the requests libssh queued for a's session. Packets are also
 * read outside a's own fd events (a channel open or write polls the
 * session), so the pump calls this for every session it touched.
 */
void agent_drain(struct agent *a);

/* Deadlines and keepalive (called from the relay tick). */
void agent_tick(struct agent *a, int64_t now);

/* Releases a: detaches its bridges, unregisters, frees everything.
 * Reaper only. */
void agent_free(struct agent *a);

#endif
