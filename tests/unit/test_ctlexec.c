/*
 * test_ctlexec.c - unit tests of relay/ctlexec.c's pure parts: the exec
 * command parser (commands, rights, canonical CTL_REQ text, audit text
 * without secrets, usage errors) and the agent event JSON check.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "ctlexec.h"
#include "err.h"
#include "runner.h"

int suite_ctlexec(void);

static void
check(const char *line, enum ctl_kind kind, const char *right,
      const char *agent, const char *service, const char *cmd,
      const char *audit, const char *change)
{
	static struct ctl_cmd p;
	int rc = ctlexec_parse(line, &p);

	if (rc != 0)
		fprintf(stderr, "refused: \"%s\"\n", line);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(p.kind, kind);
	CU_ASSERT_STRING_EQUAL(p.right, right);
	CU_ASSERT_STRING_EQUAL(p.agent, agent);
	CU_ASSERT_STRING_EQUAL(p.service, service);
	CU_ASSERT_STRING_EQUAL(p.cmd, cmd);
	CU_ASSERT_STRING_EQUAL(p.audit, audit);
	CU_ASSERT_STRING_EQUAL(p.change, change);
}

static void
test_commands(void)
{
	check("status gw-17", KIND_READ, "read", "gw-17", "control",
	    "status", "status gw-17", "");
	check("  status\tgw-17  ", KIND_READ, "read", "gw-17", "control",
	    "status", "status gw-17", "");
	check("config gw-17 show", KIND_READ, "read", "gw-17", "control",
	    "config show", "config gw-17 show", "");
	check("config gw-17 apply", KIND_APPLY, "write", "gw-17", "control",
	    "config apply", "config gw-17 apply", "apply");
	check("config gw-17 set mqtt.keepalive 30 s ", KIND_SET, "write",
	    "gw-17", "control", "config set mqtt.keepalive 30 s",
	    "config gw-17 set mqtt.keepalive 30 s",
	    "set mqtt.keepalive = 30 s");
	check("logs gw-17", KIND_READ, "logs", "gw-17", "control", "logs",
	    "logs gw-17", "");
	check("logs gw-17 -f", KIND_READ, "logs", "gw-17", "control",
	    "logs -f", "logs gw-17 -f", "");
	check("reload gw-17", KIND_RELOAD, "write", "gw-17", "control",
	    "reload", "reload gw-17", "reload");
	check("shell gw-17", KIND_SHELL, "shell", "gw-17", "shell", "shell",
	    "shell gw-17", "");
}

static void
test_secrets(void)
{
	static const char *const keys[] = {
		"mqtt.password", "mqtt.Passwd", "hmac_key", "tls.key",
		"api_token", "mqtt.secret", "psk", "private", "auth.x",
		"credentials",
	};
	struct ctl_cmd p;
	char line[256];
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(line, sizeof(line), "config gw-1 set %s hunter2",
		    keys[i]);
		CU_ASSERT_EQUAL_FATAL(ctlexec_parse(line, &p), 0);
		CU_ASSERT_EQUAL(p.secret, 1);
		/* the agent gets the value, the logs do not */
		CU_ASSERT_PTR_NOT_NULL(strstr(p.cmd, "hunter2"));
		CU_ASSERT_PTR_NULL(strstr(p.audit, "hunter2"));
		CU_ASSERT_PTR_NULL(strstr(p.change, "hunter2"));
	}
	CU_ASSERT_EQUAL_FATAL(ctlexec_parse("config gw-1 set mqtt.keepalive "
	    "30", &p), 0);
	CU_ASSERT_EQUAL(p.secret, 0);
}

static void
test_usage(void)
{
	static const char *const bad[] = {
		"", "status", "status gw-17 x", "config gw-17",
		"config gw-17 frob", "config gw-17 show x",
		"config gw-17 apply x", "config gw-17 set",
		"config gw-17 set k",
		"config gw-17 set k=v", "config gw-17 set k\"x v",
		"logs gw-17 -x", "logs gw-17 -f x", "reload", "reload a b",
		"shell", "shell a b", "agents gw-17", "status gw-17\n",
		"status gw\x01-17", "config gw-17 set k v\x7f",
		"config gw-17 set k a\tb",
		/* the events channel is the relay's own */
		"events gw-17", "events", "config gw-17 events",
	};
	struct ctl_cmd p;
	char big[CTL_CMD_MAX + 16];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(ctlexec_parse(bad[i], &p), RT_ERR_INVAL);
		CU_ASSERT_PTR_NULL(p.right);
		CU_ASSERT_STRING_EQUAL(p.cmd, "");
	}
	CU_ASSERT_EQUAL(ctlexec_is_command("events"), 0);
	/* a malformed set: only three words are audited, never a value */
	CU_ASSERT_EQUAL(ctlexec_parse("config gw-17 sett mqtt.password "
	    "hunter2", &p), RT_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(p.audit, "config gw-17 sett ...");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "status ", 7);
	CU_ASSERT_EQUAL(ctlexec_parse(big, &p), RT_ERR_INVAL);
	/* an over-long agent id parses but names no agent */
	memset(big, 'a', 100);
	memcpy(big, "status ", 7);
	big[100] = '\0';
	CU_ASSERT_EQUAL_FATAL(ctlexec_parse(big, &p), 0);
	CU_ASSERT_STRING_EQUAL(p.agent, "");
}

static void
test_json(void)
{
	static const char *const good[] = {
		"{}", " { } ", "{\"event\":\"config_rollback\",\"t\":12}",
		"{\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\n\"],\"b\":{}}",
		"{\"a\":\"\xc3\xa9\"}",
	};
	static const char *const bad[] = {
		"", "[]", "\"x\"", "1", "{", "{\"a\"}", "{\"a\":}", "{a:1}",
		"{\"a\":1,}", "{\"a\":01}", "{\"a\":\"\\x\"}", "{} {}",
		"{\"a\":\"\x01\"}", "{\"a\":1}\x7f", "{\"a\":tru}",
		"{\"a\":\"\\u12\"}", "{\"a\":-}", "{\"a\":1.}",
	};
	char deep[128], big[CTLEXEC_EVENT_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_EQUAL(ctlexec_json_object_ok(good[i],
		    strlen(good[i])), 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(ctlexec_json_object_ok(bad[i], strlen(bad[i])),
		    0);
	/* embedded NUL */
	CU_ASSERT_EQUAL(ctlexec_json_object_ok("{\"a\":1}\0", 8), 0);
	/* nesting: 16 levels fine, 17 refused */
	for (i = 0; i < 15; i++)
		memcpy(deep + 5 * i, "{\"a\":", 5);
	snprintf(big, sizeof(big), "%.*s{}%.*s", 75, deep, 15,
	    "}}}}}}}}}}}}}}}");
	CU_ASSERT_EQUAL(ctlexec_json_object_ok(big, strlen(big)), 1);
	snprintf(big, sizeof(big), "{\"a\":%.*s{}%.*s}", 75, deep, 15,
	    "}}}}}}}}}}}}}}}");
	CU_ASSERT_EQUAL(ctlexec_json_object_ok(big, strlen(big)), 0);
	/* size: 4096 bytes fine, 4097 refused */
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[CTLEXEC_EVENT_MAX - 1] = '}';
	CU_ASSERT_EQUAL(ctlexec_json_object_ok(big, CTLEXEC_EVENT_MAX), 1);
	big[CTLEXEC_EVENT_MAX - 1] = ' ';
	big[CTLEXEC_EVENT_MAX] = '}';
	CU_ASSERT_EQUAL(ctlexec_json_object_ok(big, CTLEXEC_EVENT_MAX + 1),
	    0);
}

int
suite_ctlexec(void)
{
	CU_pSuite s = CU_add_suite("ctlexec", NULL, NULL);

	if (s == NULL ||
	    CU_add_test(s, "commands", test_commands) == NULL ||
	    CU_add_test(s, "secrets", test_secrets) == NULL ||
	    CU_add_test(s, "usage", test_usage) == NULL ||
	    CU_add_test(s, "json", test_json) == NULL)
		return (int)CU_get_error();
	return CUE_SUCCESS;
}
