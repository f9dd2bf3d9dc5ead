/*
 * logring.h - the agent's in-memory log: the last N lines the log sink
 * accepted (fed by log_set_hook), for the control service's `logs`, and
 * live followers for `logs -f`.
 *
 * Memory is bounded: at most max_lines lines of at most LOG_LINE_MAX
 * bytes each, plus one bounded backlog per follower. A follower that does
 * not drain its backlog loses lines, never the agent's time: when room
 * comes back a "[N lines dropped]" line tells it how many it missed.
 *
 * Lines are stored as "TIMESTAMP LEVEL: message" (UTC, ISO 8601), the
 * same text the stderr sink writes minus the ident.
 */
#ifndef RT_LOGRING_H
#define RT_LOGRING_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct logring;
struct logring_follower;

/* Called when a follower's backlog goes from empty to non-empty. Must not
 * free the follower (it runs inside a log call). */
typedef void (*logring_notify_fn)(void *arg);

/* Creates a ring keeping max_lines (>= 1) lines. Returns 0 and *out, or
 * RT_ERR_INVAL / RT_ERR_NOMEM. */
int logring_new(unsigned int max_lines, struct logring **out);

/* Frees the ring. Every follower must have been removed. NULL is a
 * no-op. */
void logring_free(struct logring *lr);

/* Changes the number of lines kept (oldest dropped first). Returns 0 or
 * RT_ERR_NOMEM (the ring is unchanged). */
int logring_resize(struct logring *lr, unsigned int max_lines);

/* Adds one line (copied, cut to LOG_LINE_MAX - 1) to the ring and to every
 * follower's backlog. */
void logring_add(struct logring *lr, enum log_level level, const char *line);

/* log_hook_fn adapter: arg is the ring. */
void logring_hook(void *arg, enum log_level level, const char *line);

/* Lines stored now. */
unsigned int logring_count(const struct logring *lr);

/*
 * Copies the stored lines, oldest first, each ending in "\n", into a new
 * NUL-terminated string. Returns 0 and *out (free() it) with *len, or
 * RT_ERR_NOMEM.
 */
int logring_snapshot(const struct logring *lr, char **out, size_t *len);

/*
 * Registers a follower with a backlog of at most backlog bytes (>= 2 *
 * LOG_LINE_MAX); it sees lines added from now on. notify may be NULL.
 * Returns 0 and *out, or RT_ERR_NOMEM / RT_ERR_INVAL.
 */
int logring_follow(struct logring *lr, size_t backlog,
		   logring_notify_fn notify, void *arg,
		   struct logring_follower **out);

/* Removes and frees a follower. NULL is a no-op. */
void logring_unfollow(struct logring_follower *f);

/* Bytes waiting in the follower's backlog. */
size_t logring_pending(const struct logring_follower *f);

/* Pointer to the waiting bytes (whole lines) and how many; consume what
 * was sent with logring_consume(). */
const uint8_t *logring_peek(const struct logring_follower *f, size_t *len);
void logring_consume(struct logring_follower *f, size_t n);

/* Lines this follower lost so far. */
uint64_t logring_dropped(const struct logring_follower *f);

#endif
