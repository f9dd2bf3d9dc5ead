/*
 * relay.c - the relay's life cycle (relay.h): start-up, the pump and
 * reaper pass, the tick (deadlines, keepalive), signals (HUP reload, TERM
 * and INT graceful stop, USR1 status) and tear-down.
 *
 * Reload: the new file is loaded and validated whole, then a new TLS
 * context is built from it; only if both succeed is anything swapped
 * (config, ACL, operators and keys, CRL, audit file, log level). Open
 * sessions and registered agents are untouched; settings that need a
 * restart (listen addresses, host keys, user) are reported, not applied.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "agent_conn.h"
#include "audit.h"
#include "bridge.h"
#include "err.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "operator.h"
#include "registry.h"
#include "sshsess.h"
#include "tls.h"
#include "util.h"

static void relay_pump(struct loop *loop, void *arg);

void
relay_kick(struct relay *r)
{
	if (r->pump_scheduled)
		return;
	if (loop_defer(r->loop, relay_pump, r) == 0)
		r->pump_scheduled = 1;
}

static void
relay_pump_timer(struct loop *loop, void *arg)
{
	relay_kick(arg);
}

unsigned int
relay_pending_from(const struct relay *r, const char *host)
{
	const struct pconn *pc;
	const struct agent *a;
	const struct opconn *op;
	unsigned int n = 0;

	TAILQ_FOREACH(pc, &r->pending, link)
		n += !pc->dead && strcmp(pc->host, host) == 0;
	TAILQ_FOREACH(a, &r->agents, link)
		n += !a->dead && a->state != AGENT_UP &&
		    strcmp(a->host, host) == 0;
	TAILQ_FOREACH(op, &r->operators, link)
		n += !op->dead && !op->authed && strcmp(op->host, host) == 0;
	return n;
}

void
relay_conn_authed(struct relay *r)
{
	if (r->npending > 0)
		r->npending--;
}

void
relay_conn_closed(struct relay *r, int was_pending)
{
	if (was_pending && r->npending > 0)
		r->npending--;
	if (r->nconns > 0)
		r->nconns--;
}

void
relay_audit(struct relay *r, struct audit_rec *rec)
{
	(void)audit_write(r->audit, rec);
}

static int
tls_ctx_from(const struct relay_config *cfg, SSL_CTX **out, char *err,
	     size_t errlen)
{
	struct tls_config tc;

	memset(&tc, 0, sizeof(tc));
	tc.ca_file = cfg->tls_ca;
	tc.cert_file = cfg->tls_cert;
	tc.key_file = cfg->tls_key;
	tc.crl_file = cfg->tls_crl != NULL && cfg->tls_crl[0] != '\0' ?
	    cfg->tls_crl : NULL;
	tc.min_version = cfg->tls_min_version;
	tc.require_peer_cert = 1;
	return tls_ctx_new(&tc, 1, out, err, errlen);
}

/* Reaps what the round marked dead: bridges first (they let go of
 * channels), then exec sessions, pending sockets, agents, operators. */
static void
relay_reap(struct relay *r)
{
	struct bridge *b, *bn;
	struct pconn *pc, *pn;
	struct agent *a, *an;
	struct opconn *op, *opn;

	for (b = TAILQ_FIRST(&r->bridges); b != NULL; b = bn) {
		bn = TAILQ_NEXT(b, link);
		if (b->state == BRIDGE_DEAD)
			bridge_free(b);
	}
	TAILQ_FOREACH(op, &r->operators, link)
		operator_reap_execs(op);
	for (pc = TAILQ_FIRST(&r->pending); pc != NULL; pc = pn) {
		pn = TAILQ_NEXT(pc, link);
		if (pc->dead)
			pconn_free(pc);
	}
	for (a = TAILQ_FIRST(&r->agents); a != NULL; a = an) {
		an = TAILQ_NEXT(a, link);
		if (a->dead)
			agent_free(a);
	}
	for (op = TAILQ_FIRST(&r->operators); op != NULL; op = opn) {
		opn = TAILQ_NEXT(op, link);
		if (op->dead)
			operator_free(op);
	}
	/* freeing a connection kills its bridges: reap those too */
	for (b = TAILQ_FIRST(&r->bridges); b != NULL; b = bn) {
		bn = TAILQ_NEXT(b, link);
		if (b->state == BRIDGE_DEAD)
			bridge_free(b);
	}
}

/*
 * After every loop round that touched a session: move data on every
 * bridge (each limited to BRIDGE_QUOTA per direction, so rounds are fair),
 * finish exec output, reap, and ask the loop for the right events.
 */
static void
relay_pump(struct loop *loop, void *arg)
{
	struct relay *r = arg;
	struct bridge *b;
	struct opconn *op;
	struct opexec *x;
	struct agent *a;
	int again = 0;

	r->pump_scheduled = 0;
	TAILQ_FOREACH(b, &r->bridges, link)
		again |= bridge_service(b);
	/*
	 * A session whose socket backs up takes no more channel data this
	 * round, so whoever comes first wins it: rotate who comes first, or
	 * one bulk channel would starve the rest on the same session.
	 */
	if ((b = TAILQ_FIRST(&r->bridges)) != NULL &&
	    TAILQ_NEXT(b, link) != NULL) {
		TAILQ_REMOVE(&r->bridges, b, link);
		TAILQ_INSERT_TAIL(&r->bridges, b, link);
	}
	TAILQ_FOREACH(op, &r->operators, link) {
		TAILQ_FOREACH(x, &op->execs, link)
			again |= operator_exec_service(x);
	}
	/* requests that arrived while the above polled a session */
	TAILQ_FOREACH(a, &r->agents, link) {
		if (a->touched)
			agent_drain(a);
	}
	TAILQ_FOREACH(op, &r->operators, link) {
		if (op->touched)
			operator_drain(op);
	}
	relay_reap(r);
	TAILQ_FOREACH(a, &r->agents, link) {
		if (a->ss.s != NULL)
			sshsess_sync(&a->ss);
	}
	TAILQ_FOREACH(op, &r->operators, link)
		sshsess_sync(&op->ss);
	if (r->stopping && TAILQ_EMPTY(&r->bridges))
		loop_stop(r->loop);
	/* more to do: come back after the loop had a look at the sockets */
	if (again)
		(void)loop_timer_add(r->loop, 0, relay_pump_timer, r, NULL);
}

static void
relay_tick(struct loop *loop, void *arg)
{
	struct relay *r = arg;
	int64_t now = loop_now(loop);
	struct pconn *pc;
	struct agent *a;
	struct opconn *op;
	struct bridge *b;

	r->tick = NULL;
	TAILQ_FOREACH(pc, &r->pending, link)
		pconn_tick(pc, now);
	TAILQ_FOREACH(a, &r->agents, link)
		agent_tick(a, now);
	TAILQ_FOREACH(op, &r->operators, link)
		operator_tick(op, now);
	TAILQ_FOREACH(b, &r->bridges, link)
		bridge_tick(b, now);
	if (r->stopping && now >= r->stop_deadline) {
		log_warn("shutdown_timeout reached: closing the remaining "
		    "channels");
		loop_stop(loop);
	}
	relay_kick(r);
	if (loop_timer_add(loop, RELAY_TICK_MS, relay_tick, r, &r->tick) != 0)
		log_err("cannot re-arm the tick timer: out of memory");
}

static void
relay_status(struct relay *r)
{
	struct agent *a;
	struct opconn *op;
	unsigned int nag = 0, nop = 0, nb = 0;
	struct bridge *b;

	TAILQ_FOREACH(a, &r->registry, reg_link)
		nag++;
	TAILQ_FOREACH(op, &r->operators, link)
		nop += op->authed;
	TAILQ_FOREACH(b, &r->bridges, link)
		nb++;
	log_info("status: %u agents, %u operators, %u channels, %u "
	    "connections (%u pending); since start: %llu accepted, %llu "
	    "refused by limits, %llu silent evicted, %llu bad protocol, "
	    "%llu agent logins, %llu "
	    "agent failures, %llu operator logins, %llu failed, %llu channels "
	    "opened, %llu denied, %llu bytes to agents, %llu from agents",
	    nag, nop, nb, r->nconns, r->npending,
	    (unsigned long long)r->st.accepted,
	    (unsigned long long)r->st.refused_limit,
	    (unsigned long long)r->st.evicted,
	    (unsigned long long)r->st.refused_proto,
	    (unsigned long long)r->st.agents_up,
	    (unsigned long long)r->st.agent_fail,
	    (unsigned long long)r->st.op_auth_ok,
	    (unsigned long long)r->st.op_auth_fail,
	    (unsigned long long)r->st.chan_open,
	    (unsigned long long)r->st.chan_deny,
	    (unsigned long long)r->st.bytes_to_agents,
	    (unsigned long long)r->st.bytes_from_agents);
	TAILQ_FOREACH(a, &r->registry, reg_link)
		log_info("status: agent %s from %s, %zu services, %u channels, "
		    "%llu bytes in, %llu out", a->id, a->src, a->nsvc,
		    a->nbridges, (unsigned long long)a->bytes_in,
		    (unsigned long long)a->bytes_out);
}

static void
relay_reload(struct relay *r)
{
	struct relay_config *ncfg = NULL, *old;
	struct cfgu_errors errs;
	struct audit *na = NULL;
	struct audit_rec rec;
	SSL_CTX *nctx = NULL;
	char err[512], changed[256];
	unsigned int i;

	log_info("reloading %s", r->cfg_path);
	cfgu_errors_init(&errs);
	if (relay_config_load(r->cfg_path, &ncfg, &errs) != 0) {
		for (i = 0; i < errs.n; i++)
			log_err("%s", errs.msg[i]);
		if (errs.dropped > 0)
			log_err("(%u more problems)", errs.dropped);
		log_err("reload failed: keeping the running configuration");
		return;
	}
	if (tls_ctx_from(ncfg, &nctx, err, sizeof(err)) != 0) {
		log_err("%s", err);
		log_err("reload failed: keeping the running configuration");
		relay_config_free(ncfg);
		return;
	}
	if (ncfg->audit_log != NULL && ncfg->audit_log[0] != '\0' &&
	    (r->audit == NULL ||
	    strcmp(audit_path(r->audit), ncfg->audit_log) != 0)) {
		if (audit_open(ncfg->audit_log, &na, err, sizeof(err)) != 0) {
			log_err("%s", err);
			log_err("reload failed: keeping the running "
			    "configuration");
			tls_ctx_free(nctx);
			relay_config_free(ncfg);
			return;
		}
	}
	if (relay_config_restart_needed(r->cfg, ncfg, changed,
	    sizeof(changed)) > 0)
		log_warn("changed %s: needs a restart, still using the old "
		    "value", changed);
	if (ncfg->audit_log == NULL || ncfg->audit_log[0] == '\0') {
		audit_close(r->audit);
		r->audit = NULL;
	} else if (na != NULL) {
		audit_close(r->audit);
		r->audit = na;
	} else if (audit_reopen(r->audit) != 0)
		log_err("audit log %s: reopen failed, still writing to the "
		    "old file", audit_path(r->audit));
	tls_ctx_free(r->tls_ctx);
	r->tls_ctx = nctx;
	old = r->cfg;
	r->cfg = ncfg;
	/* restart-only settings keep their running values */
	if (!r->debug)
		log_init(NULL, ncfg->log_syslog,
		    (enum log_level)ncfg->log_level);
	if (acl_glob_count(ncfg->acl) > 0)
		log_warn("ACL uses %u glob patterns (acl_allow_glob is on)",
		    acl_glob_count(ncfg->acl));
	relay_config_free(old);
	audit_rec_begin(&rec, "config");
	audit_rec_str(&rec, "change", "reload");
	audit_rec_str(&rec, "file", r->cfg_path);
	relay_audit(r, &rec);
	log_info("reloaded %s: %zu operators", r->cfg_path,
	    ncfg->noperators);
}

static void
relay_begin_stop(struct relay *r, int signo)
{
	struct pconn *pc;
	struct agent *a;
	struct opconn *op;
	unsigned int nb = 0;
	struct bridge *b;

	if (r->stopping) {
		log_info("second stop signal: stopping now");
		loop_stop(r->loop);
		return;
	}
	r->stopping = 1;
	r->stop_deadline = loop_now(r->loop) + r->cfg->shutdown_timeout_ms;
	listener_close_all(r);
	TAILQ_FOREACH(pc, &r->pending, link)
		pc->dead = 1;
	TAILQ_FOREACH(a, &r->agents, link) {
		if (a->state != AGENT_UP)
			agent_kill(a, "relay stopping");
	}
	TAILQ_FOREACH(op, &r->operators, link) {
		if (!op->authed)
			operator_kill(op, "relay stopping");
	}
	TAILQ_FOREACH(b, &r->bridges, link)
		nb++;
	log_info("signal %d: stopping; waiting up to %lld ms for %u open "
	    "channels", signo, (long long)r->cfg->shutdown_timeout_ms, nb);
	relay_kick(r);
}

static void
relay_signal(struct loop *loop, int signo, void *arg)
{
	struct relay *r = arg;

	switch (signo) {
	case SIGHUP:
		relay_reload(r);
		break;
	case SIGUSR1:
		relay_status(r);
		break;
	case SIGTERM:
	case SIGINT:
		relay_begin_stop(r, signo);
		break;
	default:
		break;
	}
}

int
relay_check(const struct relay_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	ssh_key key = NULL;
	size_t i;

	if (tls_ctx_from(cfg, &ctx, err, errlen) != 0)
		return RT_ERR_CONFIG;
	tls_ctx_free(ctx);
	for (i = 0; i < cfg->nhost_keys; i++) {
		if (ssh_pki_import_privkey_file(cfg->host_keys[i], NULL, NULL,
		    NULL, &key) != SSH_OK) {
			snprintf(err, errlen, "host key %s: not a readable "
			    "private key", cfg->host_keys[i]);
			return RT_ERR_CONFIG;
		}
		ssh_key_free(key);
		key = NULL;
	}
	return 0;
}

int
relay_new(struct relay_config *cfg, const char *cfg_path, struct relay **out,
	  char *err, size_t errlen)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1 };
	struct relay *r;
	size_t i;
	int rc;

	*out = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		relay_config_free(cfg);
		return RT_ERR_NOMEM;
	}
	r->cfg = cfg;
	r->cfg_path = cfg_path;
	r->t_start_wall = rt_wall_ms();
	TAILQ_INIT(&r->pending);
	TAILQ_INIT(&r->agents);
	TAILQ_INIT(&r->registry);
	TAILQ_INIT(&r->operators);
	TAILQ_INIT(&r->bridges);

	if ((rc = loop_new(&r->loop)) != 0) {
		snprintf(err, errlen, "event loop: %s", rt_strerror_errno(rc));
		goto fail;
	}
	if ((rc = tls_ctx_from(cfg, &r->tls_ctx, err, errlen)) != 0)
		goto fail;
	if ((r->sshbind = ssh_bind_new()) == NULL) {
		snprintf(err, errlen, "ssh_bind_new: out of memory");
		rc = RT_ERR_NOMEM;
		goto fail;
	}
	for (i = 0; i < cfg->nhost_keys; i++) {
		if (ssh_bind_options_set(r->sshbind, SSH_BIND_OPTIONS_HOSTKEY,
		    cfg->host_keys[i]) != SSH_OK) {
			snprintf(err, errlen, "host key %s: %s",
			    cfg->host_keys[i], ssh_get_error(r->sshbind));
			rc = RT_ERR_CONFIG;
			goto fail;
		}
	}
	if (cfg->audit_log != NULL && cfg->audit_log[0] != '\0' &&
	    (rc = audit_open(cfg->audit_log, &r->audit, err, errlen)) != 0)
		goto fail;
	for (i = 0; i < RT_ARRAY_SIZE(sigs); i++) {
		if ((rc = loop_signal_add(r->loop, sigs[i], relay_signal,
		    r)) != 0) {
			snprintf(err, errlen, "signal %d: %s", sigs[i],
			    rt_strerror_errno(rc));
			goto fail;
		}
	}
	if ((rc = listener_open_all(r, err, errlen)) != 0)
		goto fail;
	if ((rc = loop_timer_add(r->loop, RELAY_TICK_MS, relay_tick, r,
	    &r->tick)) != 0) {
		snprintf(err, errlen, "timer: out of memory");
		goto fail;
	}
	if (cfg->user != NULL && cfg->user[0] != '\0')
		log_warn("user \"%s\": dropping privileges is not implemented "
		    "yet; running as uid %u", cfg->user, (unsigned)getuid());
	if (acl_glob_count(cfg->acl) > 0)
		log_warn("ACL uses %u glob patterns (acl_allow_glob is on): "
		    "every matching agent and service is reachable",
		    acl_glob_count(cfg->acl));
	*out = r;
	return 0;
fail:
	relay_free(r);
	return rc;
}

int
relay_run(struct relay *r)
{
	int rc;

	log_info("revtun-relay %s started (%zu operators, audit %s)",
	    PACKAGE_VERSION, r->cfg->noperators,
	    r->audit != NULL ? audit_path(r->audit) : "off");
	rc = loop_run(r->loop);
	log_info("stopped");
	return rc;
}

void
relay_free(struct relay *r)
{
	struct bridge *b;
	struct pconn *pc;
	struct agent *a;
	struct opconn *op;

	if (r == NULL)
		return;
	TAILQ_FOREACH(b, &r->bridges, link)
		bridge_kill(b, "relay stopping");
	TAILQ_FOREACH(b, &r->bridges, link)
		b->state = BRIDGE_DEAD;	/* no more waiting for agents */
	TAILQ_FOREACH(pc, &r->pending, link)
		pc->dead = 1;
	TAILQ_FOREACH(a, &r->agents, link)
		agent_kill(a, "relay stopping");
	TAILQ_FOREACH(op, &r->operators, link)
		operator_kill(op, "relay stopping");
	relay_reap(r);
	listener_close_all(r);
	loop_timer_cancel(r->tick);
	if (r->sshbind != NULL)
		ssh_bind_free(r->sshbind);
	tls_ctx_free(r->tls_ctx);
	audit_close(r->audit);
	loop_free(r->loop);
	relay_config_free(r->cfg);
	free(r);
}
