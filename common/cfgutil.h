/*
 * cfgutil.h - helpers shared by the libconfuse-based config loaders.
 *
 * Error reporting: cfgu_parse() installs an error function that writes
 * every libconfuse and validator message as "FILE:LINE: message" into a
 * struct cfgu_errors (bounded list), so a loader can print them all (-t)
 * or log them (reload) and change nothing.
 *
 * Error list: messages beyond CFGU_MAX_ERRORS are counted in dropped; each
 * is cut to CFGU_ERRLEN - 1 bytes. libconfuse stops at the first syntax or
 * validation error, so a parse adds one such message; loaders add their
 * own semantic ones after.
 *
 * Value syntax shared by both daemons (no sign, no spaces, decimal digits
 * then an optional unit, case-sensitive for durations):
 *   durations  "250ms", "30s", "5m", "2h", "1d"; a bare number is seconds
 *   sizes      "512", "64k", "1M", "1G" (powers of 1024; k/K, m/M, g/G);
 *              bare = bytes
 *   ports      1..65535
 *   paths      non-empty, absolute, no NUL
 *
 * Private keys: cfgu_check_key_perms() refuses a key file that is not a
 * regular file, is readable or writable by group or others, or is owned by
 * anyone but root or the caller's effective uid. A daemon that will drop
 * privileges checks with cfgu_check_key_perms_for() while still root, so
 * a key owned by the user it will run as is accepted too (it must read
 * that key again after the drop: reconnects, reloads).
 */
#ifndef RT_CFGUTIL_H
#define RT_CFGUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <confuse.h>

#define CFGU_MAX_ERRORS 32
#define CFGU_ERRLEN 512

struct cfgu_errors {
	unsigned int n;			/* messages stored */
	unsigned int dropped;		/* messages beyond CFGU_MAX_ERRORS */
	char msg[CFGU_MAX_ERRORS][CFGU_ERRLEN];
};

/* Empties the list (also the initialiser: no other set-up needed). */
void cfgu_errors_init(struct cfgu_errors *e);

/* Adds one message formatted like printf (used by loaders for their own
 * semantic checks, e.g. "relay.conf:12: operator alice: no keys"). */
void cfgu_errors_add(struct cfgu_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Adds a message prefixed with the file and line of cfg's current
 * section (cfg->filename:cfg->line). */
void cfgu_errors_add_at(struct cfgu_errors *e, cfg_t *cfg, const char *fmt,
			...) __attribute__((format(printf, 3, 4)));

/*
 * Parses path into cfg (made by cfg_init), collecting every message in e.
 * The file is opened (symlinks followed: configs may legitimately be
 * links), checked with fstat and read into memory by us, so it is refused
 * before libconfuse sees it if it is not a regular file (RT_ERR_INVAL:
 * /dev/zero, a directory, a FIFO) or is larger than max_bytes (1 MiB when
 * 0; RT_ERR_TOOBIG). Installs cfgu's error function on cfg (messages
 * "FILE:LINE: message"); later cfg_error() calls outside a parse go to the
 * log. Returns 0, RT_ERR_CONFIG (syntax or validation error),
 * RT_ERR_SYS (open/read: "PATH: cannot open: No such file or directory"),
 * RT_ERR_INVAL, RT_ERR_TOOBIG or RT_ERR_NOMEM, each with a message in e
 * naming the file. RT_ERR_NOMEM also when libconfuse failed to set a
 * default value in cfg_init() or in a section it created (it does not
 * report that itself). Not reentrant (libconfuse's lexer is not either).
 */
int cfgu_parse(cfg_t *cfg, const char *path, size_t max_bytes,
	       struct cfgu_errors *e);

/* Like cfgu_parse() but from a NUL-terminated string (no size limit);
 * name labels the messages (NULL: "[buf]"). */
int cfgu_parse_buf(cfg_t *cfg, const char *text, const char *name,
		   struct cfgu_errors *e);

/*
 * cfg_getsec() / cfg_getnsec() without allocating: libconfuse 3.3's own
 * copy the name (strndup) on every call and return NULL when that fails,
 * the same NULL as for a missing section. name must be a plain option
 * name (no "a|b" path). Returns the section, or NULL if cfg is NULL, name
 * is not a section option or index is out of range.
 */
cfg_t *cfgu_getsec(cfg_t *cfg, const char *name);
cfg_t *cfgu_getnsec(cfg_t *cfg, const char *name, unsigned int index);

/* Parse a duration / size string (syntax above) into *ms / *bytes. Return
 * 0, or RT_ERR_INVAL leaving the output untouched. Durations above 30 days
 * and sizes above 1 TiB are refused, as are overflowing digit strings. */
int cfgu_parse_duration(const char *s, int64_t *ms);
int cfgu_parse_size(const char *s, uint64_t *bytes);

/* libconfuse validators (cfg_set_validate_func): report through
 * cfg_error() naming the option and the value ("option 'port': port 0 is
 * out of range 1..65535"), and return 0 or -1. Durations, sizes and paths
 * are CFGT_STR options; ports and positives are CFGT_INT. For lists every
 * element is checked. libconfuse runs them only on values set in the
 * file, never on schema defaults. */
int cfgu_validate_port(cfg_t *cfg, cfg_opt_t *opt);
int cfgu_validate_duration(cfg_t *cfg, cfg_opt_t *opt);
int cfgu_validate_size(cfg_t *cfg, cfg_opt_t *opt);
int cfgu_validate_path(cfg_t *cfg, cfg_opt_t *opt);
int cfgu_validate_positive(cfg_t *cfg, cfg_opt_t *opt);

/* Reads a duration / size option already validated; returns its value, or
 * 0 when unset or invalid (a bad schema default: logged as an error). */
int64_t cfgu_get_duration(cfg_t *cfg, const char *name);
uint64_t cfgu_get_size(cfg_t *cfg, const char *name);

/* See the header comment. The target of a symlink is checked, and the
 * link itself must belong to root or the caller. Returns 0, RT_ERR_PERM or
 * RT_ERR_SYS (lstat/stat failed; errno set) with err naming the file and,
 * for a mode problem, the mode ("key /etc/x.key: mode 0644 is readable by
 * group or others; chmod 600 it"). */
int cfgu_check_key_perms(const char *path, char *err, size_t errlen);

/* The same, also accepting run_uid as the owner ((uid_t)-1: none). */
int cfgu_check_key_perms_for(const char *path, uid_t run_uid, char *err,
			     size_t errlen);

#endif
