/*
 * mqttlink.h - the agent's telemetry link: wires the MQTT client
 * (mqtt.h), the collectors and payload builders (telemetry.h) and the
 * signed commands (mqtt_cmd.h) into the daemon (agent.h), and owns the
 * on-demand uplink mode.
 *
 * When mqtt.enable is set the agent id is the CN of tls.cert (read from
 * the file at start), also the client id unless mqtt.client_id is set.
 * Topics (docs/mqtt.md): <prefix>/<agent>/telemetry (system + tunnel
 * every telemetry.interval; each user metric set on its own interval),
 * <prefix>/<agent>/events (tunnel-up/down, session-open/close,
 * config-change, pong, command, command-refused), and commands on
 * <prefix>/<agent>/cmd, accepted only through mc_verify() with the key in
 * mqtt.cmd_key_file; without a key every command is refused and logged.
 *
 * Tunnel and session events are found by comparing the uplink and the
 * agent's counters after every pump (mqttlink_pump): no hook in the
 * uplink or the bridges is needed. Session ids are the agent's channel
 * ids ("chan N" in its log).
 *
 * uplink_mode = "on-demand": the uplink stays idle until a signed
 * tunnel-open; it is stopped again on tunnel-close, or once no session
 * was open for on_demand_idle. Every start/stop of the uplink happens in
 * the agent's pump, never inside an MQTT or timer callback.
 *
 * Payload HMAC (telemetry.hmac_key_file): telemetry and events carry
 * "hmac" as their last member (recipe in telemetry.h and docs/mqtt.md).
 */
#ifndef RT_MQTTLINK_H
#define RT_MQTTLINK_H

#include <stddef.h>

struct agent;
struct mqttlink;
struct tm_event;

/* Creates an idle link for agent a (nothing read or dialed). Returns 0
 * and *out, or RT_ERR_NOMEM. */
int mqttlink_new(struct agent *a, struct mqttlink **out);

/* Closes the client at once (no offline status: the will fires), kills a
 * running metrics command, frees. Not from a callback. NULL is a no-op. */
void mqttlink_free(struct mqttlink *ml);

/*
 * At agent start: when mqtt.enable, reads the agent id and the key files,
 * creates and starts the client and the telemetry schedule. A problem is
 * logged and leaves telemetry off (the tunnel does not depend on it).
 * Returns 0 or the RT_ERR_* code of the problem.
 */
int mqttlink_start(struct mqttlink *ml);

/* 1 if the uplink should be connected as far as the uplink mode goes:
 * mode "always", or an on-demand tunnel was requested. NULL: 1. */
int mqttlink_uplink_wanted(const struct mqttlink *ml);

/* From the agent's pump, after uplink_pump(): carries out requested
 * on-demand opens/closes and publishes tunnel and session events. */
void mqttlink_pump(struct mqttlink *ml);

/* After a reload swapped the config in (diff: AGENT_DIFF_* bits, 0 =
 * nothing changed): publishes config-change, rebuilds the client on
 * AGENT_DIFF_MQTT, reschedules on AGENT_DIFF_TELEMETRY, follows a new
 * uplink mode. */
void mqttlink_reload(struct mqttlink *ml, unsigned int diff);

/* Publishes ev on the events topic (QoS mqtt.qos). For the agent's
 * modules (config changes, rollbacks). No-op when the client is off. */
void mqttlink_event(struct mqttlink *ml, const struct tm_event *ev);

/* Graceful stop (TERM): publishes the offline status and disconnects;
 * mqttlink_stopped() turns 1 when done and the agent is kicked. */
void mqttlink_stop(struct mqttlink *ml);
int mqttlink_stopped(const struct mqttlink *ml);

/* One status line (state, broker, counters) into buf. */
void mqttlink_status(const struct mqttlink *ml, char *buf, size_t len);

#endif
