/*
 * protodetect.h - which protocol a new connection speaks, from its first
 * bytes: the relay's one port takes agents (TLS) and operators (SSH).
 *
 * Pure: no I/O, no state, no allocation. The listener peeks (MSG_PEEK) at
 * most PD_PEEK_LEN bytes and asks pd_classify() about what it has so far;
 * "need more" means look again later, bounded by handshake_timeout.
 *
 * The rules, and only these (RFC 8446 5.1, RFC 4253 4.2):
 *   - first byte 0x16 (TLS content type "handshake"): TLS, an agent. The
 *     record's version and length are not checked here: OpenSSL parses the
 *     record and refuses a bad one, and the agent path logs that failure
 *     rate limited and holds the slot under the pending limits;
 *   - "SSH-" (case-sensitive): SSH, an operator. The rest of the
 *     identification string (protocol version, software version, its
 *     length and CR LF) is libssh's to check, under the handshake
 *     deadline that runs from accept;
 *   - a proper prefix of "SSH-" ("S", "SS", "SSH"), or nothing: need more;
 *   - anything else: reject.
 * A decision needs at most PD_PEEK_LEN bytes, and once made it never
 * changes when more bytes arrive; bytes past PD_PEEK_LEN are ignored.
 */
#ifndef RT_PROTODETECT_H
#define RT_PROTODETECT_H

#include <stddef.h>

/* Bytes that always suffice for a decision (strlen("SSH-")). */
#define PD_PEEK_LEN 4

enum pd_proto {
	PD_NEED_MORE = 0,	/* a proper prefix of "SSH-", or no bytes */
	PD_TLS = 1,		/* a TLS record: an agent */
	PD_SSH = 2,		/* an SSH identification string: an operator */
	PD_REJECT = 3,		/* neither: close the connection */
};

/*
 * Classifies the first len bytes b[0..len) a peer sent (b may be NULL when
 * len is 0). Never reads past b[len - 1] nor past b[PD_PEEK_LEN - 1].
 * *why is set to NULL on entry; for PD_REJECT it is set to a static,
 * non-empty reason for the log. len 0 is PD_NEED_MORE: end of stream is
 * the caller's to tell apart. Returns one of enum pd_proto.
 */
enum pd_proto pd_classify(const unsigned char *b, size_t len,
    const char **why);

/* "need more", "TLS", "SSH", "reject" (for logs and tests). */
const char *pd_name(enum pd_proto p);

#endif
