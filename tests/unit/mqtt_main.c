/* mqtt_main.c - unit tests of the agent's MQTT modules (libagent.a). */
#include "config.h"

#include "runner.h"

int suite_mqtt_codec(void);

int
main(int argc, char **argv)
{
	static const unit_suite_fn suites[] = {
		suite_mqtt_codec, NULL,
	};

	return unit_run(argc, argv, suites);
}
