/*
 * test_buf.c - unit tests of common/buf.c: the limit, byte order across
 * consume/compaction/growth, reserve/commit, fd reads and partial writes,
 * and giving memory back.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <CUnit/CUnit.h>

#include "buf.h"
#include "err.h"
#include "runner.h"
#include "util.h"

int suite_buf(void);

/* Deterministic byte stream: byte i of the stream is pattern(i). */
static uint8_t
pattern(size_t i)
{
	return (uint8_t)((i * 131u + (i >> 8) * 7u + 1u) & 0xff);
}

static void
fill(uint8_t *p, size_t n, size_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(start + i);
}

/* Returns 1 if p[0..n) is the stream from start. */
static int
matches(const uint8_t *p, size_t n, size_t start)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pattern(start + i))
			return 0;
	return 1;
}

static void
test_new_limits(void)
{
	struct buf *b;

	CU_ASSERT_PTR_NULL(buf_new(0));
	b = buf_new(100);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(buf_len(b), 0);
	CU_ASSERT_EQUAL(buf_room(b), 100);
	CU_ASSERT_EQUAL(buf_limit(b), 100);
	CU_ASSERT_EQUAL(buf_capacity(b), 0);	/* lazy */
	CU_ASSERT_PTR_NULL(buf_data(b));
	buf_free(b);
	buf_free(NULL);
}

static void
test_append_limit(void)
{
	uint8_t data[300];
	struct buf *b = buf_new(100);

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	fill(data, sizeof(data), 0);
	CU_ASSERT_EQUAL(buf_append(b, data, 60), 0);
	/* All or nothing: 60 + 41 > 100 leaves the buffer unchanged. */
	CU_ASSERT_EQUAL(buf_append(b, data + 60, 41), RT_ERR_FULL);
	CU_ASSERT_EQUAL(buf_len(b), 60);
	CU_ASSERT_EQUAL(buf_append(b, data + 60, 40), 0);
	CU_ASSERT_EQUAL(buf_len(b), 100);
	CU_ASSERT_EQUAL(buf_room(b), 0);
	CU_ASSERT_EQUAL(buf_append(b, data, 1), RT_ERR_FULL);
	CU_ASSERT_EQUAL(buf_append(b, data, 0), 0);
	CU_ASSERT(buf_capacity(b) <= 100);
	CU_ASSERT(matches(buf_data(b), 100, 0));

	/* append_some cuts to the room left. */
	buf_consume(b, 30);
	CU_ASSERT_EQUAL(buf_append_some(b, data + 100, 200), 30);
	CU_ASSERT_EQUAL(buf_len(b), 100);
	CU_ASSERT_EQUAL(buf_append_some(b, data, 5), 0);
	CU_ASSERT(buf_capacity(b) <= 100);
	CU_ASSERT(matches(buf_data(b), 100, 30));
	buf_free(b);
}

/*
 * Irregular fill/drain cycles across growth and compaction: what comes out
 * is exactly the stream that went in, and the limit is never exceeded.
 */
static void
test_order_checksum(void)
{
	const size_t limit = 10007;
	uint8_t chunk[3000];
	size_t in = 0, out = 0, step = 0;
	uint32_t sum_in = 0, sum_out = 0;
	struct buf *b = buf_new(limit);
	int ok = 1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	while (out < 2000000 && ok) {
		size_t want = (step * 977u) % sizeof(chunk) + 1;
		size_t take = (step * 613u) % 4500u;
		ssize_t n;

		fill(chunk, want, in);
		if (step % 3 == 0) {
			n = buf_append_some(b, chunk, want);
		} else {
			n = buf_append(b, chunk, want) == 0 ? (ssize_t)want : 0;
		}
		for (ssize_t i = 0; i < n; i++)
			sum_in = sum_in * 31u + chunk[i];
		in += (size_t)n;
		if (buf_len(b) > limit || buf_capacity(b) > limit)
			ok = 0;
		if (take > buf_len(b))
			take = buf_len(b);
		if (take > 0) {
			const uint8_t *p = buf_data(b);

			if (!matches(p, take, out))
				ok = 0;
			for (size_t i = 0; i < take; i++)
				sum_out = sum_out * 31u + p[i];
			buf_consume(b, take);
			out += take;
		}
		if (in - out != buf_len(b))
			ok = 0;
		step++;
	}
	CU_ASSERT(ok);
	/* Drain the rest and compare the checksums of the whole streams. */
	CU_ASSERT(matches(buf_data(b), buf_len(b), out));
	for (size_t i = 0; i < buf_len(b); i++)
		sum_out = sum_out * 31u + buf_data(b)[i];
	out += buf_len(b);
	buf_consume(b, buf_len(b) + 5);	/* clamped */
	CU_ASSERT_EQUAL(buf_len(b), 0);
	CU_ASSERT_EQUAL(in, out);
	CU_ASSERT_EQUAL(sum_in, sum_out);
	buf_free(b);
}

static void
test_reserve_commit(void)
{
	struct buf *b = buf_new(5000);
	uint8_t *p;
	size_t avail;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(buf_reserve(b, 100, &p, &avail), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT(avail >= 100);
	CU_ASSERT(avail <= buf_room(b));
	fill(p, 70, 0);
	buf_commit(b, 70);
	CU_ASSERT_EQUAL(buf_len(b), 70);

	/* Asking for more than the room gives exactly up to the limit. */
	CU_ASSERT_EQUAL(buf_reserve(b, 100000, &p, &avail), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(avail, 5000 - 70);
	fill(p, avail, 70);
	buf_commit(b, avail);
	CU_ASSERT_EQUAL(buf_len(b), 5000);
	CU_ASSERT(matches(buf_data(b), 5000, 0));

	/* Full: nothing to reserve; a stray commit changes nothing. */
	CU_ASSERT_EQUAL(buf_reserve(b, 10, &p, &avail), 0);
	CU_ASSERT_EQUAL(avail, 0);
	CU_ASSERT_PTR_NULL(p);
	buf_commit(b, 10);
	CU_ASSERT_EQUAL(buf_len(b), 5000);

	/* Room at the front only: reserve must compact, keeping order. */
	buf_consume(b, 4000);
	CU_ASSERT_EQUAL(buf_reserve(b, 4000, &p, &avail), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(avail, 4000);
	fill(p, 4000, 5000);
	buf_commit(b, 4000);
	CU_ASSERT_EQUAL(buf_len(b), 5000);
	CU_ASSERT(matches(buf_data(b), 5000, 4000));
	CU_ASSERT(buf_capacity(b) <= 5000);

	buf_reset(b);
	CU_ASSERT_EQUAL(buf_len(b), 0);
	CU_ASSERT_EQUAL(buf_room(b), 5000);
	buf_free(b);
}

static void
test_read_fd(void)
{
	int sv[2];
	uint8_t data[1000];
	struct buf *b = buf_new(600);

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CU_ASSERT_EQUAL(rt_fd_nonblock(sv[0]), 0);

	/* Nothing ready: AGAIN, and a spurious read keeps no memory. */
	CU_ASSERT_EQUAL(buf_read_fd(b, sv[0], 0), RT_ERR_AGAIN);
	CU_ASSERT_EQUAL(buf_capacity(b), 0);

	fill(data, sizeof(data), 0);
	CU_ASSERT_EQUAL(write(sv[1], data, sizeof(data)), (ssize_t)sizeof(data));
	CU_ASSERT_EQUAL(buf_read_fd(b, sv[0], 100), 100);
	CU_ASSERT_EQUAL(buf_len(b), 100);
	while (buf_room(b) > 0)
		if (buf_read_fd(b, sv[0], 0) <= 0)
			break;
	CU_ASSERT_EQUAL(buf_len(b), 600);
	CU_ASSERT(matches(buf_data(b), 600, 0));

	/* Full: RT_ERR_FULL and the fd is not read (400 bytes remain). */
	CU_ASSERT_EQUAL(buf_read_fd(b, sv[0], 0), RT_ERR_FULL);
	buf_consume(b, 600);
	CU_ASSERT_EQUAL(buf_read_fd(b, sv[0], 0), 400);
	CU_ASSERT(matches(buf_data(b), 400, 600));

	/* End of stream. */
	close(sv[1]);
	CU_ASSERT_EQUAL(buf_read_fd(b, sv[0], 0), RT_ERR_EOF);
	CU_ASSERT_EQUAL(buf_len(b), 400);
	close(sv[0]);

	/* A bad fd is a system error with errno set. */
	buf_reset(b);
	errno = 0;
	CU_ASSERT_EQUAL(buf_read_fd(b, -1, 0), RT_ERR_SYS);
	CU_ASSERT_EQUAL(errno, EBADF);
	buf_free(b);
}

/* Reads everything available from fd within a bounded wait. */
static size_t
drain_peer(int fd, uint8_t *dst, size_t cap)
{
	size_t got = 0;
	int64_t deadline = rt_mono_ms() + 5000;
	ssize_t n;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (got == cap || rt_mono_ms() > deadline)
			break;
		/* Data already sent is in the peer's queue: a short poll is
		 * only for safety, an empty poll means all was read. */
		if (poll(&pfd, 1, 50) <= 0)
			break;
		n = read(fd, dst + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void
test_partial_write(void)
{
	enum { TOTAL = 1 << 20 };
	static uint8_t recvd[TOTAL];
	uint8_t chunk[8192];
	struct buf *b = buf_new(TOTAL);
	int sv[2], sz = 4096, again = 0;
	size_t written = 0, got;
	ssize_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CU_ASSERT_EQUAL(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz,
	    sizeof(sz)), 0);
	CU_ASSERT_EQUAL(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz,
	    sizeof(sz)), 0);
	CU_ASSERT_EQUAL(rt_fd_nonblock(sv[0]), 0);
	for (size_t off = 0; off < TOTAL; off += sizeof(chunk)) {
		fill(chunk, sizeof(chunk), off);
		CU_ASSERT_EQUAL_FATAL(buf_append(b, chunk, sizeof(chunk)), 0);
	}
	/* Write until the kernel takes no more. */
	for (int i = 0; i < 100000; i++) {
		n = buf_write_fd(b, sv[0]);
		if (n == RT_ERR_AGAIN) {
			again = 1;
			break;
		}
		CU_ASSERT_FATAL(n > 0);
		written += (size_t)n;
	}
	CU_ASSERT(again);
	CU_ASSERT(written > 0);
	CU_ASSERT(written < TOTAL);
	CU_ASSERT_EQUAL(buf_len(b) + written, TOTAL);

	got = drain_peer(sv[1], recvd, TOTAL);
	CU_ASSERT_EQUAL(got, written);
	CU_ASSERT_EQUAL(buf_len(b) + got, TOTAL);
	CU_ASSERT(matches(recvd, got, 0));
	/* What is left starts right after what the peer saw. */
	CU_ASSERT(matches(buf_data(b), buf_len(b), got));

	/* Closed peer: EPIPE, no signal (MSG_NOSIGNAL), nothing consumed. */
	close(sv[1]);
	n = buf_write_fd(b, sv[0]);
	CU_ASSERT_EQUAL(n, RT_ERR_SYS);
	CU_ASSERT(errno == EPIPE || errno == ECONNRESET);
	CU_ASSERT_EQUAL(buf_len(b) + got, TOTAL);
	close(sv[0]);
	buf_free(b);
}

static void
test_write_pipe(void)
{
	int p[2];
	uint8_t data[500], back[600];
	struct buf *b = buf_new(1000);

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
	/* Empty: nothing written, 0. */
	CU_ASSERT_EQUAL(buf_write_fd(b, p[1]), 0);
	fill(data, sizeof(data), 0);
	CU_ASSERT_EQUAL(buf_append(b, data, sizeof(data)), 0);
	/* Not a socket: falls back to write(2). */
	CU_ASSERT_EQUAL(buf_write_fd(b, p[1]), 500);
	CU_ASSERT_EQUAL(buf_len(b), 0);
	CU_ASSERT_EQUAL(read(p[0], back, sizeof(back)), 500);
	CU_ASSERT(matches(back, 500, 0));
	close(p[0]);
	close(p[1]);
	buf_free(b);
}

static void
test_shrink(void)
{
	uint8_t data[10000];
	struct buf *b = buf_new(65536);

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	fill(data, sizeof(data), 0);
	CU_ASSERT_EQUAL(buf_append(b, data, sizeof(data)), 0);
	CU_ASSERT(buf_capacity(b) >= sizeof(data));
	/* Growth is lazy: doubling, not straight to the limit. */
	CU_ASSERT(buf_capacity(b) < 65536);
	/* Not empty: shrink keeps the storage and the bytes. */
	buf_shrink(b);
	CU_ASSERT(buf_capacity(b) >= sizeof(data));
	CU_ASSERT(matches(buf_data(b), sizeof(data), 0));
	buf_consume(b, sizeof(data));
	buf_shrink(b);
	CU_ASSERT_EQUAL(buf_capacity(b), 0);
	CU_ASSERT_PTR_NULL(buf_data(b));
	/* Usable again after shrinking. */
	CU_ASSERT_EQUAL(buf_append(b, data, 10), 0);
	CU_ASSERT(matches(buf_data(b), 10, 0));
	buf_free(b);
}

int
suite_buf(void)
{
	CU_pSuite s = CU_add_suite("buf", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "new and limits", test_new_limits) == NULL ||
	    CU_add_test(s, "append respects the limit",
	    test_append_limit) == NULL ||
	    CU_add_test(s, "fill/drain keeps byte order",
	    test_order_checksum) == NULL ||
	    CU_add_test(s, "reserve/commit", test_reserve_commit) == NULL ||
	    CU_add_test(s, "read_fd: full, eof, again", test_read_fd) == NULL ||
	    CU_add_test(s, "write_fd: partial writes, EPIPE",
	    test_partial_write) == NULL ||
	    CU_add_test(s, "write_fd: pipe", test_write_pipe) == NULL ||
	    CU_add_test(s, "shrink releases memory", test_shrink) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
