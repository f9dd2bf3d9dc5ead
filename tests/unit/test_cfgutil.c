/*
 * test_cfgutil.c - unit tests of common/cfgutil.c: duration and size
 * syntax, validators reporting "FILE:LINE:" through cfgu_parse_buf(), the
 * bounded error list, file checks of cfgu_parse() and key permissions.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "cfgutil.h"
#include "err.h"
#include "runner.h"

int suite_cfgutil(void);

static cfg_opt_t sub_opts[] = {
	CFG_STR("timeout", "1s", CFGF_NONE),
	CFG_INT("count", 1, CFGF_NONE),
	CFG_END()
};

static cfg_opt_t opts[] = {
	CFG_INT("port", 22, CFGF_NONE),
	CFG_STR("timeout", "30s", CFGF_NONE),
	CFG_STR("max_size", "1M", CFGF_NONE),
	CFG_STR("key", "/etc/revtun/key", CFGF_NONE),
	CFG_INT("workers", 1, CFGF_NONE),
	CFG_STR_LIST("retries", "{}", CFGF_NONE),
	CFG_INT_LIST("ports", "{}", CFGF_NONE),
	CFG_SEC("sub", sub_opts, CFGF_MULTI | CFGF_TITLE),
	CFG_END()
};

static cfg_t *
new_cfg(void)
{
	cfg_t *cfg = cfg_init(opts, CFGF_NONE);

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	cfg_set_validate_func(cfg, "port", cfgu_validate_port);
	cfg_set_validate_func(cfg, "ports", cfgu_validate_port);
	cfg_set_validate_func(cfg, "timeout", cfgu_validate_duration);
	cfg_set_validate_func(cfg, "retries", cfgu_validate_duration);
	cfg_set_validate_func(cfg, "max_size", cfgu_validate_size);
	cfg_set_validate_func(cfg, "key", cfgu_validate_path);
	cfg_set_validate_func(cfg, "workers", cfgu_validate_positive);
	cfg_set_validate_func(cfg, "sub|timeout", cfgu_validate_duration);
	return cfg;
}

static int
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
test_duration(void)
{
	static const struct {
		const char *s;
		int64_t ms;		/* -1: refused */
	} t[] = {
		{ "250ms", 250 }, { "30s", 30000 }, { "5m", 300000 },
		{ "2h", 7200000 }, { "1d", 86400000 }, { "30", 30000 },
		{ "0", 0 }, { "0ms", 0 }, { "007s", 7000 },
		{ "30d", INT64_C(2592000000) }, { "720h", INT64_C(2592000000) },
		{ "2592000000ms", INT64_C(2592000000) },
		{ "2592000", INT64_C(2592000000) },
		{ "31d", -1 }, { "721h", -1 }, { "2592000001ms", -1 },
		{ "2592001", -1 }, { "18446744073709551615ms", -1 },
		{ "99999999999999999999999999s", -1 },
		{ "", -1 }, { "s", -1 }, { "ms", -1 }, { "-5s", -1 },
		{ "+5s", -1 }, { " 5s", -1 }, { "5 s", -1 }, { "5s ", -1 },
		{ "5S", -1 }, { "5x", -1 }, { "5sm", -1 }, { "1.5s", -1 },
		{ "0x10", -1 }, { "5mss", -1 },
	};
	size_t i;
	int64_t ms;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		ms = -42;
		if (t[i].ms >= 0) {
			if (cfgu_parse_duration(t[i].s, &ms) != 0 ||
			    ms != t[i].ms)
				CU_FAIL(t[i].s);
		} else {
			if (cfgu_parse_duration(t[i].s, &ms) != RT_ERR_INVAL ||
			    ms != -42)
				CU_FAIL(t[i].s);
		}
	}
	CU_ASSERT_EQUAL(cfgu_parse_duration(NULL, &ms), RT_ERR_INVAL);
}

static void
test_size(void)
{
	static const struct {
		const char *s;
		int ok;
		uint64_t b;
	} t[] = {
		{ "512", 1, 512 }, { "0", 1, 0 }, { "64k", 1, 65536 },
		{ "64K", 1, 65536 }, { "1M", 1, 1048576 }, { "1m", 1, 1048576 },
		{ "1G", 1, UINT64_C(1073741824) },
		{ "1024G", 1, UINT64_C(1099511627776) },
		{ "1048576M", 1, UINT64_C(1099511627776) },
		{ "1099511627776", 1, UINT64_C(1099511627776) },
		{ "1025G", 0, 0 }, { "1099511627777", 0, 0 }, { "1T", 0, 0 },
		{ "18446744073709551616", 0, 0 },
		{ "17179869184G", 0, 0 },	/* 2^64 bytes: must not wrap */
		{ "", 0, 0 }, { "k", 0, 0 }, { "-1", 0, 0 }, { "1 k", 0, 0 },
		{ "1kb", 0, 0 }, { "1KiB", 0, 0 }, { "1.5M", 0, 0 },
		{ " 1", 0, 0 },
	};
	size_t i;
	uint64_t b;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		b = 42;
		if (t[i].ok) {
			if (cfgu_parse_size(t[i].s, &b) != 0 || b != t[i].b)
				CU_FAIL(t[i].s);
		} else {
			if (cfgu_parse_size(t[i].s, &b) != RT_ERR_INVAL ||
			    b != 42)
				CU_FAIL(t[i].s);
		}
	}
	CU_ASSERT_EQUAL(cfgu_parse_size(NULL, &b), RT_ERR_INVAL);
}

static void
test_parse_ok(void)
{
	struct cfgu_errors e;
	cfg_t *cfg = new_cfg();

	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL(cfgu_parse_buf(cfg,
	    "# comment\n"
	    "port = 2222\n"
	    "timeout = \"5s\"\n"
	    "retries = {\"1s\", \"250ms\"}\n"
	    "ports = {1, 65535}\n"
	    "sub a {\n  timeout = \"2m\"\n}\n", "t.conf", &e), 0);
	CU_ASSERT_EQUAL(e.n, 0);
	CU_ASSERT_EQUAL(cfg_getint(cfg, "port"), 2222);
	CU_ASSERT_EQUAL(cfgu_get_duration(cfg, "timeout"), 5000);
	CU_ASSERT_EQUAL(cfgu_get_size(cfg, "max_size"), 1048576); /* default */
	CU_ASSERT_EQUAL(cfg_size(cfg, "retries"), 2);
	CU_ASSERT_EQUAL(cfgu_get_duration(cfg_getnsec(cfg, "sub", 0),
					  "timeout"), 120000);
	cfg_free(cfg);

	/* empty input is a valid, all-defaults config */
	cfg = new_cfg();
	CU_ASSERT_EQUAL(cfgu_parse_buf(cfg, "", "empty.conf", &e), 0);
	CU_ASSERT_EQUAL(e.n, 0);
	CU_ASSERT_EQUAL(cfgu_get_duration(cfg, "timeout"), 30000);
	cfg_free(cfg);
}

/* Parses text as "t.conf" and expects RT_ERR_CONFIG with exactly one
 * message starting with prefix and containing every needle. */
static void
expect_error(const char *text, const char *prefix, const char *needle1,
	     const char *needle2)
{
	struct cfgu_errors e;
	cfg_t *cfg = new_cfg();

	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL(cfgu_parse_buf(cfg, text, "t.conf", &e),
			RT_ERR_CONFIG);
	CU_ASSERT_EQUAL(e.n, 1);
	if (e.n >= 1) {
		if (!starts_with(e.msg[0], prefix) ||
		    strstr(e.msg[0], needle1) == NULL ||
		    (needle2 != NULL && strstr(e.msg[0], needle2) == NULL)) {
			fprintf(stderr, "\n  got: %s\n", e.msg[0]);
			CU_FAIL(text);
		}
	}
	cfg_free(cfg);
}

static void
test_validators(void)
{
	expect_error("workers = 2\n\nport = 70000\n", "t.conf:3: ", "'port'",
		     "70000");
	expect_error("port = 0\n", "t.conf:1: ", "'port'", "0");
	expect_error("ports = {22,\n 65536}\n", "t.conf:", "'ports'", "65536");
	expect_error("\ntimeout = \"5x\"\n", "t.conf:2: ", "'timeout'", "5x");
	expect_error("timeout = \"31d\"\n", "t.conf:1: ", "'timeout'", "31d");
	expect_error("retries = {\"1s\", \"bad\"}\n", "t.conf:1: ",
		     "'retries'", "'bad'");
	expect_error("max_size = \"2T\"\n", "t.conf:1: ", "'max_size'", "2T");
	expect_error("key = \"relative/key.pem\"\n", "t.conf:1: ", "'key'",
		     "relative/key.pem");
	expect_error("key = \"\"\n", "t.conf:1: ", "'key'", "absolute");
	expect_error("workers = 0\n", "t.conf:1: ", "'workers'", "positive");
	expect_error("workers = -3\n", "t.conf:1: ", "'workers'", "-3");
	/* libconfuse's own type errors inside a section name the file */
	expect_error("\nsub a {\n  count = \"lots\"\n}\n", "t.conf:3: ",
		     "'count'", NULL);
	expect_error("sub a {\n\n  timeout = \"forever\"\n}\n", "t.conf:3: ",
		     "'timeout'", "forever");
}

static void
test_syntax_errors(void)
{
	/* a stray brace on line 3 */
	expect_error("port = 22\nworkers = 3\n}\n", "t.conf:3: ", "", NULL);
	/* an unknown option is refused, by name */
	expect_error("port = 22\n\nnosuch = 1\n", "t.conf:3: ", "nosuch",
		     NULL);
	/* a string where a number belongs */
	expect_error("port = \"ssh\"\n", "t.conf:1: ", "'port'", NULL);
	/* unterminated string */
	expect_error("timeout = \"5s\n", "t.conf:", "", NULL);
	/* an unquoted '*': libconfuse skipped it, or stopped reading at
	 * "**" and loaded port 5 without a word (found by fuzz_cfgutil) */
	expect_error("port = 22 ** port = 7\n", "t.conf:1: ", "'*'", NULL);
	expect_error("port = 22\n\n*\nport = 7\n", "t.conf:3: ", "'*'",
		     NULL);
	expect_error("\n**/**\x01\n}", "t.conf:2: ", "'*'", NULL);
}

/* Comments must not shift line numbers (libconfuse 3.3 counts their
 * newlines twice) and may sit inside lists; '#' in a string is data. */
static void
test_comments(void)
{
	struct cfgu_errors e;
	cfg_t *cfg = new_cfg();

	expect_error("# one\n# two\n// three\n/* four\n five */\nport = 0\n",
		     "t.conf:6: ", "'port'", NULL);
	expect_error("ports = { 22, # ssh\n 80, // web\n 0 }\n", "t.conf:",
		     "'ports'", NULL);
	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL(cfgu_parse_buf(cfg, "key = \"/a#b//c\" # x\n"
				       "ports = { 22, # ssh\n 80 }\n",
				       "t.conf", &e), 0);
	CU_ASSERT_EQUAL(e.n, 0);
	CU_ASSERT_STRING_EQUAL(cfg_getstr(cfg, "key"), "/a#b//c");
	CU_ASSERT_EQUAL(cfg_size(cfg, "ports"), 2);
	cfg_free(cfg);

	/* an unquoted value may contain '//' (libconfuse keeps it) */
	cfg = new_cfg();
	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL(cfgu_parse_buf(cfg, "key = /a//b // comment\n",
				       "t.conf", &e), 0);
	CU_ASSERT_EQUAL(e.n, 0);
	CU_ASSERT_STRING_EQUAL(cfg_getstr(cfg, "key"), "/a//b");
	cfg_free(cfg);
}

static void
test_error_list(void)
{
	struct cfgu_errors e;
	char long_arg[2 * CFGU_ERRLEN];
	cfg_t *cfg = new_cfg();
	unsigned int i;

	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL(e.n, 0);
	for (i = 0; i < CFGU_MAX_ERRORS + 8; i++)
		cfgu_errors_add(&e, "problem %u", i);
	CU_ASSERT_EQUAL(e.n, CFGU_MAX_ERRORS);
	CU_ASSERT_EQUAL(e.dropped, 8);
	CU_ASSERT_STRING_EQUAL(e.msg[0], "problem 0");
	CU_ASSERT_STRING_EQUAL(e.msg[CFGU_MAX_ERRORS - 1], "problem 31");

	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL(e.n, 0);
	CU_ASSERT_EQUAL(e.dropped, 0);
	memset(long_arg, 'y', sizeof(long_arg) - 1);
	long_arg[sizeof(long_arg) - 1] = '\0';
	cfgu_errors_add(&e, "%s", long_arg);
	CU_ASSERT_EQUAL(strlen(e.msg[0]), CFGU_ERRLEN - 1);

	/* add_at uses the file and line of the parse */
	CU_ASSERT_EQUAL(cfgu_parse_buf(cfg, "port = 22\n\nworkers = 4\n",
				       "relay.conf", &e), 0);
	cfgu_errors_add_at(&e, cfg, "operator %s: no keys", "alice");
	CU_ASSERT_EQUAL(e.n, 2);
	CU_ASSERT(starts_with(e.msg[1], "relay.conf:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg[1], ": operator alice: no keys"));
	cfg_free(cfg);
}

static int
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(text);

	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	if (fchmod(fd, mode) < 0) {	/* umask must not decide */
		close(fd);
		return -1;
	}
	return close(fd);
}

/* Runs cfgu_parse() on path and checks r and that the first message
 * starts with path and contains needle. */
static void
expect_file(const char *path, size_t max, int want, const char *needle)
{
	struct cfgu_errors e;
	cfg_t *cfg = new_cfg();
	int r;

	cfgu_errors_init(&e);
	r = cfgu_parse(cfg, path, max, &e);
	CU_ASSERT_EQUAL(r, want);
	if (want == 0) {
		CU_ASSERT_EQUAL(e.n, 0);
	} else {
		CU_ASSERT_EQUAL(e.n, 1);
		if (e.n < 1 || !starts_with(e.msg[0], path) ||
		    strstr(e.msg[0], needle) == NULL) {
			fprintf(stderr, "\n  got: %s\n", e.n ? e.msg[0] : "");
			CU_FAIL(path);
		}
	}
	cfg_free(cfg);
}

static void
test_files(void)
{
	char dir[256], good[300], big[300], bad[300], missing[300], link[300],
	    fifo[300], text[200];
	struct cfgu_errors e;
	cfg_t *cfg;

	CU_ASSERT_FATAL(unit_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(good, sizeof(good), "%s/good.conf", dir);
	snprintf(big, sizeof(big), "%s/big.conf", dir);
	snprintf(bad, sizeof(bad), "%s/bad.conf", dir);
	snprintf(missing, sizeof(missing), "%s/missing.conf", dir);
	snprintf(link, sizeof(link), "%s/link.conf", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo.conf", dir);

	CU_ASSERT_FATAL(write_file(good, "port = 2200\ntimeout = \"2s\"\n",
				   0644) == 0);
	memset(text, '#', sizeof(text) - 2);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	CU_ASSERT_FATAL(write_file(big, text, 0644) == 0);
	CU_ASSERT_FATAL(write_file(bad, "port = 22\n\nport = 99999\n",
				   0644) == 0);
	CU_ASSERT_FATAL(symlink(good, link) == 0);
	CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);

	cfg = new_cfg();
	cfgu_errors_init(&e);
	CU_ASSERT_EQUAL(cfgu_parse(cfg, good, 0, &e), 0);
	CU_ASSERT_EQUAL(cfg_getint(cfg, "port"), 2200);
	CU_ASSERT_EQUAL(cfgu_get_duration(cfg, "timeout"), 2000);
	cfg_free(cfg);

	expect_file(link, 0, 0, "");		/* symlinks are fine */
	expect_file(big, 100, RT_ERR_TOOBIG, "larger than");
	expect_file(big, sizeof(text) - 1, 0, "");	/* exactly the limit */
	expect_file("/dev/zero", 0, RT_ERR_INVAL, "not a regular file");
	expect_file(dir, 0, RT_ERR_INVAL, "not a regular file");
	expect_file(fifo, 0, RT_ERR_INVAL, "not a regular file");
	expect_file(missing, 0, RT_ERR_SYS, strerror(ENOENT));
	/* validator message carries the real path and line */
	{
		char want[320];

		snprintf(want, sizeof(want), "%s:3: ", bad);
		cfg = new_cfg();
		cfgu_errors_init(&e);
		CU_ASSERT_EQUAL(cfgu_parse(cfg, bad, 0, &e), RT_ERR_CONFIG);
		CU_ASSERT_EQUAL(e.n, 1);
		CU_ASSERT(starts_with(e.msg[0], want));
		CU_ASSERT_PTR_NOT_NULL(strstr(e.msg[0], "99999"));
		cfg_free(cfg);
	}
	/* a NUL byte on line 2: libconfuse alone would load line 1 */
	{
		static const char nulled[] = "port = 22\nwork\0ers = 3\n";
		int fd = open(bad, O_WRONLY | O_TRUNC | O_CLOEXEC);

		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_FATAL(write(fd, nulled, sizeof(nulled) - 1) ==
		    (ssize_t)sizeof(nulled) - 1);
		close(fd);
		expect_file(bad, 0, RT_ERR_CONFIG, ":2: NUL byte");
	}
	unit_rmtree(dir);
}

static void
expect_perm(const char *path, int want, const char *needle)
{
	char err[512] = "";
	int r = cfgu_check_key_perms(path, err, sizeof(err));

	CU_ASSERT_EQUAL(r, want);
	if (want != 0 && (strstr(err, path) == NULL ||
			  strstr(err, needle) == NULL)) {
		fprintf(stderr, "\n  got: %s\n", err);
		CU_FAIL(path);
	}
}

static void
test_key_perms(void)
{
	char dir[256], key[300], link[300], missing[300], err[512];

	CU_ASSERT_FATAL(unit_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(key, sizeof(key), "%s/id.key", dir);
	snprintf(link, sizeof(link), "%s/link.key", dir);
	snprintf(missing, sizeof(missing), "%s/none.key", dir);
	CU_ASSERT_FATAL(write_file(key, "not really a key\n", 0600) == 0);
	CU_ASSERT_FATAL(symlink(key, link) == 0);

	expect_perm(key, 0, "");
	expect_perm(link, 0, "");
	CU_ASSERT_FATAL(chmod(key, 0400) == 0);
	expect_perm(key, 0, "");
	CU_ASSERT_FATAL(chmod(key, 0640) == 0);
	expect_perm(key, RT_ERR_PERM, "mode 0640 is readable");
	CU_ASSERT_FATAL(chmod(key, 0644) == 0);
	expect_perm(key, RT_ERR_PERM, "0644");
	expect_perm(link, RT_ERR_PERM, "0644");	/* the target counts */
	CU_ASSERT_FATAL(chmod(key, 0620) == 0);
	expect_perm(key, RT_ERR_PERM, "0620 is writable");
	CU_ASSERT_FATAL(chmod(key, 0600) == 0);
	expect_perm(dir, RT_ERR_PERM, "not a regular file");
	expect_perm(missing, RT_ERR_SYS, strerror(ENOENT));
	if (geteuid() == 0) {
		/* as root we can hand the key to someone else */
		CU_ASSERT_FATAL(chown(key, 54321, 54321) == 0);
		expect_perm(key, RT_ERR_PERM, "owned by uid 54321");
		CU_ASSERT_FATAL(chown(key, 0, 0) == 0);
		expect_perm(key, 0, "");
		CU_ASSERT_FATAL(lchown(link, 54321, 54321) == 0);
		expect_perm(link, RT_ERR_PERM, "symbolic link owned by");
		/* the user a daemon drops to may own its keys */
		CU_ASSERT_FATAL(lchown(link, 0, 0) == 0);
		CU_ASSERT_FATAL(chown(key, 54321, 54321) == 0);
		CU_ASSERT_EQUAL(cfgu_check_key_perms_for(key, 54321, err,
		    sizeof(err)), 0);
		CU_ASSERT_EQUAL(cfgu_check_key_perms_for(key, 54322, err,
		    sizeof(err)), RT_ERR_PERM);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "neither root nor uid "
		    "54322"));
		CU_ASSERT_FATAL(chmod(key, 0640) == 0);
		CU_ASSERT_EQUAL(cfgu_check_key_perms_for(key, 54321, err,
		    sizeof(err)), RT_ERR_PERM);	/* mode still counts */
	}
	unit_rmtree(dir);
}

int
suite_cfgutil(void)
{
	CU_pSuite s = CU_add_suite("cfgutil", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "duration", test_duration) == NULL ||
	    CU_add_test(s, "size", test_size) == NULL ||
	    CU_add_test(s, "parse ok", test_parse_ok) == NULL ||
	    CU_add_test(s, "validators", test_validators) == NULL ||
	    CU_add_test(s, "syntax errors", test_syntax_errors) == NULL ||
	    CU_add_test(s, "comments", test_comments) == NULL ||
	    CU_add_test(s, "error list", test_error_list) == NULL ||
	    CU_add_test(s, "files", test_files) == NULL ||
	    CU_add_test(s, "key perms", test_key_perms) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
