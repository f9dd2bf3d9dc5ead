/*
 * agent_config.h - revtun-agent's configuration: schema, loading,
 * validation and the diff that decides what a reload restarts.
 *
 * agent_config_load() parses the file with libconfuse, validates every
 * value (collecting every problem with file:line), checks that private key
 * files are not readable by group or others and belong to root, the
 * caller or `user` (the account the agent will drop to, which reads them
 * again on every reconnect), and returns a new immutable
 * struct agent_config. The running agent changes nothing until the caller
 * swaps it in; a failed reload keeps the old one.
 *
 * agent_config_diff() tells a reload which parts changed: the uplink
 * (relays, TLS, SSH, proxy: reconnect needed), individual services
 * (only channels of changed or removed services are closed), the consent
 * gate, limits and logging (applied in place), and the mqtt section
 * (the telemetry client is rebuilt).
 *
 * conf/agent.conf is the annotated example; docs/revtun-agent.conf.5
 * lists every option with its default.
 */
#ifndef RT_AGENT_CONFIG_H
#define RT_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cfgutil.h"

#define AGENT_DEFAULT_CONFIG SYSCONFDIR "/revtun/agent.conf"
#define AGENT_MAX_RELAYS 8
#define AGENT_MAX_SERVICES 32
#define AGENT_MQTT_MAX_BROKERS 8

struct agent_service {
	char *name;		/* [A-Za-z0-9._-]{1,64}; unique */
	int port;		/* nominal port announced to the relay; unique */
	char *target_host;	/* where the agent dials, e.g. "127.0.0.1"
				 * (IPv6 without brackets); "" if builtin */
	char *target_port;	/* as a string for getaddrinfo, e.g. "22";
				 * "" if builtin */
	int builtin;		/* 1 for "control" / "shell": not dialed */
};

enum agent_consent_mode {
	CONSENT_OFF = 0,	/* no gate */
	CONSENT_SESSIONS,	/* stay connected, refuse new sessions when closed */
	CONSENT_CONNECT,	/* do not connect at all when closed */
};

/* The mqtt { } section (telemetry client, agent/mqtt.h). Strings non-NULL. */
struct agent_mqtt_config {
	int enable;			/* false */
	size_t nbrokers;		/* ordered "HOST:PORT" (failover) */
	char *broker_host[AGENT_MQTT_MAX_BROKERS];
	char *broker_port[AGENT_MQTT_MAX_BROKERS];
	char *topic_prefix;		/* "revtun" */
	char *client_id;		/* "" = the agent id */
	char *username;			/* "" = none */
	char *password_file;		/* "" = none; mode <= 0600 */
	char *tls_ca;			/* CA file or directory (required if enabled) */
	char *tls_cert;			/* client certificate, "" = none */
	char *tls_key;			/* its key (mode <= 0600) */
	int tls_min_version;		/* TLS1_2_VERSION (default) or TLS1_3_VERSION */
	char *tls_server_name;		/* "" = the broker host */
	int64_t keepalive_ms;		/* 30 s, whole seconds, <= 65535 s */
	int clean_session;		/* false */
	int qos;			/* 0 or 1 (1) */
	unsigned int inflight;		/* 1..1024 (20) */
	size_t queue_max_messages;	/* 10000 */
	uint64_t queue_max_bytes;	/* 4M */
	char *spool_dir;		/* "" = memory only */
	uint64_t spool_max_bytes;	/* 64M */
	int64_t connect_timeout_ms;	/* TCP + TLS + CONNACK (20 s) */
	int64_t backoff_max_ms;		/* 60 s */
	char *cmd_key_file;		/* HMAC key of commands on cmd; "" =
					 * every command refused (mode <= 0600) */
	int64_t cmd_window_ms;		/* command freshness window (60 s) */
};

#define AGENT_TM_MAX_DISKS 8

/* The telemetry { } section (agent/mqttlink.h). Strings non-NULL. */
struct agent_telemetry_config {
	int64_t interval_ms;		/* system + tunnel telemetry (60 s) */
	size_t ndisks;			/* statvfs() paths ({"/"}) */
	char *disks[AGENT_TM_MAX_DISKS];
	char *hmac_key_file;		/* "" = payloads not signed */
	char *metrics_file;		/* "key value" lines, "" = none */
	int64_t metrics_file_interval_ms;	/* 60 s */
	char *metrics_command;		/* /bin/sh -c, "" = none */
	int64_t metrics_command_interval_ms;	/* 60 s */
	int64_t metrics_command_timeout_ms;	/* 10 s */
};

enum agent_uplink_mode {
	UPLINK_ALWAYS = 0,		/* connect at start, stay connected */
	UPLINK_ON_DEMAND,		/* only after a signed tunnel-open */
};

/* Every string below is non-NULL; optional ones are "" when unset. */
struct agent_config {
	char *path;			/* the file (or name) it was loaded from */

	/* uplink: ordered relay endpoints "HOST:PORT" / "[V6]:PORT" */
	size_t nrelays;
	char *relay_host[AGENT_MAX_RELAYS];
	char *relay_port[AGENT_MAX_RELAYS];
	char *tls_ca;			/* CA file or directory (required) */
	char *tls_cert;			/* agent certificate (required) */
	char *tls_key;			/* agent key (required, mode <= 0600) */
	int tls_min_version;		/* TLS1_2_VERSION or TLS1_3_VERSION (default 1.3) */
	char *tls_server_name;		/* name to verify; "" = the relay host */
	char *ssh_host_key_fp;		/* "SHA256:base64" pin of the relay's SSH key; "" = none */
	int64_t keepalive_interval_ms;	/* SSH keepalive (15 s) */
	unsigned int keepalive_count;	/* dead after count unanswered (3) */
	int64_t connect_timeout_ms;	/* TCP + TLS + SSH handshake (20 s) */
	int64_t tcp_user_timeout_ms;	/* TCP_USER_TIMEOUT (45 s) */
	int64_t backoff_initial_ms;	/* 1 s */
	int64_t backoff_max_ms;		/* 60 s */
	unsigned int backoff_jitter_pct; /* 20 */
	char *proxy_host;		/* HTTP CONNECT proxy, "" = none */
	char *proxy_port;
	char *proxy_auth_file;		/* file with "user:password", "" = none */

	/* services */
	size_t nservices;
	struct agent_service services[AGENT_MAX_SERVICES];

	/* limits */
	unsigned int max_channels;	/* concurrent channels (64) */
	uint64_t channel_buffer;	/* bytes per direction per channel (256 KiB) */
	int64_t target_connect_timeout_ms; /* dialing a service target (10 s) */
	int64_t shutdown_timeout_ms;	/* TERM deadline (10 s) */

	/* consent gate */
	enum agent_consent_mode consent_mode;
	char *consent_file;		/* gate open while this file exists */
	char *consent_command;		/* or while this command exits 0 */
	int64_t consent_interval_ms;	/* how often it is checked (5 s) */

	/* logging */
	int log_syslog;
	int log_level;			/* enum log_level */

	/* telemetry */
	struct agent_mqtt_config mqtt;
	struct agent_telemetry_config telemetry;

	/* uplink_mode / on_demand_idle (mqttlink.h) */
	enum agent_uplink_mode uplink_mode;	/* always */
	int64_t on_demand_idle_ms;	/* no session for this long: drop
					 * the on-demand tunnel (10 m) */

	/* control { }: the built-in control service (agent/control.h) */
	int64_t control_rollback_timeout_ms; /* relay back after a remote
					 * change, or rollback (120 s) */
	unsigned int control_log_lines;	/* in-memory log ring (1000) */
	char *control_state_dir;	/* pending events ("/var/lib/revtun") */

	/* shell { }: the built-in PTY shell service (agent/shell.h) */
	int shell_enable;		/* false; `service shell` needs true */
	char *shell_user;		/* account the shell runs as ("root") */
	char *shell_command;		/* "" = that user's login shell */
	int64_t shell_idle_timeout_ms;	/* no input or output (15 m); 0 off */

	/* least privilege (agent.c); both need a restart to change */
	char *user;			/* drop to this account, "" = stay */
	char *pid_file;			/* "" = none */
};

/* What a reload must restart (bit set = changed). */
#define AGENT_DIFF_UPLINK   0x1u	/* relays, tls, ssh, proxy, timeouts */
#define AGENT_DIFF_SERVICES 0x2u	/* some service added/removed/changed */
#define AGENT_DIFF_CONSENT  0x4u
#define AGENT_DIFF_LIMITS   0x8u	/* limits, shutdown_timeout, reconnect
					 * backoff: read afresh, no restart */
#define AGENT_DIFF_LOG      0x10u
#define AGENT_DIFF_MQTT     0x20u	/* mqtt section: restart the client */
#define AGENT_DIFF_CONTROL  0x40u	/* control / shell sections: applied
					 * in place (new sessions) */
#define AGENT_DIFF_TELEMETRY 0x80u	/* telemetry section: rescheduled
					 * in place */
#define AGENT_DIFF_UPLINK_MODE 0x100u	/* uplink_mode, on_demand_idle */

/*
 * Loads path into a new config. Returns 0 and *out, or RT_ERR_CONFIG /
 * RT_ERR_SYS / RT_ERR_PERM / RT_ERR_NOMEM with every problem in errs (each
 * "FILE:LINE: message"); *out untouched. errs is emptied first (NULL: the
 * messages are dropped). RT_ERR_PERM means the only problems were unsafe
 * key / auth_file permissions; a file that is not regular or too large
 * gives cfgu_parse()'s RT_ERR_INVAL / RT_ERR_TOOBIG. Values are checked
 * where they are read (their own line); cross-field rules and file checks
 * name the line where their section closes; problems in the top-level
 * relays list have no line.
 */
int agent_config_load(const char *path, struct agent_config **out,
		      struct cfgu_errors *errs);

/* Same from a string (tests); name labels messages. Files it names are
 * still checked on disk. */
int agent_config_load_buf(const char *text, const char *name,
			  struct agent_config **out, struct cfgu_errors *errs);

/* Frees everything. NULL is a no-op. */
void agent_config_free(struct agent_config *cfg);

/* The service with that name / nominal port, or NULL. */
const struct agent_service *agent_config_service_by_name(
	const struct agent_config *cfg, const char *name);
const struct agent_service *agent_config_service_by_port(
	const struct agent_config *cfg, int port);

/* AGENT_DIFF_* bits for what differs between old and new. */
unsigned int agent_config_diff(const struct agent_config *old_cfg,
			       const struct agent_config *new_cfg);

/* 1 if service s exists in both configs with the same port and target. */
int agent_config_service_same(const struct agent_config *old_cfg,
			      const struct agent_config *new_cfg,
			      const char *name);

#endif
