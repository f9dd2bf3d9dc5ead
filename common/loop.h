/*
 * loop.h - the event loop both daemons run on.
 *
 * Single-threaded, epoll, level-triggered. Four kinds of event source:
 *  - fd watches: a callback when an fd is readable/writable/in error, for
 *    the events currently asked for (change them at any time);
 *  - one-shot timers on CLOCK_MONOTONIC (millisecond resolution);
 *  - deferred calls: run once, after the current dispatch round;
 *  - signals: delivered through a signalfd as ordinary events.
 *
 * Rules that make callbacks safe:
 *  - any watch or timer may be removed or cancelled from any callback,
 *    including its own; a removed watch gets no further callbacks, even if
 *    epoll already reported it in the current round; a cancelled timer never
 *    fires, even if it was already due;
 *  - memory of removed watches and fired/cancelled timers is reclaimed by
 *    the loop after the round, never while a callback may still hold it;
 *  - a timer handle is valid until its callback starts or it is cancelled;
 *    owners clear their pointer in the callback;
 *  - a timer added during a round (even with delay 0) and a call deferred
 *    by a deferred call run in the next round, never in the current one;
 *  - callbacks must not call loop_free() or loop_run*() on their own loop.
 *
 * Delete a watch before closing its fd: epoll keys on the open file, so
 * an fd closed while still dup'ed (e.g. in a child) would keep reporting
 * events for a watch that no longer exists.
 *
 * A child forked while the loop exists inherits the signals blocked by
 * loop_signal_add() and SIGPIPE ignored: before exec, unblock them and set
 * SIGPIPE back to SIG_DFL.
 *
 * loop_new() ignores SIGPIPE for the whole process: writes to a closed peer
 * fail with EPIPE instead of killing the daemon.
 */
#ifndef RT_LOOP_H
#define RT_LOOP_H

#include <stdint.h>

struct loop;
struct loop_watch;
struct loop_timer;

#define LOOP_READ  0x1u
#define LOOP_WRITE 0x2u
#define LOOP_ERROR 0x4u	/* EPOLLERR or EPOLLHUP; always reported */

typedef void (*loop_io_cb)(struct loop *loop, int fd, unsigned int events,
			   void *arg);
typedef void (*loop_cb)(struct loop *loop, void *arg);
typedef void (*loop_signal_cb)(struct loop *loop, int signo, void *arg);

/* Creates a loop. Returns 0 or RT_ERR_NOMEM / RT_ERR_SYS. */
int loop_new(struct loop **out);

/* Frees the loop and every watch, timer and deferred call still in it
 * (their callbacks are not called). Does not close watched fds. Restores
 * the signal mask of signals it took. NULL is a no-op. */
void loop_free(struct loop *loop);

/*
 * Watches fd for events (LOOP_READ | LOOP_WRITE, may be 0 to park it).
 * The callback gets the ready events among those asked, plus LOOP_ERROR,
 * which is reported even for a parked watch: level-triggered, so a watch
 * in error is called every round until its owner closes or deletes it.
 * The fd must not already be watched. Returns 0 and *out, RT_ERR_EXISTS,
 * RT_ERR_INVAL (fd < 0, cb NULL), RT_ERR_NOMEM or RT_ERR_SYS.
 */
int loop_watch_add(struct loop *loop, int fd, unsigned int events,
		   loop_io_cb cb, void *arg, struct loop_watch **out);

/* Changes the events asked for; cheap (no syscall) when unchanged. Ready
 * events no longer asked for are not delivered, even later in the same
 * round. Returns 0 or RT_ERR_SYS. */
int loop_watch_set(struct loop_watch *w, unsigned int events);

/* Events currently asked for. */
unsigned int loop_watch_events(const struct loop_watch *w);

/* Stops watching (does not close the fd). Safe inside any callback.
 * NULL is a no-op. */
void loop_watch_del(struct loop_watch *w);

/*
 * Calls cb once after delay_ms (>= 0) on the monotonic clock. Returns 0
 * and *out (out may be NULL if the caller never cancels), RT_ERR_NOMEM, or
 * RT_ERR_INVAL if cb is NULL. The delay counts from loop_now(). Timers due together fire in deadline
 * order, then in the order they were added.
 */
int loop_timer_add(struct loop *loop, int64_t delay_ms, loop_cb cb,
		   void *arg, struct loop_timer **out);

/* Cancels a pending timer. Safe inside any callback, including the
 * timer's own (then a no-op). NULL is a no-op. */
void loop_timer_cancel(struct loop_timer *t);

/* Runs cb once after the current dispatch round (before the loop sleeps
 * again). Returns 0, RT_ERR_NOMEM, or RT_ERR_INVAL if cb is NULL. */
int loop_defer(struct loop *loop, loop_cb cb, void *arg);

/*
 * Delivers signo to cb through the loop (signalfd). The signal is blocked
 * for normal delivery while the loop exists; loop_free() discards any
 * still queued and unblocks those that were not blocked before. One
 * callback per signal. Returns 0 or RT_ERR_SYS / RT_ERR_EXISTS /
 * RT_ERR_INVAL (bad signo, SIGKILL, SIGSTOP).
 */
int loop_signal_add(struct loop *loop, int signo, loop_signal_cb cb,
		    void *arg);

/* Runs until loop_stop() (at once if it was called before). Returns 0,
 * or RT_ERR_SYS if epoll fails. */
int loop_run(struct loop *loop);

/*
 * Runs one round: waits at most max_wait_ms (-1 = until the next timer or
 * event) and dispatches what is ready. Returns the number of callbacks run
 * or RT_ERR_SYS (RT_ERR_INVAL if called from a callback). EINTR is an
 * empty wait, not an error. For tests and shutdown drains.
 */
int loop_run_once(struct loop *loop, int max_wait_ms);

/* Makes loop_run() return after the current round. */
void loop_stop(struct loop *loop);

/* Monotonic milliseconds, cached at the start of the current round's
 * dispatch; outside a round, the current time. */
int64_t loop_now(const struct loop *loop);

/* Number of watches and pending timers (for leak checks and status). */
unsigned int loop_watch_count(const struct loop *loop);
unsigned int loop_timer_count(const struct loop *loop);

#endif
