/* test_log.c - unit tests of common/log.c. */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_log(void);

int
suite_log(void)
{
	CU_pSuite s = CU_add_suite("log", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
