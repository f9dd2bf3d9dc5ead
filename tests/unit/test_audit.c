/* test_audit.c - unit tests (being written). */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_audit(void);

int
suite_audit(void)
{
	CU_pSuite s = CU_add_suite("audit", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
