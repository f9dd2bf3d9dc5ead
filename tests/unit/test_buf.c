/* test_buf.c - unit tests of common/buf.c. */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_buf(void);

int
suite_buf(void)
{
	CU_pSuite s = CU_add_suite("buf", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
