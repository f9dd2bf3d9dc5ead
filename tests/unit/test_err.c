/* test_err.c - unit tests of common/err.c: every code has its own string. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "runner.h"

int suite_err(void);

static void
test_distinct(void)
{
	int a, b;

	for (a = 0; a >= RT_ERR_MIN; a--) {
		const char *sa = rt_strerror(a);

		CU_ASSERT_PTR_NOT_NULL_FATAL(sa);
		CU_ASSERT(sa[0] != '\0');
		CU_ASSERT(strcmp(sa, "unknown error") != 0);
		for (b = a - 1; b >= RT_ERR_MIN; b--)
			CU_ASSERT(strcmp(sa, rt_strerror(b)) != 0);
	}
	CU_ASSERT_STRING_EQUAL(rt_strerror(RT_OK), "success");
	CU_ASSERT_STRING_EQUAL(rt_strerror(RT_ERR_TIMEOUT), "timed out");
}

static void
test_out_of_range(void)
{
	CU_ASSERT_STRING_EQUAL(rt_strerror(RT_ERR_MIN - 1), "unknown error");
	CU_ASSERT_STRING_EQUAL(rt_strerror(-1000), "unknown error");
	CU_ASSERT_STRING_EQUAL(rt_strerror(-2147483647 - 1), "unknown error");
	/* positive values are counts, i.e. success */
	CU_ASSERT_STRING_EQUAL(rt_strerror(7), "success");
}

static void
test_errno(void)
{
	errno = ENOENT;
	CU_ASSERT_STRING_EQUAL(rt_strerror_errno(RT_ERR_SYS),
			       strerror(ENOENT));
	errno = ENOENT;
	CU_ASSERT_STRING_EQUAL(rt_strerror_errno(RT_ERR_TIMEOUT), "timed out");
	errno = 0;
	CU_ASSERT_STRING_EQUAL(rt_strerror_errno(RT_ERR_SYS),
			       rt_strerror(RT_ERR_SYS));
}

int
suite_err(void)
{
	CU_pSuite s = CU_add_suite("err", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "distinct strings", test_distinct) == NULL ||
	    CU_add_test(s, "out of range", test_out_of_range) == NULL ||
	    CU_add_test(s, "errno text", test_errno) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
