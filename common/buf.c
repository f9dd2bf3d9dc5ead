/*
 * buf.c - bounded byte buffer (buf.h).
 *
 * Storage is one heap block mem[0..cap): a dead prefix of off consumed
 * bytes, len readable bytes, then the free tail. The block is allocated on
 * the first append, doubles as data arrives (never past limit), and is
 * compacted with memmove only when the tail is too small for a request.
 * Emptying the buffer resets off to 0, so the common "fill, drain all"
 * pattern never moves a byte.
 *
 * Invariants: off + len <= cap <= limit; mem == NULL iff cap == 0;
 * len == 0 implies off == 0.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "buf.h"
#include "err.h"

/* First allocation; small enough that a short message costs little. */
#define BUF_MIN_CAP	4096
/* buf_read_fd() reads into the existing tail if it has this much room,
 * rather than moving the stored bytes to make a bigger one. */
#define BUF_READ_MIN	4096

struct buf {
	uint8_t	*mem;
	size_t	 cap;		/* bytes allocated at mem */
	size_t	 off;		/* consumed bytes before the readable ones */
	size_t	 len;		/* readable bytes at mem + off */
	size_t	 limit;		/* hard cap on len (and on cap) */
};

struct buf *
buf_new(size_t limit)
{
	struct buf *b;

	if (limit == 0 || limit > SSIZE_MAX)
		return NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->limit = limit;
	return b;
}

void
buf_free(struct buf *b)
{
	if (b == NULL)
		return;
	free(b->mem);
	free(b);
}

size_t
buf_len(const struct buf *b)
{
	return b->len;
}

size_t
buf_room(const struct buf *b)
{
	return b->limit - b->len;
}

size_t
buf_limit(const struct buf *b)
{
	return b->limit;
}

size_t
buf_capacity(const struct buf *b)
{
	return b->cap;
}

const uint8_t *
buf_data(const struct buf *b)
{
	return b->len == 0 ? NULL : b->mem + b->off;
}

static size_t
buf_tail(const struct buf *b)
{
	return b->cap - b->off - b->len;
}

static void
buf_compact(struct buf *b)
{
	if (b->off == 0)
		return;
	memmove(b->mem, b->mem + b->off, b->len);
	b->off = 0;
}

/*
 * Makes need (<= buf_room()) contiguous bytes free at the tail. Moves the
 * stored bytes down when that copies no more than it reclaims, or when the
 * block cannot grow; otherwise doubles the block (copying only live bytes).
 */
static int
buf_ensure(struct buf *b, size_t need)
{
	size_t ncap;
	uint8_t *nmem;

	if (buf_tail(b) >= need)
		return 0;
	if (b->cap - b->len >= need &&
	    (b->cap == b->limit || b->len <= b->off)) {
		buf_compact(b);
		return 0;
	}
	ncap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (ncap < b->len + need && ncap < b->limit) {
		if (ncap > SIZE_MAX / 2) {
			ncap = b->limit;
			break;
		}
		ncap *= 2;
	}
	if (ncap > b->limit)
		ncap = b->limit;
	if (b->off == 0) {
		if ((nmem = realloc(b->mem, ncap)) == NULL)
			return RT_ERR_NOMEM;
	} else {
		if ((nmem = malloc(ncap)) == NULL)
			return RT_ERR_NOMEM;
		memcpy(nmem, b->mem + b->off, b->len);
		free(b->mem);
		b->off = 0;
	}
	b->mem = nmem;
	b->cap = ncap;
	return 0;
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
	int r;

	if (len > buf_room(b))
		return RT_ERR_FULL;
	if (len == 0)
		return 0;
	if ((r = buf_ensure(b, len)) != 0)
		return r;
	memcpy(b->mem + b->off + b->len, data, len);
	b->len += len;
	return 0;
}

ssize_t
buf_append_some(struct buf *b, const void *data, size_t len)
{
	size_t n = len < buf_room(b) ? len : buf_room(b);
	int r;

	if (n == 0)
		return 0;
	if ((r = buf_ensure(b, n)) != 0)
		return r;
	memcpy(b->mem + b->off + b->len, data, n);
	b->len += n;
	return (ssize_t)n;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->off = 0;
		b->len = 0;
		return;
	}
	b->off += n;
	b->len -= n;
}

int
buf_reserve(struct buf *b, size_t want, uint8_t **p, size_t *avail)
{
	size_t n = want < buf_room(b) ? want : buf_room(b);
	int r;

	*p = NULL;
	*avail = 0;
	if (n > 0 && (r = buf_ensure(b, n)) != 0)
		return r;
	if (buf_tail(b) > 0) {
		*p = b->mem + b->off + b->len;
		*avail = buf_tail(b);
	}
	return 0;
}

void
buf_commit(struct buf *b, size_t n)
{
	/* Clamp rather than overrun: n beyond the tail is a caller bug. */
	if (n > buf_tail(b))
		n = buf_tail(b);
	b->len += n;
}

ssize_t
buf_read_fd(struct buf *b, int fd, size_t max)
{
	size_t want, tail;
	ssize_t n;
	int was_empty = b->mem == NULL;
	int r;

	if (buf_room(b) == 0)
		return RT_ERR_FULL;
	want = buf_room(b);
	if (max != 0 && max < want)
		want = max;
	/*
	 * A roomy tail is good enough: moving the stored bytes to read a
	 * little more each time would cost a memmove per read.
	 */
	tail = buf_tail(b);
	if (tail < want && tail < BUF_READ_MIN) {
		if ((r = buf_ensure(b,
		    want < BUF_READ_MIN ? want : BUF_READ_MIN)) != 0)
			return r;
		tail = buf_tail(b);
	}
	if (want > tail)
		want = tail;
	do {
		n = read(fd, b->mem + b->off + b->len, want);
	} while (n < 0 && errno == EINTR);
	if (n > 0) {
		b->len += (size_t)n;
		return n;
	}
	/* A spurious read must not leave an idle buffer holding memory. */
	if (was_empty && b->len == 0) {
		int saved = errno;

		buf_shrink(b);
		errno = saved;
	}
	if (n == 0)
		return RT_ERR_EOF;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return RT_ERR_AGAIN;
	return RT_ERR_SYS;
}

ssize_t
buf_write_fd(struct buf *b, int fd)
{
	ssize_t n;

	if (b->len == 0)
		return 0;
	/* send(MSG_NOSIGNAL) so a closed peer gives EPIPE even where
	 * SIGPIPE is not ignored; write(2) for pipes and other fds. */
	do {
		n = send(fd, b->mem + b->off, b->len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && errno == ENOTSOCK) {
		do {
			n = write(fd, b->mem + b->off, b->len);
		} while (n < 0 && errno == EINTR);
	}
	if (n > 0) {
		buf_consume(b, (size_t)n);
		return n;
	}
	if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
		return RT_ERR_AGAIN;
	return RT_ERR_SYS;
}

void
buf_reset(struct buf *b)
{
	b->off = 0;
	b->len = 0;
}

void
buf_shrink(struct buf *b)
{
	if (b->len != 0)
		return;
	free(b->mem);
	b->mem = NULL;
	b->cap = 0;
	b->off = 0;
}
