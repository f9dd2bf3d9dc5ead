/*
 * sshc.c - libssh2 client session over the relay's TLS connection
 * (sshc.h).
 *
 * Owns the LIBSSH2_SESSION, the to_relay output buffer that the SEND
 * callback fills, the forward registrations (one per configured service)
 * and the keepalive timer; the forwarded channels themselves live in the
 * bridge it owns. Everything libssh2 does happens inside sshc_pump(),
 * which the agent runs once per loop round after any event.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "agent.h"
#include "agent_config.h"
#include "bridge.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "sshc.h"
#include "tls.h"
#include "uplink.h"
#include "util.h"

enum sshc_state {
	S_HANDSHAKE,
	S_AUTH,
	S_UP,
	S_DISCONNECTING,
	S_FAILED,
};

struct fwd {
	char name[72];
	int port;
	LIBSSH2_LISTENER *l;
	int refused;		/* the relay said no; not retried */
	int gone;		/* removed by a reload: cancel when possible */
};

struct sshc {
	struct agent *a;
	struct tls_conn *tls;
	int fd;
	char relay[160];
	LIBSSH2_SESSION *ss;
	enum sshc_state state;
	struct buf *to_relay;		/* libssh2 packets waiting for TLS */
	int teardown;			/* callbacks refuse I/O */
	int io_failed;			/* a callback saw EOF or an error */
	int mac_failed;			/* a packet failed its MAC check */
	int rx_seen;			/* the RECV callback got bytes */
	char err[256];
	int64_t last_rx_ms;		/* last byte from the relay */
	struct loop_timer *ka_timer;
	struct fwd fwds[AGENT_MAX_SERVICES];
	size_t nfwds;
	int fwd_busy;			/* registration in flight, or -1 */
	int64_t fwd_since_ms;		/* when that registration was sent */
	int fwd_done;			/* every registration answered once */
	struct bridge *bridge;
	char hostkey_fp[80];
};

static void sshc_set_err(struct sshc *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
sshc_set_err(struct sshc *s, const char *fmt, ...)
{
	va_list ap;

	if (s->err[0] != '\0')
		return;	/* keep the first reason */
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
}

static const char *
ssh_errmsg(struct sshc *s)
{
	char *msg = NULL;

	libssh2_session_last_error(s->ss, &msg, NULL, 0);
	return msg != NULL ? msg : "unknown libssh2 error";
}

/*
 * libssh2 SEND callback: queue the whole packet and claim success. A
 * short count or -EAGAIN would leave libssh2 with a half-sent packet,
 * which it cannot combine with other channels' traffic (pitfall 1).
 */
static ssize_t
sshc_send_cb(libssh2_socket_t sock, const void *data, size_t len, int flags,
	     void **abstract)
{
	struct sshc *s = *abstract;
	int r;

	if (s->teardown)
		return (ssize_t)len;	/* nobody will read it */
	r = buf_append(s->to_relay, data, len);
	if (r < 0) {
		if (r == RT_ERR_NOMEM)
			sshc_set_err(s, "out of memory queueing %zu bytes "
			    "for the relay (%zu queued)", len,
			    buf_len(s->to_relay));
		else
			sshc_set_err(s, "output to relay above %u bytes (%s)",
			    SSHC_OUT_LIMIT, rt_strerror(r));
		s->io_failed = 1;
		return -ENOBUFS;
	}
	return (ssize_t)len;
}

/* libssh2 RECV callback: decrypted bytes straight from TLS. */
static ssize_t
sshc_recv_cb(libssh2_socket_t sock, void *data, size_t len, int flags,
	     void **abstract)
{
	struct sshc *s = *abstract;
	ssize_t n;

	if (s->teardown)
		return -ECONNRESET;
	n = tls_read(s->tls, data, len);
	if (n > 0) {
		s->last_rx_ms = rt_mono_ms();
		s->rx_seen = 1;
		return n;
	}
	if (n == RT_ERR_AGAIN)
		return -EAGAIN;
	if (n == RT_ERR_EOF)
		sshc_set_err(s, "relay closed the connection");
	else
		sshc_set_err(s, "TLS read: %s", n == RT_ERR_SYS ?
		    strerror(errno) : tls_error(s->tls));
	s->io_failed = 1;
	return -ECONNRESET;
}

/*
 * libssh2 1.10 drops a packet whose MAC check fails and goes on with the
 * session, so the channel data in it would be lost without a word (seen
 * with a byte flipped inside the TLS tunnel: 32 KiB missing, the channel
 * closed normally). Non-zero keeps libssh2 from using the packet; the
 * pump then ends the session.
 */
static int
sshc_macerror_cb(LIBSSH2_SESSION *ss, const char *packet, int len,
		 void **abstract)
{
	struct sshc *s = *abstract;

	(void)ss;
	(void)packet;
	(void)len;
	s->mac_failed = 1;
	return -1;
}

static void
sshc_ka_tick(struct loop *loop, void *arg)
{
	struct sshc *s = arg;
	const struct agent_config *cfg = s->a->cfg;
	int64_t silent, limit;
	int next = 0;

	s->ka_timer = NULL;
	if (s->state != S_UP)
		return;
	limit = cfg->keepalive_interval_ms * (int64_t)cfg->keepalive_count;
	silent = rt_mono_ms() - s->last_rx_ms;
	if (limit > 0 && silent > limit) {
		uplink_fail(s->a->uplink, "silent for %lld ms (keepalive "
		    "%lld ms x %u): dead", (long long)silent,
		    (long long)cfg->keepalive_interval_ms,
		    cfg->keepalive_count);
		return;
	}
	if (libssh2_keepalive_send(s->ss, &next) < 0 && !s->io_failed)
		log_debug("relay %s: keepalive: %s", s->relay,
		    ssh_errmsg(s));
	if (loop_timer_add(s->a->loop, RT_MIN(cfg->keepalive_interval_ms,
	    1000), sshc_ka_tick, s, &s->ka_timer) < 0) {
		uplink_fail(s->a->uplink, "out of memory for the keepalive "
		    "timer");
		return;
	}
	agent_kick(s->a);
}

static void
fwd_load(struct sshc *s)
{
	const struct agent_config *cfg = s->a->cfg;
	size_t i;

	for (i = 0; i < cfg->nservices && s->nfwds < AGENT_MAX_SERVICES; i++) {
		const struct agent_service *sv = &cfg->services[i];

		memset(&s->fwds[s->nfwds], 0, sizeof(s->fwds[0]));
		rt_strlcpy(s->fwds[s->nfwds].name, sv->name,
		    sizeof(s->fwds[0].name));
		s->fwds[s->nfwds].port = sv->port;
		s->nfwds++;
	}
}

int
sshc_new(struct agent *a, struct tls_conn *tls, int fd, const char *relay,
	 struct sshc **out)
{
	struct sshc *s;
	int r;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return RT_ERR_NOMEM;
	s->a = a;
	s->tls = tls;
	s->fd = fd;
	s->fwd_busy = -1;
	s->last_rx_ms = rt_mono_ms();
	rt_strlcpy(s->relay, relay, sizeof(s->relay));
	if ((s->to_relay = buf_new(SSHC_OUT_LIMIT)) == NULL ||
	    (r = bridge_new(a, &s->bridge)) < 0) {
		r = RT_ERR_NOMEM;
		goto fail;
	}
	s->ss = libssh2_session_init_ex(NULL, NULL, NULL, s);
	if (s->ss == NULL) {
		r = RT_ERR_SSH;
		goto fail;
	}
	libssh2_session_callback_set(s->ss, LIBSSH2_CALLBACK_SEND,
	    (void *)sshc_send_cb);
	libssh2_session_callback_set(s->ss, LIBSSH2_CALLBACK_RECV,
	    (void *)sshc_recv_cb);
	libssh2_session_callback_set(s->ss, LIBSSH2_CALLBACK_MACERROR,
	    (void *)sshc_macerror_cb);
	libssh2_session_set_blocking(s->ss, 0);
	*out = s;
	return 0;
 fail:
	sshc_free(s);
	return r;
}

void
sshc_free(struct sshc *s)
{
	if (s == NULL)
		return;
	loop_timer_cancel(s->ka_timer);
	bridge_free(s->bridge);
	if (s->ss != NULL) {
		/* Make every libssh2 read fail so freeing never waits for
		 * a reply from the relay. */
		s->teardown = 1;
		libssh2_session_free(s->ss);
	}
	buf_free(s->to_relay);
	free(s);
}

static int
sshc_fail(struct sshc *s, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
sshc_fail(struct sshc *s, int r, const char *fmt, ...)
{
	va_list ap;

	if (s->err[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(s->err, sizeof(s->err), fmt, ap);
		va_end(ap);
	}
	s->state = S_FAILED;
	return r;
}

/* "SHA256:" + unpadded base64, as OpenSSH prints it. */
static void
hostkey_fp(struct sshc *s)
{
	const unsigned char *h;
	unsigned char b64[64];
	int n;

	s->hostkey_fp[0] = '\0';
	h = (const unsigned char *)libssh2_hostkey_hash(s->ss,
	    LIBSSH2_HOSTKEY_HASH_SHA256);
	if (h == NULL)
		return;
	n = EVP_EncodeBlock(b64, h, 32);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	b64[n] = '\0';
	snprintf(s->hostkey_fp, sizeof(s->hostkey_fp), "SHA256:%s", b64);
}

static int
pin_matches(const char *pin, const char *fp)
{
	size_t n = strlen(pin);

	while (n > 0 && pin[n - 1] == '=')
		n--;
	return strlen(fp) == n && strncmp(pin, fp, n) == 0;
}

/* Registers forwards one at a time; cancels those a reload removed. */
static int
fwd_step(struct sshc *s)
{
	size_t i, j, pending = 0, active = 0;
	int bound = 0, e;

	for (i = 0; i < s->nfwds; i++) {
		struct fwd *f = &s->fwds[i];

		if (f->l != NULL || f->refused)
			continue;
		if (s->fwd_busy >= 0 && (size_t)s->fwd_busy != i) {
			pending++;
			continue;
		}
		f->l = libssh2_channel_forward_listen_ex(s->ss, f->name,
		    f->port, &bound, SSHC_FWD_QUEUE);
		if (f->l != NULL) {
			s->fwd_busy = -1;
			if (!f->gone)
				log_info("relay %s: service %s (port %d) "
				    "registered", s->relay, f->name, f->port);
			continue;
		}
		e = libssh2_session_last_errno(s->ss);
		if (e == LIBSSH2_ERROR_EAGAIN) {
			if (s->fwd_busy < 0)
				s->fwd_since_ms = rt_mono_ms();
			s->fwd_busy = (int)i;
			/* Registrations go one at a time: one the relay never
			 * answers would hold back all the others. */
			if (rt_mono_ms() - s->fwd_since_ms >
			    s->a->cfg->connect_timeout_ms)
				return sshc_fail(s, RT_ERR_TIMEOUT, "no answer "
				    "to the registration of service %s within "
				    "%lld ms", f->name,
				    (long long)s->a->cfg->connect_timeout_ms);
			pending++;
			continue;
		}
		s->fwd_busy = -1;
		if (s->io_failed)
			return sshc_fail(s, RT_ERR_SSH, "I/O failure");
		f->refused = 1;
		log_warn("relay %s: service %s (port %d) refused by the "
		    "relay: %s", s->relay, f->name, f->port, ssh_errmsg(s));
	}
	/* Cancel removed forwards whose registration is not in flight. */
	for (i = j = 0; i < s->nfwds; i++) {
		struct fwd *f = &s->fwds[i];

		if (f->gone && (int)i != s->fwd_busy) {
			if (f->l != NULL)
				libssh2_channel_forward_cancel(f->l);
			log_info("relay %s: service %s (port %d) withdrawn",
			    s->relay, f->name, f->port);
			continue;
		}
		if (f->l != NULL)
			active++;
		if (s->fwd_busy == (int)i)
			s->fwd_busy = (int)j;
		if (i != j)
			s->fwds[j] = *f;
		j++;
	}
	s->nfwds = j;
	if (pending == 0 && !s->fwd_done) {
		s->fwd_done = 1;
		log_info("relay %s: up with %zu of %zu services", s->relay,
		    active, s->nfwds);
	}
	/* Without a listener nothing would read the session (libssh2 has
	 * no plain "process input" call) and the relay is of no use. */
	if (pending == 0 && active == 0)
		return sshc_fail(s, RT_ERR_REFUSED, "the relay accepted none "
		    "of this agent's services");
	return 0;
}

static int
accept_all(struct sshc *s)
{
	LIBSSH2_CHANNEL *ch;
	size_t i;

	for (i = 0; i < s->nfwds; i++) {
		struct fwd *f = &s->fwds[i];

		if (f->l == NULL)
			continue;
		while ((ch = libssh2_channel_forward_accept(f->l)) != NULL)
			bridge_accept(s->bridge, ch, f->name, s->relay);
		if (s->io_failed || sshc_lib_broken(s))
			return RT_ERR_SSH;
	}
	return 0;
}

static int
flush_to_relay(struct sshc *s)
{
	ssize_t n;

	while (buf_len(s->to_relay) > 0) {
		n = tls_write(s->tls, buf_data(s->to_relay),
		    buf_len(s->to_relay));
		if (n > 0) {
			buf_consume(s->to_relay, (size_t)n);
			continue;
		}
		if (n == RT_ERR_AGAIN)
			return 0;
		return sshc_fail(s, n, "TLS write: %s", n == RT_ERR_SYS ?
		    strerror(errno) : tls_error(s->tls));
	}
	buf_shrink(s->to_relay);
	return 0;
}

static int
step_handshake(struct sshc *s)
{
	const struct agent_config *cfg = s->a->cfg;
	int r;

	r = libssh2_session_handshake(s->ss, s->fd);
	if (r == LIBSSH2_ERROR_EAGAIN)
		return 0;
	if (r < 0)
		return sshc_fail(s, RT_ERR_SSH, "SSH handshake: %s",
		    s->io_failed ? s->err : ssh_errmsg(s));
	hostkey_fp(s);
	if (cfg->ssh_host_key_fp != NULL && cfg->ssh_host_key_fp[0] != '\0' &&
	    !pin_matches(cfg->ssh_host_key_fp, s->hostkey_fp))
		return sshc_fail(s, RT_ERR_VERIFY, "SSH host key %s does not "
		    "match the pinned %s", s->hostkey_fp,
		    cfg->ssh_host_key_fp);
	log_debug("relay %s: SSH host key %s", s->relay, s->hostkey_fp);
	s->state = S_AUTH;
	return 0;
}

static int
step_auth(struct sshc *s)
{
	static const char user[] = "revtun-agent";
	char *methods;

	/* Asking for the method list is the "none" attempt; NULL with the
	 * session authenticated means "none" succeeded. */
	methods = libssh2_userauth_list(s->ss, user, sizeof(user) - 1);
	if (methods == NULL) {
		if (libssh2_userauth_authenticated(s->ss))
			goto up;
		if (libssh2_session_last_errno(s->ss) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		return sshc_fail(s, RT_ERR_SSH, "SSH auth: %s",
		    s->io_failed ? s->err : ssh_errmsg(s));
	}
	return sshc_fail(s, RT_ERR_REFUSED, "SSH auth \"none\" refused "
	    "(relay offers %.64s): is this agent's certificate accepted?",
	    methods);
 up:
	s->state = S_UP;
	fwd_load(s);	/* the services of the config current now */
	s->last_rx_ms = rt_mono_ms();
	/*
	 * want_reply = 0: libssh2 1.10 never consumes the replies to its own
	 * keepalives; each one stays queued for the session's lifetime (a
	 * slow leak) and the next tcpip-forward request takes a stale
	 * REQUEST_FAILURE as its answer, so a service added by a reload was
	 * "refused". Liveness comes from the other direction: the relay
	 * sends keepalive@openssh.com every agents.keepalive_interval, so a
	 * healthy relay is never silent for longer than that; ours only keep
	 * bytes flowing, so that TCP_USER_TIMEOUT notices a dead link.
	 */
	libssh2_keepalive_config(s->ss, 0,
	    (unsigned int)RT_MAX(1, (s->a->cfg->keepalive_interval_ms + 999) /
	    1000));
	if (loop_timer_add(s->a->loop, 1000, sshc_ka_tick, s,
	    &s->ka_timer) < 0)
		return sshc_fail(s, RT_ERR_NOMEM, "out of memory");
	uplink_session_up(s->a->uplink);
	return 0;
}

int
sshc_lib_broken(const struct sshc *s)
{
	if (s->ss == NULL)
		return 0;
	switch (libssh2_session_last_errno(s->ss)) {
	case LIBSSH2_ERROR_ALLOC:
	case LIBSSH2_ERROR_INVALID_MAC:
	case LIBSSH2_ERROR_DECRYPT:
	case LIBSSH2_ERROR_ENCRYPT:
	case LIBSSH2_ERROR_OUT_OF_BOUNDARY:
	case LIBSSH2_ERROR_PROTO:
	case LIBSSH2_ERROR_COMPRESS:
	case LIBSSH2_ERROR_ZLIB:
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
		return 1;
	}
	return 0;
}

/* Ends a session sshc_lib_broken() found unusable, saying why. */
static int
sshc_fail_broken(struct sshc *s)
{
	int e = libssh2_session_last_errno(s->ss);

	if (s->mac_failed)
		return sshc_fail(s, RT_ERR_SSH, "corrupted packet from the "
		    "relay (MAC check failed)");
	if (e == LIBSSH2_ERROR_ALLOC)
		return sshc_fail(s, RT_ERR_NOMEM, "SSH library out of memory "
		    "(%s)", ssh_errmsg(s));
	return sshc_fail(s, RT_ERR_SSH, "SSH library error %d (%s)", e,
	    ssh_errmsg(s));
}

int
sshc_pump(struct sshc *s)
{
	int r = 0, more = 0;

	if (s->state == S_FAILED)
		return RT_ERR_SSH;
	if (s->state == S_HANDSHAKE && (r = step_handshake(s)) < 0)
		return r;
	if (s->state == S_AUTH && (r = step_auth(s)) < 0)
		return r;
	if (s->state == S_UP) {
		if ((r = fwd_step(s)) < 0)
			return r;
		if (sshc_lib_broken(s))
			return sshc_fail_broken(s);
		if ((r = accept_all(s)) < 0)
			return sshc_fail(s, r, "I/O failure");
	}
	if (sshc_lib_broken(s))
		return sshc_fail_broken(s);
	if (s->state == S_UP || s->state == S_DISCONNECTING) {
		/*
		 * Any libssh2 call below may read the relay's packets and sort
		 * them into any channel, also into one serviced before it in
		 * this pass; those bytes have left the socket, so no event
		 * will announce them (pitfall 3). A pass that read something
		 * is therefore followed by another one, as is a pass in which
		 * a channel stopped at its quota. Both end as soon as a pass
		 * reads nothing and moves less than a quota.
		 */
		s->rx_seen = 0;
		if ((r = bridge_pump(s->bridge, s, &more)) < 0)
			return r == RT_ERR_SSH ? sshc_fail_broken(s) :
			    sshc_fail(s, r, "relay misbehaves");
		if (s->rx_seen || more)
			agent_kick(s->a);
	}
	if (s->mac_failed)
		return sshc_fail(s, RT_ERR_SSH, "corrupted packet from the "
		    "relay (MAC check failed)");
	if (s->io_failed)
		return sshc_fail(s, RT_ERR_SSH, "I/O failure");
	/*
	 * Channels that found to_relay above its high-water mark stopped
	 * with bytes waiting, and a flush that empties to_relay leaves no
	 * write event to bring them back: pump again once it is below.
	 */
	more = sshc_out_high(s);
	if ((r = flush_to_relay(s)) < 0)
		return r;
	if (more && !sshc_out_high(s))
		agent_kick(s->a);
	if (tls_pending(s->tls) > 0)
		agent_kick(s->a);	/* bytes the socket will not signal */
	return 0;
}

unsigned int
sshc_want(const struct sshc *s)
{
	/* While disconnecting nothing reads the session any more. */
	unsigned int ev = s->state == S_DISCONNECTING ? 0 : LOOP_READ;

	if (buf_len(s->to_relay) > 0 || (tls_want(s->tls) & TLS_WANT_WRITE))
		ev |= LOOP_WRITE;
	return ev;
}

int
sshc_is_up(const struct sshc *s)
{
	return s->state == S_UP;
}

unsigned int
sshc_channels(const struct sshc *s)
{
	return bridge_count(s->bridge);
}

int
sshc_out_high(const struct sshc *s)
{
	return buf_len(s->to_relay) > SSHC_OUT_HIGH;
}

const char *
sshc_error(const struct sshc *s)
{
	return s->err;
}

void
sshc_services_changed(struct sshc *s, const struct agent_config *old_cfg)
{
	const struct agent_config *cfg = s->a->cfg;
	const struct agent_service *sv;
	size_t i, k;

	for (i = 0; i < s->nfwds; i++) {
		struct fwd *f = &s->fwds[i];

		sv = agent_config_service_by_name(cfg, f->name);
		if (sv == NULL || sv->port != f->port) {
			bridge_close_service(s->bridge, f->name,
			    "service removed or renumbered by reload");
			f->gone = 1;
		} else if (!agent_config_service_same(old_cfg, cfg, f->name))
			bridge_close_service(s->bridge, f->name,
			    "service target changed by reload");
	}
	for (i = 0; i < cfg->nservices; i++) {
		sv = &cfg->services[i];
		for (k = 0; k < s->nfwds; k++)
			if (!s->fwds[k].gone &&
			    strcmp(s->fwds[k].name, sv->name) == 0)
				break;
		if (k < s->nfwds || s->nfwds >= AGENT_MAX_SERVICES)
			continue;
		memset(&s->fwds[s->nfwds], 0, sizeof(s->fwds[0]));
		rt_strlcpy(s->fwds[s->nfwds].name, sv->name,
		    sizeof(s->fwds[0].name));
		s->fwds[s->nfwds].port = sv->port;
		s->nfwds++;
		s->fwd_done = 0;
	}
	agent_kick(s->a);
}

void
sshc_disconnect(struct sshc *s, const char *why)
{
	int more;

	if (s->state == S_FAILED || s->state == S_DISCONNECTING)
		return;
	bridge_close_service(s->bridge, NULL, why);
	if (s->state == S_UP) {
		bridge_pump(s->bridge, s, &more); /* queue the CLOSE messages */
		libssh2_session_disconnect(s->ss, why);
	}
	/* Before authentication there is nothing to say goodbye to: the
	 * key exchange may not even be complete. */
	s->state = S_DISCONNECTING;
	agent_kick(s->a);
}

int
sshc_drained(const struct sshc *s)
{
	return s->state == S_FAILED || buf_len(s->to_relay) == 0;
}

void
sshc_status(const struct sshc *s, char *buf, size_t len)
{
	static const char *const names[] = {
		"handshake", "auth", "up", "disconnecting", "failed"
	};
	size_t i, active = 0;

	for (i = 0; i < s->nfwds; i++)
		if (s->fwds[i].l != NULL)
			active++;
	snprintf(buf, len, "ssh %s, host key %s, %zu/%zu services "
	    "registered, %u channels, to_relay %zu bytes, last byte from "
	    "relay %lld ms ago", names[s->state],
	    s->hostkey_fp[0] ? s->hostkey_fp : "-", active, s->nfwds,
	    bridge_count(s->bridge), buf_len(s->to_relay),
	    (long long)(rt_mono_ms() - s->last_rx_ms));
}

void
sshc_log_channels(const struct sshc *s)
{
	bridge_log(s->bridge);
}
