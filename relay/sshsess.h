/*
 * sshsess.h - one libssh server session on one non-blocking fd, driven by
 * the relay's event loop.
 *
 * States: accepted (ssh_bind_accept_fd done, key exchange running through
 * ssh_handle_key_exchange in non-blocking mode) -> ready (kex_done; the
 * session has its own ssh_event, never shared: pitfall 6). The loop watches
 * the fd for reading always and for writing while libssh holds unsent
 * output (sshsess_sync). libssh owns the fd after sshsess_start() succeeds
 * and closes it in sshsess_free().
 */
#ifndef RT_SSHSESS_H
#define RT_SSHSESS_H

#include <stddef.h>
#include <sys/types.h>

#include <libssh/libssh.h>

#include "loop.h"
#include "relay.h"

/*
 * Accepts fd as a server session with the relay's host keys, offering
 * only auth_methods (SSH_AUTH_METHOD_*), non-blocking, and watches fd with
 * cb/arg. On failure returns RT_ERR_SSH / RT_ERR_NOMEM / RT_ERR_SYS with
 * err filled; fd is closed either way when it fails.
 */
int sshsess_start(struct sshsess *ss, struct relay *r, int fd,
		  int auth_methods, loop_io_cb cb, void *arg, char *err,
		  size_t errlen);

/*
 * Advances the session after an fd event: the key exchange until it
 * completes, then ssh_event_dopoll() without waiting (which runs the
 * session's message and channel callbacks). Returns 0, RT_ERR_AGAIN while
 * the key exchange is still running, RT_ERR_EOF when the peer closed, or
 * RT_ERR_SSH with err filled (libssh's reason).
 */
int sshsess_poll(struct sshsess *ss, char *err, size_t errlen);

/* Asks the loop for write events while libssh has output queued. */
void sshsess_sync(struct sshsess *ss);

/* 1 while libssh holds output it could not write yet (backpressure: do not
 * queue channel data on a session that cannot drain). */
int sshsess_busy(const struct sshsess *ss);

/* 1 once the session is closed or in error (sshsess_lib_oom included). */
int sshsess_closed(const struct sshsess *ss);

/*
 * 1 when libssh's last error on s is a failed allocation ("FUNC: Out of
 * memory"). libssh 0.10 carries on after some of them: a channel data
 * packet it cannot buffer is dropped and that channel's stdout buffer
 * freed and left NULL, which ssh_channel_poll() and ssh_channel_read()
 * then dereference (SIGSEGV, seen under prlimit --as in fault_mem.sh).
 * Such a session has lost data and must end without its channels being
 * read again: sshsess_status() reports it as an error, sshsess_pull()
 * returns RT_ERR_NOMEM before touching the channel.
 */
int sshsess_lib_oom(ssh_session s);

/* Why a session ended: libssh's error (a MAC or decryption failure, say,
 * also when a channel call read the bad packet) or "connection closed by
 * peer". 0 while it is open, else RT_ERR_SSH or RT_ERR_EOF. */
int sshsess_status(struct sshsess *ss, char *err, size_t errlen);

/*
 * Pulls into b every byte libssh still holds for ch, all at once, or
 * nothing if they do not all fit in b (libssh 0.10 re-opens the whole
 * receive window on any read, so partial reads would let its own buffer
 * grow without bound). Called only while *backlog is set (a data
 * callback left bytes with libssh); clears it once nothing is left.
 * Returns the bytes pulled, -1 on a channel error or RT_ERR_NOMEM when b
 * cannot grow (bytes already read from libssh are then lost) or libssh ran
 * out of memory on the session (sshsess_lib_oom).
 */
ssize_t sshsess_pull(ssh_channel ch, struct buf *b, int *backlog);

/* Sends a disconnect if polite, stops watching, frees the session (and
 * every channel still in it) and its fd. Safe on a zeroed struct. */
void sshsess_free(struct sshsess *ss, int polite);

#endif
