/*
 * rtbench.c - the benchmark's load tool and the service it loads: one
 * binary, plain sockets, no project libraries.
 *
 *   rtbench serve [-b ADDR] [-w PORTFILE] PORT    the service (0 = any port)
 *   rtbench [-t SECS] [-s SEED] up    HOST:PORT BYTES   bulk upload
 *   rtbench [-t SECS] [-s SEED] down  HOST:PORT BYTES   bulk download
 *   rtbench [-t SECS] ping  HOST:PORT N           N sequential 64-byte echoes
 *   rtbench [-t SECS] pingc HOST:PORT C N         C connections, N echoes each
 *   rtbench [-t SECS] conn  HOST:PORT K           K simultaneous opens
 *   rtbench [-t SECS] probe HOST:PORT             one echo, quiet, exit 0/1
 *
 * Wire protocol: every request starts with a 24-byte header
 *   "RTB1" | op (1) | 3 zero bytes | count (u64 BE) | seed (u64 BE)
 * op 'E': echo everything until EOF.
 * op 'S': the client sends count bytes of pattern(seed); the service checks
 *         every byte as it arrives and answers with a 32-byte report
 *         "RTB1" | 'R' | 3 zero | bytes (u64 BE) | bad bytes (u64 BE) |
 *         first bad offset (u64 BE, ~0 if none).
 * op 'G': the service sends count bytes of pattern(seed).
 * After 'S' and 'G' the connection takes a new header.
 *
 * The pattern is a function of (seed, offset): a 1 MiB random table from
 * the seed, each 1 MiB segment XORed with a per-segment key. A dropped,
 * duplicated or reordered byte anywhere shows up, and generating it costs
 * about a memcpy, so the tool is not what limits a loopback run.
 *
 * Output: one "result mode=... key=value ..." line per measurement, for
 * scripts, and one "# ..." line for people. Exit 0 if every byte and every
 * echo checked out, 1 otherwise, 2 on usage errors.
 *
 * The service is one thread around epoll; each connection has a 16 KiB
 * echo buffer, bulk ops share one scratch buffer, and every read is sized
 * so that a connection never holds more than its buffer.
 */
#include "config.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN		24
#define REPLY_LEN	32
#define PING_LEN	64
#define SEG_SHIFT	20			/* pattern segment: 1 MiB */
#define SEG_LEN		((size_t)1 << SEG_SHIFT)
#define SEG_MASK	(SEG_LEN - 1)
#define CHUNK		(256 * 1024)		/* bulk read/write size */
#define ECHO_BUF	(16 * 1024)
#define MAX_CONNS	10000

static const char	 magic[4] = { 'R', 'T', 'B', '1' };

static int		 timeout_s = 120;
static uint64_t		 opt_seed = 0x5eed;

/* Set by SIGALRM after timeout_s: blocked calls return EINTR and fail. */
static volatile sig_atomic_t timed_out;

/* ---- pattern ---- */

struct pattern {
	uint64_t	 seed;
	unsigned char	*table;		/* SEG_LEN bytes */
	uint64_t	 keyseg;	/* segment whose key is in key[] */
	unsigned char	 key[8];
};

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
pat_init(struct pattern *p, uint64_t seed)
{
	uint64_t x = seed, v;
	size_t i;

	p->seed = seed;
	if ((p->table = malloc(SEG_LEN)) == NULL) {
		perror("rtbench: malloc");
		exit(2);
	}
	for (i = 0; i < SEG_LEN; i += 8) {
		v = splitmix64(&x);
		memcpy(p->table + i, &v, 8);
	}
	p->keyseg = UINT64_MAX;
}

static void
pat_key(struct pattern *p, uint64_t seg)
{
	uint64_t x = p->seed ^ (seg * 0xd6e8feb86659fd93ULL), v;

	if (p->keyseg == seg)
		return;
	v = splitmix64(&x);
	memcpy(p->key, &v, 8);
	p->keyseg = seg;
}

/* Fills buf with len bytes of the pattern starting at stream offset off. */
static void
pat_fill(struct pattern *p, uint64_t off, unsigned char *buf, size_t len)
{
	uint64_t t, k;
	size_t n, i;

	while (len > 0) {
		pat_key(p, off >> SEG_SHIFT);
		/* a byte at a time up to an 8-byte boundary, and the tail */
		if ((off & 7) != 0 || len < 8) {
			*buf++ = p->table[off & SEG_MASK] ^ p->key[off & 7];
			off++;
			len--;
			continue;
		}
		/* whole words up to the end of this segment */
		n = SEG_LEN - (off & SEG_MASK);
		if (n > len)
			n = len & ~(size_t)7;
		memcpy(&k, p->key, 8);
		for (i = 0; i < n; i += 8) {
			memcpy(&t, p->table + (off & SEG_MASK) + i, 8);
			t ^= k;
			memcpy(buf + i, &t, 8);
		}
		buf += n;
		off += n;
		len -= n;
	}
}

/*
 * Checks buf against the pattern at off, using scratch (len bytes).
 * Returns the number of bad bytes; *first gets the first bad offset.
 */
static uint64_t
pat_check(struct pattern *p, uint64_t off, const unsigned char *buf,
    size_t len, unsigned char *scratch, uint64_t *first)
{
	uint64_t bad = 0;
	size_t i;

	pat_fill(p, off, scratch, len);
	if (memcmp(buf, scratch, len) == 0)
		return 0;
	for (i = 0; i < len; i++) {
		if (buf[i] != scratch[i]) {
			if (bad++ == 0)
				*first = off + i;
		}
	}
	return bad;
}

/* ---- small helpers ---- */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
put64(unsigned char *b, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		b[i] = v & 0xff;
		v >>= 8;
	}
}

static uint64_t
get64(const unsigned char *b)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void
mkhdr(unsigned char *h, int op, uint64_t count, uint64_t seed)
{
	memcpy(h, magic, 4);
	h[4] = (unsigned char)op;
	h[5] = h[6] = h[7] = 0;
	put64(h + 8, count);
	put64(h + 16, seed);
}

static int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end != '\0')
		return -1;
	*out = v;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[n]. */
static double
pct(const double *v, size_t n, double q)
{
	size_t r;

	if (n == 0)
		return 0;
	r = (size_t)(q * (double)n + 0.999999);
	if (r < 1)
		r = 1;
	if (r > n)
		r = n;
	return v[r - 1];
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* ---- client side ---- */

static void
on_alarm(int sig)
{
	timed_out = 1;
	alarm(1);	/* again: a call blocked after the check also ends */
}

/* EINTR from the alarm is the end; any other EINTR is retried. */
static int
interrupted(void)
{
	if (timed_out) {
		errno = ETIMEDOUT;
		return 0;
	}
	return 1;
}

static struct addrinfo *target;

static void
resolve(const char *hostport)
{
	struct addrinfo hints;
	char host[256];
	const char *colon = strrchr(hostport, ':');
	size_t hl;
	int r;

	if (colon == NULL || colon == hostport ||
	    (hl = (size_t)(colon - hostport)) >= sizeof(host)) {
		fprintf(stderr, "rtbench: %s: want HOST:PORT\n", hostport);
		exit(2);
	}
	memcpy(host, hostport, hl);
	host[hl] = '\0';
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((r = getaddrinfo(host, colon + 1, &hints, &target)) != 0) {
		fprintf(stderr, "rtbench: %s: %s\n", hostport, gai_strerror(r));
		exit(2);
	}
}

/* A blocking connection; the whole run is bounded by the alarm. */
static int
dial(int nodelay)
{
	int fd, one = 1;

	fd = socket(target->ai_family, target->ai_socktype | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("rtbench: socket");
		return -1;
	}
	if (nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, target->ai_addr, target->ai_addrlen) < 0) {
		if (timed_out)
			errno = ETIMEDOUT;
		perror("rtbench: connect");
		close(fd);
		return -1;
	}
	return fd;
}

static int
write_all(int fd, const void *p, size_t len)
{
	const unsigned char *b = p;
	ssize_t n;

	while (len > 0) {
		if (timed_out) {
			errno = ETIMEDOUT;
			return -1;
		}
		if ((n = write(fd, b, len)) < 0) {
			if (errno == EINTR && interrupted())
				continue;
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes; -1 on error, timeout or early EOF. */
static int
read_all(int fd, void *p, size_t len)
{
	unsigned char *b = p;
	ssize_t n;

	while (len > 0) {
		if (timed_out) {
			errno = ETIMEDOUT;
			return -1;
		}
		if ((n = read(fd, b, len)) < 0) {
			if (errno == EINTR && interrupted())
				continue;
			return -1;
		}
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		b += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
run_up(uint64_t bytes)
{
	struct pattern pat;
	unsigned char h[HDR_LEN], rep[REPLY_LEN], *buf;
	uint64_t off = 0, got, bad, first;
	double t0, secs;
	size_t n;
	int fd, ok;

	pat_init(&pat, opt_seed);
	if ((buf = malloc(CHUNK)) == NULL || (fd = dial(0)) < 0)
		return 1;
	mkhdr(h, 'S', bytes, opt_seed);
	t0 = now_s();
	if (write_all(fd, h, sizeof(h)) < 0)
		goto fail;
	while (off < bytes) {
		n = bytes - off < CHUNK ? (size_t)(bytes - off) : CHUNK;
		pat_fill(&pat, off, buf, n);
		if (write_all(fd, buf, n) < 0)
			goto fail;
		off += n;
	}
	/* the clock stops when the service has seen and checked every byte */
	if (read_all(fd, rep, sizeof(rep)) < 0)
		goto fail;
	secs = now_s() - t0;
	close(fd);
	got = get64(rep + 8);
	bad = get64(rep + 16);
	first = get64(rep + 24);
	ok = memcmp(rep, magic, 4) == 0 && rep[4] == 'R' && got == bytes &&
	    bad == 0;
	printf("result mode=bulk_up bytes=%" PRIu64 " secs=%.6f mibps=%.2f "
	    "ok=%d bad=%" PRIu64 "\n", bytes, secs,
	    (double)bytes / 1048576.0 / secs, ok, bad);
	printf("# upload %.1f MiB in %.3f s: %.1f MiB/s, %s\n",
	    (double)bytes / 1048576.0, secs, (double)bytes / 1048576.0 / secs,
	    ok ? "every byte verified by the service" : "VERIFY FAILED");
	if (!ok)
		fprintf(stderr, "rtbench: upload: service saw %" PRIu64
		    " bytes, %" PRIu64 " bad, first at %" PRIu64 "\n",
		    got, bad, first);
	return ok ? 0 : 1;
fail:
	fprintf(stderr, "rtbench: upload failed at byte %" PRIu64 ": %s\n",
	    off, strerror(errno));
	close(fd);
	return 1;
}

static int
run_down(uint64_t bytes)
{
	struct pattern pat;
	unsigned char h[HDR_LEN], *buf, *scratch;
	uint64_t off = 0, bad = 0, first = UINT64_MAX;
	double t0, secs;
	ssize_t n;
	size_t want;
	int fd, ok;

	pat_init(&pat, opt_seed);
	if ((buf = malloc(CHUNK)) == NULL || (scratch = malloc(CHUNK)) == NULL ||
	    (fd = dial(0)) < 0)
		return 1;
	mkhdr(h, 'G', bytes, opt_seed);
	t0 = now_s();
	if (write_all(fd, h, sizeof(h)) < 0)
		goto fail;
	while (off < bytes) {
		want = bytes - off < CHUNK ? (size_t)(bytes - off) : CHUNK;
		if (timed_out) {
			errno = ETIMEDOUT;
			goto fail;
		}
		if ((n = read(fd, buf, want)) < 0) {
			if (errno == EINTR && interrupted())
				continue;
			goto fail;
		}
		if (n == 0) {
			errno = ECONNRESET;
			goto fail;
		}
		bad += pat_check(&pat, off, buf, (size_t)n, scratch, &first);
		off += (uint64_t)n;
	}
	secs = now_s() - t0;
	close(fd);
	ok = bad == 0;
	printf("result mode=bulk_down bytes=%" PRIu64 " secs=%.6f mibps=%.2f "
	    "ok=%d bad=%" PRIu64 "\n", bytes, secs,
	    (double)bytes / 1048576.0 / secs, ok, bad);
	printf("# download %.1f MiB in %.3f s: %.1f MiB/s, %s\n",
	    (double)bytes / 1048576.0, secs, (double)bytes / 1048576.0 / secs,
	    ok ? "every byte verified" : "VERIFY FAILED");
	if (!ok)
		fprintf(stderr, "rtbench: download: %" PRIu64 " bad bytes, "
		    "first at %" PRIu64 "\n", bad, first);
	return ok ? 0 : 1;
fail:
	fprintf(stderr, "rtbench: download failed at byte %" PRIu64 ": %s\n",
	    off, strerror(errno));
	close(fd);
	return 1;
}

static void
print_lat(const char *mode, const char *extra, double *us, size_t n,
    double secs, int ok)
{
	qsort(us, n, sizeof(*us), cmp_double);
	printf("result mode=%s %s n=%zu secs=%.6f rps=%.1f p50_us=%.1f "
	    "p90_us=%.1f p99_us=%.1f max_us=%.1f ok=%d\n", mode, extra, n, secs,
	    secs > 0 ? (double)n / secs : 0, pct(us, n, 0.50), pct(us, n, 0.90),
	    pct(us, n, 0.99), n ? us[n - 1] : 0, ok);
	printf("# %s %s: %zu round trips, %.0f/s, p50 %.1f us, p90 %.1f us, "
	    "p99 %.1f us, max %.1f us%s\n", mode, extra, n,
	    secs > 0 ? (double)n / secs : 0, pct(us, n, 0.50),
	    pct(us, n, 0.90), pct(us, n, 0.99), n ? us[n - 1] : 0,
	    ok ? "" : ", FAILED");
}

/*
 * One 64-byte echo on fd: message number seq of the pattern. Returns the
 * round trip in microseconds, or -1.
 */
static double
echo_once(int fd, struct pattern *pat, uint64_t seq, unsigned char *out,
    unsigned char *in)
{
	double t0;

	pat_fill(pat, seq * PING_LEN, out, PING_LEN);
	t0 = now_s();
	if (write_all(fd, out, PING_LEN) < 0 || read_all(fd, in, PING_LEN) < 0)
		return -1;
	if (memcmp(out, in, PING_LEN) != 0) {
		errno = EILSEQ;
		return -1;
	}
	return (now_s() - t0) * 1e6;
}

static int
run_ping(uint64_t n, int quiet)
{
	struct pattern pat;
	unsigned char h[HDR_LEN], out[PING_LEN], in[PING_LEN];
	uint64_t i, warm = n / 10 < 100 ? n / 10 : 100;
	double *us, t0, secs, v;
	int fd;

	pat_init(&pat, opt_seed);
	if ((us = calloc(n ? n : 1, sizeof(*us))) == NULL || (fd = dial(1)) < 0)
		return 1;
	mkhdr(h, 'E', 0, opt_seed);
	if (write_all(fd, h, sizeof(h)) < 0)
		goto fail;
	/* not counted: the first echoes also open the tunnel's channel */
	for (i = 0; i < warm; i++)
		if (echo_once(fd, &pat, i, out, in) < 0)
			goto fail;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		if ((v = echo_once(fd, &pat, warm + i, out, in)) < 0)
			goto fail;
		us[i] = v;
	}
	secs = now_s() - t0;
	close(fd);
	if (!quiet)
		print_lat("ping", "size=64", us, (size_t)n, secs, 1);
	free(us);
	return 0;
fail:
	if (!quiet)
		fprintf(stderr, "rtbench: ping failed: %s\n", strerror(errno));
	close(fd);
	free(us);
	return 1;
}

struct pc {
	int		 fd;
	uint64_t	 seq;		/* messages sent */
	uint64_t	 left;		/* round trips still to do */
	size_t		 got;		/* bytes of the echo read so far */
	double		 t0;
	unsigned char	 out[PING_LEN];
	unsigned char	 in[PING_LEN];
};

static int
pc_send(struct pc *c, struct pattern *pat)
{
	pat_fill(pat, c->seq * PING_LEN, c->out, PING_LEN);
	c->seq++;
	c->got = 0;
	c->t0 = now_s();
	return write_all(c->fd, c->out, PING_LEN);
}

/*
 * rounds echoes on each of the c connections, all in flight at once; the
 * round-trip times go to us (if not NULL). Returns 0 or -1.
 */
static int
pc_rounds(struct pc *cs, size_t c, struct pollfd *pfd, struct pattern *pat,
    uint64_t rounds, double *us, size_t *nus)
{
	double deadline = now_s() + timeout_s;
	size_t i, active = c;
	ssize_t n;
	int r;

	for (i = 0; i < c; i++) {
		cs[i].left = rounds;
		if (pc_send(&cs[i], pat) < 0)
			return -1;
	}
	while (active > 0) {
		for (i = 0; i < c; i++) {
			pfd[i].fd = cs[i].left > 0 ? cs[i].fd : -1;
			pfd[i].events = POLLIN;
		}
		if ((r = poll(pfd, c, 1000)) < 0 && errno != EINTR)
			return -1;
		if (now_s() > deadline || timed_out) {
			errno = ETIMEDOUT;
			return -1;
		}
		for (i = 0; r > 0 && i < c; i++) {
			struct pc *p = &cs[i];

			if (pfd[i].revents == 0 || p->left == 0)
				continue;
			n = recv(p->fd, p->in + p->got, PING_LEN - p->got,
			    MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				if (n == 0)
					errno = ECONNRESET;
				return -1;
			}
			if ((p->got += (size_t)n) < PING_LEN)
				continue;
			if (memcmp(p->in, p->out, PING_LEN) != 0) {
				errno = EILSEQ;
				return -1;
			}
			if (us != NULL)
				us[(*nus)++] = (now_s() - p->t0) * 1e6;
			if (--p->left == 0)
				active--;
			else if (pc_send(p, pat) < 0)
				return -1;
		}
	}
	return 0;
}

static int
run_pingc(size_t c, uint64_t rounds)
{
	struct pattern pat;
	struct pc *cs;
	struct pollfd *pfd;
	unsigned char h[HDR_LEN];
	double *us, t0, secs;
	size_t i, nus = 0;
	char extra[64];
	int rc = 1;

	raise_nofile();
	pat_init(&pat, opt_seed);
	cs = calloc(c, sizeof(*cs));
	pfd = calloc(c, sizeof(*pfd));
	us = calloc(c * rounds + 1, sizeof(*us));
	if (cs == NULL || pfd == NULL || us == NULL) {
		perror("rtbench: calloc");
		return 1;
	}
	for (i = 0; i < c; i++)
		cs[i].fd = -1;
	mkhdr(h, 'E', 0, opt_seed);
	for (i = 0; i < c; i++) {
		if ((cs[i].fd = dial(1)) < 0)
			goto out;
		if (write_all(cs[i].fd, h, sizeof(h)) < 0)
			goto fail;
	}
	/* one uncounted round on each: every channel is open before t0 */
	if (pc_rounds(cs, c, pfd, &pat, 1, NULL, NULL) < 0)
		goto fail;
	t0 = now_s();
	if (pc_rounds(cs, c, pfd, &pat, rounds, us, &nus) < 0)
		goto fail;
	secs = now_s() - t0;
	snprintf(extra, sizeof(extra), "conns=%zu size=64", c);
	print_lat("pingc", extra, us, nus, secs, 1);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "rtbench: pingc failed: %s\n", strerror(errno));
out:
	for (i = 0; i < c; i++)
		if (cs[i].fd >= 0)
			close(cs[i].fd);
	free(cs);
	free(pfd);
	free(us);
	return rc;
}

enum { CO_CONNECTING, CO_ECHO, CO_DONE, CO_FAILED };

struct co {
	int		 fd;
	int		 state;
	size_t		 got;
	double		 t0;
	unsigned char	 in[PING_LEN];
};

/*
 * K connections opened at once; each sends a header and 64 bytes and is
 * done when the echo is back. Time = connect() to last echo byte.
 */
static int
run_conn(size_t k)
{
	struct pattern pat;
	struct co *cs;
	struct pollfd *pfd;
	unsigned char msg[HDR_LEN + PING_LEN];
	double *us, t0, secs, deadline;
	size_t i, nus = 0, left = k, failed = 0;
	socklen_t sl;
	ssize_t n;
	char extra[96];
	int one = 1, err, r;

	raise_nofile();
	pat_init(&pat, opt_seed);
	mkhdr(msg, 'E', 0, opt_seed);
	pat_fill(&pat, 0, msg + HDR_LEN, PING_LEN);
	cs = calloc(k, sizeof(*cs));
	pfd = calloc(k, sizeof(*pfd));
	us = calloc(k + 1, sizeof(*us));
	if (cs == NULL || pfd == NULL || us == NULL) {
		perror("rtbench: calloc");
		return 1;
	}
	t0 = now_s();
	deadline = t0 + timeout_s;
	for (i = 0; i < k; i++) {
		struct co *c = &cs[i];

		c->t0 = now_s();
		c->fd = socket(target->ai_family, target->ai_socktype |
		    SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0) {
			c->state = CO_FAILED;
			failed++;
			left--;
			continue;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, target->ai_addr, target->ai_addrlen) < 0 &&
		    errno != EINPROGRESS) {
			close(c->fd);
			c->fd = -1;
			c->state = CO_FAILED;
			failed++;
			left--;
			continue;
		}
		c->state = CO_CONNECTING;
	}
	while (left > 0 && now_s() < deadline && !timed_out) {
		for (i = 0; i < k; i++) {
			pfd[i].fd = cs[i].state < CO_DONE ? cs[i].fd : -1;
			pfd[i].events = cs[i].state == CO_CONNECTING ?
			    POLLOUT : POLLIN;
		}
		if ((r = poll(pfd, k, 500)) <= 0)
			continue;
		for (i = 0; i < k; i++) {
			struct co *c = &cs[i];

			if (pfd[i].revents == 0 || c->state >= CO_DONE)
				continue;
			if (c->state == CO_CONNECTING) {
				err = 0;
				sl = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
				/* 88 bytes always fit a fresh socket buffer */
				if (err != 0 || write(c->fd, msg, sizeof(msg)) !=
				    (ssize_t)sizeof(msg))
					goto bad;
				c->state = CO_ECHO;
				continue;
			}
			n = read(c->fd, c->in + c->got, PING_LEN - c->got);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0)
				goto bad;
			if ((c->got += (size_t)n) < PING_LEN)
				continue;
			if (memcmp(c->in, msg + HDR_LEN, PING_LEN) != 0)
				goto bad;
			us[nus++] = (now_s() - c->t0) * 1e6;
			c->state = CO_DONE;
			close(c->fd);
			c->fd = -1;
			left--;
			continue;
bad:
			c->state = CO_FAILED;
			close(c->fd);
			c->fd = -1;
			failed++;
			left--;
		}
	}
	secs = now_s() - t0;
	for (i = 0; i < k; i++)
		if (cs[i].fd >= 0) {
			close(cs[i].fd);
			failed++;	/* timed out */
		}
	snprintf(extra, sizeof(extra), "k=%zu failed=%zu", k, failed);
	print_lat("conn", extra, us, nus, secs, failed == 0);
	free(cs);
	free(pfd);
	free(us);
	return failed == 0 ? 0 : 1;
}

/* ---- service ---- */

enum { SV_HDR, SV_ECHO, SV_SINK, SV_GEN, SV_REPLY };

struct sconn {
	int		 fd;
	int		 state;
	uint32_t	 events;	/* registered with epoll */
	int		 eof;		/* echo: client sent EOF */
	unsigned char	 hdr[HDR_LEN];
	size_t		 hdrlen;
	uint64_t	 count, done;	/* sink/gen progress */
	uint64_t	 bad, first_bad;
	struct pattern	*pat;		/* this connection's seed */
	unsigned char	 reply[REPLY_LEN];
	size_t		 replyoff;
	size_t		 off, len;	/* to_client: buf[off..len) */
	unsigned char	 buf[ECHO_BUF];
};

static unsigned char	*sv_scratch, *sv_scratch2;

static void
sv_close(int ep, struct sconn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->pat != NULL) {
		free(c->pat->table);
		free(c->pat);
	}
	free(c);
}

static struct pattern *
sv_pattern(struct sconn *c, uint64_t seed)
{
	if (c->pat != NULL && c->pat->seed == seed)
		return c->pat;
	if (c->pat != NULL) {
		free(c->pat->table);
		free(c->pat);
	}
	if ((c->pat = malloc(sizeof(*c->pat))) == NULL) {
		perror("rtbench: malloc");
		exit(1);
	}
	pat_init(c->pat, seed);
	return c->pat;
}

/* Handles one readiness event; returns -1 when the connection is done. */
static int
sv_io(struct sconn *c, uint32_t ev)
{
	ssize_t n;
	size_t want;

	if (ev & (EPOLLERR))
		return -1;
	switch (c->state) {
	case SV_HDR:
		n = read(c->fd, c->hdr + c->hdrlen, HDR_LEN - c->hdrlen);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if ((c->hdrlen += (size_t)n) < HDR_LEN)
			return 0;
		c->hdrlen = 0;
		if (memcmp(c->hdr, magic, 4) != 0)
			return -1;
		c->count = get64(c->hdr + 8);
		c->done = c->bad = 0;
		c->first_bad = UINT64_MAX;
		switch (c->hdr[4]) {
		case 'E':
			c->state = SV_ECHO;
			break;
		case 'S':
			sv_pattern(c, get64(c->hdr + 16));
			c->state = SV_SINK;
			break;
		case 'G':
			sv_pattern(c, get64(c->hdr + 16));
			c->state = SV_GEN;
			break;
		default:
			return -1;
		}
		if (c->state != SV_ECHO && c->count == 0)
			goto reply;
		return 0;
	case SV_ECHO:
		if ((ev & EPOLLIN) && !c->eof && c->len < ECHO_BUF) {
			if (c->off > 0 && c->off == c->len)
				c->off = c->len = 0;
			n = read(c->fd, c->buf + c->len, ECHO_BUF - c->len);
			if (n == 0)
				c->eof = 1;
			else if (n < 0 && errno != EAGAIN && errno != EINTR)
				return -1;
			else if (n > 0)
				c->len += (size_t)n;
		}
		if (c->len > c->off) {
			n = write(c->fd, c->buf + c->off, c->len - c->off);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return -1;
			if (n > 0)
				c->off += (size_t)n;
			if (c->off == c->len)
				c->off = c->len = 0;
			else if (c->len == ECHO_BUF && c->off > 0) {
				memmove(c->buf, c->buf + c->off,
				    c->len - c->off);
				c->len -= c->off;
				c->off = 0;
			}
		}
		if (c->eof && c->len == 0) {
			shutdown(c->fd, SHUT_WR);
			return -1;
		}
		return 0;
	case SV_SINK:
		want = c->count - c->done < CHUNK ?
		    (size_t)(c->count - c->done) : CHUNK;
		n = read(c->fd, sv_scratch, want);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->bad += pat_check(c->pat, c->done, sv_scratch, (size_t)n,
		    sv_scratch2, &c->first_bad);
		if ((c->done += (uint64_t)n) < c->count)
			return 0;
		goto reply;
	case SV_GEN:
		/* regenerate from done: a short write costs only CPU */
		want = c->count - c->done < CHUNK ?
		    (size_t)(c->count - c->done) : CHUNK;
		pat_fill(c->pat, c->done, sv_scratch, want);
		n = write(c->fd, sv_scratch, want);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if ((c->done += (uint64_t)n) == c->count)
			c->state = SV_HDR;
		return 0;
	case SV_REPLY:
		n = write(c->fd, c->reply + c->replyoff,
		    REPLY_LEN - c->replyoff);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if ((c->replyoff += (size_t)n) == REPLY_LEN)
			c->state = SV_HDR;
		return 0;
	}
	return -1;
reply:
	memcpy(c->reply, magic, 4);
	c->reply[4] = 'R';
	c->reply[5] = c->reply[6] = c->reply[7] = 0;
	put64(c->reply + 8, c->done);
	put64(c->reply + 16, c->bad);
	put64(c->reply + 24, c->first_bad);
	if (c->bad != 0)
		fprintf(stderr, "rtbench serve: sink: %" PRIu64 " bad bytes, "
		    "first at %" PRIu64 "\n", c->bad, c->first_bad);
	c->replyoff = 0;
	c->state = SV_REPLY;
	return 0;
}

static uint32_t
sv_want(const struct sconn *c)
{
	switch (c->state) {
	case SV_ECHO:
		return (c->len < ECHO_BUF && !c->eof ? EPOLLIN : 0) |
		    (c->len > c->off ? EPOLLOUT : 0);
	case SV_GEN:
	case SV_REPLY:
		return EPOLLOUT;
	default:
		return EPOLLIN;
	}
}

static int
run_serve(const char *addr, const char *portfile, const char *port)
{
	struct addrinfo hints, *ai;
	struct epoll_event ev, evs[256];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct sconn *c;
	char pbuf[16], tmp[4096];
	FILE *f;
	int lfd, ep, one = 1, i, n, fd;

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((n = getaddrinfo(addr, port, &hints, &ai)) != 0) {
		fprintf(stderr, "rtbench serve: %s: %s\n", addr,
		    gai_strerror(n));
		return 2;
	}
	lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 || bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0) {
		perror("rtbench serve: listen");
		return 1;
	}
	freeaddrinfo(ai);
	getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, pbuf, sizeof(pbuf),
	    NI_NUMERICSERV);
	if (portfile != NULL) {
		/* written then renamed: a reader never sees half a number */
		snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
		if ((f = fopen(tmp, "w")) == NULL ||
		    fprintf(f, "%s\n", pbuf) < 0 || fclose(f) != 0 ||
		    rename(tmp, portfile) < 0) {
			perror("rtbench serve: port file");
			return 1;
		}
	}
	fprintf(stderr, "rtbench serve: listening on %s port %s\n", addr, pbuf);
	sv_scratch = malloc(CHUNK);
	sv_scratch2 = malloc(CHUNK);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || sv_scratch == NULL ||
	    sv_scratch2 == NULL) {
		perror("rtbench serve: epoll");
		return 1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		if ((n = epoll_wait(ep, evs, 256, -1)) < 0) {
			if (errno == EINTR)
				continue;
			perror("rtbench serve: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			if ((c = evs[i].data.ptr) == NULL) {
				while ((fd = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if ((c = calloc(1, sizeof(*c))) ==
					    NULL) {
						close(fd);
						continue;
					}
					setsockopt(fd, IPPROTO_TCP,
					    TCP_NODELAY, &one, sizeof(one));
					c->fd = fd;
					c->events = EPOLLIN;
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (sv_io(c, evs[i].events) < 0) {
				sv_close(ep, c);
				continue;
			}
			if (sv_want(c) != c->events) {
				c->events = sv_want(c);
				ev.events = c->events;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			}
		}
	}
}

/* ---- main ---- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: rtbench serve [-b ADDR] [-w PORTFILE] PORT\n"
	    "       rtbench [-t SECS] [-s SEED] up|down HOST:PORT BYTES\n"
	    "       rtbench [-t SECS] ping HOST:PORT N\n"
	    "       rtbench [-t SECS] pingc HOST:PORT CONNS N\n"
	    "       rtbench [-t SECS] conn HOST:PORT K\n"
	    "       rtbench [-t SECS] probe HOST:PORT\n");
	exit(2);
}

static uint64_t
num_arg(const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (parse_size(s, &v) < 0 || v < min || v > max) {
		fprintf(stderr, "rtbench: %s: want a number in %" PRIu64
		    "..%" PRIu64 "\n", s, min, max);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *portfile = NULL, *mode;
	struct sigaction sa;
	int ch;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 && strcmp(argv[1], "serve") == 0) {
		optind = 2;
		while ((ch = getopt(argc, argv, "b:w:")) != -1) {
			switch (ch) {
			case 'b': addr = optarg; break;
			case 'w': portfile = optarg; break;
			default: usage();
			}
		}
		if (argc - optind != 1)
			usage();
		return run_serve(addr, portfile, argv[optind]);
	}
	while ((ch = getopt(argc, argv, "s:t:")) != -1) {
		switch (ch) {
		case 's':
			opt_seed = num_arg(optarg, 0, UINT64_MAX);
			break;
		case 't':
			timeout_s = (int)num_arg(optarg, 1, 86400);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		usage();
	mode = argv[0];
	resolve(argv[1]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: blocked calls end */
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned int)timeout_s);
	if (strcmp(mode, "up") == 0 && argc == 3)
		return run_up(num_arg(argv[2], 1, UINT64_MAX / 2));
	if (strcmp(mode, "down") == 0 && argc == 3)
		return run_down(num_arg(argv[2], 1, UINT64_MAX / 2));
	if (strcmp(mode, "ping") == 0 && argc == 3)
		return run_ping(num_arg(argv[2], 1, 100000000), 0);
	if (strcmp(mode, "pingc") == 0 && argc == 4)
		return run_pingc((size_t)num_arg(argv[2], 1, MAX_CONNS),
		    num_arg(argv[3], 1, 10000000));
	if (strcmp(mode, "conn") == 0 && argc == 3)
		return run_conn((size_t)num_arg(argv[2], 1, MAX_CONNS));
	if (strcmp(mode, "probe") == 0 && argc == 2)
		return run_ping(1, 1);
	usage();
	return 2;
}
