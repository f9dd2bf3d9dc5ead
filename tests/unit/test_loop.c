/*
 * test_loop.c - unit tests of common/loop.c: level-triggered watches,
 * parking and deleting watches from callbacks, timer order and
 * cancellation, deferred calls, signals through signalfd, SIGPIPE, and
 * freeing a loop that still holds everything (leaks show under ASan).
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "loop.h"
#include "runner.h"
#include "util.h"

int suite_loop(void);

/* Upper bound for anything a test waits for on a slow, busy machine. */
#define WAIT_MS 5000

struct rec {
	int		 calls;
	unsigned int	 last_events;
	int		 order[64];
	int		 norder;
	struct loop_watch *self;
	struct loop_watch *other;
	struct loop_timer *timer;
	int		 fd;
};

/* Runs rounds until *flag reaches want or WAIT_MS passes; returns *flag. */
static int
run_until(struct loop *loop, const int *flag, int want)
{
	int64_t deadline = rt_mono_ms() + WAIT_MS;

	while (*flag < want && rt_mono_ms() < deadline)
		if (loop_run_once(loop, 50) < 0)
			break;
	return *flag;
}

static void
pair(int sv[2])
{
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CU_ASSERT_EQUAL(rt_fd_nonblock(sv[0]), 0);
	CU_ASSERT_EQUAL(rt_fd_nonblock(sv[1]), 0);
}

/* Reads one byte per call: level-triggered means it is called again. */
static void
read_one_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct rec *r = arg;
	char c;

	r->calls++;
	r->last_events = events;
	if (events & LOOP_READ)
		(void)read(fd, &c, 1);
}

static void
test_level_triggered(void)
{
	struct loop *loop;
	struct loop_watch *w;
	struct rec r = { 0 };
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	pair(sv);
	CU_ASSERT_EQUAL(loop_watch_add(loop, sv[0], LOOP_READ, read_one_cb,
	    &r, &w), 0);
	CU_ASSERT_EQUAL(loop_watch_events(w), LOOP_READ);
	/* Nothing readable: no callback. */
	CU_ASSERT_EQUAL(loop_run_once(loop, 0), 0);
	CU_ASSERT_EQUAL(write(sv[1], "abcde", 5), 5);
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 5), 5);
	CU_ASSERT_EQUAL(r.last_events, LOOP_READ);
	/* Drained: no more callbacks. */
	CU_ASSERT_EQUAL(loop_run_once(loop, 0), 0);
	CU_ASSERT_EQUAL(r.calls, 5);
	loop_watch_del(w);
	close(sv[0]);
	close(sv[1]);
	loop_free(loop);
}

static void
test_write_and_park(void)
{
	struct loop *loop;
	struct loop_watch *w;
	struct rec r = { 0 };
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	pair(sv);
	CU_ASSERT_EQUAL(loop_watch_add(loop, sv[0], LOOP_WRITE, read_one_cb,
	    &r, &w), 0);
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 1), 1);
	CU_ASSERT_EQUAL(r.last_events, LOOP_WRITE);

	/* Readable and writable, but parked: no callbacks, still counted. */
	CU_ASSERT_EQUAL(write(sv[1], "x", 1), 1);
	CU_ASSERT_EQUAL(loop_watch_set(w, 0), 0);
	CU_ASSERT_EQUAL(loop_watch_events(w), 0);
	r.calls = 0;
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(loop_run_once(loop, 0), 0);
	CU_ASSERT_EQUAL(r.calls, 0);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 1);

	/* Unparked: the pending byte is reported. */
	CU_ASSERT_EQUAL(loop_watch_set(w, LOOP_READ), 0);
	CU_ASSERT_EQUAL(loop_watch_set(w, LOOP_READ), 0);	/* unchanged */
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 1), 1);
	CU_ASSERT_EQUAL(r.last_events, LOOP_READ);

	/* Parked watch whose peer is gone still hears about it. */
	CU_ASSERT_EQUAL(loop_watch_set(w, 0), 0);
	r.calls = 0;
	close(sv[1]);
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 1), 1);
	CU_ASSERT_EQUAL(r.last_events, LOOP_ERROR);
	loop_watch_del(w);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	close(sv[0]);
	loop_free(loop);
}

/* Deletes the other watch; whichever of the pair runs first wins. */
static void
del_other_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct rec *r = arg;

	r->calls++;
	loop_watch_del(r->other);
	r->other = NULL;
}

static void
test_del_other_in_round(void)
{
	struct loop *loop;
	struct loop_watch *wa, *wb;
	struct rec ra, rb;
	int a[2], b[2], n;

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	pair(a);
	pair(b);
	CU_ASSERT_EQUAL(write(a[1], "1", 1), 1);
	CU_ASSERT_EQUAL(write(b[1], "2", 1), 1);
	memset(&ra, 0, sizeof(ra));
	memset(&rb, 0, sizeof(rb));
	CU_ASSERT_EQUAL_FATAL(loop_watch_add(loop, a[0], LOOP_READ,
	    del_other_cb, &ra, &wa), 0);
	CU_ASSERT_EQUAL_FATAL(loop_watch_add(loop, b[0], LOOP_READ,
	    del_other_cb, &rb, &wb), 0);
	ra.other = wb;
	rb.other = wa;
	/* Both are ready before the round: epoll returns both together. */
	n = loop_run_once(loop, WAIT_MS);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(ra.calls + rb.calls, 1);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 1);
	/* The survivor keeps working (level-triggered, byte unread). */
	CU_ASSERT_EQUAL(loop_run_once(loop, WAIT_MS), 1);
	CU_ASSERT_EQUAL(ra.calls + rb.calls, 2);
	if (ra.calls == 2)
		loop_watch_del(wa);
	else
		loop_watch_del(wb);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	loop_free(loop);
}

/*
 * Deletes and closes the other ready watch's fd, then watches a new fd
 * that (lowest free number) reuses it: the event epoll already returned
 * for the old watch must reach neither the old nor the new one.
 */
struct reuse {
	struct loop_watch *w[2];
	int		 fds[2][2];
	int		 calls[3];
	int		 newfd[2];
	struct loop_watch *nw;
};

static void
reuse_new_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct reuse *u = arg;

	u->calls[2]++;
}

static void
reuse_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct reuse *u = arg;
	int me = fd == u->fds[0][0] ? 0 : 1, other = 1 - me;

	u->calls[me]++;
	if (u->w[other] == NULL)
		return;
	loop_watch_del(u->w[other]);
	u->w[other] = NULL;
	close(u->fds[other][0]);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, u->newfd) != 0)
		return;
	/* Readable, so a misrouted stale event would call reuse_new_cb. */
	(void)write(u->newfd[1], "n", 1);
	if (loop_watch_add(loop, u->newfd[0], LOOP_READ, reuse_new_cb, u,
	    &u->nw) != 0)
		u->nw = NULL;
}

static void
test_del_reuse_fd(void)
{
	struct loop *loop;
	struct reuse u;
	int reused, gone;

	memset(&u, 0, sizeof(u));
	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	pair(u.fds[0]);
	pair(u.fds[1]);
	CU_ASSERT_EQUAL(write(u.fds[0][1], "1", 1), 1);
	CU_ASSERT_EQUAL(write(u.fds[1][1], "2", 1), 1);
	CU_ASSERT_EQUAL_FATAL(loop_watch_add(loop, u.fds[0][0], LOOP_READ,
	    reuse_cb, &u, &u.w[0]), 0);
	CU_ASSERT_EQUAL_FATAL(loop_watch_add(loop, u.fds[1][0], LOOP_READ,
	    reuse_cb, &u, &u.w[1]), 0);
	CU_ASSERT_EQUAL(loop_run_once(loop, WAIT_MS), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u.nw);
	gone = u.w[0] == NULL ? 0 : 1;
	reused = u.fds[gone][0] == u.newfd[0];
	CU_ASSERT(reused);
	CU_ASSERT_EQUAL(u.calls[gone], 0);
	CU_ASSERT_EQUAL(u.calls[2], 0);
	/* Next round the new watch works normally. */
	CU_ASSERT_EQUAL(loop_run_once(loop, WAIT_MS), 2);
	CU_ASSERT_EQUAL(u.calls[2], 1);
	loop_watch_del(u.nw);
	loop_watch_del(u.w[1 - gone]);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	close(u.fds[1 - gone][0]);
	close(u.fds[0][1]);
	close(u.fds[1][1]);
	close(u.newfd[0]);
	close(u.newfd[1]);
	loop_free(loop);
}

static void
del_self_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct rec *r = arg;

	r->calls++;
	loop_watch_del(r->self);
	/* Deleting twice in the same round is harmless. */
	loop_watch_del(r->self);
}

static void
test_del_self(void)
{
	struct loop *loop;
	struct rec r = { 0 };
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	pair(sv);
	CU_ASSERT_EQUAL(write(sv[1], "x", 1), 1);
	CU_ASSERT_EQUAL(loop_watch_add(loop, sv[0], LOOP_READ | LOOP_WRITE,
	    del_self_cb, &r, &r.self), 0);
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 1), 1);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	/* Still readable, but gone: never called again. */
	CU_ASSERT_EQUAL(loop_run_once(loop, 0), 0);
	CU_ASSERT_EQUAL(r.calls, 1);
	/* The fd can be watched again. */
	CU_ASSERT_EQUAL(loop_watch_add(loop, sv[0], LOOP_READ, del_self_cb,
	    &r, &r.self), 0);
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 2), 2);
	close(sv[0]);
	close(sv[1]);
	loop_free(loop);
}

struct tctx {
	struct loop	*loop;
	int		 order[1024];
	int		 n;
	struct loop_timer *t[1024];
	int64_t		 due[1024];
	int		 cancelled[1024];
	int		 victim;
	int		 err;
};

struct targ {
	struct tctx	*c;
	int		 id;
};

static void
order_cb(struct loop *loop, void *arg)
{
	struct targ *a = arg;

	a->c->t[a->id] = NULL;
	if (a->c->cancelled[a->id])
		a->c->err++;
	if (a->c->n < (int)RT_ARRAY_SIZE(a->c->order))
		a->c->order[a->c->n] = a->id;
	a->c->n++;
}

/* Adds the timers from inside a round, so they share one base time. */
static void
add_order_timers(struct loop *loop, void *arg)
{
	static const int64_t delays[] = { 30, 10, 20, 10, 0 };
	struct targ *a = arg;

	for (int i = 0; i < 5; i++) {
		if (loop_timer_add(loop, delays[i], order_cb, &a[i],
		    &a[i].c->t[i]) != 0)
			a[0].c->err++;
	}
}

static void
test_timer_order(void)
{
	static struct tctx c;
	struct targ a[5];
	static const int want[] = { 4, 1, 3, 2, 0 };
	int64_t start;

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL_FATAL(loop_new(&c.loop), 0);
	for (int i = 0; i < 5; i++) {
		a[i].c = &c;
		a[i].id = i;
	}
	CU_ASSERT_EQUAL(loop_defer(c.loop, add_order_timers, a), 0);
	start = rt_mono_ms();
	CU_ASSERT_EQUAL(loop_run_once(c.loop, 0), 1);
	CU_ASSERT_EQUAL(loop_timer_count(c.loop), 5);
	CU_ASSERT_EQUAL(run_until(c.loop, &c.n, 5), 5);
	CU_ASSERT_EQUAL(c.err, 0);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(c.order[i], want[i]);
	/* Not early: the 30 ms timer cannot fire before 30 ms. */
	CU_ASSERT(rt_mono_ms() - start >= 30);
	CU_ASSERT_EQUAL(loop_timer_count(c.loop), 0);
	loop_free(c.loop);
}

/* Timer 0 cancels timer c->victim, due in the same round. */
static void
cancel_victim_cb(struct loop *loop, void *arg)
{
	struct targ *a = arg;

	order_cb(loop, arg);
	loop_timer_cancel(a->c->t[a->c->victim]);
	a->c->cancelled[a->c->victim] = 1;
	a->c->t[a->c->victim] = NULL;
}

static void
test_timer_cancel_same_round(void)
{
	static struct tctx c;
	struct targ a[2];

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL_FATAL(loop_new(&c.loop), 0);
	for (int i = 0; i < 2; i++) {
		a[i].c = &c;
		a[i].id = i;
	}
	c.victim = 1;
	CU_ASSERT_EQUAL(loop_timer_add(c.loop, 1, cancel_victim_cb, &a[0],
	    &c.t[0]), 0);
	CU_ASSERT_EQUAL(loop_timer_add(c.loop, 2, order_cb, &a[1], &c.t[1]),
	    0);
	/* Both are due by the time the next round looks. */
	usleep(20 * 1000);
	CU_ASSERT_EQUAL(loop_run_once(c.loop, 0), 1);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_EQUAL(c.order[0], 0);
	CU_ASSERT_EQUAL(loop_timer_count(c.loop), 0);
	CU_ASSERT_EQUAL(loop_run_once(c.loop, 10), 0);
	CU_ASSERT_EQUAL(c.err, 0);
	loop_free(c.loop);
}

static void
cancel_self_cb(struct loop *loop, void *arg)
{
	struct rec *r = arg;

	r->calls++;
	loop_timer_cancel(r->timer);
	loop_timer_cancel(r->timer);
	r->timer = NULL;
}

static void
test_timer_cancel_self(void)
{
	struct loop *loop;
	struct rec r = { 0 };

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	CU_ASSERT_EQUAL(loop_timer_add(loop, 0, cancel_self_cb, &r, &r.timer),
	    0);
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 1), 1);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	CU_ASSERT_EQUAL(loop_run_once(loop, 10), 0);
	CU_ASSERT_EQUAL(r.calls, 1);
	/* Cancel outside any round frees at once; NULL is a no-op. */
	CU_ASSERT_EQUAL(loop_timer_add(loop, 1000, cancel_self_cb, &r,
	    &r.timer), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 1);
	loop_timer_cancel(r.timer);
	loop_timer_cancel(NULL);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	loop_free(loop);
}

/* Re-arms itself with delay 0: must fire once per round, not spin (the
 * cap turns a spinning loop into a failed assert rather than a hang). */
static void
rearm_cb(struct loop *loop, void *arg)
{
	struct rec *r = arg;

	if (++r->calls >= 100)
		return;
	if (loop_timer_add(loop, 0, rearm_cb, r, NULL) != 0)
		r->fd = -1;
}

static void
test_timer_zero_next_round(void)
{
	struct loop *loop;
	struct rec r = { 0 };

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	CU_ASSERT_EQUAL(loop_timer_add(loop, 0, rearm_cb, &r, NULL), 0);
	for (int i = 1; i <= 3; i++) {
		CU_ASSERT_EQUAL(loop_run_once(loop, WAIT_MS), 1);
		CU_ASSERT_EQUAL(r.calls, i);
		CU_ASSERT_EQUAL(loop_timer_count(loop), 1);
	}
	CU_ASSERT_EQUAL(r.fd, 0);
	loop_free(loop);	/* the pending timer is freed */
}

/*
 * Many timers added in one round with pseudo-random delays, a third of
 * them cancelled: the rest fire in (deadline, creation) order, none of the
 * cancelled ones fires. Exercises removal from the middle of the heap.
 */
static void
add_many_cb(struct loop *loop, void *arg)
{
	struct targ *a = arg;
	struct tctx *c = a[0].c;
	uint32_t x = 12345;

	for (int i = 0; i < 1000; i++) {
		x = x * 1103515245u + 12345u;
		c->due[i] = (x >> 16) % 40;
		if (loop_timer_add(loop, c->due[i], order_cb, &a[i], &c->t[i]))
			c->err++;
	}
	for (int i = 0; i < 1000; i += 3) {
		loop_timer_cancel(c->t[i]);
		c->cancelled[i] = 1;
	}
}

static void
test_timer_heap(void)
{
	static struct tctx c;
	static struct targ a[1000];
	int sorted = 1;

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL_FATAL(loop_new(&c.loop), 0);
	for (int i = 0; i < 1000; i++) {
		a[i].c = &c;
		a[i].id = i;
	}
	CU_ASSERT_EQUAL(loop_defer(c.loop, add_many_cb, a), 0);
	CU_ASSERT_EQUAL(loop_run_once(c.loop, 0), 1);
	CU_ASSERT_EQUAL(loop_timer_count(c.loop), 666);
	CU_ASSERT_EQUAL(run_until(c.loop, &c.n, 666), 666);
	CU_ASSERT_EQUAL(c.err, 0);
	for (int i = 1; i < 666; i++) {
		int p = c.order[i - 1], q = c.order[i];

		if (c.due[p] > c.due[q] || (c.due[p] == c.due[q] && p > q))
			sorted = 0;
	}
	CU_ASSERT(sorted);
	CU_ASSERT_EQUAL(loop_timer_count(c.loop), 0);
	loop_free(c.loop);
}

struct dctx {
	int	 seq[16];
	int	 n;
	int	 chain;
};

static void
defer_mark_cb(struct loop *loop, void *arg)
{
	struct dctx *d = arg;

	if (d->n < 16)
		d->seq[d->n++] = 2;
	if (d->chain > 0) {
		d->chain--;
		(void)loop_defer(loop, defer_mark_cb, d);
	}
}

static void
io_defers_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct dctx *d = arg;

	if (d->n < 16)
		d->seq[d->n++] = 1;
	(void)loop_defer(loop, defer_mark_cb, d);
	/* Still in the io phase: the deferred call has not run yet. */
	if (d->n < 16)
		d->seq[d->n++] = 3;
}

static void
test_defer(void)
{
	struct loop *loop;
	struct loop_watch *w;
	struct dctx d = { { 0 }, 0, 2 };
	int sv[2];
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	pair(sv);
	CU_ASSERT_EQUAL(loop_watch_add(loop, sv[0], LOOP_WRITE, io_defers_cb,
	    &d, &w), 0);
	/* Round 1: io callback, then its deferred call after it. */
	CU_ASSERT_EQUAL(loop_run_once(loop, WAIT_MS), 2);
	loop_watch_del(w);
	CU_ASSERT_EQUAL(d.n, 3);
	CU_ASSERT_EQUAL(d.seq[0], 1);
	CU_ASSERT_EQUAL(d.seq[1], 3);
	CU_ASSERT_EQUAL(d.seq[2], 2);
	/* The chained deferred calls run one per round, and a pending one
	 * keeps epoll from sleeping even when asked to wait forever. */
	t0 = rt_mono_ms();
	CU_ASSERT_EQUAL(loop_timer_add(loop, WAIT_MS, defer_mark_cb, &d,
	    NULL), 0);
	CU_ASSERT_EQUAL(loop_run_once(loop, -1), 1);
	CU_ASSERT_EQUAL(d.n, 4);
	CU_ASSERT_EQUAL(loop_run_once(loop, -1), 1);
	CU_ASSERT_EQUAL(d.n, 5);
	CU_ASSERT(rt_mono_ms() - t0 < WAIT_MS / 2);
	/* Chain ended: nothing left but the guard timer. */
	CU_ASSERT_EQUAL(loop_run_once(loop, 0), 0);
	CU_ASSERT_EQUAL(d.n, 5);
	close(sv[0]);
	close(sv[1]);
	loop_free(loop);
}

static void
sig_cb(struct loop *loop, int signo, void *arg)
{
	struct rec *r = arg;

	r->calls++;
	r->fd = signo;
}

static void
test_signal(void)
{
	struct loop *loop;
	struct rec r = { 0 };
	sigset_t before, cur;

	CU_ASSERT_EQUAL(sigprocmask(SIG_BLOCK, NULL, &before), 0);
	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	CU_ASSERT_EQUAL_FATAL(loop_signal_add(loop, SIGUSR1, sig_cb, &r), 0);
	CU_ASSERT_EQUAL(loop_signal_add(loop, SIGUSR1, sig_cb, &r),
	    RT_ERR_EXISTS);
	CU_ASSERT_EQUAL(loop_signal_add(loop, SIGKILL, sig_cb, &r),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(loop_signal_add(loop, SIGUSR2, sig_cb, &r), 0);
	CU_ASSERT_EQUAL(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
	CU_ASSERT(sigismember(&cur, SIGUSR1));
	CU_ASSERT_EQUAL(raise(SIGUSR1), 0);
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 1), 1);
	CU_ASSERT_EQUAL(r.fd, SIGUSR1);
	CU_ASSERT_EQUAL(raise(SIGUSR2), 0);
	CU_ASSERT_EQUAL(run_until(loop, &r.calls, 2), 2);
	CU_ASSERT_EQUAL(r.fd, SIGUSR2);
	/* The signalfd is not a watch. */
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	/* Queued but never dispatched: loop_free must swallow it, or the
	 * default action would end this process. */
	CU_ASSERT_EQUAL(raise(SIGUSR1), 0);
	loop_free(loop);
	CU_ASSERT_EQUAL(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
	/* The mask is back as it was (normally: both unblocked). */
	CU_ASSERT_EQUAL(sigismember(&cur, SIGUSR1),
	    sigismember(&before, SIGUSR1));
	CU_ASSERT_EQUAL(sigismember(&cur, SIGUSR2),
	    sigismember(&before, SIGUSR2));
}

static void
test_sigpipe_ignored(void)
{
	struct loop *loop;
	struct sigaction sa;
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	CU_ASSERT_EQUAL(sigaction(SIGPIPE, NULL, &sa), 0);
	CU_ASSERT(sa.sa_handler == SIG_IGN);
	pair(sv);
	close(sv[1]);
	/* Plain write(2), no MSG_NOSIGNAL: only SIG_IGN saves us. */
	errno = 0;
	CU_ASSERT_EQUAL(write(sv[0], "x", 1), -1);
	CU_ASSERT_EQUAL(errno, EPIPE);
	close(sv[0]);
	loop_free(loop);
}

static void
noop_io_cb(struct loop *loop, int fd, unsigned int events, void *arg)
{
}

static void
noop_cb(struct loop *loop, void *arg)
{
	int *n = arg;

	(*n)++;
}

static void
test_counts_and_free(void)
{
	struct loop *loop;
	struct loop_watch *w1, *w2, *dup;
	struct loop_timer *t1;
	int sv[2], fired = 0;

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	pair(sv);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 0);
	CU_ASSERT_EQUAL(loop_watch_add(loop, sv[0], 0, noop_io_cb, NULL, &w1),
	    0);
	CU_ASSERT_EQUAL(loop_watch_add(loop, sv[0], LOOP_READ, noop_io_cb,
	    NULL, &dup), RT_ERR_EXISTS);
	CU_ASSERT_PTR_NULL(dup);
	CU_ASSERT_EQUAL(loop_watch_add(loop, -1, LOOP_READ, noop_io_cb,
	    NULL, &dup), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(loop_watch_add(loop, sv[1], LOOP_READ, noop_io_cb,
	    NULL, &w2), 0);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 2);
	CU_ASSERT_EQUAL(loop_timer_add(loop, 0, noop_cb, &fired, &t1), 0);
	CU_ASSERT_EQUAL(loop_timer_add(loop, 100000, noop_cb, &fired, NULL),
	    0);
	CU_ASSERT_EQUAL(loop_timer_add(loop, INT64_MAX, noop_cb, &fired,
	    NULL), 0);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 3);
	CU_ASSERT_EQUAL(run_until(loop, &fired, 1), 1);
	CU_ASSERT_EQUAL(loop_timer_count(loop), 2);
	loop_watch_del(w1);
	loop_watch_del(NULL);
	CU_ASSERT_EQUAL(loop_watch_count(loop), 1);
	CU_ASSERT_EQUAL(loop_defer(loop, noop_cb, &fired), 0);
	/* Freed with a watch, two timers and a deferred call pending:
	 * nothing leaks (ASan), no callback runs. */
	loop_free(loop);
	loop_free(NULL);
	CU_ASSERT_EQUAL(fired, 1);
	close(sv[0]);
	close(sv[1]);
}

static void
stop_cb(struct loop *loop, void *arg)
{
	struct rec *r = arg;

	r->calls++;
	r->fd = loop_run_once(loop, 0);	/* nested: refused */
	loop_stop(loop);
}

static void
test_run_stop(void)
{
	struct loop *loop;
	struct rec r = { 0 };
	int64_t t0;

	CU_ASSERT_EQUAL_FATAL(loop_new(&loop), 0);
	t0 = loop_now(loop);
	CU_ASSERT_EQUAL(loop_timer_add(loop, 20, stop_cb, &r, NULL), 0);
	CU_ASSERT_EQUAL(loop_run(loop), 0);
	CU_ASSERT_EQUAL(r.calls, 1);
	CU_ASSERT_EQUAL(r.fd, RT_ERR_INVAL);
	CU_ASSERT(loop_now(loop) - t0 >= 20);
	loop_free(loop);
}

int
suite_loop(void)
{
	CU_pSuite s = CU_add_suite("loop", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "level-triggered read",
	    test_level_triggered) == NULL ||
	    CU_add_test(s, "write, park, error while parked",
	    test_write_and_park) == NULL ||
	    CU_add_test(s, "delete another ready watch in the round",
	    test_del_other_in_round) == NULL ||
	    CU_add_test(s, "deleted watch's fd reused in the round",
	    test_del_reuse_fd) == NULL ||
	    CU_add_test(s, "delete own watch", test_del_self) == NULL ||
	    CU_add_test(s, "timers fire in deadline order",
	    test_timer_order) == NULL ||
	    CU_add_test(s, "timer cancelled by a timer of the same round",
	    test_timer_cancel_same_round) == NULL ||
	    CU_add_test(s, "timer cancels itself",
	    test_timer_cancel_self) == NULL ||
	    CU_add_test(s, "delay 0 from a timer fires next round",
	    test_timer_zero_next_round) == NULL ||
	    CU_add_test(s, "timer heap order with cancellations",
	    test_timer_heap) == NULL ||
	    CU_add_test(s, "deferred calls", test_defer) == NULL ||
	    CU_add_test(s, "signals through signalfd", test_signal) == NULL ||
	    CU_add_test(s, "SIGPIPE ignored", test_sigpipe_ignored) == NULL ||
	    CU_add_test(s, "counts and free with pending work",
	    test_counts_and_free) == NULL ||
	    CU_add_test(s, "run and stop", test_run_stop) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
