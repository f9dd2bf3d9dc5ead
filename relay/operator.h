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
 *
 * Abuse limits. Per connection: more than operator_max_denials requests
 * denied as unknown, offline or forbidden (channel opens and agent
 * commands alike: what guessing agent ids produces) within
 * operator_denial_window close the connection (audit "deny_limit") and
 * penalize its source. Per source (penalty.h, like OpenSSH's
 * PerSourcePenalties): a connection that ends before login after a failed
 * attempt adds penalty_authfail, one that ends without trying (no valid
 * banner or key exchange, nothing sent, garbage) penalty_noauth; once a
 * source's penalty reaches penalty_min it is refused until the penalty
 * runs out (audit "source_penalty" once per episode). Refused means: on
 * an operator-only port, closed at accept; on the shared port, closed as
 * soon as its first bytes say SSH. Agents (first bytes TLS) on the shared
 * port are never refused, so a penalty earned by an operator, or by an
 * attacker, behind the same NAT does not cut the gateways off.
 */
#ifndef RT_OPERATOR_H
#define RT_OPERATOR_H

#include "penalty.h"
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

/*
 * 1 if a new operator connection from host must be closed now because
 * its source is penalized (counted and logged, rate limited; src names
 * the connection in the log); 0 if it may go on (penalties off, source
 * exempt or not penalized).
 */
int operator_source_refused(struct relay *r, const char *src,
			    const char *host);

/*
 * Adds a failure of reason why to host's source (nothing when penalties
 * are off, the source is exempt or the relay is stopping). Writes the
 * source_penalty audit record when this starts an episode; conn names
 * the connection that failed ("ADDR:PORT").
 */
void operator_penalize(struct relay *r, const char *host,
		       enum pen_reason why, const char *conn);

/* Releases op: detaches its bridges, frees its session; a connection
 * that ends before login penalizes its source. Reaper only. */
void operator_free(struct opconn *op);

#endif
