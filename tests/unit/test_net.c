/*
 * test_net.c - unit tests of common/net.c on loopback: connect over IPv4,
 * IPv6, "localhost" and a multi-address name whose first address refuses;
 * refused, unresolvable and timed-out connects; name lookups that hang
 * (timeout, cancel before the answer, the cap on lookups in progress, the
 * loop kept running meanwhile); cancel; listen on "*", "[::1]" and a taken
 * port; accept; address formatting and socket options.
 *
 * Ports are always picked by the kernel (port 0); waits poll the loop with
 * a bounded deadline. A resolver that hangs is made by interposing
 * getaddrinfo() in this program: names under ".slow.test" block until the
 * test opens the gate, then resolve to 127.0.0.1 (so a late answer is a
 * real list that someone must free: LeakSanitizer/valgrind check that).
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <dlfcn.h>
#include <pthread.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "loop.h"
#include "net.h"
#include "runner.h"
#include "util.h"

int suite_net(void);

#define WAIT_MS 5000

/* The hanging resolver's gate (see the file comment). */
static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static int slow_open;		/* 1: slow lookups may return */
static int slow_inflight;	/* lookups blocked in the gate */

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *,
		      struct addrinfo **);

static int
is_slow_name(const char *node)
{
	size_t n = node != NULL ? strlen(node) : 0;

	return n > 10 && strcmp(node + n - 10, ".slow.test") == 0;
}

/* Interposes libc's getaddrinfo() for this program (net.c calls it). */
int
getaddrinfo(const char *node, const char *service,
	    const struct addrinfo *hints, struct addrinfo **res)
{
	gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");

	if (real == NULL)
		return EAI_SYSTEM;
	/* net.c's numeric-only probe must not wait: it fails at once */
	if (is_slow_name(node) &&
	    (hints == NULL || (hints->ai_flags & AI_NUMERICHOST) == 0)) {
		/* Polls the gate, bounded so a broken test cannot hang the
		 * run. */
		int64_t end = rt_mono_ms() + 2 * WAIT_MS;
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		int open;

		pthread_mutex_lock(&slow_mu);
		slow_inflight++;
		pthread_mutex_unlock(&slow_mu);
		do {
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&slow_mu);
			open = slow_open;
			pthread_mutex_unlock(&slow_mu);
		} while (!open && rt_mono_ms() < end);
		pthread_mutex_lock(&slow_mu);
		slow_inflight--;
		pthread_mutex_unlock(&slow_mu);
		node = "127.0.0.1";
	}
	return real(node, service, hints, res);
}

static int
slow_count(void)
{
	int n;

	pthread_mutex_lock(&slow_mu);
	n = slow_inflight;
	pthread_mutex_unlock(&slow_mu);
	return n;
}

/* Opens the gate, waits (bounded) until every slow lookup has left it
 * and, unless fds < 0, every lookup is freed and the fd count is back to
 * fds; then closes the gate again. Returns 1 on success. */
static int count_fds(void);

static int
slow_release(int fds)
{
	int64_t end = rt_mono_ms() + WAIT_MS;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int ok;

	pthread_mutex_lock(&slow_mu);
	slow_open = 1;
	pthread_mutex_unlock(&slow_mu);
	while ((slow_count() > 0 || (fds >= 0 && (net_lookups_alive() > 0 ||
		count_fds() != fds))) && rt_mono_ms() < end)
		nanosleep(&ts, NULL);
	ok = slow_count() == 0 && (fds < 0 || (net_lookups_alive() == 0 &&
	    count_fds() == fds));
	pthread_mutex_lock(&slow_mu);
	slow_open = 0;
	pthread_mutex_unlock(&slow_mu);
	return ok;
}

/* Waits (bounded) until no resolver thread is left from earlier tests. */
static int
lookups_settle(void)
{
	int64_t end = rt_mono_ms() + WAIT_MS;
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	while (net_lookups_alive() > 0 && rt_mono_ms() < end)
		nanosleep(&ts, NULL);
	return net_lookups_alive() == 0;
}

/* Waits (bounded) until n lookups are blocked in the gate. */
static int
slow_wait_inflight(int n)
{
	int64_t end = rt_mono_ms() + WAIT_MS;
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	while (slow_count() < n && rt_mono_ms() < end)
		nanosleep(&ts, NULL);
	return slow_count() == n;
}

struct result {
	int calls;
	int fd;
	int err;
	char msg[256];
};

static void
result_cb(int fd, int err, const char *msg, void *arg)
{
	struct result *res = arg;

	res->calls++;
	res->fd = fd;
	res->err = err;
	snprintf(res->msg, sizeof(res->msg), "%s", msg != NULL ? msg : "");
}

/* Runs the loop until res has a result or WAIT_MS pass. */
static void
wait_result(struct loop *loop, struct result *res)
{
	int64_t end = rt_mono_ms() + WAIT_MS;

	while (res->calls == 0 && rt_mono_ms() < end)
		loop_run_once(loop, 50);
}

/* Accepts from lfd, polling up to WAIT_MS. */
static int
accept_wait(int lfd, struct sockaddr_storage *peer, socklen_t *len)
{
	int64_t end = rt_mono_ms() + WAIT_MS;
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	int fd;

	while ((fd = net_accept(lfd, peer, len)) == RT_ERR_AGAIN &&
	       rt_mono_ms() < end)
		poll(&p, 1, 50);
	return fd;
}

static int
is_nonblock_cloexec(int fd)
{
	return (fcntl(fd, F_GETFL) & O_NONBLOCK) &&
	    (fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Listens on one address with a kernel-picked port; returns the fd. */
static int
listen_one(const char *addr, int backlog, char *port, size_t portlen)
{
	int fds[4];
	size_t n = 0;
	char msg[256];

	if (net_listen(addr, "0", backlog, fds, 4, &n, msg, sizeof(msg)) != 0)
		return -1;
	if (n != 1) {
		while (n > 0)
			close(fds[--n]);
		return -1;
	}
	snprintf(port, portlen, "%d", net_local_port(fds[0]));
	return fds[0];
}

static int
have_ipv6(void)
{
	char port[16];
	int fd = listen_one("::1", 1, port, sizeof(port));

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* Connects to host:port through the loop and expects success, peer seen
 * on lfd. */
static void
connect_ok(const char *host, const char *port, int family, int lfd)
{
	struct loop *loop = NULL;
	struct result res = { 0 };
	struct net_connect *c = NULL;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	char local[NET_ADDRSTRLEN], seen[NET_ADDRSTRLEN];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int afd;

	CU_ASSERT_FATAL(loop_new(&loop) == 0);
	CU_ASSERT_EQUAL(net_connect_start(loop, host, port, family, 2000,
					  result_cb, &res, &c), 0);
	CU_ASSERT_PTR_NOT_NULL(c);
	CU_ASSERT_EQUAL(res.calls, 0);	/* never from inside the call */
	wait_result(loop, &res);
	CU_ASSERT_EQUAL(res.calls, 1);
	CU_ASSERT_EQUAL(res.err, 0);
	CU_ASSERT(res.fd >= 0);
	if (res.fd >= 0) {
		CU_ASSERT(is_nonblock_cloexec(res.fd));
		afd = accept_wait(lfd, &peer, &plen);
		CU_ASSERT(afd >= 0);
		if (afd >= 0) {
			CU_ASSERT(is_nonblock_cloexec(afd));
			/* the accepted peer is our connected socket */
			CU_ASSERT(getsockname(res.fd, (struct sockaddr *)&ss,
					      &sl) == 0);
			net_addr_str((struct sockaddr *)&ss, local,
				     sizeof(local));
			net_peer_str(afd, seen, sizeof(seen));
			CU_ASSERT_STRING_EQUAL(seen, local);
			net_addr_str((struct sockaddr *)&peer, seen,
				     sizeof(seen));
			CU_ASSERT_STRING_EQUAL(seen, local);
			close(afd);
		}
		close(res.fd);
	}
	/* nothing left behind in the loop */
	loop_run_once(loop, 0);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	loop_free(loop);
}

static void
test_connect_v4(void)
{
	char port[16];
	int lfd = listen_one("127.0.0.1", 16, port, sizeof(port));

	CU_ASSERT_FATAL(lfd >= 0);
	connect_ok("127.0.0.1", port, AF_UNSPEC, lfd);
	connect_ok("127.0.0.1", port, AF_INET, lfd);
	close(lfd);
}

static void
test_connect_v6(void)
{
	char port[16];
	int lfd;

	if (!have_ipv6()) {
		fprintf(stderr, "(no IPv6 loopback: skipped) ");
		return;
	}
	lfd = listen_one("[::1]", 16, port, sizeof(port));
	CU_ASSERT_FATAL(lfd >= 0);
	connect_ok("::1", port, AF_UNSPEC, lfd);
	connect_ok("::1", port, AF_INET6, lfd);
	close(lfd);
}

/*
 * A name with several addresses whose first refuses: only the last
 * address's family listens. "localhost" has one address on some hosts, so
 * fall back to the null host, which getaddrinfo() resolves to both
 * loopback addresses.
 */
static void
test_connect_fallback(void)
{
	static const char *const names[] = { "localhost", NULL };
	struct addrinfo hints, *list = NULL, *ai, *last = NULL;
	char addr[NET_ADDRSTRLEN], host[NET_ADDRSTRLEN], port[16];
	size_t i, count = 0;
	int lfd;

	if (!have_ipv6()) {
		fprintf(stderr, "(no IPv6 loopback: skipped) ");
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	for (i = 0; i < RT_ARRAY_SIZE(names); i++) {
		if (getaddrinfo(names[i], "1", &hints, &list) != 0)
			continue;
		count = 0;
		for (ai = list; ai != NULL; ai = ai->ai_next) {
			count++;
			last = ai;
		}
		if (count >= 2 && list->ai_family != last->ai_family)
			break;
		freeaddrinfo(list);
		list = NULL;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(list);
	net_host_str(last->ai_addr, host, sizeof(host));
	net_host_str(list->ai_addr, addr, sizeof(addr));
	lfd = listen_one(host, 16, port, sizeof(port));
	CU_ASSERT_FATAL(lfd >= 0);
	/* the first address must refuse: nothing of its family listens */
	connect_ok(names[i], port, AF_UNSPEC, lfd);
	close(lfd);
	freeaddrinfo(list);
}

/* A port that refuses: bound (so nobody else takes it) but not
 * listening. */
static int
refusing_port(const char *addr, int family, char *port, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		inet_pton(AF_INET, addr,
			  &((struct sockaddr_in *)&ss)->sin_addr);
	else
		inet_pton(AF_INET6, addr,
			  &((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, family == AF_INET ?
			   sizeof(struct sockaddr_in) :
			   sizeof(struct sockaddr_in6)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(port, len, "%d", net_local_port(fd));
	return fd;
}

/* Starts a connect expected to fail with want; checks the message. */
static void
connect_fail(const char *host, const char *port, int64_t timeout_ms,
	     int want, const char *want_msg)
{
	struct loop *loop = NULL;
	struct result res = { 0 };

	CU_ASSERT_FATAL(loop_new(&loop) == 0);
	CU_ASSERT_EQUAL(net_connect_start(loop, host, port, AF_UNSPEC,
					  timeout_ms, result_cb, &res, NULL),
			0);
	CU_ASSERT_EQUAL(res.calls, 0);
	wait_result(loop, &res);
	CU_ASSERT_EQUAL(res.calls, 1);
	CU_ASSERT_EQUAL(res.err, want);
	CU_ASSERT_EQUAL(res.fd, -1);
	if (strncmp(res.msg, want_msg, strlen(want_msg)) != 0) {
		fprintf(stderr, "\n  got: %s\n  want: %s\n", res.msg,
			want_msg);
		CU_FAIL(want_msg);
	}
	loop_run_once(loop, 0);
	CU_ASSERT_EQUAL(res.calls, 1);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	loop_free(loop);
}

static void
test_connect_refused(void)
{
	char port[16], want[128];
	int fd = refusing_port("127.0.0.1", AF_INET, port, sizeof(port));

	CU_ASSERT_FATAL(fd >= 0);
	snprintf(want, sizeof(want), "connect 127.0.0.1:%s: %s", port,
		 strerror(ECONNREFUSED));
	connect_fail("127.0.0.1", port, 2000, RT_ERR_REFUSED, want);
	close(fd);

	if (have_ipv6()) {
		fd = refusing_port("::1", AF_INET6, port, sizeof(port));
		CU_ASSERT_FATAL(fd >= 0);
		snprintf(want, sizeof(want), "connect [::1]:%s: %s", port,
			 strerror(ECONNREFUSED));
		connect_fail("::1", port, 2000, RT_ERR_REFUSED, want);
		close(fd);
	}
}

static void
test_connect_resolve(void)
{
	connect_fail("no-such-host.invalid", "22", 2000, RT_ERR_RESOLVE,
		     "resolve no-such-host.invalid: ");
	connect_fail("127.0.0.1", "no-such-service-name", 2000,
		     RT_ERR_RESOLVE, "resolve 127.0.0.1: ");
}

/*
 * A listener that never accepts and has a full accept queue drops new
 * SYNs, so a connect to it neither succeeds nor fails until our timer.
 * Returns the listening fd and fills fillers[] with the sockets that fill
 * its queue (closed by the caller), or -1 if the queue never filled.
 */
static int
silent_listener(char *port, size_t len, int *fillers, size_t max,
		size_t *nfill)
{
	struct sockaddr_in sin;
	struct pollfd p;
	int lfd = listen_one("127.0.0.1", 0, port, len);
	int fd;

	*nfill = 0;
	if (lfd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)net_local_port(lfd));
	while (*nfill < max) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    0);
		if (fd < 0)
			break;
		fillers[(*nfill)++] = fd;
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			continue;
		if (errno != EINPROGRESS)
			break;
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, 200) == 0)
			return lfd;	/* this SYN was dropped: full */
	}
	close(lfd);
	return -1;
}

static void
test_connect_timeout(void)
{
	char port[16], want[128];
	int fillers[64];
	size_t nfill, i;
	int64_t t0, dt;
	int lfd = silent_listener(port, sizeof(port), fillers, 64, &nfill);

	if (lfd < 0) {
		for (i = 0; i < nfill; i++)
			close(fillers[i]);
		CU_FAIL("could not fill a listener's accept queue");
		return;
	}
	snprintf(want, sizeof(want), "connect 127.0.0.1:%s: timed out after "
		 "300 ms", port);
	t0 = rt_mono_ms();
	connect_fail("127.0.0.1", port, 300, RT_ERR_TIMEOUT, want);
	dt = rt_mono_ms() - t0;
	CU_ASSERT(dt >= 290);
	CU_ASSERT(dt < WAIT_MS);
	for (i = 0; i < nfill; i++)
		close(fillers[i]);
	close(lfd);
}

static void
test_connect_cancel(void)
{
	struct loop *loop = NULL;
	struct result res = { 0 };
	struct net_connect *c = NULL, *c2 = NULL;
	char port[16];
	int fillers[64], fds_before, lfd;
	size_t nfill, i;
	int64_t end;

	CU_ASSERT_FATAL(loop_new(&loop) == 0);
	CU_ASSERT(lookups_settle());
	fds_before = count_fds();

	/* pending: a watch, a timer and a socket to give back */
	lfd = silent_listener(port, sizeof(port), fillers, 64, &nfill);
	if (lfd >= 0) {
		CU_ASSERT_EQUAL(net_connect_start(loop, "127.0.0.1", port,
						  AF_INET, 10000, result_cb,
						  &res, &c), 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c);
		CU_ASSERT_EQUAL(loop_watch_count(loop), 1);
		CU_ASSERT_EQUAL(loop_timer_count(loop), 1);
		CU_ASSERT_EQUAL(count_fds(), fds_before + (int)nfill + 2);
		loop_run_once(loop, 10);
		net_connect_cancel(c);
		CU_ASSERT_EQUAL(count_fds(), fds_before + (int)nfill + 1);
		for (i = 0; i < nfill; i++)
			close(fillers[i]);
		close(lfd);
	} else {
		for (i = 0; i < nfill; i++)
			close(fillers[i]);
		CU_FAIL("could not fill a listener's accept queue");
	}

	/* result already known (numeric host, unknown service) but not yet
	 * delivered */
	CU_ASSERT_EQUAL(net_connect_start(loop, "127.0.0.1",
					  "no-such-service-name", AF_UNSPEC,
					  1000, result_cb, &res, &c2), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 1);
	net_connect_cancel(c2);
	net_connect_cancel(NULL);

	/* a real lookup, cancelled at once (its thread may or may not have
	 * answered yet: both must end with nothing left) */
	c2 = NULL;
	CU_ASSERT_EQUAL(net_connect_start(loop, "no-such-host.invalid", "1",
					  AF_UNSPEC, 1000, result_cb, &res,
					  &c2), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	net_connect_cancel(c2);

	end = rt_mono_ms() + 200;
	while (rt_mono_ms() < end)
		loop_run_once(loop, 20);
	CU_ASSERT_EQUAL(res.calls, 0);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	CU_ASSERT(lookups_settle());
	CU_ASSERT_EQUAL(count_fds(), fds_before);
	loop_free(loop);
}

/* A name (not a numeric address) resolved by the resolver thread. */
static void
test_connect_localhost(void)
{
	char port[16];
	int lfd = listen_one("127.0.0.1", 16, port, sizeof(port));

	CU_ASSERT_FATAL(lfd >= 0);
	connect_ok("localhost", port, AF_INET, lfd);
	close(lfd);
}

static void
tick_cb(struct loop *loop, void *arg)
{
	(*(int *)arg)++;
}

/*
 * Lookups that hang: the lookup bound, the loop running meanwhile (a
 * timer fires, a numeric connect completes), cancel while the thread is
 * still inside getaddrinfo() (the late answer is freed by the thread), a
 * slow answer that does arrive, and the cap on lookups in progress.
 */
static void
test_resolve_slow(void)
{
	struct loop *loop = NULL;
	struct result res = { 0 }, res2 = { 0 };
	struct net_connect *c = NULL, *many[NET_LOOKUPS_MAX];
	char port[16], want[128];
	int fds0, lfd, afd, ticks = 0;
	int64_t t0, dt;
	size_t i;

	CU_ASSERT_FATAL(loop_new(&loop) == 0);
	lfd = listen_one("127.0.0.1", 64, port, sizeof(port));
	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT(lookups_settle());
	fds0 = count_fds();

	/* bounded: timeout_ms (300) is below NET_RESOLVE_TIMEOUT_MS */
	t0 = rt_mono_ms();
	CU_ASSERT_EQUAL(net_connect_start(loop, "a.slow.test", port,
					  AF_UNSPEC, 300, result_cb, &res,
					  NULL), 0);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 1);	/* the eventfd */
	CU_ASSERT_EQUAL(loop_timer_count(loop), 1);	/* the bound */
	CU_ASSERT(slow_wait_inflight(1));
	wait_result(loop, &res);
	dt = rt_mono_ms() - t0;
	CU_ASSERT_EQUAL(res.calls, 1);
	CU_ASSERT_EQUAL(res.err, RT_ERR_RESOLVE);
	CU_ASSERT_EQUAL(res.fd, -1);
	CU_ASSERT_STRING_EQUAL(res.msg,
			       "resolve a.slow.test: timed out after 300 ms");
	CU_ASSERT(dt >= 290 && dt < WAIT_MS);
	loop_run_once(loop, 0);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	CU_ASSERT_EQUAL(slow_count(), 1);	/* the thread still waits */
	CU_ASSERT(slow_release(fds0));		/* ... and cleans up */

	/* the loop runs while a lookup hangs; cancel before the answer */
	memset(&res, 0, sizeof(res));
	CU_ASSERT_EQUAL(net_connect_start(loop, "b.slow.test", port,
					  AF_UNSPEC, 10000, result_cb, &res,
					  &c), 0);
	CU_ASSERT(slow_wait_inflight(1));
	CU_ASSERT_EQUAL(loop_timer_add(loop, 20, tick_cb, &ticks, NULL), 0);
	CU_ASSERT_EQUAL(net_connect_start(loop, "127.0.0.1", port, AF_INET,
					  2000, result_cb, &res2, NULL), 0);
	wait_result(loop, &res2);
	CU_ASSERT_EQUAL(res2.err, 0);
	CU_ASSERT(res2.fd >= 0);
	t0 = rt_mono_ms();
	while (ticks == 0 && rt_mono_ms() - t0 < WAIT_MS)
		loop_run_once(loop, 50);
	CU_ASSERT_EQUAL(ticks, 1);
	CU_ASSERT_EQUAL(res.calls, 0);
	CU_ASSERT_EQUAL(slow_count(), 1);
	net_connect_cancel(c);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	if (res2.fd >= 0)
		close(res2.fd);
	afd = accept_wait(lfd, NULL, NULL);
	CU_ASSERT(afd >= 0);
	if (afd >= 0)
		close(afd);
	CU_ASSERT(slow_release(fds0));
	loop_run_once(loop, 50);
	CU_ASSERT_EQUAL(res.calls, 0);

	/* a slow answer that arrives in time connects */
	memset(&res, 0, sizeof(res));
	CU_ASSERT_EQUAL(net_connect_start(loop, "c.slow.test", port,
					  AF_UNSPEC, 10000, result_cb, &res,
					  NULL), 0);
	CU_ASSERT(slow_wait_inflight(1));
	loop_run_once(loop, 50);
	CU_ASSERT_EQUAL(res.calls, 0);
	CU_ASSERT(slow_release(-1));
	wait_result(loop, &res);
	CU_ASSERT_EQUAL(res.calls, 1);
	CU_ASSERT_EQUAL(res.err, 0);
	CU_ASSERT(res.fd >= 0);
	if (res.fd >= 0)
		close(res.fd);
	afd = accept_wait(lfd, NULL, NULL);
	CU_ASSERT(afd >= 0);
	if (afd >= 0)
		close(afd);

	/* the cap: one lookup too many fails at once, named */
	for (i = 0; i < NET_LOOKUPS_MAX; i++) {
		many[i] = NULL;
		CU_ASSERT_EQUAL(net_connect_start(loop, "d.slow.test", port,
						  AF_UNSPEC, 10000, result_cb,
						  &res2, &many[i]), 0);
	}
	CU_ASSERT(slow_wait_inflight(NET_LOOKUPS_MAX));
	memset(&res, 0, sizeof(res));
	CU_ASSERT_EQUAL(net_connect_start(loop, "e.slow.test", port,
					  AF_UNSPEC, 10000, result_cb, &res,
					  NULL), 0);
	wait_result(loop, &res);
	CU_ASSERT_EQUAL(res.err, RT_ERR_RESOLVE);
	snprintf(want, sizeof(want), "resolve e.slow.test: too many lookups "
		 "in progress");
	CU_ASSERT_STRING_EQUAL(res.msg, want);
	for (i = 0; i < NET_LOOKUPS_MAX; i++)
		net_connect_cancel(many[i]);
	CU_ASSERT(slow_release(fds0));

	loop_run_once(loop, 0);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	close(lfd);
	loop_free(loop);
}

static void
test_listen_any(void)
{
	int fds[4], on = 0;
	size_t n = 9, i, v6 = 0;
	socklen_t sl = sizeof(on);
	char msg[256];
	struct sockaddr_storage ss;
	socklen_t ssl;

	CU_ASSERT_EQUAL_FATAL(net_listen("*", "0", 8, fds, 4, &n, msg,
					 sizeof(msg)), 0);
	if (have_ipv6())
		CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT(n >= 1);
	for (i = 0; i < n; i++) {
		CU_ASSERT(is_nonblock_cloexec(fds[i]));
		/* port 0 becomes one port for all families */
		CU_ASSERT_EQUAL(net_local_port(fds[i]),
				net_local_port(fds[0]));
		CU_ASSERT(net_local_port(fds[i]) > 0);
		ssl = sizeof(ss);
		CU_ASSERT(getsockname(fds[i], (struct sockaddr *)&ss,
				      &ssl) == 0);
		if (ss.ss_family == AF_INET6) {
			v6++;
			CU_ASSERT(getsockopt(fds[i], IPPROTO_IPV6, IPV6_V6ONLY,
					     &on, &sl) == 0);
			CU_ASSERT_EQUAL(on, 1);
		}
		CU_ASSERT_EQUAL(net_accept(fds[i], NULL, NULL), RT_ERR_AGAIN);
	}
	if (n == 2)
		CU_ASSERT_EQUAL(v6, 1);
	for (i = 0; i < n; i++)
		close(fds[i]);

	/* NULL means the same; max 1 keeps only one */
	CU_ASSERT_EQUAL(net_listen(NULL, "0", 8, fds, 1, &n, NULL, 0), 0);
	CU_ASSERT_EQUAL(n, 1);
	close(fds[0]);
}

static void
test_listen_errors(void)
{
	char port[16], msg[256], want[128];
	int fds[4];
	size_t n = 7;
	int lfd = listen_one("127.0.0.1", 4, port, sizeof(port));

	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT_EQUAL(net_listen("127.0.0.1", port, 4, fds, 4, &n, msg,
				   sizeof(msg)), RT_ERR_SYS);
	CU_ASSERT_EQUAL(n, 0);
	snprintf(want, sizeof(want), "bind 127.0.0.1:%s: %s", port,
		 strerror(EADDRINUSE));
	CU_ASSERT_STRING_EQUAL(msg, want);
	close(lfd);

	CU_ASSERT_EQUAL(net_listen("127.0.0.1", "no-such-service-name", 4,
				   fds, 4, &n, msg, sizeof(msg)),
			RT_ERR_RESOLVE);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "no-such-service-name"));
}

static void
test_accept(void)
{
	char port[16];
	int lfd = listen_one("127.0.0.1", 4, port, sizeof(port));
	struct sockaddr_in sin;
	struct sockaddr_storage peer;
	socklen_t plen = 0;
	int cfd, afd;

	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT_EQUAL(net_accept(lfd, &peer, &plen), RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(net_accept(lfd, NULL, NULL), RT_ERR_AGAIN);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)atoi(port));
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(cfd >= 0);
	CU_ASSERT_FATAL(connect(cfd, (struct sockaddr *)&sin,
				sizeof(sin)) == 0);
	afd = accept_wait(lfd, &peer, &plen);
	CU_ASSERT(afd >= 0);
	CU_ASSERT_EQUAL(plen, sizeof(struct sockaddr_in));
	CU_ASSERT_EQUAL(peer.ss_family, AF_INET);
	CU_ASSERT_EQUAL(net_accept(lfd, NULL, NULL), RT_ERR_AGAIN);
	if (afd >= 0)
		close(afd);
	close(cfd);
	close(lfd);
	errno = 0;
	CU_ASSERT_EQUAL(net_accept(lfd, NULL, NULL), RT_ERR_SYS);
	CU_ASSERT_EQUAL(errno, EBADF);
}

static void
test_addr_str(void)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	char buf[NET_ADDRSTRLEN], small[8];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(80);
	inet_pton(AF_INET, "1.2.3.4", &sin.sin_addr);
	net_addr_str((struct sockaddr *)&sin, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.2.3.4:80");
	net_host_str((struct sockaddr *)&sin, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "1.2.3.4");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(65535);
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	net_addr_str((struct sockaddr *)&sin6, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "[::1]:65535");
	net_host_str((struct sockaddr *)&sin6, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "::1");

	/* the longest form fits NET_ADDRSTRLEN */
	inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
		  &sin6.sin6_addr);
	net_addr_str((struct sockaddr *)&sin6, buf, sizeof(buf));
	CU_ASSERT(strlen(buf) < NET_ADDRSTRLEN);
	CU_ASSERT_EQUAL(buf[0], '[');
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "]:65535"));

	/* short buffers are cut, never overrun */
	memset(small, 'Z', sizeof(small));
	net_addr_str((struct sockaddr *)&sin, small, sizeof(small));
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
	CU_ASSERT_NSTRING_EQUAL(small, "1.2.3.4", 7);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	net_addr_str((struct sockaddr *)&sun, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "unix");
	net_addr_str(NULL, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "?");

	net_peer_str(-1, buf, sizeof(buf));
	CU_ASSERT(strncmp(buf, "(unknown peer", 13) == 0);
}

static int
get_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t sl = sizeof(v);

	if (getsockopt(fd, level, name, &v, &sl) < 0)
		return -2;
	return v;
}

static void
test_sockopts(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char port[16];
	int lfd;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(net_set_keepalive(fd, 30, 10, 3), 0);
	CU_ASSERT(get_int(fd, SOL_SOCKET, SO_KEEPALIVE) != 0);
	CU_ASSERT_EQUAL(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
	CU_ASSERT_EQUAL(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 10);
	CU_ASSERT_EQUAL(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
	CU_ASSERT_EQUAL(net_set_keepalive(fd, 0, 10, 3), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(net_set_user_timeout(fd, 45000), 0);
	CU_ASSERT_EQUAL(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 45000);
	CU_ASSERT_EQUAL(net_set_nodelay(fd), 0);
	CU_ASSERT(get_int(fd, IPPROTO_TCP, TCP_NODELAY) != 0);
	CU_ASSERT_EQUAL(net_local_port(fd), 0);		/* unbound */
	close(fd);
	CU_ASSERT_EQUAL(net_set_nodelay(fd), RT_ERR_SYS);
	CU_ASSERT_EQUAL(net_local_port(fd), -1);
	CU_ASSERT_EQUAL(net_local_port(-1), -1);

	lfd = listen_one("127.0.0.1", 1, port, sizeof(port));
	CU_ASSERT_FATAL(lfd >= 0);
	CU_ASSERT(net_local_port(lfd) > 0);
	CU_ASSERT_EQUAL(net_local_port(lfd), atoi(port));
	close(lfd);
}

int
suite_net(void)
{
	CU_pSuite s = CU_add_suite("net", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "connect v4", test_connect_v4) == NULL ||
	    CU_add_test(s, "connect v6", test_connect_v6) == NULL ||
	    CU_add_test(s, "connect fallback", test_connect_fallback) == NULL ||
	    CU_add_test(s, "connect refused", test_connect_refused) == NULL ||
	    CU_add_test(s, "connect resolve", test_connect_resolve) == NULL ||
	    CU_add_test(s, "connect timeout", test_connect_timeout) == NULL ||
	    CU_add_test(s, "connect cancel", test_connect_cancel) == NULL ||
	    CU_add_test(s, "connect localhost", test_connect_localhost) ==
	    NULL ||
	    CU_add_test(s, "resolve slow", test_resolve_slow) == NULL ||
	    CU_add_test(s, "listen any", test_listen_any) == NULL ||
	    CU_add_test(s, "listen errors", test_listen_errors) == NULL ||
	    CU_add_test(s, "accept", test_accept) == NULL ||
	    CU_add_test(s, "addr str", test_addr_str) == NULL ||
	    CU_add_test(s, "sockopts", test_sockopts) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
