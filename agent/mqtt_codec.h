/*
 * mqtt_codec.h - pure MQTT 3.1.1 packet codec: framing, encoding and
 * decoding of every packet type, and the topic/filter/UTF-8 validators.
 *
 * No I/O, no allocation, no global state. Decoded packets are views: every
 * string and payload points into the caller's input buffer, which must
 * outlive the decoded struct. Encoders write into a caller buffer.
 *
 * Rules the codec holds to (ids as in the OASIS standard):
 *  - Remaining Length is 1..4 bytes, at most 268,435,455. A 5th
 *    continuation byte is malformed. Non-minimal encodings (e.g. 0x80 0x00
 *    for 0) are refused as malformed too: 3.1.1 only ever produces the
 *    minimal form, MQTT 5 makes it a MUST (MQTT-1.5.5-1), and refusing
 *    them makes encode(decode(x)) == x for every accepted x, which the fuzz
 *    target checks.
 *  - A decoder accepts a packet only if the encoder could have produced it
 *    byte for byte: exact fixed-header flags (MQTT-2.2.2-1/-2), no
 *    trailing bytes, no field running past the Remaining Length, packet
 *    ids non-zero where present (MQTT-2.3.1-1), well-formed UTF-8 without
 *    U+0000 (MQTT-1.5.3-1/-2; U+FEFF is kept as is, MQTT-1.5.3-3).
 *    Control characters and non-characters are accepted: the standard only
 *    says SHOULD NOT for them.
 *  - Packets a server should never send a client (CONNECT, SUBSCRIBE,
 *    UNSUBSCRIBE, PINGREQ, DISCONNECT) still decode, for tests and fuzzing;
 *    the session layer must treat their arrival as a protocol violation.
 *
 * Errors: RT_ERR_AGAIN (frame incomplete), RT_ERR_PROTO (malformed input:
 * close the connection, MQTT-4.8.0-1), RT_ERR_TOOBIG (over the caller's
 * limit or the protocol's), RT_ERR_INVAL (an encoder was asked to send
 * something invalid), RT_ERR_FULL (output buffer too small).
 */
#ifndef RT_MQTT_CODEC_H
#define RT_MQTT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define MQTT_RL_MAX		268435455u	/* largest Remaining Length */
#define MQTT_HDR_MAX		5		/* fixed header: type + 4 RL bytes */
#define MQTT_STR_MAX		65535u		/* largest string / binary field */

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
};

/* CONNACK return codes (3.2.2.3); 6..255 are reserved and never decode. */
enum mqtt_connack_rc {
	MQTT_RC_ACCEPTED = 0,
	MQTT_RC_BAD_PROTOCOL = 1,
	MQTT_RC_ID_REJECTED = 2,
	MQTT_RC_UNAVAILABLE = 3,
	MQTT_RC_BAD_CREDENTIALS = 4,
	MQTT_RC_NOT_AUTHORIZED = 5,
};

#define MQTT_SUBACK_FAILURE	0x80

/* A byte string (UTF-8 text or binary): len bytes at p, no terminator.
 * p may be NULL only when len is 0. */
struct mqtt_str {
	const uint8_t	*p;
	size_t		 len;
};

/* Makes a struct mqtt_str from a NUL-terminated C string (NULL -> empty). */
struct mqtt_str mqtt_cstr(const char *s);

struct mqtt_connect {
	struct mqtt_str	 client_id;	/* may be empty only if clean_session */
	uint16_t	 keepalive;	/* seconds, 0 = off */
	uint8_t		 clean_session;	/* 0 or 1 */
	uint8_t		 will;		/* 0 or 1: will_* are used only if 1 */
	uint8_t		 will_qos;	/* 0..2; 0 when !will */
	uint8_t		 will_retain;	/* 0 or 1; 0 when !will */
	struct mqtt_str	 will_topic;	/* a valid topic name when will */
	struct mqtt_str	 will_msg;	/* binary, may be empty */
	uint8_t		 has_username;	/* 0 or 1 */
	uint8_t		 has_password;	/* 0 or 1; needs has_username */
	struct mqtt_str	 username;	/* UTF-8, may be empty */
	struct mqtt_str	 password;	/* binary, may be empty */
};

struct mqtt_connack {
	uint8_t		 session_present;	/* 0 or 1; 0 unless rc == 0 */
	uint8_t		 rc;			/* enum mqtt_connack_rc */
};

struct mqtt_publish {
	struct mqtt_str	 topic;		/* topic name, no wildcards */
	struct mqtt_str	 payload;	/* may be empty */
	uint16_t	 id;		/* non-zero iff qos > 0 */
	uint8_t		 qos;		/* 0..2 */
	uint8_t		 dup;		/* 0 or 1; 0 when qos == 0 */
	uint8_t		 retain;	/* 0 or 1 */
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: just the packet id. */
struct mqtt_ack {
	uint16_t	 id;		/* non-zero */
};

/* One SUBSCRIBE entry (qos 0..2) or UNSUBSCRIBE entry (qos unused, 0). */
struct mqtt_sub {
	struct mqtt_str	 filter;
	uint8_t		 qos;
};

/*
 * SUBSCRIBE and UNSUBSCRIBE. To encode, set subs/count (count >= 1). A
 * decoded packet leaves subs NULL and gives the validated list as raw/
 * raw_len plus count; walk it with mqtt_sub_next().
 */
struct mqtt_subscribe {
	uint16_t		 id;	/* non-zero */
	size_t			 count;
	const struct mqtt_sub	*subs;
	const uint8_t		*raw;
	size_t			 raw_len;
};

struct mqtt_suback {
	uint16_t	 id;		/* non-zero */
	const uint8_t	*codes;		/* count codes: 0, 1, 2 or 0x80 */
	size_t		 count;		/* >= 1 */
};

/* Any packet. PINGREQ, PINGRESP and DISCONNECT have no body. */
struct mqtt_pkt {
	enum mqtt_type	type;
	union {
		struct mqtt_connect	connect;
		struct mqtt_connack	connack;
		struct mqtt_publish	publish;
		struct mqtt_ack		ack;
		struct mqtt_subscribe	sub;
		struct mqtt_suback	suback;
	} u;
};

/*
 * Incremental frame detector. buf holds len bytes received so far, starting
 * at a packet boundary; max is the largest whole packet (fixed header
 * included) the caller accepts.
 * Returns:
 *   0              a whole packet of *pktlen bytes is at buf (len may be
 *                  larger: the rest belongs to the next packet);
 *   RT_ERR_AGAIN   need more bytes; *pktlen is the packet's total size once
 *                  the fixed header is complete, 0 before;
 *   RT_ERR_TOOBIG  the packet is, or must end up, larger than max. Decided
 *                  from the fixed header alone (even a partial one), so
 *                  nothing needs to be buffered or allocated first;
 *   RT_ERR_PROTO   malformed fixed header: packet type 0 or 15, a 5th
 *                  Remaining Length byte, or a non-minimal length.
 * Never reads beyond buf[len - 1]; pktlen may be NULL.
 */
int mqtt_frame(const uint8_t *buf, size_t len, size_t max, size_t *pktlen);

/*
 * Decodes exactly one whole packet of len bytes (as delimited by
 * mqtt_frame) into *out, whose views point into buf. Returns 0, or
 * RT_ERR_PROTO when the packet is malformed in any way: wrong flags, wrong
 * or inconsistent lengths, trailing bytes, id 0, invalid UTF-8 or topic,
 * PUBLISH QoS 3 or DUP with QoS 0, CONNACK rc > 5 or session present with
 * rc != 0, SUBACK codes other than 0/1/2/0x80, inconsistent CONNECT flags.
 * *out is zeroed first and is only meaningful on success.
 */
int mqtt_decode(const uint8_t *buf, size_t len, struct mqtt_pkt *out);

/*
 * Walks the list of a SUBSCRIBE or UNSUBSCRIBE that mqtt_decode() returned:
 * *off starts at 0. Returns 1 and fills *out with the next entry (qos is 0
 * for UNSUBSCRIBE), or 0 at the end or for any other packet.
 */
int mqtt_sub_next(const struct mqtt_pkt *pkt, size_t *off,
    struct mqtt_sub *out);

/*
 * Encodes pkt into buf (cap bytes). Everything is validated before a byte
 * is written. Returns:
 *   0              *len = bytes written;
 *   RT_ERR_FULL    cap is too small: *len = bytes needed, buf untouched
 *                  (buf may be NULL with cap 0 to ask for the size);
 *   RT_ERR_INVAL   pkt is not something a conforming client may send:
 *                  invalid topic or filter, id 0 where one is required,
 *                  QoS > 2, DUP with QoS 0, will fields inconsistent with
 *                  the will flag (MQTT-3.1.2-9..15), password without user
 *                  name (MQTT-3.1.2-22), user name / password present with
 *                  their flag clear, empty client id without clean session
 *                  (MQTT-3.1.3-7), a string over 65,535 bytes, an empty
 *                  (UN)SUBSCRIBE list, an unknown type; *len = 0;
 *   RT_ERR_TOOBIG  the packet would exceed MQTT_RL_MAX; *len = 0.
 * Payload bytes are read only when they are copied (after the checks).
 */
int mqtt_encode(const struct mqtt_pkt *pkt, uint8_t *buf, size_t cap,
    size_t *len);

/*
 * Returns 0 if p[0..len) is well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF) without
 * U+0000 and at most 65,535 bytes long; RT_ERR_INVAL otherwise.
 */
int mqtt_utf8_check(const uint8_t *p, size_t len);

/*
 * Returns 0 if p[0..len) is a valid topic name: 1..65,535 bytes, valid
 * UTF-8 as above, no '+' or '#' (MQTT-4.7.1-1, 4.7.3-1..3, 3.3.2-2);
 * RT_ERR_INVAL otherwise.
 */
int mqtt_topic_check(const uint8_t *p, size_t len);

/*
 * Returns 0 if p[0..len) is a valid topic filter: as a topic name, but '#'
 * may appear only as a whole last level and '+' only as a whole level
 * (MQTT-4.7.1-2/-3); RT_ERR_INVAL otherwise.
 */
int mqtt_filter_check(const uint8_t *p, size_t len);

#endif
