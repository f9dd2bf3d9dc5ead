/* common_main.c - unit tests of common/ (libcommon.a). */
#include "config.h"

#include "runner.h"

int suite_err(void);
int suite_log(void);
int suite_util(void);
int suite_buf(void);
int suite_loop(void);
int suite_net(void);
int suite_tls(void);
int suite_cfgutil(void);
int suite_ctlproto(void);
int suite_privs(void);

int
main(int argc, char **argv)
{
	static const unit_suite_fn suites[] = {
		suite_err, suite_log, suite_util, suite_buf, suite_loop,
		suite_net, suite_tls, suite_cfgutil, suite_ctlproto, suite_privs,
		NULL,
	};

	return unit_run(argc, argv, suites);
}
