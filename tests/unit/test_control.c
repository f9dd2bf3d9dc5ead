/*
 * test_control.c - unit tests of the control service's pure parts: the
 * log ring and its followers (agent/logring.c), the config store
 * (agent/cfgstore.c: atomic install, last-good, restore) and the config
 * text helpers of agent/control.c (redaction, `config set`), checked
 * against the real parser, and its queue of events for the relay.
 */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "agent_config.h"
#include "cfgstore.h"
#include "control.h"
#include "err.h"
#include "logring.h"
#include "runner.h"

int suite_control(void);

static int notified;

static void
count_notify(void *arg)
{
	(void)arg;
	notified++;
}

static void
test_logring(void)
{
	struct logring *lr;
	struct logring_follower *f;
	char *snap, line[64], big[LOG_LINE_MAX];
	const uint8_t *p;
	size_t len;
	int i;

	CU_ASSERT_EQUAL(logring_new(0, &lr), RT_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(logring_new(3, &lr), 0);
	for (i = 0; i < 5; i++) {
		snprintf(line, sizeof(line), "line %d", i);
		logring_add(lr, LOG_LVL_INFO, line);
	}
	CU_ASSERT_EQUAL(logring_count(lr), 3);
	CU_ASSERT_EQUAL_FATAL(logring_snapshot(lr, &snap, &len), 0);
	CU_ASSERT_PTR_NULL(strstr(snap, "line 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(snap, "info: line 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(snap, "info: line 4\n"));
	CU_ASSERT_TRUE(strstr(snap, "line 2") < strstr(snap, "line 4"));
	CU_ASSERT_EQUAL(strlen(snap), len);
	free(snap);
	/* Shrinking keeps the newest. */
	CU_ASSERT_EQUAL(logring_resize(lr, 1), 0);
	CU_ASSERT_EQUAL(logring_count(lr), 1);
	CU_ASSERT_EQUAL_FATAL(logring_snapshot(lr, &snap, &len), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(snap, "line 4"));
	free(snap);
	CU_ASSERT_EQUAL(logring_resize(lr, 100), 0);

	/* A follower sees new lines; a slow one loses lines, then gets a
	 * marker, never blocks. */
	CU_ASSERT_EQUAL(logring_follow(lr, 10, NULL, NULL, &f), RT_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(logring_follow(lr, 4 * (LOG_LINE_MAX + 64),
	    count_notify, NULL, &f), 0);
	notified = 0;
	logring_add(lr, LOG_LVL_WARN, "hello");
	CU_ASSERT_EQUAL(notified, 1);
	p = logring_peek(f, &len);
	CU_ASSERT_TRUE(len > 0 && memmem(p, len, "warning: hello\n", 15) != NULL);
	logring_add(lr, LOG_LVL_INFO, "again");
	CU_ASSERT_EQUAL(notified, 1);	/* only on empty -> non-empty */
	logring_consume(f, logring_pending(f));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 10; i++)
		logring_add(lr, LOG_LVL_INFO, big);
	CU_ASSERT_TRUE(logring_dropped(f) >= 5);
	CU_ASSERT_TRUE(logring_pending(f) <= 4 * (LOG_LINE_MAX + 64));
	logring_consume(f, logring_pending(f));
	logring_add(lr, LOG_LVL_INFO, "after");
	p = logring_peek(f, &len);
	snprintf(line, sizeof(line), "[%llu lines dropped]\n",
	    (unsigned long long)logring_dropped(f));
	CU_ASSERT_TRUE(len > strlen(line) && memcmp(p, line,
	    strlen(line)) == 0);
	CU_ASSERT_PTR_NOT_NULL(memmem(p, len, "info: after\n", 12));
	logring_unfollow(f);
	logring_free(lr);
}

static void
test_cfgstore(void)
{
	char dir[] = "/tmp/rt-cfgstore-XXXXXX", path[256], lg[256], *t;
	struct stat st;
	size_t len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.conf", dir);
	CU_ASSERT_EQUAL(cfgstore_last_good_path(path, lg, sizeof(lg)), 0);
	CU_ASSERT_EQUAL(cfgstore_restore(path), RT_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(cfgstore_write_atomic(path, "one\n", 4, 0640), 0);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0640);
	CU_ASSERT_EQUAL(cfgstore_install(path, "one\n", "two\n", 4), 0);
	CU_ASSERT_EQUAL(cfgstore_read(path, 100, &t, &len), 0);
	CU_ASSERT_STRING_EQUAL(t, "two\n");
	free(t);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0640);	/* mode kept */
	CU_ASSERT_EQUAL(cfgstore_read(lg, 100, &t, &len), 0);
	CU_ASSERT_STRING_EQUAL(t, "one\n");
	free(t);
	/* NULL old text keeps the existing last-good. */
	CU_ASSERT_EQUAL(cfgstore_install(path, NULL, "three\n", 6), 0);
	CU_ASSERT_EQUAL(cfgstore_restore(path), 0);
	CU_ASSERT_EQUAL(cfgstore_read(path, 100, &t, &len), 0);
	CU_ASSERT_STRING_EQUAL(t, "one\n");
	free(t);
	CU_ASSERT_EQUAL(cfgstore_read(path, 2, &t, &len), RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(cfgstore_read(dir, 100, &t, &len), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(cfgstore_write_atomic(path, "a\0b", 3, 0600), 0);
	CU_ASSERT_EQUAL(cfgstore_read(path, 100, &t, &len), RT_ERR_INVAL);
	unlink(path);
	unlink(lg);
	CU_ASSERT_EQUAL(rmdir(dir), 0);	/* no temp file left behind */
}

static void
test_redact(void)
{
	static const char in[] =
	    "mqtt {\n"
	    "\tusername = \"gw\"\n"
	    "\tpassword = \"hunter2\"\n"
	    "\tpassword_file = \"/etc/revtun/mqtt.pw\"\n"
	    "  # api_secret = \"s3cr3t\"\n"
	    "\tTOKEN = {\"a\",\n\t\"b\"}\n"
	    "}\n"
	    "key = \"/etc/revtun/agent.key\"\n";
	char *out;

	CU_ASSERT_EQUAL_FATAL(control_redact(in, &out), 0);
	CU_ASSERT_PTR_NULL(strstr(out, "hunter2"));
	CU_ASSERT_PTR_NULL(strstr(out, "s3cr3t"));
	CU_ASSERT_PTR_NULL(strstr(out, "\"b\""));
	CU_ASSERT_PTR_NULL(strstr(out, "/etc/revtun/mqtt.pw"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "\tpassword = \"<redacted>\"\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "username = \"gw\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "key = \"/etc/revtun/agent.key\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "}\nkey"));
	free(out);
}

/* Applies KEY VALUE to text and returns the result (caller frees). */
static char *
set1(const char *text, const char *key, const char *value)
{
	char err[256], *out = NULL;

	if (control_config_set(text, key, value, &out, err, sizeof(err)) != 0)
		return NULL;
	return out;
}

static void
test_config_set(void)
{
	static const char base[] =
	    "relays = {\"127.0.0.1:1\",\n"
	    "\t\"127.0.0.1:2\"}\n"
	    "log_level = \"info\" # comment\n"
	    "limits {\n"
	    "\tmax_channels = 64\n"
	    "}\n"
	    "service hmi {\n"
	    "\tport = 80\n"
	    "\ttarget = \"10.0.0.5:80\"\n"
	    "}\n"
	    "service \"plc\" {\n"
	    "\tport = 502\n"
	    "}\n";
	char err[128], *o, *o2;

	o = set1(base, "limits.max_channels", "8");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_PTR_NOT_NULL(strstr(o, "limits {\n\tmax_channels = 8\n}\n"));
	free(o);
	o = set1(base, "service.hmi.target", "10.0.0.6:8080");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_PTR_NOT_NULL(strstr(o, "\ttarget = \"10.0.0.6:8080\"\n"));
	CU_ASSERT_PTR_NULL(strstr(o, "10.0.0.5"));
	free(o);
	/* Option missing in an existing section: added before the brace. */
	o = set1(base, "service.plc.target", "10.0.0.20:502");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_PTR_NOT_NULL(strstr(o, "\tport = 502\n"
	    "\ttarget = \"10.0.0.20:502\"\n}\n"));
	free(o);
	/* New section appended. */
	o = set1(base, "service.web.port", "8080");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	o2 = set1(o, "service.web.target", "127.0.0.1:8080");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o2);
	CU_ASSERT_PTR_NOT_NULL(strstr(o2, "service web {\n\tport = 8080\n"
	    "\ttarget = \"127.0.0.1:8080\"\n}\n"));
	free(o);
	free(o2);
	/* Nested: mqtt.tls.ca with no mqtt section. */
	o = set1(base, "mqtt.tls.ca", "/x/ca.pem");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_PTR_NOT_NULL(strstr(o, "mqtt {\n\ttls {\n\t\tca = "
	    "\"/x/ca.pem\"\n\t}\n}\n"));
	free(o);
	/* Multi-line list replaced as a whole; top level option. */
	o = set1(base, "relays", "{\"127.0.0.1:9\"}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_PTR_NOT_NULL(strstr(o, "relays = {\"127.0.0.1:9\"}\n"
	    "log_level"));
	CU_ASSERT_PTR_NULL(strstr(o, ":2\""));
	free(o);
	o = set1(base, "log_level", "de\"bug");
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	CU_ASSERT_PTR_NOT_NULL(strstr(o, "log_level = \"de\\\"bug\"\n"));
	free(o);
	/* Bad keys and values. */
	CU_ASSERT_EQUAL(control_config_set(base, "", "1", &o, err,
	    sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(control_config_set(base, "a..b", "1", &o, err,
	    sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(control_config_set(base, "service.hmi", "1", &o, err,
	    sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(control_config_set(base, "limits.x y", "1", &o, err,
	    sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(control_config_set(base, "log_level", "a\nb", &o, err,
	    sizeof(err)), RT_ERR_INVAL);
}

/* The control / shell options: defaults, and `service shell` needs
 * shell.enable. */
static void
test_control_options(void)
{
	static const char base[] =
	    "relays = {\"127.0.0.1:1\"}\n"
	    "tls {\n\tca = \"/nonexistent/ca\"\n\tcert = \"/nonexistent/c\"\n"
	    "\tkey = \"/nonexistent/k\"\n}\n";
	struct agent_config *cfg = NULL;
	struct cfgu_errors errs;
	char text[1024];
	unsigned int i;
	int found = 0;

	/* Files do not exist: expect only file errors, then look for ours. */
	snprintf(text, sizeof(text), "%sservice shell {\n\tport = 2200\n}\n"
	    "control {\n\tlog_lines = 5\n\trollback_timeout = \"0s\"\n"
	    "\tstate_dir = \"rel\"\n}\n", base);
	cfgu_errors_init(&errs);
	CU_ASSERT_TRUE(agent_config_load_buf(text, "t.conf", &cfg, &errs) < 0);
	for (i = 0; i < errs.n; i++)
		if (strstr(errs.msg[i], "shell.enable is false") != NULL ||
		    strstr(errs.msg[i], "log_lines") != NULL ||
		    strstr(errs.msg[i], "rollback_timeout") != NULL ||
		    strstr(errs.msg[i], "state_dir") != NULL)
			found++;
	CU_ASSERT_EQUAL(found, 4);
}

static char *
ev(unsigned int id, size_t pad)
{
	static char buf[CONTROL_EVENT_MAX + 64];
	char fill[CONTROL_EVENT_MAX + 1];

	memset(fill, 'x', pad);
	fill[pad] = '\0';
	snprintf(buf, sizeof(buf), "{\"id\":%u,\"event\":\"t\",\"p\":\"%s\"}",
	    id, fill);
	return buf;
}

/* The relay event queue: ids, bounds, acks, the state file. */
static void
test_evq(void)
{
	struct control_evq q, r;
	char *text, err[160];
	unsigned int i;
	int n;

	control_evq_init(&q);
	control_evq_init(&r);
	CU_ASSERT_EQUAL(q.next_id, 1);
	CU_ASSERT_EQUAL(control_evq_push(&q, ev(1, 0)), 0);
	CU_ASSERT_EQUAL(control_evq_push(&q, ev(2, 0)), 0);
	CU_ASSERT_EQUAL(q.n, 2);
	CU_ASSERT_EQUAL(q.next_id, 3);
	/* not an event, an old id, control characters, too long */
	CU_ASSERT_EQUAL(control_evq_push(&q, "{\"event\":\"t\"}"),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(control_evq_push(&q, ev(2, 0)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(control_evq_push(&q, "{\"id\":9,\"a\":\"\n\"}"),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(control_evq_push(&q, ev(9, CONTROL_EVENT_MAX)),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(q.n, 2);
	CU_ASSERT_EQUAL(q.next_id, 3);
	/* a gap is allowed (ids only increase) */
	CU_ASSERT_EQUAL(control_evq_push(&q, ev(5, 0)), 0);
	CU_ASSERT_EQUAL(q.next_id, 6);

	/* acks are cumulative; a repeated one changes nothing */
	CU_ASSERT_EQUAL(control_evq_ack(&q, 1), 1);
	CU_ASSERT_EQUAL(control_evq_ack(&q, 1), 0);
	CU_ASSERT_EQUAL(q.id[0], 2);
	CU_ASSERT_EQUAL(control_evq_ack(&q, 4), 1);
	CU_ASSERT_EQUAL(q.n, 1);
	CU_ASSERT_EQUAL(q.id[0], 5);

	/* the count bound drops the oldest */
	for (i = 6; i < 6 + CONTROL_EVQ_MAX; i++)
		CU_ASSERT_TRUE(control_evq_push(&q, ev(i, 0)) >= 0);
	CU_ASSERT_EQUAL(q.n, CONTROL_EVQ_MAX);
	CU_ASSERT_EQUAL(q.dropped, 1);
	CU_ASSERT_EQUAL(q.id[0], 6);
	/* the byte bound: big events push out several small ones */
	n = control_evq_push(&q, ev(100, 900));
	CU_ASSERT_EQUAL(n, 1);
	for (i = 101; i < 130; i++)
		CU_ASSERT_TRUE(control_evq_push(&q, ev(i, 900)) >= 0);
	CU_ASSERT_TRUE(q.bytes <= CONTROL_EVQ_BYTES);
	CU_ASSERT_TRUE(q.n < CONTROL_EVQ_MAX);
	CU_ASSERT_EQUAL(q.id[q.n - 1], 129);
	/* room for a worst-case event, as control_event() asks */
	control_evq_room(&q, CONTROL_EVENT_MAX - 1);
	CU_ASSERT_TRUE(q.bytes + CONTROL_EVENT_MAX - 1 <= CONTROL_EVQ_BYTES);

	/* the state file round trip */
	CU_ASSERT_EQUAL_FATAL(control_evq_format(&q, &text), 0);
	CU_ASSERT_EQUAL(strncmp(text, "revtun-events 1\nnext 130\ndropped ",
	    33), 0);
	CU_ASSERT_EQUAL(control_evq_parse(text, &r, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(r.n, q.n);
	CU_ASSERT_EQUAL(r.bytes, q.bytes);
	CU_ASSERT_EQUAL(r.next_id, 130);
	CU_ASSERT_EQUAL(r.dropped, q.dropped);
	for (i = 0; i < q.n && i < r.n; i++) {
		CU_ASSERT_EQUAL(r.id[i], q.id[i]);
		CU_ASSERT_STRING_EQUAL(r.json[i], q.json[i]);
	}
	free(text);

	/* damaged lines are skipped, the rest kept; next never goes back */
	CU_ASSERT_EQUAL(control_evq_parse("revtun-events 1\nnext 2\n"
	    "dropped 0\n{\"id\":3,\"a\":1}\ngarbage\n{\"id\":3,\"b\":1}\n"
	    "{\"id\":7}\n", &r, err, sizeof(err)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 5"));
	CU_ASSERT_EQUAL(r.n, 2);
	CU_ASSERT_EQUAL(r.id[1], 7);
	CU_ASSERT_EQUAL(r.next_id, 8);
	CU_ASSERT_EQUAL(control_evq_parse("revtun-events 1\nnext 40\n"
	    "dropped 3\n", &r, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(r.n, 0);
	CU_ASSERT_EQUAL(r.next_id, 40);
	CU_ASSERT_EQUAL(r.dropped, 3);
	/* not a queue at all */
	CU_ASSERT_EQUAL(control_evq_parse("{\"id\":1}\n", &r, err,
	    sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(r.n, 0);
	CU_ASSERT_EQUAL(control_evq_parse("", &r, err, sizeof(err)),
	    RT_ERR_INVAL);
	control_evq_clear(&q);
	control_evq_clear(&r);
	CU_ASSERT_EQUAL(q.n, 0);
}

int
suite_control(void)
{
	CU_pSuite s = CU_add_suite("control", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "logring: ring, resize, followers, drops",
	    test_logring) == NULL ||
	    CU_add_test(s, "cfgstore: atomic install, last-good, restore",
	    test_cfgstore) == NULL ||
	    CU_add_test(s, "config show redaction", test_redact) == NULL ||
	    CU_add_test(s, "config set text edits", test_config_set) == NULL ||
	    CU_add_test(s, "control and shell options",
	    test_control_options) == NULL ||
	    CU_add_test(s, "relay event queue: ids, bounds, acks, file",
	    test_evq) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
