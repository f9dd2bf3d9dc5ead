/*
 * fuzz_mqtt_cmd.c - fuzz target for agent/mqtt_cmd.c's parser and, on the
 * way, telemetry.c's JSON string writer and metrics parser. Aborts on any
 * broken invariant:
 *  - a refused input has a reason and leaves the message zeroed;
 *  - an accepted input has a known command, a lowercase-hex nonce of the
 *    allowed length, ts in range, args (if any) an object inside the
 *    input; re-signed with mc_sign it is accepted once with the same
 *    fields, then refused as a replay;
 *  - the input written as a JSON string by tj_strn, signed as args, is
 *    accepted and mc_arg_str gives the input back (valid UTF-8, no NUL);
 *  - tm_metrics_parse either fails with a message or gives keys and
 *    values within their bounds.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mqtt_cmd.h"
#include "telemetry.h"

#define FUZZ_NOW	INT64_C(1700000000)
#define FUZZ_STR_MAX	600	/* escaped at most 6x: fits MC_MAX_PAYLOAD */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t fkey[32] = "fuzz-key-fuzz-key-fuzz-key-fuzz";

static int
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n-- > 0)
		if (*b++ != 0)
			return 0;
	return 1;
}

static void
check_resign(const struct mc_msg *m)
{
	static char args[MC_MAX_PAYLOAD + 1], out[2 * MC_MAX_PAYLOAD];
	struct mc_verifier *v;
	struct mc_msg m2;
	const char *why;
	size_t len;
	int r;

	if (m->args != NULL) {
		memcpy(args, m->args, m->args_len);
		args[m->args_len] = '\0';
	}
	r = mc_sign("gw-17", fkey, sizeof(fkey), m->cmd, m->ts, m->nonce,
	    m->args ? args : NULL, out, sizeof(out), &len);
	if (r != 0)
		abort();
	if (mc_verifier_new("gw-17", fkey, sizeof(fkey), 0, 4, &v) != 0)
		return;
	if (len > MC_MAX_PAYLOAD) {
		if (mc_verify(v, (uint8_t *)out, len, m->ts, &m2, &why) !=
		    RT_ERR_TOOBIG)
			abort();
	} else {
		if (mc_verify(v, (uint8_t *)out, len, m->ts, &m2, &why) != 0 ||
		    m2.kind != m->kind || m2.ts != m->ts ||
		    strcmp(m2.nonce, m->nonce) != 0 ||
		    m2.args_len != m->args_len ||
		    (m->args && memcmp(m2.args, m->args, m->args_len) != 0))
			abort();
		if (mc_verify(v, (uint8_t *)out, len, m->ts, &m2, &why) !=
		    RT_ERR_REFUSED || strcmp(why, "replayed nonce") != 0)
			abort();
	}
	mc_verifier_free(v);
}

static void
check_parse(const uint8_t *data, size_t size)
{
	struct mc_msg m;
	const char *why = NULL;
	char s[64], canon[MC_MAX_PAYLOAD + 256];
	int64_t iv;
	size_t i, len;
	int r;

	r = mc_parse(data, size, &m, &why);
	if (why == NULL)
		abort();
	if (r != 0) {
		if ((r != RT_ERR_PROTO && r != RT_ERR_TOOBIG) ||
		    !all_zero(&m, sizeof(m)))
			abort();
		return;
	}
	if (m.kind < MC_TUNNEL_OPEN || m.kind > MC_PING || m.cmd == NULL ||
	    m.ts < 0 || m.ts > INT64_C(9999999999999))
		abort();
	len = strlen(m.nonce);
	if (len < MC_NONCE_MIN || len > MC_NONCE_MAX)
		abort();
	for (i = 0; i < len; i++)
		if (!strchr("0123456789abcdef", m.nonce[i]))
			abort();
	if (m.args != NULL && (m.args < data || m.args_len < 2 ||
	    m.args + m.args_len > data + size || m.args[0] != '{' ||
	    m.args[m.args_len - 1] != '}'))
		abort();
	if (mc_canonical("gw-17", &m, canon, sizeof(canon), &len) != 0)
		abort();
	if (mc_arg_str(&m, "service", s, sizeof(s)) == 0 &&
	    strlen(s) >= sizeof(s))
		abort();
	(void)mc_arg_int(&m, "ttl", &iv);
	check_resign(&m);
}

/* The input as a JSON string through tj_strn and back through the parser. */
static void
check_string(const uint8_t *data, size_t size)
{
	static char json[MC_MAX_PAYLOAD], out[2 * MC_MAX_PAYLOAD];
	static char back[3 * FUZZ_STR_MAX + 1];	/* U+FFFD: 1 byte -> 3 */
	struct mc_verifier *v;
	struct tjson j;
	struct mc_msg m;
	const char *why;
	size_t len, olen;

	if (size > FUZZ_STR_MAX || memchr(data, 0, size) != NULL)
		return;
	tj_init(&j, json, sizeof(json));
	tj_obj(&j, NULL);
	tj_strn(&j, "s", (const char *)data, size);
	tj_close(&j);
	if (tj_finish(&j, &len) != 0)
		abort();
	if (mc_sign("gw-17", fkey, sizeof(fkey), "ping", FUZZ_NOW,
	    "0123456789abcdef", json, out, sizeof(out), &olen) != 0)
		abort();
	if (mc_verifier_new("gw-17", fkey, sizeof(fkey), 0, 4, &v) != 0)
		return;
	if (olen <= MC_MAX_PAYLOAD) {
		if (mc_verify(v, (uint8_t *)out, olen, FUZZ_NOW, &m, &why) != 0 ||
		    mc_arg_str(&m, "s", back, sizeof(back)) != 0)
			abort();
		/* Unchanged unless invalid UTF-8 was replaced. */
		if (strstr(json, "\\ufffd") == NULL &&
		    (strlen(back) != size || memcmp(back, data, size) != 0))
			abort();
	}
	mc_verifier_free(v);
}

static void
check_metrics(const uint8_t *data, size_t size)
{
	static struct tm_metrics mt;
	char err[128];
	size_t i;

	if (tm_metrics_parse((const char *)data, size, &mt, err,
	    sizeof(err)) != 0) {
		if (mt.n != 0 || err[0] == '\0')
			abort();
		return;
	}
	if (mt.n > TM_USER_METRICS)
		abort();
	for (i = 0; i < mt.n; i++)
		if (strlen(mt.m[i].key) == 0 ||
		    strlen(mt.m[i].key) > TM_KEY_MAX ||
		    strlen(mt.m[i].val) == 0 ||
		    strlen(mt.m[i].val) > TM_VAL_MAX)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);
	check_string(data, size);
	check_metrics(data, size);
	return 0;
}
