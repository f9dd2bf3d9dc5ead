/*
 * mqtt.c - the MQTT 3.1.1 client session (mqtt.h): broker connection,
 * CONNECT / CONNACK, keepalive, QoS 1 flow with an in-flight window and
 * re-sends, subscription to the command topic, reconnect with failover and
 * backoff, graceful stop.
 *
 * Owns: the socket, its watch, the TLS context and connection, the two
 * bounded buffers (to_broker: encoded packets not yet taken by TLS;
 * from_broker: received bytes, at most one maximal packet), the timers
 * (timer: backoff wait, connect deadline or stop deadline; tick: keepalive
 * and spool fsync, every second while started) and the queue (spool).
 *
 * The queue is the session store: a QoS 1 message gets its packet id when
 * first written and keeps it until PUBACK; messages are sent in queue
 * order, so the messages in flight are always at the head of the queue
 * (QoS 0 ones leave it as soon as they are written).
 *
 * Failures found while handling I/O are only recorded (fail()); the
 * connection is torn down from a deferred call (reap), never inside the
 * callback that found the problem.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent_config.h"
#include "buf.h"
#include "cfgutil.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "mqtt_codec.h"
#include "net.h"
#include "spool.h"
#include "tls.h"
#include "util.h"

#define MQTT_TO_BROKER_MAX	(2 * 1024 * 1024)
#define MQTT_READ_CHUNK		16384
#define MQTT_READS_PER_PASS	16
#define MQTT_TICK_MS		1000
#define MQTT_PASSWORD_MAX	4096
#define MQTT_JITTER		0.2

enum fail_kind {
	FAIL_NORMAL,		/* next broker / backoff */
	FAIL_SLOW,		/* CONNACK 1, 2 */
	FAIL_AUTH,		/* CONNACK 4, 5 */
};

struct mqtt {
	struct loop		*loop;

	/* configuration (copied) */
	size_t			 nbrokers;
	char			*host[AGENT_MQTT_MAX_BROKERS];
	char			*port[AGENT_MQTT_MAX_BROKERS];
	char			*server_name;	/* "" = the broker host */
	char			*agent_id;
	char			*client_id;
	char			*prefix;
	char			*username;	/* "" = none */
	uint8_t			*password;	/* NULL = none */
	size_t			 password_len;
	uint16_t		 keepalive_s;
	int64_t			 keepalive_ms;
	int			 clean_session;
	size_t			 inflight_max;
	int64_t			 connect_timeout_ms;
	int64_t			 backoff_max_ms;
	char			*status_topic;
	char			*cmd_topic;
	SSL_CTX			*ctx;
	struct spool		*q;
	mqtt_msg_cb		 cb;
	void			*cb_arg;

	/* session */
	enum mqtt_state		 state;
	size_t			 idx;		/* broker tried now / next */
	char			 broker[300];	/* "host:port" for logs */
	int64_t			 backoff_ms;
	struct loop_timer	*timer;
	struct loop_timer	*tick;
	struct net_connect	*nc;
	int			 fd;
	struct loop_watch	*w;
	struct tls_conn		*tls;
	int			 tls_done;
	int			 connack_ok;
	unsigned int		 read_want;	/* TLS_WANT_* of the last read */
	unsigned int		 write_want;	/* ... of the last write */
	struct buf		*to_broker;
	struct buf		*from_broker;
	uint64_t		 gen;		/* connection number */
	size_t			 inflight;	/* queued msgs with a pkid */
	uint16_t		 next_id;
	uint16_t		 sub_id;	/* SUBSCRIBE awaiting SUBACK */
	uint16_t		 sys_id;	/* birth / offline awaiting PUBACK */
	int64_t			 last_tx, last_rx, ping_sent, up_since;
	int			 failed;	/* teardown scheduled */
	enum fail_kind		 fail_kind;
	struct loop_timer	*kick_t;	/* pump from the loop */
	struct loop_timer	*reap_t;	/* teardown from the loop */
	struct loop_timer	*done_t;	/* stop callback */

	/* graceful stop */
	mqtt_done_cb		 done;
	void			*done_arg;
	int			 disconnect_sent;

	struct mqtt_stats	 st;
	struct log_rl		 rl_fail;
	struct log_rl		 rl_ack;
};

static void pump(struct mqtt *m);
static void attempt(struct loop *loop, void *arg);
static void reap(struct loop *loop, void *arg);
static void finish_stop(struct mqtt *m);

/* Runs cb from the loop in the next round, once (a zero-delay timer, so
 * mqtt_free can cancel it). */
static void
later(struct mqtt *m, struct loop_timer **t, loop_cb cb)
{
	if (*t == NULL && loop_timer_add(m->loop, 0, cb, m, t) != 0)
		*t = NULL;
}

/* Tears the connection down from the loop, without a failure message. */
static void
teardown_later(struct mqtt *m)
{
	m->failed = 1;
	m->fail_kind = FAIL_NORMAL;
	if (m->w != NULL)
		loop_watch_set(m->w, 0);
	later(m, &m->reap_t, reap);
}

const char *
mqtt_state_name(enum mqtt_state st)
{
	static const char *const names[] = {
		"idle", "waiting to reconnect", "connecting", "up",
		"stopping", "stopped",
	};

	if ((unsigned int)st >= RT_ARRAY_SIZE(names))
		return "?";
	return names[st];
}

static const char *
type_name(int t)
{
	static const char *const names[] = {
		"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK",
		"PUBREC", "PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK",
		"UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
		"DISCONNECT", "reserved",
	};

	return names[t & 0xf];
}

/*
 * Failure and teardown
 */

/* Records a failure; the teardown runs from the loop (reap). */
static void __attribute__((format(printf, 3, 4)))
fail(struct mqtt *m, enum fail_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (m->failed)
		return;
	m->failed = 1;
	m->fail_kind = kind;
	va_start(ap, fmt);
	vsnprintf(m->st.last_error, sizeof(m->st.last_error), fmt, ap);
	va_end(ap);
	if (kind != FAIL_NORMAL)
		log_err("mqtt broker %s: %s", m->broker, m->st.last_error);
	else
		log_warn_rl(&m->rl_fail, "mqtt broker %s: %s", m->broker,
		    m->st.last_error);
	if (m->w != NULL)
		loop_watch_set(m->w, 0);
	later(m, &m->reap_t, reap);
}

/* Closes the connection; in-flight messages keep their ids. */
static void
close_conn(struct mqtt *m)
{
	loop_timer_cancel(m->timer);
	m->timer = NULL;
	net_connect_cancel(m->nc);
	m->nc = NULL;
	loop_watch_del(m->w);
	m->w = NULL;
	tls_conn_free(m->tls);
	m->tls = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if (m->to_broker != NULL) {
		buf_reset(m->to_broker);
		buf_shrink(m->to_broker);
	}
	if (m->from_broker != NULL) {
		buf_reset(m->from_broker);
		buf_shrink(m->from_broker);
	}
	m->tls_done = m->connack_ok = 0;
	m->read_want = m->write_want = 0;
	m->sub_id = m->sys_id = 0;
	m->ping_sent = 0;
	m->disconnect_sent = 0;
}

static void
schedule(struct mqtt *m, int64_t delay_ms)
{
	m->state = MQTT_ST_WAIT;
	if (delay_ms >= 1000)
		log_info("mqtt: next attempt (%s:%s) in %.1f s",
		    m->host[m->idx], m->port[m->idx], delay_ms / 1000.0);
	if (loop_timer_add(m->loop, delay_ms, attempt, m, &m->timer) != 0) {
		/* Out of memory: the tick retries the schedule. */
		m->timer = NULL;
		log_err("mqtt: cannot schedule a reconnect: out of memory");
	}
}

static int64_t
next_backoff(struct mqtt *m)
{
	int64_t d = rt_jitter(m->backoff_ms, MQTT_JITTER);

	m->backoff_ms = RT_MIN(m->backoff_ms * 2, m->backoff_max_ms);
	return d;
}

static void
reap(struct loop *loop, void *arg)
{
	struct mqtt *m = arg;
	int64_t now = loop_now(loop), delay;
	int was_up = m->connack_ok;

	m->reap_t = NULL;
	if (!m->failed)
		return;
	m->failed = 0;
	close_conn(m);
	if (m->state == MQTT_ST_STOPPING || m->state == MQTT_ST_STOPPED) {
		finish_stop(m);
		return;
	}
	if (was_up && now - m->up_since >= MQTT_STABLE_MS)
		m->backoff_ms = MQTT_BACKOFF_INITIAL_MS;
	switch (m->fail_kind) {
	case FAIL_AUTH:
		delay = rt_jitter(MQTT_AUTH_RETRY_MS, MQTT_JITTER / 2);
		m->idx = (m->idx + 1) % m->nbrokers;
		break;
	case FAIL_SLOW:
		delay = rt_jitter(MQTT_SLOW_RETRY_MS, MQTT_JITTER / 2);
		m->idx = (m->idx + 1) % m->nbrokers;
		break;
	default:
		if (was_up) {
			/* A session that was up: the same broker first. */
			delay = next_backoff(m);
		} else {
			m->idx = (m->idx + 1) % m->nbrokers;
			delay = m->idx == 0 ? next_backoff(m) : 0;
		}
		break;
	}
	schedule(m, delay);
}

/*
 * Output
 */

/* Encodes pkt at the end of to_broker. RT_ERR_FULL if it does not fit. */
static int
put_pkt(struct mqtt *m, const struct mqtt_pkt *pkt)
{
	size_t need = 0, avail, len;
	uint8_t *p;
	int r;

	r = mqtt_encode(pkt, NULL, 0, &need);
	if (r != RT_ERR_FULL)
		return r != 0 ? r : RT_ERR_INVAL;
	if (buf_room(m->to_broker) < need)
		return RT_ERR_FULL;
	if ((r = buf_reserve(m->to_broker, need, &p, &avail)) != 0)
		return r;
	if ((r = mqtt_encode(pkt, p, avail, &len)) != 0)
		return r;
	buf_commit(m->to_broker, len);
	return 0;
}

static int
id_in_use(struct mqtt *m, uint16_t id)
{
	struct spool_msg *q;

	if (id == m->sub_id || id == m->sys_id)
		return 1;
	for (q = spool_first(m->q); q != NULL && q->pkid != 0;
	    q = spool_next(m->q, q))
		if (q->pkid == id)
			return 1;
	return 0;
}

/* A packet id not in use (MQTT-2.3.1-1/-2), or 0 if none is free. */
static uint16_t
alloc_id(struct mqtt *m)
{
	unsigned int i;
	uint16_t id;

	for (i = 0; i < 65535; i++) {
		id = m->next_id;
		m->next_id = m->next_id == 65535 ? 1 : m->next_id + 1;
		if (!id_in_use(m, id))
			return id;
	}
	return 0;
}

static int
put_publish(struct mqtt *m, const char *topic, size_t tl,
    const uint8_t *payload, size_t pl, int qos, int retain, int dup,
    uint16_t id)
{
	struct mqtt_pkt pkt;

	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_PUBLISH;
	pkt.u.publish.topic.p = (const uint8_t *)topic;
	pkt.u.publish.topic.len = tl;
	pkt.u.publish.payload.p = payload;
	pkt.u.publish.payload.len = pl;
	pkt.u.publish.qos = (uint8_t)qos;
	pkt.u.publish.retain = retain ? 1 : 0;
	pkt.u.publish.dup = dup ? 1 : 0;
	pkt.u.publish.id = id;
	return put_pkt(m, &pkt);
}

static int
put_status(struct mqtt *m, const char *status)
{
	char payload[160];
	int n;
	uint16_t id;

	n = snprintf(payload, sizeof(payload),
	    "{\"status\":\"%s\",\"agent\":\"%s\"}", status, m->agent_id);
	if ((id = alloc_id(m)) == 0)
		return RT_ERR_FULL;
	if (put_publish(m, m->status_topic, strlen(m->status_topic),
	    (const uint8_t *)payload, (size_t)n, 1, 1, 0, id) != 0)
		return RT_ERR_FULL;
	m->sys_id = id;
	return 0;
}

static int
put_connect(struct mqtt *m)
{
	struct mqtt_pkt pkt;
	struct mqtt_connect *c = &pkt.u.connect;
	char will[160];
	int n;

	n = snprintf(will, sizeof(will),
	    "{\"status\":\"offline\",\"agent\":\"%s\",\"will\":true}",
	    m->agent_id);
	memset(&pkt, 0, sizeof(pkt));
	pkt.type = MQTT_CONNECT;
	c->client_id = mqtt_cstr(m->client_id);
	c->keepalive = m->keepalive_s;
	c->clean_session = m->clean_session ? 1 : 0;
	c->will = 1;
	c->will_qos = 1;
	c->will_retain = 1;
	c->will_topic = mqtt_cstr(m->status_topic);
	c->will_msg.p = (const uint8_t *)will;
	c->will_msg.len = (size_t)n;
	if (m->username[0] != '\0') {
		c->has_username = 1;
		c->username = mqtt_cstr(m->username);
		if (m->password != NULL) {
			c->has_password = 1;
			c->password.p = m->password;
			c->password.len = m->password_len;
		}
	}
	return put_pkt(m, &pkt);
}

/*
 * Moves queued messages into to_broker, in queue order: first the
 * in-flight ones not yet written on this connection (re-sent, DUP=1, same
 * id), then new ones while the window has room. Stops at the first message
 * that cannot go, so order is kept.
 */
static void
fill(struct mqtt *m)
{
	struct spool_msg *q, *next;
	uint16_t id;
	size_t need;

	if (m->state != MQTT_ST_UP || m->failed)
		return;
	for (q = spool_first(m->q); q != NULL; q = next) {
		next = spool_next(m->q, q);
		if (q->pkid != 0) {
			if (q->sent_gen == m->gen)
				continue;
			if (put_publish(m, q->topic, q->topic_len, q->payload,
			    q->payload_len, 1, q->retain, 1, q->pkid) != 0)
				break;
			q->sent_gen = m->gen;
			m->st.resent++;
			continue;
		}
		/* Room first, so an id is never taken for nothing. */
		need = q->topic_len + q->payload_len + 16;
		if (buf_room(m->to_broker) < need)
			break;
		if (q->qos == 0) {
			if (put_publish(m, q->topic, q->topic_len, q->payload,
			    q->payload_len, 0, q->retain, 0, 0) != 0)
				break;
			m->st.published++;
			spool_done(m->q, q);
			continue;
		}
		if (m->inflight >= m->inflight_max || (id = alloc_id(m)) == 0)
			break;
		if (put_publish(m, q->topic, q->topic_len, q->payload,
		    q->payload_len, 1, q->retain, 0, id) != 0)
			break;
		q->pkid = id;
		q->sent_gen = m->gen;
		m->inflight++;
		m->st.published++;
	}
}

static void
do_write(struct mqtt *m)
{
	ssize_t n;

	m->write_want = 0;
	while (!m->failed && buf_len(m->to_broker) > 0) {
		n = tls_write(m->tls, buf_data(m->to_broker),
		    buf_len(m->to_broker));
		if (n == RT_ERR_AGAIN) {
			m->write_want = tls_want(m->tls);
			return;
		}
		if (n < 0) {
			fail(m, FAIL_NORMAL, "write: %s", n == RT_ERR_TLS ?
			    tls_error(m->tls) : rt_strerror_errno((int)n));
			return;
		}
		buf_consume(m->to_broker, (size_t)n);
		m->last_tx = loop_now(m->loop);
	}
	if (buf_len(m->to_broker) == 0)
		buf_shrink(m->to_broker);
}

/*
 * Input
 */

static void
connack_refused(struct mqtt *m, int rc)
{
	const char *user = m->username[0] != '\0' ? m->username : "(none)";

	m->st.last_connack = rc;
	switch (rc) {
	case MQTT_RC_BAD_PROTOCOL:
		fail(m, FAIL_SLOW, "connection refused: unacceptable protocol "
		    "version (configuration error: the broker does not speak "
		    "MQTT 3.1.1)");
		break;
	case MQTT_RC_ID_REJECTED:
		fail(m, FAIL_SLOW, "connection refused: identifier rejected "
		    "(configuration error: client id \"%s\")", m->client_id);
		break;
	case MQTT_RC_UNAVAILABLE:
		fail(m, FAIL_NORMAL, "connection refused: server unavailable");
		break;
	case MQTT_RC_BAD_CREDENTIALS:
		fail(m, FAIL_AUTH, "connection refused: bad user name or "
		    "password (user \"%s\"); next try in %d s", user,
		    MQTT_AUTH_RETRY_MS / 1000);
		break;
	default:
		fail(m, FAIL_AUTH, "connection refused: not authorised "
		    "(user \"%s\"); next try in %d s", user,
		    MQTT_AUTH_RETRY_MS / 1000);
		break;
	}
}

static void
on_connack(struct mqtt *m, const struct mqtt_connack *ca)
{
	struct mqtt_pkt pkt;
	struct mqtt_sub sub;
	struct spool_stats ss;

	if (ca->rc != MQTT_RC_ACCEPTED) {
		connack_refused(m, ca->rc);
		return;
	}
	if (ca->session_present && m->clean_session) {
		fail(m, FAIL_NORMAL, "protocol error: Session Present with "
		    "Clean Session");
		return;
	}
	loop_timer_cancel(m->timer);	/* the connect deadline */
	m->timer = NULL;
	m->st.last_connack = 0;
	m->connack_ok = 1;
	m->state = MQTT_ST_UP;
	m->up_since = loop_now(m->loop);
	m->gen++;
	m->st.connects++;
	m->st.last_error[0] = '\0';
	spool_stats(m->q, &ss);
	log_info("mqtt broker %s: connected (%s, session present %d, %zu "
	    "message(s) queued, %zu to re-send)", m->broker,
	    tls_version(m->tls), ca->session_present, ss.count, m->inflight);

	/* Subscribe, then birth, then the queue (fill). */
	memset(&pkt, 0, sizeof(pkt));
	sub.filter = mqtt_cstr(m->cmd_topic);
	sub.qos = 1;
	pkt.type = MQTT_SUBSCRIBE;
	pkt.u.sub.count = 1;
	pkt.u.sub.subs = &sub;
	if ((pkt.u.sub.id = alloc_id(m)) == 0 || put_pkt(m, &pkt) != 0) {
		fail(m, FAIL_NORMAL, "cannot queue SUBSCRIBE");
		return;
	}
	m->sub_id = pkt.u.sub.id;
	if (put_status(m, "online") != 0)
		fail(m, FAIL_NORMAL, "cannot queue the online status");
}

static void
on_puback(struct mqtt *m, uint16_t id)
{
	struct spool_msg *q;

	if (id == m->sys_id) {
		m->sys_id = 0;
		if (m->state == MQTT_ST_STOPPING && !m->disconnect_sent) {
			struct mqtt_pkt pkt;

			memset(&pkt, 0, sizeof(pkt));
			pkt.type = MQTT_DISCONNECT;
			if (put_pkt(m, &pkt) == 0)
				m->disconnect_sent = 1;
		}
		return;
	}
	for (q = spool_first(m->q); q != NULL && q->pkid != 0;
	    q = spool_next(m->q, q)) {
		if (q->pkid == id) {
			spool_done(m->q, q);
			m->inflight--;
			m->st.acked++;
			return;
		}
	}
	m->st.unknown_acks++;
	log_info_rl(&m->rl_ack, "mqtt broker %s: PUBACK for packet id %u, "
	    "which is not in flight: ignored (%" PRIu64 " so far)", m->broker,
	    id, m->st.unknown_acks);
}

static void
on_publish(struct mqtt *m, const struct mqtt_publish *p)
{
	struct mqtt_pkt ack;

	if (p->qos > 1) {
		fail(m, FAIL_NORMAL, "protocol error: QoS 2 PUBLISH on a QoS "
		    "1 subscription");
		return;
	}
	m->st.received++;
	if (p->qos == 1) {
		/* In arrival order (MQTT-4.6.0-2), even if ignored. */
		memset(&ack, 0, sizeof(ack));
		ack.type = MQTT_PUBACK;
		ack.u.ack.id = p->id;
		if (put_pkt(m, &ack) != 0) {
			fail(m, FAIL_NORMAL, "cannot queue PUBACK");
			return;
		}
	}
	if (p->topic.len != strlen(m->cmd_topic) ||
	    memcmp(p->topic.p, m->cmd_topic, p->topic.len) != 0) {
		log_info("mqtt broker %s: message on a topic not subscribed "
		    "to (%zu bytes): ignored", m->broker, p->topic.len);
		return;
	}
	if (m->cb != NULL)
		m->cb(m->cb_arg, m->cmd_topic, p->payload.p, p->payload.len);
}

static void
handle(struct mqtt *m, const uint8_t *p, size_t len)
{
	struct mqtt_pkt pkt;
	char hex[3 * 8 + 1];
	size_t i;

	if (mqtt_decode(p, len, &pkt) != 0) {
		for (i = 0; i < len && i < 8; i++)
			snprintf(hex + 3 * i, 4, "%02x ", p[i]);
		hex[i > 0 ? 3 * i - 1 : 0] = '\0';
		fail(m, FAIL_NORMAL, "protocol error: malformed %s (%zu bytes: "
		    "%s%s)", type_name(p[0] >> 4), len, hex,
		    len > 8 ? " ..." : "");
		return;
	}
	if (!m->connack_ok && pkt.type != MQTT_CONNACK) {
		fail(m, FAIL_NORMAL, "protocol error: %s before CONNACK",
		    type_name(pkt.type));
		return;
	}
	switch (pkt.type) {
	case MQTT_CONNACK:
		if (m->connack_ok) {
			fail(m, FAIL_NORMAL, "protocol error: second CONNACK");
			return;
		}
		on_connack(m, &pkt.u.connack);
		break;
	case MQTT_PUBLISH:
		on_publish(m, &pkt.u.publish);
		break;
	case MQTT_PUBACK:
		on_puback(m, pkt.u.ack.id);
		break;
	case MQTT_SUBACK:
		if (pkt.u.suback.id != m->sub_id || m->sub_id == 0) {
			fail(m, FAIL_NORMAL, "protocol error: SUBACK for "
			    "packet id %u, not requested", pkt.u.suback.id);
			return;
		}
		m->sub_id = 0;
		if (pkt.u.suback.count != 1) {
			fail(m, FAIL_NORMAL, "protocol error: SUBACK with %zu "
			    "codes for 1 filter", pkt.u.suback.count);
			return;
		}
		/* A refusal keeps the session (telemetry still flows); it
		 * is counted for mqttlink's status and retried at the next
		 * connect. */
		if (pkt.u.suback.codes[0] == MQTT_SUBACK_FAILURE) {
			m->st.suback_refused++;
			log_warn("mqtt broker %s: subscription to %s refused "
			    "(SUBACK 0x80): no command can arrive; check the "
			    "broker's ACL (read access to that topic)",
			    m->broker, m->cmd_topic);
		} else {
			m->st.suback_granted++;
			log_debug("mqtt broker %s: subscribed to %s (QoS %u)",
			    m->broker, m->cmd_topic, pkt.u.suback.codes[0]);
		}
		break;
	case MQTT_PINGRESP:
		m->ping_sent = 0;
		break;
	default:
		fail(m, FAIL_NORMAL, "protocol error: unexpected %s from the "
		    "broker", type_name(pkt.type));
		break;
	}
}

/* Handles every whole packet buffered. */
static void
process(struct mqtt *m)
{
	size_t plen;
	int r;

	while (!m->failed && buf_len(m->from_broker) > 0) {
		/* Room for the PUBACK a PUBLISH may need, and more. */
		if (buf_room(m->to_broker) < 64)
			return;
		r = mqtt_frame(buf_data(m->from_broker),
		    buf_len(m->from_broker), MQTT_MAX_INBOUND, &plen);
		if (r == RT_ERR_AGAIN)
			return;
		if (r == RT_ERR_TOOBIG) {
			fail(m, FAIL_NORMAL, "protocol error: %s packet "
			    "larger than the %d byte limit",
			    type_name(buf_data(m->from_broker)[0] >> 4),
			    MQTT_MAX_INBOUND);
			return;
		}
		if (r != 0) {
			fail(m, FAIL_NORMAL, "protocol error: malformed fixed "
			    "header (%02x ...)", buf_data(m->from_broker)[0]);
			return;
		}
		handle(m, buf_data(m->from_broker), plen);
		buf_consume(m->from_broker, plen);
	}
	if (buf_len(m->from_broker) == 0)
		buf_shrink(m->from_broker);
}

static void
do_read(struct mqtt *m)
{
	uint8_t *p;
	size_t avail;
	ssize_t n;
	int i;

	m->read_want = TLS_WANT_READ;
	for (i = 0; i < MQTT_READS_PER_PASS && !m->failed; i++) {
		process(m);
		if (m->failed || buf_room(m->to_broker) < 64)
			return;
		if (buf_room(m->from_broker) == 0)
			return;	/* cannot happen: frame checks the limit */
		if (buf_reserve(m->from_broker, MQTT_READ_CHUNK, &p,
		    &avail) != 0) {
			fail(m, FAIL_NORMAL, "out of memory");
			return;
		}
		n = tls_read(m->tls, p, RT_MIN(avail, MQTT_READ_CHUNK));
		if (n == RT_ERR_AGAIN) {
			m->read_want = tls_want(m->tls);
			return;
		}
		if (n == RT_ERR_EOF) {
			fail(m, FAIL_NORMAL, "the broker closed the connection");
			return;
		}
		if (n < 0) {
			fail(m, FAIL_NORMAL, "read: %s", n == RT_ERR_TLS ?
			    tls_error(m->tls) : rt_strerror_errno((int)n));
			return;
		}
		buf_commit(m->from_broker, (size_t)n);
		m->last_rx = loop_now(m->loop);
	}
	process(m);
}

/*
 * The connection pump: handshake, then write / read / fill / write.
 */

static void
kick_cb(struct loop *loop, void *arg)
{
	struct mqtt *m = arg;

	(void)loop;
	m->kick_t = NULL;
	pump(m);
}

static void
kick(struct mqtt *m)
{
	later(m, &m->kick_t, kick_cb);
}

static void
set_events(struct mqtt *m)
{
	unsigned int ev = 0;

	if (m->w == NULL || m->failed)
		return;
	if (buf_room(m->to_broker) >= 64)
		ev |= m->read_want ? m->read_want : LOOP_READ;
	if (buf_len(m->to_broker) > 0)
		ev |= m->write_want ? m->write_want : LOOP_WRITE;
	loop_watch_set(m->w, ev);
}

static void
pump(struct mqtt *m)
{
	int r;

	if (m->tls == NULL || m->failed)
		return;
	if (!m->tls_done) {
		r = tls_handshake(m->tls);
		if (r == RT_ERR_AGAIN) {
			loop_watch_set(m->w, tls_want(m->tls));
			return;
		}
		if (r != 0) {
			fail(m, FAIL_NORMAL, "TLS handshake: %s%s",
			    r == RT_ERR_VERIFY ? "broker certificate refused: " :
			    "", r == RT_ERR_EOF ? "connection closed" :
			    tls_error(m->tls));
			return;
		}
		m->tls_done = 1;
		log_debug("mqtt broker %s: %s %s", m->broker,
		    tls_version(m->tls), tls_cipher(m->tls));
		m->last_rx = loop_now(m->loop);
		if (put_connect(m) != 0) {
			fail(m, FAIL_NORMAL, "cannot encode CONNECT (client id "
			    "or user name invalid)");
			return;
		}
	}
	do_write(m);
	do_read(m);
	fill(m);
	do_write(m);
	if (m->state == MQTT_ST_STOPPING && m->disconnect_sent &&
	    buf_len(m->to_broker) == 0 && !m->failed) {
		(void)tls_shutdown(m->tls);
		log_info("mqtt broker %s: disconnected", m->broker);
		teardown_later(m);
		return;
	}
	/* OpenSSL may hold decrypted bytes the socket will not signal. */
	if (!m->failed && tls_pending(m->tls) > 0)
		kick(m);
	set_events(m);
}

static void
on_io(struct loop *loop, int fd, unsigned int events, void *arg)
{
	struct mqtt *m = arg;

	(void)loop;
	(void)fd;
	(void)events;
	pump(m);
}

/*
 * Connecting
 */

static void
connect_deadline(struct loop *loop, void *arg)
{
	struct mqtt *m = arg;

	(void)loop;
	m->timer = NULL;
	fail(m, FAIL_NORMAL, "no connection within %lld s (%s)",
	    (long long)(m->connect_timeout_ms / 1000),
	    m->nc != NULL ? "name lookup or TCP connect" :
	    !m->tls_done ? "TLS handshake" : "waiting for CONNACK");
}

static void
on_connected(int fd, int err, const char *msg, void *arg)
{
	struct mqtt *m = arg;
	const char *name;
	int r;

	m->nc = NULL;
	if (fd < 0) {
		fail(m, FAIL_NORMAL, "%s (%s)", msg != NULL ? msg :
		    "connect failed", rt_strerror(err));
		return;
	}
	m->fd = fd;
	(void)net_set_nodelay(fd);
	if (m->keepalive_ms > 0)
		(void)net_set_user_timeout(fd,
		    (unsigned int)(m->keepalive_ms * 3 / 2));
	name = m->server_name[0] != '\0' ? m->server_name : m->host[m->idx];
	if ((r = tls_conn_new(m->ctx, fd, 0, name, &m->tls)) != 0) {
		fail(m, FAIL_NORMAL, "TLS: %s", rt_strerror(r));
		return;
	}
	if (loop_watch_add(m->loop, fd, LOOP_READ | LOOP_WRITE, on_io, m,
	    &m->w) != 0) {
		fail(m, FAIL_NORMAL, "cannot watch the socket");
		return;
	}
	pump(m);
}

static void
attempt(struct loop *loop, void *arg)
{
	struct mqtt *m = arg;

	(void)loop;
	m->timer = NULL;
	if (m->state != MQTT_ST_WAIT)
		return;
	m->state = MQTT_ST_CONNECTING;
	m->st.attempts++;
	snprintf(m->broker, sizeof(m->broker), "%s:%s", m->host[m->idx],
	    m->port[m->idx]);
	log_info("mqtt broker %s: connecting", m->broker);
	/* The dial first: its lookup bound (at most connect_timeout) then
	 * fires before the deadline and names the slow resolver. */
	if (net_connect_start(m->loop, m->host[m->idx], m->port[m->idx],
	    AF_UNSPEC, m->connect_timeout_ms, on_connected, m, &m->nc) != 0 ||
	    loop_timer_add(m->loop, m->connect_timeout_ms, connect_deadline,
	    m, &m->timer) != 0) {
		fail(m, FAIL_NORMAL, "out of memory");
		return;
	}
}

/*
 * Keepalive, spool sync and stop deadline
 */

static void
tick(struct loop *loop, void *arg)
{
	struct mqtt *m = arg;
	int64_t now = loop_now(loop);
	struct mqtt_pkt pkt;

	m->tick = NULL;
	if (m->state == MQTT_ST_STOPPED)
		return;
	if (spool_dirty(m->q))
		(void)spool_sync(m->q);
	if (m->state == MQTT_ST_WAIT && m->timer == NULL)
		schedule(m, next_backoff(m));
	if (m->connack_ok && !m->failed && m->keepalive_ms > 0) {
		if (now - m->last_rx >= m->keepalive_ms * 3 / 2) {
			fail(m, FAIL_NORMAL, "nothing received for %lld s "
			    "(keepalive %u s): broker presumed dead",
			    (long long)((now - m->last_rx) / 1000),
			    m->keepalive_s);
		} else if (m->ping_sent == 0 &&
		    (now - m->last_tx >= m->keepalive_ms - MQTT_TICK_MS ||
		    now - m->last_rx >= m->keepalive_ms - MQTT_TICK_MS)) {
			memset(&pkt, 0, sizeof(pkt));
			pkt.type = MQTT_PINGREQ;
			if (put_pkt(m, &pkt) == 0) {
				m->ping_sent = now;
				kick(m);
			}
		}
	}
	if (loop_timer_add(loop, MQTT_TICK_MS, tick, m, &m->tick) != 0)
		m->tick = NULL;
}

/*
 * Graceful stop
 */

static void
done_cb(struct loop *loop, void *arg)
{
	struct mqtt *m = arg;

	(void)loop;
	m->done_t = NULL;
	if (m->done != NULL) {
		mqtt_done_cb d = m->done;

		m->done = NULL;
		d(m->done_arg);
	}
}

static void
finish_stop(struct mqtt *m)
{
	if (m->state == MQTT_ST_STOPPED)
		return;
	close_conn(m);
	loop_timer_cancel(m->tick);
	m->tick = NULL;
	(void)spool_sync(m->q);
	m->state = MQTT_ST_STOPPED;
	if (m->done != NULL)
		later(m, &m->done_t, done_cb);
}

static void
stop_deadline(struct loop *loop, void *arg)
{
	struct mqtt *m = arg;
	struct mqtt_pkt pkt;

	(void)loop;
	m->timer = NULL;
	if (m->tls != NULL && !m->failed) {
		log_warn("mqtt broker %s: offline status not acknowledged in "
		    "time; disconnecting", m->broker);
		if (!m->disconnect_sent) {
			memset(&pkt, 0, sizeof(pkt));
			pkt.type = MQTT_DISCONNECT;
			if (put_pkt(m, &pkt) == 0)
				m->disconnect_sent = 1;
			do_write(m);	/* best effort, non-blocking */
		}
	}
	finish_stop(m);
}

int
mqtt_stop(struct mqtt *m, int64_t timeout_ms, mqtt_done_cb done, void *arg)
{
	if (m == NULL)
		return RT_ERR_INVAL;
	if (m->state == MQTT_ST_STOPPING || m->state == MQTT_ST_STOPPED)
		return RT_ERR_CLOSED;
	m->done = done;
	m->done_arg = arg;
	if (m->state == MQTT_ST_UP && !m->failed) {
		m->state = MQTT_ST_STOPPING;
		loop_timer_cancel(m->timer);
		m->timer = NULL;
		/* A birth still unacknowledged is superseded. */
		m->sys_id = 0;
		if (put_status(m, "offline") == 0 &&
		    loop_timer_add(m->loop, timeout_ms, stop_deadline, m,
		    &m->timer) == 0) {
			log_info("mqtt broker %s: stopping: offline status "
			    "published", m->broker);
			kick(m);
			return 0;
		}
	}
	/* Not connected (or the stop publish could not be queued): close
	 * from the loop, never inside a caller that may be our callback. */
	m->state = MQTT_ST_STOPPING;
	teardown_later(m);
	return 0;
}

/*
 * Creation
 */

static int
read_password(struct mqtt *m, const char *path, char *err, size_t errlen)
{
	uint8_t buf[MQTT_PASSWORD_MAX + 2];
	size_t len = 0;
	ssize_t n;
	int fd, r;

	if ((r = cfgu_check_key_perms(path, err, errlen)) != 0) {
		/* Reword cfgutil's "key ..." for this file. */
		char tmp[256];

		rt_strlcpy(tmp, err, sizeof(tmp));
		snprintf(err, errlen, "password_file: %s", tmp);
		return r;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		snprintf(err, errlen, "password_file %s: %s", path,
		    strerror(errno));
		return RT_ERR_CONFIG;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len > MQTT_PASSWORD_MAX) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen, "password_file %s: longer than %d bytes",
		    path, MQTT_PASSWORD_MAX);
		return RT_ERR_CONFIG;
	}
	if ((m->password = malloc(len + 1)) == NULL) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return RT_ERR_NOMEM;
	}
	memcpy(m->password, buf, len);
	m->password_len = len;
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

static int
dup_into(char **dst, const char *s)
{
	return (*dst = strdup(s != NULL ? s : "")) == NULL ? RT_ERR_NOMEM : 0;
}

static int
make_topic(const char *prefix, const char *agent, const char *leaf,
    char **out)
{
	size_t n = strlen(prefix) + strlen(agent) + strlen(leaf) + 3;

	if ((*out = malloc(n)) == NULL)
		return RT_ERR_NOMEM;
	snprintf(*out, n, "%s/%s/%s", prefix, agent, leaf);
	return 0;
}

int
mqtt_new(struct loop *loop, const struct agent_mqtt_config *cfg,
    const char *agent_id, mqtt_msg_cb cb, void *arg, struct mqtt **out,
    char *err, size_t errlen)
{
	struct mqtt *m = NULL;
	struct tls_config tc;
	struct spool_config sc;
	struct stat st;
	char errbuf[512];
	size_t i;
	int r;

	if (out != NULL)
		*out = NULL;
	if (err == NULL || errlen == 0) {
		err = errbuf;
		errlen = sizeof(errbuf);
	}
	err[0] = '\0';
	if (loop == NULL || cfg == NULL || out == NULL || agent_id == NULL ||
	    cfg->nbrokers == 0 || cfg->nbrokers > AGENT_MQTT_MAX_BROKERS ||
	    cfg->inflight == 0 || cfg->tls_ca == NULL ||
	    cfg->tls_ca[0] == '\0') {
		snprintf(err, errlen, "mqtt: incomplete configuration");
		return RT_ERR_INVAL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return RT_ERR_NOMEM;
	m->loop = loop;
	m->fd = -1;
	m->cb = cb;
	m->cb_arg = arg;
	m->next_id = 1;
	m->st.last_connack = -1;
	m->backoff_ms = MQTT_BACKOFF_INITIAL_MS;
	m->nbrokers = cfg->nbrokers;
	for (i = 0; i < cfg->nbrokers; i++)
		if ((r = dup_into(&m->host[i], cfg->broker_host[i])) != 0 ||
		    (r = dup_into(&m->port[i], cfg->broker_port[i])) != 0)
			goto out;
	if ((r = dup_into(&m->server_name, cfg->tls_server_name)) != 0 ||
	    (r = dup_into(&m->agent_id, agent_id)) != 0 ||
	    (r = dup_into(&m->client_id, cfg->client_id != NULL &&
	    cfg->client_id[0] != '\0' ? cfg->client_id : agent_id)) != 0 ||
	    (r = dup_into(&m->prefix, cfg->topic_prefix)) != 0 ||
	    (r = dup_into(&m->username, cfg->username)) != 0 ||
	    (r = make_topic(m->prefix, agent_id, "status",
	    &m->status_topic)) != 0 ||
	    (r = make_topic(m->prefix, agent_id, "cmd", &m->cmd_topic)) != 0)
		goto out;
	if (mqtt_topic_check((const uint8_t *)m->status_topic,
	    strlen(m->status_topic)) != 0) {
		snprintf(err, errlen, "mqtt: topic %s is not a valid topic "
		    "name", m->status_topic);
		r = RT_ERR_CONFIG;
		goto out;
	}
	m->keepalive_ms = cfg->keepalive_ms;
	m->keepalive_s = (uint16_t)RT_MIN(cfg->keepalive_ms / 1000, 65535);
	m->clean_session = cfg->clean_session;
	m->inflight_max = cfg->inflight;
	m->connect_timeout_ms = cfg->connect_timeout_ms > 0 ?
	    cfg->connect_timeout_ms : 20000;
	m->backoff_max_ms = RT_MAX(cfg->backoff_max_ms,
	    MQTT_BACKOFF_INITIAL_MS);

	if (cfg->password_file != NULL && cfg->password_file[0] != '\0') {
		if (m->username[0] == '\0') {
			snprintf(err, errlen, "mqtt: password_file needs a "
			    "username (MQTT-3.1.2-22)");
			r = RT_ERR_CONFIG;
			goto out;
		}
		if ((r = read_password(m, cfg->password_file, err,
		    errlen)) != 0)
			goto out;
	}

	memset(&tc, 0, sizeof(tc));
	if (stat(cfg->tls_ca, &st) == 0 && S_ISDIR(st.st_mode))
		tc.ca_dir = cfg->tls_ca;
	else
		tc.ca_file = cfg->tls_ca;
	if (cfg->tls_cert != NULL && cfg->tls_cert[0] != '\0') {
		tc.cert_file = cfg->tls_cert;
		tc.key_file = cfg->tls_key;
	}
	tc.min_version = cfg->tls_min_version;
	if ((r = tls_ctx_new(&tc, 0, &m->ctx, err, errlen)) != 0)
		goto out;

	memset(&sc, 0, sizeof(sc));
	sc.max_msgs = cfg->queue_max_messages;
	sc.max_bytes = cfg->queue_max_bytes;
	sc.dir = cfg->spool_dir;
	sc.max_disk_bytes = cfg->spool_max_bytes;
	if ((r = spool_open(&sc, &m->q, err, errlen)) != 0)
		goto out;
	if ((m->to_broker = buf_new(MQTT_TO_BROKER_MAX)) == NULL ||
	    (m->from_broker = buf_new(MQTT_MAX_INBOUND)) == NULL) {
		r = RT_ERR_NOMEM;
		goto out;
	}
	*out = m;
	m = NULL;
	r = 0;
 out:
	if (r == RT_ERR_NOMEM && err[0] == '\0')
		snprintf(err, errlen, "mqtt: out of memory");
	mqtt_free(m);
	return r;
}

int
mqtt_start(struct mqtt *m)
{
	if (m == NULL || m->state != MQTT_ST_IDLE)
		return RT_ERR_INVAL;
	if (loop_timer_add(m->loop, MQTT_TICK_MS, tick, m, &m->tick) != 0)
		return RT_ERR_NOMEM;
	schedule(m, 0);
	return 0;
}

int
mqtt_publish(struct mqtt *m, const char *topic, const void *payload,
    size_t len, int qos, int retain)
{
	int r;

	if (m == NULL)
		return RT_ERR_INVAL;
	if (m->state == MQTT_ST_STOPPING || m->state == MQTT_ST_STOPPED)
		return RT_ERR_CLOSED;
	if ((r = spool_push(m->q, topic, payload, len, qos, retain)) != 0)
		return r;
	if (m->state == MQTT_ST_UP)
		kick(m);
	return 0;
}

int
mqtt_topic(const struct mqtt *m, const char *leaf, char *buf, size_t len)
{
	int n;

	if (m == NULL || leaf == NULL || buf == NULL || len == 0)
		return RT_ERR_INVAL;
	n = snprintf(buf, len, "%s/%s/%s", m->prefix, m->agent_id, leaf);
	return n < 0 || (size_t)n >= len ? RT_ERR_TOOBIG : 0;
}

void
mqtt_stats(const struct mqtt *m, struct mqtt_stats *st)
{
	struct spool_stats ss;

	memset(st, 0, sizeof(*st));
	if (m == NULL)
		return;
	*st = m->st;
	st->state = m->state;
	st->broker = m->broker;
	st->inflight = m->inflight;
	spool_stats(m->q, &ss);
	st->queued = ss.count;
	st->queued_bytes = ss.bytes;
	st->dropped = ss.dropped;
	st->spool_corrupt = ss.corrupt + ss.torn;
	st->spool_write_errors = ss.write_errors;
}

void
mqtt_free(struct mqtt *m)
{
	size_t i;

	if (m == NULL)
		return;
	close_conn(m);
	loop_timer_cancel(m->tick);
	loop_timer_cancel(m->kick_t);
	loop_timer_cancel(m->reap_t);
	loop_timer_cancel(m->done_t);
	spool_close(m->q);
	tls_ctx_free(m->ctx);
	buf_free(m->to_broker);
	buf_free(m->from_broker);
	if (m->password != NULL) {
		OPENSSL_cleanse(m->password, m->password_len);
		free(m->password);
	}
	for (i = 0; i < AGENT_MQTT_MAX_BROKERS; i++) {
		free(m->host[i]);
		free(m->port[i]);
	}
	free(m->server_name);
	free(m->agent_id);
	free(m->client_id);
	free(m->prefix);
	free(m->username);
	free(m->status_topic);
	free(m->cmd_topic);
	free(m);
}
