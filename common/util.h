/*
 * util.h - small helpers with no better home: monotonic and wall clocks,
 * fd flags, bounded string copies and identifier validation.
 */
#ifndef RT_UTIL_H
#define RT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define RT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RT_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Milliseconds on CLOCK_MONOTONIC: for every timer, timeout and backoff. */
int64_t rt_mono_ms(void);

/* Milliseconds since the epoch (CLOCK_REALTIME): only for display and
 * certificate validity, never for timers. */
int64_t rt_wall_ms(void);

/* Writes the wall time ms as "2026-11-22T01:02:03.456Z" into buf (>= 32). */
void rt_time_iso(int64_t wall_ms, char *buf, size_t len);

/* Sets O_NONBLOCK / FD_CLOEXEC on fd. Return 0 or RT_ERR_SYS. */
int rt_fd_nonblock(int fd);
int rt_fd_cloexec(int fd);

/*
 * Copies src into dst of size len, always NUL-terminating (len > 0).
 * Returns strlen(src); a result >= len means src was truncated.
 */
size_t rt_strlcpy(char *dst, const char *src, size_t len);

/*
 * Returns 1 if s is a valid agent id or service name: 1..64 characters
 * from [A-Za-z0-9._-], not starting with '.' or '-'; 0 otherwise.
 */
int rt_valid_id(const char *s);

/*
 * Returns a random 32-bit value from the OpenSSL RNG (for jitter, not
 * secrets that need a specific source).
 */
uint32_t rt_random_u32(void);

/*
 * Returns base_ms scaled by a random factor in [1 - frac, 1 + frac]
 * (frac in 0..1), e.g. rt_jitter(10000, 0.2) in 8000..12000.
 */
int64_t rt_jitter(int64_t base_ms, double frac);

#endif
