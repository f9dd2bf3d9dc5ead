/* test_util.c - unit tests of common/util.c: ids, strlcpy, jitter, clocks
 * and fd flags. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "runner.h"
#include "util.h"

int suite_util(void);

static void
test_valid_id(void)
{
	static const struct {
		const char *s;
		int ok;
	} t[] = {
		{ "gw-17", 1 }, { "a", 1 }, { "A.b_c-9", 1 }, { "0", 1 },
		{ "_x", 1 }, { "x.", 1 }, { "x-", 1 },
		{ "", 0 }, { ".hidden", 0 }, { "-opt", 0 }, { "a b", 0 },
		{ "a/b", 0 }, { "a:b", 0 }, { "a\nb", 0 }, { "caf\xc3\xa9", 0 },
		{ "a*", 0 }, { "..", 0 },
	};
	char id[80];
	size_t i;

	for (i = 0; i < RT_ARRAY_SIZE(t); i++) {
		if (rt_valid_id(t[i].s) != t[i].ok)
			CU_FAIL(t[i].s);
	}
	CU_ASSERT_EQUAL(rt_valid_id(NULL), 0);
	memset(id, 'x', sizeof(id));
	id[64] = '\0';
	CU_ASSERT_EQUAL(rt_valid_id(id), 1);	/* 64: longest */
	id[64] = 'x';
	id[65] = '\0';
	CU_ASSERT_EQUAL(rt_valid_id(id), 0);	/* 65: too long */
}

static void
test_strlcpy(void)
{
	char buf[8];

	memset(buf, 'Z', sizeof(buf));
	CU_ASSERT_EQUAL(rt_strlcpy(buf, "abc", sizeof(buf)), 3);
	CU_ASSERT_STRING_EQUAL(buf, "abc");
	memset(buf, 'Z', sizeof(buf));
	CU_ASSERT_EQUAL(rt_strlcpy(buf, "abcdefghij", sizeof(buf)), 10);
	CU_ASSERT_STRING_EQUAL(buf, "abcdefg");
	CU_ASSERT_EQUAL(rt_strlcpy(buf, "1234567", sizeof(buf)), 7);
	CU_ASSERT_STRING_EQUAL(buf, "1234567");	/* exactly fits */
	CU_ASSERT_EQUAL(rt_strlcpy(buf, "", sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "");
	buf[0] = 'Q';
	CU_ASSERT_EQUAL(rt_strlcpy(buf, "abc", 0), 3);
	CU_ASSERT_EQUAL(buf[0], 'Q');		/* len 0 writes nothing */
	CU_ASSERT_EQUAL(rt_strlcpy(buf, "abc", 1), 3);
	CU_ASSERT_STRING_EQUAL(buf, "");
}

static void
test_jitter(void)
{
	int64_t v, lo = INT64_MAX, hi = INT64_MIN;
	int i;

	for (i = 0; i < 1000; i++) {
		v = rt_jitter(10000, 0.2);
		CU_ASSERT(v >= 8000 && v <= 12000);
		lo = RT_MIN(lo, v);
		hi = RT_MAX(hi, v);
	}
	/* 1000 uniform draws spread well beyond the middle fifth */
	CU_ASSERT(lo < 9200);
	CU_ASSERT(hi > 10800);
	CU_ASSERT_EQUAL(rt_jitter(5000, 0), 5000);
	for (i = 0; i < 100; i++) {
		v = rt_jitter(1000, 5.0);	/* frac clamped to 1 */
		CU_ASSERT(v >= 0 && v <= 2000);
		v = rt_jitter(1000, -1.0);	/* clamped to 0 */
		CU_ASSERT_EQUAL(v, 1000);
	}
}

static void
test_time_iso(void)
{
	char buf[32];

	rt_time_iso(0, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1970-01-01T00:00:00.000Z");
	/* 2026-11-22T01:02:03.456Z */
	rt_time_iso(INT64_C(1795309323456), buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2026-11-22T01:02:03.456Z");
	rt_time_iso(INT64_C(1795309323007), buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2026-11-22T01:02:03.007Z");
	rt_time_iso(rt_wall_ms(), buf, sizeof(buf));
	CU_ASSERT_EQUAL(strlen(buf), 24);
	CU_ASSERT(buf[10] == 'T' && buf[23] == 'Z');
}

static void
test_clocks(void)
{
	int64_t a = rt_mono_ms(), b = rt_mono_ms();

	CU_ASSERT(a > 0);
	CU_ASSERT(b >= a);
	/* 2020-01-01 < now: the wall clock is in ms, not s or us */
	CU_ASSERT(rt_wall_ms() > INT64_C(1577836800000));
	CU_ASSERT(rt_wall_ms() < INT64_C(4102444800000));
}

static void
test_fd_flags(void)
{
	int p[2];

	CU_ASSERT_FATAL(pipe(p) == 0);
	CU_ASSERT_EQUAL(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
	CU_ASSERT_EQUAL(rt_fd_nonblock(p[0]), 0);
	CU_ASSERT(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	CU_ASSERT_EQUAL(rt_fd_cloexec(p[0]), 0);
	CU_ASSERT(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
	close(p[0]);
	close(p[1]);
	CU_ASSERT(rt_fd_nonblock(p[0]) < 0);	/* closed fd */
}

static void
test_random(void)
{
	uint32_t a = rt_random_u32(), b = rt_random_u32(),
	    c = rt_random_u32();

	/* three equal 32-bit draws: 1 in 2^64 */
	CU_ASSERT(!(a == b && b == c));
}

int
suite_util(void)
{
	CU_pSuite s = CU_add_suite("util", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "valid id", test_valid_id) == NULL ||
	    CU_add_test(s, "strlcpy", test_strlcpy) == NULL ||
	    CU_add_test(s, "jitter", test_jitter) == NULL ||
	    CU_add_test(s, "time iso", test_time_iso) == NULL ||
	    CU_add_test(s, "clocks", test_clocks) == NULL ||
	    CU_add_test(s, "fd flags", test_fd_flags) == NULL ||
	    CU_add_test(s, "random", test_random) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
