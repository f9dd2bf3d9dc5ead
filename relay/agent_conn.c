/*
 * agent_conn.c - one agent connection: TLS termination, the TLS <-> SSH
 * pump, the agent's SSH session and its registrations (agent_conn.h).
 *
 * Data flow (each buffer bounded by AGENT_PUMP_BUF):
 *
 *   net_fd --TLS--> to_ssh --> pump_fd ==socketpair== ss.fd (libssh)
 *   net_fd <--TLS-- to_tls <-- pump_fd ==socketpair== ss.fd (libssh)
 *
 * A side is read only when the buffer it fills has room, so a slow agent
 * link backs up into the socketpair and from there into libssh, whose
 * sessions then stop taking channel data (bridge.c checks sshsess_busy).
 */
#include "config.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit.h"
#include "agent_conn.h"
#include "bridge.h"
#include "buf.h"
#include "ctlexec.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "sshsess.h"
#include "tls.h"
#include "util.h"

static void agent_net_io(struct loop *loop, int fd, unsigned int ev,
			 void *arg);
static void agent_pump_io(struct loop *loop, int fd, unsigned int ev,
			  void *arg);
static void agent_ssh_io(struct loop *loop, int fd, unsigned int ev,
			 void *arg);

static const char *
agent_label(const struct agent *a)
{
	return a->id[0] != '\0' ? a->id : "(unidentified)";
}

void
agent_kill(struct agent *a, const char *fmt, ...)
{
	va_list ap;

	if (a->dead)
		return;
	a->dead = 1;
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
	relay_kick(a->relay);
}

int
agent_start(struct relay *r, int fd, const char *src, const char *host,
	    int64_t t_accept)
{
	struct agent *a;
	int rc;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		rc = RT_ERR_NOMEM;
		goto fail;
	}
	a->relay = r;
	a->net_fd = fd;
	a->pump_fd = -1;
	a->ss.fd = -1;
	TAILQ_INIT(&a->bridges);
	rt_strlcpy(a->src, src, sizeof(a->src));
	rt_strlcpy(a->host, host, sizeof(a->host));
	a->t_accept = t_accept;
	a->deadline = t_accept + r->cfg->handshake_timeout_ms;
	a->last_rx = loop_now(r->loop);
	if ((rc = tls_conn_new(r->tls_ctx, fd, 1, NULL, &a->tls)) != 0)
		goto fail;
	if ((rc = loop_watch_add(r->loop, fd, LOOP_READ, agent_net_io, a,
	    &a->w_net)) != 0)
		goto fail;
	TAILQ_INSERT_TAIL(&r->agents, a, link);
	log_debug("agent %s: TLS connection", src);
	return 0;
fail:
	log_warn("agent %s: cannot start: %s", src, rt_strerror(rc));
	if (a != NULL) {
		tls_conn_free(a->tls);
		free(a);
	}
	close(fd);
	relay_conn_closed(r, 1);
	return rc;
}

/* Sets what the loop watches for on both of our fds. */
static void
agent_sync(struct agent *a)
{
	unsigned int ev = 0;

	if (a->dead)
		return;
	if (a->state == AGENT_TLS) {
		ev = tls_want(a->tls);
		loop_watch_set(a->w_net, ev ? ev : LOOP_READ);
		return;
	}
	if (!a->tls_eof && buf_room(a->to_ssh) > 0)
		ev |= a->want_rd ? a->want_rd : LOOP_READ;
	if (buf_len(a->to_tls) > 0)
		ev |= a->want_wr ? a->want_wr : LOOP_WRITE;
	loop_watch_set(a->w_net, ev);
	ev = 0;
	if (buf_room(a->to_tls) > 0)
		ev |= LOOP_READ;
	if (buf_len(a->to_ssh) > 0)
		ev |= LOOP_WRITE;
	loop_watch_set(a->w_pump, ev);
}

static void agent_pump(struct agent *a);

static void
agent_repump(struct loop *loop, void *arg)
{
	struct agent *a = arg;

	a->repump = NULL;
	if (!a->dead)
		agent_pump(a);
}

/* Moves bytes both ways until nothing moves. Returns 0 or marks a dead. */
static void
agent_pump(struct agent *a)
{
	int64_t now = loop_now(a->relay->loop);
	uint8_t *p;
	size_t avail;
	ssize_t n;
	int progress, rounds = 0;

	do {
		progress = 0;
		/* TLS -> to_ssh, draining what OpenSSL holds decrypted */
		while (!a->tls_eof && buf_room(a->to_ssh) > 0) {
			if (buf_reserve(a->to_ssh, buf_room(a->to_ssh), &p,
			    &avail) != 0 || avail == 0)
				break;
			n = tls_read(a->tls, p, avail);
			if (n > 0) {
				buf_commit(a->to_ssh, (size_t)n);
				a->bytes_in += (uint64_t)n;
				a->last_rx = now;
				a->want_rd = 0;
				progress = 1;
				continue;
			}
			if (n == RT_ERR_AGAIN) {
				a->want_rd = tls_want(a->tls);
				break;
			}
			if (n == RT_ERR_EOF) {
				a->tls_eof = 1;
				break;
			}
			agent_kill(a, "TLS read: %s", tls_error(a->tls));
			return;
		}
		/* to_ssh -> socketpair (libssh) */
		if (buf_len(a->to_ssh) > 0) {
			n = buf_write_fd(a->to_ssh, a->pump_fd);
			if (n > 0)
				progress = 1;
			else if (n != RT_ERR_AGAIN && n != 0) {
				agent_kill(a, "socketpair write: %s",
				    strerror(errno));
				return;
			}
		}
		if (a->tls_eof && buf_len(a->to_ssh) == 0 && !a->ssh_eof_sent) {
			/* let libssh see the agent's EOF */
			shutdown(a->pump_fd, SHUT_WR);
			a->ssh_eof_sent = 1;
		}
		/* socketpair (libssh) -> to_tls */
		if (buf_room(a->to_tls) > 0) {
			n = buf_read_fd(a->to_tls, a->pump_fd, 0);
			if (n > 0)
				progress = 1;
			else if (n == RT_ERR_EOF) {
				if (buf_len(a->to_tls) == 0) {
					char why[200];

					(void)sshsess_status(&a->ss, why,
					    sizeof(why));
					agent_kill(a, "SSH session closed: %s",
					    why);
					return;
				}
			} else if (n != RT_ERR_AGAIN && n != RT_ERR_FULL) {
				agent_kill(a, "socketpair read: %s",
				    strerror(errno));
				return;
			}
		}
		/* to_tls -> TLS */
		while (buf_len(a->to_tls) > 0) {
			n = tls_write(a->tls, buf_data(a->to_tls),
			    buf_len(a->to_tls));
			if (n > 0) {
				buf_consume(a->to_tls, (size_t)n);
				a->bytes_out += (uint64_t)n;
				a->want_wr = 0;
				progress = 1;
				continue;
			}
			if (n == RT_ERR_AGAIN) {
				a->want_wr = tls_want(a->tls);
				break;
			}
			agent_kill(a, "TLS write: %s", tls_error(a->tls));
			return;
		}
	} while (progress && ++rounds < 8);
	/*
	 * Decrypted bytes inside OpenSSL never make the socket readable: if
	 * some are left (rounds ran out, or to_ssh was full), come back
	 * after the loop had a turn instead of waiting for an event.
	 */
	if ((progress || (tls_pending(a->tls) > 0 && buf_room(a->to_ssh) > 0))
	    && a->repump == NULL)
		(void)loop_timer_add(a->relay->loop, 0, agent_repump, a,
		    &a->repump);
	if (buf_len(a->to_ssh) == 0)
		buf_shrink(a->to_ssh);
	if (buf_len(a->to_tls) == 0)
		buf_shrink(a->to_tls);
	if (a->tls_eof && buf_len(a->to_ssh) == 0 && a->state != AGENT_UP)
		agent_kill(a, "connection closed during the handshake");
	agent_sync(a);
}

static void
sock_bufs(int fd, int bytes)
{
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

static int
id_allowed(const struct relay_config *cfg, const char *id)
{
	size_t i;

	if (cfg->nagent_allow == 0)
		return 1;
	for (i = 0; i < cfg->nagent_allow; i++) {
		if (strcmp(cfg->agent_allow[i], id) == 0)
			return 1;
	}
	return 0;
}

static void
agent_tls_done(struct agent *a)
{
	struct relay *r = a->relay;
	char subject[256], err[256];
	int sp[2], rc;

	if (tls_peer_subject(a->tls, subject, sizeof(subject)) != 0)
		rt_strlcpy(subject, "?", sizeof(subject));
	rc = tls_peer_cn(a->tls, a->id, sizeof(a->id));
	if (rc != 0 || !rt_valid_id(a->id)) {
		a->id[0] = '\0';
		r->st.agent_fail++;
		agent_kill(a, "certificate %s: CN is not a valid agent id",
		    subject);
		return;
	}
	if (!id_allowed(r->cfg, a->id)) {
		r->st.agent_fail++;
		agent_kill(a, "agent id not in agents.allow (certificate %s)",
		    subject);
		return;
	}
	if (tls_peer_fingerprint(a->tls, a->cert_fp, sizeof(a->cert_fp)) != 0)
		rt_strlcpy(a->cert_fp, "unknown", sizeof(a->cert_fp));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sp) != 0) {
		agent_kill(a, "socketpair: %s", strerror(errno));
		return;
	}
	/* small kernel queues between TLS and libssh: backpressure reaches
	 * the channels instead of piling up behind an interactive byte */
	sock_bufs(sp[0], AGENT_PUMP_BUF);
	sock_bufs(sp[1], AGENT_PUMP_BUF);
	a->pump_fd = sp[1];
	if ((a->to_ssh = buf_new(AGENT_PUMP_BUF)) == NULL ||
	    (a->to_tls = buf_new(AGENT_PUMP_BUF)) == NULL ||
	    loop_watch_add(r->loop, a->pump_fd, LOOP_READ, agent_pump_io, a,
	    &a->w_pump) != 0) {
		close(sp[0]);
		agent_kill(a, "out of memory");
		return;
	}
	if (sshsess_start(&a->ss, r, sp[0], SSH_AUTH_METHOD_NONE,
	    agent_ssh_io, a, err, sizeof(err)) != 0) {
		agent_kill(a, "%s", err);
		return;
	}
	a->state = AGENT_SSH;
	log_debug("agent %s: TLS up from %s (%s, %s)", a->id, a->src,
	    tls_version(a->tls), tls_cipher(a->tls));
}

static void
agent_net_io(struct loop *loop, int fd, unsigned int ev, void *arg)
{
	struct agent *a = arg;
	char subject[256];
	int rc;

	if (a->dead)
		return;
	if (a->state == AGENT_TLS) {
		rc = tls_handshake(a->tls);
		if (rc == RT_ERR_AGAIN) {
			agent_sync(a);
			return;
		}
		if (rc != 0) {
			/* tls_error() names the certificate when it was one */
			a->relay->st.agent_fail++;
			if (tls_peer_subject(a->tls, subject,
			    sizeof(subject)) == 0)
				agent_kill(a, "TLS handshake failed: %s "
				    "(certificate %s)", tls_error(a->tls),
				    subject);
			else
				agent_kill(a, "TLS handshake failed: %s",
				    tls_error(a->tls));
			return;
		}
		agent_tls_done(a);
		if (a->dead)
			return;
	}
	agent_pump(a);
}

static void
agent_pump_io(struct loop *loop, int fd, unsigned int ev, void *arg)
{
	struct agent *a = arg;

	if (!a->dead)
		agent_pump(a);
}

static void
audit_forward(struct agent *a, const char *event, const char *name,
	      int port, const char *reason)
{
	struct audit_rec rec;

	audit_rec_begin(&rec, event);
	audit_rec_str(&rec, "agent", a->id);
	audit_rec_str(&rec, "service", name);
	audit_rec_int(&rec, "port", port);
	if (reason != NULL)
		audit_rec_str(&rec, "reason", reason);
	relay_audit(a->relay, &rec);
}

static const char *
forward_check(struct agent *a, const char *name, int port)
{
	const struct relay_config *cfg = a->relay->cfg;
	size_t i;
	int ok = 0;

	if (a->state != AGENT_UP)
		return "not authenticated";
	if (!rt_valid_id(name))
		return "bad service name";
	if (port < 1 || port > 65535)
		return "bad port";
	for (i = 0; i < a->nsvc; i++) {
		if (strcmp(a->svc[i].name, name) == 0)
			return "service name already registered";
		if (a->svc[i].port == port)
			return "port already registered";
	}
	if (a->nsvc >= cfg->agent_max_services)
		return "too many services";
	if (cfg->nservice_allow == 0)
		ok = 1;
	for (i = 0; i < cfg->nservice_allow && !ok; i++)
		ok = fnmatch(cfg->service_allow[i], name, 0) == 0;
	if (!ok)
		return "service not allowed by agents.services";
	return NULL;
}

static void
agent_forward(struct agent *a, ssh_message msg)
{
	const char *addr = ssh_message_global_request_address(msg);
	int port = ssh_message_global_request_port(msg);
	struct agent_svc *nsvc;
	const char *why;

	if (addr == NULL)
		addr = "";
	if ((why = forward_check(a, addr, port)) == NULL) {
		nsvc = realloc(a->svc, (a->nsvc + 1) * sizeof(*nsvc));
		if (nsvc == NULL)
			why = "out of memory";
		else {
			a->svc = nsvc;
			rt_strlcpy(a->svc[a->nsvc].name, addr,
			    sizeof(a->svc[a->nsvc].name));
			a->svc[a->nsvc].port = port;
			a->nsvc++;
		}
	}
	if (why != NULL) {
		log_warn("agent %s: registration %s:%d refused: %s", a->id,
		    addr, port, why);
		audit_forward(a, "forward_deny", addr, port, why);
		ssh_message_reply_default(msg);
		return;
	}
	log_info("agent %s: service %s:%d registered", a->id, addr, port);
	audit_forward(a, "forward_ok", addr, port, NULL);
	ssh_message_global_request_reply_success(msg, (uint16_t)port);
}

static void
agent_cancel_forward(struct agent *a, ssh_message msg)
{
	const char *addr = ssh_message_global_request_address(msg);
	int port = ssh_message_global_request_port(msg);
	size_t i;

	for (i = 0; addr != NULL && i < a->nsvc; i++) {
		if (strcmp(a->svc[i].name, addr) == 0 &&
		    a->svc[i].port == port) {
			a->svc[i] = a->svc[a->nsvc - 1];
			a->nsvc--;
			log_info("agent %s: service %s:%d withdrawn", a->id,
			    addr, port);
			ssh_message_global_request_reply_success(msg, 0);
			return;
		}
	}
	ssh_message_reply_default(msg);
}

static void
agent_up(struct agent *a, ssh_message msg)
{
	struct relay *r = a->relay;
	struct audit_rec rec;
	struct agent *old;
	const char *banner;

	if (ssh_message_auth_reply_success(msg, 0) != SSH_OK) {
		agent_kill(a, "cannot send auth success");
		return;
	}
	a->state = AGENT_UP;
	a->since_wall = rt_wall_ms();
	banner = ssh_get_clientbanner(a->ss.s);
	rt_strlcpy(a->version, banner != NULL ? banner : "?",
	    sizeof(a->version));
	registry_add(r, a, &old);
	if (old != NULL)
		agent_kill(old, "replaced by a new connection from %s", a->src);
	relay_conn_authed(r);
	r->st.agents_up++;
	audit_rec_begin(&rec, "agent_up");
	audit_rec_str(&rec, "agent", a->id);
	audit_rec_str(&rec, "src", a->src);
	audit_rec_str(&rec, "cert_fp", a->cert_fp);
	audit_rec_str(&rec, "version", a->version);
	relay_audit(r, &rec);
	log_info("agent %s: up from %s (%s, cert %s, %s)%s", a->id, a->src,
	    tls_version(a->tls), a->cert_fp, a->version,
	    old != NULL ? ", replacing the previous connection" : "");
}

static void
agent_message(struct agent *a, ssh_message msg)
{
	int type = ssh_message_type(msg), sub = ssh_message_subtype(msg);

	switch (type) {
	case SSH_REQUEST_AUTH:
		/* none is enough: TLS already proved who this is */
		if (a->state == AGENT_SSH && sub == SSH_AUTH_METHOD_NONE) {
			agent_up(a, msg);
			return;
		}
		ssh_message_auth_set_methods(msg, SSH_AUTH_METHOD_NONE);
		break;
	case SSH_REQUEST_GLOBAL:
		if (sub == SSH_GLOBAL_REQUEST_TCPIP_FORWARD) {
			agent_forward(a, msg);
			return;
		}
		if (sub == SSH_GLOBAL_REQUEST_CANCEL_TCPIP_FORWARD &&
		    a->state == AGENT_UP) {
			agent_cancel_forward(a, msg);
			return;
		}
		break;
	case SSH_REQUEST_CHANNEL_OPEN:
		log_info("agent %s: channel open (type %d) refused: agents "
		    "do not open channels", agent_label(a), sub);
		break;
	default:
		break;
	}
	ssh_message_reply_default(msg);
}

void
agent_drain(struct agent *a)
{
	ssh_message msg;

	a->touched = 0;
	if (a->dead || a->ss.s == NULL || !a->ss.kex_done)
		return;
	while (!a->dead && (msg = ssh_message_get(a->ss.s)) != NULL) {
		agent_message(a, msg);
		ssh_message_free(msg);
	}
	if (!a->dead && sshsess_closed(&a->ss)) {
		char why[200];

		(void)sshsess_status(&a->ss, why, sizeof(why));
		agent_kill(a, "SSH session closed: %s", why);
	}
	/* after the registrations: the events channel follows `control` */
	if (!a->dead && ctlexec_events_service(a))
		relay_kick(a->relay);
}

static void
agent_ssh_io(struct loop *loop, int fd, unsigned int ev, void *arg)
{
	struct agent *a = arg;
	char err[256];
	int rc;

	if (a->dead)
		return;
	rc = sshsess_poll(&a->ss, err, sizeof(err));
	if (rc == RT_ERR_AGAIN) {
		sshsess_sync(&a->ss);
		agent_pump(a);
		return;
	}
	if (rc != 0) {
		agent_kill(a, "SSH: %s", err);
		return;
	}
	agent_drain(a);
	sshsess_sync(&a->ss);
	if (!a->dead)
		agent_pump(a);
	relay_kick(a->relay);
}

/* Fastest pace at which the relay answers an agent's traffic with a
 * keepalive of its own (see agent_tick). */
#define RELAY_KEEPALIVE_ECHO_MS 1000

void
agent_tick(struct agent *a, int64_t now)
{
	const struct relay_config *cfg = a->relay->cfg;
	int64_t iv = cfg->keepalive_interval_ms;

	if (a->dead)
		return;
	if (a->state != AGENT_UP) {
		if (now >= a->deadline)
			agent_kill(a, "handshake not done within %lld ms",
			    (long long)cfg->handshake_timeout_ms);
		return;
	}
	/* events channel deadlines, retries, rate limit */
	if (ctlexec_events_service(a)) {
		sshsess_sync(&a->ss);
		relay_kick(a->relay);
	}
	if (iv <= 0)
		return;
	if (now - a->last_rx >= iv * (int64_t)cfg->keepalive_count) {
		agent_kill(a, "no data for %lld s (keepalive)",
		    (long long)((now - a->last_rx) / 1000));
		return;
	}
	/*
	 * The agent judges the relay alive by the bytes it receives (its own
	 * keepalives want no reply: libssh2 1.10 would never consume one).
	 * So we send one every interval, busy or not, and also answer what
	 * the agent sent since our last one, at most once a second: that
	 * keeps an agent whose keepalive is shorter than ours from declaring
	 * a healthy relay dead.
	 */
	if (now >= a->next_keepalive ||
	    (a->last_rx > a->last_keepalive &&
	    now - a->last_keepalive >= RELAY_KEEPALIVE_ECHO_MS)) {
		/*
		 * libssh keeps one keepalive outstanding: a call made after
		 * the answer arrived only collects it. The second call then
		 * sends the new one; while one is unanswered both are no-ops.
		 */
		ssh_send_keepalive(a->ss.s);
		ssh_send_keepalive(a->ss.s);
		a->next_keepalive = now + iv;
		a->last_keepalive = now;
		sshsess_sync(&a->ss);
		relay_kick(a->relay);
	}
}

void
agent_free(struct agent *a)
{
	struct relay *r = a->relay;
	struct audit_rec rec;
	struct bridge *b;
	int was_up = a->state == AGENT_UP;

	while ((b = TAILQ_FIRST(&a->bridges)) != NULL)
		bridge_detach_agent(b);
	registry_remove(r, a);
	if (was_up) {
		audit_rec_begin(&rec, "agent_down");
		audit_rec_str(&rec, "agent", a->id);
		audit_rec_str(&rec, "src", a->src);
		audit_rec_str(&rec, "cert_fp", a->cert_fp);
		audit_rec_str(&rec, "reason", a->why);
		relay_audit(r, &rec);
		log_info("agent %s: down (%s), was up %lld s from %s",
		    a->id, a->why,
		    (long long)((rt_wall_ms() - a->since_wall) / 1000), a->src);
	} else {
		/* One line per refused peer, but a flood of bogus handshakes
		 * cannot fill the disk (FAULTS.md P9). */
		static struct log_rl rl = LOG_RL_INIT_BURST(20);

		log_warn_rl(&rl, "agent %s from %s: refused: %s",
		    agent_label(a), a->src, a->why);
		/* Refusals that concern an identity (a certificate that was
		 * presented, or a known agent id) are security events; bare
		 * protocol garbage is not audited, only logged. */
		if (a->id[0] != '\0' || strstr(a->why, "certificate") != NULL) {
			audit_rec_begin(&rec, "agent_deny");
			audit_rec_str(&rec, "agent", a->id[0] != '\0' ? a->id :
			    NULL);
			audit_rec_str(&rec, "src", a->src);
			audit_rec_str(&rec, "reason", a->why);
			relay_audit(r, &rec);
		}
	}
	loop_timer_cancel(a->repump);
	ctlexec_events_free(a);	/* before the session frees its channels */
	sshsess_free(&a->ss, 0);
	loop_watch_del(a->w_pump);
	if (a->pump_fd >= 0)
		close(a->pump_fd);
	loop_watch_del(a->w_net);
	if (a->tls != NULL) {
		(void)tls_shutdown(a->tls);
		tls_conn_free(a->tls);
	}
	close(a->net_fd);
	buf_free(a->to_ssh);
	buf_free(a->to_tls);
	free(a->svc);
	TAILQ_REMOVE(&r->agents, a, link);
	relay_conn_closed(r, !was_up);
	free(a);
}
