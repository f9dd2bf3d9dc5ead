/*
 * operator.h - operators' SSH connections: public-key login, channel
 * routing to agents, exec commands.
 *
 * States: key exchange (handshake_timeout) -> authenticating (publickey
 * only, auth_timeout from accept, auth_max_tries failed attempts) ->
 * authenticated. Allowed afterwards: direct-tcpip opens (routed to an
 * agent's service after an ACL check on every open) and session channels
 * whose accepted requests are exec of a relay command ("agents", "help",
 * or one answered by the agent's control / shell service: status, config,
 * logs, reload, shell; see ctlexec.h), pty-req before that exec (the relay
 * allocates no PTY: it is forwarded to a later `shell AGENT`) and
 * window-change. Refused: shell, pty-req after exec, x11, auth-agent, env,
 * subsystems, tcpip-forward (-R), any other channel type. An unknown
 * agent, an offline agent and a forbidden one get the same
 * SSH_OPEN_ADMINISTRATIVELY_PROHIBITED answer with the same (empty) text
 * (for commands: the same stderr line and exit status 1).
 */
#ifndef RT_OPERATOR_H
#define RT_OPERATOR_H

#include "relay.h"

/*
 * Takes over fd (its first bytes were "SSH-") from src/host. t_accept is
 * when the socket was accepted: the handshake deadline runs from there,
 * not from the first byte, so a peer cannot hold a slot for twice the
 * bound. Returns 0, or an RT_ERR_* code (fd closed, reason logged).
 */
int operator_start(struct relay *r, int fd, const char *src,
		   const char *host, int port, int64_t t_accept);

/* Marks op dead with a reason (logged at reap). */
void operator_kill(struct opconn *op, const char *why);

/* Answers the requests libssh queued for op's session (see agent_drain). */
void operator_drain(struct opconn *op);

/* Exec sessions: one pump round (write output, then exit status, EOF and
 * close; agent-backed commands: ctlexec_service). Returns 1 if it moved
 * anything. */
int operator_exec_service(struct opexec *x);

/* Deadlines: key exchange, auth, idle (called from the relay tick). */
void operator_tick(struct opconn *op, int64_t now);

/* Frees dead exec sessions of op and lets commands go of agents marked
 * dead (reaper; runs before any agent is freed). */
void operator_reap_execs(struct opconn *op);

/* Releases op: detaches its bridges, frees its session. Reaper only. */
void operator_free(struct opconn *op);

#endif
