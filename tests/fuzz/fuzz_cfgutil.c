/*
 * fuzz_cfgutil.c - fuzz target for common/cfgutil.c: the value parsers and
 * cfgu_parse_buf() on a small schema using every cfgu validator.
 *
 * The input, cut at its first NUL, is
 *  - parsed as a duration and as a size, each compared with a reference
 *    parser written from the syntax in cfgutil.h (digits, then an
 *    optional unit; at most 30 days / 1 TiB; no overflow), and
 *  - parsed as a config text; on success every value read back through
 *    cfgu_get_duration() / cfgu_get_size() must agree with the parsers
 *    and the validators' ranges must hold.
 * Every failed parse must leave at least one message, and the error list
 * stays bounded. An accepted text is complete: the same text followed by
 * "\n}" must be refused (it was not inside a comment, section or list).
 * Any violation aborts.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <confuse.h>

#include "cfgutil.h"
#include "err.h"
#include "log.h"

#define REF_MAX_DURATION_MS	((uint64_t)30 * 24 * 3600 * 1000)
#define REF_MAX_SIZE		((uint64_t)1 << 40)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Digits then exactly one of the units; 0 and *v, or -1. */
static int
ref_parse(const char *s, const char *const *units, const uint64_t *mult,
	  size_t nunits, uint64_t max, uint64_t *v)
{
	unsigned __int128 n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned)(*p - '0');
		if (n > UINT64_MAX)
			return -1;
	}
	for (size_t i = 0; i < nunits; i++) {
		if (strcmp(p, units[i]) != 0)
			continue;
		n *= mult[i];
		if (n > max)
			return -1;
		*v = (uint64_t)n;
		return 0;
	}
	return -1;
}

static void
check_values(const char *s)
{
	static const char *const dunits[] = { "", "ms", "s", "m", "h", "d" };
	static const uint64_t dmult[] = { 1000, 1, 1000, 60000, 3600000,
	    86400000 };
	static const char *const sunits[] = { "", "k", "K", "m", "M", "g",
	    "G" };
	static const uint64_t smult[] = { 1, 1024, 1024, 1 << 20, 1 << 20,
	    1 << 30, 1 << 30 };
	int64_t ms = -7;
	uint64_t b = 7, want;
	int r, rr;

	r = cfgu_parse_duration(s, &ms);
	rr = ref_parse(s, dunits, dmult, 6, REF_MAX_DURATION_MS, &want);
	if (r != 0 && (r != RT_ERR_INVAL || ms != -7))
		abort();
	if ((r == 0) != (rr == 0) || (r == 0 && (uint64_t)ms != want))
		abort();

	r = cfgu_parse_size(s, &b);
	rr = ref_parse(s, sunits, smult, 7, REF_MAX_SIZE, &want);
	if (r != 0 && (r != RT_ERR_INVAL || b != 7))
		abort();
	if ((r == 0) != (rr == 0) || (r == 0 && b != want))
		abort();
	if (cfgu_parse_duration(NULL, &ms) != RT_ERR_INVAL ||
	    cfgu_parse_size(NULL, &b) != RT_ERR_INVAL)
		abort();
}

static cfg_t *
schema(void)
{
	static cfg_opt_t sect_opts[] = {
		CFG_STR("timeout", "10s", CFGF_NONE),
		CFG_INT("port", 22, CFGF_NONE),
		CFG_STR_LIST("paths", "{}", CFGF_NONE),
		CFG_END()
	};
	static cfg_opt_t opts[] = {
		CFG_STR("timeout", "30s", CFGF_NONE),
		CFG_STR("buffer", "256k", CFGF_NONE),
		CFG_INT("port", 443, CFGF_NONE),
		CFG_INT("count", 3, CFGF_NONE),
		CFG_STR("path", "/etc/revtun/x", CFGF_NONE),
		CFG_STR_LIST("timeouts", "{1s, 2m}", CFGF_NONE),
		CFG_INT_LIST("ports", "{1, 2}", CFGF_NONE),
		CFG_BOOL("flag", cfg_false, CFGF_NONE),
		CFG_FLOAT("ratio", 0.5, CFGF_NONE),
		CFG_SEC("svc", sect_opts, CFGF_MULTI | CFGF_TITLE |
		    CFGF_NO_TITLE_DUPES),
		CFG_END()
	};
	cfg_t *cfg;

	if ((cfg = cfg_init(opts, CFGF_NONE)) == NULL)
		return NULL;
	cfg_set_validate_func(cfg, "timeout", cfgu_validate_duration);
	cfg_set_validate_func(cfg, "buffer", cfgu_validate_size);
	cfg_set_validate_func(cfg, "port", cfgu_validate_port);
	cfg_set_validate_func(cfg, "count", cfgu_validate_positive);
	cfg_set_validate_func(cfg, "path", cfgu_validate_path);
	cfg_set_validate_func(cfg, "timeouts", cfgu_validate_duration);
	cfg_set_validate_func(cfg, "ports", cfgu_validate_port);
	cfg_set_validate_func(cfg, "svc|timeout", cfgu_validate_duration);
	cfg_set_validate_func(cfg, "svc|port", cfgu_validate_port);
	cfg_set_validate_func(cfg, "svc|paths", cfgu_validate_path);
	return cfg;
}

static void
check_duration_opt(cfg_t *cfg, const char *name)
{
	int64_t ms;

	if (cfgu_parse_duration(cfg_getstr(cfg, name), &ms) != 0 ||
	    cfgu_get_duration(cfg, name) != ms)
		abort();
}

static void
check_config(cfg_t *cfg)
{
	uint64_t b;
	const char *p;
	long v;

	check_duration_opt(cfg, "timeout");
	if (cfgu_parse_size(cfg_getstr(cfg, "buffer"), &b) != 0 ||
	    cfgu_get_size(cfg, "buffer") != b)
		abort();
	v = cfg_getint(cfg, "port");
	if (v < 1 || v > 65535 || cfg_getint(cfg, "count") < 1)
		abort();
	if ((p = cfg_getstr(cfg, "path")) == NULL || p[0] != '/')
		abort();
	for (unsigned int i = 0; i < cfg_size(cfg, "timeouts"); i++) {
		int64_t ms;

		if (cfgu_parse_duration(cfg_getnstr(cfg, "timeouts", i),
		    &ms) != 0)
			abort();
	}
	for (unsigned int i = 0; i < cfg_size(cfg, "ports"); i++) {
		v = cfg_getnint(cfg, "ports", i);
		if (v < 1 || v > 65535)
			abort();
	}
	for (unsigned int i = 0; i < cfg_size(cfg, "svc"); i++) {
		cfg_t *s = cfg_getnsec(cfg, "svc", i);

		check_duration_opt(s, "timeout");
		v = cfg_getint(s, "port");
		if (v < 1 || v > 65535)
			abort();
		for (unsigned int j = 0; j < cfg_size(s, "paths"); j++) {
			p = cfg_getnstr(s, "paths", j);
			if (p == NULL || p[0] != '/')
				abort();
		}
	}
}

/* text (cut at its first NUL) was accepted: with "\n}" after it, the
 * brace has nothing to close. */
static void
check_complete(const char *text, size_t size)
{
	struct cfgu_errors errs;
	char *more;
	cfg_t *cfg;
	size_t n = strnlen(text, size);

	if ((more = malloc(n + 3)) == NULL)
		return;
	memcpy(more, text, n);
	memcpy(more + n, "\n}", 3);
	if ((cfg = schema()) == NULL)
		abort();
	cfgu_errors_init(&errs);
	if (cfgu_parse_buf(cfg, more, "fuzz.conf", &errs) != RT_ERR_CONFIG)
		abort();
	cfg_free(cfg);
	free(more);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	static struct cfgu_errors errs;
	char *text;
	cfg_t *cfg;
	int r;

	if (!inited) {
		log_init("fuzz_cfgutil", 0, LOG_LVL_ERR);
		inited = 1;
	}
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	check_values(text);

	if ((cfg = schema()) == NULL)
		abort();
	cfgu_errors_init(&errs);
	r = cfgu_parse_buf(cfg, text, "fuzz.conf", &errs);
	if (errs.n > CFGU_MAX_ERRORS)
		abort();
	for (unsigned int i = 0; i < errs.n; i++) {
		if (memchr(errs.msg[i], '\0', CFGU_ERRLEN) == NULL)
			abort();
	}
	if (r == 0) {
		if (errs.n != 0)
			abort();
		check_config(cfg);
	} else if (r != RT_ERR_CONFIG || errs.n == 0) {
		abort();
	}
	cfg_free(cfg);
	if (r == 0)
		check_complete(text, size);
	free(text);
	return 0;
}
