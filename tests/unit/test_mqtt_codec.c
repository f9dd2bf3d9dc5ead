/*
 * test_mqtt_codec.c - unit tests of agent/mqtt_codec.c, written from the
 * normative statements of MQTT 3.1.1 (ids in comments; FAULTS.md App. A)
 * and the malformed-input cases of FAULTS.md 4.4: UTF-8, topic and filter
 * validators, Remaining Length boundaries, incremental framing and the
 * inbound size cap, byte-exact encoders against hand-computed packets,
 * encoder refusals, and decoders refusing every malformed packet.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "mqtt_codec.h"
#include "runner.h"
#include "util.h"

int suite_mqtt_codec(void);

/* An assert reported at the caller's line. */
#define CHECK_AT(cond, line) \
	CU_assertImplementation((cond), (line), #cond, __FILE__, "", CU_FALSE)

/* A string literal as (pointer, length), NULs included. */
#define LIT(s)		(const uint8_t *)(s), sizeof(s) - 1
#define S(s)		((struct mqtt_str){ (const uint8_t *)(s), sizeof(s) - 1 })
#define DEC(s, p)	mqtt_decode(LIT(s), (p))

static void
expect_enc(const struct mqtt_pkt *p, const uint8_t *want, size_t wlen,
    int line)
{
	uint8_t buf[256];
	size_t len = 0, need = 0;
	struct mqtt_pkt d;

	memset(buf, 0xa5, sizeof(buf));
	CHECK_AT(mqtt_encode(p, buf, sizeof(buf), &len) == 0, line);
	CHECK_AT(len == wlen, line);
	CHECK_AT(len == wlen && memcmp(buf, want, wlen) == 0, line);
	CHECK_AT(buf[wlen] == 0xa5, line);	/* nothing written past it */
	/* Size query and a buffer one byte short. */
	CHECK_AT(mqtt_encode(p, NULL, 0, &need) == RT_ERR_FULL, line);
	CHECK_AT(need == wlen, line);
	memset(buf, 0xa5, sizeof(buf));
	CHECK_AT(mqtt_encode(p, buf, wlen - 1, &need) == RT_ERR_FULL, line);
	CHECK_AT(need == wlen && buf[0] == 0xa5, line);
	/* What we send, we accept back. */
	CHECK_AT(mqtt_decode(want, wlen, &d) == 0, line);
	CHECK_AT(d.type == p->type, line);
}
#define EXPECT_ENC(p, s)	expect_enc((p), LIT(s), __LINE__)

static void
expect_refused(const struct mqtt_pkt *p, int want, int line)
{
	uint8_t buf[64];
	size_t len = 99;

	memset(buf, 0xa5, sizeof(buf));
	CHECK_AT(mqtt_encode(p, buf, sizeof(buf), &len) == want, line);
	CHECK_AT(len == 0, line);
	for (size_t i = 0; i < sizeof(buf); i++)
		if (buf[i] != 0xa5) {
			CHECK_AT(!"encoder wrote before refusing", line);
			break;
		}
}
#define EXPECT_REFUSED(p)	expect_refused((p), RT_ERR_INVAL, __LINE__)

#define EXPECT_MALFORMED(s) do {					\
	struct mqtt_pkt d_;						\
									\
	CU_ASSERT_EQUAL(DEC(s, &d_), RT_ERR_PROTO);			\
	CU_ASSERT_EQUAL(d_.type, 0);					\
} while (0)

/* ---- validators ---- */

static void
test_utf8(void)
{
	static const struct { const char *s; size_t n; int ok; } t[] = {
#define T(s, ok) { s, sizeof(s) - 1, ok }
		T("", 1), T("abc", 1), T("\x7f", 1),
		T("\xc3\xa9", 1),			/* U+00E9 */
		T("\xe2\x82\xac", 1),			/* U+20AC */
		T("\xf0\x9f\x98\x80", 1),		/* U+1F600 */
		T("\xed\x9f\xbf", 1),			/* U+D7FF */
		T("\xee\x80\x80", 1),			/* U+E000 */
		T("\xf4\x8f\xbf\xbf", 1),		/* U+10FFFF */
		T("\xef\xbb\xbf", 1),			/* U+FEFF, 1.5.3-3 */
		/* MQTT-1.5.3-2: U+0000, plain and overlong. */
		T("\x00", 0), T("a\x00" "b", 0), T("\xc0\x80", 0),
		/* MQTT-1.5.3-1: ill-formed. */
		T("\xc3\x28", 0), T("\x80", 0), T("\xbf", 0), T("\xff", 0),
		T("\xc1\xbf", 0), T("\xe0\x80\xaf", 0), T("\xe0\x9f\xbf", 0),
		T("\xf0\x80\x80\xaf", 0), T("\xf0\x8f\xbf\xbf", 0),
		T("\xf4\x90\x80\x80", 0), T("\xf5\x80\x80\x80", 0),
		T("\xe2\x82", 0), T("\xf0\x9f\x98", 0), T("a\xc3", 0),
		T("\xed\xa0\x80", 0), T("\xed\xbf\xbf", 0),	/* surrogates */
		T("\xed\xa0\xbd\xed\xb8\x80", 0),	/* CESU-8 pair */
#undef T
	};
	uint8_t *big;

	for (size_t i = 0; i < RT_ARRAY_SIZE(t); i++) {
		int r = mqtt_utf8_check((const uint8_t *)t[i].s, t[i].n);

		CU_ASSERT_EQUAL(r, t[i].ok ? 0 : RT_ERR_INVAL);
		if (r != (t[i].ok ? 0 : RT_ERR_INVAL))
			fprintf(stderr, "utf8 case %zu\n", i);
	}
	big = malloc(65536);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'a', 65536);
	CU_ASSERT_EQUAL(mqtt_utf8_check(big, 65535), 0);
	CU_ASSERT_EQUAL(mqtt_utf8_check(big, 65536), RT_ERR_INVAL);
	free(big);
}

static void
test_topic_filter(void)
{
	static const struct { const char *s; int topic, filter; } t[] = {
		{ "a", 1, 1 }, { "a/b", 1, 1 }, { "/", 1, 1 },
		{ "a//b", 1, 1 }, { " ", 1, 1 }, { "\xef\xbb\xbf" "a", 1, 1 },
		/* MQTT-4.7.1-1: wildcards only in filters. */
		{ "#", 0, 1 }, { "+", 0, 1 }, { "a/#", 0, 1 }, { "/#", 0, 1 },
		{ "a/+/b", 0, 1 }, { "+/+", 0, 1 }, { "+/", 0, 1 },
		{ "/+", 0, 1 }, { "+/#", 0, 1 },
		/* MQTT-4.7.1-2: '#' alone in the last level. */
		{ "a#", 0, 0 }, { "a/#/b", 0, 0 }, { "a/b#", 0, 0 },
		{ "#/", 0, 0 }, { "##", 0, 0 }, { "#a", 0, 0 },
		/* MQTT-4.7.1-3: '+' a whole level. */
		{ "a+", 0, 0 }, { "+a", 0, 0 }, { "a/+b", 0, 0 },
		{ "a/b+/c", 0, 0 }, { "++", 0, 0 },
		/* MQTT-4.7.3-1: at least one character. */
		{ "", 0, 0 },
		/* MQTT-1.5.3-1. */
		{ "a/\xc3\x28", 0, 0 },
	};
	uint8_t *big;

	for (size_t i = 0; i < RT_ARRAY_SIZE(t); i++) {
		const uint8_t *p = (const uint8_t *)t[i].s;
		size_t n = strlen(t[i].s);

		CU_ASSERT_EQUAL(mqtt_topic_check(p, n),
		    t[i].topic ? 0 : RT_ERR_INVAL);
		CU_ASSERT_EQUAL(mqtt_filter_check(p, n),
		    t[i].filter ? 0 : RT_ERR_INVAL);
	}
	/* MQTT-4.7.3-2: no U+0000. */
	CU_ASSERT_EQUAL(mqtt_topic_check(LIT("a\0b")), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(mqtt_filter_check(LIT("a/\0")), RT_ERR_INVAL);
	/* MQTT-4.7.3-3: 65,535 bytes ok, 65,536 refused. */
	big = malloc(65536);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'x', 65536);
	big[65533] = '/';
	big[65534] = '#';
	CU_ASSERT_EQUAL(mqtt_filter_check(big, 65535), 0);
	CU_ASSERT_EQUAL(mqtt_topic_check(big, 65535), RT_ERR_INVAL);
	big[65534] = 'x';
	CU_ASSERT_EQUAL(mqtt_topic_check(big, 65535), 0);
	CU_ASSERT_EQUAL(mqtt_topic_check(big, 65536), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(mqtt_filter_check(big, 65536), RT_ERR_INVAL);
	free(big);
}

/* ---- Remaining Length and framing ---- */

static void
test_rl_boundaries(void)
{
	static const struct {
		uint32_t v;
		size_t n;
		uint8_t b[4];
	} t[] = {
		{ 0, 1, { 0x00 } },
		{ 127, 1, { 0x7f } },
		{ 128, 2, { 0x80, 0x01 } },
		{ 16383, 2, { 0xff, 0x7f } },
		{ 16384, 3, { 0x80, 0x80, 0x01 } },
		{ 2097151, 3, { 0xff, 0xff, 0x7f } },
		{ 2097152, 4, { 0x80, 0x80, 0x80, 0x01 } },
		{ 268435455, 4, { 0xff, 0xff, 0xff, 0x7f } },
	};
	static const uint8_t payload[1];

	for (size_t i = 0; i < RT_ARRAY_SIZE(t); i++) {
		uint8_t hdr[MQTT_HDR_MAX] = { 0xd0 };
		size_t n = 99, need = 0;
		struct mqtt_pkt p = { .type = MQTT_PUBLISH };
		int r;

		memcpy(hdr + 1, t[i].b, t[i].n);
		/* Decoding side: the header alone gives the size. */
		r = mqtt_frame(hdr, 1 + t[i].n, SIZE_MAX, &n);
		CU_ASSERT_EQUAL(r, t[i].v == 0 ? 0 : RT_ERR_AGAIN);
		CU_ASSERT_EQUAL(n, 1 + t[i].n + t[i].v);
		/* Encoding side: a PUBLISH whose RL is exactly v ("a" topic
		 * takes 3 bytes), sized without touching the payload. */
		if (t[i].v < 3)
			continue;
		p.u.publish.topic = S("a");
		p.u.publish.payload.p = payload;
		p.u.publish.payload.len = t[i].v - 3;
		CU_ASSERT_EQUAL(mqtt_encode(&p, NULL, 0, &need), RT_ERR_FULL);
		CU_ASSERT_EQUAL(need, 1 + t[i].n + t[i].v);
		if (t[i].v == 127 || t[i].v == 128 || t[i].v == 16384) {
			uint8_t *buf = malloc(need), *pl = calloc(1, need);
			size_t len;

			CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
			CU_ASSERT_PTR_NOT_NULL_FATAL(pl);
			p.u.publish.payload.p = pl;
			CU_ASSERT_EQUAL(mqtt_encode(&p, buf, need, &len), 0);
			CU_ASSERT_EQUAL(len, need);
			CU_ASSERT(memcmp(buf + 1, t[i].b, t[i].n) == 0);
			CU_ASSERT_EQUAL(mqtt_frame(buf, len, len, &n), 0);
			CU_ASSERT_EQUAL(n, len);
			free(buf);
			free(pl);
		}
	}
	/* One over the maximum cannot be encoded. */
	{
		struct mqtt_pkt p = { .type = MQTT_PUBLISH };
		size_t need = 99;

		p.u.publish.topic = S("a");
		p.u.publish.payload.p = payload;
		p.u.publish.payload.len = MQTT_RL_MAX - 3 + 1;
		CU_ASSERT_EQUAL(mqtt_encode(&p, NULL, 0, &need),
		    RT_ERR_TOOBIG);
		CU_ASSERT_EQUAL(need, 0);
		p.u.publish.payload.len = SIZE_MAX;
		CU_ASSERT_EQUAL(mqtt_encode(&p, NULL, 0, &need),
		    RT_ERR_TOOBIG);
	}
	/* 2.2.3: a 5th length byte is malformed (FAULTS M4), whatever
	 * follows and even before it arrives. */
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\xff\xff\xff\xff\x7f"), SIZE_MAX,
	    NULL), RT_ERR_PROTO);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\x80\x80\x80\x80\x01"), SIZE_MAX,
	    NULL), RT_ERR_PROTO);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\xff\xff\xff\xff"), SIZE_MAX,
	    NULL), RT_ERR_PROTO);
	EXPECT_MALFORMED("\x30\xff\xff\xff\xff\x7f");
	/* Non-minimal lengths are refused (documented choice). */
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\xd0\x80\x00"), SIZE_MAX, NULL),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x40\x82\x00\x00\x01"), SIZE_MAX,
	    NULL), RT_ERR_PROTO);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\xff\x80\x80\x00"), SIZE_MAX,
	    NULL), RT_ERR_PROTO);
	EXPECT_MALFORMED("\xd0\x80\x00");
	/* Reserved packet types 0 and 15. */
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x00\x00"), SIZE_MAX, NULL),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\xf0"), SIZE_MAX, NULL), RT_ERR_PROTO);
	EXPECT_MALFORMED("\xf0\x00");
}

static void
test_frame_incremental(void)
{
	/* CONNACK, PUBLISH QoS 1 with a 2-byte length (RL 200), PINGRESP. */
	uint8_t s[4 + 203 + 2];
	size_t n, off = 0, got = 0;
	int r;

	memcpy(s, "\x20\x02\x00\x00", 4);
	memset(s + 4, 'p', 203);
	memcpy(s + 4, "\x32\xc8\x01\x00\x03" "a/b" "\x00\x01", 10);
	memcpy(s + 207, "\xd0\x00", 2);

	static const size_t size[] = { 4, 203, 2 }, hlen[] = { 2, 3, 2 };

	/* Byte by byte: "need more" until each packet is whole; the size
	 * is known as soon as the fixed header is. */
	while (off < sizeof(s) && got < 3) {
		size_t have = 0;

		for (;;) {
			n = 99;
			r = mqtt_frame(s + off, have, 4096, &n);
			if (r != RT_ERR_AGAIN)
				break;
			CU_ASSERT_EQUAL(n, have >= hlen[got] ? size[got] : 0);
			have++;
		}
		CU_ASSERT_EQUAL_FATAL(r, 0);
		CU_ASSERT_EQUAL(n, have);
		CU_ASSERT_EQUAL(n, size[got]);
		off += n;
		got++;
	}
	CU_ASSERT_EQUAL(got, 3);
	CU_ASSERT_EQUAL(off, sizeof(s));
	/* Several packets at once: only the first is reported. */
	CU_ASSERT_EQUAL(mqtt_frame(s, sizeof(s), 4096, &n), 0);
	CU_ASSERT_EQUAL(n, 4);
}

/* FAULTS M5, MQTT-4.8.0-2: the inbound cap is applied from the fixed
 * header, before the body is buffered (or anything is allocated). */
static void
test_frame_max(void)
{
	static const uint8_t stall[] = { 0x30, 0xff, 0xff, 0xff, 0x7f,
	    0x00, 0x03, 'a', '/', 'b' };
	size_t n;

	/* rl-max-stall: refused as soon as the header says so. */
	CU_ASSERT_EQUAL(mqtt_frame(stall, sizeof(stall), 65536, &n),
	    RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(mqtt_frame(stall, 5, 65536, &n), RT_ERR_TOOBIG);
	/* ... even from a partial header: after "ff ff ff" the packet is
	 * at least 5 + 2097151 + 2097152 bytes. */
	CU_ASSERT_EQUAL(mqtt_frame(stall, 4, 65536, &n), RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(mqtt_frame(stall, 3, 65536, &n), RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(mqtt_frame(stall, 3, 1024, &n), RT_ERR_TOOBIG);
	/* The cap is on the whole packet, fixed header included. */
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\x7e"), 128, &n), RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(n, 128);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\x7f"), 128, &n), RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\x80\x01"), 131, &n),
	    RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(n, 131);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\x80\x01"), 130, &n),
	    RT_ERR_TOOBIG);
	/* After "30 80" the packet is at least "30 80 01" + 128 bytes. */
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\x80"), 131, &n), RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\x30\x80"), 130, &n), RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\xd0\x00"), 2, &n), 0);
	CU_ASSERT_EQUAL(mqtt_frame(LIT("\xd0\x00"), 1, &n), RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(mqtt_frame(LIT(""), 1, &n), RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(mqtt_frame(LIT(""), 2, &n), RT_ERR_AGAIN);
}

/* ---- encoders ---- */

static void
test_enc_connect(void)
{
	struct mqtt_pkt p = { .type = MQTT_CONNECT };
	struct mqtt_connect *c = &p.u.connect;

	/* MQTT-3.1.2-3: reserved flag bit 0; 3.1.3-1: client id first. */
	c->client_id = S("abc");
	c->clean_session = 1;
	c->keepalive = 60;
	EXPECT_ENC(&p, "\x10\x0f\x00\x04MQTT\x04\x02\x00\x3c\x00\x03" "abc");
	/* MQTT-3.1.3-7: empty client id only with clean session. */
	c->client_id = S("");
	EXPECT_ENC(&p, "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00");
	c->clean_session = 0;
	EXPECT_REFUSED(&p);
	/* Everything, in the order of MQTT-3.1.3-1: id, will topic, will
	 * message, user name, password. Flags: user 0x80, password 0x40,
	 * will retain 0x20, will QoS 1 0x08, will 0x04 = 0xec. */
	c->client_id = S("gw");
	c->keepalive = 0x1234;
	c->will = 1;
	c->will_qos = 1;
	c->will_retain = 1;
	c->will_topic = S("s/x");
	c->will_msg = S("off");
	c->has_username = 1;
	c->username = S("u");
	c->has_password = 1;
	c->password = S("p\0w");	/* binary */
	EXPECT_ENC(&p, "\x10\x20\x00\x04MQTT\x04\xec\x12\x34"
	    "\x00\x02gw\x00\x03s/x\x00\x03off\x00\x01u\x00\x03p\0w");
	/* Will QoS 2 without retain, clean session, no password. */
	c->clean_session = 1;
	c->will_qos = 2;
	c->will_retain = 0;
	c->has_password = 0;
	c->password = S("");
	c->username = S("");		/* present but empty */
	EXPECT_ENC(&p, "\x10\x1a\x00\x04MQTT\x04\x96\x12\x34"
	    "\x00\x02gw\x00\x03s/x\x00\x03off\x00\x00");
}

static void
test_enc_connect_refused(void)
{
	struct mqtt_pkt p = { .type = MQTT_CONNECT };
	struct mqtt_connect *c = &p.u.connect, ok;

	c->client_id = S("gw");
	c->clean_session = 1;
	ok = *c;
	/* MQTT-3.1.2-11/-13/-15: no will flag -> no will fields, QoS 0,
	 * retain 0. */
	c->will_qos = 1;
	EXPECT_REFUSED(&p);
	*c = ok;
	c->will_retain = 1;
	EXPECT_REFUSED(&p);
	*c = ok;
	c->will_topic = S("a");
	EXPECT_REFUSED(&p);
	*c = ok;
	c->will_msg = S("m");
	EXPECT_REFUSED(&p);
	/* MQTT-3.1.2-9/-14: will flag -> valid will topic, QoS != 3. */
	*c = ok;
	c->will = 1;
	EXPECT_REFUSED(&p);			/* empty will topic */
	c->will_topic = S("a/+");
	EXPECT_REFUSED(&p);			/* wildcard */
	c->will_topic = S("a");
	c->will_qos = 3;
	EXPECT_REFUSED(&p);
	c->will_qos = 2;
	c->will_retain = 2;
	EXPECT_REFUSED(&p);			/* not a boolean */
	c->will_retain = 1;
	EXPECT_ENC(&p, "\x10\x13\x00\x04MQTT\x04\x36\x00\x00"
	    "\x00\x02gw\x00\x01" "a\x00\x00");
	/* MQTT-3.1.2-22: a password needs a user name. */
	*c = ok;
	c->has_password = 1;
	c->password = S("pw");
	EXPECT_REFUSED(&p);
	/* MQTT-3.1.2-18/-20: no flag, no field. */
	*c = ok;
	c->username = S("u");
	EXPECT_REFUSED(&p);
	*c = ok;
	c->has_username = 1;
	c->password = S("pw");
	EXPECT_REFUSED(&p);
	/* MQTT-3.1.3-4/-11: UTF-8 client id and user name. */
	*c = ok;
	c->client_id = S("g\xc3\x28");
	EXPECT_REFUSED(&p);
	*c = ok;
	c->has_username = 1;
	c->username = S("u\0");
	EXPECT_REFUSED(&p);
	*c = ok;
	c->clean_session = 2;
	EXPECT_REFUSED(&p);
}

static void
test_enc_publish(void)
{
	struct mqtt_pkt p = { .type = MQTT_PUBLISH };
	struct mqtt_publish *m = &p.u.publish;

	/* MQTT-2.3.1-5: QoS 0 has no packet id; 3.3.1-2: DUP 0. */
	m->topic = S("a/b");
	m->payload = S("hi");
	EXPECT_ENC(&p, "\x30\x07\x00\x03" "a/b" "hi");
	m->payload = S("");
	EXPECT_ENC(&p, "\x30\x05\x00\x03" "a/b");
	/* QoS 1, DUP (MQTT-3.3.1-1, a re-send), retain, id 0x1234. */
	m->topic = S("t");
	m->payload = S("x");
	m->qos = 1;
	m->dup = 1;
	m->retain = 1;
	m->id = 0x1234;
	EXPECT_ENC(&p, "\x3b\x06\x00\x01t\x12\x34x");
	/* QoS 2; MQTT-1.5.3-3: a leading U+FEFF is sent as is. */
	m->topic = S("\xef\xbb\xbf");
	m->payload = S("");
	m->qos = 2;
	m->dup = 0;
	m->retain = 0;
	m->id = 1;
	EXPECT_ENC(&p, "\x34\x07\x00\x03\xef\xbb\xbf\x00\x01");
}

static void
test_enc_publish_refused(void)
{
	static const char *bad_topics[] = {
		"+", "#", "a/#/b", "a/+", "a/#", "", "\xc3\x28",
		"\xed\xa0\x80", "\xc0\xaf",
	};
	struct mqtt_pkt p = { .type = MQTT_PUBLISH };
	struct mqtt_publish *m = &p.u.publish;
	uint8_t *big, *out;
	size_t len;

	/* FAULTS M20, MQTT-3.3.2-2, 4.7.1-1, 4.7.3-1, 1.5.3-1. */
	for (size_t i = 0; i < RT_ARRAY_SIZE(bad_topics); i++) {
		m->topic = mqtt_cstr(bad_topics[i]);
		EXPECT_REFUSED(&p);
	}
	m->topic = S("a\0b");				/* MQTT-4.7.3-2 */
	EXPECT_REFUSED(&p);
	m->topic = S("a");
	m->dup = 1;					/* MQTT-3.3.1-2 */
	EXPECT_REFUSED(&p);
	m->dup = 0;
	m->id = 5;					/* MQTT-2.3.1-5 */
	EXPECT_REFUSED(&p);
	m->id = 0;
	m->qos = 1;					/* MQTT-2.3.1-1 */
	EXPECT_REFUSED(&p);
	m->qos = 2;
	EXPECT_REFUSED(&p);
	m->id = 1;
	m->qos = 3;					/* MQTT-3.3.1-4 */
	EXPECT_REFUSED(&p);
	m->qos = 1;
	m->retain = 2;
	EXPECT_REFUSED(&p);
	m->retain = 0;
	m->payload.len = 5;				/* NULL payload */
	EXPECT_REFUSED(&p);
	m->payload.len = 0;

	/* MQTT-4.7.3-3: 65,535 bytes ok, 65,536 refused. */
	big = malloc(65536);
	out = malloc(65541);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	memset(big, 't', 65536);
	m->qos = 0;
	m->id = 0;
	m->topic.p = big;
	m->topic.len = 65535;
	CU_ASSERT_EQUAL(mqtt_encode(&p, out, 65541, &len), 0);
	CU_ASSERT_EQUAL(len, 65541);	/* RL 65,537: 3 bytes */
	CU_ASSERT(memcmp(out, "\x30\x81\x80\x04\xff\xff", 6) == 0);
	m->topic.len = 65536;
	CU_ASSERT_EQUAL(mqtt_encode(&p, out, 65541, &len), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(len, 0);
	free(big);
	free(out);
}

static void
test_enc_others(void)
{
	static const struct mqtt_sub subs[] = {
		{ { (const uint8_t *)"a/+", 3 }, 1 },
		{ { (const uint8_t *)"#", 1 }, 0 },
	};
	static const uint8_t codes[] = { 0x01, 0x80 };
	struct mqtt_pkt p;

	/* MQTT-2.3.1-6 and MQTT-2.2.2-1: acks echo the id; PUBREL 0010. */
	p = (struct mqtt_pkt){ .type = MQTT_PUBACK, .u.ack.id = 7 };
	EXPECT_ENC(&p, "\x40\x02\x00\x07");
	p.type = MQTT_PUBREC;
	EXPECT_ENC(&p, "\x50\x02\x00\x07");
	p.type = MQTT_PUBREL;
	EXPECT_ENC(&p, "\x62\x02\x00\x07");
	p.type = MQTT_PUBCOMP;
	EXPECT_ENC(&p, "\x70\x02\x00\x07");
	p.type = MQTT_UNSUBACK;
	p.u.ack.id = 0xfffe;
	EXPECT_ENC(&p, "\xb0\x02\xff\xfe");
	p.u.ack.id = 0;
	EXPECT_REFUSED(&p);
	/* MQTT-3.8.1-1: SUBSCRIBE flags 0010. */
	p = (struct mqtt_pkt){ .type = MQTT_SUBSCRIBE };
	p.u.sub.id = 0x0102;
	p.u.sub.subs = subs;
	p.u.sub.count = 2;
	EXPECT_ENC(&p, "\x82\x0c\x01\x02\x00\x03" "a/+" "\x01\x00\x01#\x00");
	/* MQTT-3.10.1-1: UNSUBSCRIBE flags 0010; no QoS bytes. */
	p.type = MQTT_UNSUBSCRIBE;
	p.u.sub.count = 1;
	EXPECT_ENC(&p, "\xa2\x07\x01\x02\x00\x03" "a/+");
	p = (struct mqtt_pkt){ .type = MQTT_PINGREQ };
	EXPECT_ENC(&p, "\xc0\x00");
	p.type = MQTT_PINGRESP;
	EXPECT_ENC(&p, "\xd0\x00");
	p.type = MQTT_DISCONNECT;
	EXPECT_ENC(&p, "\xe0\x00");
	p = (struct mqtt_pkt){ .type = MQTT_CONNACK };
	p.u.connack.session_present = 1;
	EXPECT_ENC(&p, "\x20\x02\x01\x00");
	p.u.connack.rc = 5;
	EXPECT_REFUSED(&p);
	p.u.connack.session_present = 0;
	EXPECT_ENC(&p, "\x20\x02\x00\x05");
	p.u.connack.rc = 6;
	EXPECT_REFUSED(&p);
	p = (struct mqtt_pkt){ .type = MQTT_SUBACK };
	p.u.suback.id = 1;
	p.u.suback.codes = codes;
	p.u.suback.count = 2;
	EXPECT_ENC(&p, "\x90\x04\x00\x01\x01\x80");
	p.u.suback.codes = (const uint8_t *)"\x03";
	p.u.suback.count = 1;
	EXPECT_REFUSED(&p);
	p = (struct mqtt_pkt){ .type = (enum mqtt_type)0 };
	EXPECT_REFUSED(&p);
	p.type = (enum mqtt_type)15;
	EXPECT_REFUSED(&p);
}

static void
test_enc_sub_refused(void)
{
	static const char *bad[] = { "a#", "a/#/b", "a+", "+a", "#/", "",
	    "\xc3\x28" };
	struct mqtt_sub e = { { (const uint8_t *)"a", 1 }, 0 };
	struct mqtt_pkt p = { .type = MQTT_SUBSCRIBE };

	p.u.sub.id = 1;
	p.u.sub.subs = &e;
	p.u.sub.count = 1;
	for (int t = 0; t < 2; t++) {
		p.type = t == 0 ? MQTT_SUBSCRIBE : MQTT_UNSUBSCRIBE;
		/* MQTT-4.7.1-2/-3, 4.7.3-1, 1.5.3-1. */
		for (size_t i = 0; i < RT_ARRAY_SIZE(bad); i++) {
			e.filter = mqtt_cstr(bad[i]);
			EXPECT_REFUSED(&p);
		}
		e.filter = S("a/\0");
		EXPECT_REFUSED(&p);
		e.filter = S("a");
		p.u.sub.id = 0;				/* MQTT-2.3.1-1 */
		EXPECT_REFUSED(&p);
		p.u.sub.id = 1;
		p.u.sub.count = 0;			/* MQTT-3.8.3-3 */
		EXPECT_REFUSED(&p);
		p.u.sub.count = 1;
	}
	p.type = MQTT_SUBSCRIBE;
	e.qos = 3;
	EXPECT_REFUSED(&p);
}

/* ---- decoders ---- */

/* FAULTS M1/M2, 3.2.2.3, MQTT-3.2.2-4, 2.2.2-2. */
static void
test_dec_connack(void)
{
	struct mqtt_pkt d;

	for (uint8_t rc = 0; rc <= 5; rc++) {
		uint8_t b[4] = { 0x20, 0x02, 0x00, rc };

		CU_ASSERT_EQUAL(mqtt_decode(b, 4, &d), 0);
		CU_ASSERT_EQUAL(d.type, MQTT_CONNACK);
		CU_ASSERT_EQUAL(d.u.connack.rc, rc);
		CU_ASSERT_EQUAL(d.u.connack.session_present, 0);
	}
	for (unsigned int rc = 6; rc <= 255; rc++) {
		uint8_t b[4] = { 0x20, 0x02, 0x00, (uint8_t)rc };

		CU_ASSERT_EQUAL(mqtt_decode(b, 4, &d), RT_ERR_PROTO);
	}
	CU_ASSERT_EQUAL(DEC("\x20\x02\x01\x00", &d), 0);
	CU_ASSERT_EQUAL(d.u.connack.session_present, 1);
	EXPECT_MALFORMED("\x20\x02\x01\x04");	/* SP with a refusal */
	EXPECT_MALFORMED("\x20\x02\x01\x05");
	EXPECT_MALFORMED("\x20\x03\x00\x00\x00");	/* connack-badlen */
	EXPECT_MALFORMED("\x20\x01\x00");
	EXPECT_MALFORMED("\x20\x00");
	EXPECT_MALFORMED("\x20\x02\x02\x00");	/* reserved ack flags */
	EXPECT_MALFORMED("\x20\x02\x80\x00");
	EXPECT_MALFORMED("\x21\x02\x00\x00");	/* fixed header flags */
	EXPECT_MALFORMED("\x28\x02\x00\x00");
}

/* FAULTS M6/M7, MQTT-3.3.1-4, 1.5.3-1/-2/-3, 3.3.2-2, 4.7.3-1, 2.3.1-1. */
static void
test_dec_publish(void)
{
	struct mqtt_pkt d;
	struct mqtt_publish *m = &d.u.publish;
	static const uint8_t q1[] = "\x33\x0a\x00\x03" "a/b" "\x00\x07{}x";

	CU_ASSERT_EQUAL(DEC("\x30\x07\x00\x03" "a/b" "hi", &d), 0);
	CU_ASSERT_EQUAL(d.type, MQTT_PUBLISH);
	CU_ASSERT_EQUAL(m->qos, 0);
	CU_ASSERT_EQUAL(m->id, 0);
	CU_ASSERT(m->topic.len == 3 && memcmp(m->topic.p, "a/b", 3) == 0);
	CU_ASSERT(m->payload.len == 2 && memcmp(m->payload.p, "hi", 2) == 0);
	/* Views point into the input. */
	CU_ASSERT_EQUAL(mqtt_decode(q1, sizeof(q1) - 1, &d), 0);
	CU_ASSERT_PTR_EQUAL(m->topic.p, q1 + 4);
	CU_ASSERT_PTR_EQUAL(m->payload.p, q1 + 9);
	CU_ASSERT_EQUAL(m->payload.len, 3);
	CU_ASSERT_EQUAL(m->qos, 1);
	CU_ASSERT_EQUAL(m->retain, 1);
	CU_ASSERT_EQUAL(m->dup, 0);
	CU_ASSERT_EQUAL(m->id, 7);
	CU_ASSERT_EQUAL(DEC("\x3c\x05\x00\x01" "a\xff\xff", &d), 0);
	CU_ASSERT(m->qos == 2 && m->dup == 1 && m->id == 0xffff);
	/* MQTT-1.5.3-3: U+FEFF is kept, not stripped. */
	CU_ASSERT_EQUAL(DEC("\x30\x06\x00\x04\xef\xbb\xbf" "a", &d), 0);
	CU_ASSERT(m->topic.len == 4 &&
	    memcmp(m->topic.p, "\xef\xbb\xbf" "a", 4) == 0);
	CU_ASSERT_EQUAL(m->payload.len, 0);

	EXPECT_MALFORMED("\x36\x07\x00\x03" "a/b" "\x00\x01");	/* QoS 3 */
	EXPECT_MALFORMED("\x37\x07\x00\x03" "a/b" "\x00\x01");
	EXPECT_MALFORMED("\x30\x06\x00\x03" "a\x00" "bX");	/* U+0000 */
	EXPECT_MALFORMED("\x30\x04\x00\x02\xc3\x28");
	EXPECT_MALFORMED("\x30\x05\x00\x03\xed\xa0\x80");	/* surrogate */
	EXPECT_MALFORMED("\x30\x04\x00\x02\xc0\xaf");		/* overlong */
	EXPECT_MALFORMED("\x30\x06\x00\x04\xf4\x90\x80\x80");	/* > 10FFFF */
	EXPECT_MALFORMED("\x30\x05\x00\x03" "a/+");		/* wildcards */
	EXPECT_MALFORMED("\x30\x03\x00\x01#");
	EXPECT_MALFORMED("\x30\x02\x00\x00");			/* empty */
	EXPECT_MALFORMED("\x32\x05\x00\x01" "a\x00\x00");	/* id 0 */
	EXPECT_MALFORMED("\x38\x03\x00\x01" "a");		/* DUP QoS 0 */
	EXPECT_MALFORMED("\x30\x03\x00\x05" "a");		/* over-read */
	EXPECT_MALFORMED("\x32\x03\x00\x01" "a");		/* no id */
	EXPECT_MALFORMED("\x32\x04\x00\x01" "a\x00");		/* half id */
	EXPECT_MALFORMED("\x30\x01\x00");
	EXPECT_MALFORMED("\x30\x00");
}

/* FAULTS M8, MQTT-2.2.2-2, 3.9.3-2, 2.3.1-1. */
static void
test_dec_acks(void)
{
	struct mqtt_pkt d;

	CU_ASSERT_EQUAL(DEC("\x40\x02\x12\x34", &d), 0);
	CU_ASSERT(d.type == MQTT_PUBACK && d.u.ack.id == 0x1234);
	CU_ASSERT_EQUAL(DEC("\x62\x02\x00\x01", &d), 0);
	CU_ASSERT(d.type == MQTT_PUBREL && d.u.ack.id == 1);
	CU_ASSERT_EQUAL(DEC("\xb0\x02\x00\x09", &d), 0);
	CU_ASSERT(d.type == MQTT_UNSUBACK && d.u.ack.id == 9);
	CU_ASSERT_EQUAL(DEC("\xd0\x00", &d), 0);
	CU_ASSERT_EQUAL(d.type, MQTT_PINGRESP);
	CU_ASSERT_EQUAL(DEC("\x90\x06\x00\x02\x00\x01\x02\x80", &d), 0);
	CU_ASSERT(d.type == MQTT_SUBACK && d.u.suback.id == 2);
	CU_ASSERT(d.u.suback.count == 4 &&
	    memcmp(d.u.suback.codes, "\x00\x01\x02\x80", 4) == 0);

	EXPECT_MALFORMED("\x41\x02\x00\x01");		/* PUBACK 0x41 */
	EXPECT_MALFORMED("\x42\x02\x00\x01");
	EXPECT_MALFORMED("\x48\x02\x00\x01");
	EXPECT_MALFORMED("\x40\x03\x00\x01\x00");	/* trailing byte */
	EXPECT_MALFORMED("\x40\x01\x00");
	EXPECT_MALFORMED("\x40\x00");
	EXPECT_MALFORMED("\x40\x02\x00\x00");		/* id 0 */
	EXPECT_MALFORMED("\x60\x02\x00\x01");		/* PUBREL not 0010 */
	EXPECT_MALFORMED("\x52\x02\x00\x01");
	EXPECT_MALFORMED("\x72\x02\x00\x01");
	EXPECT_MALFORMED("\xb1\x02\x00\x01");
	EXPECT_MALFORMED("\xb0\x03\x00\x01\x00");
	EXPECT_MALFORMED("\x91\x03\x00\x01\x00");	/* SUBACK 0x91 */
	EXPECT_MALFORMED("\x90\x03\x00\x01\x03");	/* code 0x03 */
	EXPECT_MALFORMED("\x90\x03\x00\x01\x81");
	EXPECT_MALFORMED("\x90\x03\x00\x01\xff");
	EXPECT_MALFORMED("\x90\x04\x00\x01\x00\x7f");
	EXPECT_MALFORMED("\x90\x02\x00\x01");		/* no codes */
	EXPECT_MALFORMED("\x90\x03\x00\x00\x00");	/* id 0 */
	EXPECT_MALFORMED("\xd1\x00");
	EXPECT_MALFORMED("\xd0\x01\x00");
	EXPECT_MALFORMED("\xc8\x00");
	EXPECT_MALFORMED("\xe2\x00");
	EXPECT_MALFORMED("\xe0\x01\x00");
}

/* No trailing bytes, no over-read: the input must be exactly one frame,
 * and a field claiming more than is there is refused. Each packet is
 * tried at the very end of a heap block (a sanitizer sees any over-read)
 * and followed by bytes that would make an over-reading decoder succeed
 * (a plain build sees it too). */
static void
test_dec_bounds(void)
{
	static const struct { const char *s; size_t n; } t[] = {
#define T(s) { s, sizeof(s) - 1 }
		T("\x30\x03\x00\x05" "a"),
		T("\x30\x05\x00\x03\xe2\x82"),
		T("\x90\x02\x00"),
		T("\x10\x0a\x00\x04MQTT\x04\x02\x00\x3c"),
		T("\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x05"),
		T("\x82\x06\x00\x01\x00\x03" "a/"),
		T("\x82\x07\x00\x01\x00\x03" "a/b"),
		T("\x40\x02\x00"),
		T("\x30"),
		T(""),
#undef T
	};
	struct mqtt_pkt d;

	for (size_t i = 0; i < RT_ARRAY_SIZE(t); i++) {
		uint8_t *b = malloc(t[i].n > 0 ? t[i].n : 1);
		uint8_t *pad = malloc(t[i].n + 64);

		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		CU_ASSERT_PTR_NOT_NULL_FATAL(pad);
		memcpy(b, t[i].s, t[i].n);
		CU_ASSERT_EQUAL(mqtt_decode(b, t[i].n, &d), RT_ERR_PROTO);
		memset(pad, 'x', t[i].n + 64);
		memcpy(pad, t[i].s, t[i].n);
		CU_ASSERT_EQUAL(mqtt_decode(pad, t[i].n, &d), RT_ERR_PROTO);
		free(b);
		free(pad);
	}
	/* A whole packet with bytes after it is not one packet. */
	EXPECT_MALFORMED("\x40\x02\x00\x01\x00");
	EXPECT_MALFORMED("\xd0\x00\xd0\x00");
	CU_ASSERT_EQUAL(mqtt_decode(NULL, 0, &d), RT_ERR_PROTO);
}

/* Packets only a server receives, decoded for tests and fuzzing. */
static void
test_dec_server_side(void)
{
	struct mqtt_pkt d;
	struct mqtt_connect *c = &d.u.connect;
	struct mqtt_sub s;
	size_t off = 0;

	CU_ASSERT_EQUAL(DEC("\x10\x20\x00\x04MQTT\x04\xec\x12\x34"
	    "\x00\x02gw\x00\x03s/x\x00\x03off\x00\x01u\x00\x03p\0w", &d), 0);
	CU_ASSERT_EQUAL(d.type, MQTT_CONNECT);
	CU_ASSERT(c->keepalive == 0x1234 && !c->clean_session);
	CU_ASSERT(c->will && c->will_qos == 1 && c->will_retain);
	CU_ASSERT(c->has_username && c->has_password);
	CU_ASSERT(c->client_id.len == 2 && memcmp(c->client_id.p, "gw", 2) == 0);
	CU_ASSERT(c->will_topic.len == 3 && c->will_msg.len == 3);
	CU_ASSERT(c->password.len == 3 && memcmp(c->password.p, "p\0w", 3) == 0);
	/* MQTT-3.1.2-3 reserved bit; level 4 only; MQTT-3.1.2-14/-13/-15/-22
	 * flag consistency; MQTT-3.1.3-7 empty id needs clean session. */
	EXPECT_MALFORMED("\x10\x0f\x00\x04MQTT\x04\x03\x00\x3c\x00\x03" "abc");
	EXPECT_MALFORMED("\x10\x0f\x00\x04MQTT\x03\x02\x00\x3c\x00\x03" "abc");
	EXPECT_MALFORMED("\x10\x0f\x00\x04MQTX\x04\x02\x00\x3c\x00\x03" "abc");
	EXPECT_MALFORMED("\x10\x0f\x00\x04MQTT\x04\x1e\x00\x3c\x00\x03" "abc");
	EXPECT_MALFORMED("\x10\x0f\x00\x04MQTT\x04\x0a\x00\x3c\x00\x03" "abc");
	EXPECT_MALFORMED("\x10\x0f\x00\x04MQTT\x04\x22\x00\x3c\x00\x03" "abc");
	EXPECT_MALFORMED("\x10\x12\x00\x04MQTT\x04\x42\x00\x3c\x00\x03" "abc"
	    "\x00\x01p");
	EXPECT_MALFORMED("\x10\x0c\x00\x04MQTT\x04\x00\x00\x3c\x00\x00");
	EXPECT_MALFORMED("\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x03" "abc"
	    "x");
	EXPECT_MALFORMED("\x11\x0f\x00\x04MQTT\x04\x02\x00\x3c\x00\x03" "abc");

	CU_ASSERT_EQUAL(DEC("\x82\x0c\x01\x02\x00\x03" "a/+" "\x01\x00\x01#"
	    "\x02", &d), 0);
	CU_ASSERT(d.type == MQTT_SUBSCRIBE && d.u.sub.id == 0x0102);
	CU_ASSERT_EQUAL(d.u.sub.count, 2);
	CU_ASSERT_EQUAL(mqtt_sub_next(&d, &off, &s), 1);
	CU_ASSERT(s.filter.len == 3 && memcmp(s.filter.p, "a/+", 3) == 0);
	CU_ASSERT_EQUAL(s.qos, 1);
	CU_ASSERT_EQUAL(mqtt_sub_next(&d, &off, &s), 1);
	CU_ASSERT(s.filter.len == 1 && s.filter.p[0] == '#' && s.qos == 2);
	CU_ASSERT_EQUAL(mqtt_sub_next(&d, &off, &s), 0);
	CU_ASSERT_EQUAL(DEC("\xa2\x0b\x00\x05\x00\x03" "a/#" "\x00\x02" "bc",
	    &d), 0);
	off = 0;
	CU_ASSERT(d.type == MQTT_UNSUBSCRIBE && d.u.sub.count == 2);
	CU_ASSERT_EQUAL(mqtt_sub_next(&d, &off, &s), 1);
	CU_ASSERT_EQUAL(mqtt_sub_next(&d, &off, &s), 1);
	CU_ASSERT(s.filter.len == 2 && memcmp(s.filter.p, "bc", 2) == 0);
	CU_ASSERT_EQUAL(mqtt_sub_next(&d, &off, &s), 0);

	EXPECT_MALFORMED("\x80\x06\x00\x01\x00\x01#\x00");	/* 3.8.1-1 */
	EXPECT_MALFORMED("\x82\x06\x00\x01\x00\x01#\x03");	/* QoS 3 */
	EXPECT_MALFORMED("\x82\x06\x00\x01\x00\x01#\x40");	/* 3.8.3-4 */
	EXPECT_MALFORMED("\x82\x05\x00\x01\x00\x01#");		/* no QoS */
	EXPECT_MALFORMED("\x82\x02\x00\x01");			/* 3.8.3-3 */
	EXPECT_MALFORMED("\x82\x07\x00\x01\x00\x02" "a#\x00");
	EXPECT_MALFORMED("\xa0\x05\x00\x01\x00\x01#");		/* 3.10.1-1 */
	EXPECT_MALFORMED("\xa2\x02\x00\x01");
	EXPECT_MALFORMED("\xa2\x05\x00\x00\x00\x01#");
	EXPECT_MALFORMED("\xc1\x00");
}

/* Encode -> decode gives back the same fields. */
static void
test_roundtrip(void)
{
	struct mqtt_pkt p = { .type = MQTT_PUBLISH }, d;
	uint8_t buf[128];
	size_t len;

	p.u.publish.topic = S("\xef\xbb\xbfrevtun/gw-17/\xc3\xa9");
	p.u.publish.payload = S("{\"v\":1}\0");
	p.u.publish.qos = 1;
	p.u.publish.dup = 1;
	p.u.publish.id = 65535;
	CU_ASSERT_EQUAL_FATAL(mqtt_encode(&p, buf, sizeof(buf), &len), 0);
	CU_ASSERT_EQUAL_FATAL(mqtt_frame(buf, len, sizeof(buf), &len), 0);
	CU_ASSERT_EQUAL_FATAL(mqtt_decode(buf, len, &d), 0);
	CU_ASSERT_EQUAL(d.u.publish.topic.len, p.u.publish.topic.len);
	CU_ASSERT(memcmp(d.u.publish.topic.p, p.u.publish.topic.p,
	    p.u.publish.topic.len) == 0);
	CU_ASSERT_EQUAL(d.u.publish.payload.len, 8);
	CU_ASSERT(memcmp(d.u.publish.payload.p, "{\"v\":1}\0", 8) == 0);
	CU_ASSERT(d.u.publish.qos == 1 && d.u.publish.dup == 1 &&
	    d.u.publish.retain == 0 && d.u.publish.id == 65535);
}

int
suite_mqtt_codec(void)
{
	CU_pSuite s = CU_add_suite("mqtt_codec", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "utf8 validator", test_utf8) == NULL ||
	    CU_add_test(s, "topic and filter validators",
	    test_topic_filter) == NULL ||
	    CU_add_test(s, "remaining length boundaries",
	    test_rl_boundaries) == NULL ||
	    CU_add_test(s, "incremental framing",
	    test_frame_incremental) == NULL ||
	    CU_add_test(s, "inbound size cap", test_frame_max) == NULL ||
	    CU_add_test(s, "encode CONNECT", test_enc_connect) == NULL ||
	    CU_add_test(s, "CONNECT refusals",
	    test_enc_connect_refused) == NULL ||
	    CU_add_test(s, "encode PUBLISH", test_enc_publish) == NULL ||
	    CU_add_test(s, "PUBLISH refusals",
	    test_enc_publish_refused) == NULL ||
	    CU_add_test(s, "encode acks, (UN)SUBSCRIBE, ping",
	    test_enc_others) == NULL ||
	    CU_add_test(s, "(UN)SUBSCRIBE refusals",
	    test_enc_sub_refused) == NULL ||
	    CU_add_test(s, "decode CONNACK", test_dec_connack) == NULL ||
	    CU_add_test(s, "decode PUBLISH", test_dec_publish) == NULL ||
	    CU_add_test(s, "decode acks", test_dec_acks) == NULL ||
	    CU_add_test(s, "decode bounds", test_dec_bounds) == NULL ||
	    CU_add_test(s, "decode server-side packets",
	    test_dec_server_side) == NULL ||
	    CU_add_test(s, "round trip", test_roundtrip) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
