/* agent_main.c - unit tests of the agent's modules (libagent.a). */
#include "config.h"

#include "runner.h"

int suite_agent_config(void);
int suite_spool(void);
int suite_control(void);

int
main(int argc, char **argv)
{
	static const unit_suite_fn suites[] = {
		suite_agent_config, suite_spool, suite_control, NULL,
	};

	return unit_run(argc, argv, suites);
}
