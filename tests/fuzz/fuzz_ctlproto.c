/*
 * fuzz_ctlproto.c - fuzz target for common/ctlproto.c: parses the input
 * as a stream of frames the way a channel does, and checks the parser's
 * invariants, aborting on any violation:
 *  - every proper prefix of a frame is "need more" (or the same early
 *    error), never a frame;
 *  - a parsed frame re-encodes to exactly the same bytes;
 *  - REQ split results obey the contract (operator charset and length,
 *    command without control characters, both NUL-terminated);
 *  - an event id or ack parsed from a DATA payload is in range, and an
 *    ack re-encodes to the same bytes.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ctlproto.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_req(const struct ctl_frame *f)
{
	char op[65], cmd[4097];
	size_t i;

	if (ctl_req_split(f, op, sizeof(op), cmd, sizeof(cmd)) != 0)
		return;
	if (strlen(op) < 1 || strlen(op) > 64 || strlen(cmd) < 1)
		abort();
	for (i = 0; op[i] != '\0'; i++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._-", op[i]) == NULL)
			abort();
	for (i = 0; cmd[i] != '\0'; i++)
		if ((unsigned char)cmd[i] < 0x20 || cmd[i] == 0x7f)
			abort();
}

static void
check_event(const struct ctl_frame *f)
{
	char ack[CTL_ACK_MAX];
	uint64_t id;

	if (ctl_event_id(f->payload, f->len, &id) == 0 &&
	    (id < 1 || id > CTL_EVENT_ID_MAX))
		abort();
	if (ctl_ack_parse(f->payload, f->len, &id) != 0)
		return;
	if (id < 1 || id > CTL_EVENT_ID_MAX ||
	    ctl_ack_format(ack, sizeof(ack), id) != f->len ||
	    memcmp(ack, f->payload, f->len) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct buf *b;
	struct ctl_frame f, g;
	uint16_t c, r16;
	uint32_t st;
	int n, m;
	size_t i;

	if (b == NULL && (b = buf_new(CTL_HDR_LEN + CTL_MAX_PAYLOAD)) == NULL)
		abort();
	while (size > 0) {
		n = ctl_parse(data, size, &f);
		if (n == RT_ERR_AGAIN || n == RT_ERR_PROTO ||
		    n == RT_ERR_TOOBIG)
			break;
		if (n < CTL_HDR_LEN || (size_t)n > size ||
		    (size_t)n != CTL_HDR_LEN + f.len || f.len > CTL_MAX_PAYLOAD)
			abort();
		for (i = 0; i < (size_t)n; i++) {
			m = ctl_parse(data, i, &g);
			if (m != RT_ERR_AGAIN && m != RT_ERR_PROTO)
				abort();
		}
		buf_reset(b);
		if (ctl_append(b, f.type, f.payload, f.len) != 0 ||
		    buf_len(b) != (size_t)n ||
		    memcmp(buf_data(b), data, (size_t)n) != 0)
			abort();
		if (f.type == CTL_REQ)
			check_req(&f);
		if (f.type == CTL_DATA)
			check_event(&f);
		(void)ctl_get_winch(&f, &c, &r16);
		(void)ctl_get_exit(&f, &st);
		data += n;
		size -= (size_t)n;
	}
	return 0;
}
