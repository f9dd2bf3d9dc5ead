/*
 * runner.c - the CUnit runner shared by every unit-test program: registry
 * set-up, basic-mode run with CUnit's own summary, exit status = failures.
 */
#include "config.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "log.h"
#include "runner.h"

int
unit_run(int argc, char **argv, const unit_suite_fn *suites)
{
	unsigned int failed;
	const char *only = argc > 1 ? argv[1] : NULL;

	/* Keep the daemons' logging quiet unless asked for. */
	log_init("unit", 0, getenv("RT_TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERR);

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 99;
	for (size_t i = 0; suites[i] != NULL; i++) {
		if (suites[i]() != CUE_SUCCESS) {
			fprintf(stderr, "suite registration failed: %s\n",
				CU_get_error_msg());
			CU_cleanup_registry();
			return 99;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	if (only != NULL) {
		CU_pSuite s = CU_get_suite(only);
		if (s == NULL) {
			fprintf(stderr, "no suite named %s\n", only);
			CU_cleanup_registry();
			return 99;
		}
		CU_basic_run_suite(s);
	} else {
		CU_basic_run_tests();
	}
	printf("\n");
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	if (CU_get_number_of_suites_failed() > 0)
		failed += CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	log_close();
	return failed > 125 ? 125 : (int)failed;
}

int
unit_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0 ? 0 : -1;
}

int
unit_tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if ((size_t)snprintf(buf, len, "%s/rtu.XXXXXX", base) >= len)
		return -1;
	return mkdtemp(buf) != NULL ? 0 : -1;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

void
unit_rmtree(const char *path)
{
	if (path != NULL && *path != '\0')
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
