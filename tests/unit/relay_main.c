/* relay_main.c - unit tests of the relay's pure modules (librelay.a). */
#include "config.h"

#include "runner.h"

int suite_acl(void);
int suite_audit(void);
int suite_penalty(void);
int suite_protodetect(void);
int suite_relay_config(void);

int
main(int argc, char **argv)
{
	static const unit_suite_fn suites[] = {
		suite_acl, suite_audit, suite_penalty, suite_protodetect,
		suite_relay_config,
		NULL,
	};

	return unit_run(argc, argv, suites);
}
