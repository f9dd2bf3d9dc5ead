/* test_util.c - unit tests of common/util.c. */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_util(void);

int
suite_util(void)
{
	CU_pSuite s = CU_add_suite("util", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
