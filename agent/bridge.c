/*
 * bridge.c - forwarded channels bridged to local targets (bridge.h).
 *
 * Owns the list of channels of one SSH session. Each channel moves
 * through DIALING (target connect pending) -> OPEN -> CLOSING (our
 * SSH_MSG_CHANNEL_CLOSE sent, waiting for the relay's) -> DEAD (reaped by
 * bridge_pump). A refused channel starts in CLOSING with no target.
 *
 * The list is a TAILQ; bridge_pump() services every channel and then
 * moves the first one to the tail, so no channel is always served first.
 */
#include "config.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "agent_config.h"
#include "bridge.h"
#include "buf.h"
#include "control.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "sshc.h"
#include "util.h"

enum chan_state {
	CH_DIALING,
	CH_OPEN,
	CH_CLOSING,
	CH_DEAD,
};

struct chan {
	TAILQ_ENTRY(chan) entry;
	struct bridge *b;
	unsigned int id;
	enum chan_state state;
	LIBSSH2_CHANNEL *ch;
	char svc[72];
	char target[160];		/* "host:port" for logs */
	int fd;				/* target socket; -1 dialing */
	struct loop_watch *w;
	struct net_connect *nc;
	struct buf *to_target;		/* relay -> target */
	struct buf *from_target;	/* target -> relay */
	int chan_eof;			/* relay sent EOF and all was read */
	int target_eof;			/* target closed its side */
	int eof_sent;			/* our EOF went to the relay */
	int shut_wr;			/* shutdown(SHUT_WR) done on target */
	int refused;			/* never dialed */
	char why[192];			/* close reason, logged once */
	int64_t opened_ms;
	int64_t closing_ms;
	uint64_t n_to_target;
	uint64_t n_from_target;
};

TAILQ_HEAD(chan_list, chan);

struct bridge {
	struct agent *a;
	struct chan_list chans;
	unsigned int nchans;
};

/* A relay that never answers our CLOSE cannot make closing channels pile
 * up beyond this many over max_channels. */
#define BRIDGE_CLOSING_SLACK 64

static void chan_close(struct chan *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

int
bridge_new(struct agent *a, struct bridge **out)
{
	struct bridge *b;

	*out = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return RT_ERR_NOMEM;
	b->a = a;
	TAILQ_INIT(&b->chans);
	*out = b;
	return 0;
}

static void
chan_release_target(struct chan *c)
{
	net_connect_cancel(c->nc);
	c->nc = NULL;
	loop_watch_del(c->w);
	c->w = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(c->to_target);
	buf_free(c->from_target);
	c->to_target = c->from_target = NULL;
}

static void
chan_destroy(struct chan *c)
{
	chan_release_target(c);
	free(c);
}

void
bridge_free(struct bridge *b)
{
	struct chan *c;

	if (b == NULL)
		return;
	control_session_gone(b->a->control);
	while ((c = TAILQ_FIRST(&b->chans)) != NULL) {
		TAILQ_REMOVE(&b->chans, c, entry);
		if (c->state != CH_DEAD && !c->refused)
			log_info("chan %u (%s): closed: session ended, "
			    "%llu bytes in, %llu out", c->id, c->svc,
			    (unsigned long long)c->n_to_target,
			    (unsigned long long)c->n_from_target);
		chan_destroy(c);
	}
	free(b);
}

/*
 * Moves c to CLOSING: no more target callbacks from now on; the next
 * pump closes the target socket and sends the SSH close. Logs the reason
 * once.
 */
static void
chan_close(struct chan *c, const char *fmt, ...)
{
	va_list ap;

	if (c->state == CH_CLOSING || c->state == CH_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	if (c->refused)
		log_info("chan %u (%s): refused: %s", c->id, c->svc, c->why);
	else
		log_info("chan %u (%s -> %s): closed: %s; %llu bytes to "
		    "target, %llu from target, %lld ms", c->id, c->svc,
		    c->target, c->why, (unsigned long long)c->n_to_target,
		    (unsigned long long)c->n_from_target,
		    (long long)(rt_mono_ms() - c->opened_ms));
	/* Only stop the callbacks here; the socket and buffers go in the
	 * next pump (never free inside a callback). */
	loop_watch_del(c->w);
	c->w = NULL;
	net_connect_cancel(c->nc);	/* NULL when called from its cb */
	c->nc = NULL;
	c->state = CH_CLOSING;
	c->closing_ms = rt_mono_ms();
	agent_kick(c->b->a);
}

/* Events the target socket needs now; parks the watch when none. */
static void chan_io(struct loop *loop, int fd, unsigned int ev, void *arg);

static void
chan_update_watch(struct chan *c)
{
	unsigned int ev = 0;

	if (c->state != CH_OPEN || c->fd < 0)
		return;
	if (!c->target_eof && buf_room(c->from_target) > 0)
		ev |= LOOP_READ;
	if (buf_len(c->to_target) > 0)
		ev |= LOOP_WRITE;
	if (c->w == NULL) {
		/* parked after a hang-up we could not act on yet */
		if (ev != 0 && loop_watch_add(c->b->a->loop, c->fd, ev, chan_io,
		    c, &c->w) < 0)
			chan_close(c, "cannot watch target socket: %s",
			    strerror(errno));
		return;
	}
	loop_watch_set(c->w, ev);
}

/* Writes to_target into the socket; closes the channel on error. */
static void
chan_write_target(struct chan *c)
{
	ssize_t n;

	if (c->fd < 0 || buf_len(c->to_target) == 0)
		return;
	n = buf_write_fd(c->to_target, c->fd);
	if (n == RT_ERR_SYS)
		chan_close(c, "target write: %s", strerror(errno));
	else if (n > 0)
		buf_shrink(c->to_target);
}

static void
chan_io(struct loop *loop, int fd, unsigned int ev, void *arg)
{
	struct chan *c = arg;
	ssize_t n;
	int progress = 0;

	if (c->state != CH_OPEN)
		return;
	if ((ev & (LOOP_READ | LOOP_ERROR)) && !c->target_eof &&
	    buf_room(c->from_target) > 0) {
		n = buf_read_fd(c->from_target, c->fd, 0);
		if (n > 0)
			progress = 1;
		else if (n == RT_ERR_EOF) {
			c->target_eof = 1;
			progress = 1;
		} else if (n == RT_ERR_SYS) {
			chan_close(c, "target read: %s", strerror(errno));
			return;
		} else if (n == RT_ERR_NOMEM) {
			/* the socket stays readable: waiting would spin */
			chan_close(c, "out of memory buffering data from the "
			    "target");
			return;
		}
	}
	if ((ev & (LOOP_WRITE | LOOP_ERROR)) && buf_len(c->to_target) > 0) {
		chan_write_target(c);
		if (c->state != CH_OPEN)
			return;
		progress = 1;
	}
	if ((ev & LOOP_ERROR) && !progress) {
		/* A hang-up we cannot act on until the buffers move: stop
		 * watching so level-triggered epoll does not spin. */
		loop_watch_del(c->w);
		c->w = NULL;
	} else
		chan_update_watch(c);
	agent_kick(c->b->a);
}

static void
chan_dialed(int fd, int err, const char *msg, void *arg)
{
	struct chan *c = arg;
	struct bridge *b = c->b;

	c->nc = NULL;
	if (fd < 0) {
		b->a->stats.target_failures++;
		chan_close(c, "cannot reach target %s: %s", c->target,
		    msg != NULL && *msg ? msg : rt_strerror(err));
		return;
	}
	c->fd = fd;
	net_set_nodelay(fd);
	c->state = CH_OPEN;
	log_debug("chan %u (%s): connected to %s", c->id, c->svc, c->target);
	chan_update_watch(c);
	agent_kick(b->a);
}

static unsigned int
bridge_closing(const struct bridge *b)
{
	const struct chan *c;
	unsigned int n = 0;

	TAILQ_FOREACH(c, &b->chans, entry)
		if (c->state == CH_CLOSING)
			n++;
	return n;
}

int
bridge_accept(struct bridge *b, LIBSSH2_CHANNEL *ch, const char *svc,
	      const char *relay)
{
	const struct agent_config *cfg = b->a->cfg;
	const struct agent_service *sv;
	struct chan *c;
	unsigned int open_n;
	int r;

	/* Built-in services are answered by the agent itself, and only
	 * while the consent gate lets sessions in (a closed gate refuses
	 * them below like any other session). */
	sv = agent_config_service_by_name(cfg, svc);
	if (sv != NULL && sv->builtin && agent_sessions_allowed(b->a))
		return control_accept(b->a->control, ch, svc, relay);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		/* No memory even for the record: let libssh2 close it. */
		log_err("relay %s: out of memory accepting a channel for %s",
		    relay, svc);
		libssh2_channel_free(ch);
		return RT_ERR_NOMEM;
	}
	c->b = b;
	c->id = ++b->a->last_chan_id;
	c->ch = ch;
	c->fd = -1;
	c->opened_ms = rt_mono_ms();
	rt_strlcpy(c->svc, svc, sizeof(c->svc));
	TAILQ_INSERT_TAIL(&b->chans, c, entry);
	b->nchans++;
	libssh2_channel_handle_extended_data2(ch,
	    LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE);

	open_n = b->nchans - bridge_closing(b) - 1;
	/* The agent never trusts the relay: look the service up in our own
	 * config, whatever forward it arrived on. */
	sv = agent_config_service_by_name(cfg, svc);
	if (sv == NULL) {
		c->refused = 1;
		r = RT_ERR_REFUSED;
		chan_close(c, "service not in this agent's config");
		goto refused;
	}
	if (!agent_sessions_allowed(b->a)) {
		c->refused = 1;
		r = RT_ERR_REFUSED;
		chan_close(c, b->a->stopping ? "agent is stopping" :
		    "consent gate closed");
		goto refused;
	}
	if (open_n >= cfg->max_channels) {
		c->refused = 1;
		r = RT_ERR_LIMIT;
		chan_close(c, "channel limit %u reached", cfg->max_channels);
		goto refused;
	}
	snprintf(c->target, sizeof(c->target), "%s%s%s:%s",
	    strchr(sv->target_host, ':') ? "[" : "", sv->target_host,
	    strchr(sv->target_host, ':') ? "]" : "", sv->target_port);
	c->to_target = buf_new(cfg->channel_buffer);
	c->from_target = buf_new(cfg->channel_buffer);
	if (c->to_target == NULL || c->from_target == NULL) {
		r = RT_ERR_NOMEM;
		chan_close(c, "out of memory");
		return r;
	}
	c->state = CH_DIALING;
	r = net_connect_start(b->a->loop, sv->target_host, sv->target_port,
	    AF_UNSPEC, cfg->target_connect_timeout_ms, chan_dialed, c, &c->nc);
	if (r < 0) {
		chan_close(c, "cannot dial %s: %s", c->target, rt_strerror(r));
		return r;
	}
	b->a->stats.channels_total++;
	log_info("chan %u (%s): opened by relay %s, dialing %s", c->id, svc,
	    relay, c->target);
	return 0;
 refused:
	b->a->stats.channels_refused++;
	return r;
}

/*
 * Moves relay -> to_target, at most the quota. Returns 1 when it stopped
 * because of the quota: libssh2 may still hold data for this channel
 * that no socket event will announce (it was read from TLS already), so
 * the caller must schedule another pump.
 */
static int
chan_from_relay(struct chan *c)
{
	size_t moved = 0, avail;
	uint8_t *p;
	ssize_t n;

	while (!c->chan_eof && moved < BRIDGE_QUOTA &&
	    buf_room(c->to_target) > 0) {
		if (buf_reserve(c->to_target, BRIDGE_QUOTA - moved, &p,
		    &avail) < 0) {
			chan_close(c, "out of memory buffering data for the "
			    "target");
			return 0;
		}
		if (avail == 0)
			break;
		avail = RT_MIN(avail, BRIDGE_QUOTA - moved);
		n = libssh2_channel_read(c->ch, (char *)p, avail);
		if (n > 0) {
			buf_commit(c->to_target, (size_t)n);
			moved += (size_t)n;
			c->n_to_target += (uint64_t)n;
			c->b->a->stats.bytes_to_target += (uint64_t)n;
			continue;
		}
		if (n == LIBSSH2_ERROR_EAGAIN)
			break;
		if (n < 0) {
			chan_close(c, "channel read failed (libssh2 %d)",
			    (int)n);
			return 0;
		}
		break;	/* 0: EOF or transport failure; see below */
	}
	if (!c->chan_eof && libssh2_channel_eof(c->ch))
		c->chan_eof = 1;
	return moved >= BRIDGE_QUOTA;
}

/*
 * Moves from_target -> relay, at most the quota, while the session's
 * output is below its high-water mark and the window allows. Returns 1
 * when it stopped because of the quota with bytes still waiting: nothing
 * else would wake the pump for them (the target socket is not even
 * watched for reading while from_target is full).
 */
static int
chan_to_relay(struct chan *c, struct sshc *s)
{
	size_t moved = 0, len;
	ssize_t n;

	while (moved < BRIDGE_QUOTA && (len = buf_len(c->from_target)) > 0 &&
	    !sshc_out_high(s)) {
		n = libssh2_channel_write(c->ch,
		    (const char *)buf_data(c->from_target),
		    RT_MIN(len, BRIDGE_QUOTA - moved));
		if (n > 0) {
			buf_consume(c->from_target, (size_t)n);
			moved += (size_t)n;
			c->n_from_target += (uint64_t)n;
			c->b->a->stats.bytes_from_target += (uint64_t)n;
			continue;
		}
		if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
			break;
		chan_close(c, c->chan_eof ? "relay closed the channel" :
		    "channel write failed (libssh2 %d)", (int)n);
		return 0;
	}
	if (buf_len(c->from_target) == 0) {
		buf_shrink(c->from_target);
		return 0;
	}
	return moved >= BRIDGE_QUOTA;
}

/*
 * Services one channel. Returns 1 when it has work left that no fd event
 * will announce (a quota stop), 0 otherwise.
 */
static int
chan_service(struct chan *c, struct sshc *s)
{
	int r, more;

	if (c->state == CH_CLOSING) {
		chan_release_target(c);
		r = libssh2_channel_close(c->ch);
		if (r != LIBSSH2_ERROR_EAGAIN)
			c->state = CH_DEAD;
		return 0;
	}
	if (c->state != CH_OPEN && c->state != CH_DIALING)
		return 0;
	more = chan_from_relay(c);
	if (c->state != CH_OPEN)
		return 0;
	chan_write_target(c);
	if (c->state != CH_OPEN)
		return 0;
	if (c->chan_eof && buf_len(c->to_target) == 0 && !c->shut_wr) {
		shutdown(c->fd, SHUT_WR);
		c->shut_wr = 1;
	}
	more |= chan_to_relay(c, s);
	if (c->state != CH_OPEN)
		return 0;
	/* After the relay's EOF, a CLOSE from it ends the channel even if
	 * the target ignores our half-close and keeps its side open. */
	if (c->chan_eof && buf_len(c->to_target) == 0 &&
	    libssh2_channel_wait_closed(c->ch) == 0) {
		chan_close(c, "relay closed the channel");
		return 0;
	}
	if (c->target_eof && buf_len(c->from_target) == 0 && !c->eof_sent) {
		r = libssh2_channel_send_eof(c->ch);
		if (r == 0)
			c->eof_sent = 1;
		else if (r != LIBSSH2_ERROR_EAGAIN) {
			chan_close(c, "sending EOF failed (libssh2 %d)", r);
			return 0;
		}
	}
	if (c->eof_sent && c->chan_eof && buf_len(c->to_target) == 0) {
		chan_close(c, "both sides done");
		return 0;
	}
	chan_update_watch(c);
	return more;
}

int
bridge_pump(struct bridge *b, struct sshc *s, int *more)
{
	struct chan *c, *tmp;
	unsigned int closing = 0, limit;

	*more = control_pump(b->a->control, s);
	if (sshc_lib_broken(s))
		return RT_ERR_SSH;	/* no more libssh2 calls */
	TAILQ_FOREACH(c, &b->chans, entry) {
		*more |= chan_service(c, s);
		if (sshc_lib_broken(s))
			return RT_ERR_SSH;
	}

	/* Round-robin: whoever went first this time goes last next time. */
	if ((c = TAILQ_FIRST(&b->chans)) != NULL) {
		TAILQ_REMOVE(&b->chans, c, entry);
		TAILQ_INSERT_TAIL(&b->chans, c, entry);
	}
	for (c = TAILQ_FIRST(&b->chans); c != NULL; c = tmp) {
		tmp = TAILQ_NEXT(c, entry);
		if (c->state == CH_CLOSING)
			closing++;
		if (c->state != CH_DEAD)
			continue;
		TAILQ_REMOVE(&b->chans, c, entry);
		b->nchans--;
		libssh2_channel_free(c->ch);
		chan_destroy(c);
	}
	limit = b->a->cfg->max_channels + BRIDGE_CLOSING_SLACK;
	if (closing > limit) {
		log_err("relay leaves %u channels unclosed (limit %u)",
		    closing, limit);
		return RT_ERR_PROTO;
	}
	return 0;
}

void
bridge_close_service(struct bridge *b, const char *svc, const char *why)
{
	struct chan *c;

	TAILQ_FOREACH(c, &b->chans, entry)
		if (svc == NULL || strcmp(c->svc, svc) == 0)
			chan_close(c, "%s", why);
}

unsigned int
bridge_count(const struct bridge *b)
{
	return b->nchans;
}

void
bridge_log(const struct bridge *b)
{
	static const char *const names[] = {
		"dialing", "open", "closing", "dead"
	};
	const struct chan *c;
	int64_t now = rt_mono_ms();

	TAILQ_FOREACH(c, &b->chans, entry)
		log_info("status: chan %u (%s -> %s): %s, %lld s, %llu bytes "
		    "to target, %llu from target, buffered %zu/%zu%s%s",
		    c->id, c->svc, c->target[0] ? c->target : "-",
		    names[c->state], (long long)((now - c->opened_ms) / 1000),
		    (unsigned long long)c->n_to_target,
		    (unsigned long long)c->n_from_target,
		    c->to_target ? buf_len(c->to_target) : 0,
		    c->from_target ? buf_len(c->from_target) : 0,
		    c->chan_eof ? ", relay EOF" : "",
		    c->target_eof ? ", target EOF" : "");
}
