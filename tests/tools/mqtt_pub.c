/*
 * mqtt_pub.c - test tool: drives agent/mqtt.c and its spool on a loop.
 * Publishes a numbered stream "seq=N" (N = start, start+1, ...) at a given
 * rate to one topic, then waits until every message is acknowledged,
 * stops gracefully (offline status, DISCONNECT) and exits 0. TERM / INT
 * stop gracefully at once (what is unacknowledged stays in the spool).
 *
 * usage: mqtt_pub -b HOST:PORT [-b ...] --ca FILE [--cert F --key F]
 *        [-u USER -P PASSFILE] [-i AGENT] [-t TOPIC] [-n COUNT] [-r RATE]
 *        [-s SPOOLDIR] [-q QOS] [-k KEEPALIVE_S] [-B BACKOFF_MAX_S]
 *        [-S START] [-c] [-w INFLIGHT] [-m QUEUE_MAX] [-p PREFIX] [-d]
 * The counters are printed on exit:
 *   mqtt_pub: done published=.. acked=.. resent=.. unknown_acks=.. ...
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "agent_config.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "util.h"

struct pub {
	struct loop	*loop;
	struct mqtt	*m;
	char		 topic[512];
	unsigned long	 next, end;	/* next seq, one past the last */
	int64_t		 interval_ms;
	int		 qos;
	int		 stopping;
	int		 rc;
	struct loop_timer *timer;
};

static void
usage(void)
{
	fprintf(stderr, "usage: mqtt_pub -b HOST:PORT [-b ...] --ca FILE "
	    "[--cert F --key F] [-u USER -P PASSFILE] [-i AGENT] [-t TOPIC] "
	    "[-n COUNT] [-r RATE] [-s SPOOLDIR] [-q QOS] [-k KEEPALIVE_S] "
	    "[-B BACKOFF_MAX_S] [-S START] [-c] [-w INFLIGHT] [-m QUEUE_MAX] "
	    "[-d]\n");
	exit(64);
}

static void
print_stats(struct pub *p)
{
	struct mqtt_stats st;

	mqtt_stats(p->m, &st);
	printf("mqtt_pub: done published=%llu acked=%llu resent=%llu "
	    "unknown_acks=%llu dropped=%llu queued=%zu attempts=%llu "
	    "connects=%llu corrupt=%llu\n",
	    (unsigned long long)st.published, (unsigned long long)st.acked,
	    (unsigned long long)st.resent,
	    (unsigned long long)st.unknown_acks,
	    (unsigned long long)st.dropped, st.queued,
	    (unsigned long long)st.attempts, (unsigned long long)st.connects,
	    (unsigned long long)st.spool_corrupt);
	fflush(stdout);
}

static void
stopped(void *arg)
{
	struct pub *p = arg;

	loop_stop(p->loop);
}

static void
stop(struct pub *p)
{
	if (p->stopping)
		return;
	p->stopping = 1;
	loop_timer_cancel(p->timer);
	p->timer = NULL;
	if (mqtt_stop(p->m, 5000, stopped, p) != 0)
		loop_stop(p->loop);
}

static void
step(struct loop *loop, void *arg)
{
	struct pub *p = arg;
	struct mqtt_stats st;
	char payload[64];
	int n, r;

	p->timer = NULL;
	if (p->next < p->end) {
		n = snprintf(payload, sizeof(payload), "seq=%lu", p->next);
		r = mqtt_publish(p->m, p->topic, payload, (size_t)n, p->qos,
		    0);
		if (r != 0 && r != RT_ERR_FULL) {
			fprintf(stderr, "mqtt_pub: publish: %s\n",
			    rt_strerror(r));
			p->rc = 1;
			stop(p);
			return;
		}
		p->next++;
		if (p->next == p->end)
			log_info("mqtt_pub: all messages queued (last seq=%lu)",
			    p->end - 1);
	} else {
		mqtt_stats(p->m, &st);
		if (st.queued == 0 && st.state == MQTT_ST_UP) {
			log_info("mqtt_pub: every message acknowledged");
			stop(p);
			return;
		}
	}
	if (loop_timer_add(loop, p->next < p->end ? p->interval_ms : 50,
	    step, p, &p->timer) != 0) {
		p->rc = 1;
		stop(p);
	}
}

static void
on_signal(struct loop *loop, int signo, void *arg)
{
	struct pub *p = arg;

	(void)loop;
	log_info("mqtt_pub: signal %d: stopping", signo);
	stop(p);
}

static void
on_msg(void *arg, const char *topic, const uint8_t *payload, size_t len)
{
	(void)arg;
	log_info("mqtt_pub: message on %s (%zu bytes)", topic, len);
	(void)payload;
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "ca", required_argument, NULL, 1 },
		{ "cert", required_argument, NULL, 2 },
		{ "key", required_argument, NULL, 3 },
		{ "server-name", required_argument, NULL, 4 },
		{ "tls13", no_argument, NULL, 5 },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_mqtt_config c;
	struct pub p;
	char err[512], *colon;
	const char *agent = "gw-17", *topic = NULL;
	unsigned long count = 10, start = 1;
	double rate = 100;
	int ch, r, debug = 0;

	memset(&c, 0, sizeof(c));
	memset(&p, 0, sizeof(p));
	c.enable = 1;
	c.topic_prefix = "revtun";
	c.client_id = "";
	c.username = "";
	c.password_file = "";
	c.tls_ca = c.tls_cert = c.tls_key = c.tls_server_name = "";
	c.tls_min_version = TLS1_2_VERSION;
	c.keepalive_ms = 30000;
	c.qos = 1;
	c.inflight = 20;
	c.queue_max_messages = 10000;
	c.queue_max_bytes = 4 << 20;
	c.spool_dir = "";
	c.spool_max_bytes = 64 << 20;
	c.connect_timeout_ms = 20000;
	c.backoff_max_ms = 60000;

	while ((ch = getopt_long(argc, argv, "b:u:P:i:t:n:r:s:q:k:B:S:cw:m:p:d",
	    lopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			if (c.nbrokers == AGENT_MQTT_MAX_BROKERS ||
			    (colon = strrchr(optarg, ':')) == NULL)
				usage();
			*colon = '\0';
			c.broker_host[c.nbrokers] = optarg;
			c.broker_port[c.nbrokers++] = colon + 1;
			break;
		case 1: c.tls_ca = optarg; break;
		case 2: c.tls_cert = optarg; break;
		case 3: c.tls_key = optarg; break;
		case 4: c.tls_server_name = optarg; break;
		case 5: c.tls_min_version = TLS1_3_VERSION; break;
		case 'u': c.username = optarg; break;
		case 'P': c.password_file = optarg; break;
		case 'i': agent = optarg; break;
		case 't': topic = optarg; break;
		case 'n': count = strtoul(optarg, NULL, 10); break;
		case 'r': rate = strtod(optarg, NULL); break;
		case 's': c.spool_dir = optarg; break;
		case 'q': c.qos = atoi(optarg); break;
		case 'k': c.keepalive_ms = atoll(optarg) * 1000; break;
		case 'B': c.backoff_max_ms = atoll(optarg) * 1000; break;
		case 'S': start = strtoul(optarg, NULL, 10); break;
		case 'c': c.clean_session = 1; break;
		case 'w': c.inflight = (unsigned int)atoi(optarg); break;
		case 'm': c.queue_max_messages = strtoul(optarg, NULL, 10);
			break;
		case 'p': c.topic_prefix = optarg; break;
		case 'd': debug = 1; break;
		default: usage();
		}
	}
	if (c.nbrokers == 0 || c.tls_ca[0] == '\0' || rate <= 0)
		usage();
	log_init("mqtt_pub", 0, debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if ((r = loop_new(&p.loop)) != 0) {
		fprintf(stderr, "mqtt_pub: loop: %s\n", rt_strerror(r));
		return 1;
	}
	if ((r = mqtt_new(p.loop, &c, agent, on_msg, &p, &p.m, err,
	    sizeof(err))) != 0) {
		fprintf(stderr, "mqtt_pub: %s (%s)\n", err, rt_strerror(r));
		loop_free(p.loop);
		return 78;
	}
	if (topic != NULL)
		rt_strlcpy(p.topic, topic, sizeof(p.topic));
	else
		(void)mqtt_topic(p.m, "telemetry", p.topic, sizeof(p.topic));
	p.qos = c.qos;
	p.next = start;
	p.end = start + count;
	p.interval_ms = (int64_t)(1000.0 / rate);
	if (loop_signal_add(p.loop, SIGTERM, on_signal, &p) != 0 ||
	    loop_signal_add(p.loop, SIGINT, on_signal, &p) != 0 ||
	    mqtt_start(p.m) != 0 ||
	    loop_timer_add(p.loop, 0, step, &p, &p.timer) != 0) {
		fprintf(stderr, "mqtt_pub: start failed\n");
		p.rc = 1;
	} else
		(void)loop_run(p.loop);
	print_stats(&p);
	mqtt_free(p.m);
	loop_free(p.loop);
	return p.rc;
}
