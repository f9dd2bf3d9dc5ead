/*
 * acl.h - the relay's access control list: who may reach what.
 *
 * Pure data, no I/O; built once per config load and immutable after. Every
 * operator has two lists of grants, each grant "AGENT:WHAT":
 *   - service grants (ACL_SERVICE): WHAT is a service name the agent
 *     registered ("gw-17:ssh", "gw-17:hmi");
 *   - command rights (ACL_RIGHT): WHAT is one of "read" (status, config
 *     show, agents), "write" (config set/apply, reload), "logs", "shell".
 * Default deny: no matching grant means no access.
 *
 * Glob patterns ('*', '?', '[...]' as fnmatch(3)) in either half of a
 * grant are accepted only if the ACL was made with allow_glob; otherwise a
 * grant containing them is refused at load time. Agent ids and service
 * names are [A-Za-z0-9._-]{1,64} (rt_valid_id()). Patterns are matched with
 * FNM_NOESCAPE and may only hold those characters and "*?[]!": names never
 * contain a backslash, so escaping has no use. A right pattern must match
 * at least one right. Matching is case-sensitive.
 *
 * Grants are checked in the order they were added; the first match
 * decides (all grants allow, so order only chooses the rule named).
 * Lookup is linear in the operator's own grants.
 */
#ifndef RT_ACL_H
#define RT_ACL_H

#include <stddef.h>

struct acl;

enum acl_kind {
	ACL_SERVICE = 0,
	ACL_RIGHT = 1,
};

/* Creates an empty ACL. Returns 0 or RT_ERR_NOMEM. */
int acl_new(int allow_glob, struct acl **out);

/* Frees it; NULL is a no-op. */
void acl_free(struct acl *acl);

/*
 * Adds grant ("AGENT:WHAT") of kind for operator (a valid id). where
 * ("relay.conf:40", may be NULL) is kept to name the rule in audit lines.
 * Returns 0, RT_ERR_INVAL with a message in err naming the grant (bad
 * syntax, bad characters, unknown right, glob without allow_glob), or
 * RT_ERR_NOMEM. A refused grant leaves the ACL unchanged.
 */
int acl_add(struct acl *acl, const char *operator, enum acl_kind kind,
	    const char *grant, const char *where, char *err, size_t errlen);

/*
 * Decides whether operator may use what (service name or right) on agent.
 * Returns 1 (allowed) or 0 (denied; also for any NULL argument). If rule
 * is not NULL it receives a description of the deciding rule that lives
 * as long as the ACL: "alice gw-17:ssh (relay.conf:40)" ("(where)" left
 * out when where was NULL) or the static "default deny".
 */
int acl_check(const struct acl *acl, const char *operator, enum acl_kind kind,
	      const char *agent, const char *what, const char **rule);

/* 1 if operator has at least one grant of any kind on agent (used by the
 * `agents` command to list only what an operator may see). */
int acl_any(const struct acl *acl, const char *operator, const char *agent);

/* Number of grants using a glob pattern (for the start-up warning). */
unsigned int acl_glob_count(const struct acl *acl);

#endif
