/*
 * listener.c - listening sockets, admission limits and the triage of new
 * connections by their first bytes (listener.h; the rules are in
 * protodetect.c).
 *
 * Per-source penalties (operator.h) act here, before any TLS or SSH
 * work: on an operator-only port a penalized source is closed right after
 * accept; on the shared port only once its first bytes say SSH, so an
 * agent (TLS) is never refused for what operators or scanners behind the
 * same address did. A connection that ends here without a protocol (no
 * bytes, garbage, TLS on the operator port, silent past the deadline)
 * adds penalty_noauth to its source; that only ever refuses SSH.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "agent_conn.h"
#include "err.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "operator.h"
#include "protodetect.h"
#include "util.h"

#define ACCEPT_BURST 64		/* accepts per wake-up, then others run */
#define PEEK_RETRY_MS 50	/* partial "SSH-" prefix: look again */

static void pconn_io(struct loop *loop, int fd, unsigned int ev, void *arg);

/* Splits "ADDR:PORT", "[V6]:PORT" or "*:PORT". */
static int
split_hostport(const char *s, char *host, size_t hlen, char *port,
	       size_t plen)
{
	const char *c, *end;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return RT_ERR_INVAL;
		if ((size_t)(end - s - 1) >= hlen)
			return RT_ERR_INVAL;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		c = end + 1;
	} else {
		if ((c = strrchr(s, ':')) == NULL || (size_t)(c - s) >= hlen)
			return RT_ERR_INVAL;
		memcpy(host, s, (size_t)(c - s));
		host[c - s] = '\0';
	}
	if (rt_strlcpy(port, c + 1, plen) >= plen || port[0] == '\0')
		return RT_ERR_INVAL;
	return 0;
}

static void pconn_drop(struct pconn *pc, const char *why);
static void pconn_fail(struct pconn *pc, const char *why);

/*
 * The pending table is full: make room by closing the oldest connection
 * that is stalled before authentication: first sockets that have not sent
 * their first bytes, then agents still in their TLS/SSH handshake.
 * Operators are left alone (a person may be typing a passphrase). A peer
 * that holds slots without finishing its handshake (slowloris) is thus
 * pushed out by newer connections instead of locking real agents out: a
 * real agent completes within a few round trips. A handshake younger than
 * EVICT_MIN_AGE_MS is never a victim: in a reconnect storm of real agents
 * the table is full of handshakes that are merely queued for CPU, and
 * killing them would only make them start over. The victim is reaped at
 * the end of the round; until then the new connection is admitted above
 * max_pending, by at most one accept burst. Returns 1 if one was closed.
 */
#define EVICT_MIN_AGE_MS 1000

static int
pending_evict_oldest(struct relay *r)
{
	static struct log_rl rl = LOG_RL_INIT;
	struct pconn *pc;
	struct agent *a, *oldest = NULL;

	TAILQ_FOREACH(pc, &r->pending, link) {
		if (pc->dead)
			continue;
		log_warn_rl(&rl, "pending table full (max_pending %u): "
		    "closing %s, the oldest silent connection",
		    r->cfg->max_pending, pc->src);
		r->st.evicted++;
		pconn_drop(pc, NULL);
		return 1;
	}
	TAILQ_FOREACH(a, &r->agents, link)
		if (!a->dead && a->state != AGENT_UP &&
		    (oldest == NULL || a->t_accept < oldest->t_accept))
			oldest = a;
	if (oldest == NULL ||
	    loop_now(r->loop) - oldest->t_accept < EVICT_MIN_AGE_MS)
		return 0;
	log_warn_rl(&rl, "pending table full (max_pending %u): closing %s, "
	    "the oldest unfinished agent handshake", r->cfg->max_pending,
	    oldest->src);
	r->st.evicted++;
	agent_kill(oldest, "handshake evicted: pending table full");
	return 1;
}

static void
listener_accept(struct loop *loop, int lfd, unsigned int ev, void *arg)
{
	struct listener *l = arg;
	struct relay *r = l->relay;
	const struct relay_config *cfg = r->cfg;
	static struct log_rl rl = LOG_RL_INIT;
	struct sockaddr_storage ss;
	socklen_t slen;
	struct pconn *pc;
	char src[NET_ADDRSTRLEN], host[NET_ADDRSTRLEN];
	const char *why;
	unsigned int evicted = 0;	/* victims still counted until reap */
	int fd, i, lowat;

	for (i = 0; i < ACCEPT_BURST; i++) {
		slen = sizeof(ss);
		fd = net_accept(lfd, &ss, &slen);
		if (fd == RT_ERR_AGAIN)
			return;
		if (fd < 0) {
			log_warn_rl(&rl, "listener %s: accept: %s", l->name,
			    strerror(errno));
			return;
		}
		net_addr_str((struct sockaddr *)&ss, src, sizeof(src));
		net_host_str((struct sockaddr *)&ss, host, sizeof(host));
		why = NULL;
		if (r->stopping)
			why = "relay stopping";
		else if (r->nconns >= cfg->max_connections)
			why = "max_connections reached";
		else if (r->npending >= cfg->max_pending + evicted &&
		    !(pending_evict_oldest(r) && ++evicted))
			why = "max_pending reached";
		else if (relay_pending_from(r, host) >=
		    cfg->max_pending_per_source)
			why = "max_pending_per_source reached";
		if (why != NULL) {
			r->st.refused_limit++;
			log_warn_rl(&rl, "listener %s: %s refused: %s", l->name,
			    src, why);
			close(fd);
			continue;
		}
		/* agents never come here: refuse before reading anything */
		if (l->op_only && operator_source_refused(r, src, host)) {
			close(fd);
			continue;
		}
		if ((pc = calloc(1, sizeof(*pc))) == NULL) {
			log_err("listener %s: %s: out of memory", l->name, src);
			close(fd);
			continue;
		}
		/*
		 * Keep at most RELAY_NOTSENT_LOWAT unsent bytes in the kernel
		 * (autotuning stays on for bytes in flight): a deep send queue
		 * would hold an interactive byte behind a bulk transfer.
		 */
		lowat = RELAY_NOTSENT_LOWAT;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
		    sizeof(lowat));
		(void)net_set_nodelay(fd);
		pc->relay = r;
		pc->fd = fd;
		pc->op_only = l->op_only;
		pc->t_accept = loop_now(r->loop);
		pc->deadline = pc->t_accept + cfg->handshake_timeout_ms;
		rt_strlcpy(pc->src, src, sizeof(pc->src));
		rt_strlcpy(pc->host, host, sizeof(pc->host));
		if (loop_watch_add(r->loop, fd, LOOP_READ, pconn_io, pc,
		    &pc->w) != 0) {
			log_err("listener %s: %s: cannot watch: %s", l->name,
			    src, strerror(errno));
			close(fd);
			free(pc);
			continue;
		}
		TAILQ_INSERT_TAIL(&r->pending, pc, link);
		r->nconns++;
		r->npending++;
		r->st.accepted++;
		log_debug("listener %s: connection from %s", l->name, src);
	}
}

static void
pconn_drop(struct pconn *pc, const char *why)
{
	static struct log_rl rl = LOG_RL_INIT;

	if (pc->dead)
		return;
	if (why != NULL) {
		pc->relay->st.refused_proto++;
		log_info_rl(&rl, "connection %s closed: %s", pc->src, why);
	}
	loop_watch_del(pc->w);
	pc->w = NULL;
	loop_timer_cancel(pc->retry);
	pc->retry = NULL;
	pc->dead = 1;
	relay_kick(pc->relay);
}

/* The peer ended its connection without speaking TLS or SSH: penalize
 * its source (noauth), then drop it. */
static void
pconn_fail(struct pconn *pc, const char *why)
{
	if (pc->dead)
		return;
	operator_penalize(pc->relay, pc->host, PEN_NOAUTH, pc->src);
	pconn_drop(pc, why);
}

/* The fd goes to an agent or operator object: pconn forgets it, and the
 * pending count moves with it. */
static int
pconn_handoff(struct pconn *pc)
{
	int fd = pc->fd;

	loop_watch_del(pc->w);
	pc->w = NULL;
	loop_timer_cancel(pc->retry);
	pc->retry = NULL;
	pc->fd = -1;
	pc->dead = 1;
	pc->handed_over = 1;
	relay_kick(pc->relay);
	return fd;
}

static void
pconn_retry(struct loop *loop, void *arg)
{
	struct pconn *pc = arg;

	pc->retry = NULL;
	if (!pc->dead)
		loop_watch_set(pc->w, LOOP_READ);
}

static void
pconn_io(struct loop *loop, int fd, unsigned int ev, void *arg)
{
	struct pconn *pc = arg;
	struct relay *r = pc->relay;
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	unsigned char b[PD_PEEK_LEN];
	char why[96];
	const char *reason;
	ssize_t n;
	size_t i, off;
	int port = 0;

	if (pc->dead)
		return;
	n = recv(fd, b, sizeof(b), MSG_PEEK);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		pconn_fail(pc, strerror(errno));
		return;
	}
	if (n == 0) {
		pconn_fail(pc, "closed before sending anything");
		return;
	}
	switch (pd_classify(b, (size_t)n, &reason)) {
	case PD_TLS:
		if (pc->op_only) {
			pconn_fail(pc, "TLS on the operator-only port");
			return;
		}
		agent_start(r, pconn_handoff(pc), pc->src, pc->host,
		    pc->t_accept);
		return;
	case PD_NEED_MORE:
		/* level-triggered: park the watch, look again shortly */
		loop_watch_set(pc->w, 0);
		if (loop_timer_add(r->loop, PEEK_RETRY_MS, pconn_retry, pc,
		    &pc->retry) != 0)
			pconn_drop(pc, "out of memory");
		return;
	case PD_REJECT:
		/* The first bytes in hex tell HTTP from a port scan. */
		off = (size_t)snprintf(why, sizeof(why), "%s (first bytes",
		    reason);
		for (i = 0; i < (size_t)n && off < sizeof(why); i++)
			off += (size_t)snprintf(why + off, sizeof(why) - off,
			    " %02x", b[i]);
		if (off < sizeof(why))
			snprintf(why + off, sizeof(why) - off, ")");
		pconn_fail(pc, why);
		return;
	case PD_SSH:
		break;
	}
	if (operator_source_refused(r, pc->src, pc->host)) {
		pconn_drop(pc, NULL);	/* counted as refused_penalty */
		return;
	}
	if (getpeername(fd, (struct sockaddr *)&ss, &slen) == 0) {
		if (ss.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	operator_start(r, pconn_handoff(pc), pc->src, pc->host, port,
	    pc->t_accept);
}

void
pconn_tick(struct pconn *pc, int64_t now)
{
	if (!pc->dead && now >= pc->deadline)
		pconn_fail(pc, "nothing received before the handshake "
		    "deadline");
}

void
pconn_free(struct pconn *pc)
{
	struct relay *r = pc->relay;

	loop_watch_del(pc->w);
	loop_timer_cancel(pc->retry);
	if (pc->fd >= 0)
		close(pc->fd);
	TAILQ_REMOVE(&r->pending, pc, link);
	if (!pc->handed_over)
		relay_conn_closed(r, 1);
	free(pc);
}

static int
listen_one(struct relay *r, const char *spec, int op_only, char *err,
	   size_t errlen)
{
	char host[256], port[16], msg[256];
	int fds[8];
	size_t n = 0, i;
	struct listener *l;
	int rc;

	if (split_hostport(spec, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(err, errlen, "listen %s: expected ADDR:PORT", spec);
		return RT_ERR_CONFIG;
	}
	rc = net_listen(strcmp(host, "*") == 0 ? NULL : host, port, 511, fds,
	    RT_ARRAY_SIZE(fds), &n, msg, sizeof(msg));
	if (rc != 0) {
		snprintf(err, errlen, "listen %s: %s", spec, msg);
		return rc;
	}
	for (i = 0; i < n; i++) {
		if (r->nlisteners >= RT_ARRAY_SIZE(r->listeners)) {
			close(fds[i]);
			continue;
		}
		l = &r->listeners[r->nlisteners];
		memset(l, 0, sizeof(*l));
		l->relay = r;
		l->fd = fds[i];
		l->op_only = op_only;
		snprintf(l->name, sizeof(l->name), "%s#%zu", spec, i);
		if ((rc = loop_watch_add(r->loop, fds[i], LOOP_READ,
		    listener_accept, l, &l->w)) != 0) {
			snprintf(err, errlen, "listen %s: watch failed", spec);
			close(fds[i]);
			return rc;
		}
		r->nlisteners++;
		log_info("listening on %s (port %d)%s", spec,
		    net_local_port(fds[i]), op_only ? " (operators only)" : "");
	}
	return 0;
}

int
listener_open_all(struct relay *r, char *err, size_t errlen)
{
	const struct relay_config *cfg = r->cfg;
	size_t i;
	int rc;

	for (i = 0; i < cfg->nlisten; i++) {
		if ((rc = listen_one(r, cfg->listen[i], 0, err, errlen)) != 0)
			goto fail;
	}
	for (i = 0; i < cfg->nop_listen; i++) {
		if ((rc = listen_one(r, cfg->op_listen[i], 1, err, errlen)) != 0)
			goto fail;
	}
	return 0;
fail:
	listener_close_all(r);
	return rc;
}

void
listener_close_all(struct relay *r)
{
	size_t i;

	for (i = 0; i < r->nlisteners; i++) {
		loop_watch_del(r->listeners[i].w);
		close(r->listeners[i].fd);
	}
	r->nlisteners = 0;
}
