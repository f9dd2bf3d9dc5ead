/*
 * test_penalty.c - unit tests of relay/penalty.c: sources (/32, /64,
 * IPv4-mapped), exempt networks, accumulation up to min and max, running
 * out and new episodes, and the bounded table (what goes when it is full,
 * and that a full table refuses no one it does not hold).
 */
#include "config.h"

#include <string.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "penalty.h"
#include "runner.h"

int suite_penalty(void);

#define S 1000	/* ms */

/* OpenSSH's defaults: authfail 5 s, noauth 1 s, min 15 s, max 600 s. */
static struct pen_policy
policy(size_t max_sources)
{
	struct pen_policy p;

	memset(&p, 0, sizeof(p));
	p.ms[PEN_NOAUTH] = 1 * S;
	p.ms[PEN_AUTHFAIL] = 5 * S;
	p.ms[PEN_GUESSING] = 30 * S;
	p.min_ms = 15 * S;
	p.max_ms = 600 * S;
	p.max_sources = max_sources;
	return p;
}

static struct pen_addr
addr(const char *s)
{
	struct pen_addr a;

	CU_ASSERT_FATAL(pen_addr_from_str(s, &a) == 0);
	return a;
}

static void
test_addr(void)
{
	struct pen_addr a, b;
	char buf[PEN_ADDRSTRLEN];

	CU_ASSERT_EQUAL(pen_addr_from_str("192.0.2.7", &a), 0);
	CU_ASSERT_EQUAL(a.family, 4);
	pen_addr_str(&a, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "192.0.2.7");

	/* IPv6: the /64 is the source */
	CU_ASSERT_EQUAL(pen_addr_from_str("2001:db8:1:2:aaaa::1", &a), 0);
	CU_ASSERT_EQUAL(pen_addr_from_str("2001:db8:1:2:bbbb::9", &b), 0);
	CU_ASSERT_EQUAL(a.family, 6);
	CU_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
	pen_addr_str(&a, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2001:db8:1:2::/64");
	CU_ASSERT_EQUAL(pen_addr_from_str("2001:db8:1:3::1", &b), 0);
	CU_ASSERT(memcmp(&a, &b, sizeof(a)) != 0);

	/* a mapped IPv4 address (dual-stack socket) is that IPv4 address */
	CU_ASSERT_EQUAL(pen_addr_from_str("::ffff:192.0.2.7", &b), 0);
	CU_ASSERT_EQUAL(b.family, 4);
	a = addr("192.0.2.7");
	CU_ASSERT(memcmp(&a, &b, sizeof(a)) == 0);

	CU_ASSERT_EQUAL(pen_addr_from_str(NULL, &a), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_addr_from_str("", &a), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_addr_from_str("relay.example.com", &a),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_addr_from_str("192.0.2.7:22", &a), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_addr_from_str("[::1]", &a), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(a.family, 0);

	/* a short buffer is cut, never overrun */
	a = addr("192.0.2.7");
	pen_addr_str(&a, buf, 4);
	CU_ASSERT_STRING_EQUAL(buf, "192");
}

static void
test_net(void)
{
	struct pen_net n[4];
	const char *why;

	CU_ASSERT_EQUAL(pen_net_parse("10.0.0.0/8", &n[0], &why), 0);
	CU_ASSERT_PTR_NULL(why);
	CU_ASSERT_EQUAL(n[0].bits, 8);
	CU_ASSERT_EQUAL(pen_net_parse("2001:db8::/32", &n[1], &why), 0);
	CU_ASSERT_EQUAL(pen_net_parse("192.0.2.7", &n[2], &why), 0);
	CU_ASSERT_EQUAL(n[2].bits, 32);
	CU_ASSERT_EQUAL(pen_net_parse("::1", &n[3], &why), 0);
	CU_ASSERT_EQUAL(n[3].bits, 128);

	CU_ASSERT(pen_net_match(n, 4, "10.200.3.4"));
	CU_ASSERT(pen_net_match(n, 4, "::ffff:10.1.1.1"));
	CU_ASSERT(pen_net_match(n, 4, "2001:db8:ffff::1"));
	CU_ASSERT(pen_net_match(n, 4, "192.0.2.7"));
	CU_ASSERT(pen_net_match(n, 4, "::1"));
	CU_ASSERT(!pen_net_match(n, 4, "11.0.0.1"));
	CU_ASSERT(!pen_net_match(n, 4, "192.0.2.8"));
	CU_ASSERT(!pen_net_match(n, 4, "2001:db9::1"));
	CU_ASSERT(!pen_net_match(n, 4, "::2"));
	CU_ASSERT(!pen_net_match(n, 4, "not an address"));
	CU_ASSERT(!pen_net_match(n, 0, "10.0.0.1"));

	/* prefix lengths that are not whole bytes */
	CU_ASSERT_EQUAL(pen_net_parse("172.16.0.0/12", &n[0], &why), 0);
	CU_ASSERT(pen_net_match(n, 1, "172.31.255.255"));
	CU_ASSERT(!pen_net_match(n, 1, "172.32.0.0"));
	CU_ASSERT_EQUAL(pen_net_parse("0.0.0.0/0", &n[0], &why), 0);
	CU_ASSERT(pen_net_match(n, 1, "203.0.113.9"));
	CU_ASSERT(!pen_net_match(n, 1, "2001:db8::1"));

	CU_ASSERT_EQUAL(pen_net_parse("10.0.0.1/8", &n[0], &why),
	    RT_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(why,
	    "address has bits set past the prefix length");
	CU_ASSERT_EQUAL(pen_net_parse("10.0.0.0/33", &n[0], &why),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_net_parse("2001:db8::/129", &n[0], &why),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_net_parse("10.0.0.0/", &n[0], &why),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_net_parse("10.0.0.0/-1", &n[0], &why),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_net_parse("10.0.0.0/8x", &n[0], &why),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_net_parse("/8", &n[0], &why), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_net_parse("example.com/8", &n[0], &why),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_net_parse("::ffff:10.0.0.0/104", &n[0], &why),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_net_parse(NULL, &n[0], &why), RT_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(why);
}

/* Three quick auth failures reach min (15 s); one or two do not. */
static void
test_accumulate(void)
{
	struct pen_policy p = policy(16);
	struct pen_table *t;
	struct pen_addr a = addr("203.0.113.9"), b = addr("203.0.113.10");
	enum pen_reason why = PEN_NOAUTH;
	int64_t left, now = 1000 * S;

	CU_ASSERT_FATAL(pen_table_new(&t) == 0);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_AUTHFAIL, now, &left),
	    PEN_NOTED);
	CU_ASSERT_EQUAL(left, 5 * S);
	CU_ASSERT_EQUAL(pen_check(t, &a, now, NULL, NULL), 0);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_AUTHFAIL, now + 100, &left),
	    PEN_NOTED);
	CU_ASSERT_EQUAL(left, 10 * S - 100);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_AUTHFAIL, now + 100, &left),
	    PEN_NOTED);	/* 14.9 s left: still under min */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_NOAUTH, now + 100, &left),
	    PEN_STARTED);
	CU_ASSERT_EQUAL(left, 15 * S + 900);
	CU_ASSERT_EQUAL(pen_check(t, &a, now + 200, &left, &why), 1);
	CU_ASSERT_EQUAL(left, 15 * S + 800);
	CU_ASSERT_EQUAL(why, PEN_NOAUTH);
	CU_ASSERT_EQUAL(pen_check(t, &b, now + 200, NULL, NULL), 0);
	CU_ASSERT_EQUAL(pen_enforced(t, now + 200), 1);
	CU_ASSERT_EQUAL(pen_count(t), 1);

	/* more failures while enforced: longer, never past max */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_AUTHFAIL, now + 200, &left),
	    PEN_EXTENDED);
	for (int i = 0; i < 200; i++)
		(void)pen_add(t, &p, &a, PEN_AUTHFAIL, now + 200, &left);
	CU_ASSERT_EQUAL(left, 600 * S);

	/* runs out: no longer refused, dropped, and a new episode later */
	CU_ASSERT_EQUAL(pen_check(t, &a, now + 200 + 600 * S - 1, NULL,
	    NULL), 1);
	CU_ASSERT_EQUAL(pen_check(t, &a, now + 200 + 600 * S, NULL, NULL), 0);
	CU_ASSERT_EQUAL(pen_count(t), 0);
	now += 700 * S;
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_GUESSING, now, &left),
	    PEN_STARTED);
	CU_ASSERT_EQUAL(left, 30 * S);
	CU_ASSERT_EQUAL(pen_check(t, &a, now, NULL, &why), 1);
	CU_ASSERT_EQUAL(why, PEN_GUESSING);
	pen_table_free(t);
}

/* Failures no faster than they run out are never enforced; the same
 * /64 is one source. */
static void
test_decay(void)
{
	struct pen_policy p = policy(16);
	struct pen_table *t;
	struct pen_addr a = addr("2001:db8::7");
	int64_t now = 5 * S, left;
	int i;

	CU_ASSERT_FATAL(pen_table_new(&t) == 0);
	for (i = 0; i < 50; i++)
		CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_AUTHFAIL,
		    now + i * 5 * S, &left), PEN_NOTED);
	CU_ASSERT_EQUAL(left, 5 * S);
	/* a little faster (every 4.5 s) adds up: 0.5 s more each time */
	now += 50 * 5 * S;
	for (i = 0; i < 20; i++)
		CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_AUTHFAIL,
		    now + i * 4500, &left), PEN_NOTED);
	CU_ASSERT_EQUAL(left, 15 * S - 500);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_AUTHFAIL, now + 20 * 4500,
	    &left), PEN_STARTED);
	/* another host of the same /64 is refused too */
	a = addr("2001:db8::8:8");
	CU_ASSERT_EQUAL(pen_check(t, &a, now + 20 * 4500, NULL, NULL), 1);
	a = addr("2001:db8:0:1::7");
	CU_ASSERT_EQUAL(pen_check(t, &a, now + 20 * 4500, NULL, NULL), 0);
	CU_ASSERT_EQUAL(pen_count(t), 1);
	pen_table_free(t);
}

static void
test_edges(void)
{
	struct pen_policy p = policy(16);
	struct pen_table *t;
	struct pen_addr a = addr("198.51.100.1");
	int64_t left;

	CU_ASSERT_FATAL(pen_table_new(&t) == 0);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, (enum pen_reason)7, 0, &left),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, (enum pen_reason)-1, 0, &left),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(pen_count(t), 0);

	/* min 0: the first failure is enough; a zero penalty never is */
	p.min_ms = 0;
	p.ms[PEN_NOAUTH] = 0;
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_NOAUTH, 0, &left), PEN_NOTED);
	CU_ASSERT_EQUAL(left, 0);
	CU_ASSERT_EQUAL(pen_check(t, &a, 0, NULL, NULL), 0);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_AUTHFAIL, 0, &left),
	    PEN_STARTED);
	CU_ASSERT_EQUAL(pen_check(t, &a, 0, NULL, NULL), 1);

	/* a penalty longer than max is cut to max */
	p.ms[PEN_GUESSING] = 9000 * S;
	a = addr("198.51.100.2");
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_GUESSING, 0, &left),
	    PEN_STARTED);
	CU_ASSERT_EQUAL(left, 600 * S);
	pen_expire(t, 600 * S);
	CU_ASSERT_EQUAL(pen_count(t), 0);

	CU_ASSERT_STRING_EQUAL(pen_reason_name(PEN_NOAUTH), "noauth");
	CU_ASSERT_STRING_EQUAL(pen_reason_name(PEN_AUTHFAIL), "authfail");
	CU_ASSERT_STRING_EQUAL(pen_reason_name(PEN_GUESSING), "guessing");
	CU_ASSERT_STRING_EQUAL(pen_reason_name(PEN_NREASONS), "?");
	pen_table_free(t);
	pen_table_free(NULL);
}

/* A full table: run-out entries go first, then the not-enforced one
 * that runs out soonest; full of enforced ones, a new source is not
 * recorded, and nobody outside the table is refused. */
static void
test_full(void)
{
	struct pen_policy p = policy(3);
	struct pen_table *t;
	struct pen_addr a[8];
	char host[32];
	int64_t left;
	int i;

	for (i = 0; i < 8; i++) {
		snprintf(host, sizeof(host), "192.0.2.%d", i + 1);
		a[i] = addr(host);
	}
	CU_ASSERT_FATAL(pen_table_new(&t) == 0);
	/* a0 runs out at 1 s, a1 at 2 s (two noauth), a2 at 5 s */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[0], PEN_NOAUTH, 0, NULL), PEN_NOTED);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[1], PEN_NOAUTH, 0, NULL), PEN_NOTED);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[1], PEN_NOAUTH, 0, NULL), PEN_NOTED);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[2], PEN_AUTHFAIL, 0, NULL),
	    PEN_NOTED);
	CU_ASSERT_EQUAL(pen_count(t), 3);
	/* full: a0 (soonest) makes room for a3 */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[3], PEN_NOAUTH, 500, NULL),
	    PEN_NOTED);
	CU_ASSERT_EQUAL(pen_count(t), 3);
	/* a0 starts again from nothing: one noauth, 1 s */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[0], PEN_NOAUTH, 600, &left),
	    PEN_NOTED);
	CU_ASSERT_EQUAL(left, 1 * S);
	CU_ASSERT_EQUAL(pen_count(t), 3);

	/* run-out entries are dropped before anything live */
	pen_expire(t, 0);
	CU_ASSERT_EQUAL(pen_count(t), 3);
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[4], PEN_NOAUTH, 10 * S, NULL),
	    PEN_NOTED);
	CU_ASSERT_EQUAL(pen_count(t), 1);

	/* three enforced sources fill it: a fourth is not recorded */
	for (i = 5; i < 8; i++)
		CU_ASSERT_EQUAL(pen_add(t, &p, &a[i], PEN_GUESSING, 10 * S,
		    NULL), PEN_STARTED);
	CU_ASSERT_EQUAL(pen_count(t), 3);	/* a4 made room */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[0], PEN_GUESSING, 10 * S, &left),
	    PEN_FULL);
	CU_ASSERT_EQUAL(left, 0);
	CU_ASSERT_EQUAL(pen_check(t, &a[0], 10 * S, NULL, NULL), 0);
	CU_ASSERT_EQUAL(pen_check(t, &a[4], 10 * S, NULL, NULL), 0);
	for (i = 5; i < 8; i++)
		CU_ASSERT_EQUAL(pen_check(t, &a[i], 10 * S, NULL, NULL), 1);
	/* but a source it holds still accumulates */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[5], PEN_AUTHFAIL, 10 * S, &left),
	    PEN_EXTENDED);
	CU_ASSERT_EQUAL(left, 35 * S);

	/* a reload lowers max_sources below what is held: room is made
	 * only among entries that are not enforced, none here */
	p.max_sources = 1;
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[1], PEN_NOAUTH, 11 * S, NULL),
	    PEN_FULL);
	CU_ASSERT_EQUAL(pen_count(t), 3);
	/* once they ran out, the new source gets its place */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a[1], PEN_NOAUTH, 100 * S, NULL),
	    PEN_NOTED);
	CU_ASSERT_EQUAL(pen_count(t), 1);
	pen_table_free(t);
}

/* A full table of 65,536 live, not enforced sources keeps taking new
 * ones (each evicts one from a sample of buckets), and one full of
 * enforced sources refuses new ones until the first runs out. */
static void
test_full_large(void)
{
	struct pen_policy p = policy(65536);
	struct pen_table *t;
	struct pen_addr a;
	char host[32];
	int i, ok = 1;

	CU_ASSERT_FATAL(pen_table_new(&t) == 0);
	for (i = 0; i < 65536 + 5000; i++) {
		snprintf(host, sizeof(host), "10.%d.%d.%d", (i >> 16) & 255,
		    (i >> 8) & 255, i & 255);
		a = addr(host);
		/* noauth at i ms: live for 1 s, never enforced */
		ok &= pen_add(t, &p, &a, PEN_NOAUTH, i / 100, NULL) ==
		    PEN_NOTED;
	}
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(pen_count(t), 65536);
	pen_table_free(t);

	p = policy(1000);
	CU_ASSERT_FATAL(pen_table_new(&t) == 0);
	for (i = 0; i < 1000; i++) {
		snprintf(host, sizeof(host), "10.1.%d.%d", i >> 8, i & 255);
		a = addr(host);
		ok &= pen_add(t, &p, &a, PEN_GUESSING, 0, NULL) == PEN_STARTED;
	}
	CU_ASSERT(ok);
	a = addr("10.2.0.1");
	for (i = 0; i < 100; i++)
		ok &= pen_add(t, &p, &a, PEN_GUESSING, i, NULL) == PEN_FULL;
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(pen_count(t), 1000);
	/* all ran out at 30 s: room again */
	CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_GUESSING, 30 * S, NULL),
	    PEN_STARTED);
	CU_ASSERT_EQUAL(pen_check(t, &a, 30 * S + 1, NULL, NULL), 1);
	pen_table_free(t);
}

/* Many sources spread over the buckets: all found, all swept. */
static void
test_many(void)
{
	struct pen_policy p = policy(20000);
	struct pen_table *t;
	struct pen_addr a;
	char host[64];
	int i, found = 0;

	CU_ASSERT_FATAL(pen_table_new(&t) == 0);
	for (i = 0; i < 20000; i++) {
		snprintf(host, sizeof(host), "2001:db8:%x:%x::1", i / 256,
		    i % 256);
		a = addr(host);
		CU_ASSERT_EQUAL(pen_add(t, &p, &a, PEN_GUESSING, 0, NULL),
		    PEN_STARTED);
	}
	CU_ASSERT_EQUAL(pen_count(t), 20000);
	for (i = 0; i < 20000; i++) {
		snprintf(host, sizeof(host), "2001:db8:%x:%x::2", i / 256,
		    i % 256);
		a = addr(host);
		found += pen_check(t, &a, 1, NULL, NULL);
	}
	CU_ASSERT_EQUAL(found, 20000);
	CU_ASSERT_EQUAL(pen_enforced(t, 1), 20000);
	CU_ASSERT_EQUAL(pen_enforced(t, 30 * S), 0);
	pen_expire(t, 30 * S);
	CU_ASSERT_EQUAL(pen_count(t), 0);
	pen_table_free(t);
}

int
suite_penalty(void)
{
	CU_pSuite s = CU_add_suite("penalty", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "sources", test_addr) == NULL ||
	    CU_add_test(s, "exempt networks", test_net) == NULL ||
	    CU_add_test(s, "accumulate", test_accumulate) == NULL ||
	    CU_add_test(s, "decay", test_decay) == NULL ||
	    CU_add_test(s, "edges", test_edges) == NULL ||
	    CU_add_test(s, "full table", test_full) == NULL ||
	    CU_add_test(s, "full table, large", test_full_large) == NULL ||
	    CU_add_test(s, "many sources", test_many) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
