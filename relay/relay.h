/*
 * relay.h - revtun-relay's context and the objects it owns.
 *
 * One struct relay per process, passed explicitly to every module. It owns
 * the loop, the current configuration (swapped whole on HUP), the TLS
 * context for new agent connections, the libssh bind that holds the host
 * keys, the audit log, the listeners and three lists of connections:
 *
 *   pending   accepted sockets whose first bytes have not arrived yet
 *             (listener.c); they become an agent or an operator;
 *   agents    TLS + SSH sessions from gateways (agent_conn.c); those that
 *             finished TLS are also in the registry (registry.c);
 *   operators SSH sessions from people (operator.c);
 *
 * and the bridges between an operator channel and an agent channel
 * (bridge.c), each linked into both ends.
 *
 * Lifetime rule: nothing is freed inside a libssh or loop callback. An
 * object that must go is marked dead (with a reason) and relay_kick() is
 * called; the pump pass that runs after the loop round moves data, then
 * reaps dead bridges first and dead connections after (a connection's
 * libssh session frees its channels, so bridges must let go first).
 *
 * Memory bounds per object (defaults): a pending socket costs its struct;
 * an agent two pump buffers of AGENT_PUMP_BUF bytes, a socketpair and its
 * libssh session; a bridge, per direction, a carry buffer of at most
 * channel_buffer + BRIDGE_PULL_ROOM bytes (the second part only after the
 * sender filled libssh's window, see bridge.c dir_pull) plus what libssh
 * buffers for the channel (at most 1.5 x its 1280000-byte window). Carry
 * memory is taken as data arrives and given back when a buffer empties.
 */
#ifndef RT_RELAY_H
#define RT_RELAY_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include <openssl/ssl.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <libssh/callbacks.h>

#include "audit.h"
#include "net.h"
#include "privs.h"
#include "relay_config.h"

struct loop;
struct pidfile;
struct loop_watch;
struct loop_timer;
struct buf;
struct tls_conn;
struct ctlexec;
struct ctlevents;
struct pen_table;

#define RELAY_ID_MAX 64			/* agent ids, service and operator names */
#define RELAY_MAX_LISTEN_FDS (2 * RELAY_MAX_LISTEN * 2)
/* Everything queued toward an agent goes ahead of its interactive channels
 * (to_tls, the socketpair, the kernel's unsent bytes; FAULTS.md N8): at
 * 256 kbit/s each 16 KiB is 0.5 s. Bytes in flight are not limited. */
#define AGENT_PUMP_BUF (16 * 1024)	/* TLS <-> socketpair, each way */
#define RELAY_NOTSENT_LOWAT (16 * 1024)	/* unsent bytes per TCP socket */
#define BRIDGE_QUOTA (64 * 1024)	/* bytes per channel per direction per pump round */
#define BRIDGE_PULL_ROOM (2 * 1024 * 1024) /* > libssh's 1.5 x 1280000 B window */
#define EXEC_OUT_MAX (256 * 1024)	/* output of one exec command */
#define RELAY_TICK_MS 500		/* deadline checks */

TAILQ_HEAD(pconn_list, pconn);
TAILQ_HEAD(agent_list, agent);
TAILQ_HEAD(opconn_list, opconn);
TAILQ_HEAD(bridge_list, bridge);
TAILQ_HEAD(opexec_list, opexec);

/* A libssh server session on one fd, driven by the relay's loop
 * (sshsess.c). */
struct sshsess {
	ssh_session s;
	ssh_event ev;		/* this session's own event, after kex (pitfall 6) */
	int fd;			/* libssh owns it once accepted */
	struct loop_watch *w;
	int kex_done;
};

struct listener {
	struct relay *relay;
	int fd;
	int op_only;		/* operator-only port: TLS not accepted */
	struct loop_watch *w;
	char name[NET_ADDRSTRLEN];
};

/* An accepted socket waiting for its first bytes (listener.c). */
struct pconn {
	TAILQ_ENTRY(pconn) link;
	struct relay *relay;
	int fd;
	int op_only;
	struct loop_watch *w;
	struct loop_timer *retry;	/* partial "SSH-" prefix: look again */
	int64_t t_accept;		/* monotonic; handed to the agent */
	int64_t deadline;		/* t_accept + handshake_timeout */
	char src[NET_ADDRSTRLEN];	/* "1.2.3.4:5678" */
	char host[NET_ADDRSTRLEN];	/* "1.2.3.4", for per-source limits */
	int handed_over;		/* fd now owned by an agent/operator */
	int dead;
};

struct agent_svc {
	char name[RELAY_ID_MAX + 1];
	int port;
};

enum agent_state {
	AGENT_TLS = 0,		/* TLS handshake */
	AGENT_SSH,		/* SSH key exchange and auth none */
	AGENT_UP,		/* authenticated: registrations and channels */
};

/* A gateway's connection (agent_conn.c). */
struct agent {
	TAILQ_ENTRY(agent) link;
	TAILQ_ENTRY(agent) reg_link;	/* in the registry while registered */
	struct relay *relay;
	enum agent_state state;
	int registered;

	int net_fd;			/* TCP, TLS records */
	struct tls_conn *tls;
	struct loop_watch *w_net;
	unsigned int want_rd;		/* TLS_WANT_* of the last read */
	unsigned int want_wr;		/* TLS_WANT_* of the last write */
	int pump_fd;			/* our end of the socketpair */
	struct loop_watch *w_pump;
	struct buf *to_ssh;		/* TLS plaintext -> socketpair (libssh) */
	struct buf *to_tls;		/* socketpair (libssh) -> TLS */
	struct loop_timer *repump;	/* pump again next round (TLS pending) */
	int tls_eof;			/* agent closed its side */
	int ssh_eof_sent;		/* ... and libssh was told (SHUT_WR) */
	struct sshsess ss;		/* on the other socketpair end */

	char id[RELAY_ID_MAX + 1];	/* certificate CN, "" before TLS */
	char src[NET_ADDRSTRLEN];
	char host[NET_ADDRSTRLEN];
	char cert_fp[80];
	char version[128];		/* SSH client banner */
	int64_t t_accept;		/* monotonic */
	int64_t since_wall;		/* registration, wall clock ms */
	int64_t deadline;		/* handshake deadline while not UP */
	int64_t last_rx;		/* monotonic ms of the last bytes from it */
	int64_t next_keepalive;
	int64_t last_keepalive;		/* monotonic ms of our last keepalive */
	uint64_t bytes_in, bytes_out;

	size_t nsvc;
	struct agent_svc *svc;		/* at most agent_max_services */

	struct bridge_list bridges;
	unsigned int nbridges;
	struct ctlevents *events;	/* its events channel (ctlexec.c) */
	int touched;			/* the pump polled its session */
	int dead;
	char why[448];			/* a TLS verify error is up to 384 */
};

/* An operator's SSH connection (operator.c). */
struct opconn {
	TAILQ_ENTRY(opconn) link;
	struct relay *relay;
	struct sshsess ss;
	int authed;
	unsigned int tries;
	char name[RELAY_ID_MAX + 1];	/* operator, "" before auth */
	char user[RELAY_ID_MAX + 1];	/* user name offered (sanitised copy) */
	char key_fp[96];
	char src[NET_ADDRSTRLEN];
	char host[NET_ADDRSTRLEN];
	int port;
	int64_t t_accept;
	int64_t deadline;		/* kex + auth deadline while not authed */
	int64_t last_active;
	int64_t deny_until;		/* denied requests: budget used up to
					   here (operator.c, rate limit) */
	unsigned int ndenied;		/* denied requests, for the log */
	struct bridge_list bridges;
	struct opexec_list execs;
	unsigned int nchannels;		/* bridges + exec sessions */
	int touched;			/* the pump polled its session */
	int dead;
	char why[160];
};

/* A session channel from an operator for exec commands (operator.c). */
struct opexec {
	TAILQ_ENTRY(opexec) link;
	struct opconn *op;
	ssh_channel ch;
	struct ssh_channel_callbacks_struct cb;
	struct buf *out;
	int ran;			/* command done, output queued */
	int exit_status;
	int finished;			/* exit status, EOF and close sent */
	int remote_closed;
	int dead;
	struct ctlexec *ctl;		/* agent-backed command (ctlexec.c) */
};

enum bridge_state {
	BRIDGE_OPENING = 0,	/* forwarded-tcpip open sent to the agent */
	BRIDGE_OPEN,
	BRIDGE_DEAD,
};

/* One operator channel joined to one agent channel (bridge.c). */
struct bridge {
	TAILQ_ENTRY(bridge) link;	/* relay->bridges */
	TAILQ_ENTRY(bridge) op_link;
	TAILQ_ENTRY(bridge) ag_link;
	struct relay *relay;
	enum bridge_state state;
	uint64_t id;
	struct opconn *op;		/* NULL once the operator is gone */
	struct agent *ag;		/* NULL once the agent is gone */
	ssh_message open_msg;		/* operator's open, answered later */
	ssh_channel op_ch;
	ssh_channel ag_ch;
	int ag_opened;			/* ag_ch open confirmed by the agent */
	int confirmed;			/* op_ch confirmed to the operator */
	int abandoned;			/* end wanted while the open is in flight */
	int late;			/* open deadline passed: operator refused,
				   waiting for the answer to close it */
	int op_backlog, ag_backlog;	/* libssh holds bytes the carry refused */
	struct ssh_channel_callbacks_struct op_cb;
	struct ssh_channel_callbacks_struct ag_cb;
	size_t soft;			/* channel_buffer: what callbacks may fill */
	struct buf *to_agent;		/* operator -> agent carry */
	struct buf *to_op;		/* agent -> operator carry */
	int op_eof_in, ag_eof_in;	/* EOF received from each side */
	int op_eof_out, ag_eof_out;	/* EOF sent to each side */
	int op_closed, ag_closed;	/* close received from each side */
	uint64_t bytes_to_agent, bytes_from_agent;
	int64_t t_open;
	int64_t t_io;			/* last data either way (idle timeout) */
	int64_t deadline;		/* while OPENING */
	char opname[RELAY_ID_MAX + 1];
	char agent_id[RELAY_ID_MAX + 1];
	char service[RELAY_ID_MAX + 1];
	int port;
	char rule[256];
	char why[128];
};

struct relay_stats {
	uint64_t accepted;
	uint64_t refused_limit;
	uint64_t evicted;		/* stalled handshakes pushed out */
	uint64_t refused_proto;
	uint64_t refused_penalty;	/* operator sources under a penalty */
	uint64_t penalty_full;		/* failures the full table dropped */
	uint64_t agents_up;
	uint64_t agent_fail;
	uint64_t op_auth_ok;
	uint64_t op_auth_fail;
	uint64_t chan_open;
	uint64_t chan_deny;
	uint64_t bytes_to_agents;
	uint64_t bytes_from_agents;
};

struct relay {
	struct loop *loop;
	struct relay_config *cfg;
	const char *cfg_path;
	SSL_CTX *tls_ctx;
	ssh_bind sshbind;
	struct audit *audit;

	size_t nlisteners;
	struct listener listeners[RELAY_MAX_LISTEN_FDS];

	struct pconn_list pending;
	struct agent_list agents;
	struct agent_list registry;	/* registered agents (registry.c) */
	struct opconn_list operators;
	struct bridge_list bridges;
	unsigned int npending;		/* not yet authenticated, all kinds */
	unsigned int nconns;		/* every accepted socket still open */
	uint64_t next_bridge_id;

	struct loop_timer *tick;
	int pump_scheduled;
	int debug;			/* -d: debug to stderr, kept across HUP */
	int stopping;
	int64_t stop_deadline;
	int64_t t_start_wall;
	struct relay_stats st;
	struct pen_table *penalties;	/* per-source, operator.c; NULL until
					   the first failure */

	/* least privilege (relay.c): pid file held locked for our whole
	 * life; the account we run as once `user` is set */
	struct pidfile *pidfile;	/* NULL: no pid_file */
	int dropped;			/* running as run_user */
	struct privs_user run_user;
};

/*
 * Builds the relay from a loaded config (takes ownership of cfg): TLS
 * context, host keys, audit log, listeners, signals. Returns 0 and *out,
 * or an RT_ERR_* code with a message in err naming what failed.
 */
int relay_new(struct relay_config *cfg, const char *cfg_path,
	      struct relay **out, char *err, size_t errlen);

/*
 * What -t checks beyond the config file itself: the TLS material loads
 * (CA, certificate, key, CRL) and every host key is a readable private
 * key. Returns 0, or RT_ERR_CONFIG with err naming the file and reason.
 */
int relay_check(const struct relay_config *cfg, char *err, size_t errlen);

/* Runs the loop until TERM/INT and the graceful stop are done. Returns 0
 * or RT_ERR_SYS if the loop failed. */
int relay_run(struct relay *r);

/* Frees everything (closes all connections). NULL is a no-op. */
void relay_free(struct relay *r);

/* Schedules the pump pass (data movement, then reaping) after the current
 * loop round. Cheap; call it whenever a session did something. */
void relay_kick(struct relay *r);

/* Number of unauthenticated connections from host (per-source limit). */
unsigned int relay_pending_from(const struct relay *r, const char *host);

/* Marks a connection as authenticated: it no longer counts as pending. */
void relay_conn_authed(struct relay *r);

/* Accounts for a connection that is closed for good. was_pending says
 * whether it still counted as pending. */
void relay_conn_closed(struct relay *r, int was_pending);

/* Writes one audit record (r->audit may be NULL: audit off). */
void relay_audit(struct relay *r, struct audit_rec *rec);

#endif
