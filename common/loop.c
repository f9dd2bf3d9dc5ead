/*
 * loop.c - the event loop (loop.h): epoll fd watches, a min-heap of
 * one-shot monotonic timers, deferred calls and signals via signalfd.
 *
 * A dispatch round (loop_run_once) is: wait in epoll_wait; refresh the
 * cached clock; call the io callbacks of the watches epoll reported; fire
 * the due timers; run the deferred calls queued before the round's
 * deferred phase; then reap the watches and timers that died in the round.
 *
 * Lifetimes. A live watch is on the loop's watch list and registered in
 * epoll (with events 0 when parked). loop_watch_del() removes it from epoll
 * at once and marks it dead; during a round it goes on the dead list and is
 * freed after the round, so an epoll event already returned for it is seen
 * as dead and skipped. A timer is PENDING while in the heap; when it fires
 * or is cancelled during a round it moves to the dead timer list (FIRING or
 * CANCELLED) and is freed after the round, so a late loop_timer_cancel() on
 * it from another callback in the same round is a harmless no-op.
 *
 * Ordering. Timers fire in (deadline, creation order). A timer created in
 * a round never fires in that round, even with delay 0: it fires in the
 * next one (epoll then waits 0 ms). Deferred calls queued by deferred calls
 * run in the next round, so neither can spin a single round forever.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include "err.h"
#include "loop.h"
#include "util.h"

/* epoll events taken per round; more stay ready for the next round. */
#define LOOP_MAX_EVENTS	256

struct loop_watch {
	struct loop		*loop;
	struct loop_watch	*prev;	/* live list */
	struct loop_watch	*next;	/* live list, or dead list once dead */
	loop_io_cb		 cb;
	void			*arg;
	int			 fd;
	unsigned int		 events;	/* LOOP_READ | LOOP_WRITE asked */
	int			 dead;
};

enum timer_state {
	TIMER_PENDING,
	TIMER_FIRING,
	TIMER_CANCELLED,
};

struct loop_timer {
	struct loop		*loop;
	struct loop_timer	*next;	/* dead list */
	loop_cb			 cb;
	void			*arg;
	int64_t			 deadline;	/* loop_now() ms */
	uint64_t		 seq;		/* creation order, breaks ties */
	size_t			 idx;		/* position in the heap */
	enum timer_state	 state;
};

struct loop_defer {
	struct loop_defer	*next;
	loop_cb			 cb;
	void			*arg;
};

struct loop_sig {
	loop_signal_cb		 cb;
	void			*arg;
};

struct loop {
	int			 epfd;
	int			 in_round;	/* callbacks may be running */
	int			 stop;
	int64_t			 now;

	struct loop_watch	*watches;	/* live */
	struct loop_watch	*dead_watches;	/* freed after the round */
	unsigned int		 nwatches;

	struct loop_timer	**heap;		/* min-heap on (deadline, seq) */
	size_t			 nheap;
	size_t			 heap_cap;
	uint64_t		 timer_seq;
	struct loop_timer	*dead_timers;	/* freed after the round */

	struct loop_defer	*defer_head;	/* FIFO */
	struct loop_defer	*defer_tail;

	int			 sigfd;		/* -1 until a signal is added */
	sigset_t		 sigmask;	/* signals read from sigfd */
	sigset_t		 sig_unblock;	/* blocked by us: unblock at free */
	struct loop_sig		 sigs[_NSIG];

	struct epoll_event	 evs[LOOP_MAX_EVENTS];
};

static uint32_t
to_epoll(unsigned int events)
{
	uint32_t e = 0;

	if (events & LOOP_READ)
		e |= EPOLLIN;
	if (events & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

static unsigned int
from_epoll(uint32_t e)
{
	unsigned int events = 0;

	if (e & EPOLLIN)
		events |= LOOP_READ;
	if (e & EPOLLOUT)
		events |= LOOP_WRITE;
	if (e & (EPOLLERR | EPOLLHUP))
		events |= LOOP_ERROR;
	return events;
}

int
loop_new(struct loop **out)
{
	struct loop *loop;
	struct sigaction sa;

	*out = NULL;
	if ((loop = calloc(1, sizeof(*loop))) == NULL)
		return RT_ERR_NOMEM;
	loop->sigfd = -1;
	sigemptyset(&loop->sigmask);
	sigemptyset(&loop->sig_unblock);
	if ((loop->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		int saved = errno;

		free(loop);
		errno = saved;
		return RT_ERR_SYS;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	/* Cannot fail for a valid signal number and handler. */
	(void)sigaction(SIGPIPE, &sa, NULL);
	loop->now = rt_mono_ms();
	*out = loop;
	return 0;
}

static void
reap(struct loop *loop)
{
	struct loop_watch *w;
	struct loop_timer *t;

	while ((w = loop->dead_watches) != NULL) {
		loop->dead_watches = w->next;
		free(w);
	}
	while ((t = loop->dead_timers) != NULL) {
		loop->dead_timers = t->next;
		free(t);
	}
}

void
loop_free(struct loop *loop)
{
	struct loop_watch *w;
	struct loop_defer *d;
	struct signalfd_siginfo si;
	int saved = errno;

	if (loop == NULL)
		return;
	reap(loop);
	while ((w = loop->watches) != NULL) {
		loop->watches = w->next;
		free(w);
	}
	for (size_t i = 0; i < loop->nheap; i++)
		free(loop->heap[i]);
	free(loop->heap);
	while ((d = loop->defer_head) != NULL) {
		loop->defer_head = d->next;
		free(d);
	}
	if (loop->sigfd >= 0) {
		/* Swallow signals still queued: once unblocked they would get
		 * their default action (SIGTERM, SIGUSR1: exit). */
		while (read(loop->sigfd, &si, sizeof(si)) == sizeof(si))
			;
		close(loop->sigfd);
		sigprocmask(SIG_UNBLOCK, &loop->sig_unblock, NULL);
	}
	close(loop->epfd);
	free(loop);
	errno = saved;
}

int
loop_watch_add(struct loop *loop, int fd, unsigned int events,
	       loop_io_cb cb, void *arg, struct loop_watch **out)
{
	struct loop_watch *w;
	struct epoll_event ev;

	*out = NULL;
	if (fd < 0 || cb == NULL)
		return RT_ERR_INVAL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return RT_ERR_NOMEM;
	w->loop = loop;
	w->fd = fd;
	w->events = events & (LOOP_READ | LOOP_WRITE);
	w->cb = cb;
	w->arg = arg;
	memset(&ev, 0, sizeof(ev));
	ev.events = to_epoll(w->events);
	ev.data.ptr = w;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int saved = errno;

		free(w);
		errno = saved;
		return saved == EEXIST ? RT_ERR_EXISTS : RT_ERR_SYS;
	}
	w->next = loop->watches;
	if (loop->watches != NULL)
		loop->watches->prev = w;
	loop->watches = w;
	loop->nwatches++;
	*out = w;
	return 0;
}

int
loop_watch_set(struct loop_watch *w, unsigned int events)
{
	struct epoll_event ev;

	events &= LOOP_READ | LOOP_WRITE;
	if (w->dead || events == w->events)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = to_epoll(events);
	ev.data.ptr = w;
	if (epoll_ctl(w->loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return RT_ERR_SYS;
	w->events = events;
	return 0;
}

unsigned int
loop_watch_events(const struct loop_watch *w)
{
	return w->events;
}

void
loop_watch_del(struct loop_watch *w)
{
	struct loop *loop;

	if (w == NULL || w->dead)
		return;
	loop = w->loop;
	/* Fails with EBADF if the owner closed the fd first; the kernel has
	 * then dropped the registration itself (unless the fd was dup'ed). */
	(void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		loop->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	loop->nwatches--;
	w->dead = 1;
	w->events = 0;
	if (!loop->in_round) {
		free(w);
		return;
	}
	w->prev = NULL;
	w->next = loop->dead_watches;
	loop->dead_watches = w;
}

/* Timer heap ordered on (deadline, seq); each timer knows its index. */

static int
timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->seq < b->seq;
}

static void
heap_place(struct loop *loop, size_t i, struct loop_timer *t)
{
	loop->heap[i] = t;
	t->idx = i;
}

static void
heap_up(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!timer_before(t, loop->heap[parent]))
			break;
		heap_place(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_place(loop, i, t);
}

static void
heap_down(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];
	size_t n = loop->nheap;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && timer_before(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!timer_before(loop->heap[c], t))
			break;
		heap_place(loop, i, loop->heap[c]);
		i = c;
	}
	heap_place(loop, i, t);
}

static void
heap_remove(struct loop *loop, struct loop_timer *t)
{
	size_t i = t->idx;
	struct loop_timer *last = loop->heap[--loop->nheap];

	if (last == t)
		return;
	heap_place(loop, i, last);
	if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

int
loop_timer_add(struct loop *loop, int64_t delay_ms, loop_cb cb, void *arg,
	       struct loop_timer **out)
{
	struct loop_timer *t;
	int64_t base;

	if (out != NULL)
		*out = NULL;
	if (cb == NULL)
		return RT_ERR_INVAL;
	if (loop->nheap == loop->heap_cap) {
		size_t ncap = loop->heap_cap ? loop->heap_cap * 2 : 16;
		struct loop_timer **nheap;

		if (ncap > SIZE_MAX / sizeof(*nheap) ||
		    (nheap = realloc(loop->heap, ncap * sizeof(*nheap))) == NULL)
			return RT_ERR_NOMEM;
		loop->heap = nheap;
		loop->heap_cap = ncap;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return RT_ERR_NOMEM;
	base = loop_now(loop);
	if (delay_ms < 0)
		delay_ms = 0;
	t->loop = loop;
	t->cb = cb;
	t->arg = arg;
	t->deadline = delay_ms > INT64_MAX - base ? INT64_MAX : base + delay_ms;
	t->seq = loop->timer_seq++;
	t->state = TIMER_PENDING;
	loop->nheap++;
	heap_place(loop, loop->nheap - 1, t);
	heap_up(loop, loop->nheap - 1);
	if (out != NULL)
		*out = t;
	return 0;
}

void
loop_timer_cancel(struct loop_timer *t)
{
	struct loop *loop;

	if (t == NULL || t->state != TIMER_PENDING)
		return;
	loop = t->loop;
	heap_remove(loop, t);
	t->state = TIMER_CANCELLED;
	if (!loop->in_round) {
		free(t);
		return;
	}
	t->next = loop->dead_timers;
	loop->dead_timers = t;
}

int
loop_defer(struct loop *loop, loop_cb cb, void *arg)
{
	struct loop_defer *d;

	if (cb == NULL)
		return RT_ERR_INVAL;
	if ((d = malloc(sizeof(*d))) == NULL)
		return RT_ERR_NOMEM;
	d->next = NULL;
	d->cb = cb;
	d->arg = arg;
	if (loop->defer_tail != NULL)
		loop->defer_tail->next = d;
	else
		loop->defer_head = d;
	loop->defer_tail = d;
	return 0;
}

int
loop_signal_add(struct loop *loop, int signo, loop_signal_cb cb, void *arg)
{
	sigset_t one, old, mask;
	struct epoll_event ev;
	int fd, saved;

	if (signo <= 0 || signo >= _NSIG || signo == SIGKILL ||
	    signo == SIGSTOP || cb == NULL)
		return RT_ERR_INVAL;
	if (loop->sigs[signo].cb != NULL)
		return RT_ERR_EXISTS;
	sigemptyset(&one);
	sigaddset(&one, signo);
	if (sigprocmask(SIG_BLOCK, &one, &old) < 0)
		return RT_ERR_SYS;
	mask = loop->sigmask;
	sigaddset(&mask, signo);
	if ((fd = signalfd(loop->sigfd, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		goto fail;
	if (loop->sigfd < 0) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = NULL;	/* NULL marks the signalfd */
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			saved = errno;
			close(fd);
			errno = saved;
			goto fail;
		}
		loop->sigfd = fd;
	}
	loop->sigmask = mask;
	if (!sigismember(&old, signo))
		sigaddset(&loop->sig_unblock, signo);
	loop->sigs[signo].cb = cb;
	loop->sigs[signo].arg = arg;
	return 0;
 fail:
	saved = errno;
	if (!sigismember(&old, signo))
		sigprocmask(SIG_UNBLOCK, &one, NULL);
	errno = saved;
	return RT_ERR_SYS;
}

/* Reads every queued signal and calls its callback; returns the count. */
static int
dispatch_signals(struct loop *loop)
{
	struct signalfd_siginfo si[8];
	ssize_t n;
	int ncb = 0;

	for (;;) {
		n = read(loop->sigfd, si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
			int signo = (int)si[i].ssi_signo;

			if (signo <= 0 || signo >= _NSIG ||
			    loop->sigs[signo].cb == NULL)
				continue;
			loop->sigs[signo].cb(loop, signo, loop->sigs[signo].arg);
			ncb++;
		}
	}
	return ncb;
}

/* Milliseconds epoll_wait may sleep: until the next timer, capped by
 * max_wait_ms (-1 = no cap), 0 if deferred calls are queued. */
static int
wait_ms(struct loop *loop, int max_wait_ms)
{
	int64_t ms = max_wait_ms;

	if (loop->defer_head != NULL)
		return 0;
	if (loop->nheap > 0) {
		int64_t d = loop->heap[0]->deadline - rt_mono_ms();

		if (d < 0)
			d = 0;
		if (ms < 0 || d < ms)
			ms = d;
	}
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int
loop_run_once(struct loop *loop, int max_wait_ms)
{
	struct loop_defer *d;
	uint64_t seq_limit;
	int n, ncb = 0;

	if (loop->in_round)
		return RT_ERR_INVAL;
	n = epoll_wait(loop->epfd, loop->evs, LOOP_MAX_EVENTS,
	    wait_ms(loop, max_wait_ms));
	if (n < 0) {
		if (errno != EINTR)
			return RT_ERR_SYS;
		n = 0;
	}
	loop->in_round = 1;
	loop->now = rt_mono_ms();
	seq_limit = loop->timer_seq;

	for (int i = 0; i < n; i++) {
		struct loop_watch *w = loop->evs[i].data.ptr;
		unsigned int ev;

		if (w == NULL) {
			ncb += dispatch_signals(loop);
			continue;
		}
		if (w->dead)
			continue;
		/* Mask with what is asked now: an earlier callback in this
		 * round may have parked the watch. */
		ev = from_epoll(loop->evs[i].events) &
		    (w->events | LOOP_ERROR);
		if (ev == 0)
			continue;
		w->cb(loop, w->fd, ev, w->arg);
		ncb++;
	}

	/* One at a time, re-reading the top: a callback may cancel or add
	 * timers. Timers created in this round wait for the next one. */
	while (loop->nheap > 0) {
		struct loop_timer *t = loop->heap[0];

		if (t->deadline > loop->now || t->seq >= seq_limit)
			break;
		heap_remove(loop, t);
		t->state = TIMER_FIRING;
		t->next = loop->dead_timers;
		loop->dead_timers = t;
		t->cb(loop, t->arg);
		ncb++;
	}

	/* Only the calls queued so far; new ones run next round. */
	d = loop->defer_head;
	loop->defer_head = loop->defer_tail = NULL;
	while (d != NULL) {
		struct loop_defer *next = d->next;

		d->cb(loop, d->arg);
		free(d);
		ncb++;
		d = next;
	}

	reap(loop);
	loop->in_round = 0;
	return ncb;
}

int
loop_run(struct loop *loop)
{
	int r = 0;

	while (!loop->stop) {
		if ((r = loop_run_once(loop, -1)) < 0)
			break;
		r = 0;
	}
	loop->stop = 0;
	return r;
}

void
loop_stop(struct loop *loop)
{
	loop->stop = 1;
}

int64_t
loop_now(const struct loop *loop)
{
	return loop->in_round ? loop->now : rt_mono_ms();
}

unsigned int
loop_watch_count(const struct loop *loop)
{
	return loop->nwatches;
}

unsigned int
loop_timer_count(const struct loop *loop)
{
	return (unsigned int)loop->nheap;
}
