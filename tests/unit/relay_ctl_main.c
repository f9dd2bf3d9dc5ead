/* relay_ctl_main.c - unit tests of relay/ctlexec.c's pure parts. */
#include "config.h"

#include "runner.h"

int suite_ctlexec(void);

int
main(int argc, char **argv)
{
	static const unit_suite_fn suites[] = { suite_ctlexec, NULL };

	return unit_run(argc, argv, suites);
}
