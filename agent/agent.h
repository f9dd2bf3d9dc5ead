/*
 * agent.h - revtun-agent's context: the one struct every agent module is
 * handed, and the few calls modules make back into it.
 *
 * The context owns the loop, the live configuration and the moving
 * parts: the uplink (relay connection: TCP, proxy, TLS, SSH session and
 * its forwarded channels), the consent gate, the built-in services with
 * the log ring they read (control.h, logring.h) and the signal handling
 * (HUP reload, TERM/INT graceful stop, USR1 status).
 *
 * Scheduling: nothing talks to libssh2 from inside an fd callback. Any
 * event that may move SSH data (relay fd, target fds, timers) calls
 * agent_kick(), which runs one pump of the SSH session after the current
 * dispatch round; the pump services every channel round-robin (DESIGN.md
 * pitfall 3) and reaps what died during the round.
 */
#ifndef RT_AGENT_H
#define RT_AGENT_H

#include <stdint.h>

struct loop;
struct loop_timer;
struct agent_config;
struct uplink;
struct consent;
struct control;
struct logring;
struct mqttlink;
struct pidfile;

struct agent_stats {
	uint64_t connects;		/* SSH sessions that came up */
	uint64_t connect_failures;	/* attempts that failed before up */
	uint64_t channels_total;	/* forwarded channels accepted */
	uint64_t channels_refused;	/* unknown service, cap, consent */
	uint64_t target_failures;	/* targets that could not be dialed */
	uint64_t bytes_to_target;	/* relay -> local targets */
	uint64_t bytes_from_target;	/* local targets -> relay */
};

struct agent {
	struct loop *loop;
	struct agent_config *cfg;	/* live config; replaced on reload */
	char *cfg_path;
	struct uplink *uplink;
	struct consent *consent;
	struct control *control;	/* built-in services, rollback */
	struct logring *logring;	/* last log lines for `logs` */
	struct mqttlink *mqttlink;	/* telemetry, commands, on-demand */
	int kick_pending;		/* a pump is deferred to end of round */
	int reload_pending;		/* HUP seen, reload in the next pump */
	int consent_pending;		/* gate changed: apply in next pump */
	int debug;			/* -d: debug level whatever the config */
	int stopping;			/* TERM/INT seen */
	int stop_phase;			/* 0 draining, 1 saying goodbye */
	int exit_code;
	struct loop_timer *stop_timer;	/* shutdown deadline */
	int64_t started_ms;
	unsigned int last_chan_id;	/* channel ids, unique per process */
	struct agent_stats stats;
	/* one instance (agent.c): pid_file, and a lock in each state
	 * directory (control.state_dir, mqtt.spool_dir), held for life */
	struct pidfile *pidfile;
	struct pidfile *dirlock[2];
	int dropped;			/* running as `user` */
};

/*
 * Builds the context around a loaded config (ownership of cfg passes to
 * the agent, also on failure; debug keeps the log at debug level across
 * reloads) and installs signal handlers; takes the pid file, drops to
 * `user` if set and locks the state directories (agent.c). Does not
 * connect yet. Returns 0 and *out, or an RT_ERR_* code with the reason
 * logged.
 */
int agent_new(const char *cfg_path, struct agent_config *cfg, int debug,
	      struct agent **out);

/* Starts the consent gate and the uplink and runs the loop until a
 * graceful stop completes. Returns the process exit code (0). */
int agent_run(struct agent *a);

/* Frees everything. NULL is a no-op. */
void agent_free(struct agent *a);

/* Schedules one pump of the SSH session after the current round (cheap;
 * coalesced). Safe from any callback. */
void agent_kick(struct agent *a);

/* 1 if a new forwarded channel may be accepted now (consent gate open,
 * not stopping). */
int agent_sessions_allowed(const struct agent *a);

/* Called by the consent gate when its state changes (open 1/0); the
 * uplink follows in the next pump. */
void agent_consent_changed(struct agent *a, int open);

#endif
