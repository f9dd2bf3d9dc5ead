/* telemetry_main.c - unit tests of telemetry.c and mqtt_cmd.c (libagent.a). */
#include "config.h"

#include "runner.h"

int suite_telemetry(void);
int suite_mqtt_cmd(void);

int
main(int argc, char **argv)
{
	static const unit_suite_fn suites[] = {
		suite_telemetry, suite_mqtt_cmd, NULL,
	};

	return unit_run(argc, argv, suites);
}
