/*
 * test_audit.c - unit tests of relay/audit.c: escaping round-trips through
 * a real JSON parser (python3's json module), truncation keeps valid JSON,
 * lines are appended to the file, reopen follows a rotation, a symlinked
 * file is refused and audit_give() refuses a hard-linked root file.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "audit.h"
#include "err.h"
#include "runner.h"

int suite_audit(void);

static char tmpdir[256];

static int
setup(void)
{
	return unit_tmpdir(tmpdir, sizeof(tmpdir));
}

static int
teardown(void)
{
	unit_rmtree(tmpdir);
	return 0;
}

/*
 * Parses line with python3's json module and prints, for key, the value's
 * bytes in hex (strings: each char U+00XX as one byte, which is what our
 * bytewise escaping yields) or its JSON text for other types. Returns 0
 * and the text in out, or -1 if the line is not one JSON object.
 */
static int
json_field(const char *line, const char *key, char *out, size_t len)
{
	char path[300], cmd[700];
	FILE *f;
	size_t n;
	int st;

	snprintf(path, sizeof(path), "%s/line.json", tmpdir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(line, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "python3 -c '"
	    "import json,sys\n"
	    "t=open(sys.argv[1],\"rb\").read().decode(\"ascii\")\n"
	    "assert t.endswith(\"\\n\") and t.count(\"\\n\")==1\n"
	    "d=json.loads(t)\n"
	    "assert isinstance(d,dict)\n"
	    "v=d[sys.argv[2]]\n"
	    "print(v.encode(\"latin-1\").hex() if isinstance(v,str) else "
	    "json.dumps(v),end=\"\")' %s %s 2>/dev/null", path, key);
	if ((f = popen(cmd, "r")) == NULL)
		return -1;
	n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	st = pclose(f);
	return st == 0 ? 0 : -1;
}

static void
hex(const char *s, char *out)
{
	for (; *s; s++, out += 2)
		sprintf(out, "%02x", (unsigned char)*s);
	*out = '\0';
}

static void
test_escaping(void)
{
	static const char nasty[] = "a\"b\\c\nd\x01" "e\xff" "f\x7f/\t}";
	struct audit_rec r;
	const char *line;
	char got[256], want[256];

	audit_rec_begin(&r, "auth_fail");
	audit_rec_str(&r, "operator", nasty);
	audit_rec_str(&r, "we\"ird", "k");
	audit_rec_str(&r, "nul", NULL);
	audit_rec_int(&r, "n", -42);
	audit_rec_bool(&r, "ok", 1);
	line = audit_rec_end(&r);
	CU_ASSERT_EQUAL(strlen(line), r.len);
	CU_ASSERT_EQUAL(r.truncated, 0);
	/* ts and event first; pure ASCII; one line. */
	CU_ASSERT_EQUAL(strncmp(line, "{\"ts\":\"", 7), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "Z\",\"event\":\"auth_fail\","));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "\\u0001"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "\\u00ff"));
	CU_ASSERT(strchr(line, '\n') == line + r.len - 1);
	for (const char *p = line; *p; p++)
		CU_ASSERT((unsigned char)*p >= 0x20 || *p == '\n');

	hex(nasty, want);
	CU_ASSERT_EQUAL_FATAL(json_field(line, "operator", got, sizeof(got)),
	    0);
	CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_EQUAL(json_field(line, "we\\\"ird", got, sizeof(got)), 0);
	CU_ASSERT_EQUAL(json_field(line, "nul", got, sizeof(got)), 0);
	CU_ASSERT_STRING_EQUAL(got, "null");
	CU_ASSERT_EQUAL(json_field(line, "n", got, sizeof(got)), 0);
	CU_ASSERT_STRING_EQUAL(got, "-42");
	CU_ASSERT_EQUAL(json_field(line, "ok", got, sizeof(got)), 0);
	CU_ASSERT_STRING_EQUAL(got, "true");
	CU_ASSERT_EQUAL(json_field(line, "event", got, sizeof(got)), 0);
	hex("auth_fail", want);
	CU_ASSERT_STRING_EQUAL(got, want);
	/* The checker itself rejects broken JSON. */
	CU_ASSERT_EQUAL(json_field("{\"a\":\"b}\n", "a", got, sizeof(got)),
	    -1);
}

static void
test_truncation(void)
{
	static char big[AUDIT_LINE_MAX];
	struct audit_rec r;
	const char *line;
	char got[64];

	memset(big, 'x', 1500);
	big[1500] = '\0';
	audit_rec_begin(&r, "channel_open");
	audit_rec_str(&r, "a", big);
	audit_rec_str(&r, "b", big);
	audit_rec_str(&r, "c", big);	/* does not fit: dropped */
	audit_rec_int(&r, "d", 7);	/* later fields dropped too */
	line = audit_rec_end(&r);
	CU_ASSERT_EQUAL(r.truncated, 1);
	CU_ASSERT(r.len < AUDIT_LINE_MAX);
	CU_ASSERT_EQUAL(strlen(line), r.len);
	CU_ASSERT_PTR_NOT_NULL(strstr(line, ",\"truncated\":true}\n"));
	CU_ASSERT_EQUAL(json_field(line, "truncated", got, sizeof(got)), 0);
	CU_ASSERT_STRING_EQUAL(got, "true");
	CU_ASSERT_EQUAL(json_field(line, "b", got, sizeof(got)), 0);
	CU_ASSERT_EQUAL(json_field(line, "c", got, sizeof(got)), -1);
	CU_ASSERT_EQUAL(json_field(line, "d", got, sizeof(got)), -1);

	/* Escapes are never cut: fill with bytes that need 6 each. */
	memset(big, 0x01, sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	audit_rec_begin(&r, "x");
	audit_rec_str(&r, "k", big);
	line = audit_rec_end(&r);
	CU_ASSERT_EQUAL(r.truncated, 1);
	CU_ASSERT_EQUAL(json_field(line, "truncated", got, sizeof(got)), 0);
	/* End is idempotent. */
	CU_ASSERT_PTR_EQUAL(audit_rec_end(&r), line);
	CU_ASSERT_EQUAL(strlen(line), r.len);
}

static int
count_lines(const char *path, char *first, size_t len)
{
	char buf[AUDIT_LINE_MAX + 2];
	FILE *f;
	int n = 0;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		if (n == 0 && first != NULL)
			snprintf(first, len, "%s", buf);
		n++;
	}
	fclose(f);
	return n;
}

static void
test_file_and_reopen(void)
{
	char path[300], rotated[300], err[256], first[AUDIT_LINE_MAX + 2];
	char got[64];
	struct audit *a = NULL;
	struct audit_rec r;
	struct stat st;

	snprintf(path, sizeof(path), "%s/audit.log", tmpdir);
	snprintf(rotated, sizeof(rotated), "%s/audit.log.1", tmpdir);
	CU_ASSERT_EQUAL_FATAL(audit_open(path, &a, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(audit_path(a), path);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0027, 0);	/* 0640 at most */

	for (int i = 0; i < 3; i++) {
		audit_rec_begin(&r, "auth_ok");
		audit_rec_int(&r, "i", i);
		CU_ASSERT_EQUAL(audit_write(a, &r), 0);
	}
	CU_ASSERT_EQUAL(count_lines(path, first, sizeof(first)), 3);
	CU_ASSERT_EQUAL(json_field(first, "i", got, sizeof(got)), 0);
	CU_ASSERT_STRING_EQUAL(got, "0");

	/* Rotation: rename, reopen, new lines go to the new file. */
	CU_ASSERT_EQUAL_FATAL(rename(path, rotated), 0);
	audit_rec_begin(&r, "before_reopen");
	CU_ASSERT_EQUAL(audit_write(a, &r), 0);
	CU_ASSERT_EQUAL(audit_reopen(a), 0);
	audit_rec_begin(&r, "after_reopen");
	CU_ASSERT_EQUAL(audit_write(a, &r), 0);
	CU_ASSERT_EQUAL(count_lines(rotated, NULL, 0), 4);
	CU_ASSERT_EQUAL(count_lines(path, first, sizeof(first)), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(first, "\"after_reopen\""));
	audit_close(a);

	/* Appending, not truncating, on the next open. */
	CU_ASSERT_EQUAL_FATAL(audit_open(path, &a, err, sizeof(err)), 0);
	audit_rec_begin(&r, "again");
	CU_ASSERT_EQUAL(audit_write(a, &r), 0);
	audit_close(a);
	CU_ASSERT_EQUAL(count_lines(path, NULL, 0), 2);

	/* NULL audit writes nothing and succeeds. */
	audit_rec_begin(&r, "off");
	CU_ASSERT_EQUAL(audit_write(NULL, &r), 0);
	audit_close(NULL);
}

static void
test_open_errors(void)
{
	char path[300], err[256];
	struct audit *a = (struct audit *)1;

	snprintf(path, sizeof(path), "%s/no/such/dir/audit.log", tmpdir);
	err[0] = '\0';
	CU_ASSERT_EQUAL(audit_open(path, &a, err, sizeof(err)), RT_ERR_SYS);
	CU_ASSERT_PTR_NULL(a);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_EQUAL(audit_open("", &a, err, sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(audit_open("-", &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(audit_reopen(a), 0);
	audit_close(a);
}

/*
 * The relay opens its audit log as root in a directory that belongs to
 * the user it drops to: a symlink planted there is refused, and
 * audit_give() never gives away a root file behind a hard link.
 */
static void
test_links(void)
{
	char path[300], target[300], err[256];
	struct audit *a = (struct audit *)1;
	struct audit_rec r;
	struct stat st;
	uid_t me = geteuid();
	gid_t gme = getegid();

	snprintf(path, sizeof(path), "%s/links.log", tmpdir);
	snprintf(target, sizeof(target), "%s/target", tmpdir);
	unlink(path);
	unlink(target);
	CU_ASSERT_FATAL(close(creat(target, 0600)) == 0);

	/* symlink: open refused with a message, target untouched */
	CU_ASSERT_FATAL(symlink(target, path) == 0);
	err[0] = '\0';
	CU_ASSERT_EQUAL(audit_open(path, &a, err, sizeof(err)), RT_ERR_SYS);
	CU_ASSERT_PTR_NULL(a);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "symbolic link"));
	CU_ASSERT_EQUAL(stat(target, &st), 0);
	CU_ASSERT_EQUAL(st.st_size, 0);
	CU_ASSERT_FATAL(unlink(path) == 0);

	/* a file we own: audit_give leaves it alone unless it is root's;
	 * a hard link to it is refused when it is root's (as root only) */
	CU_ASSERT_FATAL(link(target, path) == 0);
	CU_ASSERT_EQUAL_FATAL(audit_open(path, &a, err, sizeof(err)), 0);
	if (me == 0) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(audit_give(a, 12345, 12345, err, sizeof(err)),
		    RT_ERR_PERM);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "2 links"));
		CU_ASSERT_EQUAL(stat(target, &st), 0);
		CU_ASSERT_EQUAL(st.st_uid, 0);
	} else
		CU_ASSERT_EQUAL(audit_give(a, me, gme, err, sizeof(err)), 0);
	audit_close(a);
	CU_ASSERT_FATAL(unlink(path) == 0);

	/* one link: given (as root), and still written to */
	CU_ASSERT_EQUAL_FATAL(audit_open(path, &a, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(audit_give(a, me == 0 ? 12345 : me, me == 0 ? 12345 :
	    gme, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_uid, me == 0 ? 12345 : me);
	audit_rec_begin(&r, "given");
	CU_ASSERT_EQUAL(audit_write(a, &r), 0);
	audit_close(a);
	CU_ASSERT_EQUAL(count_lines(path, NULL, 0), 1);
	CU_ASSERT_EQUAL(audit_give(NULL, 1, 1, err, sizeof(err)), 0);
	unlink(path);
	unlink(target);
}

int
suite_audit(void)
{
	CU_pSuite s = CU_add_suite("audit", setup, teardown);

	if (s == NULL ||
	    CU_add_test(s, "escaping", test_escaping) == NULL ||
	    CU_add_test(s, "truncation", test_truncation) == NULL ||
	    CU_add_test(s, "file and reopen", test_file_and_reopen) == NULL ||
	    CU_add_test(s, "open errors", test_open_errors) == NULL ||
	    CU_add_test(s, "symlink and hard link", test_links) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
