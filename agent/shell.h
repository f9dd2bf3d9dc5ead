/*
 * shell.h - the built-in `shell` service's PTY session: a login shell
 * (or the configured command) for gateways without sshd, run under a
 * pseudo-terminal as shell.user.
 *
 * Data paths, each bounded by SHELL_BUF:
 *   channel -> to_pty -> PTY master      (shell_write; refuses when full)
 *   PTY master -> from_pty -> channel    (shell_peek / shell_consume)
 * The master is read only while from_pty has room, so a slow operator
 * stops the shell's output instead of growing memory.
 *
 * The child starts a new session on the PTY (login_tty), with the signal
 * mask cleared and SIGPIPE back to default (loop.h). It is reaped without
 * blocking through shell_reap() on SIGCHLD. shell_hangup() sends SIGHUP
 * to its process group, and SIGKILL SHELL_KILL_MS later if it is still
 * there. An idle timeout (no byte either way) hangs up the same way.
 *
 * States: RUNNING -> EXITED (reaped; remaining output still readable)
 * -> DONE (reaped and from_pty drained, or hung up and reaped).
 */
#ifndef RT_SHELL_H
#define RT_SHELL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct loop;
struct agent_config;
struct shell;

#define SHELL_BUF	(64 * 1024)
#define SHELL_KILL_MS	3000

/* Called when the shell has output, room for input, or ended (from
 * inside loop callbacks; must not free the shell). */
typedef void (*shell_notify_fn)(void *arg);

/*
 * Starts the configured shell (cfg->shell_user / shell_command) on a new
 * PTY of cols x rows (0 = 80 x 24) with TERM term (NULL or "" = "dumb").
 * operator is put in the child's environment as REVTUN_OPERATOR. Returns
 * 0 and *out, or RT_ERR_NOTFOUND (no such user), RT_ERR_PERM (not root
 * and the user is someone else), RT_ERR_SYS / RT_ERR_NOMEM, with a reason
 * in err.
 */
int shell_start(struct loop *loop, const struct agent_config *cfg,
		const char *operator, uint16_t cols, uint16_t rows,
		const char *term, shell_notify_fn notify, void *arg,
		struct shell **out, char *err, size_t errsz);

/* Queues input for the PTY: all len bytes or none. Returns 0, RT_ERR_FULL
 * (retry later) or RT_ERR_CLOSED (the shell has exited). */
int shell_write(struct shell *sh, const void *data, size_t len);

/* Room left for input (bytes). */
size_t shell_room(const struct shell *sh);

/* Output waiting to be sent; consume what was sent. */
const uint8_t *shell_peek(const struct shell *sh, size_t *len);
void shell_consume(struct shell *sh, size_t n);

/* Changes who is notified (e.g. the channel is gone: its owner keeps
 * the shell until reaped). */
void shell_set_notify(struct shell *sh, shell_notify_fn notify, void *arg);

/* Sets the window size (TIOCSWINSZ; the kernel signals SIGWINCH). */
void shell_resize(struct shell *sh, uint16_t cols, uint16_t rows);

/* Reaps the child if it exited (WNOHANG). Call on SIGCHLD. */
void shell_reap(struct shell *sh);

/* Hangs up (SIGHUP to the group, SIGKILL later); why is logged. */
void shell_hangup(struct shell *sh, const char *why);

/*
 * 1 when the shell is over and all its output was taken, with the exit
 * status in *status (exit code, or 128 + signal); 0 while running.
 */
int shell_done(const struct shell *sh, uint32_t *status);

/* 1 once the child is reaped (shell_free() then leaves nothing behind). */
int shell_reaped(const struct shell *sh);

/* The child's pid (for logs). */
pid_t shell_pid(const struct shell *sh);

/* Closes the PTY and frees. A child not yet reaped gets SIGKILL and is
 * reaped if possible; callers keep unreaped shells until shell_reaped().
 * NULL is a no-op. */
void shell_free(struct shell *sh);

#endif
