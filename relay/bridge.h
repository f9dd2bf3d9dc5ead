/*
 * bridge.h - the data path: one operator channel joined to one agent
 * channel.
 *
 * States: OPENING (the operator's direct-tcpip open is held unanswered
 * while a forwarded-tcpip open goes to the agent; the operator gets its
 * confirmation only when the agent confirmed, or the uniform refusal
 * otherwise), OPEN, DEAD (reaped after the pump pass).
 *
 * Per direction a carry buffer: libssh hands channel data to a callback
 * that takes only what fits in channel_buffer; the rest stays in libssh
 * (within the receive window it granted) and is pulled all at once when
 * it fits the carry's extra BRIDGE_PULL_ROOM (see dir_pull in bridge.c for
 * why all at once). A source is therefore read only while its carry
 * buffer has room, and a carry buffer is written to its destination only
 * as far as the destination's SSH window and socket allow: ssh_channel_write
 * may take fewer bytes than offered (pitfall 7), the rest stays queued. At
 * most BRIDGE_QUOTA bytes per direction move per pump round, so a bulk
 * channel cannot starve the others. EOF is carried each way separately
 * (half-close); when both directions are finished both channels are
 * closed. A channel whose open failed is freed, never closed (pitfall 8).
 */
#ifndef RT_BRIDGE_H
#define RT_BRIDGE_H

#include "relay.h"

/*
 * Starts a bridge for the operator's direct-tcpip open msg (ownership of
 * msg passes to the bridge) toward agent ag's service svc; rule names the
 * ACL rule that allowed it (for the audit). Returns 0, or RT_ERR_NOMEM /
 * RT_ERR_SSH (msg already answered with a refusal and freed).
 */
int bridge_open(struct opconn *op, struct agent *ag,
		const struct agent_svc *svc, ssh_message msg,
		const char *rule);

/*
 * Moves data for one round. Returns 1 if it moved anything (the caller
 * runs another round soon), 0 if idle.
 */
int bridge_service(struct bridge *b);

/* Marks b dead with a reason (kept for the log); reaped later. */
void bridge_kill(struct bridge *b, const char *why);

/* The operator's (agent's) session is going away: its channel will be
 * freed with the session, so forget it and end the bridge. */
void bridge_detach_op(struct bridge *b);
void bridge_detach_agent(struct bridge *b);

/* Checks the open deadline (called from the relay tick). */
void bridge_tick(struct bridge *b, int64_t now);

/* Releases b: answers a pending open, closes/frees channels that still
 * belong to live sessions, writes the channel_close audit record for an
 * opened bridge, unlinks it everywhere and frees it. */
void bridge_free(struct bridge *b);

#endif
