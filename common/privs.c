/*
 * privs.c - the privilege drop and its checks (privs.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "privs.h"
#include "util.h"

int
privs_lookup(const char *name, struct privs_user *out, char *err,
	     size_t errlen)
{
	struct passwd *pw;

	memset(out, 0, sizeof(*out));
	errno = 0;
	if ((pw = getpwnam(name)) == NULL) {
		snprintf(err, errlen, "user \"%s\": no such user%s%s", name,
		    errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
		return RT_ERR_NOTFOUND;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user \"%s\": has uid 0, which drops "
		    "nothing; name an unprivileged account", name);
		return RT_ERR_INVAL;
	}
	if (pw->pw_gid == 0) {
		snprintf(err, errlen, "user \"%s\": its group is gid 0 (root's "
		    "files would stay in reach); name an account with its own "
		    "group", name);
		return RT_ERR_INVAL;
	}
	if (rt_strlcpy(out->name, pw->pw_name, sizeof(out->name)) >=
	    sizeof(out->name)) {
		snprintf(err, errlen, "user \"%s\": name too long", name);
		return RT_ERR_INVAL;
	}
	out->uid = pw->pw_uid;
	out->gid = pw->pw_gid;
	return 0;
}

/* Hex value of "Name:\t0000..." in status; -1 missing, -2 malformed. */
static int
cap_field(const char *status, const char *name, unsigned long long *v)
{
	size_t n = strlen(name);
	const char *p = status;
	char *end;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			errno = 0;
			*v = strtoull(p, &end, 16);
			if (end == p || errno != 0 ||
			    (*end != '\n' && *end != '\0'))
				return -2;
			return 0;
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return -1;
}

int
privs_caps_clear(const char *status, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		int required;
	} sets[] = { { "CapPrm", 1 }, { "CapEff", 1 }, { "CapAmb", 0 } };
	unsigned long long v;
	size_t i;
	int r;

	for (i = 0; i < RT_ARRAY_SIZE(sets); i++) {
		r = cap_field(status, sets[i].name, &v);
		if (r == -1 && !sets[i].required)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s in the process status",
			    sets[i].name, r == -1 ? "missing" : "malformed");
			return RT_ERR_INVAL;
		}
		if (v != 0) {
			snprintf(err, errlen, "%s %016llx: capabilities left "
			    "after the drop", sets[i].name, v);
			return RT_ERR_PERM;
		}
	}
	return 0;
}

/* Reads /proc/self/status (small: a few KiB) and checks it. */
static int
check_caps(char *err, size_t errlen)
{
	char buf[8192];
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "/proc/self/status: %s (cannot check "
		    "capabilities)", strerror(errno));
		return RT_ERR_SYS;
	}
	while (len < sizeof(buf) - 1 &&
	    (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return privs_caps_clear(buf, err, errlen);
}

/* 0 unless gid 0 is among our supplementary groups (from initgroups:
 * the account is a member of group root). */
static int
in_group_root(const struct privs_user *u, char *err, size_t errlen)
{
	gid_t *gs;
	int i, n, r = 0;

	if ((n = getgroups(0, NULL)) < 0 ||
	    (gs = calloc((size_t)n + 1, sizeof(*gs))) == NULL) {
		snprintf(err, errlen, "getgroups: %s", strerror(errno));
		return RT_ERR_SYS;
	}
	if ((n = getgroups(n, gs)) < 0) {
		snprintf(err, errlen, "getgroups: %s", strerror(errno));
		r = RT_ERR_SYS;
	}
	for (i = 0; i < n && r == 0; i++) {
		if (gs[i] == 0) {
			snprintf(err, errlen, "user \"%s\" is a member of "
			    "group 0 (root): root's group files would stay in "
			    "reach; take it out of that group", u->name);
			r = RT_ERR_PERM;
		}
	}
	free(gs);
	return r;
}

/* After setuid(): nothing of root may be left or be won back. */
static int
verify(const struct privs_user *u, char *err, size_t errlen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int r;

	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0) {
		snprintf(err, errlen, "getresuid: %s", strerror(errno));
		return RT_ERR_SYS;
	}
	if (ru != u->uid || eu != u->uid || su != u->uid ||
	    rg != u->gid || eg != u->gid || sg != u->gid) {
		snprintf(err, errlen, "after the drop to %s: uid %u/%u/%u gid "
		    "%u/%u/%u, expected %u and %u", u->name, (unsigned)ru,
		    (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg,
		    (unsigned)sg, (unsigned)u->uid, (unsigned)u->gid);
		return RT_ERR_PERM;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		snprintf(err, errlen, "after the drop to %s: setuid(0) still "
		    "succeeds", u->name);
		return RT_ERR_PERM;
	}
	if ((r = in_group_root(u, err, errlen)) != 0)
		return r;
	return check_caps(err, errlen);
}

/*
 * Already the user (systemd User=), maybe with capabilities it was given
 * for the start (AmbientCapabilities=CAP_NET_BIND_SERVICE to bind 443):
 * give them all up. Dropping capabilities needs no privilege.
 */
static int
clear_caps(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct data[2];

	/* Nothing to give up: make no call a seccomp filter may forbid
	 * (systemd's ~@privileged kills on capset). */
	if (check_caps(err, errlen) == 0)
		return 0;
	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, data) != 0) {
		snprintf(err, errlen, "capset (clearing capabilities): %s%s",
		    strerror(errno), errno == EPERM ? " (a seccomp filter "
		    "such as the shipped units' SystemCallFilter=~@privileged"
		    "? leave `user` empty when systemd's User= already "
		    "switches users)" : "");
		return RT_ERR_SYS;
	}
	return check_caps(err, errlen);
}

int
privs_drop(const struct privs_user *u, char *err, size_t errlen)
{
	if (geteuid() != 0) {
		if (getuid() == u->uid && geteuid() == u->uid &&
		    getgid() == u->gid)
			return clear_caps(err, errlen);
		snprintf(err, errlen, "user \"%s\": started as uid %u, not "
		    "root, so cannot switch to uid %u; start as root or as "
		    "%s itself", u->name, (unsigned)geteuid(),
		    (unsigned)u->uid, u->name);
		return RT_ERR_PERM;
	}
	if (initgroups(u->name, u->gid) != 0) {
		snprintf(err, errlen, "initgroups(%s, %u): %s", u->name,
		    (unsigned)u->gid, strerror(errno));
		return RT_ERR_SYS;
	}
	if (setgid(u->gid) != 0) {
		snprintf(err, errlen, "setgid(%u): %s", (unsigned)u->gid,
		    strerror(errno));
		return RT_ERR_SYS;
	}
	if (setuid(u->uid) != 0) {
		snprintf(err, errlen, "setuid(%u): %s", (unsigned)u->uid,
		    strerror(errno));
		return RT_ERR_SYS;
	}
	return verify(u, err, errlen);
}

int
privs_prepare_dir(const char *dir, const struct privs_user *u, char *err,
		  size_t errlen)
{
	struct stat st;
	int fd;

	if (stat(dir, &st) == 0)
		return 0;
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return RT_ERR_SYS;
	}
	if (mkdir(dir, 0700) != 0) {
		snprintf(err, errlen, "%s: cannot create: %s", dir,
		    strerror(errno));
		return RT_ERR_SYS;
	}
	/* Through the directory just made, not by name: whoever can write
	 * the parent could swap in a symlink to a file of root's. */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0 || fchown(fd, u->uid, u->gid) != 0) {
		snprintf(err, errlen, "%s: cannot give it to %s: %s", dir,
		    u->name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return RT_ERR_SYS;
	}
	close(fd);
	return 1;
}
