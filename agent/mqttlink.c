/*
 * mqttlink.c - the agent's telemetry link: schedules collections,
 * publishes telemetry and events, verifies commands on cmd and runs the
 * on-demand uplink mode (mqttlink.h).
 *
 * Timing: one 1 s tick drives everything periodic (telemetry, metrics
 * file, metrics command start and timeout, on-demand idle). The metrics
 * command's stdout is also watched, so its result is published as soon
 * as it exits. MQTT callbacks only publish or set flags; whatever touches
 * the uplink waits for the agent's pump (agent_kick).
 *
 * Command subscription check: mosquitto grants a SUBACK (0x00) for a
 * topic its ACL does not let us read and then delivers nothing (FAULTS.md
 * M16), so a granted SUBACK proves nothing. When commands are configured
 * (cmd_key_file), after each granted SUBACK the tick publishes a probe
 * ({"probe":"<random token>"}, QoS 1, mqtt_cmd.h) on our own cmd topic and
 * expects it back: once ML_PROBE_WAIT_MS have passed and the queue has
 * drained (the probe was PUBACKed, so the broker has routed it) - or after
 * ML_PROBE_MAX_MS whatever the queue - a missing probe is a warning
 * ("broker ACL?"), a "cmd-subscription" event and a counter in the status
 * line, and the probe is repeated after 30 s doubling to 1 h. The check
 * needs the agent to be allowed to publish on its cmd topic (the ACL of
 * docs/mqtt.md allows it); an ACL that forbids it makes the check fail
 * the same way, which the warning says. States: unchecked -> ok | silent
 * | refused (SUBACK 0x80, counted by mqtt.c, no probe).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "agent.h"
#include "agent_config.h"
#include "consent.h"
#include "control.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "mqtt_cmd.h"
#include "mqttlink.h"
#include "sshc.h"
#include "telemetry.h"
#include "uplink.h"
#include "util.h"

#define ML_TICK_MS	1000
#define ML_STOP_MS	2000	/* graceful stop: wait for the PUBACK */
#define ML_PAYLOAD_MAX	(32 * 1024)
#define ML_TOPIC_MAX	512
#define ML_PROBE_WAIT_MS	10000	/* probe back within, once drained */
#define ML_PROBE_MAX_MS		(2 * 60 * 1000)	/* ... or at the latest */
#define ML_PROBE_RETRY_MS	30000	/* after a silent probe, doubling */
#define ML_PROBE_RETRY_MAX_MS	(60 * 60 * 1000)

enum ml_sub {
	ML_SUB_UNCHECKED,
	ML_SUB_OK,
	ML_SUB_SILENT,		/* granted, probe did not come back */
	ML_SUB_REFUSED,		/* SUBACK 0x80 */
};

struct mqttlink {
	struct agent		*a;
	struct mqtt		*m;		/* NULL when off */
	struct tm_pub		*tm;		/* telemetry seq, HMAC key */
	struct mc_verifier	*ver;		/* NULL: no cmd_key_file */
	char			 agent_id[65];
	char			 t_tel[ML_TOPIC_MAX];
	char			 t_ev[ML_TOPIC_MAX];
	char			 t_cmd[ML_TOPIC_MAX];
	uint8_t			 key[MC_KEY_MAX];	/* payload HMAC key */
	size_t			 keylen;
	uint64_t		 ev_seq;	/* events topic, last used */
	char			*buf;		/* ML_PAYLOAD_MAX */

	struct loop_timer	*tick;
	int64_t			 next_tel, next_file, next_cmd;

	/* metrics command */
	struct tm_cmd		 cmd;
	struct loop_watch	*cmd_w;
	int			 cmd_running;
	struct tm_metrics	 metrics;	/* scratch for a result */

	/* cmd subscription check (top comment); counters of ml->m */
	enum ml_sub		 sub;
	uint64_t		 seen_granted, seen_refused;
	char			 probe_token[MC_PROBE_TOKEN_LEN + 1]; /* last */
	int			 probe_pending;
	uint64_t		 probe_conn;	/* connects when sent */
	int64_t			 probe_sent;
	int64_t			 probe_next;	/* 0: none scheduled */
	int64_t			 probe_backoff;
	uint64_t		 probe_failures;

	/* what the pump last saw */
	int			 tun_up;
	uint64_t		 seen_connects;
	uint64_t		 seen_total;
	unsigned int		 seen_open;

	/* on-demand */
	int			 demanded;
	int			 pending_open, pending_close;
	char			 close_why[64];
	char			 down_why[64];
	int64_t			 idle_since;

	/* client rebuild (reload) and stop */
	int			 rebuild;	/* restart once m stopped */
	char			 change[160];	/* config-change to publish
						 * once restarted */
	int			 stopping, stopped;
	struct mqtt		*dead;		/* stopped: free after round */
};

static void tick(struct loop *loop, void *arg);
static void client_off(struct mqttlink *ml);

/* ---- agent id ---- */

/* The subject CN of the certificate in path (the agent id the relay
 * sees). Returns 0 or RT_ERR_CONFIG with err filled. */
static int
cert_cn(const char *path, char *buf, size_t len, char *err, size_t errlen)
{
	X509 *x = NULL;
	X509_NAME *name;
	X509_NAME_ENTRY *e;
	unsigned char *u = NULL;
	FILE *f;
	int i, n, r = RT_ERR_CONFIG;

	buf[0] = '\0';
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open", path);
		return RT_ERR_CONFIG;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL) {
		snprintf(err, errlen, "%s: not a PEM certificate", path);
		return RT_ERR_CONFIG;
	}
	name = X509_get_subject_name(x);
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    (e = X509_NAME_get_entry(name, i)) == NULL ||
	    (n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e))) <= 0) {
		snprintf(err, errlen, "%s: no CN in the subject", path);
		goto out;
	}
	if ((size_t)n >= len || memchr(u, '\0', (size_t)n) != NULL) {
		snprintf(err, errlen, "%s: CN too long", path);
		goto out;
	}
	memcpy(buf, u, (size_t)n);
	buf[n] = '\0';
	if (!rt_valid_id(buf)) {
		snprintf(err, errlen, "%s: CN \"%s\" is not a valid agent id",
		    path, buf);
		buf[0] = '\0';
		goto out;
	}
	r = 0;
 out:
	OPENSSL_free(u);
	X509_free(x);
	return r;
}

/* ---- publishing ---- */

static void
publish(struct mqttlink *ml, const char *topic, size_t len, const char *what)
{
	int r;

	if (ml->m == NULL || ml->stopping || ml->rebuild)
		return;
	r = mqtt_publish(ml->m, topic, ml->buf, len, ml->a->cfg->mqtt.qos, 0);
	/* The envelope (agent, ts, seq) names the message: with a spool, a
	 * message logged here was written to it unless a write error was
	 * logged before (fault_mqtt.sh relies on this). */
	if (r == 0)
		log_debug("mqtt: %s queued: %.*s", what, (int)(len < 64 ?
		    len : 64), ml->buf);
	if (r < 0 && r != RT_ERR_FULL)
		log_warn("mqtt: %s not queued: %s", what, rt_strerror(r));
	else if (r == RT_ERR_FULL)
		log_debug("mqtt: %s dropped by the queue policy", what);
}

/* Closes the event object, with "hmac" last when a key is set (the
 * recipe of telemetry.h), and counts it. */
static int
ev_seal(struct mqttlink *ml, struct tjson *j, size_t *len)
{
	int r;

	if ((r = tm_seal(j, ml->key, ml->keylen, len)) != 0)
		return r;
	ml->ev_seq++;
	return 0;
}

static void
ev_envelope(struct mqttlink *ml, struct tjson *j, const char *name)
{
	char ts[32];

	rt_time_iso(rt_wall_ms(), ts, sizeof(ts));
	tj_init(j, ml->buf, ML_PAYLOAD_MAX);
	tj_obj(j, NULL);
	tj_str(j, "agent", ml->agent_id);
	tj_str(j, "ts", ts);
	tj_uint(j, "seq", ml->ev_seq + 1);
	tj_str(j, "event", name);
}

static const char *
ev_name(int type)
{
	switch (type) {
	case TM_EV_TUNNEL_UP:		return "tunnel-up";
	case TM_EV_TUNNEL_DOWN:		return "tunnel-down";
	case TM_EV_SESSION_OPEN:	return "session-open";
	case TM_EV_SESSION_CLOSE:	return "session-close";
	case TM_EV_CONFIG_CHANGE:	return "config-change";
	}
	return NULL;
}

void
mqttlink_event(struct mqttlink *ml, const struct tm_event *ev)
{
	struct tjson j;
	const char *name;
	size_t len;
	int session;

	if (ml == NULL || ml->m == NULL || ev == NULL ||
	    (name = ev_name(ev->type)) == NULL)
		return;
	session = ev->type == TM_EV_SESSION_OPEN ||
	    ev->type == TM_EV_SESSION_CLOSE;
	ev_envelope(ml, &j, name);
	if (session && (ev->session != 0 || ev->type == TM_EV_SESSION_OPEN))
		tj_uint(&j, "session", ev->session);
	if (ev->service != NULL)
		tj_str(&j, "service", ev->service);
	if (ev->peer != NULL)
		tj_str(&j, "peer", ev->peer);
	if (ev->reason != NULL)
		tj_str(&j, "reason", ev->reason);
	/* The pump's detector knows no per-session counts: leave them out
	 * rather than publish zeros. */
	if (ev->type == TM_EV_SESSION_CLOSE && (ev->duration_ms >= 0 ||
	    ev->bytes_in != 0 || ev->bytes_out != 0)) {
		tj_uint(&j, "bytes_in", ev->bytes_in);
		tj_uint(&j, "bytes_out", ev->bytes_out);
		if (ev->duration_ms >= 0)
			tj_int(&j, "duration_ms", ev->duration_ms);
	}
	if (ev_seal(ml, &j, &len) != 0) {
		log_warn("mqtt: event %s does not fit", name);
		return;
	}
	publish(ml, ml->t_ev, len, "event");
}

/* The command events: "pong" (nonce), "command" (cmd, nonce, result),
 * "command-refused" (reason). NULL members are left out. */
static void
cmd_event(struct mqttlink *ml, const char *name, const char *cmd,
    const char *nonce, const char *result, const char *reason)
{
	struct tjson j;
	size_t len;

	if (ml->m == NULL)
		return;
	ev_envelope(ml, &j, name);
	if (cmd != NULL)
		tj_str(&j, "cmd", cmd);
	if (nonce != NULL)
		tj_str(&j, "nonce", nonce);
	if (result != NULL)
		tj_str(&j, "result", result);
	if (reason != NULL)
		tj_str(&j, "reason", reason);
	if (ev_seal(ml, &j, &len) == 0)
		publish(ml, ml->t_ev, len, "event");
}

/* control.c's events (config_rollback): a config-change event with the
 * reason "rollback" and control's JSON object as "detail". */
static void
on_control_event(void *arg, const char *json)
{
	struct mqttlink *ml = arg;
	struct tjson j;
	size_t len;

	if (ml->m == NULL || json == NULL || *json != '{')
		return;
	ev_envelope(ml, &j, "config-change");
	tj_str(&j, "reason", "rollback");
	tj_raw(&j, "detail", json, strlen(json));
	if (ev_seal(ml, &j, &len) == 0)
		publish(ml, ml->t_ev, len, "event");
}

/* Open operator sessions: forwarded channels plus built-in ones. */
static unsigned int
open_sessions(const struct mqttlink *ml)
{
	struct sshc *s = uplink_session(ml->a->uplink);
	unsigned int n = ml->a->control != NULL ?
	    control_count(ml->a->control) : 0;

	if (s != NULL)
		n += sshc_channels(s);
	return n;
}

static const char *
tunnel_state(const struct mqttlink *ml)
{
	struct sshc *s = uplink_session(ml->a->uplink);

	if (s != NULL && sshc_is_up(s))
		return "up";
	if (!mqttlink_uplink_wanted(ml))
		return "idle";
	return s != NULL ? "connecting" : "down";
}

static void
publish_telemetry(struct mqttlink *ml, const char *user_name,
    const struct tm_metrics *user)
{
	const struct agent_telemetry_config *tc = &ml->a->cfg->telemetry;
	const struct agent_stats *st = &ml->a->stats;
	struct tm_sys *sys = NULL;
	struct tm_tunnel tun;
	size_t len;
	int r;

	if (ml->m == NULL)
		return;
	memset(&tun, 0, sizeof(tun));
	if (user == NULL) {
		if ((sys = calloc(1, sizeof(*sys))) == NULL)
			return;
		(void)tm_sys_collect("", (const char *const *)tc->disks,
		    tc->ndisks, sys);
		tun.state = tunnel_state(ml);
		tun.rtt_ms = -1;	/* not measured by the uplink */
		tun.sessions = open_sessions(ml);
		tun.bytes_to_relay = st->bytes_from_target;
		tun.bytes_from_relay = st->bytes_to_target;
		tun.reconnects = st->connects > 0 ? st->connects - 1 : 0;
	}
	r = tm_build_telemetry(ml->tm, rt_wall_ms(), sys, user == NULL ?
	    &tun : NULL, user_name, user, ml->buf, ML_PAYLOAD_MAX, &len);
	free(sys);
	if (r != 0) {
		log_warn("mqtt: telemetry payload: %s", rt_strerror(r));
		return;
	}
	publish(ml, ml->t_tel, len, "telemetry");
}

/* ---- metrics command ---- */

static void cmd_io(struct loop *loop, int fd, unsigned int ev, void *arg);

static void
cmd_finish(struct mqttlink *ml, int r)
{
	char err[160];

	loop_watch_del(ml->cmd_w);
	ml->cmd_w = NULL;
	ml->cmd_running = 0;
	if (r != 0) {
		log_warn("telemetry: metrics_command: %s; this set is not "
		    "published", r == RT_ERR_TIMEOUT ? "timed out" :
		    r == RT_ERR_TOOBIG ? "output too large" :
		    r == RT_ERR_PROTO ? "failed (non-zero exit or signal)" :
		    rt_strerror(r));
		return;
	}
	if (tm_metrics_parse(ml->cmd.out, ml->cmd.len, &ml->metrics, err,
	    sizeof(err)) != 0) {
		log_warn("telemetry: metrics_command output: %s", err);
		return;
	}
	publish_telemetry(ml, "command", &ml->metrics);
}

static void
cmd_poll(struct mqttlink *ml)
{
	int r;

	if (!ml->cmd_running)
		return;
	r = tm_cmd_poll(&ml->cmd, loop_now(ml->a->loop));
	if (r == RT_ERR_AGAIN) {
		if (ml->cmd.fd < 0 && ml->cmd_w != NULL) {
			loop_watch_del(ml->cmd_w);	/* EOF, child alive */
			ml->cmd_w = NULL;
		}
		return;
	}
	cmd_finish(ml, r);
}

static void
cmd_io(struct loop *loop, int fd, unsigned int ev, void *arg)
{
	cmd_poll(arg);
}

static void
cmd_start(struct mqttlink *ml, int64_t now)
{
	const struct agent_telemetry_config *tc = &ml->a->cfg->telemetry;

	if (tm_cmd_start(&ml->cmd, tc->metrics_command, now,
	    tc->metrics_command_timeout_ms) != 0) {
		log_warn("telemetry: metrics_command: cannot start: %s",
		    rt_strerror_errno(RT_ERR_SYS));
		return;
	}
	ml->cmd_running = 1;
	if (loop_watch_add(ml->a->loop, ml->cmd.fd, LOOP_READ, cmd_io, ml,
	    &ml->cmd_w) < 0)
		ml->cmd_w = NULL;	/* the tick polls it anyway */
}

static void
cmd_abort(struct mqttlink *ml)
{
	loop_watch_del(ml->cmd_w);
	ml->cmd_w = NULL;
	if (ml->cmd_running)
		tm_cmd_abort(&ml->cmd);
	ml->cmd_running = 0;
}

/* ---- command subscription check ---- */

static const char *
sub_name(enum ml_sub sub)
{
	switch (sub) {
	case ML_SUB_UNCHECKED:	return "unchecked";
	case ML_SUB_OK:		return "ok";
	case ML_SUB_SILENT:	return "silent";
	case ML_SUB_REFUSED:	return "refused";
	}
	return "?";
}

static void
probe_send(struct mqttlink *ml, int64_t now, const struct mqtt_stats *st)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[MC_PROBE_TOKEN_LEN / 2];
	char payload[64];
	size_t i, len;
	int r;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ml->probe_next = now + ML_PROBE_RETRY_MS;
		return;
	}
	for (i = 0; i < sizeof(rnd); i++) {
		ml->probe_token[2 * i] = hex[rnd[i] >> 4];
		ml->probe_token[2 * i + 1] = hex[rnd[i] & 15];
	}
	ml->probe_token[MC_PROBE_TOKEN_LEN] = '\0';
	if (mc_probe_build(ml->probe_token, payload, sizeof(payload),
	    &len) != 0 ||
	    (r = mqtt_publish(ml->m, ml->t_cmd, payload, len, 1, 0)) != 0) {
		ml->probe_next = now + ML_PROBE_RETRY_MS;	/* queue full */
		return;
	}
	ml->probe_pending = 1;
	ml->probe_conn = st->connects;
	ml->probe_sent = now;
	ml->probe_next = 0;
	log_debug("mqtt: probe published on %s", ml->t_cmd);
}

static void
probe_failed(struct mqttlink *ml, int64_t now)
{
	ml->probe_pending = 0;
	ml->probe_failures++;
	ml->probe_backoff = ml->probe_backoff == 0 ? ML_PROBE_RETRY_MS :
	    ml->probe_backoff * 2 > ML_PROBE_RETRY_MAX_MS ?
	    ML_PROBE_RETRY_MAX_MS : ml->probe_backoff * 2;
	ml->probe_next = now + ml->probe_backoff;
	ml->sub = ML_SUB_SILENT;
	log_warn("mqtt: subscription to %s was granted, but the probe the "
	    "agent published there did not come back within %lld s (broker "
	    "ACL? the agent needs read, and for this check write, access to "
	    "its cmd topic): commands may not arrive; next check in %lld s "
	    "(%llu failed so far)", ml->t_cmd,
	    (long long)((now - ml->probe_sent) / 1000),
	    (long long)(ml->probe_backoff / 1000),
	    (unsigned long long)ml->probe_failures);
	cmd_event(ml, "cmd-subscription", NULL, NULL, "silent",
	    "probe not received (broker ACL?)");
}

/* From the tick: follows SUBACKs, sends probes, declares them lost. */
static void
probe_tick(struct mqttlink *ml, int64_t now)
{
	struct mqtt_stats st;
	int64_t waited;

	if (ml->m == NULL || ml->ver == NULL)
		return;		/* no commands configured: nothing to check */
	mqtt_stats(ml->m, &st);
	if (st.suback_refused != ml->seen_refused) {
		ml->seen_refused = st.suback_refused;
		ml->sub = ML_SUB_REFUSED;	/* mqtt.c logged it */
		ml->probe_pending = 0;
		cmd_event(ml, "cmd-subscription", NULL, NULL, "refused",
		    "SUBACK 0x80 (broker ACL?)");
	}
	if (st.suback_granted != ml->seen_granted) {
		ml->seen_granted = st.suback_granted;
		ml->probe_pending = 0;
		if (ml->sub != ML_SUB_SILENT || ml->probe_next == 0)
			ml->probe_next = now;	/* else: keep the backoff */
		if (ml->sub == ML_SUB_REFUSED)
			ml->sub = ML_SUB_UNCHECKED;
	}
	if (ml->probe_pending) {
		if (st.state != MQTT_ST_UP || st.connects != ml->probe_conn) {
			ml->probe_pending = 0;	/* the next SUBACK probes */
			return;
		}
		waited = now - ml->probe_sent;
		if (waited >= ML_PROBE_WAIT_MS && (st.queued == 0 ||
		    waited >= ML_PROBE_MAX_MS))
			probe_failed(ml, now);
		return;
	}
	if (ml->probe_next != 0 && now >= ml->probe_next &&
	    st.state == MQTT_ST_UP && ml->sub != ML_SUB_REFUSED)
		probe_send(ml, now, &st);
}

/* A probe on cmd (never a command). */
static void
probe_seen(struct mqttlink *ml, const char *token)
{
	if (ml->probe_token[0] == '\0' ||
	    strcmp(token, ml->probe_token) != 0) {
		log_debug("mqtt: an old or foreign probe on %s: ignored",
		    ml->t_cmd);
		return;
	}
	if (ml->sub == ML_SUB_SILENT)
		log_info("mqtt: subscription to %s verified again: the probe "
		    "came back", ml->t_cmd);
	else if (ml->sub != ML_SUB_OK)
		log_info("mqtt: subscription to %s verified end to end (probe "
		    "back after %lld ms)", ml->t_cmd,
		    (long long)(loop_now(ml->a->loop) - ml->probe_sent));
	ml->sub = ML_SUB_OK;
	ml->probe_pending = 0;
	ml->probe_next = 0;	/* a late one: no retry needed any more */
	ml->probe_backoff = 0;
	ml->probe_token[0] = '\0';
}

/* ---- schedule ---- */

static void
tick(struct loop *loop, void *arg)
{
	struct mqttlink *ml = arg;
	const struct agent_config *cfg = ml->a->cfg;
	const struct agent_telemetry_config *tc = &cfg->telemetry;
	int64_t now = loop_now(loop);
	char err[160];

	ml->tick = NULL;
	probe_tick(ml, now);
	if (ml->m != NULL && now >= ml->next_tel) {
		ml->next_tel = now + tc->interval_ms;
		publish_telemetry(ml, NULL, NULL);
	}
	if (ml->m != NULL && *tc->metrics_file != '\0' &&
	    now >= ml->next_file) {
		ml->next_file = now + tc->metrics_file_interval_ms;
		if (tm_metrics_read_file(tc->metrics_file, &ml->metrics, err,
		    sizeof(err)) == 0)
			publish_telemetry(ml, "file", &ml->metrics);
		else
			log_warn("telemetry: metrics_file %s: %s",
			    tc->metrics_file, err[0] != '\0' ? err :
			    rt_strerror_errno(RT_ERR_SYS));
	}
	cmd_poll(ml);		/* deadline, or a child the pipe hid */
	if (ml->m != NULL && *tc->metrics_command != '\0' &&
	    !ml->cmd_running && now >= ml->next_cmd) {
		ml->next_cmd = now + tc->metrics_command_interval_ms;
		cmd_start(ml, now);
	}
	/* On-demand: no session for on_demand_idle drops the tunnel. */
	if (cfg->uplink_mode == UPLINK_ON_DEMAND && ml->demanded) {
		if (open_sessions(ml) > 0)
			ml->idle_since = now;
		else if (now - ml->idle_since >= cfg->on_demand_idle_ms &&
		    !ml->pending_close) {
			ml->pending_close = 1;
			snprintf(ml->close_why, sizeof(ml->close_why),
			    "on-demand: idle for %lld s",
			    (long long)(cfg->on_demand_idle_ms / 1000));
			agent_kick(ml->a);
		}
	}
	if (!ml->stopping)
		loop_timer_add(loop, ML_TICK_MS, tick, ml, &ml->tick);
}

/* ---- commands ---- */

static void
on_message(void *arg, const char *topic, const uint8_t *p, size_t len)
{
	struct mqttlink *ml = arg;
	const struct agent_config *cfg = ml->a->cfg;
	struct mc_msg msg;
	char token[MC_PROBE_TOKEN_LEN + 1];
	const char *why;
	int r;

	if (mc_probe_parse(p, len, token) == 0) {
		probe_seen(ml, token);
		return;
	}
	if (ml->ver == NULL) {
		log_warn("mqtt: command refused: no mqtt.cmd_key_file is "
		    "configured, every command is refused");
		cmd_event(ml, "command-refused", NULL, NULL, NULL,
		    "no command key configured");
		return;
	}
	r = mc_verify(ml->ver, p, len, (int64_t)time(NULL), &msg, &why);
	if (r != 0) {
		log_warn("mqtt: command refused: %s", why);
		cmd_event(ml, "command-refused", NULL, NULL, NULL, why);
		return;
	}
	log_info("mqtt: command %s accepted (nonce %s)", msg.cmd, msg.nonce);
	switch (msg.kind) {
	case MC_PING:
		cmd_event(ml, "pong", NULL, msg.nonce, NULL, NULL);
		break;
	case MC_TELEMETRY_NOW:
		cmd_event(ml, "command", msg.cmd, msg.nonce, "ok", NULL);
		publish_telemetry(ml, NULL, NULL);
		break;
	case MC_TUNNEL_OPEN:
		if (cfg->uplink_mode != UPLINK_ON_DEMAND) {
			cmd_event(ml, "command", msg.cmd, msg.nonce,
			    "ignored", "uplink_mode is always");
			break;
		}
		ml->pending_open = 1;
		ml->pending_close = 0;
		cmd_event(ml, "command", msg.cmd, msg.nonce, "ok", NULL);
		agent_kick(ml->a);
		break;
	case MC_TUNNEL_CLOSE:
		if (cfg->uplink_mode != UPLINK_ON_DEMAND) {
			cmd_event(ml, "command", msg.cmd, msg.nonce,
			    "ignored", "uplink_mode is always");
			break;
		}
		ml->pending_open = 0;
		ml->pending_close = 1;
		rt_strlcpy(ml->close_why, "on-demand: tunnel-close command",
		    sizeof(ml->close_why));
		cmd_event(ml, "command", msg.cmd, msg.nonce, "ok", NULL);
		agent_kick(ml->a);
		break;
	}
}

/* ---- client life ---- */

static void
reap_dead(struct loop *loop, void *arg)
{
	struct mqttlink *ml = arg;

	mqtt_free(ml->dead);
	ml->dead = NULL;
	if (ml->rebuild && !ml->stopping) {
		ml->rebuild = 0;
		client_off(ml);		/* keys and verifier of the old one */
		(void)mqttlink_start(ml);
	}
}

static void
on_stopped(void *arg)
{
	struct mqttlink *ml = arg;

	/* Never free inside m's callback: after the round. */
	ml->dead = ml->m;
	ml->m = NULL;
	if (loop_defer(ml->a->loop, reap_dead, ml) != 0)
		log_err("out of memory scheduling the MQTT cleanup");
	if (ml->stopping)
		ml->stopped = 1;
	agent_kick(ml->a);
}

static void
client_off(struct mqttlink *ml)
{
	loop_timer_cancel(ml->tick);
	ml->tick = NULL;
	cmd_abort(ml);
	mqtt_free(ml->m);
	ml->m = NULL;
	mc_verifier_free(ml->ver);
	ml->ver = NULL;
	/* ml->tm and the key stay: a restart with the same agent id and key
	 * keeps the telemetry seq going (mqttlink_start). */
}

int
mqttlink_new(struct agent *a, struct mqttlink **out)
{
	struct mqttlink *ml;

	*out = NULL;
	if ((ml = calloc(1, sizeof(*ml))) == NULL)
		return RT_ERR_NOMEM;
	if ((ml->buf = malloc(ML_PAYLOAD_MAX)) == NULL) {
		free(ml);
		return RT_ERR_NOMEM;
	}
	ml->a = a;
	ml->cmd.pid = -1;
	ml->cmd.fd = -1;
	if (a->control != NULL)
		control_set_event_hook(a->control, on_control_event, ml);
	*out = ml;
	return 0;
}

void
mqttlink_free(struct mqttlink *ml)
{
	if (ml == NULL)
		return;
	if (ml->a->control != NULL)
		control_set_event_hook(ml->a->control, NULL, NULL);
	client_off(ml);
	mqtt_free(ml->dead);
	tm_free(ml->tm);
	OPENSSL_cleanse(ml->key, sizeof(ml->key));
	free(ml->buf);
	free(ml);
}

int
mqttlink_start(struct mqttlink *ml)
{
	const struct agent_config *cfg;
	uint8_t ckey[MC_KEY_MAX], tkey[MC_KEY_MAX];
	size_t cklen = 0, tklen = 0;
	char id[sizeof(ml->agent_id)];
	char err[256];
	int r;

	if (ml == NULL)
		return 0;
	cfg = ml->a->cfg;
	if (!cfg->mqtt.enable || ml->stopping || ml->m != NULL ||
	    ml->dead != NULL)
		return 0;
	err[0] = '\0';
	if ((r = cert_cn(cfg->tls_cert, id, sizeof(id), err,
	    sizeof(err))) != 0)
		goto fail;
	if (*cfg->telemetry.hmac_key_file != '\0' &&
	    (r = mc_key_load(cfg->telemetry.hmac_key_file, tkey,
	    sizeof(tkey), &tklen, err, sizeof(err))) != 0)
		goto fail;
	/* Same id and key as before (reload): keep the seq counters. */
	if (ml->tm != NULL && (strcmp(id, ml->agent_id) != 0 ||
	    tklen != ml->keylen || CRYPTO_memcmp(tkey, ml->key, tklen) != 0)) {
		tm_free(ml->tm);
		ml->tm = NULL;
		ml->ev_seq = 0;
	}
	rt_strlcpy(ml->agent_id, id, sizeof(ml->agent_id));
	memcpy(ml->key, tkey, tklen);
	ml->keylen = tklen;
	OPENSSL_cleanse(tkey, sizeof(tkey));
	if (*cfg->mqtt.cmd_key_file != '\0') {
		if ((r = mc_key_load(cfg->mqtt.cmd_key_file, ckey,
		    sizeof(ckey), &cklen, err, sizeof(err))) != 0)
			goto fail;
		r = mc_verifier_new(ml->agent_id, ckey, cklen,
		    cfg->mqtt.cmd_window_ms / 1000, 0, &ml->ver);
		OPENSSL_cleanse(ckey, sizeof(ckey));
		if (r != 0) {
			snprintf(err, sizeof(err), "command verifier: %s",
			    rt_strerror(r));
			goto fail;
		}
	} else
		log_warn("mqtt: no cmd_key_file: every command on cmd will be "
		    "refused");
	if (ml->tm == NULL && (r = tm_new(ml->agent_id, ml->keylen > 0 ?
	    ml->key : NULL, ml->keylen, &ml->tm)) != 0) {
		snprintf(err, sizeof(err), "telemetry: %s", rt_strerror(r));
		goto fail;
	}
	if ((r = mqtt_new(ml->a->loop, &cfg->mqtt, ml->agent_id, on_message,
	    ml, &ml->m, err, sizeof(err))) != 0)
		goto fail;
	if ((r = mqtt_topic(ml->m, "telemetry", ml->t_tel,
	    sizeof(ml->t_tel))) != 0 ||
	    (r = mqtt_topic(ml->m, "events", ml->t_ev, sizeof(ml->t_ev))) != 0 ||
	    (r = mqtt_topic(ml->m, "cmd", ml->t_cmd, sizeof(ml->t_cmd))) != 0) {
		snprintf(err, sizeof(err), "topic prefix too long");
		goto fail;
	}
	/* A new client counts its SUBACKs from 0. */
	ml->sub = ML_SUB_UNCHECKED;
	ml->seen_granted = ml->seen_refused = 0;
	ml->probe_pending = 0;
	ml->probe_next = 0;
	ml->probe_backoff = 0;
	if ((r = mqtt_start(ml->m)) != 0) {
		snprintf(err, sizeof(err), "start: %s", rt_strerror(r));
		goto fail;
	}
	ml->next_tel = ml->next_file = ml->next_cmd = loop_now(ml->a->loop);
	if (ml->change[0] != '\0') {
		struct tm_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.type = TM_EV_CONFIG_CHANGE;
		ev.reason = ml->change;
		ev.duration_ms = -1;
		mqttlink_event(ml, &ev);
		ml->change[0] = '\0';
	}
	if (loop_timer_add(ml->a->loop, 0, tick, ml, &ml->tick) != 0) {
		r = RT_ERR_NOMEM;
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	log_info("mqtt: telemetry on as agent %s: %s every %lld s%s%s",
	    ml->agent_id, ml->t_tel,
	    (long long)(cfg->telemetry.interval_ms / 1000),
	    ml->keylen > 0 ? ", payloads signed" : "",
	    cfg->uplink_mode == UPLINK_ON_DEMAND ? ", on-demand uplink" : "");
	return 0;
 fail:
	OPENSSL_cleanse(tkey, sizeof(tkey));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	log_err("mqtt: telemetry disabled: %s", err[0] != '\0' ? err :
	    rt_strerror(r));
	if (cfg->uplink_mode == UPLINK_ON_DEMAND)
		log_err("mqtt: uplink_mode is on-demand: without MQTT no "
		    "tunnel-open can arrive");
	client_off(ml);
	return r;
}

int
mqttlink_uplink_wanted(const struct mqttlink *ml)
{
	if (ml == NULL || ml->a->cfg->uplink_mode == UPLINK_ALWAYS)
		return 1;
	return ml->demanded;
}

/* Carries out a requested open / close (from the pump only). */
static void
on_demand(struct mqttlink *ml)
{
	struct agent *a = ml->a;

	if (ml->pending_open) {
		ml->pending_open = 0;
		if (a->stopping || a->cfg->uplink_mode != UPLINK_ON_DEMAND)
			return;
		ml->idle_since = loop_now(a->loop);
		if (ml->demanded)
			return;
		ml->demanded = 1;
		if (a->cfg->consent_mode == CONSENT_CONNECT &&
		    !consent_open(a->consent)) {
			log_info("on-demand: tunnel-open: consent gate closed, "
			    "connecting once it opens");
			return;
		}
		log_info("on-demand: tunnel-open: connecting to the relay");
		uplink_start(a->uplink);
	}
	if (ml->pending_close) {
		ml->pending_close = 0;
		if (!ml->demanded)
			return;
		ml->demanded = 0;
		rt_strlcpy(ml->down_why, ml->close_why, sizeof(ml->down_why));
		uplink_stop(a->uplink, ml->close_why);
	}
}

void
mqttlink_pump(struct mqttlink *ml)
{
	struct agent *a;
	struct sshc *s;
	struct tm_event ev;
	uint64_t total;
	unsigned int open, expect;
	int up;

	if (ml == NULL)
		return;
	a = ml->a;
	on_demand(ml);
	s = uplink_session(a->uplink);
	up = s != NULL && sshc_is_up(s);
	memset(&ev, 0, sizeof(ev));
	ev.duration_ms = -1;

	/* Tunnel: a new connect (even one we missed going down) or a drop. */
	if (ml->tun_up && (!up || a->stats.connects != ml->seen_connects)) {
		ev.type = TM_EV_TUNNEL_DOWN;
		ev.reason = ml->down_why[0] != '\0' ? ml->down_why :
		    a->stopping ? "agent stopping" : "connection lost";
		mqttlink_event(ml, &ev);
		ml->tun_up = 0;
		ml->down_why[0] = '\0';
	}
	if (up && !ml->tun_up) {
		ev.type = TM_EV_TUNNEL_UP;
		ev.reason = a->cfg->uplink_mode == UPLINK_ON_DEMAND ?
		    "on-demand" : NULL;
		mqttlink_event(ml, &ev);
		ml->tun_up = 1;
	}
	ml->seen_connects = a->stats.connects;

	/* Sessions: accepted since last time, and those that went away. */
	total = a->stats.channels_total;
	open = open_sessions(ml);
	memset(&ev, 0, sizeof(ev));
	ev.duration_ms = -1;
	expect = ml->seen_open;
	while (ml->seen_total < total) {
		ml->seen_total++;
		expect++;
		ev.type = TM_EV_SESSION_OPEN;
		ev.session = a->last_chan_id - (total - ml->seen_total);
		mqttlink_event(ml, &ev);
	}
	while (expect > open) {
		expect--;
		ev.type = TM_EV_SESSION_CLOSE;
		ev.session = 0;
		ev.reason = up ? "closed" : "tunnel down";
		mqttlink_event(ml, &ev);
	}
	ml->seen_open = open;
	if (open > 0)
		ml->idle_since = loop_now(a->loop);
}

void
mqttlink_reload(struct mqttlink *ml, unsigned int diff)
{
	const struct agent_config *cfg;
	struct tm_event ev;
	char why[160];

	if (ml == NULL || diff == 0)
		return;
	cfg = ml->a->cfg;
	snprintf(why, sizeof(why), "reload:%s%s%s%s%s%s%s%s%s",
	    diff & AGENT_DIFF_UPLINK ? " relay" : "",
	    diff & AGENT_DIFF_SERVICES ? " services" : "",
	    diff & AGENT_DIFF_CONSENT ? " consent" : "",
	    diff & AGENT_DIFF_LIMITS ? " limits" : "",
	    diff & AGENT_DIFF_LOG ? " log" : "",
	    diff & AGENT_DIFF_MQTT ? " mqtt" : "",
	    diff & AGENT_DIFF_CONTROL ? " control" : "",
	    diff & AGENT_DIFF_TELEMETRY ? " telemetry" : "",
	    diff & AGENT_DIFF_UPLINK_MODE ? " uplink_mode" : "");
	if ((diff & (AGENT_DIFF_MQTT | AGENT_DIFF_TELEMETRY)) == 0) {
		memset(&ev, 0, sizeof(ev));
		ev.type = TM_EV_CONFIG_CHANGE;
		ev.reason = why;
		ev.duration_ms = -1;
		mqttlink_event(ml, &ev);
	} else	/* the stopping client would not send it: the new one */
		rt_strlcpy(ml->change, why, sizeof(ml->change));

	if (diff & AGENT_DIFF_UPLINK_MODE) {
		if (cfg->uplink_mode == UPLINK_ALWAYS) {
			ml->demanded = 0;
			ml->a->consent_pending = 1;	/* -> uplink_start */
			agent_kick(ml->a);
		} else if (uplink_session(ml->a->uplink) != NULL) {
			/* Running: now on demand, dropped when idle. */
			ml->demanded = 1;
			ml->idle_since = loop_now(ml->a->loop);
		}
	}
	if ((diff & (AGENT_DIFF_MQTT | AGENT_DIFF_TELEMETRY)) == 0)
		return;
	log_info("reload: mqtt / telemetry settings changed: restarting the "
	    "MQTT client");
	if (ml->m != NULL && !ml->rebuild) {
		ml->rebuild = 1;
		loop_timer_cancel(ml->tick);
		ml->tick = NULL;
		cmd_abort(ml);
		if (mqtt_stop(ml->m, ML_STOP_MS, on_stopped, ml) != 0)
			ml->rebuild = 0;
		return;
	}
	if (ml->m == NULL && ml->dead == NULL) {
		client_off(ml);
		(void)mqttlink_start(ml);
	}
}

void
mqttlink_stop(struct mqttlink *ml)
{
	if (ml == NULL || ml->stopping)
		return;
	ml->stopping = 1;
	loop_timer_cancel(ml->tick);
	ml->tick = NULL;
	cmd_abort(ml);
	if (ml->m == NULL || ml->rebuild) {
		ml->stopped = ml->m == NULL;
		return;
	}
	if (mqtt_stop(ml->m, ML_STOP_MS, on_stopped, ml) != 0)
		ml->stopped = 1;
}

int
mqttlink_stopped(const struct mqttlink *ml)
{
	return ml == NULL || ml->stopped || (ml->m == NULL && !ml->rebuild);
}

void
mqttlink_status(const struct mqttlink *ml, char *buf, size_t len)
{
	struct mqtt_stats st;

	if (ml == NULL || ml->m == NULL) {
		snprintf(buf, len, "mqtt off; uplink mode %s%s",
		    ml != NULL && ml->a->cfg->uplink_mode == UPLINK_ON_DEMAND ?
		    "on-demand" : "always",
		    ml != NULL && ml->demanded ? " (tunnel requested)" : "");
		return;
	}
	mqtt_stats(ml->m, &st);
	snprintf(buf, len, "mqtt %s (%s); %llu connects, %llu published, "
	    "%llu acked, %llu dropped, %zu queued, %llu spool write errors, "
	    "%llu commands received; cmd subscription %s (%llu probes "
	    "lost); uplink mode %s%s", mqtt_state_name(st.state),
	    st.broker != NULL ? st.broker : "-",
	    (unsigned long long)st.connects,
	    (unsigned long long)st.published,
	    (unsigned long long)st.acked, (unsigned long long)st.dropped,
	    st.queued, (unsigned long long)st.spool_write_errors,
	    (unsigned long long)st.received, ml->ver == NULL ? "unchecked" :
	    sub_name(ml->sub), (unsigned long long)ml->probe_failures,
	    ml->a->cfg->uplink_mode == UPLINK_ON_DEMAND ? "on-demand" :
	    "always", ml->demanded ? " (tunnel requested)" : "");
}
