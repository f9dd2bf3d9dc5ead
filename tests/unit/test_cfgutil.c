/* test_cfgutil.c - unit tests of common/cfgutil.c. */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_cfgutil(void);

int
suite_cfgutil(void)
{
	CU_pSuite s = CU_add_suite("cfgutil", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
