/*
 * test_log.c - unit tests of common/log.c: threshold, sanitising,
 * truncation, debug prefix, errno preservation, the stderr line format,
 * the rate limiter and level names.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "log.h"
#include "runner.h"

int suite_log(void);

/* What the hook saw; one instance per test, on its stack. */
struct capture {
	unsigned int n;
	enum log_level level;
	char line[LOG_LINE_MAX];	/* the last line */
	char first[LOG_LINE_MAX];	/* the first line */
	int clobber_errno;
	int relog;
};

static void
capture_hook(void *arg, enum log_level level, const char *line)
{
	struct capture *c = arg;

	if (c->n == 0)
		snprintf(c->first, sizeof(c->first), "%s", line);
	c->n++;
	c->level = level;
	snprintf(c->line, sizeof(c->line), "%s", line);
	if (c->clobber_errno)
		errno = EBADF;
	if (c->relog)
		log_err("from inside the hook");
}

static enum log_level saved_level;
static int saved_stderr = -1;

/* Quiet stderr (the sink) for the whole suite; tests see lines through
 * the hook. test_stderr_format captures it explicitly. */
static int
log_suite_init(void)
{
	int null;

	saved_level = log_get_level();
	fflush(stderr);
	if ((saved_stderr = dup(STDERR_FILENO)) < 0)
		return -1;
	if ((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		return -1;
	dup2(null, STDERR_FILENO);
	close(null);
	return 0;
}

static int
log_suite_clean(void)
{
	log_set_hook(NULL, NULL);
	log_set_level(saved_level);
	if (saved_stderr >= 0) {
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
	}
	return 0;
}

static void
test_threshold(void)
{
	struct capture c = { 0 };

	log_set_hook(capture_hook, &c);
	log_set_level(LOG_LVL_WARN);
	CU_ASSERT_EQUAL(log_get_level(), LOG_LVL_WARN);
	log_info("dropped");
	log_debug("dropped");
	CU_ASSERT_EQUAL(c.n, 0);
	log_warn("kept %d", 1);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_EQUAL(c.level, LOG_LVL_WARN);
	CU_ASSERT_STRING_EQUAL(c.line, "kept 1");
	log_err("kept %d", 2);
	CU_ASSERT_EQUAL(c.n, 2);
	CU_ASSERT_EQUAL(c.level, LOG_LVL_ERR);
	CU_ASSERT_EQUAL(log_set_level(LOG_LVL_INFO), LOG_LVL_WARN);
	log_info("now kept");
	CU_ASSERT_EQUAL(c.n, 3);
	/* removing the hook stops it */
	log_set_hook(NULL, NULL);
	log_err("not seen");
	CU_ASSERT_EQUAL(c.n, 3);
}

static int
all_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static void
test_sanitise(void)
{
	struct capture c = { 0 };

	log_set_hook(capture_hook, &c);
	log_set_level(LOG_LVL_INFO);
	log_info("peer %s", "said\n2026-01-01 fake: line\x1b[31mred\\x0a\xff");
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_STRING_EQUAL(c.line, "peer said\\x0a2026-01-01 fake: line"
			       "\\x1b[31mred\\x5cx0a\\xff");
	CU_ASSERT(all_printable(c.line));
	CU_ASSERT_PTR_NULL(strchr(c.line, '\n'));
	CU_ASSERT_PTR_NULL(strchr(c.line, '\x1b'));
	log_set_hook(NULL, NULL);
}

static void
test_truncation(void)
{
	struct capture c = { 0 };
	char *big = malloc(5000);
	size_t len;

	CU_ASSERT_FATAL(big != NULL);
	log_set_hook(capture_hook, &c);
	log_set_level(LOG_LVL_INFO);

	/* plain text: cut to exactly LOG_LINE_MAX - 1 bytes */
	memset(big, 'a', 4999);
	big[4999] = '\0';
	log_info("%s", big);
	len = strlen(c.line);
	CU_ASSERT_EQUAL(len, LOG_LINE_MAX - 1);
	CU_ASSERT_STRING_EQUAL(c.line + len - 3, "...");

	/* escapes only: never cut inside one */
	memset(big, '\n', 1000);
	big[1000] = '\0';
	log_info("%s", big);
	len = strlen(c.line);
	CU_ASSERT(len <= LOG_LINE_MAX - 1);
	CU_ASSERT(len > LOG_LINE_MAX - 8);
	CU_ASSERT_STRING_EQUAL(c.line + len - 3, "...");
	CU_ASSERT_EQUAL((len - 3) % 4, 0);
	CU_ASSERT_NSTRING_EQUAL(c.line + len - 7, "\\x0a", 4);

	/* a line that fits exactly is not marked */
	memset(big, 'b', LOG_LINE_MAX - 1);
	big[LOG_LINE_MAX - 1] = '\0';
	log_info("%s", big);
	CU_ASSERT_STRING_EQUAL(c.line, big);

	log_set_hook(NULL, NULL);
	free(big);
}

static void
test_debug_prefix(void)
{
	struct capture c = { 0 };

	log_set_hook(capture_hook, &c);
	log_set_level(LOG_LVL_DEBUG);
	log_debug("x=%d", 5);
	CU_ASSERT_STRING_EQUAL(c.line, "test_debug_prefix: x=5");
	log_info("no prefix");
	CU_ASSERT_STRING_EQUAL(c.line, "no prefix");
	log_msg(LOG_LVL_DEBUG, NULL, "null func");
	CU_ASSERT_STRING_EQUAL(c.line, "null func");
	log_set_level(LOG_LVL_INFO);
	log_set_hook(NULL, NULL);
}

static void
test_errno_kept(void)
{
	struct capture c = { 0 };

	c.clobber_errno = 1;
	log_set_hook(capture_hook, &c);
	log_set_level(LOG_LVL_INFO);
	errno = ENOENT;
	log_err("e %s", "x");
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_EQUAL(errno, ENOENT);
	errno = EACCES;
	log_debug("filtered");
	CU_ASSERT_EQUAL(errno, EACCES);
	/* %m sees the caller's errno, not one clobbered while formatting */
	errno = ENOENT;
	log_info("m=%m");
	CU_ASSERT_STRING_EQUAL(c.line, "m=No such file or directory");
	log_set_hook(NULL, NULL);
}

static void
test_hook_relog(void)
{
	struct capture c = { 0 };

	c.relog = 1;
	log_set_hook(capture_hook, &c);
	log_set_level(LOG_LVL_INFO);
	log_info("outer");
	CU_ASSERT_EQUAL(c.n, 1);	/* the inner line skips the hook */
	CU_ASSERT_STRING_EQUAL(c.line, "outer");
	log_set_hook(NULL, NULL);
}

static void
test_stderr_format(void)
{
	char dir[256], path[300], buf[2048], want[64];
	int fd, saved;
	ssize_t n;

	CU_ASSERT_FATAL(unit_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(path, sizeof(path), "%s/err.txt", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	saved = dup(STDERR_FILENO);
	CU_ASSERT_FATAL(saved >= 0);
	dup2(fd, STDERR_FILENO);

	log_init("rt-test", 0, LOG_LVL_INFO);
	log_warn("disk %s", "full\r");
	log_init("unit", 0, LOG_LVL_INFO);

	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unit_rmtree(dir);
	CU_ASSERT_FATAL(n > 0);
	buf[n] = '\0';

	/* 2026-11-22T01:02:03.456Z rt-test[pid]: warning: disk full\x0d */
	CU_ASSERT_EQUAL(strlen(buf), (size_t)n);
	CU_ASSERT(n > 24);
	CU_ASSERT(buf[4] == '-' && buf[7] == '-' && buf[10] == 'T' &&
		  buf[13] == ':' && buf[16] == ':' && buf[19] == '.' &&
		  buf[23] == 'Z' && buf[24] == ' ');
	snprintf(want, sizeof(want), " rt-test[%ld]: warning: disk full"
		 "\\x0d\n", (long)getpid());
	CU_ASSERT_STRING_EQUAL(buf + 24, want);
}

static void
test_rate_limit(void)
{
	struct capture c = { 0 };
	struct log_rl rl = LOG_RL_INIT;
	unsigned int i, passed = 0;

	log_set_hook(capture_hook, &c);
	log_set_level(LOG_LVL_INFO);
	for (i = 0; i < LOG_RL_BURST + 3; i++) {
		if (log_rl_allow(&rl, LOG_LVL_WARN)) {
			passed++;
			log_warn("connect failed %u", i);
		}
	}
	CU_ASSERT_EQUAL(passed, LOG_RL_BURST);
	CU_ASSERT_EQUAL(rl.suppressed, 3);
	CU_ASSERT_EQUAL(c.n, LOG_RL_BURST);
	CU_ASSERT_EQUAL(log_rl_allow(&rl, LOG_LVL_WARN), 0);
	CU_ASSERT_EQUAL(rl.suppressed, 4);

	/* the window ends: the next one passes after a summary line */
	rl.window_start_ms -= LOG_RL_WINDOW_MS;
	c.n = 0;
	CU_ASSERT_EQUAL(log_rl_allow(&rl, LOG_LVL_WARN), 1);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_EQUAL(c.level, LOG_LVL_WARN);
	CU_ASSERT_STRING_EQUAL(c.line, "4 similar messages suppressed");
	CU_ASSERT_EQUAL(rl.suppressed, 0);
	CU_ASSERT_EQUAL(rl.in_window, 1);

	/* the macro form: 4 more pass in this window, then none */
	c.n = 0;
	for (i = 0; i < 10; i++)
		log_warn_rl(&rl, "again %u", i);
	CU_ASSERT_EQUAL(c.n, LOG_RL_BURST - 1);
	CU_ASSERT_STRING_EQUAL(c.first, "again 0");
	CU_ASSERT_EQUAL(rl.suppressed, 10 - (LOG_RL_BURST - 1));

	/* a limiter with its own burst */
	{
		struct log_rl b = LOG_RL_INIT_BURST(LOG_RL_BURST + 7);

		passed = 0;
		for (i = 0; i < 100; i++)
			passed += log_rl_allow(&b, LOG_LVL_WARN);
		CU_ASSERT_EQUAL(passed, LOG_RL_BURST + 7);
		CU_ASSERT_EQUAL(b.suppressed, 100 - (LOG_RL_BURST + 7));
	}

	/* a filtered level neither passes nor counts */
	{
		struct log_rl q = LOG_RL_INIT;

		log_set_level(LOG_LVL_WARN);
		CU_ASSERT_EQUAL(log_rl_allow(&q, LOG_LVL_INFO), 0);
		CU_ASSERT_EQUAL(q.in_window, 0);
		CU_ASSERT_EQUAL(q.suppressed, 0);
		log_set_level(LOG_LVL_INFO);
	}
	log_set_hook(NULL, NULL);
}

static void
test_level_parse(void)
{
	static const struct {
		const char *s;
		int r;
		enum log_level l;
	} t[] = {
		{ "error", 0, LOG_LVL_ERR },
		{ "warning", 0, LOG_LVL_WARN },
		{ "info", 0, LOG_LVL_INFO },
		{ "debug", 0, LOG_LVL_DEBUG },
		{ "", RT_ERR_INVAL, 0 },
		{ "Info", RT_ERR_INVAL, 0 },
		{ "debug ", RT_ERR_INVAL, 0 },
		{ "trace", RT_ERR_INVAL, 0 },
	};
	enum log_level l;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		l = (enum log_level)99;
		CU_ASSERT_EQUAL(log_level_parse(t[i].s, &l), t[i].r);
		if (t[i].r == 0) {
			CU_ASSERT_EQUAL(l, t[i].l);
		} else {
			CU_ASSERT_EQUAL(l, (enum log_level)99);
		}
	}
	CU_ASSERT_EQUAL(log_level_parse(NULL, &l), RT_ERR_INVAL);
}

int
suite_log(void)
{
	CU_pSuite s = CU_add_suite("log", log_suite_init, log_suite_clean);

	if (s == NULL ||
	    CU_add_test(s, "threshold", test_threshold) == NULL ||
	    CU_add_test(s, "sanitise", test_sanitise) == NULL ||
	    CU_add_test(s, "truncation", test_truncation) == NULL ||
	    CU_add_test(s, "debug prefix", test_debug_prefix) == NULL ||
	    CU_add_test(s, "errno kept", test_errno_kept) == NULL ||
	    CU_add_test(s, "hook relog", test_hook_relog) == NULL ||
	    CU_add_test(s, "stderr format", test_stderr_format) == NULL ||
	    CU_add_test(s, "rate limit", test_rate_limit) == NULL ||
	    CU_add_test(s, "level parse", test_level_parse) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
