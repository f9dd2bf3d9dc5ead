/*
 * mqtt.h - the agent's MQTT 3.1.1 client session, on the agent's loop.
 *
 * Owns the broker connection (TCP, TLS, MQTT), the offline queue (spool.h),
 * the reconnect policy and the session's packet ids. Framing, encoding and
 * validation are mqtt_codec.h's; telemetry content and command handling
 * are the caller's.
 *
 * States: IDLE (not started) -> WAIT (backoff) -> CONNECTING (TCP, TLS,
 * CONNECT sent, CONNACK awaited; one deadline, connect_timeout, for all
 * three) -> UP -> back to WAIT on any failure; STOPPING (graceful stop:
 * offline status published, its PUBACK awaited, DISCONNECT flushed) ->
 * STOPPED.
 *
 * Session rules:
 *  - brokers are tried in order; a failure moves to the next one, and
 *    after the whole list failed the client waits the backoff (1 s doubling
 *    to backoff_max, +-20 % jitter), reset after a session that lasted 30 s;
 *  - CONNACK 1/2 (protocol version, client id refused): configuration
 *    error, logged as such, retried after MQTT_SLOW_RETRY_MS; 3 (server
 *    unavailable): normal backoff; 4/5 ("bad user name or password", "not
 *    authorised"): logged, retried only after MQTT_AUTH_RETRY_MS (5 min);
 *    other codes and any malformed packet: protocol error, close, backoff;
 *  - last will <prefix>/<agent>/status
 *    {"status":"offline","agent":ID,"will":true}, QoS 1, retained; birth
 *    {"status":"online","agent":ID} retained QoS 1 after every CONNACK;
 *    a graceful stop publishes {"status":"offline","agent":ID} itself
 *    (so subscribers can tell a clean stop from a lost agent);
 *    <prefix>/<agent>/cmd subscribed (QoS 1) on every connect; a
 *    refusal (SUBACK 0x80) is logged and counted, the session stays up
 *    for telemetry (a granted subscription is verified end to end by
 *    mqttlink.c's probe);
 *  - QoS 1 publishes stay in the queue until PUBACKed; at most inflight of
 *    them are unacknowledged at once; after a reconnect every
 *    unacknowledged one is re-sent first, DUP=1, same packet id, original
 *    order, whatever Session Present says (our store is authoritative);
 *  - a PUBACK for an id not in flight is counted and ignored;
 *  - every received QoS 1 PUBLISH is PUBACKed, in arrival order;
 *  - inbound packets larger than MQTT_MAX_INBOUND are refused from their
 *    fixed header (mqtt_frame), before anything is buffered;
 *  - keepalive K: a PINGREQ goes out when nothing was sent for K or
 *    nothing was received for K; if nothing at all is received for 1.5 K
 *    the connection is closed. A dead broker is thus found within
 *    1.5 K + 1 s (the tick), i.e. 46 s with the default 30 s.
 *
 * Callbacks (message, stopped) run from the loop. They may call
 * mqtt_publish() and mqtt_stats(), never mqtt_free().
 */
#ifndef RT_MQTT_H
#define RT_MQTT_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct mqtt;
struct agent_mqtt_config;

#define MQTT_MAX_INBOUND	(256 * 1024)	/* largest packet accepted */
#define MQTT_AUTH_RETRY_MS	(5 * 60 * 1000)	/* after CONNACK 4 / 5 */
#define MQTT_SLOW_RETRY_MS	(2 * 60 * 1000)	/* after CONNACK 1 / 2 */
#define MQTT_BACKOFF_INITIAL_MS	1000
#define MQTT_STABLE_MS		30000

enum mqtt_state {
	MQTT_ST_IDLE,
	MQTT_ST_WAIT,
	MQTT_ST_CONNECTING,
	MQTT_ST_UP,
	MQTT_ST_STOPPING,
	MQTT_ST_STOPPED,
};

struct mqtt_stats {
	enum mqtt_state	 state;
	const char	*broker;	/* "host:port" tried or connected */
	uint64_t	 attempts;	/* connection attempts */
	uint64_t	 connects;	/* CONNACK accepted */
	uint64_t	 published;	/* PUBLISH packets sent, first time */
	uint64_t	 resent;	/* PUBLISH re-sent with DUP=1 */
	uint64_t	 acked;		/* QoS 1 messages PUBACKed */
	uint64_t	 unknown_acks;	/* PUBACK for an id not in flight */
	uint64_t	 received;	/* PUBLISH received */
	size_t		 inflight;	/* unacknowledged QoS 1 now */
	size_t		 queued;	/* in the queue, in flight included */
	uint64_t	 queued_bytes;
	uint64_t	 dropped;	/* by the queue's drop policy */
	uint64_t	 spool_corrupt;	/* damaged records skipped at load */
	uint64_t	 spool_write_errors; /* records not written (ENOSPC..) */
	uint64_t	 suback_granted; /* cmd subscriptions granted */
	uint64_t	 suback_refused; /* ... refused (SUBACK 0x80) */
	int		 last_connack;	/* last CONNACK code, -1 none */
	char		 last_error[160];
};

/* A message on <prefix>/<agent>/cmd (views valid during the call). */
typedef void (*mqtt_msg_cb)(void *arg, const char *topic,
    const uint8_t *payload, size_t len);

/* Graceful stop finished (mqtt_stop). */
typedef void (*mqtt_done_cb)(void *arg);

/*
 * Creates a client from cfg (copied; cfg may be freed after) for agent id
 * agent_id (also the client id when cfg->client_id is ""): builds the TLS
 * context, reads the password file (which must not be readable by group
 * or others; its content is never logged) and opens the queue (loading
 * the spool directory if one is set). cb may be NULL. Nothing is dialed
 * before mqtt_start(). Returns 0 and *out, or RT_ERR_CONFIG / RT_ERR_PERM /
 * RT_ERR_EXISTS / RT_ERR_SYS / RT_ERR_NOMEM / RT_ERR_INVAL with a message
 * in err.
 */
int mqtt_new(struct loop *loop, const struct agent_mqtt_config *cfg,
    const char *agent_id, mqtt_msg_cb cb, void *arg, struct mqtt **out,
    char *err, size_t errlen);

/* Starts connecting (first broker, at once). Returns 0 or
 * RT_ERR_INVAL if already started. */
int mqtt_start(struct mqtt *m);

/*
 * Queues a message for topic (a full topic name) at qos 0 or 1. QoS 1
 * messages are kept (and spooled) until PUBACKed. Returns 0,
 * RT_ERR_INVAL (bad topic or qos), RT_ERR_TOOBIG, RT_ERR_FULL (dropped by
 * the queue policy, counted), RT_ERR_CLOSED (stopping) or RT_ERR_NOMEM.
 */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload,
    size_t len, int qos, int retain);

/*
 * Writes "<prefix>/<agent>/<leaf>" into buf. Returns 0, or RT_ERR_TOOBIG
 * if it does not fit.
 */
int mqtt_topic(const struct mqtt *m, const char *leaf, char *buf,
    size_t len);

/*
 * Graceful stop: when connected, publishes the retained offline status
 * (QoS 1), waits for its PUBACK (and flushes what is queued in the
 * meantime) until timeout_ms, then sends DISCONNECT, so the broker drops
 * the will; otherwise stops at once. done (may be NULL) is called from
 * the loop once stopped. Unacknowledged messages stay in the spool.
 * Returns 0 or RT_ERR_CLOSED if already stopping.
 */
int mqtt_stop(struct mqtt *m, int64_t timeout_ms, mqtt_done_cb done,
    void *arg);

/* Closes everything at once (no DISCONNECT: the will fires), syncs the
 * spool and frees. Not from a callback of m. NULL is a no-op. */
void mqtt_free(struct mqtt *m);

/* Current state and counters (for status and USR1). */
void mqtt_stats(const struct mqtt *m, struct mqtt_stats *st);

/* "idle", "waiting to reconnect", "connecting", "up", "stopping",
 * "stopped". */
const char *mqtt_state_name(enum mqtt_state st);

#endif
