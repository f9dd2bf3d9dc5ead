/*
 * test_acl.c - unit tests of relay/acl.c: explicit grants, default deny,
 * globs with and without opt-in, refused grants, acl_any.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "acl.h"
#include "err.h"
#include "runner.h"

int suite_acl(void);

static void
test_explicit_grant(void)
{
	struct acl *acl = NULL;
	const char *rule = NULL;
	char err[256];

	CU_ASSERT_FATAL(acl_new(0, &acl) == 0);
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_SERVICE, "gw-17:ssh",
	    "relay.conf:40", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_RIGHT, "gw-17:read",
	    "relay.conf:41", err, sizeof(err)), 0);

	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-17", "ssh",
	    &rule), 1);
	CU_ASSERT_STRING_EQUAL(rule, "alice gw-17:ssh (relay.conf:40)");
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_RIGHT, "gw-17", "read",
	    &rule), 1);
	CU_ASSERT_STRING_EQUAL(rule, "alice gw-17:read (relay.conf:41)");

	/* Nothing else: other service, agent, operator, kind. */
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-17", "hmi",
	    &rule), 0);
	CU_ASSERT_STRING_EQUAL(rule, "default deny");
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-18", "ssh",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, "bob", ACL_SERVICE, "gw-17", "ssh",
	    &rule), 0);
	CU_ASSERT_STRING_EQUAL(rule, "default deny");
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_RIGHT, "gw-17", "ssh",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-17", "read",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_RIGHT, "gw-17", "write",
	    NULL), 0);
	/* Prefixes and case do not match. */
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-1", "ssh",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, "Alice", ACL_SERVICE, "gw-17", "ssh",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-17", "ssh2",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, NULL, ACL_SERVICE, "gw-17", "ssh",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_glob_count(acl), 0);
	acl_free(acl);
}

static void
test_empty_default_deny(void)
{
	struct acl *acl = NULL;
	const char *rule = NULL;

	CU_ASSERT_FATAL(acl_new(1, &acl) == 0);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-17", "ssh",
	    &rule), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rule);
	CU_ASSERT_STRING_EQUAL(rule, "default deny");
	CU_ASSERT_EQUAL(acl_any(acl, "alice", "gw-17"), 0);
	acl_free(acl);
	acl_free(NULL);
}

static void
test_glob(void)
{
	struct acl *acl = NULL;
	const char *rule = NULL;
	char err[256];

	/* Refused without opt-in, in either half. */
	CU_ASSERT_FATAL(acl_new(0, &acl) == 0);
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_SERVICE, "gw-*:ssh", "x:1",
	    err, sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "acl_allow_glob"));
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_SERVICE, "gw-17:*", "x:1",
	    err, sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_RIGHT, "gw-1?:read", "x:1",
	    err, sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-17", "ssh",
	    NULL), 0);
	acl_free(acl);

	/* Accepted and matching with it. */
	CU_ASSERT_FATAL(acl_new(1, &acl) == 0);
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_SERVICE, "gw-*:ssh",
	    "relay.conf:7", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_RIGHT, "plant[12]-*:*",
	    "relay.conf:8", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(acl_glob_count(acl), 2);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-17", "ssh",
	    &rule), 1);
	CU_ASSERT_STRING_EQUAL(rule, "alice gw-*:ssh (relay.conf:7)");
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "gw-17", "hmi",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_SERVICE, "xgw-17", "ssh",
	    NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_RIGHT, "plant2-a",
	    "shell", NULL), 1);
	CU_ASSERT_EQUAL(acl_check(acl, "alice", ACL_RIGHT, "plant3-a",
	    "shell", NULL), 0);
	CU_ASSERT_EQUAL(acl_check(acl, "bob", ACL_SERVICE, "gw-17", "ssh",
	    NULL), 0);
	/* A right pattern must match some right; backslash is no escape. */
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_RIGHT, "gw-1:x*", "x:1",
	    err, sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown right"));
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_SERVICE, "gw-\\*:ssh",
	    "x:1", err, sizeof(err)), RT_ERR_INVAL);
	CU_ASSERT_EQUAL(acl_glob_count(acl), 2);
	acl_free(acl);
}

static void
test_refused(void)
{
	static const struct {
		enum acl_kind kind;
		const char *op, *grant, *msg;
	} bad[] = {
		{ ACL_SERVICE, "alice", "gw-17", "expected AGENT:SERVICE" },
		{ ACL_SERVICE, "alice", "gw-17:ssh:x", "expected" },
		{ ACL_SERVICE, "alice", ":ssh", "1-64" },
		{ ACL_SERVICE, "alice", "gw-17:", "1-64" },
		{ ACL_SERVICE, "alice", "gw 17:ssh", "bad agent" },
		{ ACL_SERVICE, "alice", ".gw:ssh", "bad agent" },
		{ ACL_SERVICE, "alice", "gw-17:s/h", "bad service" },
		{ ACL_RIGHT, "alice", "gw-17:admin",
		    "unknown right \"admin\"" },
		{ ACL_RIGHT, "alice", "gw-17:Read", "unknown right" },
		{ ACL_SERVICE, "al ice", "gw-17:ssh", "bad operator" },
		{ ACL_SERVICE, "", "gw-17:ssh", "bad operator" },
	};
	struct acl *acl = NULL;
	char err[256], long_grant[200];

	CU_ASSERT_FATAL(acl_new(0, &acl) == 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(acl_add(acl, bad[i].op, bad[i].kind,
		    bad[i].grant, "x:1", err, sizeof(err)), RT_ERR_INVAL);
		if (strstr(err, bad[i].msg) == NULL) {
			fprintf(stderr, "grant %s: message \"%s\" lacks "
			    "\"%s\"\n", bad[i].grant, err, bad[i].msg);
			CU_FAIL("message");
		}
	}
	memset(long_grant, 'a', 100);
	memcpy(long_grant + 100, ":ssh", 5);
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_SERVICE, long_grant, "x:1",
	    err, sizeof(err)), RT_ERR_INVAL);
	/* Nothing refused was kept. */
	CU_ASSERT_EQUAL(acl_any(acl, "alice", "gw-17"), 0);
	acl_free(acl);
}

static void
test_any(void)
{
	struct acl *acl = NULL;
	char err[256];

	CU_ASSERT_FATAL(acl_new(0, &acl) == 0);
	CU_ASSERT_EQUAL(acl_add(acl, "alice", ACL_RIGHT, "gw-17:logs", NULL,
	    err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(acl_add(acl, "bob", ACL_SERVICE, "gw-18:hmi", NULL,
	    err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(acl_any(acl, "alice", "gw-17"), 1);
	CU_ASSERT_EQUAL(acl_any(acl, "alice", "gw-18"), 0);
	CU_ASSERT_EQUAL(acl_any(acl, "bob", "gw-18"), 1);
	CU_ASSERT_EQUAL(acl_any(acl, "bob", "gw-17"), 0);
	CU_ASSERT_EQUAL(acl_any(acl, "carol", "gw-17"), 0);
	acl_free(acl);
}

static void
test_many(void)
{
	struct acl *acl = NULL;
	const char *rule;
	char err[256], g[64], op[16], agent[16];
	int ok = 1;

	/* 50 operators x 100 grants: everything found, nothing extra. */
	CU_ASSERT_FATAL(acl_new(0, &acl) == 0);
	for (int o = 0; o < 50 && ok; o++) {
		snprintf(op, sizeof(op), "op%d", o);
		for (int i = 0; i < 100 && ok; i++) {
			snprintf(g, sizeof(g), "gw-%d:svc%d", i, o);
			ok = acl_add(acl, op, ACL_SERVICE, g, "f:1", err,
			    sizeof(err)) == 0;
		}
	}
	CU_ASSERT_FATAL(ok);
	for (int o = 0; o < 50; o++) {
		snprintf(op, sizeof(op), "op%d", o);
		snprintf(agent, sizeof(agent), "gw-%d", 99 - o);
		snprintf(g, sizeof(g), "svc%d", o);
		rule = NULL;
		if (acl_check(acl, op, ACL_SERVICE, agent, g, &rule) != 1 ||
		    strncmp(rule, op, strlen(op)) != 0)
			ok = 0;
		snprintf(g, sizeof(g), "svc%d", o + 1);
		if (acl_check(acl, op, ACL_SERVICE, agent, g, NULL) != 0)
			ok = 0;
	}
	CU_ASSERT(ok);
	acl_free(acl);
}

int
suite_acl(void)
{
	CU_pSuite s = CU_add_suite("acl", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "explicit grant", test_explicit_grant) == NULL ||
	    CU_add_test(s, "default deny", test_empty_default_deny) == NULL ||
	    CU_add_test(s, "glob", test_glob) == NULL ||
	    CU_add_test(s, "refused grants", test_refused) == NULL ||
	    CU_add_test(s, "acl_any", test_any) == NULL ||
	    CU_add_test(s, "many grants", test_many) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
