/*
 * cfgstore.h - the agent's configuration file on disk: bounded reads,
 * atomic replacement with the previous good file kept next to it, and
 * the rollback to that file. Also small atomic state files (state_dir).
 *
 * Atomic write: the new bytes go to "PATH.tmp.PID" in the same directory
 * (same mode as the file it replaces, 0600 when new), fsync, rename over
 * PATH, fsync the directory. A crash leaves either the old or the new
 * file, never a mix. Blocking file I/O on a local file of at most
 * CFGSTORE_MAX bytes; fine from the loop.
 */
#ifndef RT_CFGSTORE_H
#define RT_CFGSTORE_H

#include <stddef.h>

#define CFGSTORE_MAX (1024 * 1024)	/* largest config file accepted */
#define CFGSTORE_LAST_GOOD ".last-good"	/* suffix of the kept file */

/*
 * Reads the whole regular file path (at most max bytes) into a new
 * NUL-terminated string. Returns 0 and *text / *len, RT_ERR_TOOBIG,
 * RT_ERR_INVAL (not a regular file, or holds a NUL byte), RT_ERR_NOMEM or
 * RT_ERR_SYS (errno set).
 */
int cfgstore_read(const char *path, size_t max, char **text, size_t *len);

/* Writes data to path atomically (above). mode is used when path does not
 * exist yet. Returns 0 or RT_ERR_SYS (errno set; path unchanged). */
int cfgstore_write_atomic(const char *path, const void *data, size_t len,
			  unsigned int mode);

/*
 * Installs a new config: saves old_text (the file the running agent was
 * loaded from; NULL = keep the current PATH.last-good) as PATH.last-good,
 * then writes text to path, both atomically. Returns 0 or RT_ERR_SYS
 * (errno set); on failure path is unchanged.
 */
int cfgstore_install(const char *path, const char *old_text,
		     const char *text, size_t len);

/* Copies PATH.last-good over path atomically (the rollback). Returns 0,
 * RT_ERR_NOTFOUND (no last-good file) or another cfgstore_read() /
 * cfgstore_write_atomic() error. */
int cfgstore_restore(const char *path);

/* Writes "PATH.last-good" into buf (len bytes). Returns 0 or
 * RT_ERR_TOOBIG. */
int cfgstore_last_good_path(const char *path, char *buf, size_t len);

#endif
