/* test_acl.c - unit tests (being written). */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_acl(void);

int
suite_acl(void)
{
	CU_pSuite s = CU_add_suite("acl", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
