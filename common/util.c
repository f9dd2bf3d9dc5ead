/*
 * util.c - clocks, fd flags, bounded string copy, identifier validation and
 * jitter (util.h).
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "err.h"
#include "util.h"

static int64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
rt_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t
rt_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

void
rt_time_iso(int64_t wall_ms, char *buf, size_t len)
{
	int64_t ms = wall_ms % 1000;
	time_t secs;
	struct tm tm;
	char tmp[32];

	if (len == 0)
		return;
	if (ms < 0)		/* floor, for times before 1970 */
		ms += 1000;
	secs = (time_t)((wall_ms - ms) / 1000);
	gmtime_r(&secs, &tm);
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", tmp, (int)ms);
}

static int
fd_add_flag(int fd, int get, int set, int flag)
{
	int fl = fcntl(fd, get);

	if (fl < 0)
		return RT_ERR_SYS;
	if ((fl & flag) == 0 && fcntl(fd, set, fl | flag) < 0)
		return RT_ERR_SYS;
	return 0;
}

int
rt_fd_nonblock(int fd)
{
	return fd_add_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK);
}

int
rt_fd_cloexec(int fd)
{
	return fd_add_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC);
}

size_t
rt_strlcpy(char *dst, const char *src, size_t len)
{
	size_t n = strlen(src);

	if (len > 0) {
		size_t c = n < len - 1 ? n : len - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int
rt_valid_id(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '.' || *s == '-')
		return 0;
	for (; s[n] != '\0'; n++) {
		char ch = s[n];

		if (n >= 64)
			return 0;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return 0;
	}
	return n > 0;
}

uint32_t
rt_random_u32(void)
{
	uint32_t v = 0;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint32_t)rt_mono_ms() * 2654435761u; /* still varies */
	return v;
}

int64_t
rt_jitter(int64_t base_ms, double frac)
{
	double u = (double)rt_random_u32() / 4294967295.0; /* 0..1 */

	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	return (int64_t)((double)base_ms * (1.0 - frac + 2.0 * frac * u));
}
