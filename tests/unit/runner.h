/*
 * runner.h - the CUnit runner shared by every unit-test program.
 *
 * Each test file exposes one "suite_<module>(void)" function that adds its
 * suite and tests to the CUnit registry and returns 0 or a CUnit error.
 * A program's main() lists those functions and calls unit_run().
 */
#ifndef RT_TEST_RUNNER_H
#define RT_TEST_RUNNER_H

#include <CUnit/CUnit.h>

typedef int (*unit_suite_fn)(void);

/*
 * Registers every suite in suites (NULL-terminated), runs them with CUnit's
 * basic interface in verbose mode and prints CUnit's summary. argv[1], if
 * given, runs only the suite of that name. Returns the number of failed
 * asserts and tests, capped to 125, as the process exit status (0 = all
 * passed), or 99 (hard error) when the registry cannot be built.
 */
int unit_run(int argc, char **argv, const unit_suite_fn *suites);

/* Creates a fresh private temporary directory for a test ("/tmp/rtu.XXXX")
 * and writes its path into buf; returns 0 or -1. */
int unit_tmpdir(char *buf, size_t len);

/* Removes a directory made by unit_tmpdir() and everything in it. */
void unit_rmtree(const char *path);

/* Runs the printf-formatted shell command (fixtures: ssh-keygen and the
 * like); 0 if it exited 0, else -1. */
int unit_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
