/*
 * ctlproto.h - framing on the agent's built-in `control` and `shell`
 * channels, spoken between revtun-relay (which turns an operator's exec
 * command such as `status gw-17` into a forwarded channel to the agent's
 * `control` service) and revtun-agent (which answers it without dialing
 * anything).
 *
 * A channel carries frames in both directions:
 *
 *   +--------+----------------------+-------------------+
 *   | type:1 | length:3 (big endian) | payload: length   |
 *   +--------+----------------------+-------------------+
 *
 * length <= CTL_MAX_PAYLOAD. Frame types:
 *
 *   CTL_REQ   relay→agent, first frame, exactly once. Payload:
 *             "OPERATOR\0COMMAND" where COMMAND is one line of UTF-8:
 *             "status", "config show", "config set KEY VALUE",
 *             "config apply", "logs", "logs -f", "reload", "shell".
 *   CTL_PTY   relay→agent, optional, before DATA on a shell: 2-byte
 *             cols, 2-byte rows, then the TERM name (no NUL).
 *   CTL_WINCH relay→agent: 2-byte cols, 2-byte rows.
 *   CTL_DATA  both ways: bytes (a config file being applied, command
 *             output, shell input/output). Empty payloads are allowed.
 *   CTL_EOF   both ways: the sender sends no more DATA.
 *   CTL_EXIT  agent→relay, last frame: 4-byte exit status (0 = success),
 *             then the agent closes the channel.
 *
 * Anything else (unknown type, length over the limit, REQ twice, a frame
 * in the wrong direction) is a protocol error: the receiver closes the
 * channel and logs why. The parser is pure and fuzzed.
 *
 * The event channel (the relay's own, never an operator's): when an
 * agent registers its `control` service the relay opens one more channel
 * to it and sends CTL_REQ "relay\0events" (CTL_EVENTS_OP, CTL_EVENTS_CMD;
 * the relay never builds that command for an operator). The channel then
 * stays open for the life of the SSH session:
 *
 *   agent -> relay  CTL_DATA: one event, a JSON object of at most
 *                   CTL_EVENT_MAX bytes whose first member is its id:
 *                   {"id":7,"event":"config_rollback",...}; ids are
 *                   decimal, 1..CTL_EVENT_ID_MAX, increasing per agent.
 *   relay -> agent  CTL_DATA "ack 7" once event 7 is in the audit log:
 *                   every event with an id <= 7 is delivered.
 *
 * Delivery is at least once: an event whose ack was lost is sent again on
 * the next channel, with the same id.
 */
#ifndef RT_CTLPROTO_H
#define RT_CTLPROTO_H

#include <stddef.h>
#include <stdint.h>

struct buf;

#define CTL_HDR_LEN 4
#define CTL_MAX_PAYLOAD 65536

enum ctl_type {
	CTL_REQ = 1,
	CTL_DATA = 2,
	CTL_EOF = 3,
	CTL_EXIT = 4,
	CTL_PTY = 5,
	CTL_WINCH = 6,
};

struct ctl_frame {
	uint8_t type;
	uint32_t len;
	const uint8_t *payload;	/* points into the parsed buffer */
};

/*
 * Parses one frame at the start of data[0..len). Returns the frame's
 * total size (header + payload, > 0) and fills *f; RT_ERR_AGAIN when more
 * bytes are needed; RT_ERR_PROTO for an unknown type; RT_ERR_TOOBIG when
 * the declared length exceeds CTL_MAX_PAYLOAD (known from the header
 * alone, before any payload is buffered).
 */
int ctl_parse(const uint8_t *data, size_t len, struct ctl_frame *f);

/*
 * Appends one frame to out. Returns 0, RT_ERR_FULL (nothing appended:
 * the buffer lacks room for the whole frame), RT_ERR_TOOBIG (len >
 * CTL_MAX_PAYLOAD) or RT_ERR_INVAL (unknown type).
 */
int ctl_append(struct buf *out, uint8_t type, const void *payload,
	       size_t len);

/*
 * Splits a CTL_REQ payload into operator and command, both checked:
 * operator 1..64 of [A-Za-z0-9._-], command 1..4096 bytes of printable
 * UTF-8 without control characters. Copies them NUL-terminated into op
 * (opsz >= 65) and cmd (cmdsz). Returns 0 or RT_ERR_PROTO.
 */
int ctl_req_split(const struct ctl_frame *f, char *op, size_t opsz,
		  char *cmd, size_t cmdsz);

/* Encodes / decodes the 4-byte payloads of CTL_WINCH (cols, rows) and
 * CTL_EXIT (status). Decoders return 0 or RT_ERR_PROTO (wrong length). */
void ctl_put_u16(uint8_t *p, uint16_t v);
void ctl_put_u32(uint8_t *p, uint32_t v);
int ctl_get_winch(const struct ctl_frame *f, uint16_t *cols, uint16_t *rows);
int ctl_get_exit(const struct ctl_frame *f, uint32_t *status);

#define CTL_EVENTS_OP "relay"
#define CTL_EVENTS_CMD "events"
#define CTL_EVENT_MAX 4096
#define CTL_EVENT_ID_MAX 999999999999999ULL	/* 15 digits */
#define CTL_ACK_MAX 32				/* "ack " + id, with room */

/*
 * The id of an event: p[0..len) must start with {"id":N followed by ',' or
 * '}' (no blanks), N decimal without leading zeros, 1..CTL_EVENT_ID_MAX.
 * Only the prefix is checked, not the rest of the object. Returns 0 and
 * *id, or RT_ERR_PROTO.
 */
int ctl_event_id(const uint8_t *p, size_t len, uint64_t *id);

/* An ack payload: exactly "ack N" (N as above). Returns 0 and *id, or
 * RT_ERR_PROTO. */
int ctl_ack_parse(const uint8_t *p, size_t len, uint64_t *id);

/* Writes the ack payload for id into out (outsz >= CTL_ACK_MAX, no NUL
 * counted). Returns its length. */
size_t ctl_ack_format(char *out, size_t outsz, uint64_t id);

#endif
