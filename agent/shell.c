/*
 * shell.c - the built-in shell service's PTY session (shell.h).
 *
 * Owns the PTY master fd (non-blocking, watched by the loop), the child
 * process, its two bounded buffers and two timers: idle (no traffic for
 * shell.idle_timeout) and kill (SIGKILL after a hangup the child
 * ignored). Nothing here blocks: the child is reaped with WNOHANG when
 * SIGCHLD arrives (the agent's signalfd) or when the PTY reports EOF.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "agent_config.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "shell.h"
#include "util.h"

struct shell {
	struct loop *loop;
	pid_t pid;
	int fd;				/* PTY master; -1 once closed */
	struct loop_watch *w;
	struct buf *to_pty;		/* channel -> shell */
	struct buf *from_pty;		/* shell -> channel */
	int reaped;
	int pty_eof;			/* EIO/EOF from the master */
	int hung_up;
	uint32_t status;
	int64_t idle_ms;
	int64_t last_io_ms;
	struct loop_timer *idle_timer;
	struct loop_timer *kill_timer;
	shell_notify_fn notify;
	void *arg;
};

static void shell_io(struct loop *loop, int fd, unsigned int ev, void *arg);

static void
shell_update_watch(struct shell *sh)
{
	unsigned int ev = 0;

	if (sh->w == NULL)
		return;
	if (!sh->pty_eof && buf_room(sh->from_pty) > 0)
		ev |= LOOP_READ;
	if (buf_len(sh->to_pty) > 0 && !sh->pty_eof)
		ev |= LOOP_WRITE;
	loop_watch_set(sh->w, ev);
}

static void
shell_notify(struct shell *sh)
{
	if (sh->notify != NULL)
		sh->notify(sh->arg);
}

/*
 * Everything the child needs, prepared in the parent: the agent has
 * resolver threads, and after fork only async-signal-safe calls are safe
 * (initgroups() would go through NSS, whose locks a thread may hold).
 */
struct shell_exec {
	int drop;			/* become pw's uid/gid/groups */
	uid_t uid;
	gid_t gid;
	gid_t *groups;			/* from getgrouplist() */
	int ngroups;
	char name[64];
	char dir[PATH_MAX];
	char path[PATH_MAX];		/* what to execve */
	char argv0[256];
	const char *argv[4];
	char env[8][PATH_MAX + 16];
	char *envp[9];
};

static int
exec_prepare(struct shell_exec *x, const struct passwd *pw,
    const char *command, const char *term, const char *operator, int drop)
{
	const char *sh, *base;
	size_t n = 0;
	int ng = 32;

	memset(x, 0, sizeof(*x));
	x->drop = drop;
	x->uid = pw->pw_uid;
	x->gid = pw->pw_gid;
	rt_strlcpy(x->name, pw->pw_name, sizeof(x->name));
	rt_strlcpy(x->dir, pw->pw_dir != NULL ? pw->pw_dir : "/",
	    sizeof(x->dir));
	if (drop) {
		for (;;) {
			int want = ng;

			if ((x->groups = calloc((size_t)ng,
			    sizeof(*x->groups))) == NULL)
				return RT_ERR_NOMEM;
			if (getgrouplist(pw->pw_name, pw->pw_gid, x->groups,
			    &ng) >= 0)
				break;
			free(x->groups);
			x->groups = NULL;
			if (ng <= want || ng > 65536)
				return RT_ERR_SYS;
		}
		x->ngroups = ng;
	}
	sh = pw->pw_shell != NULL && *pw->pw_shell ? pw->pw_shell : "/bin/sh";
	if (command != NULL && *command != '\0') {
		rt_strlcpy(x->path, "/bin/sh", sizeof(x->path));
		x->argv[0] = "sh";
		x->argv[1] = "-c";
		x->argv[2] = command;
	} else {
		/* A login shell: argv[0] starts with '-'. */
		rt_strlcpy(x->path, sh, sizeof(x->path));
		base = strrchr(sh, '/');
		snprintf(x->argv0, sizeof(x->argv0), "-%s", base ? base + 1 : sh);
		x->argv[0] = x->argv0;
	}
	snprintf(x->env[n++], sizeof(x->env[0]), "TERM=%s", term);
	snprintf(x->env[n++], sizeof(x->env[0]), "HOME=%s", x->dir);
	snprintf(x->env[n++], sizeof(x->env[0]), "USER=%s", x->name);
	snprintf(x->env[n++], sizeof(x->env[0]), "LOGNAME=%s", x->name);
	snprintf(x->env[n++], sizeof(x->env[0]), "PATH=%s", pw->pw_uid == 0 ?
	    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" :
	    "/usr/local/bin:/usr/bin:/bin");
	snprintf(x->env[n++], sizeof(x->env[0]), "REVTUN_OPERATOR=%s",
	    operator);
	snprintf(x->env[n++], sizeof(x->env[0]), "SHELL=%s", sh);
	for (size_t i = 0; i < n; i++)
		x->envp[i] = x->env[i];
	return 0;
}

static void
exec_free(struct shell_exec *x)
{
	if (x != NULL) {
		free(x->groups);
		free(x);
	}
}

/* Child side: never returns. Only async-signal-safe calls (see above). */
static void __attribute__((noreturn))
child_exec(const struct shell_exec *x)
{
	static const int sigs[] = { SIGPIPE, SIGCHLD, SIGHUP, SIGTERM, SIGINT,
	    SIGUSR1, SIGQUIT, SIGWINCH };
	sigset_t none;
	size_t i;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (i = 0; i < RT_ARRAY_SIZE(sigs); i++)
		signal(sigs[i], SIG_DFL);
	closefrom(3);
	if (x->drop) {
		if (setgroups((size_t)x->ngroups, x->groups) < 0 ||
		    setgid(x->gid) < 0 || setuid(x->uid) < 0) {
			dprintf(2, "revtun shell: cannot become %s: %s\r\n",
			    x->name, strerror(errno));
			_exit(126);
		}
	}
	if (chdir(x->dir) < 0)
		(void)chdir("/");
	execve(x->path, (char *const *)x->argv, x->envp);
	dprintf(2, "revtun shell: cannot run %s: %s\r\n",
	    x->argv[0][0] == '-' ? x->path : x->argv[2], strerror(errno));
	_exit(127);
}

static void
idle_fired(struct loop *loop, void *arg)
{
	struct shell *sh = arg;
	int64_t left;

	sh->idle_timer = NULL;
	left = sh->last_io_ms + sh->idle_ms - loop_now(loop);
	if (left > 0) {
		loop_timer_add(loop, left, idle_fired, sh, &sh->idle_timer);
		return;
	}
	shell_hangup(sh, "idle timeout");
}

static void
kill_fired(struct loop *loop, void *arg)
{
	struct shell *sh = arg;

	sh->kill_timer = NULL;
	if (sh->reaped)
		return;
	log_warn("shell pid %ld: still running %d ms after SIGHUP; SIGKILL",
	    (long)sh->pid, SHELL_KILL_MS);
	kill(-sh->pid, SIGKILL);
	kill(sh->pid, SIGKILL);
}

int
shell_start(struct loop *loop, const struct agent_config *cfg,
    const char *operator, uint16_t cols, uint16_t rows, const char *term,
    shell_notify_fn notify, void *arg, struct shell **out, char *err,
    size_t errsz)
{
	struct passwd *pw;
	struct winsize ws;
	struct shell *sh;
	struct shell_exec *x = NULL;
	int fd = -1, r, drop;
	pid_t pid;

	*out = NULL;
	errno = 0;
	if ((pw = getpwnam(cfg->shell_user)) == NULL) {
		snprintf(err, errsz, "no such user %s", cfg->shell_user);
		return RT_ERR_NOTFOUND;
	}
	drop = geteuid() != pw->pw_uid;
	if (drop && geteuid() != 0) {
		snprintf(err, errsz, "agent is not root and cannot become %s",
		    cfg->shell_user);
		return RT_ERR_PERM;
	}
	if ((sh = calloc(1, sizeof(*sh))) == NULL ||
	    (sh->to_pty = buf_new(SHELL_BUF)) == NULL ||
	    (sh->from_pty = buf_new(SHELL_BUF)) == NULL) {
		snprintf(err, errsz, "out of memory");
		r = RT_ERR_NOMEM;
		goto fail;
	}
	sh->loop = loop;
	sh->fd = -1;
	sh->notify = notify;
	sh->arg = arg;
	memset(&ws, 0, sizeof(ws));
	ws.ws_col = cols ? cols : 80;
	ws.ws_row = rows ? rows : 24;
	if (term == NULL || *term == '\0' ||
	    strspn(term, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789.+-_") != strlen(term))
		term = "dumb";
	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (r = exec_prepare(x, pw, cfg->shell_command, term, operator,
	    drop)) < 0) {
		if (x == NULL)
			r = RT_ERR_NOMEM;
		snprintf(err, errsz, "%s", r == RT_ERR_NOMEM ? "out of memory" :
		    "cannot list the groups of the shell user");
		goto fail;
	}
	pid = forkpty(&fd, NULL, NULL, &ws);
	if (pid < 0) {
		snprintf(err, errsz, "forkpty: %s", strerror(errno));
		r = RT_ERR_SYS;
		goto fail;
	}
	if (pid == 0)
		child_exec(x);
	exec_free(x);
	x = NULL;
	sh->pid = pid;
	sh->fd = fd;
	if (rt_fd_nonblock(fd) < 0 || rt_fd_cloexec(fd) < 0 ||
	    loop_watch_add(loop, fd, LOOP_READ, shell_io, sh, &sh->w) < 0) {
		snprintf(err, errsz, "cannot watch the PTY: %s",
		    strerror(errno));
		r = RT_ERR_SYS;
		goto fail;
	}
	sh->idle_ms = cfg->shell_idle_timeout_ms;
	sh->last_io_ms = loop_now(loop);
	if (sh->idle_ms > 0)
		loop_timer_add(loop, sh->idle_ms, idle_fired, sh,
		    &sh->idle_timer);
	*out = sh;
	return 0;
 fail:
	exec_free(x);
	shell_free(sh);
	return r;
}

static void
shell_read_pty(struct shell *sh)
{
	ssize_t n;

	while (!sh->pty_eof && buf_room(sh->from_pty) > 0) {
		n = buf_read_fd(sh->from_pty, sh->fd, 0);
		if (n > 0) {
			sh->last_io_ms = loop_now(sh->loop);
			continue;
		}
		if (n == RT_ERR_AGAIN || n == RT_ERR_FULL)
			break;
		/* EIO: every slave fd is closed (the shell exited). */
		sh->pty_eof = 1;
	}
}

static void
shell_io(struct loop *loop, int fd, unsigned int ev, void *arg)
{
	struct shell *sh = arg;
	ssize_t n;

	if (ev & (LOOP_READ | LOOP_ERROR))
		shell_read_pty(sh);
	if ((ev & LOOP_WRITE) && buf_len(sh->to_pty) > 0) {
		n = buf_write_fd(sh->to_pty, sh->fd);
		if (n > 0) {
			sh->last_io_ms = loop_now(loop);
			buf_shrink(sh->to_pty);
		} else if (n == RT_ERR_SYS)
			sh->pty_eof = 1;
	}
	if (sh->pty_eof) {
		loop_watch_del(sh->w);
		sh->w = NULL;
		shell_reap(sh);
	}
	shell_update_watch(sh);
	shell_notify(sh);
}

int
shell_write(struct shell *sh, const void *data, size_t len)
{
	if (sh->pty_eof || sh->reaped || sh->hung_up)
		return RT_ERR_CLOSED;
	if (buf_append(sh->to_pty, data, len) != 0)
		return RT_ERR_FULL;
	if (len > 0)
		sh->last_io_ms = loop_now(sh->loop);
	shell_update_watch(sh);
	return 0;
}

size_t
shell_room(const struct shell *sh)
{
	return buf_room(sh->to_pty);
}

const uint8_t *
shell_peek(const struct shell *sh, size_t *len)
{
	*len = buf_len(sh->from_pty);
	return buf_data(sh->from_pty);
}

void
shell_consume(struct shell *sh, size_t n)
{
	buf_consume(sh->from_pty, n);
	if (buf_len(sh->from_pty) == 0)
		buf_shrink(sh->from_pty);
	shell_update_watch(sh);
}

void
shell_set_notify(struct shell *sh, shell_notify_fn notify, void *arg)
{
	sh->notify = notify;
	sh->arg = arg;
}

void
shell_resize(struct shell *sh, uint16_t cols, uint16_t rows)
{
	struct winsize ws;

	if (sh->fd < 0 || cols == 0 || rows == 0)
		return;
	memset(&ws, 0, sizeof(ws));
	ws.ws_col = cols;
	ws.ws_row = rows;
	if (ioctl(sh->fd, TIOCSWINSZ, &ws) < 0)
		log_debug("shell pid %ld: TIOCSWINSZ: %s", (long)sh->pid,
		    strerror(errno));
}

void
shell_reap(struct shell *sh)
{
	int st;
	pid_t p;

	if (sh->reaped || sh->pid <= 0)
		return;
	do
		p = waitpid(sh->pid, &st, WNOHANG);
	while (p < 0 && errno == EINTR);
	if (p != sh->pid)
		return;
	sh->reaped = 1;
	if (WIFEXITED(st))
		sh->status = (uint32_t)WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		sh->status = 128u + (uint32_t)WTERMSIG(st);
	else
		sh->status = 255;
	loop_timer_cancel(sh->kill_timer);
	sh->kill_timer = NULL;
	/* Take what the shell wrote before exiting. */
	if (sh->fd >= 0)
		shell_read_pty(sh);
	log_info("shell pid %ld: exited with status %u", (long)sh->pid,
	    sh->status);
	shell_notify(sh);
}

void
shell_hangup(struct shell *sh, const char *why)
{
	if (sh->hung_up)
		return;
	sh->hung_up = 1;
	loop_timer_cancel(sh->idle_timer);
	sh->idle_timer = NULL;
	if (sh->reaped)
		return;
	log_info("shell pid %ld: hanging up: %s", (long)sh->pid, why);
	kill(-sh->pid, SIGHUP);
	kill(-sh->pid, SIGCONT);
	loop_timer_add(sh->loop, SHELL_KILL_MS, kill_fired, sh,
	    &sh->kill_timer);
	shell_notify(sh);
}

int
shell_done(const struct shell *sh, uint32_t *status)
{
	if (!sh->reaped)
		return 0;
	/* After exit, remaining output goes out first unless the slave is
	 * still held open by a background process (then it is cut). */
	if (buf_len(sh->from_pty) > 0)
		return 0;
	*status = sh->status;
	return 1;
}

int
shell_reaped(const struct shell *sh)
{
	return sh->reaped;
}

pid_t
shell_pid(const struct shell *sh)
{
	return sh->pid;
}

void
shell_free(struct shell *sh)
{
	if (sh == NULL)
		return;
	loop_watch_del(sh->w);
	loop_timer_cancel(sh->idle_timer);
	loop_timer_cancel(sh->kill_timer);
	if (sh->fd >= 0)
		close(sh->fd);
	if (sh->pid > 0 && !sh->reaped) {
		kill(-sh->pid, SIGKILL);
		kill(sh->pid, SIGKILL);
		(void)waitpid(sh->pid, NULL, WNOHANG);
	}
	buf_free(sh->to_pty);
	buf_free(sh->from_pty);
	free(sh);
}
