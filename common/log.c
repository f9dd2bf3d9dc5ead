/*
 * log.c - the process-wide debug/operations log (log.h): level threshold,
 * sanitising and truncating lines, the stderr and syslog sinks, the line
 * hook and the rate limiter.
 *
 * The sink is process-wide by contract, so this file keeps its state in one
 * static struct (the only mutable file-scope state outside signal flags):
 * it is set by log_init()/log_set_*() and read by every log call. The
 * daemons are single-threaded; nothing here locks.
 *
 * Every line is built once into a bounded buffer (LOG_LINE_MAX) and written
 * with a single write(2) so lines from several processes sharing stderr do
 * not interleave. errno is preserved across every log call so callers can
 * log first and then inspect errno.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "util.h"

#define LOG_IDENT_MAX 64

static struct {
	char ident[LOG_IDENT_MAX];	/* must outlive openlog() */
	int use_syslog;
	int syslog_open;
	enum log_level level;
	log_hook_fn hook;
	void *hook_arg;
	int in_hook;			/* a hook that logs is not re-entered */
} lg = {
	.ident = "revtun",
	.level = LOG_LVL_INFO,
};

static const char *const level_name[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

static const int level_prio[] = {
	[LOG_LVL_ERR] = LOG_ERR,
	[LOG_LVL_WARN] = LOG_WARNING,
	[LOG_LVL_INFO] = LOG_INFO,
	[LOG_LVL_DEBUG] = LOG_DEBUG,
};

static enum log_level
clamp_level(enum log_level level)
{
	if ((int)level < LOG_LVL_ERR)
		return LOG_LVL_ERR;
	if ((int)level > LOG_LVL_DEBUG)
		return LOG_LVL_DEBUG;
	return level;
}

void
log_init(const char *ident, int use_syslog, enum log_level level)
{
	int saved = errno;

	if (ident != NULL && *ident != '\0')
		rt_strlcpy(lg.ident, ident, sizeof(lg.ident));
	if (lg.syslog_open) {
		closelog();
		lg.syslog_open = 0;
	}
	lg.use_syslog = use_syslog != 0;
	if (lg.use_syslog) {
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		lg.syslog_open = 1;
	}
	lg.level = clamp_level(level);
	errno = saved;
}

enum log_level
log_set_level(enum log_level level)
{
	enum log_level old = lg.level;

	lg.level = clamp_level(level);
	return old;
}

enum log_level
log_get_level(void)
{
	return lg.level;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	size_t i;

	if (name == NULL)
		return RT_ERR_INVAL;
	for (i = 0; i < RT_ARRAY_SIZE(level_name); i++) {
		if (strcmp(name, level_name[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return RT_ERR_INVAL;
}

void
log_set_hook(log_hook_fn fn, void *arg)
{
	lg.hook = fn;
	lg.hook_arg = fn != NULL ? arg : NULL;
}

void
log_close(void)
{
	int saved = errno;

	if (lg.syslog_open) {
		closelog();
		lg.syslog_open = 0;
	}
	lg.use_syslog = 0;
	errno = saved;
	/* stderr is unbuffered and written with write(2): nothing to flush. */
}

/*
 * Copies src (n bytes) into dst (size LOG_LINE_MAX) with every byte outside
 * 0x20..0x7e, and the backslash itself, written as \xNN. Escaping the
 * backslash keeps the output unambiguous: a peer cannot type a literal
 * "\x0a" that reads like an escaped newline. If the result does not fit,
 * or more_input says the caller already lost input, it is cut at a
 * character boundary and ends in "...".
 */
static void
sanitise(char *dst, const char *src, size_t n, int more_input)
{
	static const char hex[] = "0123456789abcdef";
	const size_t cap = LOG_LINE_MAX - 1;	/* room for the NUL */
	const size_t keep = cap - 3;		/* room for "..." */
	size_t i, o = 0, cut = 0;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];
		size_t w = (ch >= 0x20 && ch <= 0x7e && ch != '\\') ? 1 : 4;

		if (o + w <= keep)
			cut = o + w;
		if (o + w > cap) {
			more_input = 1;
			break;
		}
		if (w == 1) {
			dst[o++] = (char)ch;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 0xf];
		}
	}
	if (more_input) {
		/* cut never splits an escape: it only advances by whole ones */
		memcpy(dst + cut, "...", 3);
		o = cut + 3;
	}
	dst[o] = '\0';
}

static void
write_stderr(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(STDERR_FILENO, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;		/* nowhere left to report it */
		buf += w;
		len -= (size_t)w;
	}
}

void
log_vmsg(enum log_level level, const char *func, const char *fmt, va_list ap)
{
	int saved = errno;
	char raw[LOG_LINE_MAX];
	char line[LOG_LINE_MAX];
	char out[LOG_LINE_MAX + 128];
	char ts[32];
	size_t off = 0;
	int n;

	level = clamp_level(level);
	if (level > lg.level)
		goto out;

	if (level == LOG_LVL_DEBUG && func != NULL) {
		n = snprintf(raw, sizeof(raw), "%s: ", func);
		if (n > 0)
			off = (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1;
	}
	errno = saved;		/* so a caller's %m still works */
	n = vsnprintf(raw + off, sizeof(raw) - off, fmt, ap);
	if (n < 0) {
		n = snprintf(raw, sizeof(raw), "(bad log format \"%s\")", fmt);
		off = 0;
	}
	if (n < 0)
		goto out;
	if (off + (size_t)n < sizeof(raw))
		sanitise(line, raw, off + (size_t)n, 0);
	else
		sanitise(line, raw, sizeof(raw) - 1, 1);

	if (lg.hook != NULL && !lg.in_hook) {
		lg.in_hook = 1;
		lg.hook(lg.hook_arg, level, line);
		lg.in_hook = 0;
	}

	if (lg.use_syslog) {
		syslog(level_prio[level], "%s: %s", level_name[level], line);
	} else {
		rt_time_iso(rt_wall_ms(), ts, sizeof(ts));
		n = snprintf(out, sizeof(out), "%s %s[%ld]: %s: %s\n", ts,
			     lg.ident, (long)getpid(), level_name[level], line);
		if (n > 0) {
			if ((size_t)n >= sizeof(out)) {
				/* cannot happen with the bounds above; keep
				 * the line terminated anyway */
				n = (int)sizeof(out) - 1;
				out[n - 1] = '\n';
			}
			write_stderr(out, (size_t)n);
		}
	}
 out:
	errno = saved;
}

void
log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, func, fmt, ap);
	va_end(ap);
}

int
log_rl_allow(struct log_rl *rl, enum log_level level)
{
	int64_t now;
	unsigned int dropped;

	/* A line that would be filtered anyway neither uses the budget nor
	 * counts as suppressed. */
	if (clamp_level(level) > lg.level)
		return 0;
	now = rt_mono_ms();
	if (rl->window_start_ms == 0 ||
	    now - rl->window_start_ms >= LOG_RL_WINDOW_MS ||
	    now < rl->window_start_ms) {
		rl->window_start_ms = now;
		rl->in_window = 0;
	}
	if (rl->in_window >= (rl->burst != 0 ? rl->burst : LOG_RL_BURST)) {
		if (rl->suppressed < (unsigned int)-1)
			rl->suppressed++;
		return 0;
	}
	rl->in_window++;
	if (rl->suppressed > 0) {
		dropped = rl->suppressed;
		rl->suppressed = 0;
		log_msg(level, NULL, "%u similar messages suppressed", dropped);
	}
	return 1;
}
