/* test_loop.c - unit tests of common/loop.c. */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_loop(void);

int
suite_loop(void)
{
	CU_pSuite s = CU_add_suite("loop", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
