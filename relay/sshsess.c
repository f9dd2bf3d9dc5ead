/*
 * sshsess.c - a libssh server session on the relay's loop (sshsess.h).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "loop.h"
#include "sshsess.h"
#include "util.h"

#define SSHSESS_POLL_ROUNDS 16

int
sshsess_start(struct sshsess *ss, struct relay *r, int fd, int auth_methods,
	      loop_io_cb cb, void *arg, char *err, size_t errlen)
{
	int r2;

	memset(ss, 0, sizeof(*ss));
	ss->fd = -1;
	if ((ss->s = ssh_new()) == NULL) {
		snprintf(err, errlen, "ssh_new: out of memory");
		close(fd);
		return RT_ERR_NOMEM;
	}
	if (ssh_bind_accept_fd(r->sshbind, ss->s, fd) != SSH_OK) {
		snprintf(err, errlen, "ssh accept: %s", ssh_get_error(r->sshbind));
		/* libssh owns the fd only if it took it into the session */
		if (ssh_get_fd(ss->s) != fd)
			close(fd);
		ssh_free(ss->s);
		ss->s = NULL;
		return RT_ERR_SSH;
	}
	ss->fd = fd;
	ssh_set_blocking(ss->s, 0);
	ssh_set_auth_methods(ss->s, auth_methods);
	if ((r2 = loop_watch_add(r->loop, fd, LOOP_READ, cb, arg, &ss->w)) != 0) {
		snprintf(err, errlen, "watch: %s", rt_strerror_errno(r2));
		sshsess_free(ss, 0);
		return r2;
	}
	return 0;
}

/* How libssh ends the error text of a failed allocation. */
#define LIBSSH_OOM ": Out of memory"

int
sshsess_lib_oom(ssh_session s)
{
	const char *e;
	size_t n, t = sizeof(LIBSSH_OOM) - 1;

	if (s == NULL || (e = ssh_get_error(s)) == NULL)
		return 0;
	n = strlen(e);
	return n >= t && strcmp(e + n - t, LIBSSH_OOM) == 0;
}

int
sshsess_closed(const struct sshsess *ss)
{
	if (ss->s == NULL)
		return 1;
	return (ssh_get_status(ss->s) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0 ||
	    sshsess_lib_oom(ss->s);
}

int
sshsess_status(struct sshsess *ss, char *err, size_t errlen)
{
	int st;

	if (ss->s == NULL) {
		snprintf(err, errlen, "session gone");
		return RT_ERR_EOF;
	}
	st = ssh_get_status(ss->s);

	if ((st & SSH_CLOSED_ERROR) || sshsess_lib_oom(ss->s)) {
		snprintf(err, errlen, "%s", ssh_get_error(ss->s));
		return RT_ERR_SSH;
	}
	if (st & SSH_CLOSED) {
		snprintf(err, errlen, "connection closed by peer");
		return RT_ERR_EOF;
	}
	return 0;
}

int
sshsess_poll(struct sshsess *ss, char *err, size_t errlen)
{
	int rc, polled, i;

	if (ss->s == NULL) {
		snprintf(err, errlen, "no session");
		return RT_ERR_SSH;
	}
	if (!ss->kex_done) {
		rc = ssh_handle_key_exchange(ss->s);
		if (rc == SSH_AGAIN) {
			rc = sshsess_status(ss, err, errlen);
			return rc != 0 ? rc : RT_ERR_AGAIN;
		}
		if (rc != SSH_OK) {
			snprintf(err, errlen, "key exchange: %s",
			    ssh_get_error(ss->s));
			return RT_ERR_SSH;
		}
		/* pitfall 6: each session gets its own event, and only now */
		if ((ss->ev = ssh_event_new()) == NULL) {
			snprintf(err, errlen, "ssh_event_new: out of memory");
			return RT_ERR_NOMEM;
		}
		if (ssh_event_add_session(ss->ev, ss->s) != SSH_OK) {
			snprintf(err, errlen, "ssh_event_add_session failed");
			return RT_ERR_SSH;
		}
		ss->kex_done = 1;
	}
	/* libssh reads at most 4 KiB per poll (pitfall 10): take up to
	 * SSHSESS_POLL_ROUNDS of them per wake-up, not one */
	for (i = 0; i < SSHSESS_POLL_ROUNDS; i++) {
		polled = ssh_event_dopoll(ss->ev, 0);
		if ((rc = sshsess_status(ss, err, errlen)) != 0)
			return rc;
		if (polled == SSH_ERROR) {
			snprintf(err, errlen, "%s", ssh_get_error(ss->s));
			return RT_ERR_SSH;
		}
		if (polled != SSH_OK)
			break;		/* nothing more to read now */
	}
	return 0;
}

int
sshsess_busy(const struct sshsess *ss)
{
	if (ss->s == NULL)
		return 0;
	return (ssh_get_poll_flags(ss->s) & SSH_WRITE_PENDING) != 0;
}

void
sshsess_sync(struct sshsess *ss)
{
	unsigned int ev = LOOP_READ;

	if (ss->w == NULL)
		return;
	if (sshsess_busy(ss))
		ev |= LOOP_WRITE;
	loop_watch_set(ss->w, ev);
}

void
sshsess_free(struct sshsess *ss, int polite)
{
	loop_watch_del(ss->w);
	ss->w = NULL;
	if (ss->ev != NULL) {
		if (ss->s != NULL)
			ssh_event_remove_session(ss->ev, ss->s);
		ssh_event_free(ss->ev);
		ss->ev = NULL;
	}
	if (ss->s != NULL) {
		if (polite && !sshsess_closed(ss))
			ssh_disconnect(ss->s);
		else
			ssh_silent_disconnect(ss->s);
		ssh_free(ss->s);	/* closes the fd and frees its channels */
		ss->s = NULL;
	}
	ss->fd = -1;
}

#define PULL_CHUNK 32768

ssize_t
sshsess_pull(ssh_channel ch, struct buf *b, int *backlog)
{
	uint8_t tmp[PULL_CHUNK];
	size_t total = 0, want;
	int avail, n;

	if (!*backlog || ch == NULL)
		return 0;
	if (sshsess_lib_oom(ssh_channel_get_session(ch)))
		return RT_ERR_NOMEM;	/* see sshsess_lib_oom(): hands off */
	/* with bytes buffered this does not read the socket, so no callback
	 * runs between here and the reads below */
	avail = ssh_channel_poll(ch, 0);
	if (sshsess_lib_oom(ssh_channel_get_session(ch)))
		return RT_ERR_NOMEM;	/* it read packets and failed there */
	if (avail == SSH_ERROR)
		return -1;
	if (avail <= 0) {
		*backlog = 0;
		return 0;
	}
	if ((size_t)avail > buf_room(b))
		return 0;	/* wait until all of it fits */
	while (total < (size_t)avail) {
		want = RT_MIN((size_t)avail - total, sizeof(tmp));
		n = ssh_channel_read_nonblocking(ch, tmp, (uint32_t)want, 0);
		if (n == SSH_ERROR)
			return -1;
		if (n <= 0)
			break;
		/* avail fitted the limit: only growing the block can fail
		 * (the bytes in tmp are lost; the caller ends the channel) */
		if (buf_append(b, tmp, (size_t)n) != 0)
			return RT_ERR_NOMEM;
		total += (size_t)n;
	}
	if (total == (size_t)avail)
		*backlog = 0;
	return (ssize_t)total;
}
