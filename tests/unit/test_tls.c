/* test_tls.c - unit tests of common/tls.c. */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_tls(void);

int
suite_tls(void)
{
	CU_pSuite s = CU_add_suite("tls", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
