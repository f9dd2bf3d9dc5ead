/*
 * sshc.h - the agent's SSH client session (libssh2) running inside the
 * TLS connection to the relay.
 *
 * libssh2 never touches the socket: its SEND callback appends every packet
 * to to_relay, an agent-owned buffer, and always reports full success
 * (DESIGN.md pitfall 1); sshc_pump() flushes to_relay into TLS. Channel
 * data is written only while to_relay is below SSHC_OUT_HIGH; a flush
 * that brings it below that schedules another pump. The RECV
 * callback reads TLS directly and maps "would block" to -EAGAIN. A pump
 * whose pass over the channels read anything from TLS, or left a channel
 * stopped at its quota, schedules another pump (agent_kick): libssh2
 * sorts what it reads into every channel, and bytes it holds make no fd
 * readable (DESIGN.md pitfall 3).
 *
 * States: HANDSHAKE -> (host key pin check) -> AUTH ("none") -> UP.
 * In UP, one tcpip-forward per configured service (bind address = service
 * name, port = nominal port, queue SSHC_FWD_QUEUE), registered one at a
 * time; a refusal by the relay is logged and the session stays up.
 *
 * Liveness: every byte from the relay stamps last_rx. A keepalive request
 * (keepalive@openssh.com, reply wanted) goes out every keepalive_interval;
 * a relay silent for keepalive_interval * keepalive_count is declared dead.
 *
 * Errors are reported to the uplink through uplink_fail(), never by
 * freeing anything from inside a libssh2 or loop callback.
 */
#ifndef RT_SSHC_H
#define RT_SSHC_H

#include <stddef.h>
#include <stdint.h>

#include <libssh2.h>

struct agent;
struct tls_conn;
struct sshc;

/*
 * No channel writes above SSHC_OUT_HIGH. Bytes in flight stay in the
 * kernel (its send buffer grows with the path's bandwidth-delay product);
 * to_relay only has to refill the kernel's unsent queue (uplink.c,
 * TCP_NOTSENT_LOWAT) at each write event, and everything in it is
 * queued ahead of any interactive channel: 16 KiB is 0.5 s at 256
 * kbit/s, where 1 MiB was half a minute (FAULTS.md N8).
 */
#define SSHC_OUT_HIGH	(16 * 1024)
#define SSHC_OUT_LIMIT	(4 * 1024 * 1024) /* hard cap of to_relay */
#define SSHC_FWD_QUEUE	256		/* accept backlog (pitfall 2) */

/*
 * Creates a session over the established TLS connection tls on fd (both
 * stay owned by the caller and must outlive the session). relay names the
 * peer in logs ("relay.example.com:443"). Returns 0 and *out, or
 * RT_ERR_NOMEM / RT_ERR_SSH.
 */
int sshc_new(struct agent *a, struct tls_conn *tls, int fd,
	     const char *relay, struct sshc **out);

/*
 * Frees the session and every forwarded channel with it (target sockets
 * closed, pending dials cancelled). Sends nothing. NULL is a no-op.
 */
void sshc_free(struct sshc *s);

/*
 * Advances the session: handshake, authentication, forward registration,
 * accepting forwarded channels, servicing every channel, flushing
 * to_relay into TLS. Returns 0, or a negative RT_ERR_* code when the
 * session is broken (the reason is in sshc_error()).
 */
int sshc_pump(struct sshc *s);

/* LOOP_READ / LOOP_WRITE events the relay fd needs now. */
unsigned int sshc_want(const struct sshc *s);

/* 1 once authenticated (forwards may still be pending). */
int sshc_is_up(const struct sshc *s);

/* Forwarded channels open or closing. */
unsigned int sshc_channels(const struct sshc *s);

/* 1 while to_relay holds more than SSHC_OUT_HIGH bytes. */
int sshc_out_high(const struct sshc *s);

/*
 * 1 once libssh2's last error says its transport cannot go on: a failed
 * allocation (LIBSSH2_ERROR_ALLOC), a packet it could not decrypt or
 * frame (OUT_OF_BOUNDARY, DECRYPT, PROTO, ...). libssh2 1.10 can be left
 * in the middle of a packet then, and the next call that reads aborts
 * the process (transport.c decrypt: "Assertion `(len % blocksize) == 0'
 * failed", seen under prlimit --as in fault_mem.sh, after channel reads
 * failed with -41): make no further call on the session but end it.
 */
int sshc_lib_broken(const struct sshc *s);

/* Why the session failed, "" if it did not. */
const char *sshc_error(const struct sshc *s);

/*
 * Called after a reload changed the services: closes the channels of
 * removed or changed services, cancels their forwards and registers the
 * new ones. old_cfg is the config before the swap (still valid).
 */
void sshc_services_changed(struct sshc *s, const struct agent_config *old_cfg);

/*
 * Starts a graceful end: closes every channel, sends SSH_MSG_DISCONNECT.
 * The caller keeps pumping until sshc_drained() or its deadline.
 */
void sshc_disconnect(struct sshc *s, const char *why);

/* 1 when nothing is left to send to the relay. */
int sshc_drained(const struct sshc *s);

/* Writes a one-line status summary (state, forwards, channels, buffer
 * use) into buf. */
void sshc_status(const struct sshc *s, char *buf, size_t len);

/* Logs one line per open channel (USR1). */
void sshc_log_channels(const struct sshc *s);

#endif
