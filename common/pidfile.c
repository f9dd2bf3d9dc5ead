/*
 * pidfile.c - exclusive pid / lock files (pidfile.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "pidfile.h"

/* Tries when the file is replaced between open and lock (see pidfile.h). */
#define PIDFILE_TRIES 5

struct pidfile {
	int	 fd;		/* open for the process's life; holds the lock */
	int	 stale;		/* existed without a lock holder */
	long	 old_pid;	/* what a stale file held (0: empty) */
	char	*path;
};

/* The pid written in fd (from offset 0), or 0 if none can be read. */
static long
read_pid(int fd)
{
	char buf[32];
	ssize_t n;
	char *end;
	long pid;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (end == buf || pid <= 0 || (*end != '\n' && *end != '\0'))
		return 0;
	return pid;
}

/* 1 if fd is the file path names now (not removed or replaced). */
static int
still_linked(int fd, const char *path)
{
	struct stat a, b;

	if (fstat(fd, &a) != 0 || stat(path, &b) != 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int
pidfile_open(const char *path, const char *what, struct pidfile **out,
	     char *err, size_t errlen)
{
	struct pidfile *pf;
	char line[32];
	int fd = -1, tries, len, e, existed;
	struct stat st;
	long pid;

	*out = NULL;
	if ((pf = calloc(1, sizeof(*pf))) == NULL ||
	    (pf->path = strdup(path)) == NULL) {
		free(pf);
		snprintf(err, errlen, "%s %s: out of memory", what, path);
		return RT_ERR_NOMEM;
	}
	for (tries = 0; tries < PIDFILE_TRIES; tries++) {
		existed = stat(path, &st) == 0;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
		    O_NOCTTY, 0644);
		if (fd < 0) {
			e = errno;
			snprintf(err, errlen, "%s %s: cannot open: %s", what,
			    path, strerror(e));
			goto fail_errno;
		}
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			e = errno != 0 ? errno : EINVAL;
			snprintf(err, errlen, "%s %s: not a regular file",
			    what, path);
			goto fail_errno;
		}
		/* O_NOFOLLOW stops symlinks, not hard links: one planted in
		 * a directory the dropped user owns would have root truncate
		 * and overwrite the file it links to (0 links: just removed
		 * by the instance that stopped; the retry below handles it) */
		if (st.st_nlink > 1) {
			e = EPERM;
			snprintf(err, errlen, "%s %s: has %lu hard links "
			    "(refused: remove it)", what, path,
			    (unsigned long)st.st_nlink);
			goto fail_errno;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			e = errno;
			if (e == EWOULDBLOCK) {
				pid = read_pid(fd);
				if (pid > 0)
					snprintf(err, errlen, "%s %s: locked "
					    "by pid %ld (another instance is "
					    "running)", what, path, pid);
				else
					snprintf(err, errlen, "%s %s: locked "
					    "by another process (another "
					    "instance is running)", what,
					    path);
				close(fd);
				free(pf->path);
				free(pf);
				return RT_ERR_EXISTS;
			}
			snprintf(err, errlen, "%s %s: cannot lock: %s", what,
			    path, strerror(e));
			goto fail_errno;
		}
		if (still_linked(fd, path))
			break;
		/* removed by the instance that just stopped: again */
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		e = EAGAIN;
		snprintf(err, errlen, "%s %s: replaced while locking, %d "
		    "times", what, path, PIDFILE_TRIES);
		goto fail_errno;
	}
	if (existed) {
		pf->stale = 1;
		pf->old_pid = read_pid(fd);
	}
	len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
		e = errno != 0 ? errno : EIO;
		snprintf(err, errlen, "%s %s: cannot write: %s", what, path,
		    strerror(e));
		goto fail_errno;
	}
	pf->fd = fd;
	*out = pf;
	return 0;
 fail_errno:
	if (fd >= 0)
		close(fd);
	free(pf->path);
	free(pf);
	errno = e;
	return RT_ERR_SYS;
}

const char *
pidfile_path(const struct pidfile *pf)
{
	return pf->path;
}

int
pidfile_was_stale(const struct pidfile *pf, long *old_pid)
{
	*old_pid = pf->old_pid;
	return pf->stale;
}

void
pidfile_close(struct pidfile *pf, int remove)
{
	if (pf == NULL)
		return;
	/* Still locked here: nobody can take the file over half-removed. */
	if (remove && unlink(pf->path) != 0 && ftruncate(pf->fd, 0) != 0) {
		/* neither: the pid stays, but the lock goes, so stale */
	}
	close(pf->fd);
	free(pf->path);
	free(pf);
}
