/*
 * privs.h - dropping root for good, once, at start-up (both daemons).
 *
 * A daemon started as root first does everything that needs root (reads
 * its config and keys, binds its listeners, opens its log files, takes
 * its pid file), then calls privs_drop(): initgroups(), setgid(),
 * setuid(), in that order (groups and gid can only be changed while still
 * root), and then checks that the drop cannot be undone: real, effective
 * and saved uid and gid are the user's, setuid(0) fails, and
 * /proc/self/status shows no permitted, effective or ambient capability.
 * Any failure is fatal for the caller: running half-dropped is worse than
 * not running.
 *
 * Started as a non-root user, privs_drop() succeeds only when that
 * already is the configured user (systemd's User= naming the same
 * account); it then gives up whatever capabilities it was started with
 * (AmbientCapabilities=CAP_NET_BIND_SERVICE for port 443, no longer
 * needed once bound). Any other user is refused with a message naming
 * both.
 * The user must not be root (uid 0): that would be no drop at all.
 */
#ifndef RT_PRIVS_H
#define RT_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

struct privs_user {
	char	name[64];
	uid_t	uid;
	gid_t	gid;		/* the user's primary group */
};

/* Looks name up in the password database. Returns 0 and *out, or
 * RT_ERR_NOTFOUND ("user \"x\": no such user") / RT_ERR_INVAL (uid 0,
 * name too long) with err set. */
int privs_lookup(const char *name, struct privs_user *out, char *err,
		 size_t errlen);

/*
 * Becomes u for good (see the header comment). Returns 0 (done, or
 * already u), RT_ERR_PERM (not root and not u; or a check after the drop
 * failed) or RT_ERR_SYS (a call failed; errno kept), err naming the step
 * ("setgid(65534): Operation not permitted").
 */
int privs_drop(const struct privs_user *u, char *err, size_t errlen);

/*
 * Pure: checks the text of /proc/PID/status for CapPrm, CapEff and
 * CapAmb all zero (CapAmb may be absent on old kernels). Returns 0, or
 * RT_ERR_PERM naming the first non-zero set ("CapEff 0000000000000400"),
 * or RT_ERR_INVAL if CapPrm or CapEff is missing or not hex.
 */
int privs_caps_clear(const char *status, char *err, size_t errlen);

/*
 * Before the drop (as root): makes sure dir exists for u. A missing dir
 * is created mode 0700 (one level, the parent must exist) and given to
 * u; an existing one is left as it is (the caller checks access after
 * the drop). Returns 0, 1 (created), or RT_ERR_SYS with err.
 */
int privs_prepare_dir(const char *dir, const struct privs_user *u,
		      char *err, size_t errlen);

#endif
