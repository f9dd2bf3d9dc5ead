/*
 * logring.c - the agent's in-memory log ring and its followers
 * (logring.h).
 *
 * The ring is an array of max_lines heap strings used circularly: head is
 * the oldest, count how many are set. A follower keeps its own bounded
 * byte backlog of whole lines; a line that does not fit is counted as
 * dropped, and the marker for what was dropped goes in before the next
 * line that fits with it, so the follower's view stays ordered.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "logring.h"
#include "util.h"

struct logring_follower {
	LIST_ENTRY(logring_follower) entry;
	struct logring *lr;
	struct buf *backlog;		/* ring -> follower's channel */
	uint64_t dropped;		/* lines lost in total */
	uint64_t unreported;		/* lost since the last marker */
	logring_notify_fn notify;
	void *arg;
};

struct logring {
	char **lines;
	unsigned int max;
	unsigned int head;		/* oldest */
	unsigned int count;
	LIST_HEAD(, logring_follower) followers;
};

int
logring_new(unsigned int max_lines, struct logring **out)
{
	struct logring *lr;

	*out = NULL;
	if (max_lines == 0)
		return RT_ERR_INVAL;
	if ((lr = calloc(1, sizeof(*lr))) == NULL)
		return RT_ERR_NOMEM;
	if ((lr->lines = calloc(max_lines, sizeof(*lr->lines))) == NULL) {
		free(lr);
		return RT_ERR_NOMEM;
	}
	lr->max = max_lines;
	LIST_INIT(&lr->followers);
	*out = lr;
	return 0;
}

void
logring_free(struct logring *lr)
{
	unsigned int i;

	if (lr == NULL)
		return;
	while (!LIST_EMPTY(&lr->followers))
		logring_unfollow(LIST_FIRST(&lr->followers));
	for (i = 0; i < lr->max; i++)
		free(lr->lines[i]);
	free(lr->lines);
	free(lr);
}

int
logring_resize(struct logring *lr, unsigned int max_lines)
{
	char **nl;
	unsigned int i, keep, skip;

	if (max_lines == 0)
		return RT_ERR_INVAL;
	if (max_lines == lr->max)
		return 0;
	if ((nl = calloc(max_lines, sizeof(*nl))) == NULL)
		return RT_ERR_NOMEM;
	keep = RT_MIN(lr->count, max_lines);
	skip = lr->count - keep;
	for (i = 0; i < lr->count; i++) {
		char **p = &lr->lines[(lr->head + i) % lr->max];

		if (i >= skip)
			nl[i - skip] = *p;
		else
			free(*p);
		*p = NULL;
	}
	free(lr->lines);
	lr->lines = nl;
	lr->max = max_lines;
	lr->head = 0;
	lr->count = keep;
	return 0;
}

static void
follower_push(struct logring_follower *f, const char *text, size_t len)
{
	char mark[64];
	size_t mlen = 0, before = buf_len(f->backlog);

	if (f->unreported > 0)
		mlen = (size_t)snprintf(mark, sizeof(mark),
		    "[%llu lines dropped]\n",
		    (unsigned long long)f->unreported);
	if (buf_room(f->backlog) < mlen + len) {
		f->dropped++;
		f->unreported++;
		return;
	}
	if ((mlen > 0 && buf_append(f->backlog, mark, mlen) != 0) ||
	    buf_append(f->backlog, text, len) != 0) {
		/* Out of memory: as good as dropped (the backlog is whole
		 * lines up to before). */
		buf_reset(f->backlog);
		f->dropped++;
		f->unreported++;
		return;
	}
	f->unreported = 0;
	if (before == 0 && f->notify != NULL)
		f->notify(f->arg);
}

void
logring_add(struct logring *lr, enum log_level level, const char *line)
{
	static const char *const names[] = {
		"error", "warning", "info", "debug"
	};
	struct logring_follower *f;
	char ts[40], *s;
	unsigned int slot;
	int n;

	rt_time_iso(rt_wall_ms(), ts, sizeof(ts));
	if ((unsigned int)level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	if ((s = malloc(LOG_LINE_MAX + 64)) == NULL)
		return;
	n = snprintf(s, LOG_LINE_MAX + 64, "%s %s: %.*s\n", ts,
	    names[level], LOG_LINE_MAX - 1, line);
	if (n < 0) {
		free(s);
		return;
	}
	if ((size_t)n >= LOG_LINE_MAX + 64)
		n = LOG_LINE_MAX + 63;
	LIST_FOREACH(f, &lr->followers, entry)
		follower_push(f, s, (size_t)n);
	if (lr->count == lr->max) {
		free(lr->lines[lr->head]);
		lr->lines[lr->head] = NULL;
		lr->head = (lr->head + 1) % lr->max;
		lr->count--;
	}
	slot = (lr->head + lr->count) % lr->max;
	lr->lines[slot] = s;
	lr->count++;
}

void
logring_hook(void *arg, enum log_level level, const char *line)
{
	logring_add(arg, level, line);
}

unsigned int
logring_count(const struct logring *lr)
{
	return lr->count;
}

int
logring_snapshot(const struct logring *lr, char **out, size_t *len)
{
	size_t total = 0, off = 0, n;
	unsigned int i;
	char *s;

	*out = NULL;
	*len = 0;
	for (i = 0; i < lr->count; i++)
		total += strlen(lr->lines[(lr->head + i) % lr->max]);
	if ((s = malloc(total + 1)) == NULL)
		return RT_ERR_NOMEM;
	for (i = 0; i < lr->count; i++) {
		const char *l = lr->lines[(lr->head + i) % lr->max];

		n = strlen(l);
		memcpy(s + off, l, n);
		off += n;
	}
	s[off] = '\0';
	*out = s;
	*len = off;
	return 0;
}

int
logring_follow(struct logring *lr, size_t backlog, logring_notify_fn notify,
    void *arg, struct logring_follower **out)
{
	struct logring_follower *f;

	*out = NULL;
	if (backlog < 2 * (LOG_LINE_MAX + 64))
		return RT_ERR_INVAL;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return RT_ERR_NOMEM;
	if ((f->backlog = buf_new(backlog)) == NULL) {
		free(f);
		return RT_ERR_NOMEM;
	}
	f->lr = lr;
	f->notify = notify;
	f->arg = arg;
	LIST_INSERT_HEAD(&lr->followers, f, entry);
	*out = f;
	return 0;
}

void
logring_unfollow(struct logring_follower *f)
{
	if (f == NULL)
		return;
	LIST_REMOVE(f, entry);
	buf_free(f->backlog);
	free(f);
}

size_t
logring_pending(const struct logring_follower *f)
{
	return buf_len(f->backlog);
}

const uint8_t *
logring_peek(const struct logring_follower *f, size_t *len)
{
	*len = buf_len(f->backlog);
	return buf_data(f->backlog);
}

void
logring_consume(struct logring_follower *f, size_t n)
{
	buf_consume(f->backlog, n);
	if (buf_len(f->backlog) == 0)
		buf_shrink(f->backlog);
}

uint64_t
logring_dropped(const struct logring_follower *f)
{
	return f->dropped;
}
