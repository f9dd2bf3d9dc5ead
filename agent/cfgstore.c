/*
 * cfgstore.c - the agent's config file on disk (cfgstore.h): bounded
 * reads, atomic writes (temp file, fsync, rename, fsync dir), the kept
 * last-good copy and the rollback to it.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgstore.h"
#include "err.h"
#include "util.h"

int
cfgstore_read(const char *path, size_t max, char **text, size_t *len)
{
	struct stat st;
	char *s = NULL;
	size_t off = 0;
	ssize_t n;
	int fd, r, saved;

	*text = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return RT_ERR_SYS;
	if (fstat(fd, &st) < 0) {
		r = RT_ERR_SYS;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = RT_ERR_INVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		r = RT_ERR_TOOBIG;
		goto out;
	}
	/* One byte more than allowed tells a file that grew meanwhile. */
	if ((s = malloc(max + 2)) == NULL) {
		r = RT_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		n = read(fd, s + off, max + 1 - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = RT_ERR_SYS;
			goto out;
		}
		if (n == 0)
			break;
		off += (size_t)n;
		if (off > max) {
			r = RT_ERR_TOOBIG;
			goto out;
		}
	}
	if (memchr(s, '\0', off) != NULL) {
		r = RT_ERR_INVAL;
		goto out;
	}
	s[off] = '\0';
	*text = s;
	*len = off;
	s = NULL;
	r = 0;
 out:
	saved = errno;
	free(s);
	close(fd);
	errno = saved;
	return r;
}

static int
fsync_dir_of(const char *path)
{
	char tmp[PATH_MAX];
	int fd, r = 0;

	if (rt_strlcpy(tmp, path, sizeof(tmp)) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return RT_ERR_SYS;
	}
	if ((fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return RT_ERR_SYS;
	if (fsync(fd) < 0 && errno != EINVAL)
		r = RT_ERR_SYS;
	close(fd);
	return r;
}

int
cfgstore_write_atomic(const char *path, const void *data, size_t len,
    unsigned int mode)
{
	char tmp[PATH_MAX];
	const uint8_t *p = data;
	struct stat st;
	size_t off = 0;
	ssize_t n;
	int fd, saved;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return RT_ERR_SYS;
	}
	/* Keep the mode of the file being replaced (e.g. 0600). */
	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    (mode_t)mode);
	if (fd < 0)
		return RT_ERR_SYS;
	if (fchmod(fd, (mode_t)mode) < 0)
		goto fail;
	while (off < len) {
		n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	return fsync_dir_of(path);
 fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	(void)unlink(tmp);
	errno = saved;
	return RT_ERR_SYS;
}

int
cfgstore_last_good_path(const char *path, char *buf, size_t len)
{
	if (snprintf(buf, len, "%s%s", path, CFGSTORE_LAST_GOOD) >= (int)len)
		return RT_ERR_TOOBIG;
	return 0;
}

int
cfgstore_install(const char *path, const char *old_text, const char *text,
    size_t len)
{
	char lg[PATH_MAX];
	int r;

	if (cfgstore_last_good_path(path, lg, sizeof(lg)) < 0) {
		errno = ENAMETOOLONG;
		return RT_ERR_SYS;
	}
	if (old_text != NULL &&
	    (r = cfgstore_write_atomic(lg, old_text, strlen(old_text),
	    0600)) < 0)
		return r;
	return cfgstore_write_atomic(path, text, len, 0600);
}

int
cfgstore_restore(const char *path)
{
	char lg[PATH_MAX], *text;
	size_t len;
	int r;

	if (cfgstore_last_good_path(path, lg, sizeof(lg)) < 0)
		return RT_ERR_TOOBIG;
	if ((r = cfgstore_read(lg, CFGSTORE_MAX, &text, &len)) < 0)
		return r == RT_ERR_SYS && errno == ENOENT ? RT_ERR_NOTFOUND : r;
	r = cfgstore_write_atomic(path, text, len, 0600);
	free(text);
	return r;
}
