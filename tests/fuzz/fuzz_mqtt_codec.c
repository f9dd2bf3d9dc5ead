/*
 * fuzz_mqtt_codec.c - fuzz target for agent/mqtt_codec.c: splits the input
 * into frames as the client would (4 KiB inbound cap), decodes every whole
 * packet and checks the codec's invariants, aborting on any violation:
 *  - every proper prefix of a frame's fixed header is "need more";
 *  - a decoded packet re-encodes to exactly the same bytes (the codec
 *    accepts only canonical packets), and a buffer one byte short is
 *    refused with the right size and left untouched;
 *  - a valid topic name is also a valid filter.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mqtt_codec.h"

#define FUZZ_MAX_PACKET	4096
#define FUZZ_MAX_SUBS	(FUZZ_MAX_PACKET / 3)

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

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
