/*
 * fuzz_acl.c - fuzz target for relay/acl.c: builds an ACL from the input
 * and queries it, checking the results against a model of the grants that
 * were accepted; aborts on any violation.
 *
 * Input: the first byte's low bit is allow_glob; the rest is lines of
 * tokens separated by single spaces (empty tokens are kept):
 *   OPERATOR KIND GRANT          acl_add(), where = "f:LINENO"
 *   OPERATOR KIND AGENT WHAT     acl_check() and acl_any()
 * KIND starting with 'r' is ACL_RIGHT, 'x' an invalid kind (7), anything
 * else ACL_SERVICE. Other token counts are ignored.
 *
 * Invariants:
 *  - a refused grant says why (err non-empty) and changes nothing;
 *  - an accepted grant has a valid operator id and, unless it is a glob,
 *    valid ids on both halves (and a known right for ACL_RIGHT); a glob
 *    is accepted only with allow_glob; acl_glob_count() counts them;
 *  - acl_check() allows exactly what some accepted grant of that
 *    operator and kind matches (strcmp for literals, fnmatch for globs),
 *    and names the first such grant as the rule;
 *  - without allow_glob, nothing is allowed that was not added verbatim;
 *  - acl_any() is 1 exactly when some grant's agent half matches;
 *  - every grant, once added, allows its own literal pair.
 */
#include "config.h"

#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "err.h"
#include "util.h"

#define FUZZ_MAX_LINE	256
#define FUZZ_MAX_TOKENS	4
#define FUZZ_MAX_GRANTS	512
#define FUZZ_RULE_MAX	(3 * FUZZ_MAX_LINE + 64)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct model_grant {
	char op[FUZZ_MAX_LINE];
	char agent[FUZZ_MAX_LINE];
	char what[FUZZ_MAX_LINE];
	char rule[FUZZ_RULE_MAX];
	enum acl_kind kind;
	int glob;
};

struct model {
	int allow_glob;
	size_t n;
	unsigned int nglob;
	struct model_grant g[FUZZ_MAX_GRANTS];
};

static struct model m;

static int
has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static int
known_right(const char *s)
{
	return strcmp(s, "read") == 0 || strcmp(s, "write") == 0 ||
	    strcmp(s, "logs") == 0 || strcmp(s, "shell") == 0;
}

static int
half_match(const struct model_grant *g, const char *pat, const char *s)
{
	if (!g->glob)
		return strcmp(pat, s) == 0;
	return fnmatch(pat, s, FNM_NOESCAPE) == 0;
}

/* The model's answer to acl_check(): the first matching grant or NULL. */
static const struct model_grant *
model_check(const char *op, enum acl_kind kind, const char *agent,
	    const char *what)
{
	for (size_t i = 0; i < m.n; i++) {
		const struct model_grant *g = &m.g[i];

		if (g->kind != kind || strcmp(g->op, op) != 0)
			continue;
		if (half_match(g, g->agent, agent) &&
		    half_match(g, g->what, what))
			return g;
	}
	return NULL;
}

static int
model_any(const char *op, const char *agent)
{
	for (size_t i = 0; i < m.n; i++) {
		const struct model_grant *g = &m.g[i];

		if (strcmp(g->op, op) == 0 && half_match(g, g->agent, agent))
			return 1;
	}
	return 0;
}

static void
check_pair(const struct acl *acl, const char *op, enum acl_kind kind,
	   const char *agent, const char *what)
{
	const struct model_grant *g = model_check(op, kind, agent, what);
	const char *rule = NULL;
	int r = acl_check(acl, op, kind, agent, what, &rule);

	if (rule == NULL || r != (g != NULL))
		abort();
	if (g != NULL ? strcmp(rule, g->rule) != 0 :
	    strcmp(rule, "default deny") != 0)
		abort();
	/* Without globs only a verbatim pair can pass. */
	if (r && !m.allow_glob && (strchr(agent, ':') != NULL ||
	    !rt_valid_id(agent) || !rt_valid_id(what)))
		abort();
	if (acl_any(acl, op, agent) != model_any(op, agent))
		abort();
	if (acl_check(acl, NULL, kind, agent, what, NULL) != 0 ||
	    acl_check(acl, op, kind, NULL, what, NULL) != 0 ||
	    acl_check(acl, op, kind, agent, NULL, NULL) != 0)
		abort();
}

static void
do_add(struct acl *acl, const char *op, enum acl_kind kind,
       const char *grant, unsigned int lineno)
{
	struct model_grant *g;
	char err[256], where[32], agent[FUZZ_MAX_LINE];
	const char *colon, *what;
	int r;

	snprintf(where, sizeof(where), "f:%u", lineno);
	err[0] = 'x';
	err[1] = '\0';
	r = acl_add(acl, op, kind, grant, where, err, sizeof(err));
	if (r != 0) {
		if (r != RT_ERR_INVAL || err[0] == '\0')
			abort();
		if (acl_glob_count(acl) != m.nglob)
			abort();
		return;
	}
	if (err[0] != '\0' || !rt_valid_id(op) ||
	    (kind != ACL_SERVICE && kind != ACL_RIGHT))
		abort();
	if ((colon = strchr(grant, ':')) == NULL ||
	    strchr(colon + 1, ':') != NULL)
		abort();
	memcpy(agent, grant, (size_t)(colon - grant));
	agent[colon - grant] = '\0';
	what = colon + 1;
	if (has_glob(agent) || has_glob(what)) {
		if (!m.allow_glob)
			abort();
	} else {
		if (!rt_valid_id(agent) || !rt_valid_id(what))
			abort();
		if (kind == ACL_RIGHT && !known_right(what))
			abort();
	}
	if (m.n == FUZZ_MAX_GRANTS)
		return;		/* the caller stops adding before this */
	g = &m.g[m.n++];
	snprintf(g->op, sizeof(g->op), "%s", op);
	snprintf(g->agent, sizeof(g->agent), "%s", agent);
	snprintf(g->what, sizeof(g->what), "%s", what);
	if ((size_t)snprintf(g->rule, sizeof(g->rule), "%s %s:%s (%s)", op,
	    agent, what, where) >= sizeof(g->rule))
		abort();	/* cannot happen: the line is shorter */
	g->kind = kind;
	g->glob = has_glob(agent) || has_glob(what);
	if (g->glob)
		m.nglob++;
	if (acl_glob_count(acl) != m.nglob)
		abort();
	/* A literal grant allows its own pair (maybe through an earlier
	 * rule); check_pair() verifies which. */
	if (!g->glob && acl_check(acl, op, kind, agent, what, NULL) != 1)
		abort();
	check_pair(acl, op, kind, agent, what);
}

static enum acl_kind
parse_kind(const char *s)
{
	if (s[0] == 'r')
		return ACL_RIGHT;
	if (s[0] == 'x')
		return (enum acl_kind)7;
	return ACL_SERVICE;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acl *acl;
	char line[FUZZ_MAX_LINE];
	char *tok[FUZZ_MAX_TOKENS + 1];
	size_t off = 1, len;
	unsigned int lineno = 0;
	int ntok;

	if (size == 0)
		return 0;
	memset(&m, 0, sizeof(m));
	m.allow_glob = data[0] & 1;
	if (acl_new(m.allow_glob, &acl) != 0)
		abort();
	if (acl_glob_count(acl) != 0 ||
	    acl_check(acl, "a", ACL_SERVICE, "b", "c", NULL) != 0)
		abort();

	while (off < size) {
		lineno++;
		for (len = 0; off + len < size && data[off + len] != '\n';
		    len++)
			;
		if (len >= sizeof(line)) {
			off += len + 1;
			continue;
		}
		memcpy(line, data + off, len);
		line[len] = '\0';
		off += len + 1;

		ntok = 0;
		tok[ntok++] = line;
		for (char *p = line; *p != '\0'; p++) {
			if (*p != ' ')
				continue;
			*p = '\0';
			if (ntok == FUZZ_MAX_TOKENS + 1)
				break;
			tok[ntok++] = p + 1;
		}
		if (ntok > FUZZ_MAX_TOKENS)
			continue;
		if (ntok == 3 && m.n < FUZZ_MAX_GRANTS)
			do_add(acl, tok[0], parse_kind(tok[1]), tok[2],
			    lineno);
		else if (ntok == 4)
			check_pair(acl, tok[0], parse_kind(tok[1]), tok[2],
			    tok[3]);
	}

	/* Every literal pair in the model is still allowed by its first
	 * matching rule. */
	for (size_t i = 0; i < m.n; i++) {
		if (!m.g[i].glob)
			check_pair(acl, m.g[i].op, m.g[i].kind, m.g[i].agent,
			    m.g[i].what);
	}
	acl_free(acl);
	return 0;
}
