/*
 * test_telemetry.c - unit tests of agent/telemetry.c: the JSON writer
 * (escaping, bounds, misuse; output parsed back by python3's json), the
 * /proc and /sys parsers on fixture text, a collection from a fixture
 * tree, user metrics, the metrics command runner, and the payloads (fields,
 * seq per topic, the documented HMAC recipe checked by python3, an
 * RFC 4231 known answer).
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "runner.h"
#include "telemetry.h"
#include "util.h"

int suite_telemetry(void);

/*
 * Runs python3 on json with the document bound to d; returns the exit
 * status of `sys.exit(0 if (expr) else 1)` (2 = not valid JSON).
 */
static int
py_check(const char *json, size_t len, const char *expr)
{
	char dir[64], path[96], cmd[4096];
	FILE *f;
	int st;

	if (unit_tmpdir(dir, sizeof(dir)) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/doc.json", dir);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	fwrite(json, 1, len, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "python3 -c '"
	    "import json, sys, hmac, hashlib\n"
	    "p = open(sys.argv[1], \"rb\").read()\n"
	    "try:\n"
	    "    d = json.loads(p.decode(\"utf-8\"))\n"
	    "except Exception:\n"
	    "    sys.exit(2)\n"
	    "sys.exit(0 if (%s) else 1)' %s", expr, path);
	st = system(cmd);
	unit_rmtree(dir);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_json_escape(void)
{
	char buf[256];
	struct tjson j;
	size_t len;

	tj_init(&j, buf, sizeof(buf));
	tj_obj(&j, NULL);
	tj_str(&j, "s", "a\"b\\c\n\t\x01\x7f/");
	tj_strn(&j, "bad", "x\xff\xc3(y\xe2\x82\xac", 8);
	tj_int(&j, "i", -42);
	tj_uint(&j, "u", UINT64_MAX);
	tj_fixed(&j, "f", 1.5, 2);
	tj_fixed(&j, "nan", 0.0 / 0.0, 2);
	tj_bool(&j, "t", 1);
	tj_arr(&j, "a");
	tj_null(&j, NULL);
	tj_int(&j, NULL, 0);
	tj_close(&j);
	tj_close(&j);
	CU_ASSERT_EQUAL_FATAL(tj_finish(&j, &len), 0);
	CU_ASSERT_STRING_EQUAL(buf, "{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\x7f/\","
	    "\"bad\":\"x\\ufffd\\ufffd(y\xe2\x82\xac\",\"i\":-42,"
	    "\"u\":18446744073709551615,\"f\":1.50,\"nan\":null,\"t\":true,"
	    "\"a\":[null,0]}");
	CU_ASSERT_EQUAL(len, strlen(buf));
	CU_ASSERT_EQUAL(py_check(buf, len,
	    "d[\"s\"] == \"a\\\"b\\\\c\\n\\t\\x01\\x7f/\" and "
	    "d[\"bad\"] == \"x\\ufffd\\ufffd(y\\u20ac\" and "
	    "d[\"u\"] == 2**64 - 1 and d[\"a\"] == [None, 0]"), 0);
}

static void
test_json_bounds(void)
{
	char buf[32];
	struct tjson j;
	size_t len, cap;

	/* Every cap short of the needed size fails cleanly, no overrun. */
	for (cap = 1; cap <= 20; cap++) {
		memset(buf, 'Z', sizeof(buf));
		tj_init(&j, buf, cap);
		tj_obj(&j, NULL);
		tj_str(&j, "key", "value\n");
		tj_close(&j);
		if (cap < 18)
			CU_ASSERT_EQUAL(tj_finish(&j, &len), RT_ERR_FULL);
		if (cap >= 18)
			CU_ASSERT_EQUAL(tj_finish(&j, &len), 0);
		CU_ASSERT_EQUAL(buf[cap], 'Z');
	}
	CU_ASSERT_STRING_EQUAL(buf, "{\"key\":\"value\\n\"}");

	/* Misuse: key in an array, no key in an object, unbalanced. */
	tj_init(&j, buf, sizeof(buf));
	tj_arr(&j, NULL);
	tj_int(&j, "k", 1);
	CU_ASSERT_EQUAL(tj_finish(&j, &len), RT_ERR_INVAL);
	tj_init(&j, buf, sizeof(buf));
	tj_obj(&j, NULL);
	tj_int(&j, NULL, 1);
	CU_ASSERT_EQUAL(tj_finish(&j, &len), RT_ERR_INVAL);
	tj_init(&j, buf, sizeof(buf));
	tj_obj(&j, NULL);
	CU_ASSERT_EQUAL(tj_finish(&j, &len), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(len, 0);
	tj_init(&j, buf, sizeof(buf));
	tj_close(&j);
	CU_ASSERT_EQUAL(tj_finish(&j, &len), RT_ERR_INVAL);
	tj_init(&j, buf, sizeof(buf));
	for (cap = 0; cap <= TJ_MAX_DEPTH; cap++)
		tj_arr(&j, NULL);
	CU_ASSERT_EQUAL(tj_finish(&j, &len), RT_ERR_INVAL);
}

static const char netdev[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
    "    lo:  123456     100    0    0    0     0          0         0   123456     100    0    0    0     0       0          0\n"
    "  eth0: 987654321 5000    7    0    0     0          0        12 12345678    4000    3    0    0     0       0          0\n"
    "wlan0-x: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";

static void
test_proc_parsers(void)
{
	struct tm_iface ifs[4];
	uint64_t total, avail;
	double up, load[3];
	int64_t mdeg;
	size_t n;

	CU_ASSERT_EQUAL(tm_parse_uptime("12345.67 54321.00\n", &up), 0);
	CU_ASSERT_DOUBLE_EQUAL(up, 12345.67, 0.001);
	CU_ASSERT_EQUAL(tm_parse_uptime("x 1\n", &up), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(tm_parse_uptime("", &up), RT_ERR_INVAL);

	CU_ASSERT_EQUAL(tm_parse_loadavg("0.52 1.04 2.00 1/123 4567\n", load),
	    0);
	CU_ASSERT_DOUBLE_EQUAL(load[0], 0.52, 0.001);
	CU_ASSERT_DOUBLE_EQUAL(load[2], 2.0, 0.001);
	CU_ASSERT_EQUAL(tm_parse_loadavg("0.52 1.04\n", load), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(tm_parse_loadavg("0.52 -1 2\n", load), RT_ERR_INVAL);

	CU_ASSERT_EQUAL(tm_parse_meminfo("MemTotal:        2000000 kB\n"
	    "MemFree:          100000 kB\nMemAvailable:     1500000 kB\n"
	    "Buffers:  1 kB\n", &total, &avail), 0);
	CU_ASSERT_EQUAL(total, 2000000);
	CU_ASSERT_EQUAL(avail, 1500000);
	CU_ASSERT_EQUAL(tm_parse_meminfo("MemTotal: 10 kB\n", &total, &avail),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(tm_parse_meminfo("MemTotal: 10 kB\nMemAvailable: 20 "
	    "kB\n", &total, &avail), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(tm_parse_meminfo("MemTotal: x kB\nMemAvailable: 2 "
	    "kB\n", &total, &avail), RT_ERR_INVAL);

	CU_ASSERT_EQUAL(tm_parse_temp("45678\n", &mdeg), 0);
	CU_ASSERT_EQUAL(mdeg, 45678);
	CU_ASSERT_EQUAL(tm_parse_temp("-5000\n", &mdeg), 0);
	CU_ASSERT_EQUAL(mdeg, -5000);
	CU_ASSERT_EQUAL(tm_parse_temp("abc\n", &mdeg), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(tm_parse_temp("99999999\n", &mdeg), RT_ERR_INVAL);

	CU_ASSERT_EQUAL(tm_parse_netdev(netdev, ifs, 4, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);	/* lo skipped */
	CU_ASSERT_STRING_EQUAL(ifs[0].name, "eth0");
	CU_ASSERT_EQUAL(ifs[0].rx_bytes, 987654321);
	CU_ASSERT_EQUAL(ifs[0].rx_errs, 7);
	CU_ASSERT_EQUAL(ifs[0].tx_bytes, 12345678);
	CU_ASSERT_EQUAL(ifs[0].tx_errs, 3);
	CU_ASSERT_STRING_EQUAL(ifs[1].name, "wlan0-x");
	CU_ASSERT_EQUAL(ifs[1].tx_errs, 11);
	CU_ASSERT_EQUAL(tm_parse_netdev(netdev, ifs, 1, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(tm_parse_netdev("h\nh\neth0: 1 2 3\n", ifs, 4, &n),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(tm_parse_netdev("h\nh\nx: 99999999999999999999 1 2 3 "
	    "4 5 6 7 8 9 10\n", ifs, 4, &n), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(tm_parse_netdev("h\nh\ngarbage\n", ifs, 4, &n),
	    RT_ERR_INVAL);
}

static int
write_file(const char *dir, const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", dir, rel);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void
test_sys_collect(void)
{
	const char *disks[] = { "/", "/nonexistent/x" };
	char dir[64], p[256];
	struct tm_sys s;

	CU_ASSERT_FATAL(unit_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(p, sizeof(p), "%s/proc", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/proc/net", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sys", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sys/class", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sys/class/thermal", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sys/class/thermal/thermal_zone1", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sys/class/thermal/thermal_zone0", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/sys/class/thermal/cooling_device0", dir);
	mkdir(p, 0700);
	CU_ASSERT(write_file(dir, "/proc/uptime", "100.5 200.0\n") == 0);
	CU_ASSERT(write_file(dir, "/proc/meminfo", "MemTotal: 100 kB\n"
	    "MemAvailable: 40 kB\n") == 0);
	CU_ASSERT(write_file(dir, "/proc/net/dev", netdev) == 0);
	CU_ASSERT(write_file(dir, "/sys/class/thermal/thermal_zone1/temp",
	    "51000\n") == 0);
	CU_ASSERT(write_file(dir, "/sys/class/thermal/thermal_zone0/temp",
	    "42000\n") == 0);
	/* no loadavg: absent, not zero */

	CU_ASSERT_EQUAL(tm_sys_collect(dir, disks, 2, &s), 0);
	CU_ASSERT(s.has_uptime && s.uptime_s > 100.4);
	CU_ASSERT(!s.has_load);
	CU_ASSERT(s.has_mem && s.mem_total_kb == 100 && s.mem_avail_kb == 40);
	CU_ASSERT_EQUAL(s.n_ifaces, 2);
	CU_ASSERT_EQUAL_FATAL(s.n_temps, 2);
	CU_ASSERT_STRING_EQUAL(s.temps[0].zone, "thermal_zone0");
	CU_ASSERT_EQUAL(s.temps[0].mdeg, 42000);
	CU_ASSERT_EQUAL(s.temps[1].mdeg, 51000);
	CU_ASSERT_EQUAL_FATAL(s.n_disks, 1);
	CU_ASSERT(s.disks[0].path == disks[0]);
	CU_ASSERT(s.disks[0].total > 0 && s.disks[0].avail <= s.disks[0].total);
	unit_rmtree(dir);

	/* The real system: at least /proc is there. */
	CU_ASSERT_EQUAL(tm_sys_collect("", NULL, 0, &s), 0);
	CU_ASSERT(s.has_uptime && s.has_load && s.has_mem);
}

static void
test_metrics_parse(void)
{
	static struct tm_metrics m;
	char err[128], big[TM_USER_MAX + 2], *p;
	const char *ok = "# comment\n\nrpm 1500\ntemp.oil\t-3.5e2  \r\n"
	    "state running fine\nzero 0\nlead 007\n";
	int i;

	CU_ASSERT_EQUAL_FATAL(tm_metrics_parse(ok, strlen(ok), &m, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(m.n, 5);
	CU_ASSERT_STRING_EQUAL(m.m[0].key, "rpm");
	CU_ASSERT(m.m[0].is_num);
	CU_ASSERT_STRING_EQUAL(m.m[1].key, "temp.oil");
	CU_ASSERT_STRING_EQUAL(m.m[1].val, "-3.5e2");
	CU_ASSERT(m.m[1].is_num);
	CU_ASSERT_STRING_EQUAL(m.m[2].val, "running fine");
	CU_ASSERT(!m.m[2].is_num);
	CU_ASSERT(m.m[3].is_num);
	CU_ASSERT(!m.m[4].is_num);	/* leading zero: not JSON, a string */

#define BAD(s, want) do { \
	CU_ASSERT_EQUAL(tm_metrics_parse(s, strlen(s), &m, err, \
	    sizeof(err)), RT_ERR_INVAL); \
	CU_ASSERT_STRING_EQUAL(err, want); \
	CU_ASSERT_EQUAL(m.n, 0); \
} while (0)
	BAD("a 1\na 2\n", "line 2: duplicate key 'a'");
	BAD("a 1\nb\n", "line 2: bad value");
	BAD("a=1 x\n", "line 1: bad key");
	BAD(" a 1\n", "line 1: bad key");
	BAD("a \x01\n", "line 1: bad value");
	BAD("a \xc3\n", "line 1: bad value");
#undef BAD
	p = big;
	for (i = 0; i <= TM_USER_METRICS; i++)
		p += sprintf(p, "k%d 1\n", i);
	CU_ASSERT_EQUAL(tm_metrics_parse(big, strlen(big), &m, err,
	    sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "line 65: more than 64 metrics");
	memset(big, '#', sizeof(big));
	CU_ASSERT_EQUAL(tm_metrics_parse(big, TM_USER_MAX + 1, &m, err,
	    sizeof(err)), RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(tm_metrics_parse(big, TM_USER_MAX, &m, err,
	    sizeof(err)), 0);
}

static void
test_metrics_file(void)
{
	static struct tm_metrics m;
	char dir[64], path[128], err[256];
	FILE *f;
	int i;

	CU_ASSERT_FATAL(unit_tmpdir(dir, sizeof(dir)) == 0);
	CU_ASSERT(write_file(dir, "/m", "a 1\nb two\n") == 0);
	snprintf(path, sizeof(path), "%s/m", dir);
	CU_ASSERT_EQUAL(tm_metrics_read_file(path, &m, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(m.n, 2);
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	for (i = 0; i < TM_USER_MAX + 1; i++)
		fputc('#', f);
	fclose(f);
	CU_ASSERT_EQUAL(tm_metrics_read_file(path, &m, err, sizeof(err)),
	    RT_ERR_TOOBIG);
	CU_ASSERT_EQUAL(tm_metrics_read_file(dir, &m, err, sizeof(err)),
	    RT_ERR_INVAL);	/* a directory */
	snprintf(path, sizeof(path), "%s/none", dir);
	CU_ASSERT_EQUAL(tm_metrics_read_file(path, &m, err, sizeof(err)),
	    RT_ERR_SYS);
	CU_ASSERT(strstr(err, "No such file") != NULL);
	unit_rmtree(dir);
}

/* Drives a command as the loop would: poll its fd, call tm_cmd_poll. */
static int
run_cmd(struct tm_cmd *c, const char *cmdline, int64_t timeout_ms)
{
	struct pollfd pfd;
	int r;

	if ((r = tm_cmd_start(c, cmdline, rt_mono_ms(), timeout_ms)) != 0)
		return r;
	for (;;) {
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		/* After EOF the daemon waits for SIGCHLD; we just nap. */
		poll(c->fd >= 0 ? &pfd : NULL, c->fd >= 0, 20);
		if ((r = tm_cmd_poll(c, rt_mono_ms())) != RT_ERR_AGAIN)
			return r;
	}
}

static void
test_metrics_cmd(void)
{
	static struct tm_cmd c;
	int64_t t0;

	CU_ASSERT_EQUAL(run_cmd(&c, "echo 'a 1'; echo 'b x'", 5000), 0);
	CU_ASSERT_STRING_EQUAL(c.out, "a 1\nb x\n");
	CU_ASSERT(c.fd == -1 && c.pid == -1);
	CU_ASSERT_EQUAL(run_cmd(&c, "echo partial; exit 3", 5000),
	    RT_ERR_PROTO);
	t0 = rt_mono_ms();
	CU_ASSERT_EQUAL(run_cmd(&c, "sleep 10", 200), RT_ERR_TIMEOUT);
	CU_ASSERT(rt_mono_ms() - t0 < 2000);
	CU_ASSERT(c.fd == -1 && c.pid == -1);
	/* A background child holding stdout is killed with the group. */
	t0 = rt_mono_ms();
	CU_ASSERT_EQUAL(run_cmd(&c, "sleep 10 & echo a 1", 300), 0);
	CU_ASSERT(rt_mono_ms() - t0 < 2000);
	CU_ASSERT_EQUAL(run_cmd(&c, "yes", 5000), RT_ERR_TOOBIG);
	CU_ASSERT(c.fd == -1 && c.pid == -1);
	tm_cmd_abort(&c);	/* idempotent */
}

static void
test_hmac_kat(void)
{
	/* RFC 4231, test case 2. */
	static const uint8_t want[32] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
		0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
		0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
		0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
	};
	uint8_t mac[32];

	CU_ASSERT_EQUAL(tm_hmac_sha256((const uint8_t *)"Jefe", 4,
	    "what do ya want for nothing?", 28, mac), 0);
	CU_ASSERT(memcmp(mac, want, 32) == 0);
}

#define PREFIX	"{\"agent\":\"gw-17\",\"ts\":\"2023-11-14T22:13:20.123Z\",\"seq\":1,"

static void
test_payloads(void)
{
	static const uint8_t key[] = "0123456789abcdef0123456789abcdef";
	static struct tm_metrics um;
	struct tm_tunnel tun = { "up", 42, 2, 1000, 2000, 3 };
	struct tm_event ev;
	struct tm_sys sys;
	struct tm_pub *t, *plain;
	char buf[4096], err[64];
	size_t len;

	CU_ASSERT_EQUAL(tm_new("bad id!", NULL, 0, &t), RT_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(tm_new("gw-17", key, 32, &t), 0);
	CU_ASSERT_EQUAL_FATAL(tm_new("gw-17", NULL, 0, &plain), 0);
	memset(&sys, 0, sizeof(sys));
	sys.has_load = 1;
	sys.load[0] = 0.5;
	sys.has_mem = 1;
	sys.mem_total_kb = 100;
	sys.mem_avail_kb = 50;
	sys.n_ifaces = tm_parse_netdev(netdev, sys.ifaces, TM_MAX_IFACES,
	    &sys.n_ifaces) == 0 ? sys.n_ifaces : 0;
	CU_ASSERT_EQUAL(tm_metrics_parse("rpm 1500\nmode \"auto\"\n", 21, &um,
	    err, sizeof(err)), 0);

	CU_ASSERT_EQUAL_FATAL(tm_build_telemetry(t, 1700000000123LL, &sys,
	    &tun, "plc", &um, buf, sizeof(buf), &len), 0);
	CU_ASSERT(strncmp(buf, PREFIX, sizeof(PREFIX) - 1) == 0);
	CU_ASSERT_EQUAL(py_check(buf, len,
	    "list(d)[-1] == \"hmac\" and d[\"seq\"] == 1 and "
	    "d[\"system\"][\"load\"] == [0.5, 0, 0] and "
	    "d[\"system\"][\"mem\"] == {\"total_kb\": 100, \"avail_kb\": 50} and "
	    "d[\"system\"][\"ifaces\"][0][\"rx_errs\"] == 7 and "
	    "\"uptime_s\" not in d[\"system\"] and "
	    "d[\"tunnel\"] == {\"state\": \"up\", \"rtt_ms\": 42, "
	    "\"sessions\": 2, \"bytes_to_relay\": 1000, "
	    "\"bytes_from_relay\": 2000, \"reconnects\": 3} and "
	    "d[\"user\"] == {\"plc\": {\"rpm\": 1500, \"mode\": \"\\\"auto\\\"\"}} "
	    "and hmac.new(b\"0123456789abcdef0123456789abcdef\", "
	    "p[:-75] + b\"}\", hashlib.sha256).hexdigest() == d[\"hmac\"] and "
	    "json.loads(p[:-75] + b\"}\") == {k: v for k, v in d.items() "
	    "if k != \"hmac\"}"), 0);

	/* seq: next telemetry is 2, events count on their own. */
	tun.rtt_ms = -1;
	CU_ASSERT_EQUAL(tm_build_telemetry(t, 1700000001000LL, NULL, &tun,
	    NULL, NULL, buf, sizeof(buf), &len), 0);
	CU_ASSERT_EQUAL(py_check(buf, len, "d[\"seq\"] == 2 and "
	    "\"rtt_ms\" not in d[\"tunnel\"] and \"system\" not in d"), 0);
	memset(&ev, 0, sizeof(ev));
	ev.type = TM_EV_SESSION_CLOSE;
	ev.session = 7;
	ev.service = "ssh";
	ev.peer = "alice";
	ev.reason = "operator closed";
	ev.bytes_in = 10;
	ev.bytes_out = 20;
	ev.duration_ms = 1500;
	CU_ASSERT_EQUAL(tm_build_event(plain, 1700000001000LL, &ev, buf,
	    sizeof(buf), &len), 0);
	CU_ASSERT_STRING_EQUAL(buf, "{\"agent\":\"gw-17\",\"ts\":"
	    "\"2023-11-14T22:13:21.000Z\",\"seq\":1,\"event\":"
	    "\"session-close\",\"session\":7,\"service\":\"ssh\",\"peer\":"
	    "\"alice\",\"reason\":\"operator closed\",\"bytes_in\":10,"
	    "\"bytes_out\":20,\"duration_ms\":1500}");
	memset(&ev, 0, sizeof(ev));
	ev.type = TM_EV_TUNNEL_DOWN;
	ev.reason = "relay \"closed\"";
	CU_ASSERT_EQUAL(tm_build_event(t, 1700000001000LL, &ev, buf,
	    sizeof(buf), &len), 0);
	CU_ASSERT_EQUAL(py_check(buf, len, "d[\"event\"] == \"tunnel-down\" and "
	    "d[\"seq\"] == 1 and \"session\" not in d and "
	    "d[\"reason\"] == \"relay \\\"closed\\\"\" and "
	    "hmac.new(b\"0123456789abcdef0123456789abcdef\", "
	    "p[:-75] + b\"}\", hashlib.sha256).hexdigest() == d[\"hmac\"]"), 0);

	/* Too small: refused, and the seq is not used up. */
	CU_ASSERT_EQUAL(tm_build_event(t, 0, &ev, buf, 100, &len),
	    RT_ERR_FULL);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(tm_build_event(t, 0, &ev, buf, sizeof(buf), &len), 0);
	CU_ASSERT(strstr(buf, "\"seq\":2,") != NULL);
	ev.type = 99;
	CU_ASSERT_EQUAL(tm_build_event(t, 0, &ev, buf, sizeof(buf), &len),
	    RT_ERR_INVAL);
	tm_free(t);
	tm_free(plain);
}

int
suite_telemetry(void)
{
	CU_pSuite s = CU_add_suite("telemetry", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "JSON escaping", test_json_escape) == NULL ||
	    CU_add_test(s, "JSON bounds and misuse", test_json_bounds) == NULL ||
	    CU_add_test(s, "/proc parsers", test_proc_parsers) == NULL ||
	    CU_add_test(s, "system collection", test_sys_collect) == NULL ||
	    CU_add_test(s, "user metrics parser", test_metrics_parse) == NULL ||
	    CU_add_test(s, "user metrics file", test_metrics_file) == NULL ||
	    CU_add_test(s, "user metrics command", test_metrics_cmd) == NULL ||
	    CU_add_test(s, "HMAC known answer", test_hmac_kat) == NULL ||
	    CU_add_test(s, "payloads", test_payloads) == NULL)
		return (int)CU_get_error();
	return 0;
}
