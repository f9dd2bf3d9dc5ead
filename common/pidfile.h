/*
 * pidfile.h - one running instance per pid file (or per directory).
 *
 * pidfile_open() creates the file if needed (mode 0644; symlinks and files
 * with more than one hard link refused), takes an exclusive non-blocking
 * flock() on it and writes our pid into it. The descriptor stays open
 * (close-on-exec) for the life of the process, so the lock lives exactly
 * as long as the process does, through a privilege drop and a kill -9
 * alike. The lock decides, not the number in the file (pids are reused):
 * a file that exists but that nobody holds locked is stale (crash, kill
 * -9, power loss) and is taken over; a held lock is refused with a
 * message naming the file and the pid written in it.
 *
 * pidfile_close() removes the file while still holding the lock. If the
 * directory no longer lets us (the daemon dropped root and the file is in
 * a root-owned directory such as /run), it empties the file instead: an
 * empty unlocked file is stale and the next start takes it over.
 *
 * A starting instance that opened the file just before the running one
 * removed it would lock a file no longer in the directory; pidfile_open()
 * checks after locking that the path still names the locked file and
 * tries again (a bounded number of times) if not.
 */
#ifndef RT_PIDFILE_H
#define RT_PIDFILE_H

#include <stddef.h>

struct pidfile;

/*
 * Opens and locks path, writes the pid. what names the owner for the
 * message ("pid_file", "spool_dir lock"). Returns 0 and *out, or
 * RT_ERR_EXISTS ("pid_file /run/x.pid: locked by pid 1234 (another
 * instance is running)"), RT_ERR_SYS (open/lock/write failed: message
 * with strerror; errno kept) or RT_ERR_NOMEM, with *out NULL and err set.
 */
int pidfile_open(const char *path, const char *what, struct pidfile **out,
		 char *err, size_t errlen);

/* The path it was opened with. */
const char *pidfile_path(const struct pidfile *pf);

/* 1 if the file was stale (existed, unlocked) when opened: the caller
 * logs the take-over; *old_pid is what it held (0 if empty). */
int pidfile_was_stale(const struct pidfile *pf, long *old_pid);

/*
 * Removes (or, if unlink is refused, empties) the file when remove is
 * non-zero, then releases the lock. A child that must not outlive the
 * lock simply never sees the fd (close-on-exec). NULL is a no-op.
 */
void pidfile_close(struct pidfile *pf, int remove);

#endif
