/*
 * relay.c - the relay's life cycle (relay.h): start-up, the pump and
 * reaper pass, the tick (deadlines, keepalive), signals (HUP reload, TERM
 * and INT graceful stop, USR1 status) and tear-down.
 *
 * Reload: the new file is loaded and validated whole, then a new TLS
 * context is built from it; only if both succeed is anything swapped
 * (config, ACL, operators and keys, CRL, audit file, log level). Open
 * sessions and registered agents are untouched; settings that need a
 * restart (listen addresses, host keys, user, pid_file) are reported, not
 * applied.
 *
 * Least privilege: started as root with `user` set, the relay takes its
 * pid file, loads its TLS context and host keys, opens the audit log and
 * binds its listeners, then drops to that user for good (privs.h) before
 * it accepts anything. After the drop a reload reads the config, operator
 * keys, CA and CRL as that user. A TLS key only root can read cannot be
 * read again: the reload then keeps the certificate and key loaded at
 * start, still takes the new CA, CRL and min_version, and says that a new
 * key needs a restart (or a key owned by the user). Host keys need a
 * restart anyway; root-only ones stay as loaded. The audit log's
 * directory must belong to the user (reopen after rotation creates the
 * file as the user); the relay refuses to start if it does not.
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
#include <unistd.h>

#include <openssl/err.h>

#include "acl.h"
#include "agent_conn.h"
#include "audit.h"
#include "bridge.h"
#include "err.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "operator.h"
#include "penalty.h"
#include "pidfile.h"
#include "privs.h"
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
	if (r->penalties != NULL) {
		pen_expire(r->penalties, loop_now(r->loop));
		log_info("status: penalties: %zu sources held, %zu refused now; "
		    "since start: %llu connections refused, %llu failures "
		    "not recorded (table full)", pen_count(r->penalties),
		    pen_enforced(r->penalties, loop_now(r->loop)),
		    (unsigned long long)r->st.refused_penalty,
		    (unsigned long long)r->st.penalty_full);
	}
	TAILQ_FOREACH(a, &r->registry, reg_link)
		log_info("status: agent %s from %s, %zu services, %u channels, "
		    "%llu bytes in, %llu out", a->id, a->src, a->nsvc,
		    a->nbridges, (unsigned long long)a->bytes_in,
		    (unsigned long long)a->bytes_out);
}

/*
 * 1 if a reload must keep the running certificate and key: we dropped
 * root and the key is one we cannot read (left to root on purpose).
 */
static int
key_unreadable(const struct relay *r, const struct relay_config *ncfg)
{
	return r->dropped && access(ncfg->tls_key, R_OK) != 0 &&
	    errno == EACCES;
}

/* CA, CRL and min_version of ncfg, checked and loaded into a client
 * context whose store keep_identity() moves into the running one. */
static int
trust_ctx_from(const struct relay_config *ncfg, SSL_CTX **out, char *err,
	       size_t errlen)
{
	struct tls_config tc;

	memset(&tc, 0, sizeof(tc));
	tc.ca_file = ncfg->tls_ca;
	tc.crl_file = ncfg->tls_crl[0] != '\0' ? ncfg->tls_crl : NULL;
	tc.min_version = ncfg->tls_min_version;
	return tls_ctx_new(&tc, 0, out, err, errlen);
}

/*
 * The running context keeps its certificate and key (root's, read at
 * start) and takes the new trust store (CA + CRL, with the CRL flags set
 * by tls_ctx_new), the CA names sent to agents and the minimum version.
 * New handshakes use them; established sessions are not touched.
 */
static void
keep_identity(struct relay *r, const struct relay_config *ncfg,
	      SSL_CTX *trust)
{
	X509_STORE *store = SSL_CTX_get_cert_store(trust);
	STACK_OF(X509_NAME) *names;

	if (X509_STORE_up_ref(store) == 1)
		SSL_CTX_set_cert_store(r->tls_ctx, store);
	if ((names = SSL_load_client_CA_file(ncfg->tls_ca)) != NULL)
		SSL_CTX_set_client_CA_list(r->tls_ctx, names);
	(void)SSL_CTX_set_min_proto_version(r->tls_ctx,
	    RT_MAX(ncfg->tls_min_version, TLS1_2_VERSION));
	ERR_clear_error();
	log_warn("tls.key %s is not readable by user %s: keeping the "
	    "certificate and key loaded at start (CA, CRL and min_version "
	    "reloaded); a new certificate or key needs a restart, or a key "
	    "owned by %s (mode 0600)", ncfg->tls_key, r->run_user.name,
	    r->run_user.name);
}

static void
relay_reload(struct relay *r)
{
	struct relay_config *ncfg = NULL, *old;
	struct cfgu_errors errs;
	struct audit *na = NULL;
	struct audit_rec rec;
	SSL_CTX *nctx = NULL, *trust = NULL;
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
	if (key_unreadable(r, ncfg)) {
		/* after the drop, with a key left to root: see the top */
		if (trust_ctx_from(ncfg, &trust, err, sizeof(err)) != 0) {
			log_err("%s", err);
			log_err("reload failed: keeping the running "
			    "configuration");
			relay_config_free(ncfg);
			return;
		}
	} else if (tls_ctx_from(ncfg, &nctx, err, sizeof(err)) != 0) {
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
			tls_ctx_free(trust);
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
		    "old file%s%s", audit_path(r->audit),
		    r->dropped ? "; its directory and file must belong to "
		    "user " : "", r->dropped ? r->run_user.name : "");
	if (nctx != NULL) {
		tls_ctx_free(r->tls_ctx);
		r->tls_ctx = nctx;
	} else {
		keep_identity(r, ncfg, trust);
		tls_ctx_free(trust);
	}
	if (ncfg->host_keys_unreadable > 0)
		log_info("host keys: %u not readable by user %s; the ones "
		    "loaded at start stay in use (host keys change only with "
		    "a restart)", ncfg->host_keys_unreadable,
		    r->run_user.name);
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

static void
pidfile_note(const struct pidfile *pf)
{
	long old;

	if (pidfile_was_stale(pf, &old))
		log_info("pid_file %s: stale (pid %ld no longer holds it): "
		    "taken over", pidfile_path(pf), old);
}

/* access() as the user we now are; complains about what a reload or a
 * log rotation would need. Returns 0, or -1 after filling err (fatal). */
static int
after_drop_checks(struct relay *r, char *err, size_t errlen)
{
	const struct relay_config *cfg = r->cfg;
	const char *u = r->run_user.name;
	char dir[PATH_MAX];
	size_t i;

	if (r->audit != NULL && strcmp(cfg->audit_log, "-") != 0) {
		rt_strlcpy(dir, cfg->audit_log, sizeof(dir));
		if (access(dirname(dir), W_OK | X_OK) != 0) {
			snprintf(err, errlen, "audit_log %s: directory %s is "
			    "not writable by user %s (%s), so the log could "
			    "not be reopened after rotation: give the "
			    "directory to %s (chown %s %s)", cfg->audit_log,
			    dir, u, strerror(errno), u, u, dir);
			return -1;
		}
	}
	if (access(r->cfg_path, R_OK) != 0)
		log_warn("config %s is not readable by user %s (%s): reloads "
		    "(HUP) will fail", r->cfg_path, u, strerror(errno));
	if (access(cfg->tls_key, R_OK) != 0)
		log_info("tls.key %s is readable only by root: loaded now and "
		    "kept; a new key needs a restart (or a key owned by %s, "
		    "mode 0600)", cfg->tls_key, u);
	for (i = 0; i < cfg->nhost_keys; i++) {
		if (access(cfg->host_keys[i], R_OK) != 0)
			log_info("host key %s is readable only by root: loaded "
			    "now and kept until a restart", cfg->host_keys[i]);
	}
	if (access(cfg->tls_ca, R_OK) != 0 || access(cfg->tls_cert,
	    R_OK) != 0 || (cfg->tls_crl[0] != '\0' &&
	    access(cfg->tls_crl, R_OK) != 0))
		log_warn("tls.ca, tls.cert or tls.crl is not readable by user "
		    "%s: reloads (HUP) will fail until it is", u);
	return 0;
}

/*
 * Drops root once everything that needs it is done (see the top): hands
 * a root-owned audit file to the user (it reopens it on HUP), drops,
 * checks. Every failure is fatal: RT_ERR_PERM / RT_ERR_SYS with err.
 */
static int
relay_drop(struct relay *r, char *err, size_t errlen)
{
	const struct relay_config *cfg = r->cfg;
	char why[256];
	int rc;

	if ((rc = privs_lookup(cfg->user, &r->run_user, why,
	    sizeof(why))) != 0) {
		snprintf(err, errlen, "%s", why);
		return RT_ERR_CONFIG;
	}
	/* by the open fd: the name is in a directory the user owns, where
	 * it may be a symlink or hard link to a root file by now */
	if (geteuid() == 0 && (rc = audit_give(r->audit, r->run_user.uid,
	    r->run_user.gid, why, sizeof(why))) != 0) {
		snprintf(err, errlen, "%s (giving it to user %s)", why,
		    cfg->user);
		return rc;
	}
	if ((rc = privs_drop(&r->run_user, why, sizeof(why))) != 0) {
		snprintf(err, errlen, "dropping privileges to user %s: %s",
		    cfg->user, why);
		return rc;
	}
	r->dropped = 1;
	if (after_drop_checks(r, err, errlen) != 0)
		return RT_ERR_PERM;
	log_info("running as user %s (uid %u, gid %u), no capabilities",
	    r->run_user.name, (unsigned)r->run_user.uid,
	    (unsigned)r->run_user.gid);
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

	/* First: a second instance stops here, before it binds anything. */
	if (cfg->pid_file[0] != '\0') {
		if ((rc = pidfile_open(cfg->pid_file, "pid_file", &r->pidfile,
		    err, errlen)) != 0)
			goto fail;
		pidfile_note(r->pidfile);
	}
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
	if (cfg->user[0] != '\0' && (rc = relay_drop(r, err, errlen)) != 0)
		goto fail;
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
	tls_cert_expiry_log(r->cfg->tls_cert, "agents will refuse this "
	    "relay");
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
	pen_table_free(r->penalties);
	pidfile_close(r->pidfile, 1);
	free(r);
}
