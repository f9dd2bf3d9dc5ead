# agent/: libagent.a (everything but main) and revtun-agent.
noinst_LIBRARIES += agent/libagent.a
agent_libagent_a_SOURCES = \
	agent/agent_config.c agent/agent_config.h \
	agent/agent.c agent/agent.h \
	agent/uplink.c agent/uplink.h \
	agent/sshc.c agent/sshc.h \
	agent/bridge.c agent/bridge.h \
	agent/consent.c agent/consent.h
agent_libagent_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH2_CFLAGS)
AGENT_LIBS = agent/libagent.a $(COMMON_LIBS) $(LIBSSH2_LIBS)

sbin_PROGRAMS += agent/revtun-agent
agent_revtun_agent_SOURCES = agent/main.c
agent_revtun_agent_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH2_CFLAGS)
agent_revtun_agent_LDADD = $(AGENT_LIBS)

# Integration tests of the agent (real relay, stock OpenSSH as operator).
AGENT_ITESTS = \
	tests/integration/agent_basic.sh \
	tests/integration/agent_fairness.sh \
	tests/integration/agent_reconnect.sh \
	tests/integration/agent_signals.sh \
	tests/integration/agent_consent.sh \
	tests/integration/agent_hostile.sh \
	tests/integration/agent_relay.sh \
	tests/integration/agent_idle.sh \
	tests/integration/agent_uplink.sh \
	tests/integration/agent_limits.sh
TESTS += $(AGENT_ITESTS)
EXTRA_DIST += $(AGENT_ITESTS) tests/integration/agent_lib.sh \
	tests/tools/agent_fakerelay.py tests/tools/agent_peer.py tests/tools/tlspump.py

# Unit tests of the agent's pure modules.
check_PROGRAMS += tests/unit/agent-unit
TESTS += tests/unit/agent-unit
tests_unit_agent_unit_SOURCES = \
	tests/unit/agent_main.c \
	tests/unit/test_agent_config.c
tests_unit_agent_unit_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH2_CFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/agent
tests_unit_agent_unit_LDADD = tests/unit/libunit.a $(AGENT_LIBS) $(CUNIT_LIBS)

# MQTT 3.1.1 codec (pure) and its tests; fuzz target in tests/fuzz/.
agent_libagent_a_SOURCES += agent/mqtt_codec.c agent/mqtt_codec.h
check_PROGRAMS += tests/unit/mqtt-unit
TESTS += tests/unit/mqtt-unit
tests_unit_mqtt_unit_SOURCES = \
	tests/unit/mqtt_main.c \
	tests/unit/test_mqtt_codec.c
tests_unit_mqtt_unit_CPPFLAGS = $(AM_CPPFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/agent
tests_unit_mqtt_unit_LDADD = tests/unit/libunit.a $(AGENT_LIBS) $(CUNIT_LIBS)

FUZZ_TARGETS += mqtt_codec
check_PROGRAMS += tests/fuzz/mqtt_codec-replay
TESTS += tests/fuzz/mqtt_codec-replay
tests_fuzz_mqtt_codec_replay_SOURCES = tests/fuzz/fuzz_mqtt_codec.c tests/fuzz/replay.c
tests_fuzz_mqtt_codec_replay_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agent -DFUZZ_NAME='"mqtt_codec"'
tests_fuzz_mqtt_codec_replay_LDADD = $(AGENT_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/mqtt_codec-fuzz
tests_fuzz_mqtt_codec_fuzz_SOURCES = tests/fuzz/fuzz_mqtt_codec.c
tests_fuzz_mqtt_codec_fuzz_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agent
tests_fuzz_mqtt_codec_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_mqtt_codec_fuzz_LDADD = $(AGENT_LIBS)
endif
include agent/telemetry.mk

# MQTT client session and its offline queue / disk spool (agent/mqtt.h,
# agent/spool.h); test tool, unit tests, integration tests and the spool
# loader's fuzz target.
agent_libagent_a_SOURCES += agent/mqtt.c agent/mqtt.h agent/spool.c agent/spool.h
check_PROGRAMS += tests/tools/mqtt_pub
tests_tools_mqtt_pub_SOURCES = tests/tools/mqtt_pub.c
tests_tools_mqtt_pub_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agent
tests_tools_mqtt_pub_LDADD = $(AGENT_LIBS)
tests_unit_agent_unit_SOURCES += tests/unit/test_spool.c
MQTT_ITESTS = \
	tests/integration/mqtt_basic.sh \
	tests/integration/mqtt_auth.sh \
	tests/integration/mqtt_will.sh \
	tests/integration/mqtt_outage.sh \
	tests/integration/mqtt_malformed.sh
TESTS += $(MQTT_ITESTS)
EXTRA_DIST += $(MQTT_ITESTS) tests/integration/mqtt_lib.sh

FUZZ_TARGETS += spool
check_PROGRAMS += tests/fuzz/spool-replay
TESTS += tests/fuzz/spool-replay
tests_fuzz_spool_replay_SOURCES = tests/fuzz/fuzz_spool.c tests/fuzz/replay.c
tests_fuzz_spool_replay_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agent -DFUZZ_NAME='"spool"'
tests_fuzz_spool_replay_LDADD = $(AGENT_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/spool-fuzz
tests_fuzz_spool_fuzz_SOURCES = tests/fuzz/fuzz_spool.c
tests_fuzz_spool_fuzz_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agent
tests_fuzz_spool_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_spool_fuzz_LDADD = $(AGENT_LIBS)
endif

# Built-in services (control, shell), the log ring they read, the config
# store with rollback (ctl-agent, issue 6).
agent_libagent_a_SOURCES += agent/control.c agent/control.h
agent_libagent_a_SOURCES += agent/logring.c agent/logring.h
agent_libagent_a_SOURCES += agent/cfgstore.c agent/cfgstore.h
agent_libagent_a_SOURCES += agent/shell.c agent/shell.h
tests_unit_agent_unit_SOURCES += tests/unit/test_control.c

# Telemetry link: MQTT client + telemetry + signed commands wired into the
# agent, on-demand uplink mode (mqttlink, issue 5).
agent_libagent_a_SOURCES += agent/mqttlink.c agent/mqttlink.h
TELEMETRY_ITESTS = \
	tests/integration/telemetry_basic.sh \
	tests/integration/telemetry_ondemand.sh
TESTS += $(TELEMETRY_ITESTS)
EXTRA_DIST += $(TELEMETRY_ITESTS) tests/integration/telemetry_lib.sh
dist_doc_DATA += docs/mqtt.md
# Integration tests of the built-in services (real relay and agent).
CONTROL_ITESTS = \
	tests/integration/control_basic.sh \
	tests/integration/control_shell.sh \
	tests/integration/control_rollback.sh
TESTS += $(CONTROL_ITESTS)
EXTRA_DIST += $(CONTROL_ITESTS) tests/integration/control_lib.sh
