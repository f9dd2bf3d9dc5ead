/*
 * agent.c - revtun-agent's context: start-up, the deferred SSH pump,
 * signals (HUP reload, TERM/INT graceful stop, USR1 status, CHLD for the
 * consent command and shells) and the consent gate's effect on the
 * uplink. A remote config change (control.c) reloads through the same
 * path as HUP.
 *
 * Reload: the new file is loaded and validated completely before
 * anything changes; a bad file is logged line by line and ignored. Then
 * only what differs restarts: relay settings -> reconnect; services ->
 * only the channels and forwards of changed or removed services; consent
 * -> the gate restarts; limits and logging apply in place.
 *
 * Stop: no new channels; open channels may finish for up to
 * shutdown_timeout; then the SSH session is closed (disconnect message,
 * TLS close_notify) and the loop ends with exit code 0.
 *
 * One instance, least privilege (agent_new): the pid file is taken first
 * (a second instance stops there); started as root with `user` set, the
 * agent creates a missing control.state_dir / mqtt.spool_dir for that
 * user, drops to it for good (privs.h) before it connects anywhere, and
 * checks as that user what it will read again later: the TLS and MQTT
 * keys and certificates (read on every reconnect, so they must be the
 * user's: refusing now beats failing at the first reconnect), the
 * config (reload), its directory (remote config apply). Then each state
 * directory gets a lock file, so two agents never share a spool or the
 * control state, pid_file or not.
 */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "agent.h"
#include "agent_config.h"
#include "consent.h"
#include "control.h"
#include "err.h"
#include "log.h"
#include "logring.h"
#include "loop.h"
#include "mqttlink.h"
#include "pidfile.h"
#include "privs.h"
#include "sshc.h"
#include "tls.h"
#include "uplink.h"
#include "util.h"

/* Grace after the drain deadline for the goodbye to reach the relay. */
#define AGENT_GOODBYE_MS 1000

static void reload(struct agent *a);
static void apply_consent(struct agent *a);
static int check_readable_as_user(const struct agent_config *cfg,
    const char *user);

/*
 * The one place where connections are torn down and rebuilt: runs after
 * the dispatch round, so no callback ever sees its object freed.
 */
static void
agent_pump(struct loop *loop, void *arg)
{
	struct agent *a = arg;
	struct sshc *s;

	a->kick_pending = 0;
	control_check(a->control);	/* may restore last-good: reload */
	if (a->reload_pending && !a->stopping) {
		a->reload_pending = 0;
		reload(a);
	}
	if (a->consent_pending) {
		a->consent_pending = 0;
		apply_consent(a);
	}
	uplink_pump(a->uplink);
	mqttlink_pump(a->mqttlink);	/* mqttlink: events, on-demand */
	if (!a->stopping)
		return;
	s = uplink_session(a->uplink);
	/* Draining: wait until the open channels are done. */
	if (a->stop_phase == 0 && s != NULL && sshc_is_up(s) &&
	    sshc_channels(s) > 0)
		return;
	if (uplink_shutdown(a->uplink) &&
	    mqttlink_stopped(a->mqttlink))	/* mqttlink: offline status */
		loop_stop(a->loop);
}

void
agent_kick(struct agent *a)
{
	if (a->kick_pending)
		return;
	if (loop_defer(a->loop, agent_pump, a) == 0)
		a->kick_pending = 1;
	else
		log_err("out of memory scheduling the SSH pump");
}

int
agent_sessions_allowed(const struct agent *a)
{
	if (a->stopping)
		return 0;
	return a->cfg->consent_mode != CONSENT_SESSIONS ||
	    consent_open(a->consent);
}

void
agent_consent_changed(struct agent *a, int open)
{
	a->consent_pending = 1;
	agent_kick(a);
}

/* Makes the uplink follow the gate (connect mode) once per change. */
static void
apply_consent(struct agent *a)
{
	int open = consent_open(a->consent);

	if (a->stopping)
		return;
	if (!mqttlink_uplink_wanted(a->mqttlink))	/* mqttlink: on-demand */
		return;
	switch (a->cfg->consent_mode) {
	case CONSENT_CONNECT:
		if (open)
			uplink_start(a->uplink);
		else
			uplink_stop(a->uplink, "consent gate closed");
		break;
	case CONSENT_SESSIONS:
		if (!open)
			log_info("consent: new sessions refused; open ones "
			    "continue");
		/* FALLTHROUGH */
	default:
		uplink_start(a->uplink);
		break;
	}
}

static void
log_status(struct agent *a)
{
	char buf[800];
	struct sshc *s;
	const struct agent_stats *st = &a->stats;

	uplink_status(a->uplink, buf, sizeof(buf));
	log_info("status: up %lld s; %s", (long long)((rt_mono_ms() -
	    a->started_ms) / 1000), buf);
	log_info("status: consent %s; sessions %s; %llu connects, %llu "
	    "failed attempts, %llu channels, %llu refused, %llu target "
	    "failures, %llu bytes to targets, %llu from targets",
	    a->cfg->consent_mode == CONSENT_OFF ? "off" :
	    consent_open(a->consent) ? "open" : "closed",
	    agent_sessions_allowed(a) ? "allowed" : "refused",
	    (unsigned long long)st->connects,
	    (unsigned long long)st->connect_failures,
	    (unsigned long long)st->channels_total,
	    (unsigned long long)st->channels_refused,
	    (unsigned long long)st->target_failures,
	    (unsigned long long)st->bytes_to_target,
	    (unsigned long long)st->bytes_from_target);
	if ((s = uplink_session(a->uplink)) != NULL)
		sshc_log_channels(s);
	mqttlink_status(a->mqttlink, buf, sizeof(buf));	/* mqttlink */
	log_info("status: %s", buf);
}

static void
reload(struct agent *a)
{
	struct agent_config *ncfg = NULL, *old;
	struct cfgu_errors errs;
	unsigned int diff, i;
	struct sshc *s;
	int r;

	log_info("reload: reading %s", a->cfg_path);
	cfgu_errors_init(&errs);
	r = agent_config_load(a->cfg_path, &ncfg, &errs);
	if (r < 0) {
		for (i = 0; i < errs.n; i++)
			log_err("reload: %s", errs.msg[i]);
		if (errs.dropped > 0)
			log_err("reload: %u more problems not shown",
			    errs.dropped);
		log_err("reload: %s: %s; keeping the running configuration",
		    a->cfg_path, rt_strerror(r));
		return;
	}
	if (strcmp(a->cfg->user, ncfg->user) != 0 ||
	    strcmp(a->cfg->pid_file, ncfg->pid_file) != 0)
		log_warn("reload: user or pid_file changed: needs a restart; "
		    "still running with the values from the start");
	if (a->dropped && check_readable_as_user(ncfg, a->cfg->user) != 0) {
		log_err("reload: keeping the running configuration");
		agent_config_free(ncfg);
		return;
	}
	diff = agent_config_diff(a->cfg, ncfg);
	old = a->cfg;
	a->cfg = ncfg;
	control_reloaded(a->control);
	if (diff == 0)
		log_info("reload: no changes");
	if (diff & AGENT_DIFF_LOG) {
		log_init(NULL, ncfg->log_syslog, a->debug ? LOG_LVL_DEBUG :
		    (enum log_level)ncfg->log_level);
		log_info("reload: logging settings applied");
	}
	if ((diff & AGENT_DIFF_CONTROL) &&
	    logring_resize(a->logring, ncfg->control_log_lines) < 0)
		log_err("reload: out of memory resizing the log ring");
	if (diff & AGENT_DIFF_CONTROL)
		log_info("reload: control / shell settings applied (new "
		    "sessions)");
	if (diff & AGENT_DIFF_LIMITS)
		log_info("reload: limits applied (channel buffers: new "
		    "channels only)");
	if (diff & AGENT_DIFF_UPLINK) {
		log_info("reload: relay settings changed");
		uplink_restart(a->uplink, "relay settings changed by reload");
	} else if ((diff & AGENT_DIFF_SERVICES) &&
	    (s = uplink_session(a->uplink)) != NULL && sshc_is_up(s)) {
		log_info("reload: services changed");
		sshc_services_changed(s, old);
	}
	if (diff & AGENT_DIFF_CONSENT) {
		log_info("reload: consent gate settings changed");
		consent_start(a->consent);	/* -> apply_consent() */
		a->consent_pending = 1;
	}
	mqttlink_reload(a->mqttlink, diff);	/* mqttlink: after the swap */
	agent_config_free(old);
	agent_kick(a);
}

static void
stop_deadline(struct loop *loop, void *arg)
{
	struct agent *a = arg;

	a->stop_timer = NULL;
	if (a->stop_phase == 0) {
		log_warn("stop: shutdown_timeout %lld ms reached; closing the "
		    "remaining channels",
		    (long long)a->cfg->shutdown_timeout_ms);
		a->stop_phase = 1;
		if (uplink_shutdown(a->uplink)) {
			loop_stop(a->loop);
			return;
		}
		loop_timer_add(a->loop, AGENT_GOODBYE_MS, stop_deadline, a,
		    &a->stop_timer);
		return;
	}
	log_warn("stop: relay did not take the goodbye in time");
	uplink_stop(a->uplink, "agent stopping");
	loop_stop(a->loop);
}

static void
on_signal(struct loop *loop, int signo, void *arg)
{
	struct agent *a = arg;

	switch (signo) {
	case SIGHUP:
		a->reload_pending = 1;
		agent_kick(a);
		break;
	case SIGTERM:
	case SIGINT:
		if (a->stopping) {
			log_info("stop: already stopping");
			break;
		}
		log_info("stop: %s received; draining for at most %lld ms",
		    signo == SIGTERM ? "SIGTERM" : "SIGINT",
		    (long long)a->cfg->shutdown_timeout_ms);
		a->stopping = 1;
		mqttlink_stop(a->mqttlink);	/* mqttlink: offline status */
		if (loop_timer_add(loop, a->cfg->shutdown_timeout_ms,
		    stop_deadline, a, &a->stop_timer) < 0)
			loop_stop(loop);
		agent_kick(a);
		break;
	case SIGUSR1:
		log_status(a);
		break;
	case SIGCHLD:
		consent_sigchld(a->consent);
		control_sigchld(a->control);
		break;
	}
}

/* The lock file in each state directory (see the top). */
#define AGENT_DIR_LOCK "agent.lock"

static void
pidfile_note(const struct pidfile *pf)
{
	long old;

	if (pidfile_was_stale(pf, &old))
		log_info("%s: stale (pid %ld no longer holds it): taken over",
		    pidfile_path(pf), old);
}

/* Files the agent reads again after start, as the user it now is. */
static int
check_readable_as_user(const struct agent_config *cfg, const char *user)
{
	const struct {
		const char *opt, *path;
		int on;
	} f[] = {
		{ "tls.ca", cfg->tls_ca, 1 },
		{ "tls.cert", cfg->tls_cert, 1 },
		{ "tls.key", cfg->tls_key, 1 },
		{ "proxy.auth_file", cfg->proxy_auth_file, 1 },
		{ "mqtt.tls.ca", cfg->mqtt.tls_ca, cfg->mqtt.enable },
		{ "mqtt.tls.cert", cfg->mqtt.tls_cert, cfg->mqtt.enable },
		{ "mqtt.tls.key", cfg->mqtt.tls_key, cfg->mqtt.enable },
		{ "mqtt.password_file", cfg->mqtt.password_file,
		    cfg->mqtt.enable },
		{ "mqtt.cmd_key_file", cfg->mqtt.cmd_key_file,
		    cfg->mqtt.enable },
		{ "telemetry.hmac_key_file", cfg->telemetry.hmac_key_file,
		    cfg->mqtt.enable },
	};
	size_t i;
	int bad = 0;

	for (i = 0; i < RT_ARRAY_SIZE(f); i++) {
		if (!f[i].on || f[i].path[0] == '\0' ||
		    access(f[i].path, R_OK) == 0)
			continue;
		log_err("%s %s: not readable by user %s (%s); the agent "
		    "reads it again on every reconnect: give it to %s "
		    "(chown %s; keys mode 0600)", f[i].opt, f[i].path, user,
		    strerror(errno), user, user);
		bad = 1;
	}
	return bad ? RT_ERR_PERM : 0;
}

/* Warnings only: what a reload or a remote config apply will need. */
static void
check_config_access(const struct agent *a, const char *user)
{
	char dir[PATH_MAX];

	if (access(a->cfg_path, R_OK) != 0)
		log_warn("config %s: not readable by user %s (%s): reloads "
		    "(HUP) will fail", a->cfg_path, user, strerror(errno));
	rt_strlcpy(dir, a->cfg_path, sizeof(dir));
	if (access(dirname(dir), W_OK | X_OK) != 0)
		log_info("config directory %s: not writable by user %s: "
		    "remote `config set/apply` will be refused when it "
		    "writes the file (give the directory to %s to allow it)",
		    dir, user, user);
}

/* Becomes cfg->user (see the top). Errors are logged. */
static int
agent_drop(struct agent *a)
{
	const struct agent_config *cfg = a->cfg;
	const char *dirs[2] = { cfg->control_state_dir,
	    cfg->mqtt.enable ? cfg->mqtt.spool_dir : "" };
	struct privs_user pu;
	char err[512];
	size_t i;
	int r;

	if ((r = privs_lookup(cfg->user, &pu, err, sizeof(err))) != 0) {
		log_err("%s", err);
		return r;
	}
	for (i = 0; geteuid() == 0 && i < RT_ARRAY_SIZE(dirs); i++) {
		if (dirs[i][0] == '\0')
			continue;
		if ((r = privs_prepare_dir(dirs[i], &pu, err,
		    sizeof(err))) < 0) {
			log_err("%s", err);
			return r;
		}
		if (r == 1)
			log_info("%s: created for user %s", dirs[i], pu.name);
	}
	if ((r = privs_drop(&pu, err, sizeof(err))) != 0) {
		log_err("dropping privileges to user %s: %s", pu.name, err);
		return r;
	}
	a->dropped = 1;
	if ((r = check_readable_as_user(cfg, pu.name)) != 0)
		return r;
	check_config_access(a, pu.name);
	log_info("running as user %s (uid %u, gid %u), no capabilities; "
	    "the shell service, if on, runs as %s too", pu.name,
	    (unsigned)pu.uid, (unsigned)pu.gid, pu.name);
	return 0;
}

/* 1 if the built-in control service, the writer of state_dir, is on. */
static int
has_control(const struct agent_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nservices; i++)
		if (cfg->services[i].builtin &&
		    strcmp(cfg->services[i].name, "control") == 0)
			return 1;
	return 0;
}

/*
 * One lock file per state directory (control.state_dir if it exists and
 * the control service is on, mqtt.spool_dir if the spool is on), the same
 * directory only once.
 */
static int
lock_dirs(struct agent *a)
{
	const struct agent_config *cfg = a->cfg;
	const char *opts[2] = { "control.state_dir", "mqtt.spool_dir" };
	const char *dirs[2] = {
		has_control(cfg) ? cfg->control_state_dir : "",
		cfg->mqtt.enable ? cfg->mqtt.spool_dir : "" };
	struct stat st[2];
	char path[PATH_MAX], err[PATH_MAX + 200];
	size_t i;
	int r;

	for (i = 0; i < RT_ARRAY_SIZE(dirs); i++) {
		if (dirs[i][0] == '\0')
			continue;
		/* the spool makes its directory; the state dir is made on
		 * first use, and locked from the start after that */
		if (i == 1 && mkdir(dirs[i], 0700) != 0 && errno != EEXIST) {
			log_err("%s %s: cannot create: %s", opts[i], dirs[i],
			    strerror(errno));
			return RT_ERR_SYS;
		}
		if (stat(dirs[i], &st[i]) != 0) {
			log_debug("%s %s: %s; not locked", opts[i], dirs[i],
			    strerror(errno));
			continue;
		}
		if (i == 1 && a->dirlock[0] != NULL &&
		    st[0].st_dev == st[1].st_dev &&
		    st[0].st_ino == st[1].st_ino)
			continue;	/* same directory: one lock */
		snprintf(path, sizeof(path), "%s/%s", dirs[i], AGENT_DIR_LOCK);
		if ((r = pidfile_open(path, opts[i], &a->dirlock[i], err,
		    sizeof(err))) != 0) {
			if (r == RT_ERR_EXISTS)
				log_err("%s: two agents must not share a %s",
				    err, opts[i]);
			else
				log_err("%s%s%s", err, a->dropped ? "; the "
				    "directory must be writable by user " :
				    "", a->dropped ? cfg->user : "");
			return r;
		}
		pidfile_note(a->dirlock[i]);
	}
	return 0;
}

int
agent_new(const char *cfg_path, struct agent_config *cfg, int debug,
	  struct agent **out)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1,
	    SIGCHLD };
	struct agent *a;
	size_t i;
	int r;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		agent_config_free(cfg);
		return RT_ERR_NOMEM;
	}
	a->cfg = cfg;
	a->debug = debug;
	a->started_ms = rt_mono_ms();
	if ((a->cfg_path = strdup(cfg_path)) == NULL) {
		r = RT_ERR_NOMEM;
		goto fail;
	}
	if ((r = loop_new(&a->loop)) < 0) {
		log_err("cannot create the event loop: %s",
		    rt_strerror_errno(r));
		goto fail;
	}
	for (i = 0; i < RT_ARRAY_SIZE(sigs); i++)
		if ((r = loop_signal_add(a->loop, sigs[i], on_signal, a)) < 0) {
			log_err("cannot handle signal %d: %s", sigs[i],
			    rt_strerror_errno(r));
			goto fail;
		}
	if (cfg->pid_file[0] != '\0') {
		char err[PATH_MAX + 200];

		if ((r = pidfile_open(cfg->pid_file, "pid_file", &a->pidfile,
		    err, sizeof(err))) != 0) {
			log_err("%s", err);
			goto fail;
		}
		pidfile_note(a->pidfile);
	}
	if ((cfg->user[0] != '\0' && (r = agent_drop(a)) != 0) ||
	    (r = lock_dirs(a)) != 0)
		goto fail;
	if ((r = uplink_new(a, &a->uplink)) < 0 ||
	    (r = consent_new(a, &a->consent)) < 0 ||
	    (r = control_new(a, &a->control)) < 0 ||
	    (r = logring_new(cfg->control_log_lines, &a->logring)) < 0 ||
	    (r = mqttlink_new(a, &a->mqttlink)) < 0) {
		log_err("out of memory");
		goto fail;
	}
	log_set_hook(logring_hook, a->logring);
	*out = a;
	return 0;
 fail:
	agent_free(a);
	return r;
}

int
agent_run(struct agent *a)
{
	int r;

	log_info("revtun-agent %s starting: %zu relay(s), %zu service(s)",
	    PACKAGE_VERSION, a->cfg->nrelays, a->cfg->nservices);
	tls_cert_expiry_log(a->cfg->tls_cert, "the relay will refuse this "
	    "agent");
	if (a->cfg->mqtt.enable && a->cfg->mqtt.tls_cert[0] != '\0' &&
	    strcmp(a->cfg->mqtt.tls_cert, a->cfg->tls_cert) != 0)
		tls_cert_expiry_log(a->cfg->mqtt.tls_cert, "the broker will "
		    "refuse this agent");
	control_start(a->control);
	consent_start(a->consent);
	mqttlink_start(a->mqttlink);	/* mqttlink: telemetry on */
	if (a->cfg->consent_mode != CONSENT_CONNECT &&
	    mqttlink_uplink_wanted(a->mqttlink))	/* mqttlink: on-demand */
		uplink_start(a->uplink);
	if ((r = loop_run(a->loop)) < 0) {
		log_err("event loop failed: %s", rt_strerror_errno(r));
		return EX_OSERR;
	}
	log_info("revtun-agent stopped");
	return a->exit_code;
}

void
agent_free(struct agent *a)
{
	if (a == NULL)
		return;
	consent_free(a->consent);
	mqttlink_free(a->mqttlink);	/* mqttlink: before the uplink */
	uplink_free(a->uplink);		/* its session forgets our channels */
	control_free(a->control);
	if (a->logring != NULL)
		log_set_hook(NULL, NULL);
	logring_free(a->logring);
	loop_timer_cancel(a->stop_timer);
	loop_free(a->loop);
	agent_config_free(a->cfg);
	free(a->cfg_path);
	pidfile_close(a->dirlock[0], 1);
	pidfile_close(a->dirlock[1], 1);
	pidfile_close(a->pidfile, 1);
	free(a);
}
