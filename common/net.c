/*
 * net.c - TCP sockets (net.h): the non-blocking multi-address connect state
 * machine, name resolution off the loop, listening sockets, accept, address
 * formatting and socket options.
 *
 * A net_connect goes through three states:
 *   resolving   a numeric host is converted inside net_connect_start()
 *               (AI_NUMERICHOST); any other name is looked up by
 *               getaddrinfo() in a detached resolver thread (struct
 *               lookup), which wakes the loop through the lookup's
 *               eventfd; a timer bounds the wait;
 *   connecting  walking the getaddrinfo() list in order: fd open, watched
 *               for LOOP_WRITE, timer armed, for one address at a time;
 *   done        list exhausted or one address connected; the result is
 *               handed to the callback and the handle freed.
 * Results found inside net_connect_start() itself (numeric host that
 * fails, every address refused synchronously, an immediate connect) are
 * delivered from a zero-delay loop timer rather than loop_defer(), because
 * a timer can be cancelled: net_connect_cancel() must be able to free the
 * handle at any time, and a pending deferred call would still hold a
 * pointer to it.
 *
 * A lookup is shared by the loop thread (through its net_connect) and the
 * resolver thread, each holding one reference under the lookup's mutex.
 * The thread only touches the lookup, never the loop. Whoever drops the
 * last reference frees the lookup, its eventfd and any result: a lookup
 * abandoned by cancel or by the timeout is freed by its thread when
 * getaddrinfo() finally returns (glibc bounds that by resolv.conf's
 * timeout x attempts x nameservers). At most NET_LOOKUPS_MAX threads run
 * at once in the process, so a resolver that hangs for minutes costs a
 * bounded number of threads.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "util.h"

#define NET_LOOKUP_STACK (256 * 1024)	/* resolver thread stack */
#define NET_MSGLEN 384

/* Resolver threads alive in the process (running or abandoned); see
 * NET_LOOKUPS_MAX. The one process-wide counter: threads are a process
 * resource, whichever loop started them. */
static atomic_uint lookups_alive;

/* One getaddrinfo() call run by a resolver thread. */
struct lookup {
	pthread_mutex_t mu;	/* guards refs and the result fields */
	unsigned int refs;	/* loop side + thread side */
	int done_fd;		/* eventfd, thread -> loop: result ready */
	char *host;		/* owned copies, read by the thread */
	char *port;
	struct addrinfo hints;
	int gai;		/* result: getaddrinfo() return value */
	int sys_errno;		/* errno after it, for EAI_SYSTEM */
	struct addrinfo *res;	/* result list until taken by the loop */
};

struct net_connect {
	struct loop *loop;
	net_connect_cb cb;
	void *arg;
	struct addrinfo *ai_list;	/* owned; freed with the handle */
	struct addrinfo *ai_next;	/* next address to try */
	int64_t timeout_ms;		/* per address; <= 0 = kernel's */
	struct lookup *lk;		/* pending lookup (loop's reference) */
	struct loop_watch *lk_w;	/* lk->done_fd, LOOP_READ */
	int64_t resolve_ms;		/* bound on the lookup */
	char host[256];			/* as given, for messages */
	int fd;				/* connecting socket, or -1 */
	char addr[NET_ADDRSTRLEN];	/* address fd is connecting to */
	struct loop_watch *w;		/* fd, LOOP_WRITE */
	struct loop_timer *timer;	/* per-address timeout or delivery */
	int err;			/* last failure */
	char msg[NET_MSGLEN];		/* and what it was */
};

static void conn_try_next(struct net_connect *c);

static int
errno_to_rt(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return RT_ERR_REFUSED;
	case ETIMEDOUT:
		return RT_ERR_TIMEOUT;
	default:
		return RT_ERR_SYS;
	}
}

/* Closes the fd of the current attempt and drops its watch and timer. */
static void
conn_drop_attempt(struct net_connect *c)
{
	loop_watch_del(c->w);
	c->w = NULL;
	loop_timer_cancel(c->timer);
	c->timer = NULL;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

static void
lookup_free(struct lookup *lk)
{
	if (lk->res != NULL)
		freeaddrinfo(lk->res);
	close(lk->done_fd);
	pthread_mutex_destroy(&lk->mu);
	free(lk->host);
	free(lk->port);
	free(lk);
	atomic_fetch_sub(&lookups_alive, 1);
}

/* Drops one reference; the last one frees the lookup. */
static void
lookup_release(struct lookup *lk)
{
	unsigned int left;

	pthread_mutex_lock(&lk->mu);
	left = --lk->refs;
	pthread_mutex_unlock(&lk->mu);
	if (left == 0)
		lookup_free(lk);
}

static void *
lookup_thread(void *arg)
{
	struct lookup *lk = arg;
	struct addrinfo *res = NULL;
	uint64_t one = 1;
	int gai, e;

	gai = getaddrinfo(lk->host, lk->port, &lk->hints, &res);
	e = errno;
	pthread_mutex_lock(&lk->mu);
	lk->gai = gai;
	lk->sys_errno = e;
	lk->res = gai == 0 ? res : NULL;
	/* Under the lock, so the loop side cannot free done_fd meanwhile.
	 * An 8-byte eventfd write only fails if the counter would overflow,
	 * which one write cannot do. Nothing is logged from this thread:
	 * the log module belongs to the loop's thread. */
	if (write(lk->done_fd, &one, sizeof(one)) < 0)
		lk->sys_errno = errno;
	pthread_mutex_unlock(&lk->mu);
	lookup_release(lk);
	return NULL;
}

/* Starts a resolver thread for host:port. Returns 0 and *out holding the
 * loop's reference, or RT_ERR_NOMEM / RT_ERR_LIMIT / RT_ERR_SYS (errno
 * set). */
static int
lookup_start(const char *host, const char *port,
	     const struct addrinfo *hints, struct lookup **out)
{
	struct lookup *lk;
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all, old;
	int e;

	*out = NULL;
	if (atomic_fetch_add(&lookups_alive, 1) >= NET_LOOKUPS_MAX) {
		atomic_fetch_sub(&lookups_alive, 1);
		return RT_ERR_LIMIT;
	}
	if ((lk = calloc(1, sizeof(*lk))) == NULL) {
		atomic_fetch_sub(&lookups_alive, 1);
		return RT_ERR_NOMEM;
	}
	lk->done_fd = -1;
	lk->hints = *hints;
	lk->host = strdup(host);
	lk->port = port != NULL ? strdup(port) : NULL;
	if (lk->host == NULL || (port != NULL && lk->port == NULL)) {
		e = ENOMEM;
		goto fail;
	}
	if ((lk->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		e = errno;
		goto fail;
	}
	if ((e = pthread_mutex_init(&lk->mu, NULL)) != 0)
		goto fail;
	lk->refs = 2;
	if ((e = pthread_attr_init(&attr)) != 0) {
		pthread_mutex_destroy(&lk->mu);
		goto fail;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* not the 8 MiB default: 32 lookups would reserve 256 MiB of
	 * address space, which a memory limit (RLIMIT_AS) may refuse */
	(void)pthread_attr_setstacksize(&attr, NET_LOOKUP_STACK);
	/* The thread must never take a signal meant for the loop's
	 * signalfd or handlers: start it with every signal blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&tid, &attr, lookup_thread, lk);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		pthread_mutex_destroy(&lk->mu);
		goto fail;
	}
	*out = lk;
	return 0;
 fail:
	if (lk->done_fd >= 0)
		close(lk->done_fd);
	free(lk->host);
	free(lk->port);
	free(lk);
	atomic_fetch_sub(&lookups_alive, 1);
	errno = e;
	return e == ENOMEM ? RT_ERR_NOMEM : RT_ERR_SYS;
}

/* Lets go of a pending lookup; its thread frees it if still running. */
static void
conn_drop_lookup(struct net_connect *c)
{
	loop_watch_del(c->lk_w);
	c->lk_w = NULL;
	if (c->lk != NULL)
		lookup_release(c->lk);
	c->lk = NULL;
}

static void
conn_free(struct net_connect *c)
{
	conn_drop_lookup(c);
	conn_drop_attempt(c);
	if (c->ai_list != NULL)
		freeaddrinfo(c->ai_list);
	free(c);
}

/* Hands the result to the callback (fd ownership passes) and frees c. */
static void
conn_finish(struct net_connect *c)
{
	int fd = c->fd;
	int err = fd >= 0 ? 0 : c->err;

	loop_watch_del(c->w);
	c->w = NULL;
	loop_timer_cancel(c->timer);
	c->timer = NULL;
	c->fd = -1;
	if (fd >= 0)
		log_debug("connected to %s", c->addr);
	c->cb(fd, err, err != 0 ? c->msg : NULL, c->arg);
	conn_free(c);
}

static void
conn_deliver_cb(struct loop *loop, void *arg)
{
	struct net_connect *c = arg;

	c->timer = NULL;	/* the loop reclaims a fired timer */
	conn_finish(c);
}

/* Records why the current address failed and moves on. */
static void
conn_fail_attempt(struct net_connect *c, int err, const char *what,
		  const char *reason)
{
	c->err = err;
	snprintf(c->msg, sizeof(c->msg), "%s %s: %s", what, c->addr, reason);
	log_debug("%s", c->msg);
	conn_drop_attempt(c);
}

static void
conn_writable_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct net_connect *c = arg;
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr == 0 && (events & LOOP_ERROR) == 0) {
		conn_finish(c);
		return;
	}
	if (soerr == 0)
		soerr = ECONNRESET;	/* error event but no pending error */
	conn_fail_attempt(c, errno_to_rt(soerr), "connect", strerror(soerr));
	conn_try_next(c);
	if (c->w == NULL)
		conn_finish(c);
}

static void
conn_timeout_cb(struct loop *loop, void *arg)
{
	struct net_connect *c = arg;
	char why[64];

	c->timer = NULL;
	snprintf(why, sizeof(why), "timed out after %lld ms",
		 (long long)c->timeout_ms);
	conn_fail_attempt(c, RT_ERR_TIMEOUT, "connect", why);
	conn_try_next(c);
	if (c->w == NULL)
		conn_finish(c);
}

/*
 * Starts connecting to the next address that does not fail at once.
 * Returns with c->w set (in progress), or c->w NULL and the walk over:
 * c->fd >= 0 connected at once, or c->fd == -1 when every address failed
 * (c->err and c->msg say the last reason).
 */
static void
conn_try_next(struct net_connect *c)
{
	struct addrinfo *ai;
	int fd, r;

	while ((ai = c->ai_next) != NULL) {
		c->ai_next = ai->ai_next;
		net_addr_str(ai->ai_addr, c->addr, sizeof(c->addr));
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			conn_fail_attempt(c, RT_ERR_SYS, "socket for",
					  strerror(errno));
			continue;
		}
		c->fd = fd;
		do {
			r = connect(fd, ai->ai_addr, ai->ai_addrlen);
		} while (r < 0 && errno == EINTR);
		if (r == 0)
			return;		/* connected at once */
		if (errno != EINPROGRESS) {
			int e = errno;

			conn_fail_attempt(c, errno_to_rt(e), "connect",
					  strerror(e));
			continue;
		}
		r = loop_watch_add(c->loop, fd, LOOP_WRITE, conn_writable_cb,
				   c, &c->w);
		if (r == 0 && c->timeout_ms > 0)
			r = loop_timer_add(c->loop, c->timeout_ms,
					   conn_timeout_cb, c, &c->timer);
		if (r != 0) {
			conn_fail_attempt(c, r, "connect", rt_strerror(r));
			continue;
		}
		return;
	}
}

/* Records a getaddrinfo() failure as the attempt's result. */
static void
conn_resolve_failed(struct net_connect *c, int gai, int sys_errno)
{
	c->err = RT_ERR_RESOLVE;
	snprintf(c->msg, sizeof(c->msg), "resolve %s: %s", c->host,
		 gai == EAI_SYSTEM ? strerror(sys_errno) : gai_strerror(gai));
}

/* Starts walking a resolved list (owned by c from now on). */
static void
conn_resolved(struct net_connect *c, struct addrinfo *list)
{
	c->ai_list = c->ai_next = list;
	c->err = RT_ERR_RESOLVE;
	snprintf(c->msg, sizeof(c->msg), "resolve %s: no addresses", c->host);
	conn_try_next(c);
}

/* The resolver thread is done: take its result and start connecting. */
static void
conn_lookup_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct net_connect *c = arg;
	struct lookup *lk = c->lk;
	struct addrinfo *list;
	uint64_t n;
	int gai, e;

	if (read(fd, &n, sizeof(n)) < 0 && errno == EAGAIN &&
	    (events & LOOP_ERROR) == 0)
		return;		/* spurious: not written yet */
	pthread_mutex_lock(&lk->mu);
	gai = lk->gai;
	e = lk->sys_errno;
	list = lk->res;
	lk->res = NULL;
	pthread_mutex_unlock(&lk->mu);
	conn_drop_lookup(c);
	loop_timer_cancel(c->timer);	/* the resolve bound */
	c->timer = NULL;
	if (gai != 0)
		conn_resolve_failed(c, gai, e);
	else
		conn_resolved(c, list);
	if (c->w == NULL)
		conn_finish(c);
}

static void
conn_resolve_timeout_cb(struct loop *loop, void *arg)
{
	struct net_connect *c = arg;

	c->timer = NULL;
	conn_drop_lookup(c);	/* the thread frees the late result */
	c->err = RT_ERR_RESOLVE;
	snprintf(c->msg, sizeof(c->msg), "resolve %s: timed out after %lld ms",
		 c->host, (long long)c->resolve_ms);
	log_debug("%s", c->msg);
	conn_finish(c);
}

int
net_connect_start(struct loop *loop, const char *host, const char *port,
		  int family, int64_t timeout_ms, net_connect_cb cb, void *arg,
		  struct net_connect **out)
{
	struct net_connect *c;
	struct addrinfo hints, *list = NULL;
	int r, gai;

	if (out != NULL)
		*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return RT_ERR_NOMEM;
	c->loop = loop;
	c->cb = cb;
	c->arg = arg;
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	c->resolve_ms = timeout_ms > 0 && timeout_ms < NET_RESOLVE_TIMEOUT_MS ?
	    timeout_ms : NET_RESOLVE_TIMEOUT_MS;
	snprintf(c->host, sizeof(c->host), "%s",
		 host != NULL ? host : "(null)");

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	/* No AI_ADDRCONFIG: it hides ::1 on hosts without a global IPv6
	 * address, and a failing address only costs one quick attempt. */
	hints.ai_flags = AI_NUMERICHOST;
	gai = getaddrinfo(host, port, &hints, &list);
	hints.ai_flags = 0;
	if (gai == EAI_NONAME && host != NULL) {
		/* A name: resolve it off the loop. */
		r = lookup_start(host, port, &hints, &c->lk);
		if (r == 0)
			r = loop_watch_add(loop, c->lk->done_fd, LOOP_READ,
					   conn_lookup_cb, c, &c->lk_w);
		if (r == 0)
			r = loop_timer_add(loop, c->resolve_ms,
					   conn_resolve_timeout_cb, c,
					   &c->timer);
		if (r == 0) {
			if (out != NULL)
				*out = c;
			return 0;
		}
		if (r == RT_ERR_NOMEM) {
			conn_free(c);
			return r;
		}
		conn_drop_lookup(c);
		loop_timer_cancel(c->timer);
		c->timer = NULL;
		c->err = RT_ERR_RESOLVE;
		snprintf(c->msg, sizeof(c->msg), "resolve %s: %s", c->host,
			 r == RT_ERR_LIMIT ? "too many lookups in progress" :
			 r == RT_ERR_SYS ? strerror(errno) : rt_strerror(r));
	} else if (gai == EAI_MEMORY) {
		free(c);
		return RT_ERR_NOMEM;
	} else if (gai != 0) {
		conn_resolve_failed(c, gai, errno);
	} else {
		conn_resolved(c, list);
	}

	/* In progress: the watch and timer will finish it. Otherwise the
	 * result is known now but must not reach cb from inside this call. */
	if (c->w == NULL) {
		r = loop_timer_add(loop, 0, conn_deliver_cb, c, &c->timer);
		if (r != 0) {
			conn_free(c);
			return r;
		}
	}
	if (out != NULL)
		*out = c;
	return 0;
}

unsigned int
net_lookups_alive(void)
{
	return atomic_load(&lookups_alive);
}

void
net_connect_cancel(struct net_connect *c)
{
	if (c != NULL)
		conn_free(c);
}

/* Strips "[...]" around an IPv6 literal into buf; returns buf or s. */
static const char *
unbracket(const char *s, char *buf, size_t len)
{
	size_t n;

	if (s == NULL || s[0] != '[')
		return s;
	n = strlen(s);
	if (n < 2 || s[n - 1] != ']' || n - 2 >= len)
		return s;	/* let getaddrinfo reject it */
	memcpy(buf, s + 1, n - 2);
	buf[n - 2] = '\0';
	return buf;
}

static void
set_port(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)(void *)sa)->sin_port = htons(port);
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)(void *)sa)->sin6_port = htons(port);
}

/*
 * One pass of net_listen() over ai. Returns 0, RT_ERR_SYS (errno-style
 * reason in msg), or RT_ERR_EXISTS when port 0 was shared across families
 * and the second family's port was taken (the caller retries).
 */
static int
listen_all(struct addrinfo *ai_list, int share_port, int backlog, int *fds,
	   size_t max, size_t *n, char *msg, size_t msglen)
{
	struct addrinfo *ai;
	char addr[NET_ADDRSTRLEN];
	int fd, on = 1, port = 0, nofamily = 0;
	const char *what;

	for (ai = ai_list; ai != NULL; ai = ai->ai_next) {
		if (*n >= max) {
			log_debug("more than %zu listen addresses; rest "
				  "ignored", max);
			break;
		}
		if (share_port && port > 0)
			set_port(ai->ai_addr, (uint16_t)port);
		net_addr_str(ai->ai_addr, addr, sizeof(addr));
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			if (errno == EAFNOSUPPORT) {
				/* e.g. ipv6.disable=1: keep the other one */
				log_warn("listen %s: %s; skipping this address "
					 "family", addr, strerror(errno));
				nofamily++;
				snprintf(msg, msglen, "socket for %s: %s", addr,
					 strerror(errno));
				continue;
			}
			what = "socket for";
			goto fail;
		}
		what = "setsockopt on";
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
			       sizeof(on)) < 0)
			goto fail_fd;
		if (ai->ai_family == AF_INET6 &&
		    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
			       sizeof(on)) < 0)
			goto fail_fd;
		what = "bind";
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			if (errno == EADDRINUSE && share_port && port > 0) {
				close(fd);
				return RT_ERR_EXISTS;
			}
			goto fail_fd;
		}
		what = "listen on";
		if (listen(fd, backlog) < 0)
			goto fail_fd;
		if (share_port && port == 0)
			port = net_local_port(fd);
		fds[(*n)++] = fd;
	}
	if (*n == 0 && nofamily > 0)
		return RT_ERR_SYS;	/* msg already says why */
	return 0;

 fail_fd:
	{
		int e = errno;

		close(fd);
		errno = e;
	}
 fail:
	snprintf(msg, msglen, "%s %s: %s", what, addr, strerror(errno));
	return RT_ERR_SYS;
}

int
net_listen(const char *addr, const char *port, int backlog, int *fds,
	   size_t max, size_t *n, char *msg, size_t msglen)
{
	struct addrinfo hints, *ai_list = NULL;
	char tmp[NET_ADDRSTRLEN], dummy[1];
	const char *host;
	int gai, r = RT_ERR_SYS, share_port, tries;
	size_t i;

	*n = 0;
	if (msg == NULL || msglen == 0) {
		msg = dummy;
		msglen = sizeof(dummy);
	}
	msg[0] = '\0';
	host = unbracket(addr, tmp, sizeof(tmp));
	if (host != NULL && (*host == '\0' || strcmp(host, "*") == 0))
		host = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	gai = getaddrinfo(host, port, &hints, &ai_list);
	if (gai != 0) {
		snprintf(msg, msglen, "resolve listen address %s port %s: %s",
			 host != NULL ? host : "*", port != NULL ? port : "*",
			 gai == EAI_SYSTEM ? strerror(errno) :
			 gai_strerror(gai));
		return gai == EAI_MEMORY ? RT_ERR_NOMEM : RT_ERR_RESOLVE;
	}
	/* With port 0 and several addresses, give them all the port the
	 * kernel picked for the first, so "*:0" is one port, not two. */
	share_port = (port == NULL || strcmp(port, "0") == 0) &&
	    ai_list->ai_next != NULL;
	for (tries = 0; tries < 5; tries++) {
		r = listen_all(ai_list, share_port, backlog, fds, max, n, msg,
			       msglen);
		if (r == 0)
			break;
		for (i = 0; i < *n; i++)
			close(fds[i]);
		*n = 0;
		if (r != RT_ERR_EXISTS)
			break;
		for (struct addrinfo *ai = ai_list; ai; ai = ai->ai_next)
			set_port(ai->ai_addr, 0);
	}
	if (r == 0)
		msg[0] = '\0';	/* drop a skipped family's reason */
	if (r == RT_ERR_EXISTS) {
		snprintf(msg, msglen, "listen on port 0: no ephemeral port "
			 "free in every address family");
		r = RT_ERR_SYS;
	}
	freeaddrinfo(ai_list);
	return r;
}

int
net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *peerlen)
{
	int fd;

	for (;;) {
		if (peer != NULL && peerlen != NULL)
			*peerlen = sizeof(*peer);
		fd = accept4(lfd, (struct sockaddr *)peer,
			     peer != NULL ? peerlen : NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return RT_ERR_AGAIN;
		/* The pending connection died before we took it, or (per
		 * accept(2) on Linux) a network error already pending on
		 * it: take the next one. */
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case ENETUNREACH:
			continue;
		default:
			return RT_ERR_SYS;
		}
	}
}

static void
format_addr(const struct sockaddr *sa, char *buf, size_t len, int with_port)
{
	char host[INET6_ADDRSTRLEN];

	if (len == 0)
		return;
	if (sa == NULL) {
		rt_strlcpy(buf, "?", len);
		return;
	}
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const void *)sa;

		if (inet_ntop(AF_INET, &sin->sin_addr, host,
			      sizeof(host)) == NULL)
			break;
		if (with_port)
			snprintf(buf, len, "%s:%u", host,
				 (unsigned int)ntohs(sin->sin_port));
		else
			rt_strlcpy(buf, host, len);
		return;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		if (inet_ntop(AF_INET6, &sin6->sin6_addr, host,
			      sizeof(host)) == NULL)
			break;
		if (with_port)
			snprintf(buf, len, "[%s]:%u", host,
				 (unsigned int)ntohs(sin6->sin6_port));
		else
			rt_strlcpy(buf, host, len);
		return;
	}
	case AF_UNIX:
		rt_strlcpy(buf, "unix", len);
		return;
	default:
		break;
	}
	snprintf(buf, len, "(family %d)", (int)sa->sa_family);
}

void
net_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	format_addr(sa, buf, len, 1);
}

void
net_host_str(const struct sockaddr *sa, char *buf, size_t len)
{
	format_addr(sa, buf, len, 0);
}

void
net_peer_str(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int saved = errno;

	memset(&ss, 0, sizeof(ss));
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		if (len > 0)
			snprintf(buf, len, "(unknown peer: %s)",
				 strerror(errno));
	} else {
		net_addr_str((struct sockaddr *)&ss, buf, len);
	}
	errno = saved;
}

static int
set_int_opt(int fd, int level, int name, int val)
{
	if (setsockopt(fd, level, name, &val, sizeof(val)) < 0)
		return RT_ERR_SYS;
	return 0;
}

int
net_set_keepalive(int fd, int idle_s, int intvl_s, int cnt)
{
	int r;

	if (idle_s <= 0 || intvl_s <= 0 || cnt <= 0)
		return RT_ERR_INVAL;
	if ((r = set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) != 0 ||
	    (r = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s)) != 0 ||
	    (r = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, intvl_s)) != 0 ||
	    (r = set_int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, cnt)) != 0)
		return r;
	return 0;
}

int
net_set_user_timeout(int fd, unsigned int ms)
{
	if (ms > (unsigned int)INT32_MAX)
		return RT_ERR_INVAL;
	return set_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, (int)ms);
}

int
net_set_nodelay(int fd)
{
	return set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
}

int
net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}
