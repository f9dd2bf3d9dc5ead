/* test_agent_config.c - unit tests (being written). */
#include "config.h"

#include <CUnit/CUnit.h>

#include "runner.h"

int suite_agent_config(void);

int
suite_agent_config(void)
{
	CU_pSuite s = CU_add_suite("agent_config", NULL, NULL);

	return s == NULL ? (int)CU_get_error() : CUE_SUCCESS;
}
