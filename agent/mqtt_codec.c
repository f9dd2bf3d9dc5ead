/*
 * mqtt_codec.c - MQTT 3.1.1 framing, encoding, decoding and validators
 * (mqtt_codec.h). Pure: no I/O, no allocation, no state.
 *
 * Decoding reads through a bounded cursor (struct rd) that can only move
 * forward within the Remaining Length, so no field can over-read; every
 * decoder ends by requiring the cursor to be exhausted (no trailing bytes).
 * Encoding is two-phase: validate and size everything, check the room,
 * then write with no further failure possible.
 */
#include "config.h"

#include <string.h>

#include "err.h"
#include "mqtt_codec.h"

/* First byte of each packet type: type << 4 | the only valid flags.
 * PUBLISH flags vary and are handled apart. */
static const uint8_t fixed_byte[] = {
	[MQTT_CONNECT] = 0x10,
	[MQTT_CONNACK] = 0x20,
	[MQTT_PUBLISH] = 0x30,
	[MQTT_PUBACK] = 0x40,
	[MQTT_PUBREC] = 0x50,
	[MQTT_PUBREL] = 0x62,
	[MQTT_PUBCOMP] = 0x70,
	[MQTT_SUBSCRIBE] = 0x82,
	[MQTT_SUBACK] = 0x90,
	[MQTT_UNSUBSCRIBE] = 0xa2,
	[MQTT_UNSUBACK] = 0xb0,
	[MQTT_PINGREQ] = 0xc0,
	[MQTT_PINGRESP] = 0xd0,
	[MQTT_DISCONNECT] = 0xe0,
};

/* CONNECT flags (3.1.2.3). */
#define CF_RESERVED	0x01
#define CF_CLEAN	0x02
#define CF_WILL		0x04
#define CF_WILL_QOS	0x18
#define CF_WILL_RETAIN	0x20
#define CF_PASSWORD	0x40
#define CF_USERNAME	0x80

static const uint8_t proto_name[] = { 0x00, 0x04, 'M', 'Q', 'T', 'T' };
#define PROTO_LEVEL	4

struct mqtt_str
mqtt_cstr(const char *s)
{
	struct mqtt_str v = { NULL, 0 };

	if (s != NULL) {
		v.p = (const uint8_t *)s;
		v.len = strlen(s);
	}
	return v;
}

/* ---- validators ---- */

int
mqtt_utf8_check(const uint8_t *p, size_t len)
{
	size_t i = 0;

	if (len > MQTT_STR_MAX || (p == NULL && len != 0))
		return RT_ERR_INVAL;
	while (i < len) {
		uint8_t c = p[i];
		uint32_t cp, min;
		size_t n;

		if (c == 0x00)
			return RT_ERR_INVAL;		/* MQTT-1.5.3-2 */
		if (c < 0x80) {
			i++;
			continue;
		}
		/* 0x80..0xc1: stray continuation or overlong 2-byte lead;
		 * 0xf5..0xff: would encode above U+10FFFF or are unused. */
		if (c < 0xc2 || c > 0xf4)
			return RT_ERR_INVAL;
		if (c < 0xe0) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c < 0xf0) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		}
		if (len - i - 1 < n)
			return RT_ERR_INVAL;
		for (size_t k = 1; k <= n; k++) {
			uint8_t b = p[i + k];

			if ((b & 0xc0) != 0x80)
				return RT_ERR_INVAL;
			cp = cp << 6 | (b & 0x3f);
		}
		if (cp < min || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))	/* MQTT-1.5.3-1 */
			return RT_ERR_INVAL;
		i += n + 1;
	}
	return 0;
}

int
mqtt_topic_check(const uint8_t *p, size_t len)
{
	if (len == 0 || mqtt_utf8_check(p, len) != 0)
		return RT_ERR_INVAL;
	/* '+' and '#' are ASCII, so they never occur inside a multi-byte
	 * sequence and a byte scan is exact. */
	if (memchr(p, '+', len) != NULL || memchr(p, '#', len) != NULL)
		return RT_ERR_INVAL;
	return 0;
}

int
mqtt_filter_check(const uint8_t *p, size_t len)
{
	if (len == 0 || mqtt_utf8_check(p, len) != 0)
		return RT_ERR_INVAL;
	for (size_t i = 0; i < len; i++) {
		int starts = i == 0 || p[i - 1] == '/';

		if (p[i] == '+' && (!starts || (i + 1 < len && p[i + 1] != '/')))
			return RT_ERR_INVAL;
		if (p[i] == '#' && (!starts || i + 1 != len))
			return RT_ERR_INVAL;
	}
	return 0;
}

/* ---- fixed header ---- */

/*
 * Parses the fixed header at buf[0..len). On 0, *hlen is its size and *rl
 * the Remaining Length. See mqtt_frame() for the other results; *total is
 * set as soon as it is known.
 */
static int
hdr_parse(const uint8_t *buf, size_t len, size_t max, size_t *hlen,
    uint32_t *rl, size_t *total)
{
	uint32_t v = 0, mult = 1;
	unsigned int type;

	*total = 0;
	if (len == 0)
		return max < 2 ? RT_ERR_TOOBIG : RT_ERR_AGAIN;
	type = buf[0] >> 4;
	if (type == 0 || type == 15)
		return RT_ERR_PROTO;
	for (size_t i = 1; i <= 4; i++) {
		uint8_t b;

		if (i >= len) {
			/* Smallest packet still possible: one more header
			 * byte and, after a continuation byte, at least
			 * mult more length (the next byte of a minimal
			 * encoding is non-zero). */
			uint64_t least = (uint64_t)i + 1 + v +
			    (i > 1 ? mult : 0);

			if (least > max)
				return RT_ERR_TOOBIG;
			return RT_ERR_AGAIN;
		}
		b = buf[i];
		v += (uint32_t)(b & 0x7f) * mult;
		if ((b & 0x80) == 0) {
			uint64_t t = (uint64_t)i + 1 + v;

			if (i > 1 && b == 0)
				return RT_ERR_PROTO;	/* non-minimal */
			if (t > max)
				return RT_ERR_TOOBIG;
			*hlen = i + 1;
			*rl = v;
			*total = (size_t)t;
			return len < t ? RT_ERR_AGAIN : 0;
		}
		mult <<= 7;
	}
	return RT_ERR_PROTO;	/* a 5th length byte would follow */
}

int
mqtt_frame(const uint8_t *buf, size_t len, size_t max, size_t *pktlen)
{
	size_t hlen, total;
	uint32_t rl;
	int r;

	if (pktlen != NULL)
		*pktlen = 0;
	r = hdr_parse(buf, len, max, &hlen, &rl, &total);
	if (pktlen != NULL && (r == 0 || r == RT_ERR_AGAIN))
		*pktlen = total;
	return r;
}

/* ---- decoding ---- */

/* Bounded forward cursor over a packet's variable header and payload. */
struct rd {
	const uint8_t	*p;
	size_t		 left;
};

static int
rd_u8(struct rd *d, uint8_t *v)
{
	if (d->left < 1)
		return RT_ERR_PROTO;
	*v = d->p[0];
	d->p++;
	d->left--;
	return 0;
}

static int
rd_u16(struct rd *d, uint16_t *v)
{
	if (d->left < 2)
		return RT_ERR_PROTO;
	*v = (uint16_t)(d->p[0] << 8 | d->p[1]);
	d->p += 2;
	d->left -= 2;
	return 0;
}

/* A non-zero packet id (MQTT-2.3.1-1). */
static int
rd_id(struct rd *d, uint16_t *id)
{
	if (rd_u16(d, id) != 0 || *id == 0)
		return RT_ERR_PROTO;
	return 0;
}

/* A length-prefixed binary field. */
static int
rd_bin(struct rd *d, struct mqtt_str *s)
{
	uint16_t n;

	if (rd_u16(d, &n) != 0 || d->left < n)
		return RT_ERR_PROTO;
	s->p = d->p;
	s->len = n;
	d->p += n;
	d->left -= n;
	return 0;
}

/* A length-prefixed UTF-8 string (MQTT-1.5.3-1/-2). */
static int
rd_utf8(struct rd *d, struct mqtt_str *s)
{
	if (rd_bin(d, s) != 0 || mqtt_utf8_check(s->p, s->len) != 0)
		return RT_ERR_PROTO;
	return 0;
}

static int
rd_end(const struct rd *d)
{
	return d->left == 0 ? 0 : RT_ERR_PROTO;
}

static int
dec_connect(struct rd *d, struct mqtt_connect *c)
{
	uint8_t level, fl;

	if (d->left < sizeof(proto_name) ||
	    memcmp(d->p, proto_name, sizeof(proto_name)) != 0)
		return RT_ERR_PROTO;
	d->p += sizeof(proto_name);
	d->left -= sizeof(proto_name);
	if (rd_u8(d, &level) != 0 || level != PROTO_LEVEL ||
	    rd_u8(d, &fl) != 0 || rd_u16(d, &c->keepalive) != 0)
		return RT_ERR_PROTO;
	if (fl & CF_RESERVED)				/* MQTT-3.1.2-3 */
		return RT_ERR_PROTO;
	c->clean_session = (fl & CF_CLEAN) != 0;
	c->will = (fl & CF_WILL) != 0;
	c->will_qos = (fl & CF_WILL_QOS) >> 3;
	c->will_retain = (fl & CF_WILL_RETAIN) != 0;
	c->has_username = (fl & CF_USERNAME) != 0;
	c->has_password = (fl & CF_PASSWORD) != 0;
	if (c->will_qos > 2 ||				/* MQTT-3.1.2-14 */
	    (!c->will && (c->will_qos || c->will_retain)) || /* -13, -15 */
	    (c->has_password && !c->has_username))	/* MQTT-3.1.2-22 */
		return RT_ERR_PROTO;
	if (rd_utf8(d, &c->client_id) != 0 ||
	    (c->client_id.len == 0 && !c->clean_session)) /* MQTT-3.1.3-7 */
		return RT_ERR_PROTO;
	if (c->will) {
		if (rd_bin(d, &c->will_topic) != 0 ||
		    mqtt_topic_check(c->will_topic.p, c->will_topic.len) != 0 ||
		    rd_bin(d, &c->will_msg) != 0)
			return RT_ERR_PROTO;
	}
	if (c->has_username && rd_utf8(d, &c->username) != 0)
		return RT_ERR_PROTO;
	if (c->has_password && rd_bin(d, &c->password) != 0)
		return RT_ERR_PROTO;
	return rd_end(d);
}

static int
dec_connack(struct rd *d, struct mqtt_connack *c)
{
	uint8_t af;

	if (d->left != 2)
		return RT_ERR_PROTO;
	(void)rd_u8(d, &af);
	(void)rd_u8(d, &c->rc);
	if ((af & 0xfe) != 0 || c->rc > MQTT_RC_NOT_AUTHORIZED)
		return RT_ERR_PROTO;
	c->session_present = af & 0x01;
	if (c->session_present && c->rc != MQTT_RC_ACCEPTED) /* 3.2.2-4 */
		return RT_ERR_PROTO;
	return 0;
}

static int
dec_publish(uint8_t flags, struct rd *d, struct mqtt_publish *p)
{
	p->dup = (flags & 0x08) != 0;
	p->qos = (flags & 0x06) >> 1;
	p->retain = flags & 0x01;
	if (p->qos == 3)				/* MQTT-3.3.1-4 */
		return RT_ERR_PROTO;
	if (p->qos == 0 && p->dup)			/* MQTT-3.3.1-2 */
		return RT_ERR_PROTO;
	/* MQTT-3.3.2-1/-2, 4.7.1-1, 4.7.3-1..3: a topic name, no wildcards. */
	if (rd_bin(d, &p->topic) != 0 ||
	    mqtt_topic_check(p->topic.p, p->topic.len) != 0)
		return RT_ERR_PROTO;
	if (p->qos > 0 && rd_id(d, &p->id) != 0)	/* MQTT-2.3.1-1 */
		return RT_ERR_PROTO;
	p->payload.p = d->p;
	p->payload.len = d->left;
	d->p += d->left;
	d->left = 0;
	return 0;
}

/* Walks a SUBSCRIBE (with_qos) or UNSUBSCRIBE list, validating it. */
static int
dec_sublist(struct rd *d, int with_qos, struct mqtt_subscribe *s)
{
	s->raw = d->p;
	s->raw_len = d->left;
	if (d->left == 0)				/* MQTT-3.8.3-3 */
		return RT_ERR_PROTO;
	while (d->left > 0) {
		struct mqtt_str f;
		uint8_t q;

		if (rd_bin(d, &f) != 0 ||
		    mqtt_filter_check(f.p, f.len) != 0)
			return RT_ERR_PROTO;
		if (with_qos && (rd_u8(d, &q) != 0 || q > 2))	/* 3.8.3-4 */
			return RT_ERR_PROTO;
		s->count++;
	}
	return 0;
}

static int
dec_suback(struct rd *d, struct mqtt_suback *s)
{
	if (rd_id(d, &s->id) != 0 || d->left == 0)
		return RT_ERR_PROTO;
	for (size_t i = 0; i < d->left; i++) {
		uint8_t c = d->p[i];

		if (c > 2 && c != MQTT_SUBACK_FAILURE)	/* MQTT-3.9.3-2 */
			return RT_ERR_PROTO;
	}
	s->codes = d->p;
	s->count = d->left;
	d->p += d->left;
	d->left = 0;
	return 0;
}

int
mqtt_decode(const uint8_t *buf, size_t len, struct mqtt_pkt *out)
{
	size_t hlen, total;
	uint32_t rl;
	struct rd d;
	unsigned int type;
	int r;

	memset(out, 0, sizeof(*out));
	if (buf == NULL)
		return RT_ERR_PROTO;
	r = hdr_parse(buf, len, SIZE_MAX, &hlen, &rl, &total);
	if (r != 0 || total != len)
		return RT_ERR_PROTO;
	type = buf[0] >> 4;
	/* MQTT-2.2.2-1/-2: every type but PUBLISH has fixed flags. */
	if (type != MQTT_PUBLISH && buf[0] != fixed_byte[type])
		return RT_ERR_PROTO;
	d.p = buf + hlen;
	d.left = rl;
	out->type = (enum mqtt_type)type;
	switch (out->type) {
	case MQTT_CONNECT:
		r = dec_connect(&d, &out->u.connect);
		break;
	case MQTT_CONNACK:
		r = dec_connack(&d, &out->u.connack);
		break;
	case MQTT_PUBLISH:
		r = dec_publish(buf[0] & 0x0f, &d, &out->u.publish);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
	case MQTT_UNSUBACK:
		if ((r = rd_id(&d, &out->u.ack.id)) == 0)
			r = rd_end(&d);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		if ((r = rd_id(&d, &out->u.sub.id)) == 0)
			r = dec_sublist(&d, out->type == MQTT_SUBSCRIBE,
			    &out->u.sub);
		break;
	case MQTT_SUBACK:
		r = dec_suback(&d, &out->u.suback);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
	case MQTT_DISCONNECT:
		r = rd_end(&d);
		break;
	default:
		r = RT_ERR_PROTO;
		break;
	}
	if (r != 0) {
		memset(out, 0, sizeof(*out));
		return RT_ERR_PROTO;
	}
	return 0;
}

int
mqtt_sub_next(const struct mqtt_pkt *pkt, size_t *off, struct mqtt_sub *out)
{
	const struct mqtt_subscribe *s = &pkt->u.sub;
	struct rd d;

	memset(out, 0, sizeof(*out));
	if ((pkt->type != MQTT_SUBSCRIBE && pkt->type != MQTT_UNSUBSCRIBE) ||
	    s->raw == NULL || *off >= s->raw_len)
		return 0;
	d.p = s->raw + *off;
	d.left = s->raw_len - *off;
	if (rd_bin(&d, &out->filter) != 0)
		return 0;
	if (pkt->type == MQTT_SUBSCRIBE && rd_u8(&d, &out->qos) != 0)
		return 0;
	*off = s->raw_len - d.left;
	return 1;
}

/* ---- encoding ---- */

/* A binary field the caller gave us: bounded, and p set if len is. */
static int
bin_ok(const struct mqtt_str *s)
{
	if (s->len > MQTT_STR_MAX || (s->p == NULL && s->len != 0))
		return RT_ERR_INVAL;
	return 0;
}

static int
enc_connect_size(const struct mqtt_connect *c, uint64_t *rl)
{
	if (c->clean_session > 1 || c->will > 1 || c->will_retain > 1 ||
	    c->has_username > 1 || c->has_password > 1)
		return RT_ERR_INVAL;
	if (mqtt_utf8_check(c->client_id.p, c->client_id.len) != 0 ||
	    (c->client_id.len == 0 && !c->clean_session))  /* MQTT-3.1.3-7 */
		return RT_ERR_INVAL;
	*rl = sizeof(proto_name) + 4 + 2 + c->client_id.len;
	if (c->will) {
		if (c->will_qos > 2 ||				/* 3.1.2-14 */
		    mqtt_topic_check(c->will_topic.p,
		    c->will_topic.len) != 0 ||			/* 3.1.2-9 */
		    bin_ok(&c->will_msg) != 0)
			return RT_ERR_INVAL;
		*rl += 2 + c->will_topic.len + 2 + c->will_msg.len;
	} else if (c->will_qos != 0 || c->will_retain != 0 || /* -13, -15 */
	    c->will_topic.len != 0 || c->will_msg.len != 0)	/* 3.1.2-11 */
		return RT_ERR_INVAL;
	if (c->has_password && !c->has_username)	/* MQTT-3.1.2-22 */
		return RT_ERR_INVAL;
	if (c->has_username) {				/* MQTT-3.1.2-19 */
		if (mqtt_utf8_check(c->username.p, c->username.len) != 0)
			return RT_ERR_INVAL;
		*rl += 2 + c->username.len;
	} else if (c->username.len != 0)		/* MQTT-3.1.2-18 */
		return RT_ERR_INVAL;
	if (c->has_password) {				/* MQTT-3.1.2-21 */
		if (bin_ok(&c->password) != 0)
			return RT_ERR_INVAL;
		*rl += 2 + c->password.len;
	} else if (c->password.len != 0)		/* MQTT-3.1.2-20 */
		return RT_ERR_INVAL;
	return 0;
}

static int
enc_publish_size(const struct mqtt_publish *p, uint64_t *rl)
{
	if (p->qos > 2 || p->dup > 1 || p->retain > 1 ||
	    (p->qos == 0 && p->dup) ||			/* MQTT-3.3.1-2 */
	    (p->qos == 0 && p->id != 0) ||		/* MQTT-2.3.1-5 */
	    (p->qos > 0 && p->id == 0) ||		/* MQTT-2.3.1-1 */
	    mqtt_topic_check(p->topic.p, p->topic.len) != 0 || /* 3.3.2-2 */
	    (p->payload.p == NULL && p->payload.len != 0))
		return RT_ERR_INVAL;
	if (p->payload.len > MQTT_RL_MAX)
		return RT_ERR_TOOBIG;
	*rl = 2 + p->topic.len + (p->qos > 0 ? 2 : 0) + p->payload.len;
	return 0;
}

static int
enc_sub_size(const struct mqtt_subscribe *s, int with_qos, uint64_t *rl)
{
	if (s->id == 0 || s->count == 0 || s->subs == NULL) /* 2.3.1-1 */
		return RT_ERR_INVAL;
	*rl = 2;
	for (size_t i = 0; i < s->count; i++) {
		const struct mqtt_sub *e = &s->subs[i];

		if (mqtt_filter_check(e->filter.p, e->filter.len) != 0 ||
		    (with_qos && e->qos > 2))
			return RT_ERR_INVAL;
		*rl += 2 + e->filter.len + (with_qos ? 1 : 0);
		if (*rl > MQTT_RL_MAX)
			return RT_ERR_TOOBIG;
	}
	return 0;
}

static int
enc_suback_size(const struct mqtt_suback *s, uint64_t *rl)
{
	if (s->id == 0 || s->count == 0 || s->codes == NULL)
		return RT_ERR_INVAL;
	if (s->count > MQTT_RL_MAX)
		return RT_ERR_TOOBIG;
	for (size_t i = 0; i < s->count; i++)
		if (s->codes[i] > 2 && s->codes[i] != MQTT_SUBACK_FAILURE)
			return RT_ERR_INVAL;
	*rl = 2 + s->count;
	return 0;
}

/* Validates pkt and computes its Remaining Length. */
static int
enc_size(const struct mqtt_pkt *pkt, uint64_t *rl)
{
	const struct mqtt_connack *ca = &pkt->u.connack;

	*rl = 0;
	switch (pkt->type) {
	case MQTT_CONNECT:
		return enc_connect_size(&pkt->u.connect, rl);
	case MQTT_CONNACK:
		if (ca->session_present > 1 ||
		    ca->rc > MQTT_RC_NOT_AUTHORIZED ||
		    (ca->session_present && ca->rc != MQTT_RC_ACCEPTED))
			return RT_ERR_INVAL;
		*rl = 2;
		return 0;
	case MQTT_PUBLISH:
		return enc_publish_size(&pkt->u.publish, rl);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
	case MQTT_UNSUBACK:
		if (pkt->u.ack.id == 0)		/* MQTT-2.3.1-6: echoes an id */
			return RT_ERR_INVAL;
		*rl = 2;
		return 0;
	case MQTT_SUBSCRIBE:
		return enc_sub_size(&pkt->u.sub, 1, rl);
	case MQTT_UNSUBSCRIBE:
		return enc_sub_size(&pkt->u.sub, 0, rl);
	case MQTT_SUBACK:
		return enc_suback_size(&pkt->u.suback, rl);
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
	case MQTT_DISCONNECT:
		return 0;
	}
	return RT_ERR_INVAL;
}

static size_t
rl_size(uint32_t rl)
{
	return rl < 128 ? 1 : rl < 16384 ? 2 : rl < 2097152 ? 3 : 4;
}

static uint8_t *
put_u16(uint8_t *w, uint16_t v)
{
	*w++ = (uint8_t)(v >> 8);
	*w++ = (uint8_t)v;
	return w;
}

/* A length-prefixed field; s was validated (len <= 65,535). */
static uint8_t *
put_str(uint8_t *w, const struct mqtt_str *s)
{
	w = put_u16(w, (uint16_t)s->len);
	if (s->len > 0)
		memcpy(w, s->p, s->len);
	return w + s->len;
}

static uint8_t *
put_connect(uint8_t *w, const struct mqtt_connect *c)
{
	uint8_t fl = 0;

	if (c->clean_session)
		fl |= CF_CLEAN;
	if (c->will)
		fl |= CF_WILL | (uint8_t)(c->will_qos << 3) |
		    (c->will_retain ? CF_WILL_RETAIN : 0);
	if (c->has_username)
		fl |= CF_USERNAME;
	if (c->has_password)
		fl |= CF_PASSWORD;
	memcpy(w, proto_name, sizeof(proto_name));
	w += sizeof(proto_name);
	*w++ = PROTO_LEVEL;
	*w++ = fl;
	w = put_u16(w, c->keepalive);
	/* MQTT-3.1.3-1: client id, will topic, will message, user, password. */
	w = put_str(w, &c->client_id);
	if (c->will) {
		w = put_str(w, &c->will_topic);
		w = put_str(w, &c->will_msg);
	}
	if (c->has_username)
		w = put_str(w, &c->username);
	if (c->has_password)
		w = put_str(w, &c->password);
	return w;
}

static uint8_t *
put_list(uint8_t *w, const struct mqtt_subscribe *s, int with_qos)
{
	w = put_u16(w, s->id);
	for (size_t i = 0; i < s->count; i++) {
		w = put_str(w, &s->subs[i].filter);
		if (with_qos)
			*w++ = s->subs[i].qos;
	}
	return w;
}

int
mqtt_encode(const struct mqtt_pkt *pkt, uint8_t *buf, size_t cap,
    size_t *len)
{
	const struct mqtt_publish *p = &pkt->u.publish;
	uint64_t rl;
	uint32_t v;
	size_t total;
	uint8_t *w;
	int r;

	*len = 0;
	if ((r = enc_size(pkt, &rl)) != 0)
		return r;
	if (rl > MQTT_RL_MAX)
		return RT_ERR_TOOBIG;
	total = 1 + rl_size((uint32_t)rl) + (size_t)rl;
	if (buf == NULL || cap < total) {
		*len = total;
		return RT_ERR_FULL;
	}

	w = buf;
	*w = fixed_byte[pkt->type];
	if (pkt->type == MQTT_PUBLISH)
		*w |= (uint8_t)(p->dup << 3 | p->qos << 1 | p->retain);
	w++;
	v = (uint32_t)rl;
	do {
		uint8_t b = v & 0x7f;

		v >>= 7;
		*w++ = b | (v > 0 ? 0x80 : 0);
	} while (v > 0);

	switch (pkt->type) {
	case MQTT_CONNECT:
		w = put_connect(w, &pkt->u.connect);
		break;
	case MQTT_CONNACK:
		*w++ = pkt->u.connack.session_present;
		*w++ = pkt->u.connack.rc;
		break;
	case MQTT_PUBLISH:
		w = put_str(w, &p->topic);
		if (p->qos > 0)
			w = put_u16(w, p->id);
		if (p->payload.len > 0)
			memcpy(w, p->payload.p, p->payload.len);
		w += p->payload.len;
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
	case MQTT_UNSUBACK:
		w = put_u16(w, pkt->u.ack.id);
		break;
	case MQTT_SUBSCRIBE:
		w = put_list(w, &pkt->u.sub, 1);
		break;
	case MQTT_UNSUBSCRIBE:
		w = put_list(w, &pkt->u.sub, 0);
		break;
	case MQTT_SUBACK:
		w = put_u16(w, pkt->u.suback.id);
		memcpy(w, pkt->u.suback.codes, pkt->u.suback.count);
		w += pkt->u.suback.count;
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
	case MQTT_DISCONNECT:
		break;
	}
	*len = (size_t)(w - buf);
	return 0;
}
