/*
 * log.h - the debug/operations log of both daemons.
 *
 * One process-wide sink (stderr with a timestamp, or syslog), one threshold
 * level. Lines are built by the log_* macros, which add the calling
 * function's name at debug level. Convention for object ids: start the
 * message with the object, e.g. log_info("agent %s chan %u: closed", ...).
 *
 * Line format on stderr (one write(2) per line):
 *   2026-11-22T01:02:03.456Z ident[pid]: LEVEL: message
 * where LEVEL is "error", "warning", "info" or "debug" and, at debug level
 * only, message starts with the calling function ("func: ..."). Syslog gets
 * "LEVEL: message" with facility LOG_DAEMON and the matching priority.
 *
 * Log lines never carry secrets: callers never pass passwords, keys or
 * payloads. Peer-supplied text is sanitised: every byte outside 0x20..0x7e,
 * and the backslash itself, is written as \xNN, so a peer can neither
 * forge log lines nor fake an escape. The message (after escaping) is cut
 * to LOG_LINE_MAX - 1 bytes, never inside an escape, ending in "..." when
 * anything was cut.
 *
 * No log call changes errno.
 *
 * Rate limiting: struct log_rl tracks one kind of repeated message; at most
 * LOG_RL_BURST lines per LOG_RL_WINDOW_MS pass, the rest are counted and
 * reported as "N similar messages suppressed" when the next one passes.
 *
 * The audit log is a separate stream (relay/audit.c), not this one.
 */
#ifndef RT_LOG_H
#define RT_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/* Longest message (function prefix and escapes included) plus NUL. */
#define LOG_LINE_MAX 1024

#define LOG_RL_BURST 5
#define LOG_RL_WINDOW_MS 10000

struct log_rl {
	int64_t window_start_ms;
	unsigned int in_window;	/* lines passed in the current window */
	unsigned int suppressed; /* lines dropped since the last one passed */
	unsigned int burst;	/* lines per window; 0 = LOG_RL_BURST */
};
#define LOG_RL_INIT { 0, 0, 0, 0 }
/* For messages an operator needs one by one in normal operation (each
 * refused agent, say) but that a flood must not turn into a disk fill. */
#define LOG_RL_INIT_BURST(n) { 0, 0, 0, (n) }

/* Receives every line that passes the level threshold (already formatted
 * and sanitised, without timestamp, ident, level or newline). Used by the
 * agent's in-memory log ring. Log calls made from inside the hook reach the
 * sink but not the hook again. */
typedef void (*log_hook_fn)(void *arg, enum log_level level, const char *line);

/*
 * Sets the program name (copied, at most 63 bytes; NULL keeps the current
 * one), the sink and the level. use_syslog != 0 opens syslog (LOG_DAEMON,
 * LOG_PID) with ident; otherwise lines go to stderr. May be called again
 * (e.g. on reload) to switch sink or level. Before the first call lines go
 * to stderr as "revtun" at info level.
 */
void log_init(const char *ident, int use_syslog, enum log_level level);

/* Changes the threshold (out-of-range values are clamped to error..debug);
 * returns the previous one. */
enum log_level log_set_level(enum log_level level);

/* Returns the current threshold. */
enum log_level log_get_level(void);

/* Parses "error", "warning", "info", "debug" (exactly, lower case) into
 * *out; returns 0, or RT_ERR_INVAL leaving *out untouched. */
int log_level_parse(const char *name, enum log_level *out);

/* Installs (or with fn NULL, removes) the single line hook. */
void log_set_hook(log_hook_fn fn, void *arg);

/* Closes syslog if open; later lines go to stderr. */
void log_close(void);

/* The implementation behind the macros: logs one line if level passes the
 * threshold. func may be NULL (no prefix even at debug level). */
void log_msg(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *func, const char *fmt,
	      va_list ap) __attribute__((format(printf, 3, 0)));

/*
 * Returns 1 if a message of the kind tracked by rl may be logged now, 0 if
 * it is suppressed. A window starts at the first message and lasts
 * LOG_RL_WINDOW_MS (monotonic clock); the first LOG_RL_BURST messages of a
 * window pass. When a message passes after others were suppressed, a
 * "N similar messages suppressed" line is logged first at the same level.
 * A level above the threshold returns 0 and does not touch rl.
 */
int log_rl_allow(struct log_rl *rl, enum log_level level);

#define log_err(...)   log_msg(LOG_LVL_ERR, __func__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __func__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __func__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __func__, __VA_ARGS__)

/* Rate-limited variants: rl is a struct log_rl * that lives as long as the
 * kind of message it limits (often a static in the calling function). */
#define log_err_rl(rl, ...) \
	do { if (log_rl_allow((rl), LOG_LVL_ERR)) log_err(__VA_ARGS__); } while (0)
#define log_warn_rl(rl, ...) \
	do { if (log_rl_allow((rl), LOG_LVL_WARN)) log_warn(__VA_ARGS__); } while (0)
#define log_info_rl(rl, ...) \
	do { if (log_rl_allow((rl), LOG_LVL_INFO)) log_info(__VA_ARGS__); } while (0)

#endif
