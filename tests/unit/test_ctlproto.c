/*
 * test_ctlproto.c - unit tests of common/ctlproto.c: frame parsing
 * (partial input, limits, unknown types), encoding into a bounded buffer
 * (all or nothing), REQ splitting, the fixed-size payloads and the
 * event channel's ids and acks.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "buf.h"
#include "ctlproto.h"
#include "err.h"
#include "runner.h"

int suite_ctlproto(void);

static void
test_parse_partial(void)
{
	const uint8_t fr[] = { CTL_DATA, 0, 0, 3, 'a', 'b', 'c', 0xff };
	struct ctl_frame f;
	size_t i;

	for (i = 0; i < 7; i++)
		CU_ASSERT_EQUAL(ctl_parse(fr, i, &f), RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(ctl_parse(fr, 7, &f), 7);
	CU_ASSERT_EQUAL(f.type, CTL_DATA);
	CU_ASSERT_EQUAL(f.len, 3);
	CU_ASSERT_PTR_EQUAL(f.payload, fr + 4);
	/* Trailing bytes belong to the next frame. */
	CU_ASSERT_EQUAL(ctl_parse(fr, sizeof(fr), &f), 7);
}

static void
test_parse_errors(void)
{
	uint8_t fr[8] = { 0, 0, 0, 0 };
	struct ctl_frame f;

	CU_ASSERT_EQUAL(ctl_parse(fr, 4, &f), RT_ERR_PROTO);
	fr[0] = 7;
	CU_ASSERT_EQUAL(ctl_parse(fr, 1, &f), RT_ERR_PROTO);
	fr[0] = 0xff;
	CU_ASSERT_EQUAL(ctl_parse(fr, 4, &f), RT_ERR_PROTO);
	/* Over the limit: known from the header alone. */
	fr[0] = CTL_DATA;
	fr[1] = 0x01;
	fr[2] = 0x00;
	fr[3] = 0x01;
	CU_ASSERT_EQUAL(ctl_parse(fr, 4, &f), RT_ERR_TOOBIG);
	fr[3] = 0x00;	/* exactly CTL_MAX_PAYLOAD: needs more bytes */
	CU_ASSERT_EQUAL(ctl_parse(fr, 4, &f), RT_ERR_AGAIN);
	/* Empty payload is a frame. */
	fr[1] = fr[2] = fr[3] = 0;
	fr[0] = CTL_EOF;
	CU_ASSERT_EQUAL(ctl_parse(fr, 4, &f), 4);
	CU_ASSERT_EQUAL(f.len, 0);
}

static void
test_append(void)
{
	struct buf *b = buf_new(10);
	struct ctl_frame f;
	static uint8_t big[CTL_MAX_PAYLOAD + 1];

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(ctl_append(b, CTL_DATA, "hello", 5), 0);
	CU_ASSERT_EQUAL(buf_len(b), 9);
	/* No room for the whole frame: nothing appended. */
	CU_ASSERT_EQUAL(ctl_append(b, CTL_DATA, "x", 1), RT_ERR_FULL);
	CU_ASSERT_EQUAL(buf_len(b), 9);
	CU_ASSERT_EQUAL(ctl_append(b, 0, "x", 1), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(ctl_append(b, 9, NULL, 0), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(ctl_append(b, CTL_DATA, big, sizeof(big)),
	    RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(ctl_parse(buf_data(b), buf_len(b), &f), 9);
	CU_ASSERT_EQUAL(f.type, CTL_DATA);
	CU_ASSERT_EQUAL(memcmp(f.payload, "hello", 5), 0);
	buf_free(b);

	b = buf_new(CTL_HDR_LEN + CTL_MAX_PAYLOAD);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(ctl_append(b, CTL_DATA, big, CTL_MAX_PAYLOAD), 0);
	CU_ASSERT_EQUAL(ctl_parse(buf_data(b), buf_len(b), &f),
	    CTL_HDR_LEN + CTL_MAX_PAYLOAD);
	buf_free(b);
}

static int
split(const char *p, size_t n, char *op, char *cmd, size_t cmdsz)
{
	struct ctl_frame f = { CTL_REQ, (uint32_t)n, (const uint8_t *)p };

	return ctl_req_split(&f, op, 65, cmd, cmdsz);
}

static void
test_req_split(void)
{
	char op[65], cmd[4097], big[5000];
	struct ctl_frame f;

	CU_ASSERT_EQUAL(split("alice\0status", 12, op, cmd, sizeof(cmd)), 0);
	CU_ASSERT_STRING_EQUAL(op, "alice");
	CU_ASSERT_STRING_EQUAL(cmd, "status");
	CU_ASSERT_EQUAL(split("a.b_c-9\0config set x \xc3\xa9", 23, op, cmd,
	    sizeof(cmd)), 0);
	CU_ASSERT_STRING_EQUAL(cmd, "config set x \xc3\xa9");
	/* Missing NUL, empty parts, bad operator characters. */
	CU_ASSERT_EQUAL(split("alice", 5, op, cmd, sizeof(cmd)), RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("\0status", 7, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("alice\0", 6, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("al ice\0status", 13, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	/* Control characters, a second NUL, bad UTF-8, C1, overlong. */
	CU_ASSERT_EQUAL(split("a\0st\natus", 9, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("a\0st\0x", 6, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("a\0\xc3", 3, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("a\0\xc2\x85", 4, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("a\0\xc0\xaf", 4, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("a\0\xed\xa0\x80", 5, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split("a\0\x7f", 3, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	/* Operator 64 ok, 65 not; command 4096 ok, 4097 not; small cmdsz. */
	memset(big, 'o', 65);
	big[64] = '\0';
	big[65] = 's';
	CU_ASSERT_EQUAL(split(big, 66, op, cmd, sizeof(cmd)), 0);
	memset(big, 'o', 66);
	big[65] = '\0';
	big[66] = 's';
	CU_ASSERT_EQUAL(split(big, 67, op, cmd, sizeof(cmd)), RT_ERR_PROTO);
	big[0] = 'o';
	big[1] = '\0';
	memset(big + 2, 'c', 4097);
	CU_ASSERT_EQUAL(split(big, 2 + 4096, op, cmd, sizeof(cmd)), 0);
	CU_ASSERT_EQUAL(strlen(cmd), 4096);
	CU_ASSERT_EQUAL(split(big, 2 + 4097, op, cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(split(big, 2 + 10, op, cmd, 10), RT_ERR_PROTO);
	/* Only REQ frames split. */
	f.type = CTL_DATA;
	f.len = 8;
	f.payload = (const uint8_t *)"a\0status";
	CU_ASSERT_EQUAL(ctl_req_split(&f, op, sizeof(op), cmd, sizeof(cmd)),
	    RT_ERR_PROTO);
}

static void
test_fixed(void)
{
	uint8_t p[8];
	struct ctl_frame f = { CTL_WINCH, 4, p };
	uint16_t cols = 0, rows = 0;
	uint32_t st = 0;

	ctl_put_u16(p, 132);
	ctl_put_u16(p + 2, 43);
	CU_ASSERT_EQUAL(ctl_get_winch(&f, &cols, &rows), 0);
	CU_ASSERT_EQUAL(cols, 132);
	CU_ASSERT_EQUAL(rows, 43);
	f.len = 5;
	CU_ASSERT_EQUAL(ctl_get_winch(&f, &cols, &rows), RT_ERR_PROTO);
	f.type = CTL_PTY;	/* cols, rows, TERM */
	CU_ASSERT_EQUAL(ctl_get_winch(&f, &cols, &rows), 0);
	f.len = 3;
	CU_ASSERT_EQUAL(ctl_get_winch(&f, &cols, &rows), RT_ERR_PROTO);
	ctl_put_u32(p, 0x01020304);
	f.type = CTL_EXIT;
	f.len = 4;
	CU_ASSERT_EQUAL(ctl_get_exit(&f, &st), 0);
	CU_ASSERT_EQUAL(st, 0x01020304);
	f.len = 3;
	CU_ASSERT_EQUAL(ctl_get_exit(&f, &st), RT_ERR_PROTO);
	f.type = CTL_DATA;
	f.len = 4;
	CU_ASSERT_EQUAL(ctl_get_exit(&f, &st), RT_ERR_PROTO);
}

static int
ev_id(const char *s, uint64_t *id)
{
	return ctl_event_id((const uint8_t *)s, strlen(s), id);
}

static int
ack_id(const char *s, uint64_t *id)
{
	return ctl_ack_parse((const uint8_t *)s, strlen(s), id);
}

static void
test_events(void)
{
	static const char *const bad_ev[] = {
		"", "{", "{\"id\":", "{\"id\":1", "{\"id\":0}", "{\"id\":01}",
		"{\"id\": 1}", "{\"id\":1 }", "{\"id\":-1}", "{\"id\":1x}",
		"{\"event\":\"x\",\"id\":1}", " {\"id\":1}", "{\"ID\":1}",
		"{\"id\":\"1\"}", "{\"id\":1000000000000000}",
		"{\"id\":99999999999999999999999}",
	};
	static const char *const bad_ack[] = {
		"", "ack", "ack ", "ack 0", "ack 01", "ack 1 ", " ack 1", "ack -1",
		"ACK 1", "ack 1x", "ack  1", "ack 1000000000000000",
		"ack 18446744073709551617",
	};
	char out[CTL_ACK_MAX];
	uint64_t id = 0;
	size_t i, n;

	CU_ASSERT_EQUAL(ev_id("{\"id\":7,\"event\":\"config_rollback\"}", &id),
	    0);
	CU_ASSERT_EQUAL(id, 7);
	CU_ASSERT_EQUAL(ev_id("{\"id\":1}", &id), 0);
	CU_ASSERT_EQUAL(id, 1);
	CU_ASSERT_EQUAL(ev_id("{\"id\":999999999999999,", &id), 0);
	CU_ASSERT_EQUAL(id, CTL_EVENT_ID_MAX);
	for (i = 0; i < sizeof(bad_ev) / sizeof(bad_ev[0]); i++) {
		id = 42;
		if (ev_id(bad_ev[i], &id) != RT_ERR_PROTO)
			fprintf(stderr, "event id accepted: %s\n", bad_ev[i]);
		CU_ASSERT_EQUAL(ev_id(bad_ev[i], &id), RT_ERR_PROTO);
		CU_ASSERT_EQUAL(id, 42);
	}
	CU_ASSERT_EQUAL(ctl_event_id(NULL, 0, &id), RT_ERR_PROTO);
	/* the length bounds the prefix: no read past it */
	CU_ASSERT_EQUAL(ctl_event_id((const uint8_t *)"{\"id\":12}", 7, &id),
	    RT_ERR_PROTO);

	CU_ASSERT_EQUAL(ack_id("ack 7", &id), 0);
	CU_ASSERT_EQUAL(id, 7);
	CU_ASSERT_EQUAL(ack_id("ack 999999999999999", &id), 0);
	CU_ASSERT_EQUAL(id, CTL_EVENT_ID_MAX);
	for (i = 0; i < sizeof(bad_ack) / sizeof(bad_ack[0]); i++) {
		if (ack_id(bad_ack[i], &id) != RT_ERR_PROTO)
			fprintf(stderr, "ack accepted: %s\n", bad_ack[i]);
		CU_ASSERT_EQUAL(ack_id(bad_ack[i], &id), RT_ERR_PROTO);
	}
	n = ctl_ack_format(out, sizeof(out), CTL_EVENT_ID_MAX);
	CU_ASSERT_EQUAL(n, 19);
	CU_ASSERT_EQUAL(ctl_ack_parse((const uint8_t *)out, n, &id), 0);
	CU_ASSERT_EQUAL(id, CTL_EVENT_ID_MAX);
	n = ctl_ack_format(out, sizeof(out), 3);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(memcmp(out, "ack 3", 5), 0);
	CU_ASSERT_STRING_EQUAL(CTL_EVENTS_OP, "relay");
	CU_ASSERT_STRING_EQUAL(CTL_EVENTS_CMD, "events");
}

int
suite_ctlproto(void)
{
	CU_pSuite s = CU_add_suite("ctlproto", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "parse: partial input", test_parse_partial) == NULL ||
	    CU_add_test(s, "parse: type and length errors",
	    test_parse_errors) == NULL ||
	    CU_add_test(s, "append: bounded, all or nothing",
	    test_append) == NULL ||
	    CU_add_test(s, "req_split: operator and command checks",
	    test_req_split) == NULL ||
	    CU_add_test(s, "winch / pty / exit payloads", test_fixed) == NULL ||
	    CU_add_test(s, "event ids and acks", test_events) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
