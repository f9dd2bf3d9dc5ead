/*
 * listener.h - listening sockets and the first-bytes triage.
 *
 * Every accepted socket is checked against max_connections, max_pending
 * and max_pending_per_source (unauthenticated connections from the same
 * address), then waits up to handshake_timeout for its first bytes, read
 * with MSG_PEEK so the next layer sees them again: 0x16 (a TLS handshake
 * record) is an agent, "SSH-" is an operator, anything else is closed
 * (pd_classify() in protodetect.h; a partial "SSH-" is peeked again). On
 * an operator-only listener a TLS record is refused too. A peer that sends
 * nothing before the deadline is closed. Limits are enforced at accept, so
 * idle or slow peers cost one small struct each and can never take more
 * than max_pending slots, while connections that authenticated do not
 * count against the pending limits at all.
 */
#ifndef RT_LISTENER_H
#define RT_LISTENER_H

#include "relay.h"

/*
 * Opens every listen and op_listen address of r->cfg and watches them.
 * Returns 0, or RT_ERR_* with err naming the address (nothing left open).
 */
int listener_open_all(struct relay *r, char *err, size_t errlen);

/* Stops accepting and closes every listener (TERM). */
void listener_close_all(struct relay *r);

/* Pending-socket deadline (called from the relay tick). */
void pconn_tick(struct pconn *pc, int64_t now);

/* Frees a dead pending socket (closing its fd unless handed over). */
void pconn_free(struct pconn *pc);

#endif
