/*
 * acl.c - the relay's access control list (acl.h).
 *
 * Layout: one entry per operator, each with a growing array of grants;
 * acl_check() finds the operator (linear, operators are few) and walks its
 * grants in load order; the first match decides. Each grant is one
 * allocation holding "AGENT\0WHAT\0RULE\0", where RULE is the text handed
 * to audit lines ("alice gw-17:ssh (relay.conf:40)").
 *
 * Globs: fnmatch(3) with FNM_NOESCAPE. Agent ids and service names never
 * contain a backslash, so escaping has no use; a pattern may only contain
 * id characters and "*?[]!", which also keeps '/' and '\' out. A right
 * pattern must match at least one known right.
 */
#include "config.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "err.h"
#include "util.h"

#define ACL_ID_MAX 64

struct acl_grant {
	const char *agent;	/* pattern or literal, inside text */
	const char *what;
	const char *rule;
	unsigned char kind;	/* enum acl_kind */
	unsigned char glob;	/* agent or what is a pattern */
	char *text;		/* owns the three strings */
};

struct acl_op {
	char *name;
	size_t ngrants, cap;
	struct acl_grant *grants;
};

struct acl {
	int allow_glob;
	unsigned int nglob;
	size_t nops, cap;
	struct acl_op *ops;
};

static const char *const acl_rights[] = { "read", "write", "logs", "shell" };

int
acl_new(int allow_glob, struct acl **out)
{
	struct acl *acl;

	*out = NULL;
	if ((acl = calloc(1, sizeof(*acl))) == NULL)
		return RT_ERR_NOMEM;
	acl->allow_glob = allow_glob != 0;
	*out = acl;
	return 0;
}

void
acl_free(struct acl *acl)
{
	if (acl == NULL)
		return;
	for (size_t i = 0; i < acl->nops; i++) {
		struct acl_op *op = &acl->ops[i];

		for (size_t j = 0; j < op->ngrants; j++)
			free(op->grants[j].text);
		free(op->grants);
		free(op->name);
	}
	free(acl->ops);
	free(acl);
}

static int
is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* A pattern: 1..64 chars from the id set plus the fnmatch specials. */
static int
valid_pattern(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ACL_ID_MAX)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-*?[]!") == n;
}

static int
known_right(const char *what, int glob)
{
	for (size_t i = 0; i < RT_ARRAY_SIZE(acl_rights); i++) {
		if (glob ? fnmatch(what, acl_rights[i], FNM_NOESCAPE) == 0 :
		    strcmp(what, acl_rights[i]) == 0)
			return 1;
	}
	return 0;
}

/* Checks one half of a grant; returns 1 if it is a glob, 0 if literal,
 * -1 (with err set) if refused. */
static int
check_half(const struct acl *acl, const char *grant, const char *half,
	   const char *label, char *err, size_t errlen)
{
	if (is_glob(half)) {
		if (!acl->allow_glob) {
			snprintf(err, errlen, "grant \"%s\": %s \"%s\" is a "
			    "pattern and acl_allow_glob is off", grant, label,
			    half);
			return -1;
		}
		if (!valid_pattern(half)) {
			snprintf(err, errlen, "grant \"%s\": bad %s pattern "
			    "\"%s\"", grant, label, half);
			return -1;
		}
		return 1;
	}
	if (!rt_valid_id(half)) {
		snprintf(err, errlen, "grant \"%s\": bad %s \"%s\" (1-64 of "
		    "A-Z a-z 0-9 . _ -, not starting with . or -)", grant,
		    label, half);
		return -1;
	}
	return 0;
}

static struct acl_op *
find_op(const struct acl *acl, const char *name)
{
	for (size_t i = 0; i < acl->nops; i++) {
		if (strcmp(acl->ops[i].name, name) == 0)
			return &acl->ops[i];
	}
	return NULL;
}

static struct acl_op *
get_op(struct acl *acl, const char *name)
{
	struct acl_op *op, *n;
	size_t cap;

	if ((op = find_op(acl, name)) != NULL)
		return op;
	if (acl->nops == acl->cap) {
		cap = acl->cap ? acl->cap * 2 : 8;
		if ((n = reallocarray(acl->ops, cap, sizeof(*n))) == NULL)
			return NULL;
		acl->ops = n;
		acl->cap = cap;
	}
	op = &acl->ops[acl->nops];
	memset(op, 0, sizeof(*op));
	if ((op->name = strdup(name)) == NULL)
		return NULL;
	acl->nops++;
	return op;
}

int
acl_add(struct acl *acl, const char *operator, enum acl_kind kind,
	const char *grant, const char *where, char *err, size_t errlen)
{
	char agent[ACL_ID_MAX + 2], what[ACL_ID_MAX + 2];
	struct acl_grant *g, *ng;
	struct acl_op *op;
	const char *colon;
	size_t alen, wlen, rlen, cap;
	int ga, gw, n;
	char *text = NULL;

	if (errlen > 0)
		*err = '\0';
	if (operator == NULL || !rt_valid_id(operator)) {
		snprintf(err, errlen, "bad operator name \"%s\"",
		    operator ? operator : "(null)");
		return RT_ERR_INVAL;
	}
	if (kind != ACL_SERVICE && kind != ACL_RIGHT) {
		snprintf(err, errlen, "bad grant kind %d", (int)kind);
		return RT_ERR_INVAL;
	}
	if (grant == NULL || (colon = strchr(grant, ':')) == NULL ||
	    strchr(colon + 1, ':') != NULL) {
		snprintf(err, errlen, "grant \"%s\": expected AGENT:%s",
		    grant ? grant : "(null)",
		    kind == ACL_SERVICE ? "SERVICE" : "RIGHT");
		return RT_ERR_INVAL;
	}
	alen = (size_t)(colon - grant);
	wlen = strlen(colon + 1);
	if (alen == 0 || alen > ACL_ID_MAX || wlen == 0 || wlen > ACL_ID_MAX) {
		snprintf(err, errlen, "grant \"%.150s\": each half must be "
		    "1-%d characters", grant, ACL_ID_MAX);
		return RT_ERR_INVAL;
	}
	memcpy(agent, grant, alen);
	agent[alen] = '\0';
	memcpy(what, colon + 1, wlen + 1);

	if ((ga = check_half(acl, grant, agent, "agent", err, errlen)) < 0 ||
	    (gw = check_half(acl, grant, what, kind == ACL_SERVICE ?
	    "service" : "right", err, errlen)) < 0)
		return RT_ERR_INVAL;
	if (kind == ACL_RIGHT && !known_right(what, gw)) {
		snprintf(err, errlen, "grant \"%s\": unknown right \"%s\" "
		    "(read, write, logs, shell)", grant, what);
		return RT_ERR_INVAL;
	}

	/* "op agent:what (where)" */
	rlen = strlen(operator) + 1 + alen + 1 + wlen +
	    (where != NULL ? strlen(where) + 3 : 0) + 1;
	if ((text = malloc(alen + 1 + wlen + 1 + rlen)) == NULL)
		return RT_ERR_NOMEM;
	memcpy(text, agent, alen + 1);
	memcpy(text + alen + 1, what, wlen + 1);
	n = snprintf(text + alen + wlen + 2, rlen, "%s %s:%s%s%s%s", operator,
	    agent, what, where ? " (" : "", where ? where : "",
	    where ? ")" : "");
	if (n < 0 || (size_t)n >= rlen) {
		free(text);
		snprintf(err, errlen, "grant \"%s\": internal error", grant);
		return RT_ERR_INVAL;
	}

	if ((op = get_op(acl, operator)) == NULL) {
		free(text);
		return RT_ERR_NOMEM;
	}
	if (op->ngrants == op->cap) {
		cap = op->cap ? op->cap * 2 : 8;
		if ((ng = reallocarray(op->grants, cap, sizeof(*ng))) == NULL) {
			free(text);
			return RT_ERR_NOMEM;
		}
		op->grants = ng;
		op->cap = cap;
	}
	g = &op->grants[op->ngrants++];
	g->text = text;
	g->agent = text;
	g->what = text + alen + 1;
	g->rule = text + alen + wlen + 2;
	g->kind = (unsigned char)kind;
	g->glob = (ga || gw);
	if (g->glob)
		acl->nglob++;
	return 0;
}

static int
half_match(const char *pat, const char *s, int glob)
{
	if (!glob)
		return strcmp(pat, s) == 0;
	return fnmatch(pat, s, FNM_NOESCAPE) == 0;
}

int
acl_check(const struct acl *acl, const char *operator, enum acl_kind kind,
	  const char *agent, const char *what, const char **rule)
{
	const struct acl_op *op;

	if (rule != NULL)
		*rule = "default deny";
	if (acl == NULL || operator == NULL || agent == NULL || what == NULL)
		return 0;
	if ((op = find_op(acl, operator)) == NULL)
		return 0;
	for (size_t i = 0; i < op->ngrants; i++) {
		const struct acl_grant *g = &op->grants[i];

		if (g->kind != (unsigned char)kind)
			continue;
		if (half_match(g->agent, agent, g->glob) &&
		    half_match(g->what, what, g->glob)) {
			if (rule != NULL)
				*rule = g->rule;
			return 1;
		}
	}
	return 0;
}

int
acl_any(const struct acl *acl, const char *operator, const char *agent)
{
	const struct acl_op *op;

	if (acl == NULL || operator == NULL || agent == NULL)
		return 0;
	if ((op = find_op(acl, operator)) == NULL)
		return 0;
	for (size_t i = 0; i < op->ngrants; i++) {
		if (half_match(op->grants[i].agent, agent, op->grants[i].glob))
			return 1;
	}
	return 0;
}

unsigned int
acl_glob_count(const struct acl *acl)
{
	return acl != NULL ? acl->nglob : 0;
}
