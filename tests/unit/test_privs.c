/* test_privs.c - unit tests of common/privs.c (capability parser, user
 * look-up, the drop itself in a child when run as root) and
 * common/pidfile.c (lock, refusal naming the pid, stale take-over,
 * removal). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "pidfile.h"
#include "privs.h"
#include "runner.h"

int suite_privs(void);

static void
test_caps_clear(void)
{
	static const struct {
		const char *status;
		int want;
		const char *needle;
	} t[] = {
		{ "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000"
		  "\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n"
		  "CapAmb:\t0000000000000000\n", 0, NULL },
		/* old kernels have no CapAmb */
		{ "CapPrm:\t0\nCapEff:\t0\n", 0, NULL },
		{ "CapPrm:\t0000000000000000\nCapEff:\t0000000000000400\n",
		  RT_ERR_PERM, "CapEff 0000000000000400" },
		{ "CapPrm:\t000001ffffffffff\nCapEff:\t0\n", RT_ERR_PERM,
		  "CapPrm" },
		{ "CapPrm:\t0\nCapEff:\t0\nCapAmb:\t0000000000000400\n",
		  RT_ERR_PERM, "CapAmb" },
		{ "CapPrm:\t0\n", RT_ERR_INVAL, "CapEff: missing" },
		{ "CapPrm:\tzz\nCapEff:\t0\n", RT_ERR_INVAL,
		  "CapPrm: malformed" },
		{ "CapPrm:\t0 junk\nCapEff:\t0\n", RT_ERR_INVAL, "malformed" },
		/* a name that merely starts like one does not count */
		{ "CapPrmX:\t1\nCapPrm:\t0\nCapEff:\t0\n", 0, NULL },
		{ "", RT_ERR_INVAL, "missing" },
	};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		err[0] = '\0';
		if (privs_caps_clear(t[i].status, err, sizeof(err)) !=
		    t[i].want || (t[i].needle != NULL &&
		    strstr(err, t[i].needle) == NULL)) {
			fprintf(stderr, "\n  case %zu: %s\n", i, err);
			CU_FAIL("privs_caps_clear");
		}
	}
}

static void
test_lookup(void)
{
	struct privs_user u;
	char err[256];

	CU_ASSERT_EQUAL(privs_lookup("nobody", &u, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(u.name, "nobody");
	CU_ASSERT_NOT_EQUAL(u.uid, 0);
	CU_ASSERT_EQUAL(privs_lookup("root", &u, err, sizeof(err)),
	    RT_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "uid 0"));
	CU_ASSERT_EQUAL(privs_lookup("no-such-user-rt", &u, err,
	    sizeof(err)), RT_ERR_NOTFOUND);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no-such-user-rt"));
}

/* The drop is for good, so it runs in a child; the child reports by
 * exit code which step failed. */
static void
test_drop(void)
{
	struct privs_user u, me;
	char err[256];
	pid_t pid;
	int st;

	CU_ASSERT_FATAL(privs_lookup("nobody", &u, err, sizeof(err)) == 0);
	if (geteuid() != 0) {
		/* not root and not nobody: refused, naming both */
		CU_ASSERT_EQUAL(privs_drop(&u, err, sizeof(err)),
		    RT_ERR_PERM);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "nobody"));
		return;
	}
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		if (privs_drop(&u, err, sizeof(err)) != 0)
			_exit(1);
		if (getuid() != u.uid || geteuid() != u.uid ||
		    getgid() != u.gid || setuid(0) == 0)
			_exit(2);
		/* a second call as the user itself is fine (User=) */
		if (privs_drop(&u, err, sizeof(err)) != 0)
			_exit(3);
		/* and any other user is refused now */
		me = u;
		me.uid = u.uid - 1;
		if (privs_drop(&me, err, sizeof(err)) != RT_ERR_PERM)
			_exit(4);
		_exit(0);
	}
	CU_ASSERT_FATAL(waitpid(pid, &st, 0) == pid);
	CU_ASSERT_TRUE(WIFEXITED(st));
	CU_ASSERT_EQUAL(WEXITSTATUS(st), 0);
}

static void
test_prepare_dir(void)
{
	struct privs_user u;
	char dir[256], sub[300], err[256];
	struct stat st;

	if (geteuid() != 0)
		return;		/* chown needs root */
	CU_ASSERT_FATAL(unit_tmpdir(dir, sizeof(dir)) == 0);
	CU_ASSERT_FATAL(privs_lookup("nobody", &u, err, sizeof(err)) == 0);
	snprintf(sub, sizeof(sub), "%s/state", dir);
	CU_ASSERT_EQUAL(privs_prepare_dir(sub, &u, err, sizeof(err)), 1);
	CU_ASSERT_FATAL(stat(sub, &st) == 0);
	CU_ASSERT_EQUAL(st.st_uid, u.uid);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0700);
	CU_ASSERT_EQUAL(privs_prepare_dir(sub, &u, err, sizeof(err)), 0);
	snprintf(sub, sizeof(sub), "%s/no/state", dir);
	CU_ASSERT_EQUAL(privs_prepare_dir(sub, &u, err, sizeof(err)),
	    RT_ERR_SYS);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, sub));
	unit_rmtree(dir);
}

static long
file_pid(const char *path)
{
	char buf[32] = "";
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	return strtol(buf, NULL, 10);
}

static void
test_pidfile(void)
{
	struct pidfile *a = NULL, *b = NULL;
	char dir[256], path[300], err[256], want[64];
	long old;
	int fd;

	CU_ASSERT_FATAL(unit_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(path, sizeof(path), "%s/x.pid", dir);

	/* fresh */
	CU_ASSERT_FATAL(pidfile_open(path, "pid_file", &a, err,
	    sizeof(err)) == 0);
	CU_ASSERT_EQUAL(file_pid(path), (long)getpid());
	CU_ASSERT_EQUAL(pidfile_was_stale(a, &old), 0);
	CU_ASSERT_STRING_EQUAL(pidfile_path(a), path);

	/* a second holder (flock is per open file, so even this process)
	 * is refused, with the file and the pid named */
	CU_ASSERT_EQUAL(pidfile_open(path, "pid_file", &b, err,
	    sizeof(err)), RT_ERR_EXISTS);
	CU_ASSERT_PTR_NULL(b);
	snprintf(want, sizeof(want), "locked by pid %ld", (long)getpid());
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));

	/* clean close removes it */
	pidfile_close(a, 1);
	CU_ASSERT_EQUAL(access(path, F_OK), -1);

	/* stale: a file with a dead pid and no lock is taken over */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, "999999\n", 7) == 7);
	close(fd);
	CU_ASSERT_FATAL(pidfile_open(path, "pid_file", &a, err,
	    sizeof(err)) == 0);
	CU_ASSERT_EQUAL(pidfile_was_stale(a, &old), 1);
	CU_ASSERT_EQUAL(old, 999999);
	CU_ASSERT_EQUAL(file_pid(path), (long)getpid());
	/* close without removing: the file stays but is no longer locked */
	pidfile_close(a, 0);
	CU_ASSERT_EQUAL(file_pid(path), (long)getpid());
	CU_ASSERT_FATAL(pidfile_open(path, "pid_file", &a, err,
	    sizeof(err)) == 0);
	pidfile_close(a, 1);

	/* a hard link (to a file the daemon's user must not overwrite) is
	 * refused and the file it links to stays as it was */
	{
		char other[300];

		snprintf(other, sizeof(other), "%s/precious", dir);
		CU_ASSERT_FATAL(close(creat(other, 0600)) == 0);
		CU_ASSERT_FATAL(link(other, path) == 0);
		err[0] = '\0';
		CU_ASSERT_EQUAL(pidfile_open(path, "pid_file", &a, err,
		    sizeof(err)), RT_ERR_SYS);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "hard links"));
		CU_ASSERT_EQUAL(file_pid(other), 0);
		CU_ASSERT_FATAL(unlink(path) == 0);
		CU_ASSERT_FATAL(unlink(other) == 0);
	}
	/* a symlink is refused, a directory too */
	CU_ASSERT_FATAL(symlink("/etc/passwd", path) == 0);
	CU_ASSERT_EQUAL(pidfile_open(path, "pid_file", &a, err,
	    sizeof(err)), RT_ERR_SYS);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_FATAL(unlink(path) == 0);
	CU_ASSERT_FATAL(mkdir(path, 0700) == 0);
	CU_ASSERT_EQUAL(pidfile_open(path, "pid_file", &a, err,
	    sizeof(err)), RT_ERR_SYS);
	CU_ASSERT_FATAL(rmdir(path) == 0);
	/* missing directory */
	snprintf(path, sizeof(path), "%s/none/x.pid", dir);
	CU_ASSERT_EQUAL(pidfile_open(path, "pid_file", &a, err,
	    sizeof(err)), RT_ERR_SYS);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, strerror(ENOENT)));
	pidfile_close(NULL, 1);
	unit_rmtree(dir);
}

int
suite_privs(void)
{
	CU_pSuite s = CU_add_suite("privs", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "caps clear", test_caps_clear) == NULL ||
	    CU_add_test(s, "lookup", test_lookup) == NULL ||
	    CU_add_test(s, "drop", test_drop) == NULL ||
	    CU_add_test(s, "prepare dir", test_prepare_dir) == NULL ||
	    CU_add_test(s, "pidfile", test_pidfile) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
