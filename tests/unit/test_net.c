/* test_net.c - unit tests of common/net.c. */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_net(void);

int
suite_net(void)
{
	CU_pSuite s = CU_add_suite("net", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
