/*
 * main.c - revtun-agent's command line: parses argv, loads the config,
 * builds the agent context and runs its loop. Nothing else lives here.
 *
 *   revtun-agent [-d] [-f FILE]     run in the foreground
 *   revtun-agent -t [-f FILE]       check the config: exit 0 good, 78 bad
 *   revtun-agent -V | -h
 *
 * Exit codes (sysexits): 0 stopped by TERM/INT, 64 usage, 78 config,
 * 71 system failure at start-up (including pid_file or a state directory
 * held by a running agent, and a failed privilege drop).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <unistd.h>

#include <libssh2.h>
#include <openssl/opensslv.h>

#include "agent.h"
#include "agent_config.h"
#include "err.h"
#include "log.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: revtun-agent [-dtVh] [-f config]\n"
	    "  -f FILE  configuration file (default %s)\n"
	    "  -t       check the configuration and exit (0 good, 78 bad)\n"
	    "  -d       debug logging\n"
	    "  -V       print the version and exit\n"
	    "  -h       this help\n", AGENT_DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	const char *path = AGENT_DEFAULT_CONFIG;
	struct agent_config *cfg = NULL;
	struct cfgu_errors errs;
	struct agent *a = NULL;
	int ch, test = 0, debug = 0, r;
	unsigned int i;

	while ((ch = getopt(argc, argv, "f:tdVh")) != -1) {
		switch (ch) {
		case 'f':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'V':
			printf("revtun-agent %s (libssh2 %s, %s)\n",
			    PACKAGE_VERSION, LIBSSH2_VERSION,
			    OPENSSL_VERSION_TEXT);
			return EX_OK;
		case 'h':
			usage(stdout);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}

	log_init("revtun-agent", 0, debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	cfgu_errors_init(&errs);
	r = agent_config_load(path, &cfg, &errs);
	if (r < 0) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		if (errs.dropped > 0)
			fprintf(stderr, "(%u more problems not shown)\n",
			    errs.dropped);
		/* the messages above say what and where; a generic code
		 * ("invalid argument" for a FIFO) only when there are none */
		if (errs.n == 0)
			fprintf(stderr, "revtun-agent: %s: %s\n", path,
			    rt_strerror(r));
		return EX_CONFIG;
	}
	if (test) {
		printf("%s: configuration OK (%zu relay(s), %zu service(s))\n",
		    path, cfg->nrelays, cfg->nservices);
		agent_config_free(cfg);
		return EX_OK;
	}
	log_init(NULL, cfg->log_syslog, debug ? LOG_LVL_DEBUG :
	    (enum log_level)cfg->log_level);

	if (libssh2_init(0) != 0) {
		log_err("libssh2_init failed");
		agent_config_free(cfg);
		return EX_OSERR;
	}
	if ((r = agent_new(path, cfg, debug, &a)) < 0) {
		libssh2_exit();
		return EX_OSERR;
	}
	r = agent_run(a);
	agent_free(a);
	libssh2_exit();
	log_close();
	return r;
}
