/*
 * audit.c - the relay's audit log (audit.h): record building with JSON
 * escaping and bounded length, and the append-only file it goes to.
 *
 * A record is built in place in struct audit_rec. Every field is appended
 * whole or not at all: when a field would leave less room than the tail
 * needs (",\"truncated\":true}\n" and the NUL), the record is marked
 * truncated, that field and every later one are dropped, and the line
 * stays valid JSON. Escaping is bytewise: '"' and '\' get a backslash;
 * bytes below 0x20, 0x7f and every byte >= 0x80 become \u00XX, so UTF-8
 * text shows up as one escape per byte (a reader sees "\u00c3\u00a9" for
 * "é"). That keeps each line pure ASCII and a peer's bytes unable to end
 * or forge a line.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "err.h"
#include "log.h"
#include "util.h"

#define AUDIT_TAIL ",\"truncated\":true}\n"
/* Room kept free at all times for the tail and the NUL. */
#define AUDIT_RESERVE (sizeof(AUDIT_TAIL))

struct audit {
	int fd;			/* to the audit file, O_APPEND */
	int is_stderr;		/* fd is 2: never closed or reopened */
	char *path;
	struct log_rl rl;	/* write failures */
};

/* O_NOFOLLOW: the relay opens the file as root before it drops to a
 * user who owns the directory; a symlink planted there must not make
 * root append to (or audit_give() chown) some other file. */
static int
open_path(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
	    O_NOCTTY | O_NOFOLLOW, 0640);
}

int
audit_open(const char *path, struct audit **out, char *err, size_t errlen)
{
	struct audit *a = NULL;
	int r;

	*out = NULL;
	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "audit log: empty path");
		return RT_ERR_INVAL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "audit log %s: out of memory", path);
		r = RT_ERR_NOMEM;
		goto out;
	}
	a->fd = -1;
	if (strcmp(path, "-") == 0) {
		a->fd = STDERR_FILENO;
		a->is_stderr = 1;
	} else if ((a->fd = open_path(path)) < 0) {
		snprintf(err, errlen, "audit log %s: open: %s", path,
		    errno == ELOOP ? "is a symbolic link (refused: name the "
		    "file itself)" : strerror(errno));
		r = RT_ERR_SYS;
		goto out;
	}
	*out = a;
	a = NULL;
	r = 0;
 out:
	audit_close(a);
	return r;
}

int
audit_reopen(struct audit *a)
{
	int fd;

	if (a == NULL || a->is_stderr)
		return 0;
	if ((fd = open_path(a->path)) < 0) {
		log_err("audit log %s: reopen: %s (still writing to the old "
		    "file)", a->path, strerror(errno));
		return RT_ERR_SYS;
	}
	close(a->fd);
	a->fd = fd;
	return 0;
}

int
audit_give(struct audit *a, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct stat st;

	if (a == NULL || a->is_stderr)
		return 0;
	if (fstat(a->fd, &st) != 0) {
		snprintf(err, errlen, "audit log %s: fstat: %s", a->path,
		    strerror(errno));
		return RT_ERR_SYS;
	}
	if (st.st_uid != 0)
		return 0;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		snprintf(err, errlen, "audit log %s: not a regular file with "
		    "one link (%lu links): refused to give it away", a->path,
		    (unsigned long)st.st_nlink);
		return RT_ERR_PERM;
	}
	if (fchown(a->fd, uid, gid) != 0) {
		snprintf(err, errlen, "audit log %s: fchown: %s", a->path,
		    strerror(errno));
		return RT_ERR_SYS;
	}
	return 0;
}

const char *
audit_path(const struct audit *a)
{
	return a->path;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (!a->is_stderr && a->fd >= 0)
		close(a->fd);
	free(a->path);
	free(a);
}

static int
rec_done(const struct audit_rec *r)
{
	/* A record in progress never ends in a raw newline: those are
	 * escaped. */
	return r->len > 0 && r->buf[r->len - 1] == '\n';
}

/* Appends s escaped and quoted into dst at *pos, never past lim. Returns 0
 * or -1 when it does not fit. */
static int
put_json_str(char *dst, size_t *pos, size_t lim, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t p = *pos;

	if (p + 1 > lim)
		return -1;
	dst[p++] = '"';
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			if (p + 2 > lim)
				return -1;
			dst[p++] = '\\';
			dst[p++] = (char)*c;
		} else if (*c < 0x20 || *c >= 0x7f) {
			if (p + 6 > lim)
				return -1;
			memcpy(dst + p, "\\u00", 4);
			dst[p + 4] = hex[*c >> 4];
			dst[p + 5] = hex[*c & 0xf];
			p += 6;
		} else {
			if (p + 1 > lim)
				return -1;
			dst[p++] = (char)*c;
		}
	}
	if (p + 1 > lim)
		return -1;
	dst[p++] = '"';
	*pos = p;
	return 0;
}

static int
put_raw(char *dst, size_t *pos, size_t lim, const char *s)
{
	size_t n = strlen(s);

	if (*pos + n > lim)
		return -1;
	memcpy(dst + *pos, s, n);
	*pos += n;
	return 0;
}

/* Appends ,"key":value where value is raw JSON (raw != NULL) or the
 * string sval (NULL = null). All or nothing. */
static void
rec_field(struct audit_rec *r, const char *key, const char *raw,
	  const char *sval)
{
	size_t lim = AUDIT_LINE_MAX - AUDIT_RESERVE, pos = r->len;
	int bad;

	if (r->truncated || rec_done(r))
		return;
	bad = put_raw(r->buf, &pos, lim, r->len > 1 ? "," : "") < 0 ||
	    put_json_str(r->buf, &pos, lim, key != NULL ? key : "") < 0 ||
	    put_raw(r->buf, &pos, lim, ":") < 0;
	if (!bad) {
		if (raw != NULL)
			bad = put_raw(r->buf, &pos, lim, raw) < 0;
		else if (sval == NULL)
			bad = put_raw(r->buf, &pos, lim, "null") < 0;
		else
			bad = put_json_str(r->buf, &pos, lim, sval) < 0;
	}
	if (bad) {
		r->truncated = 1;
		return;
	}
	r->len = pos;
}

void
audit_rec_begin(struct audit_rec *r, const char *event)
{
	char ts[40];

	r->buf[0] = '{';
	r->len = 1;
	r->truncated = 0;
	rt_time_iso(rt_wall_ms(), ts, sizeof(ts));
	rec_field(r, "ts", NULL, ts);
	rec_field(r, "event", NULL, event);
	r->buf[r->len] = '\0';
}

void
audit_rec_str(struct audit_rec *r, const char *key, const char *val)
{
	rec_field(r, key, NULL, val);
}

void
audit_rec_int(struct audit_rec *r, const char *key, long long val)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", val);
	rec_field(r, key, num, NULL);
}

void
audit_rec_bool(struct audit_rec *r, const char *key, int val)
{
	rec_field(r, key, val ? "true" : "false", NULL);
}

const char *
audit_rec_end(struct audit_rec *r)
{
	const char *tail = r->truncated ? AUDIT_TAIL : "}\n";
	size_t n = strlen(tail);

	if (rec_done(r))
		return r->buf;
	/* AUDIT_RESERVE guarantees the room. */
	memcpy(r->buf + r->len, tail, n + 1);
	r->len += n;
	return r->buf;
}

int
audit_write(struct audit *a, struct audit_rec *r)
{
	ssize_t n;

	audit_rec_end(r);
	if (a == NULL)
		return 0;
	do {
		n = write(a->fd, r->buf, r->len);
	} while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != r->len) {
		if (n >= 0)
			errno = ENOSPC;
		log_err_rl(&a->rl, "audit log %s: write: %s", a->path,
		    strerror(errno));
		return RT_ERR_SYS;
	}
	return 0;
}
