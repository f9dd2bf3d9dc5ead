/*
 * fuzz_mqtt_codec.c - fuzz target for agent/mqtt_codec.c: splits the input
 * into frames as the client would (4 KiB inbound cap), decodes every whole
 * packet and checks the codec's invariants, aborting on any violation:
 *  - every proper prefix of a frame's fixed header is "need more";
 *  - a decoded packet re-encodes to exactly the same bytes (the codec
 *    accepts only canonical packets), and a buffer one byte short is
 *    refused with the right size and left untouched;
 *  - a valid topic name is also a valid filter.
 * It also reads the input as a packet to encode (type, flags, fields; see
 * check_encode) and checks the other direction: whatever the encoder
 * accepts frames and decodes to the same fields and re-encodes to the
 * same bytes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mqtt_codec.h"

#define FUZZ_MAX_PACKET	4096
#define FUZZ_MAX_SUBS	(FUZZ_MAX_PACKET / 3)
#define FUZZ_ENC_MAX	(2 * FUZZ_MAX_PACKET)

/* Input cursor for check_encode(): bytes past the end read as 0. */
struct in {
	const uint8_t	*p;
	size_t		 left;
};

static uint8_t
in_u8(struct in *in)
{
	uint8_t v = 0;

	if (in->left > 0) {
		v = in->p[0];
		in->p++;
		in->left--;
	}
	return v;
}

static uint16_t
in_u16(struct in *in)
{
	uint16_t hi = in_u8(in);

	return (uint16_t)(hi << 8 | in_u8(in));
}

/* A field of up to 255 bytes: one length byte, then the bytes. */
static struct mqtt_str
in_str(struct in *in)
{
	struct mqtt_str s;
	size_t n = in_u8(in);

	if (n > in->left)
		n = in->left;
	s.p = in->p;
	s.len = n;
	in->p += n;
	in->left -= n;
	return s;
}

static int
str_eq(struct mqtt_str a, struct mqtt_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_roundtrip(const uint8_t *pkt, size_t n, const struct mqtt_pkt *d)
{
	uint8_t out[FUZZ_MAX_PACKET];
	struct mqtt_sub subs[FUZZ_MAX_SUBS];
	struct mqtt_pkt e = *d;
	size_t len, off = 0, i = 0;
	struct mqtt_sub s;

	if (d->type == MQTT_SUBSCRIBE || d->type == MQTT_UNSUBSCRIBE) {
		while (mqtt_sub_next(d, &off, &s)) {
			if (i == FUZZ_MAX_SUBS)
				abort();	/* each entry takes >= 3 bytes */
			subs[i++] = s;
		}
		if (i != d->u.sub.count || off != d->u.sub.raw_len)
			abort();
		e.u.sub.subs = subs;
	}
	if (mqtt_encode(&e, out, sizeof(out), &len) != 0 || len != n ||
	    memcmp(out, pkt, n) != 0)
		abort();
	memset(out, 0xa5, sizeof(out));
	if (mqtt_encode(&e, out, n - 1, &len) != RT_ERR_FULL || len != n ||
	    out[0] != 0xa5)
		abort();
}

static void
check_encode(const uint8_t *data, size_t size)
{
	uint8_t out[FUZZ_ENC_MAX];
	struct mqtt_sub subs[64];
	struct mqtt_pkt p, d;
	struct in in = { data, size };
	uint8_t fl;
	size_t len, n;
	int r;

	memset(&p, 0, sizeof(p));
	p.type = (enum mqtt_type)(in_u8(&in) % 16);
	fl = in_u8(&in);
	switch (p.type) {
	case MQTT_CONNECT:
		p.u.connect.clean_session = fl & 1;
		p.u.connect.will = (fl >> 1) & 1;
		p.u.connect.will_qos = (fl >> 2) & 3;
		p.u.connect.will_retain = (fl >> 4) & 1;
		p.u.connect.has_username = (fl >> 5) & 1;
		p.u.connect.has_password = (fl >> 6) & 1;
		p.u.connect.keepalive = in_u16(&in);
		p.u.connect.client_id = in_str(&in);
		p.u.connect.will_topic = in_str(&in);
		p.u.connect.will_msg = in_str(&in);
		p.u.connect.username = in_str(&in);
		p.u.connect.password = in_str(&in);
		break;
	case MQTT_CONNACK:
		p.u.connack.session_present = fl & 3;
		p.u.connack.rc = in_u8(&in);
		break;
	case MQTT_PUBLISH:
		p.u.publish.qos = fl & 3;
		p.u.publish.dup = (fl >> 2) & 1;
		p.u.publish.retain = (fl >> 3) & 1;
		p.u.publish.id = in_u16(&in);
		p.u.publish.topic = in_str(&in);
		p.u.publish.payload.p = in.p;
		p.u.publish.payload.len = in.left;
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		p.u.sub.id = in_u16(&in);
		p.u.sub.subs = subs;
		while (in.left > 0 && p.u.sub.count < 64) {
			subs[p.u.sub.count].qos = in_u8(&in) & 3;
			subs[p.u.sub.count].filter = in_str(&in);
			p.u.sub.count++;
		}
		break;
	case MQTT_SUBACK:
		p.u.suback.id = in_u16(&in);
		p.u.suback.codes = in.p;
		p.u.suback.count = in.left;
		break;
	default:
		p.u.ack.id = in_u16(&in);
		break;
	}
	r = mqtt_encode(&p, out, sizeof(out), &len);
	if (r == RT_ERR_FULL) {
		if (len <= sizeof(out))
			abort();
		return;
	}
	if (r != 0) {
		if ((r != RT_ERR_INVAL && r != RT_ERR_TOOBIG) || len != 0)
			abort();
		return;
	}
	if (mqtt_frame(out, len, sizeof(out), &n) != 0 || n != len ||
	    mqtt_decode(out, len, &d) != 0 || d.type != p.type)
		abort();
	check_roundtrip(out, len, &d);
	switch (p.type) {
	case MQTT_CONNECT:
		if (!str_eq(d.u.connect.client_id, p.u.connect.client_id) ||
		    !str_eq(d.u.connect.will_topic, p.u.connect.will_topic) ||
		    !str_eq(d.u.connect.will_msg, p.u.connect.will_msg) ||
		    !str_eq(d.u.connect.username, p.u.connect.username) ||
		    !str_eq(d.u.connect.password, p.u.connect.password) ||
		    d.u.connect.keepalive != p.u.connect.keepalive)
			abort();
		break;
	case MQTT_PUBLISH:
		if (!str_eq(d.u.publish.topic, p.u.publish.topic) ||
		    !str_eq(d.u.publish.payload, p.u.publish.payload) ||
		    d.u.publish.id != p.u.publish.id ||
		    d.u.publish.qos != p.u.publish.qos ||
		    d.u.publish.dup != p.u.publish.dup ||
		    d.u.publish.retain != p.u.publish.retain)
			abort();
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		if (d.u.sub.count != p.u.sub.count || d.u.sub.id != p.u.sub.id)
			abort();
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	check_encode(data, size);

	if (mqtt_topic_check(data, size) == 0 &&
	    mqtt_filter_check(data, size) != 0)
		abort();
	while (off < size) {
		const uint8_t *p = data + off;
		struct mqtt_pkt pkt;
		size_t n, m;
		int r;

		r = mqtt_frame(p, size - off, FUZZ_MAX_PACKET, &n);
		if (r != 0) {
			if (r != RT_ERR_AGAIN && r != RT_ERR_PROTO &&
			    r != RT_ERR_TOOBIG)
				abort();
			if (r == RT_ERR_AGAIN && n != 0 &&
			    (n <= size - off || n > FUZZ_MAX_PACKET))
				abort();
			break;
		}
		if (n < 2 || n > size - off || n > FUZZ_MAX_PACKET)
			abort();
		for (size_t k = 0; k < n && k < MQTT_HDR_MAX; k++)
			if (mqtt_frame(p, k, FUZZ_MAX_PACKET, &m) !=
			    RT_ERR_AGAIN)
				abort();
		if (mqtt_decode(p, n, &pkt) == 0)
			check_roundtrip(p, n, &pkt);
		else if (pkt.type != 0)
			abort();		/* *out must be cleared */
		off += n;
	}
	return 0;
}
