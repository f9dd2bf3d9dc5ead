/*
 * test_mqtt_cmd.c - unit tests of agent/mqtt_cmd.c: known-answer HMAC
 * vectors (computed with openssl dgst -mac HMAC, see mqtt_cmd.h), the
 * canonical string, acceptance and every refusal (bad HMAC, stale and
 * future ts, replay, unknown command, malformed and oversized input,
 * missing, duplicate and unknown fields), the replay cache bound and its
 * floor, args accessors, the key file loader and the subscription
 * probe (built, recognised byte for byte, never taken for a command).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <CUnit/CUnit.h>

#include "err.h"
#include "mqtt_cmd.h"
#include "runner.h"

int suite_mqtt_cmd(void);

#define NOW	INT64_C(1700000000)
#define NONCE	"00112233445566778899aabbccddeeff"

/* bytes 0x00..0x1f: hexkey 000102...1f */
static const uint8_t key[32] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

/* printf 'revtun-cmd-v1\ngw-17\nping\n1700000000\n<NONCE>\n' |
 *   openssl dgst -sha256 -mac HMAC -macopt hexkey:0001..1f */
#define PING_HMAC \
	"5ca0f151ba7cdf699b0bafb31a1b2a31089ac9fec499ab19d73de2e7762ed61f"
/* Same for tunnel-open with args {"service":"ssh","ttl":600}. */
#define OPEN_HMAC \
	"b9aa556b7d8a98055fc400fb247fd36907f268dfdd98ffbf9fe603ef38471704"

static const char ping[] = "{\"cmd\":\"ping\",\"ts\":1700000000,"
    "\"nonce\":\"" NONCE "\",\"hmac\":\"" PING_HMAC "\"}";

static int
verify(struct mc_verifier *v, const char *p, int64_t now, const char **why)
{
	struct mc_msg m;

	return mc_verify(v, (const uint8_t *)p, strlen(p), now, &m, why);
}

static void
test_known_answer(void)
{
	/* Members reordered and spaced: the canonical string is the same. */
	static const char open[] = " {\n \"hmac\" : \"" OPEN_HMAC "\",\n"
	    " \"args\":{\"service\":\"ssh\",\"ttl\":600}, \"nonce\": \"" NONCE
	    "\", \"ts\": 1700000000, \"cmd\": \"tunnel-open\" }\n";
	struct mc_verifier *v;
	struct mc_msg m;
	const char *why;
	char canon[512], s[16];
	size_t len;
	int64_t ttl;

	CU_ASSERT_EQUAL_FATAL(mc_verifier_new("gw-17", key, 32, 0, 0, &v), 0);
	CU_ASSERT_EQUAL(mc_verify(v, (const uint8_t *)ping, strlen(ping), NOW,
	    &m, &why), 0);
	CU_ASSERT_STRING_EQUAL(why, "ok");
	CU_ASSERT_EQUAL(m.kind, MC_PING);
	CU_ASSERT_EQUAL(m.ts, NOW);
	CU_ASSERT_STRING_EQUAL(m.nonce, NONCE);
	CU_ASSERT(m.args == NULL);
	CU_ASSERT_EQUAL(mc_canonical("gw-17", &m, canon, sizeof(canon), &len),
	    0);
	CU_ASSERT_STRING_EQUAL(canon, "revtun-cmd-v1\ngw-17\nping\n1700000000\n"
	    NONCE "\n");

	/* Another verifier (its own cache) for the second vector. */
	mc_verifier_free(v);
	CU_ASSERT_EQUAL_FATAL(mc_verifier_new("gw-17", key, 32, 0, 0, &v), 0);
	CU_ASSERT_EQUAL(mc_verify(v, (const uint8_t *)open, strlen(open), NOW,
	    &m, &why), 0);
	CU_ASSERT_STRING_EQUAL(why, "ok");
	CU_ASSERT_EQUAL(m.kind, MC_TUNNEL_OPEN);
	CU_ASSERT_STRING_EQUAL(m.cmd, "tunnel-open");
	CU_ASSERT_EQUAL(m.args_len, 27);
	CU_ASSERT_EQUAL(mc_arg_str(&m, "service", s, sizeof(s)), 0);
	CU_ASSERT_STRING_EQUAL(s, "ssh");
	CU_ASSERT_EQUAL(mc_arg_int(&m, "ttl", &ttl), 0);
	CU_ASSERT_EQUAL(ttl, 600);
	CU_ASSERT_EQUAL(mc_arg_int(&m, "service", &ttl), RT_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(mc_arg_str(&m, "nope", s, sizeof(s)), RT_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(mc_arg_str(&m, "service", s, 3), RT_ERR_FULL);
	mc_verifier_free(v);

	/* mc_sign makes the same bytes the vectors were checked on. */
	CU_ASSERT_EQUAL(mc_sign("gw-17", key, 32, "ping", NOW, NONCE, NULL,
	    canon, sizeof(canon), &len), 0);
	CU_ASSERT_STRING_EQUAL(canon, ping);
	CU_ASSERT_EQUAL(mc_sign("gw-17", key, 32, "reboot", NOW, NONCE, NULL,
	    canon, sizeof(canon), &len), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(mc_sign("gw-17", key, 32, "ping", NOW, "ABCDEF0123456789",
	    NULL, canon, sizeof(canon), &len), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(mc_sign("gw-17", key, 32, "ping", NOW, NONCE, NULL,
	    canon, 20, &len), RT_ERR_FULL);
}

static void
test_refusals(void)
{
	struct mc_verifier *v, *other;
	char buf[MC_MAX_PAYLOAD + 64], bad[sizeof(ping)];
	const char *why;
	size_t len;

	CU_ASSERT_EQUAL_FATAL(mc_verifier_new("gw-17", key, 32, 60, 0, &v), 0);

	/* Bad HMAC: one hex digit changed; another agent; another key. */
	memcpy(bad, ping, sizeof(ping));
	bad[sizeof(ping) - 5] ^= 1;	/* "1" -> "0" */
	CU_ASSERT_EQUAL(verify(v, bad, NOW, &why), RT_ERR_REFUSED);
	CU_ASSERT_STRING_EQUAL(why, "bad hmac");
	CU_ASSERT_EQUAL_FATAL(mc_verifier_new("gw-18", key, 32, 60, 0, &other),
	    0);
	CU_ASSERT_EQUAL(verify(other, ping, NOW, &why), RT_ERR_REFUSED);
	CU_ASSERT_STRING_EQUAL(why, "bad hmac");
	mc_verifier_free(other);
	/* Changing args invalidates the signature. */
	CU_ASSERT_EQUAL(mc_sign("gw-17", key, 32, "tunnel-open", NOW, NONCE,
	    "{\"ttl\":60}", buf, sizeof(buf), &len), 0);
	memcpy(strstr(buf, "60}"), "99", 2);
	CU_ASSERT_EQUAL(verify(v, buf, NOW, &why), RT_ERR_REFUSED);
	CU_ASSERT_STRING_EQUAL(why, "bad hmac");

	/* Freshness: |now - ts| <= 60 is fine, 61 is not. */
	CU_ASSERT_EQUAL(verify(v, ping, NOW + 61, &why), RT_ERR_REFUSED);
	CU_ASSERT_STRING_EQUAL(why, "stale timestamp");
	CU_ASSERT_EQUAL(verify(v, ping, NOW - 61, &why), RT_ERR_REFUSED);
	CU_ASSERT_STRING_EQUAL(why, "timestamp in the future");
	CU_ASSERT_EQUAL(verify(v, ping, NOW + 60, &why), 0);
	CU_ASSERT_EQUAL(mc_verifier_cached(v), 1);

	/* Replay inside the window. */
	CU_ASSERT_EQUAL(verify(v, ping, NOW, &why), RT_ERR_REFUSED);
	CU_ASSERT_STRING_EQUAL(why, "replayed nonce");

#define PROTO(s, want) do { \
	CU_ASSERT_EQUAL(verify(v, s, NOW, &why), RT_ERR_PROTO); \
	CU_ASSERT_STRING_EQUAL(why, want); \
} while (0)
	PROTO("{\"cmd\":\"reboot\",\"ts\":1,\"nonce\":\"" NONCE "\","
	    "\"hmac\":\"" PING_HMAC "\"}", "unknown command");
	PROTO("{\"cmd\":\"pingpingpingpingpingpingpingpingpingpingpingpingping"
	    "pingpingpingpingpingping\"}", "unknown command");
	PROTO("", "malformed JSON");
	PROTO("{", "malformed JSON");
	PROTO("[]", "malformed JSON");
	PROTO("{\"cmd\":\"ping\",}", "malformed JSON");
	PROTO("{\"cmd\":\"ping\" \"ts\":1}", "malformed JSON");
	PROTO("{\"cmd\":'ping'}", "malformed JSON");
	PROTO("{\"cmd\":\"ping\"} x", "trailing bytes after JSON");
	PROTO("{\"cmd\":\"ping\"}{}", "trailing bytes after JSON");
	PROTO("{\"cmd\":\"pi\nng\"}", "control character in string");
	PROTO("{\"cmd\":\"p\xffing\"}", "invalid UTF-8");
	PROTO("{\"cmd\":\"p\\u0000\"}", "NUL in string");
	PROTO("{\"cmd\":\"p\\udc00\"}", "bad \\u escape");
	PROTO("{\"cmd\":\"ping\",\"cmd\":\"ping\"}", "duplicate field");
	PROTO("{\"cmd\":\"ping\",\"extra\":1}", "unknown field");
	PROTO("{\"cmd\":\"ping\",\"extraordinary\":1}", "unknown field");
	PROTO("{\"ts\":1,\"nonce\":\"" NONCE "\",\"hmac\":\"" PING_HMAC "\"}",
	    "missing field cmd");
	PROTO("{\"cmd\":\"ping\",\"nonce\":\"" NONCE "\",\"hmac\":\""
	    PING_HMAC "\"}", "missing field ts");
	PROTO("{\"cmd\":\"ping\",\"ts\":1,\"hmac\":\"" PING_HMAC "\"}",
	    "missing field nonce");
	PROTO("{\"cmd\":\"ping\",\"ts\":1,\"nonce\":\"" NONCE "\"}",
	    "missing field hmac");
	PROTO("{}", "missing field cmd");
	PROTO("{\"ts\":-1}", "ts not a non-negative integer");
	PROTO("{\"ts\":1.5}", "ts not a non-negative integer");
	PROTO("{\"ts\":1e3}", "ts not a non-negative integer");
	PROTO("{\"ts\":99999999999999}", "ts not a non-negative integer");
	PROTO("{\"ts\":\"1\"}", "malformed JSON");
	PROTO("{\"ts\":01}", "malformed JSON");
	PROTO("{\"nonce\":\"0011\"}", "bad nonce");
	PROTO("{\"nonce\":\"00112233445566778899AABBCCDDEEFF\"}", "bad nonce");
	PROTO("{\"nonce\":\"" NONCE NONCE NONCE "\"}", "bad nonce");
	PROTO("{\"hmac\":\"00\"}", "bad hmac format");
	PROTO("{\"hmac\":\"" NONCE NONCE "00\"}", "bad hmac format");
	PROTO("{\"args\":[1]}", "args not an object");
	PROTO("{\"args\":{\"a\":[[[[[[[[1]]]]]]]]}}", "too deeply nested");
#undef PROTO

	/* Oversized. */
	memset(buf, ' ', sizeof(buf));
	memcpy(buf + sizeof(buf) - sizeof(ping), ping, sizeof(ping));
	CU_ASSERT_EQUAL(verify(v, buf, NOW, &why), RT_ERR_TOOBIG);
	CU_ASSERT_STRING_EQUAL(why, "oversized");
	/* ...but exactly MC_MAX_PAYLOAD is parsed. */
	CU_ASSERT_EQUAL(verify(v, buf + sizeof(buf) - 1 - MC_MAX_PAYLOAD,
	    NOW, &why), RT_ERR_REFUSED);
	CU_ASSERT_STRING_EQUAL(why, "replayed nonce");
	mc_verifier_free(v);
}

static void
sign_n(char *buf, size_t cap, int64_t ts, unsigned n)
{
	char nonce[33];
	size_t len;

	snprintf(nonce, sizeof(nonce), "%032x", n);
	CU_ASSERT_EQUAL(mc_sign("gw-17", key, 32, "telemetry-now", ts, nonce,
	    NULL, buf, cap, &len), 0);
}

static void
test_replay_cache(void)
{
	struct mc_verifier *v;
	const char *why;
	char buf[512];
	unsigned i;

	CU_ASSERT_EQUAL(mc_verifier_new("gw-17", key, 31, 0, 0, &v),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL(mc_verifier_new("gw-17", key, 32, 86401, 0, &v),
	    RT_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(mc_verifier_new("gw-17", key, 32, 60, 8, &v), 0);
	for (i = 0; i < 8; i++) {
		sign_n(buf, sizeof(buf), NOW, i);
		CU_ASSERT_EQUAL(verify(v, buf, NOW, &why), 0);
	}
	/* Full inside the window: refuse rather than forget. */
	sign_n(buf, sizeof(buf), NOW, 100);
	CU_ASSERT_EQUAL(verify(v, buf, NOW + 60, &why), RT_ERR_LIMIT);
	CU_ASSERT_STRING_EQUAL(why, "replay cache full");
	CU_ASSERT_EQUAL(mc_verifier_cached(v), 8);
	/* Once those left the window they are forgotten... */
	sign_n(buf, sizeof(buf), NOW + 61, 100);
	CU_ASSERT_EQUAL(verify(v, buf, NOW + 61, &why), 0);
	CU_ASSERT_EQUAL(mc_verifier_cached(v), 1);
	/* ...and with the clock stepped back, the floor still refuses them. */
	sign_n(buf, sizeof(buf), NOW, 3);
	CU_ASSERT_EQUAL(verify(v, buf, NOW, &why), RT_ERR_REFUSED);
	CU_ASSERT_STRING_EQUAL(why, "timestamp before forgotten nonces");
	/* A new command after the floor is fine. */
	sign_n(buf, sizeof(buf), NOW + 1, 200);
	CU_ASSERT_EQUAL(verify(v, buf, NOW, &why), 0);
	mc_verifier_free(v);
}

static void
test_key_load(void)
{
	char dir[64], path[128], err[256];
	uint8_t k[MC_KEY_MAX];
	size_t len;
	FILE *f;

	CU_ASSERT_FATAL(unit_tmpdir(dir, sizeof(dir)) == 0);
	snprintf(path, sizeof(path), "%s/cmd.key", dir);
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	fputs("000102030405060708090a0b0c0d0e0f"
	    "101112131415161718191A1B1C1D1E1F\n", f);
	fclose(f);
	chmod(path, 0600);
	CU_ASSERT_EQUAL(mc_key_load(path, k, sizeof(k), &len, err,
	    sizeof(err)), 0);
	CU_ASSERT_EQUAL(len, 32);
	CU_ASSERT(memcmp(k, key, 32) == 0);
	chmod(path, 0644);
	CU_ASSERT_EQUAL(mc_key_load(path, k, sizeof(k), &len, err,
	    sizeof(err)), RT_ERR_PERM);
	CU_ASSERT(strstr(err, "0644") != NULL);
	f = fopen(path, "w");
	fputs("0001020304\n", f);
	fclose(f);
	chmod(path, 0600);
	CU_ASSERT_EQUAL(mc_key_load(path, k, sizeof(k), &len, err,
	    sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT(strstr(err, "0001") == NULL);	/* never the key */
	f = fopen(path, "w");
	fputs("zz0102030405060708090a0b0c0d0e0f"
	    "101112131415161718191a1b1c1d1e1f", f);
	fclose(f);
	CU_ASSERT_EQUAL(mc_key_load(path, k, sizeof(k), &len, err,
	    sizeof(err)), RT_ERR_INVAL);
	unit_rmtree(dir);
}

static void
test_probe(void)
{
	static const char *const not_probes[] = {
		"{\"probe\":\"" NONCE "\" }",	/* space */
		"{\"probe\":\"" NONCE "\"}\n",
		"{\"probe\":\"00112233445566778899AABBCCDDEEFF\"}",
		"{\"probe\":\"00112233445566778899aabbccddeef\"}",
		"{\"probe\":\"00112233445566778899aabbccddeeff0\"}",
		"{\"Probe\":\"" NONCE "\"}",
		"{\"probe\":\"00112233445566778899aabbccddeefg\"}",
		"",
	};
	char buf[64], tok[MC_PROBE_TOKEN_LEN + 1];
	struct mc_msg m;
	const char *why;
	size_t len, i;

	CU_ASSERT_EQUAL(mc_probe_build(NONCE, buf, sizeof(buf), &len), 0);
	CU_ASSERT_STRING_EQUAL(buf, "{\"probe\":\"" NONCE "\"}");
	CU_ASSERT_EQUAL(len, strlen(buf));
	CU_ASSERT_EQUAL(mc_probe_parse((const uint8_t *)buf, len, tok), 0);
	CU_ASSERT_STRING_EQUAL(tok, NONCE);
	/* A probe is not a command: mc_parse refuses it. */
	CU_ASSERT_EQUAL(mc_parse((const uint8_t *)buf, len, &m, &why),
	    RT_ERR_PROTO);
	CU_ASSERT_EQUAL(mc_probe_build(NONCE, buf, 20, &len), RT_ERR_FULL);
	CU_ASSERT_EQUAL(mc_probe_build("00112233445566778899AABBCCDDEEFF",
	    buf, sizeof(buf), &len), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(mc_probe_build("0011", buf, sizeof(buf), &len),
	    RT_ERR_INVAL);
	for (i = 0; i < sizeof(not_probes) / sizeof(not_probes[0]); i++) {
		CU_ASSERT_EQUAL(mc_probe_parse((const uint8_t *)not_probes[i],
		    strlen(not_probes[i]), tok), RT_ERR_NOTFOUND);
		CU_ASSERT_STRING_EQUAL(tok, "");
	}
	/* A command is never taken for a probe. */
	CU_ASSERT_EQUAL(mc_probe_parse((const uint8_t *)ping, strlen(ping),
	    tok), RT_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(mc_probe_parse(NULL, 0, tok), RT_ERR_NOTFOUND);
}

int
suite_mqtt_cmd(void)
{
	CU_pSuite s = CU_add_suite("mqtt_cmd", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "known-answer HMAC", test_known_answer) == NULL ||
	    CU_add_test(s, "refusals", test_refusals) == NULL ||
	    CU_add_test(s, "replay cache", test_replay_cache) == NULL ||
	    CU_add_test(s, "key file", test_key_load) == NULL ||
	    CU_add_test(s, "subscription probe", test_probe) == NULL)
		return (int)CU_get_error();
	return 0;
}
