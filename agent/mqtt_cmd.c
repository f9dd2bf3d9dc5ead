/*
 * mqtt_cmd.c - command parsing, HMAC, freshness and replay cache
 * (mqtt_cmd.h). The JSON parser here is just for commands: strict
 * RFC 8259 syntax, bounded input and depth, no allocation, no I/O.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cfgutil.h"
#include "err.h"
#include "mqtt_cmd.h"
#include "telemetry.h"
#include "util.h"

#define MC_CANON_PREFIX	"revtun-cmd-v1\n"
#define MC_TS_MAX	INT64_C(9999999999999)	/* 13 digits */

static const char *const mc_names[] = {
	[MC_TUNNEL_OPEN] = "tunnel-open",
	[MC_TUNNEL_CLOSE] = "tunnel-close",
	[MC_TELEMETRY_NOW] = "telemetry-now",
	[MC_PING] = "ping",
};

/* ---- the parser ---- */

struct jp {
	const uint8_t	*p;
	size_t		 n, i;
	const char	*why;		/* first error */
};

static int
jp_fail(struct jp *j, const char *why)
{
	if (j->why == NULL)
		j->why = why;
	return -1;
}

static void
jp_ws(struct jp *j)
{
	while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' ||
	    j->p[j->i] == '\n' || j->p[j->i] == '\r'))
		j->i++;
}

static int
jp_peek(struct jp *j)
{
	return j->i < j->n ? j->p[j->i] : -1;
}

static int
jp_expect(struct jp *j, int c)
{
	jp_ws(j);
	if (jp_peek(j) != c)
		return jp_fail(j, "malformed JSON");
	j->i++;
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
jp_hex4(struct jp *j, unsigned *v)
{
	unsigned x = 0;
	int k, d;

	if (j->n - j->i < 4)
		return jp_fail(j, "malformed JSON");
	for (k = 0; k < 4; k++) {
		if ((d = hexval(j->p[j->i + k])) < 0)
			return jp_fail(j, "malformed JSON");
		x = x << 4 | (unsigned)d;
	}
	j->i += 4;
	*v = x;
	return 0;
}

/* Appends n bytes to out if there is room (keeping one for the NUL). */
static int
jp_emit(struct jp *j, char *out, size_t cap, size_t *olen, const void *b,
    size_t n)
{
	if (out == NULL)
		return 0;
	if (n >= cap - *olen)
		return jp_fail(j, "string too long");
	memcpy(out + *olen, b, n);
	*olen += n;
	out[*olen] = '\0';
	return 0;
}

/* Length of a well-formed UTF-8 sequence at p[0..n), or 0. */
static size_t
utf8_len(const uint8_t *p, size_t n)
{
	size_t run, k;

	run = (p[0] >= 0xc2 && p[0] <= 0xdf) ? 2 :
	    (p[0] >= 0xe0 && p[0] <= 0xef) ? 3 :
	    (p[0] >= 0xf0 && p[0] <= 0xf4) ? 4 : 0;
	if (run == 0 || run > n)
		return 0;
	for (k = 1; k < run; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return run;
}

/*
 * A string at j->i (after optional blanks), decoded into out (cap bytes,
 * NUL-terminated) when out is not NULL. U+0000 is refused so decoded
 * strings are C strings.
 */
static int
jp_string(struct jp *j, char *out, size_t cap, size_t *olen)
{
	uint8_t u[4];
	unsigned cp, lo;
	size_t k, ul;
	int c;

	*olen = 0;
	if (out != NULL)
		out[0] = '\0';
	if (jp_expect(j, '"') != 0)
		return -1;
	for (;;) {
		if (j->i >= j->n)
			return jp_fail(j, "malformed JSON");
		c = j->p[j->i];
		if (c == '"') {
			j->i++;
			return 0;
		}
		if (c < 0x20)
			return jp_fail(j, "control character in string");
		if (c >= 0x80) {
			if ((k = utf8_len(j->p + j->i, j->n - j->i)) == 0)
				return jp_fail(j, "invalid UTF-8");
			if (jp_emit(j, out, cap, olen, j->p + j->i, k) != 0)
				return -1;
			j->i += k;
			continue;
		}
		j->i++;
		if (c != '\\') {
			if (jp_emit(j, out, cap, olen, &j->p[j->i - 1], 1) != 0)
				return -1;
			continue;
		}
		if (j->i >= j->n)
			return jp_fail(j, "malformed JSON");
		c = j->p[j->i++];
		switch (c) {
		case '"': case '\\': case '/': u[0] = (uint8_t)c; break;
		case 'b': u[0] = '\b'; break;
		case 'f': u[0] = '\f'; break;
		case 'n': u[0] = '\n'; break;
		case 'r': u[0] = '\r'; break;
		case 't': u[0] = '\t'; break;
		case 'u':
			if (jp_hex4(j, &cp) != 0)
				return -1;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return jp_fail(j, "bad \\u escape");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (j->n - j->i < 2 || j->p[j->i] != '\\' ||
				    j->p[j->i + 1] != 'u')
					return jp_fail(j, "bad \\u escape");
				j->i += 2;
				if (jp_hex4(j, &lo) != 0)
					return -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return jp_fail(j, "bad \\u escape");
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			if (cp == 0)
				return jp_fail(j, "NUL in string");
			if (cp < 0x80) {
				u[0] = (uint8_t)cp;
				ul = 1;
			} else if (cp < 0x800) {
				u[0] = (uint8_t)(0xc0 | cp >> 6);
				u[1] = (uint8_t)(0x80 | (cp & 0x3f));
				ul = 2;
			} else if (cp < 0x10000) {
				u[0] = (uint8_t)(0xe0 | cp >> 12);
				u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
				u[2] = (uint8_t)(0x80 | (cp & 0x3f));
				ul = 3;
			} else {
				u[0] = (uint8_t)(0xf0 | cp >> 18);
				u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
				u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
				u[3] = (uint8_t)(0x80 | (cp & 0x3f));
				ul = 4;
			}
			if (jp_emit(j, out, cap, olen, u, ul) != 0)
				return -1;
			continue;
		default:
			return jp_fail(j, "malformed JSON");
		}
		if (jp_emit(j, out, cap, olen, u, 1) != 0)
			return -1;
	}
}

static size_t
jp_digits(struct jp *j)
{
	size_t s = j->i;

	while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9')
		j->i++;
	return j->i - s;
}

/* A number (RFC 8259 grammar). *is_int and *v are set for integers of at
 * most 13 digits without sign, fraction or exponent. */
static int
jp_number(struct jp *j, int *is_int, int64_t *v)
{
	size_t s, nd;
	int c;

	*is_int = 0;
	jp_ws(j);
	s = j->i;
	if (jp_peek(j) == '-')
		j->i++;
	c = jp_peek(j);
	if (c == '0')
		j->i++;
	else if (c >= '1' && c <= '9')
		jp_digits(j);
	else
		return jp_fail(j, "malformed JSON");
	nd = j->i - s;
	if (jp_peek(j) == '.') {
		j->i++;
		if (jp_digits(j) == 0)
			return jp_fail(j, "malformed JSON");
	}
	c = jp_peek(j);
	if (c == 'e' || c == 'E') {
		j->i++;
		c = jp_peek(j);
		if (c == '+' || c == '-')
			j->i++;
		if (jp_digits(j) == 0)
			return jp_fail(j, "malformed JSON");
	}
	if (j->p[s] != '-' && j->i - s == nd && nd <= 13) {
		int64_t x = 0;
		size_t k;

		for (k = s; k < j->i; k++)
			x = x * 10 + (j->p[k] - '0');
		*v = x;
		*is_int = 1;
	}
	return 0;
}

static int
jp_literal(struct jp *j, const char *w)
{
	size_t n = strlen(w);

	if (j->n - j->i < n || memcmp(j->p + j->i, w, n) != 0)
		return jp_fail(j, "malformed JSON");
	j->i += n;
	return 0;
}

/* Any value, depth = nesting level of the container holding it. */
static int
jp_value(struct jp *j, int depth)
{
	size_t olen;
	int64_t v;
	int c, isint, close;

	jp_ws(j);
	c = jp_peek(j);
	switch (c) {
	case '{':
	case '[':
		if (depth > MC_MAX_DEPTH)
			return jp_fail(j, "too deeply nested");
		close = c == '{' ? '}' : ']';
		j->i++;
		jp_ws(j);
		if (jp_peek(j) == close) {
			j->i++;
			return 0;
		}
		for (;;) {
			if (c == '{' && (jp_string(j, NULL, 0, &olen) != 0 ||
			    jp_expect(j, ':') != 0))
				return -1;
			if (jp_value(j, depth + 1) != 0)
				return -1;
			jp_ws(j);
			if (jp_peek(j) == close) {
				j->i++;
				return 0;
			}
			if (jp_expect(j, ',') != 0)
				return -1;
		}
	case '"':
		return jp_string(j, NULL, 0, &olen);
	case 't':
		return jp_literal(j, "true");
	case 'f':
		return jp_literal(j, "false");
	case 'n':
		return jp_literal(j, "null");
	default:
		return jp_number(j, &isint, &v);
	}
}

static int
lower_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

enum { F_CMD = 1, F_TS = 2, F_NONCE = 4, F_ARGS = 8, F_HMAC = 16 };

/* One top-level member, after its name. */
static int
parse_member(struct jp *j, const char *key, unsigned *seen, struct mc_msg *m)
{
	static const char *const fields[] = {
		"cmd", "ts", "nonce", "args", "hmac",
	};
	char s[MC_NONCE_MAX + 2];
	unsigned f = 0, k;
	size_t len, start;
	int isint;
	int64_t v;

	for (k = 0; k < RT_ARRAY_SIZE(fields); k++)
		if (strcmp(key, fields[k]) == 0)
			f = 1u << k;
	if (f == 0)
		return jp_fail(j, "unknown field");
	if (*seen & f)
		return jp_fail(j, "duplicate field");
	*seen |= f;
	switch (f) {
	case F_CMD:
		if (jp_string(j, s, sizeof(s), &len) != 0) {
			if (j->why != NULL && strcmp(j->why, "string too long")
			    == 0)
				j->why = "unknown command";
			return -1;
		}
		for (k = 1; k < RT_ARRAY_SIZE(mc_names); k++)
			if (strcmp(s, mc_names[k]) == 0)
				break;
		if (k == RT_ARRAY_SIZE(mc_names))
			return jp_fail(j, "unknown command");
		m->kind = (enum mc_kind)k;
		m->cmd = mc_names[k];
		return 0;
	case F_TS:
		if (jp_number(j, &isint, &v) != 0)
			return -1;
		if (!isint)
			return jp_fail(j, "ts not a non-negative integer");
		m->ts = v;
		return 0;
	case F_NONCE:
	case F_HMAC:
		if (jp_string(j, s, sizeof(s), &len) != 0) {
			if (j->why != NULL && strcmp(j->why, "string too long")
			    == 0)
				j->why = f == F_NONCE ? "bad nonce" :
				    "bad hmac format";
			return -1;
		}
		if (f == F_NONCE) {
			if (len < MC_NONCE_MIN || len > MC_NONCE_MAX ||
			    !lower_hex(s, len))
				return jp_fail(j, "bad nonce");
			memcpy(m->nonce, s, len + 1);
			return 0;
		}
		if (len != 64)
			return jp_fail(j, "bad hmac format");
		for (k = 0; k < 32; k++) {
			int hi = hexval((unsigned char)s[2 * k]);
			int lo = hexval((unsigned char)s[2 * k + 1]);

			if (hi < 0 || lo < 0)
				return jp_fail(j, "bad hmac format");
			m->hmac[k] = (uint8_t)(hi << 4 | lo);
		}
		return 0;
	default:		/* F_ARGS */
		jp_ws(j);
		if (jp_peek(j) != '{')
			return jp_fail(j, "args not an object");
		start = j->i;
		if (jp_value(j, 1) != 0)
			return -1;
		m->args = j->p + start;
		m->args_len = j->i - start;
		return 0;
	}
}

int
mc_parse(const uint8_t *p, size_t len, struct mc_msg *m, const char **why)
{
	static const struct {
		unsigned	 f;
		const char	*why;
	} need[] = {
		{ F_CMD, "missing field cmd" },
		{ F_TS, "missing field ts" },
		{ F_NONCE, "missing field nonce" },
		{ F_HMAC, "missing field hmac" },
	};
	struct jp j = { p, len, 0, NULL };
	char key[8];
	unsigned seen = 0, k;
	size_t klen;

	memset(m, 0, sizeof(*m));
	if (len > MC_MAX_PAYLOAD) {
		*why = "oversized";
		return RT_ERR_TOOBIG;
	}
	if (jp_expect(&j, '{') != 0)
		goto bad;
	jp_ws(&j);
	if (jp_peek(&j) == '}')
		j.i++;
	else {
		for (;;) {
			if (jp_string(&j, key, sizeof(key), &klen) != 0) {
				if (strcmp(j.why, "string too long") == 0)
					j.why = "unknown field";
				goto bad;
			}
			if (jp_expect(&j, ':') != 0 ||
			    parse_member(&j, key, &seen, m) != 0)
				goto bad;
			jp_ws(&j);
			if (jp_peek(&j) == '}') {
				j.i++;
				break;
			}
			if (jp_expect(&j, ',') != 0)
				goto bad;
		}
	}
	jp_ws(&j);
	if (j.i != j.n) {
		jp_fail(&j, "trailing bytes after JSON");
		goto bad;
	}
	for (k = 0; k < RT_ARRAY_SIZE(need); k++) {
		if ((seen & need[k].f) == 0) {
			jp_fail(&j, need[k].why);
			goto bad;
		}
	}
	*why = "ok";
	return 0;
 bad:
	memset(m, 0, sizeof(*m));
	*why = j.why;
	return RT_ERR_PROTO;
}

int
mc_canonical(const char *agent, const struct mc_msg *m, char *buf,
    size_t cap, size_t *len)
{
	int n;

	*len = 0;
	n = snprintf(buf, cap, MC_CANON_PREFIX "%s\n%s\n%" PRId64 "\n%s\n",
	    agent, m->cmd ? m->cmd : "", m->ts, m->nonce);
	if (n < 0 || (size_t)n >= cap || m->args_len >= cap - (size_t)n)
		return RT_ERR_FULL;
	if (m->args_len > 0)
		memcpy(buf + n, m->args, m->args_len);
	*len = (size_t)n + m->args_len;
	buf[*len] = '\0';
	return 0;
}

/* Finds the top-level member name of args; leaves j at its value. */
static int
arg_find(const struct mc_msg *m, const char *name, struct jp *j)
{
	char key[MC_MAX_PAYLOAD];
	size_t klen;

	if (m->args == NULL)
		return RT_ERR_NOTFOUND;
	*j = (struct jp){ m->args, m->args_len, 1, NULL };
	jp_ws(j);
	if (jp_peek(j) == '}')
		return RT_ERR_NOTFOUND;
	for (;;) {
		if (jp_string(j, key, sizeof(key), &klen) != 0 ||
		    jp_expect(j, ':') != 0)
			return RT_ERR_NOTFOUND;
		jp_ws(j);
		if (strcmp(key, name) == 0)
			return 0;
		if (jp_value(j, 1) != 0)
			return RT_ERR_NOTFOUND;
		if (jp_expect(j, ',') != 0)
			return RT_ERR_NOTFOUND;
	}
}

int
mc_arg_str(const struct mc_msg *m, const char *name, char *buf, size_t cap)
{
	struct jp j;
	size_t len;

	if (cap == 0 || arg_find(m, name, &j) != 0 || jp_peek(&j) != '"')
		return RT_ERR_NOTFOUND;
	if (jp_string(&j, buf, cap, &len) != 0) {
		buf[0] = '\0';
		return RT_ERR_FULL;
	}
	return 0;
}

int
mc_arg_int(const struct mc_msg *m, const char *name, int64_t *v)
{
	struct jp j;
	int64_t x;
	int isint, neg;

	if (arg_find(m, name, &j) != 0)
		return RT_ERR_NOTFOUND;
	neg = jp_peek(&j) == '-';
	if (neg)
		j.i++;
	if (jp_number(&j, &isint, &x) != 0 || !isint)
		return RT_ERR_NOTFOUND;
	*v = neg ? -x : x;
	return 0;
}

/* ---- verifier ---- */

struct mc_seen {
	int64_t	ts;
	char	nonce[MC_NONCE_MAX + 1];
};

struct mc_verifier {
	char		 agent[65];
	uint8_t		 key[MC_KEY_MAX];
	size_t		 keylen;
	int64_t		 window;
	int64_t		 floor;	/* max forgotten ts, or -1 */
	size_t		 n, max;
	struct mc_seen	*seen;
};

int
mc_verifier_new(const char *agent, const uint8_t *key, size_t keylen,
    int64_t window_s, size_t cache_max, struct mc_verifier **out)
{
	struct mc_verifier *v;

	*out = NULL;
	if (window_s == 0)
		window_s = MC_WINDOW_DEFAULT;
	if (cache_max == 0)
		cache_max = MC_CACHE_DEFAULT;
	if (agent == NULL || !rt_valid_id(agent) || key == NULL ||
	    keylen < MC_KEY_MIN || keylen > MC_KEY_MAX || window_s < 1 ||
	    window_s > 86400 || cache_max > 65536)
		return RT_ERR_INVAL;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return RT_ERR_NOMEM;
	if ((v->seen = calloc(cache_max, sizeof(*v->seen))) == NULL) {
		free(v);
		return RT_ERR_NOMEM;
	}
	rt_strlcpy(v->agent, agent, sizeof(v->agent));
	memcpy(v->key, key, keylen);
	v->keylen = keylen;
	v->window = window_s;
	v->floor = -1;
	v->max = cache_max;
	*out = v;
	return 0;
}

void
mc_verifier_free(struct mc_verifier *v)
{
	if (v == NULL)
		return;
	OPENSSL_cleanse(v->key, sizeof(v->key));
	free(v->seen);
	free(v);
}

size_t
mc_verifier_cached(const struct mc_verifier *v)
{
	return v->n;
}

int
mc_verify(struct mc_verifier *v, const uint8_t *p, size_t len,
    int64_t now_s, struct mc_msg *m, const char **why)
{
	char canon[MC_MAX_PAYLOAD + 256];
	uint8_t mac[32];
	size_t clen, i;
	int r;

	if ((r = mc_parse(p, len, m, why)) != 0)
		return r;
	r = RT_ERR_REFUSED;
	if (mc_canonical(v->agent, m, canon, sizeof(canon), &clen) != 0 ||
	    tm_hmac_sha256(v->key, v->keylen, canon, clen, mac) != 0 ||
	    CRYPTO_memcmp(mac, m->hmac, sizeof(mac)) != 0) {
		*why = "bad hmac";
		goto out;
	}
	/* ts <= MC_TS_MAX; keep now in a range where nothing overflows. */
	if (now_s < 0 || now_s > MC_TS_MAX) {
		*why = "no valid clock";
		goto out;
	}
	if (now_s - m->ts > v->window) {
		*why = "stale timestamp";
		goto out;
	}
	if (m->ts - now_s > v->window) {
		*why = "timestamp in the future";
		goto out;
	}
	/* Forget what left the window; a replay of it is stale now. */
	for (i = 0; i < v->n; ) {
		if (v->seen[i].ts < now_s - v->window) {
			v->floor = RT_MAX(v->floor, v->seen[i].ts);
			v->seen[i] = v->seen[--v->n];
		} else
			i++;
	}
	if (m->ts <= v->floor) {
		*why = "timestamp before forgotten nonces";
		goto out;
	}
	for (i = 0; i < v->n; i++) {
		if (strcmp(v->seen[i].nonce, m->nonce) == 0) {
			*why = "replayed nonce";
			goto out;
		}
	}
	if (v->n == v->max) {
		*why = "replay cache full";
		r = RT_ERR_LIMIT;
		goto out;
	}
	v->seen[v->n].ts = m->ts;
	memcpy(v->seen[v->n].nonce, m->nonce, sizeof(m->nonce));
	v->n++;
	*why = "ok";
	r = 0;
 out:
	OPENSSL_cleanse(mac, sizeof(mac));
	if (r != 0)
		memset(m, 0, sizeof(*m));
	return r;
}

int
mc_sign(const char *agent, const uint8_t *key, size_t keylen,
    const char *cmd, int64_t ts, const char *nonce, const char *args,
    char *buf, size_t cap, size_t *len)
{
	static const char hex[] = "0123456789abcdef";
	char canon[MC_MAX_PAYLOAD + 256], tag[65];
	struct mc_msg m;
	uint8_t mac[32];
	size_t clen, i, nl;
	int n, r;

	*len = 0;
	memset(&m, 0, sizeof(m));
	nl = nonce ? strlen(nonce) : 0;
	if (agent == NULL || !rt_valid_id(agent) || key == NULL ||
	    keylen == 0 || cmd == NULL || ts < 0 || ts > MC_TS_MAX ||
	    nl < MC_NONCE_MIN || nl > MC_NONCE_MAX || !lower_hex(nonce, nl))
		return RT_ERR_INVAL;
	for (i = 1; i < RT_ARRAY_SIZE(mc_names); i++)
		if (strcmp(cmd, mc_names[i]) == 0)
			m.cmd = mc_names[i];
	if (m.cmd == NULL)
		return RT_ERR_INVAL;
	m.ts = ts;
	memcpy(m.nonce, nonce, nl + 1);
	m.args = (const uint8_t *)args;
	m.args_len = args ? strlen(args) : 0;
	if ((r = mc_canonical(agent, &m, canon, sizeof(canon), &clen)) != 0)
		return r;
	if ((r = tm_hmac_sha256(key, keylen, canon, clen, mac)) != 0)
		return r;
	for (i = 0; i < 32; i++) {
		tag[2 * i] = hex[mac[i] >> 4];
		tag[2 * i + 1] = hex[mac[i] & 15];
	}
	tag[64] = '\0';
	n = snprintf(buf, cap, "{\"cmd\":\"%s\",\"ts\":%" PRId64
	    ",\"nonce\":\"%s\"%s%s,\"hmac\":\"%s\"}", m.cmd, ts, nonce,
	    args ? ",\"args\":" : "", args ? args : "", tag);
	if (n < 0 || (size_t)n >= cap)
		return RT_ERR_FULL;
	*len = (size_t)n;
	return 0;
}

int
mc_key_load(const char *path, uint8_t *key, size_t cap, size_t *len,
    char *err, size_t errlen)
{
	char text[2 * MC_KEY_MAX + 2];
	size_t n = 0, i;
	ssize_t got;
	int fd, r;

	*len = 0;
	if (cap < MC_KEY_MAX)
		return RT_ERR_INVAL;
	if ((r = cfgu_check_key_perms(path, err, errlen)) != 0)
		return r;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf(err, errlen, "key %s: %s", path, strerror(errno));
		return RT_ERR_SYS;
	}
	while (n < sizeof(text)) {
		got = read(fd, text + n, sizeof(text) - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	r = RT_ERR_INVAL;
	if (n > 0 && text[n - 1] == '\n')
		n--;
	if (n < 2 * MC_KEY_MIN || n > 2 * MC_KEY_MAX || n % 2 != 0) {
		snprintf(err, errlen, "key %s: must hold %d to %d hex digits",
		    path, 2 * MC_KEY_MIN, 2 * MC_KEY_MAX);
		goto out;
	}
	for (i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)text[2 * i]);
		int lo = hexval((unsigned char)text[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "key %s: not hex", path);
			OPENSSL_cleanse(key, cap);
			goto out;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	r = 0;
 out:
	OPENSSL_cleanse(text, sizeof(text));
	return r;
}

/* ---- subscription probe ---- */

#define MC_PROBE_HEAD	"{\"probe\":\""
#define MC_PROBE_TAIL	"\"}"

static int
probe_token_ok(const char *t, size_t len)
{
	size_t i;

	if (len != MC_PROBE_TOKEN_LEN)
		return 0;
	for (i = 0; i < len; i++)
		if (!((t[i] >= '0' && t[i] <= '9') ||
		    (t[i] >= 'a' && t[i] <= 'f')))
			return 0;
	return 1;
}

int
mc_probe_build(const char *token, char *buf, size_t cap, size_t *len)
{
	int n;

	if (token == NULL || !probe_token_ok(token, strlen(token)))
		return RT_ERR_INVAL;
	n = snprintf(buf, cap, MC_PROBE_HEAD "%s" MC_PROBE_TAIL, token);
	if (n < 0 || (size_t)n >= cap)
		return RT_ERR_FULL;
	*len = (size_t)n;
	return 0;
}

int
mc_probe_parse(const uint8_t *p, size_t len,
    char token[MC_PROBE_TOKEN_LEN + 1])
{
	const size_t hl = sizeof(MC_PROBE_HEAD) - 1;
	const size_t tl = sizeof(MC_PROBE_TAIL) - 1;

	token[0] = '\0';
	if (p == NULL || len != hl + MC_PROBE_TOKEN_LEN + tl ||
	    memcmp(p, MC_PROBE_HEAD, hl) != 0 ||
	    memcmp(p + hl + MC_PROBE_TOKEN_LEN, MC_PROBE_TAIL, tl) != 0 ||
	    !probe_token_ok((const char *)p + hl, MC_PROBE_TOKEN_LEN))
		return RT_ERR_NOTFOUND;
	memcpy(token, p + hl, MC_PROBE_TOKEN_LEN);
	token[MC_PROBE_TOKEN_LEN] = '\0';
	return 0;
}
