/*
 * main.c - revtun-relay's command line: parses argv, loads the config,
 * builds the relay context and runs its loop. Nothing else lives here.
 *
 * Exit codes (sysexits): 0 success, 64 usage, 78 bad configuration,
 * 71 start-up failure (sockets, TLS, keys, pid_file held by a running
 * instance, privilege drop), 70 the loop failed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libssh/libssh.h>

#include "err.h"
#include "log.h"
#include "relay.h"
#include "relay_config.h"

#define EX_OK_ 0
#define EX_USAGE_ 64
#define EX_SOFTWARE_ 70
#define EX_OSERR_ 71
#define EX_CONFIG_ 78

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: revtun-relay [-dhtV] [-f config]\n"
	    "  -f FILE  configuration file (default %s)\n"
	    "  -t       check the configuration and exit (0 good, 78 bad)\n"
	    "  -d       debug logging to stderr\n"
	    "  -V       print the version and exit\n"
	    "  -h       this help\n", RELAY_DEFAULT_CONFIG);
}

int
main(int argc, char **argv)
{
	const char *path = RELAY_DEFAULT_CONFIG;
	struct relay_config *cfg = NULL;
	struct cfgu_errors errs;
	struct relay *r = NULL;
	char err[512];
	int ch, test = 0, debug = 0, rc;
	unsigned int i;

	while ((ch = getopt(argc, argv, "df:htV")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EX_OK_;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("revtun-relay %s\n", PACKAGE_VERSION);
			return EX_OK_;
		default:
			usage(stderr);
			return EX_USAGE_;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE_;
	}
	log_init("revtun-relay", 0, debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	cfgu_errors_init(&errs);
	if (relay_config_load(path, &cfg, &errs) != 0) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		if (errs.dropped > 0)
			fprintf(stderr, "(%u more problems)\n", errs.dropped);
		if (errs.n == 0)
			fprintf(stderr, "%s: cannot load\n", path);
		return EX_CONFIG_;
	}
	if (test) {
		rc = relay_check(cfg, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "%s: %s\n", path, err);
			relay_config_free(cfg);
			return EX_CONFIG_;
		}
		fprintf(stderr, "%s: configuration OK\n", path);
		relay_config_free(cfg);
		return EX_OK_;
	}
	if (!debug)
		log_init(NULL, cfg->log_syslog, (enum log_level)cfg->log_level);
	if (ssh_init() != SSH_OK) {
		fprintf(stderr, "revtun-relay: libssh initialisation failed\n");
		relay_config_free(cfg);
		return EX_SOFTWARE_;
	}
	if ((rc = relay_new(cfg, path, &r, err, sizeof(err))) != 0) {
		log_err("cannot start: %s", err);
		ssh_finalize();
		return rc == RT_ERR_CONFIG ? EX_CONFIG_ : EX_OSERR_;
	}
	r->debug = debug;
	rc = relay_run(r);
	relay_free(r);
	ssh_finalize();
	log_close();
	return rc == 0 ? EX_OK_ : EX_SOFTWARE_;
}
