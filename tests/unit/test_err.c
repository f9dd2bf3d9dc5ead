/* test_err.c - unit tests of common/err.c. */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_err(void);

int
suite_err(void)
{
	CU_pSuite s = CU_add_suite("err", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
