/*
 * consent.c - the local consent gate (consent.h).
 *
 * Owns the poll timer, the check command's child process (at most one)
 * and its kill timer. State: open or closed; "known" becomes 1 after the
 * first completed check.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "agent_config.h"
#include "consent.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "util.h"

struct consent {
	struct agent *a;
	int open;
	int known;			/* a check has completed */
	struct loop_timer *poll;
	struct loop_timer *kill_timer;
	pid_t child;			/* running check command, or 0 */
	int killed;			/* child got SIGKILL (timeout) */
	struct log_rl rl;
};

static void consent_tick(struct loop *loop, void *arg);

int
consent_new(struct agent *a, struct consent **out)
{
	struct consent *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RT_ERR_NOMEM;
	c->a = a;
	*out = c;
	return 0;
}

static void
kill_child(struct consent *c)
{
	int st;

	loop_timer_cancel(c->kill_timer);
	c->kill_timer = NULL;
	if (c->child > 0) {
		kill(c->child, SIGKILL);
		/* Bounded: SIGKILL cannot be ignored. */
		while (waitpid(c->child, &st, 0) < 0 && errno == EINTR)
			;
		c->child = 0;
	}
}

void
consent_free(struct consent *c)
{
	if (c == NULL)
		return;
	loop_timer_cancel(c->poll);
	kill_child(c);
	free(c);
}

static void
set_state(struct consent *c, int open, const char *why)
{
	int changed = !c->known || c->open != open;

	c->known = 1;
	c->open = open;
	if (!changed)
		return;
	log_info("consent: gate %s (%s)", open ? "open" : "closed", why);
	agent_consent_changed(c->a, open);
}

static void
schedule(struct consent *c)
{
	loop_timer_cancel(c->poll);
	c->poll = NULL;
	if (loop_timer_add(c->a->loop, c->a->cfg->consent_interval_ms,
	    consent_tick, c, &c->poll) < 0)
		log_err("consent: out of memory; gate left %s",
		    c->open ? "open" : "closed");
}

static void
cmd_timeout(struct loop *loop, void *arg)
{
	struct consent *c = arg;

	c->kill_timer = NULL;
	if (c->child > 0) {
		log_warn_rl(&c->rl, "consent: command still running after "
		    "its timeout; killed");
		kill(c->child, SIGKILL);
		c->killed = 1;	/* reaped by consent_sigchld */
	}
}

static void
run_command(struct consent *c)
{
	const struct agent_config *cfg = c->a->cfg;
	sigset_t none;
	pid_t pid;
	int fd;

	if (c->child > 0)
		return;		/* previous check still running */
	pid = fork();
	if (pid < 0) {
		log_warn_rl(&c->rl, "consent: cannot run command: fork: %s",
		    strerror(errno));
		set_state(c, 0, "command could not be started");
		return;
	}
	if (pid == 0) {
		/* The loop blocks signals it handles; the command must not
		 * inherit that, nor SIGPIPE ignored. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl("/bin/sh", "sh", "-c", cfg->consent_command,
		    (char *)NULL);
		_exit(127);
	}
	c->child = pid;
	c->killed = 0;
	loop_timer_add(c->a->loop, RT_MIN(CONSENT_CMD_TIMEOUT_MS,
	    RT_MAX(cfg->consent_interval_ms, 100)), cmd_timeout, c,
	    &c->kill_timer);
}

static void
check_now(struct consent *c)
{
	const struct agent_config *cfg = c->a->cfg;
	struct stat st;

	if (cfg->consent_mode == CONSENT_OFF) {
		set_state(c, 1, "no consent gate configured");
		return;
	}
	if (cfg->consent_file != NULL && cfg->consent_file[0] != '\0') {
		if (stat(cfg->consent_file, &st) == 0)
			set_state(c, 1, "file exists");
		else
			set_state(c, 0, errno == ENOENT ? "file absent" :
			    strerror(errno));
		return;
	}
	run_command(c);
}

static void
consent_tick(struct loop *loop, void *arg)
{
	struct consent *c = arg;

	c->poll = NULL;
	check_now(c);
	if (c->a->cfg->consent_mode != CONSENT_OFF)
		schedule(c);
}

void
consent_start(struct consent *c)
{
	loop_timer_cancel(c->poll);
	c->poll = NULL;
	kill_child(c);
	c->known = 0;
	check_now(c);
	if (c->a->cfg->consent_mode != CONSENT_OFF)
		schedule(c);
}

int
consent_open(const struct consent *c)
{
	if (c->a->cfg->consent_mode == CONSENT_OFF)
		return 1;
	return c->known && c->open;
}

void
consent_sigchld(struct consent *c)
{
	char why[64];
	pid_t p;
	int st;

	if (c->child <= 0)
		return;
	p = waitpid(c->child, &st, WNOHANG);
	if (p != c->child)
		return;
	c->child = 0;
	loop_timer_cancel(c->kill_timer);
	c->kill_timer = NULL;
	if (c->killed) {
		set_state(c, 0, "command timed out");
		return;
	}
	if (WIFEXITED(st)) {
		snprintf(why, sizeof(why), "command exited %d",
		    WEXITSTATUS(st));
		set_state(c, WEXITSTATUS(st) == 0, why);
	} else {
		snprintf(why, sizeof(why), "command killed by signal %d",
		    WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		set_state(c, 0, why);
	}
}
