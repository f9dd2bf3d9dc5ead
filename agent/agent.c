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
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "agent.h"
#include "agent_config.h"
#include "consent.h"
#include "control.h"
#include "err.h"
#include "log.h"
#include "logring.h"
#include "loop.h"
#include "mqttlink.h"
#include "sshc.h"
#include "tls.h"
#include "uplink.h"
#include "util.h"

/* Grace after the drain deadline for the goodbye to reach the relay. */
#define AGENT_GOODBYE_MS 1000

static void reload(struct agent *a);
static void apply_consent(struct agent *a);

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

static void
cert_expiry_warning(const struct agent_config *cfg)
{
	long long na, days;
	char err[256];

	if (tls_cert_file_not_after(cfg->tls_cert, &na, err, sizeof(err)) < 0)
		return;	/* the TLS setup will say what is wrong */
	days = (na - rt_wall_ms() / 1000) / 86400;
	if (days < 0)
		log_err("certificate %s has expired", cfg->tls_cert);
	else if (days < 30)
		log_warn("certificate %s expires in %lld days",
		    cfg->tls_cert, days);
}

int
agent_run(struct agent *a)
{
	int r;

	log_info("revtun-agent %s starting: %zu relay(s), %zu service(s)",
	    PACKAGE_VERSION, a->cfg->nrelays, a->cfg->nservices);
	cert_expiry_warning(a->cfg);
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
	free(a);
}
