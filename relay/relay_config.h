/*
 * relay_config.h - revtun-relay's configuration: schema, loading, validation.
 *
 * relay_config_load() parses the file with libconfuse, validates every
 * value (collecting every problem with file:line), loads the operators'
 * public keys (OpenSSH authorized_keys lines) and builds the ACL, and
 * returns a new immutable struct relay_config. Nothing in the running
 * relay changes until the caller swaps the new struct in; a reload that
 * fails leaves the old one in place.
 *
 * Settings that cannot change without a restart (listen addresses, host
 * keys, user, pid_file) are compared by relay_config_restart_needed(),
 * which names them so the relay can log "changed X: needs a restart".
 *
 * conf/relay.conf is the annotated example; docs/relay.conf.5 lists every
 * option with its default.
 *
 * Lines in messages: a problem with a value names the line the option was
 * read on (for a list, its first element; a keys_file problem names that
 * file and its line); a problem with a whole operator section (no keys,
 * bad name, key shared with another operator) names the section's closing
 * brace, the only line libconfuse keeps for a section. ACL rules are
 * named "FILE:LINE" of their allow / rights option.
 *
 * Checks beyond syntax: listen addresses are literal (no names), at most
 * RELAY_MAX_LISTEN each and never repeated across both lists; host keys
 * and tls.key pass cfgu_check_key_perms_for() (owner root, the caller or
 * `user`) and host keys load with libssh; tls.ca / cert / crl exist;
 * user exists and is not uid 0; pid_file is absolute; operator keys are
 * plain authorized_keys lines (no options, no certificates), unique
 * across operators; keys_file is not writable by group or others.
 */
#ifndef RT_RELAY_CONFIG_H
#define RT_RELAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libssh/libssh.h>

#include "cfgutil.h"
#include "penalty.h"

struct acl;

#define RELAY_DEFAULT_CONFIG SYSCONFDIR "/revtun/relay.conf"
#define RELAY_MAX_LISTEN 8

struct relay_operator {
	char *name;			/* [A-Za-z0-9._-]{1,64} */
	size_t nkeys;
	ssh_key *keys;			/* public keys, libssh objects */
	char **key_fps;			/* "SHA256:base64" per key */
	char **key_comments;		/* comment field of each line or "" */
};

struct relay_config {
	char *path;			/* file this was loaded from */

	/* listen: "ADDR:PORT", "[V6]:PORT" or "*:PORT"; agents+operators */
	size_t nlisten;
	char *listen[RELAY_MAX_LISTEN];
	/* optional operator-only listeners, same syntax */
	size_t nop_listen;
	char *op_listen[RELAY_MAX_LISTEN];

	/* SSH host keys presented to operators and agents */
	size_t nhost_keys;
	char **host_keys;

	/* TLS toward agents */
	char *tls_ca;			/* CA file or directory */
	char *tls_cert;
	char *tls_key;
	char *tls_crl;			/* "" = none */
	int tls_min_version;		/* TLS1_2_VERSION or TLS1_3_VERSION */

	/* agents */
	size_t nagent_allow;
	char **agent_allow;		/* ids allowed; 0 entries = any valid cert */
	size_t nservice_allow;
	char **service_allow;		/* fnmatch patterns of service names an
					   agent may register; default "*" */
	unsigned int agent_max_services;	/* forwards per agent (32) */
	unsigned int agent_max_channels;	/* open channels per agent (64) */
	int64_t keepalive_interval_ms;		/* 15 s */
	unsigned int keepalive_count;		/* 3: dead after ~45-60 s */

	/* operators */
	unsigned int operator_max_channels;	/* per operator connection (32) */
	int64_t operator_idle_timeout_ms;	/* 0 = none */
	int64_t auth_timeout_ms;		/* login grace (30 s) */
	unsigned int auth_max_tries;		/* per connection (6) */
	char *domain_suffix;			/* stripped from targets, "" none */
	int64_t operator_channel_idle_timeout_ms;	/* per channel, 0 = none */
	unsigned int operator_max_denials;	/* denied opens/commands per
						   window and connection (10),
						   0 = no limit */
	int64_t operator_denial_window_ms;	/* 10 s */

	/* per-source penalties (penalty.h) */
	int penalties;				/* on unless "false" */
	size_t npenalty_exempt;
	struct pen_net *penalty_exempt;		/* never penalized */
	struct pen_policy penalty;		/* durations, min, max, table */

	/* listeners and abuse limits */
	int64_t handshake_timeout_ms;		/* TLS/SSH handshake deadline (10 s) */
	unsigned int max_pending;		/* unauthenticated conns overall (256) */
	unsigned int max_pending_per_source;	/* per source address (8) */
	unsigned int max_connections;		/* everything (4096) */

	/* data path */
	uint64_t channel_buffer;		/* bytes per direction per channel (256 KiB) */
	int64_t shutdown_timeout_ms;		/* TERM deadline (10 s) */

	/* ACL and audit */
	int acl_allow_glob;			/* 0 unless opted in */
	struct acl *acl;
	size_t noperators;
	struct relay_operator *operators;
	char *audit_log;			/* path, "-" = stderr, "" = off */

	/* logging */
	int log_syslog;
	int log_level;				/* enum log_level */

	char *user;				/* drop privileges to, "" = stay */
	uid_t user_uid;				/* its uid, (uid_t)-1 if none */
	char *pid_file;				/* "" = none */
	/* host keys this process may not read (a reload after the drop,
	 * keys left to root): not loaded, the running relay keeps its own */
	unsigned int host_keys_unreadable;
};

/*
 * Loads path into a new config. Returns 0 and *out, or an error with
 * every problem added to errs (each "FILE:LINE: message") and *out NULL:
 * RT_ERR_CONFIG for any syntax or validation problem (unsafe key
 * permissions included), RT_ERR_SYS / RT_ERR_TOOBIG when path itself
 * cannot be read (from cfgu_parse()), RT_ERR_NOMEM. errs must not be
 * NULL; messages are appended to what it holds.
 */
int relay_config_load(const char *path, struct relay_config **out,
		      struct cfgu_errors *errs);

/* Same from a string (tests); name labels messages. Key files named in
 * the text are still read from disk. */
int relay_config_load_buf(const char *text, const char *name,
			  struct relay_config **out, struct cfgu_errors *errs);

/* Frees everything, including the ACL and keys. NULL is a no-op. */
void relay_config_free(struct relay_config *cfg);

/* Looks an operator up by name; NULL if none. */
const struct relay_operator *relay_config_operator(
	const struct relay_config *cfg, const char *name);

/*
 * Compares old and new; writes the names of changed restart-only settings
 * ("listen, operator_listen, host_keys, user, pid_file", in that order, comma
 * separated; "" if none, cut to len) into buf and returns their count
 * (0 = none). Lists compare element by element, in order.
 */
int relay_config_restart_needed(const struct relay_config *old_cfg,
				const struct relay_config *new_cfg,
				char *buf, size_t len);

#endif
