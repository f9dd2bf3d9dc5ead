/*
 * uplink.c - dialing the relay: TCP, optional HTTP CONNECT proxy, TLS,
 * then the SSH session; failover across relays and backoff (uplink.h).
 *
 * Owns the relay socket, its watch, the TLS context and connection, the
 * sshc session, the backoff/deadline timer and the pending dial. The
 * agent never listens: the only socket here is an outbound connect.
 *
 * Failures found inside callbacks are only recorded (uplink_fail); the
 * teardown runs in uplink_pump(), from the agent's deferred kick.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "agent.h"
#include "agent_config.h"
#include "cfgutil.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "sshc.h"
#include "tls.h"
#include "uplink.h"
#include "util.h"

enum ustate {
	U_IDLE,
	U_WAIT,
	U_TCP,
	U_PROXY,
	U_TLS,
	U_SSH,
	U_UP,
	U_CLOSING,
};

static const char *const ustate_names[] = {
	"idle", "waiting to reconnect", "connecting", "proxy CONNECT",
	"TLS handshake", "SSH handshake", "up", "closing",
};

#define PROXY_RESP_MAX 4096
/* Unsent bytes the kernel keeps (bytes in flight are not counted): small,
 * as SSHC_OUT_HIGH, since every one is queued ahead of interactive data. */
#define UPLINK_NOTSENT_LOWAT (16 * 1024)
/* A session that lasted this long resets the backoff; a relay that drops
 * us sooner (e.g. refuses every service) is retried with growing delays. */
#define UPLINK_STABLE_MS 30000

/* Optional string options are "" (or NULL) when unset. */
#define STR_SET(s) ((s) != NULL && (s)[0] != '\0')

struct uplink {
	struct agent *a;
	enum ustate state;
	int wanted;
	size_t relay_idx;		/* relay tried now / next */
	int64_t backoff_ms;		/* delay after the next list failure */
	int64_t next_try_ms;		/* when WAIT ends (status) */
	struct loop_timer *timer;	/* backoff wait or connect deadline */
	struct net_connect *nc;
	int fd;				/* socket to relay or proxy */
	struct loop_watch *w;
	SSL_CTX *ctx;
	struct tls_conn *tls;
	struct sshc *ssh;
	char relay[160];		/* "host:port" being used */
	int failed;
	char why[320];
	char proxy_req[1024];		/* CONNECT request to send */
	size_t proxy_req_len, proxy_req_off;
	char proxy_resp[PROXY_RESP_MAX];	/* response header read so far */
	size_t proxy_resp_len;
	int64_t up_since_ms;
	struct log_rl fail_rl;
};

static void uplink_io(struct loop *loop, int fd, unsigned int ev, void *arg);
static void attempt_start(struct uplink *u);

int
uplink_new(struct agent *a, struct uplink **out)
{
	struct uplink *u;

	*out = NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return RT_ERR_NOMEM;
	u->a = a;
	u->fd = -1;
	u->backoff_ms = a->cfg->backoff_initial_ms;
	*out = u;
	return 0;
}

/* Frees every resource of the current attempt; state becomes IDLE. */
static void
release(struct uplink *u)
{
	loop_timer_cancel(u->timer);
	u->timer = NULL;
	net_connect_cancel(u->nc);
	u->nc = NULL;
	sshc_free(u->ssh);
	u->ssh = NULL;
	loop_watch_del(u->w);
	u->w = NULL;
	tls_conn_free(u->tls);
	u->tls = NULL;
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
	tls_ctx_free(u->ctx);
	u->ctx = NULL;
	u->failed = 0;
	u->why[0] = '\0';
	u->state = U_IDLE;
}

void
uplink_free(struct uplink *u)
{
	if (u == NULL)
		return;
	release(u);
	free(u);
}

static void
wait_done(struct loop *loop, void *arg)
{
	struct uplink *u = arg;

	u->timer = NULL;
	if (u->state == U_WAIT && u->wanted)
		attempt_start(u);
}

/* Waits delay_ms, then dials relay u->relay_idx. */
static void
schedule(struct uplink *u, int64_t delay_ms)
{
	u->state = U_WAIT;
	u->next_try_ms = rt_mono_ms() + delay_ms;
	if (loop_timer_add(u->a->loop, delay_ms, wait_done, u,
	    &u->timer) < 0) {
		/* Cannot even queue a timer: try again on the next kick. */
		log_err("relay: out of memory scheduling a reconnect");
		u->state = U_IDLE;
	}
}

/* Ends the current attempt/session and plans the next one. */
static void
teardown(struct uplink *u, const char *why)
{
	const struct agent_config *cfg = u->a->cfg;
	int was_up = u->state == U_UP;
	int64_t delay;

	if (was_up)
		log_warn("relay %s: connection lost after %lld s: %s",
		    u->relay, (long long)((rt_mono_ms() - u->up_since_ms) /
		    1000), why);
	else if (u->state != U_IDLE && u->state != U_WAIT &&
	    u->state != U_CLOSING) {
		u->a->stats.connect_failures++;
		log_warn_rl(&u->fail_rl, "relay %s: %s", u->relay, why);
	}
	release(u);
	if (!u->wanted || u->a->stopping)
		return;
	if (was_up && rt_mono_ms() - u->up_since_ms >= UPLINK_STABLE_MS) {
		u->relay_idx = 0;
		u->backoff_ms = cfg->backoff_initial_ms;
		delay = rt_jitter(cfg->backoff_initial_ms,
		    cfg->backoff_jitter_pct / 100.0);
	} else if (!was_up && u->relay_idx + 1 < cfg->nrelays) {
		u->relay_idx++;	/* fail over to the next one now */
		delay = 0;
	} else {
		u->relay_idx = 0;
		delay = rt_jitter(u->backoff_ms,
		    cfg->backoff_jitter_pct / 100.0);
		u->backoff_ms = RT_MIN(u->backoff_ms * 2, cfg->backoff_max_ms);
		log_info("relay: all %zu relay(s) failed; retrying in %lld ms",
		    cfg->nrelays, (long long)delay);
	}
	schedule(u, delay);
}

void
uplink_fail(struct uplink *u, const char *fmt, ...)
{
	va_list ap;

	if (u->failed)
		return;		/* keep the first reason */
	u->failed = 1;
	va_start(ap, fmt);
	vsnprintf(u->why, sizeof(u->why), fmt, ap);
	va_end(ap);
	agent_kick(u->a);
}

static void
deadline(struct loop *loop, void *arg)
{
	struct uplink *u = arg;

	u->timer = NULL;
	uplink_fail(u, "no session within connect_timeout %lld ms (stuck in "
	    "%s)", (long long)u->a->cfg->connect_timeout_ms,
	    ustate_names[u->state]);
}

static int
build_ctx(struct uplink *u, char *err, size_t errlen)
{
	const struct agent_config *cfg = u->a->cfg;
	struct tls_config tc;
	struct stat st;

	memset(&tc, 0, sizeof(tc));
	if (stat(cfg->tls_ca, &st) == 0 && S_ISDIR(st.st_mode))
		tc.ca_dir = cfg->tls_ca;
	else
		tc.ca_file = cfg->tls_ca;
	tc.cert_file = cfg->tls_cert;
	tc.key_file = cfg->tls_key;
	tc.min_version = cfg->tls_min_version;
	return tls_ctx_new(&tc, 0, &u->ctx, err, errlen);
}

/* "Proxy-Authorization: Basic ...\r\n" from proxy_auth_file, or "". */
static int
proxy_auth_header(const struct agent_config *cfg, char *out, size_t len,
		  char *err, size_t errlen)
{
	char line[512];
	unsigned char b64[700];
	FILE *f;
	size_t n;
	int r;

	out[0] = '\0';
	if (!STR_SET(cfg->proxy_auth_file))
		return 0;
	if ((r = cfgu_check_key_perms(cfg->proxy_auth_file, err, errlen)) < 0)
		return r;
	if ((f = fopen(cfg->proxy_auth_file, "r")) == NULL) {
		snprintf(err, errlen, "proxy auth file %s: %s",
		    cfg->proxy_auth_file, strerror(errno));
		return RT_ERR_SYS;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n == 0 || strchr(line, ':') == NULL) {
		snprintf(err, errlen, "proxy auth file %s: expected "
		    "\"user:password\" on the first line",
		    cfg->proxy_auth_file);
		explicit_bzero(line, sizeof(line));
		return RT_ERR_CONFIG;
	}
	EVP_EncodeBlock(b64, (const unsigned char *)line, (int)n);
	snprintf(out, len, "Proxy-Authorization: Basic %s\r\n", b64);
	explicit_bzero(line, sizeof(line));
	explicit_bzero(b64, sizeof(b64));
	return 0;
}

static void
tls_begin(struct uplink *u)
{
	const struct agent_config *cfg = u->a->cfg;
	const char *name = STR_SET(cfg->tls_server_name) ?
	    cfg->tls_server_name :
	    cfg->relay_host[u->relay_idx];
	int r;

	if ((r = tls_conn_new(u->ctx, u->fd, 0, name, &u->tls)) < 0) {
		uplink_fail(u, "TLS setup: %s", rt_strerror(r));
		return;
	}
	u->state = U_TLS;
	loop_watch_set(u->w, LOOP_READ | LOOP_WRITE);
}

static void
tls_step(struct uplink *u)
{
	char cn[80] = "";
	int r;

	r = tls_handshake(u->tls);
	if (r == RT_ERR_AGAIN) {
		loop_watch_set(u->w, tls_want(u->tls) ? tls_want(u->tls) :
		    LOOP_READ);
		return;
	}
	if (r < 0) {
		uplink_fail(u, "TLS handshake: %s%s", r == RT_ERR_VERIFY ?
		    "relay certificate refused: " : "", tls_error(u->tls));
		return;
	}
	tls_peer_cn(u->tls, cn, sizeof(cn));
	log_debug("relay %s: %s %s, certificate CN %s", u->relay,
	    tls_version(u->tls), tls_cipher(u->tls), cn);
	if ((r = sshc_new(u->a, u->tls, u->fd, u->relay, &u->ssh)) < 0) {
		uplink_fail(u, "SSH setup: %s", rt_strerror(r));
		return;
	}
	u->state = U_SSH;
	agent_kick(u->a);
}

static void
proxy_step(struct uplink *u)
{
	ssize_t n;
	char *eol;

	while (u->proxy_req_off < u->proxy_req_len) {
		n = send(u->fd, u->proxy_req + u->proxy_req_off,
		    u->proxy_req_len - u->proxy_req_off, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			loop_watch_set(u->w, LOOP_WRITE);
			return;
		}
		if (n < 0) {
			uplink_fail(u, "proxy write: %s", strerror(errno));
			return;
		}
		u->proxy_req_off += (size_t)n;
	}
	loop_watch_set(u->w, LOOP_READ);
	/* Byte by byte: nothing after the header may be consumed, it
	 * belongs to TLS. The header is short and read once. */
	for (;;) {
		if (u->proxy_resp_len + 1 >= sizeof(u->proxy_resp)) {
			uplink_fail(u, "proxy response header longer than %d "
			    "bytes", PROXY_RESP_MAX);
			return;
		}
		n = recv(u->fd, u->proxy_resp + u->proxy_resp_len, 1, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			uplink_fail(u, "proxy closed the connection%s%s",
			    n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
			return;
		}
		u->proxy_resp[++u->proxy_resp_len] = '\0';
		if (u->proxy_resp_len >= 4 && memcmp(u->proxy_resp +
		    u->proxy_resp_len - 4, "\r\n\r\n", 4) == 0)
			break;
	}
	/* A NUL byte from the proxy would hide the line end from strstr. */
	if ((eol = strstr(u->proxy_resp, "\r\n")) == NULL) {
		uplink_fail(u, "proxy sent a malformed response header");
		return;
	}
	*eol = '\0';
	if (strncmp(u->proxy_resp, "HTTP/1.", 7) != 0 ||
	    strlen(u->proxy_resp) < 12 ||
	    strncmp(u->proxy_resp + 8, " 200", 4) != 0) {
		uplink_fail(u, "proxy refused CONNECT: \"%.100s\"",
		    u->proxy_resp);
		return;
	}
	log_debug("relay %s: proxy tunnel open", u->relay);
	tls_begin(u);
}

static void
uplink_io(struct loop *loop, int fd, unsigned int ev, void *arg)
{
	struct uplink *u = arg;

	if (u->failed)
		return;
	switch (u->state) {
	case U_PROXY:
		proxy_step(u);
		break;
	case U_TLS:
		tls_step(u);
		break;
	case U_SSH:
	case U_UP:
	case U_CLOSING:
		agent_kick(u->a);
		break;
	default:
		break;
	}
}

static void
dialed(int fd, int err, const char *msg, void *arg)
{
	struct uplink *u = arg;
	const struct agent_config *cfg = u->a->cfg;
	int ka_s, lowat;

	u->nc = NULL;
	if (fd < 0) {
		uplink_fail(u, "%s%s%s", STR_SET(cfg->proxy_host) ?
		    "proxy: " : "", msg != NULL && *msg ? msg : "connect: ",
		    msg != NULL && *msg ? "" : rt_strerror(err));
		return;
	}
	u->fd = fd;
	ka_s = (int)RT_MAX(1, cfg->keepalive_interval_ms / 1000);
	net_set_keepalive(fd, ka_s, ka_s, (int)RT_MAX(1u,
	    cfg->keepalive_count));
	if (cfg->tcp_user_timeout_ms > 0)
		net_set_user_timeout(fd,
		    (unsigned int)cfg->tcp_user_timeout_ms);
	net_set_nodelay(fd);
	/* Keep the kernel's unsent queue short so an interactive packet is
	 * not stuck behind megabytes of bulk data already handed over;
	 * to_relay (bounded by its high-water mark) holds the rest. */
	lowat = UPLINK_NOTSENT_LOWAT;
	setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
	if (loop_watch_add(u->a->loop, fd, LOOP_READ, uplink_io, u,
	    &u->w) < 0) {
		uplink_fail(u, "cannot watch socket: %s", strerror(errno));
		return;
	}
	if (STR_SET(cfg->proxy_host)) {
		u->state = U_PROXY;
		proxy_step(u);
	} else
		tls_begin(u);
}

static void
attempt_start(struct uplink *u)
{
	const struct agent_config *cfg = u->a->cfg;
	const char *host, *port;
	char err[512], auth[800];
	int r, v6;

	release(u);
	if (cfg->nrelays == 0) {
		log_err("relay: no relay configured");
		return;
	}
	if (u->relay_idx >= cfg->nrelays)
		u->relay_idx = 0;
	host = cfg->relay_host[u->relay_idx];
	port = cfg->relay_port[u->relay_idx];
	v6 = strchr(host, ':') != NULL;
	snprintf(u->relay, sizeof(u->relay), "%s%s%s:%s", v6 ? "[" : "",
	    host, v6 ? "]" : "", port);
	u->state = U_TCP;
	err[0] = '\0';
	if ((r = build_ctx(u, err, sizeof(err))) < 0) {
		uplink_fail(u, "TLS setup: %s", err);
		return;
	}
	if (STR_SET(cfg->proxy_host)) {
		if ((r = proxy_auth_header(cfg, auth, sizeof(auth), err,
		    sizeof(err))) < 0) {
			uplink_fail(u, "%s", err);
			return;
		}
		u->proxy_req_len = (size_t)snprintf(u->proxy_req,
		    sizeof(u->proxy_req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n"
		    "User-Agent: revtun-agent/%s\r\n%s\r\n", u->relay, u->relay,
		    PACKAGE_VERSION, auth);
		explicit_bzero(auth, sizeof(auth));
		if (u->proxy_req_len >= sizeof(u->proxy_req)) {
			uplink_fail(u, "proxy request too long");
			return;
		}
		u->proxy_req_off = u->proxy_resp_len = 0;
		host = cfg->proxy_host;
		port = cfg->proxy_port;
	}
	log_debug("relay %s: connecting%s%s", u->relay,
	    STR_SET(cfg->proxy_host) ? " via proxy " : "",
	    STR_SET(cfg->proxy_host) ? cfg->proxy_host : "");
	/* The dial first: its lookup bound (at most connect_timeout) then
	 * fires before the deadline and names the slow resolver. */
	if (net_connect_start(u->a->loop, host, port, AF_UNSPEC,
	    cfg->connect_timeout_ms, dialed, u, &u->nc) < 0 ||
	    loop_timer_add(u->a->loop, cfg->connect_timeout_ms, deadline, u,
	    &u->timer) < 0)
		uplink_fail(u, "out of memory");
}

void
uplink_start(struct uplink *u)
{
	u->wanted = 1;
	if (u->state == U_IDLE) {
		u->relay_idx = 0;
		u->backoff_ms = u->a->cfg->backoff_initial_ms;
		attempt_start(u);
	}
}

/* Best effort: queue an SSH disconnect and hand it to TLS once. */
static void
say_goodbye(struct uplink *u, const char *why)
{
	if (u->ssh == NULL)
		return;
	sshc_disconnect(u->ssh, why);
	sshc_pump(u->ssh);
	if (sshc_drained(u->ssh))
		tls_shutdown(u->tls);
}

void
uplink_stop(struct uplink *u, const char *why)
{
	u->wanted = 0;
	if (u->state == U_IDLE)
		return;
	log_info("relay %s: disconnecting: %s", u->relay, why);
	say_goodbye(u, why);
	release(u);
}

void
uplink_restart(struct uplink *u, const char *why)
{
	if (u->state != U_IDLE && u->state != U_WAIT)
		log_info("relay %s: reconnecting: %s", u->relay, why);
	say_goodbye(u, why);
	release(u);
	if (!u->wanted || u->a->stopping)
		return;
	u->relay_idx = 0;
	u->backoff_ms = u->a->cfg->backoff_initial_ms;
	attempt_start(u);
}

void
uplink_session_up(struct uplink *u)
{
	loop_timer_cancel(u->timer);	/* the connect deadline */
	u->timer = NULL;
	u->state = U_UP;
	u->up_since_ms = rt_mono_ms();
	u->a->stats.connects++;
	log_info("relay %s: connected (TLS %s)", u->relay,
	    tls_version(u->tls));
}

void
uplink_pump(struct uplink *u)
{
	int r;

	if (u->failed) {
		char why[sizeof(u->why)];

		rt_strlcpy(why, u->why, sizeof(why));
		teardown(u, why);
		return;
	}
	if (u->ssh == NULL)
		return;
	if ((r = sshc_pump(u->ssh)) < 0) {
		char why[300];

		rt_strlcpy(why, sshc_error(u->ssh)[0] ? sshc_error(u->ssh) :
		    rt_strerror(r), sizeof(why));
		teardown(u, why);
		return;
	}
	if (u->w != NULL)
		loop_watch_set(u->w, sshc_want(u->ssh));
}

struct sshc *
uplink_session(const struct uplink *u)
{
	return u->ssh;
}

int
uplink_shutdown(struct uplink *u)
{
	u->wanted = 0;
	if (u->state == U_CLOSING && !u->failed) {
		if (!sshc_drained(u->ssh))
			return 0;
		tls_shutdown(u->tls);
		log_info("relay %s: disconnected", u->relay);
		release(u);
		return 1;
	}
	if (u->state == U_UP && !u->failed) {
		sshc_disconnect(u->ssh, "agent shutting down");
		u->state = U_CLOSING;
		agent_kick(u->a);
		return 0;
	}
	if (u->state != U_IDLE)
		release(u);
	return 1;
}

void
uplink_status(const struct uplink *u, char *buf, size_t len)
{
	char ss[400] = "";
	int64_t now = rt_mono_ms();

	if (u->ssh != NULL)
		sshc_status(u->ssh, ss, sizeof(ss));
	if (u->state == U_UP)
		snprintf(buf, len, "relay %s: up for %lld s; %s", u->relay,
		    (long long)((now - u->up_since_ms) / 1000), ss);
	else if (u->state == U_WAIT)
		snprintf(buf, len, "relay: %s, next attempt (relay #%zu) in "
		    "%lld ms", ustate_names[u->state], u->relay_idx + 1,
		    (long long)(u->next_try_ms - now));
	else
		snprintf(buf, len, "relay %s: %s%s%s",
		    u->relay[0] ? u->relay : "-", ustate_names[u->state],
		    ss[0] ? "; " : "", ss);
}
