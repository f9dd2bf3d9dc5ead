# agent/telemetry.mk: telemetry collectors and payloads, MQTT command
# verification, their unit tests and the mqtt_cmd fuzz target. Included at
# the end of agent/local.mk.
agent_libagent_a_SOURCES += \
	agent/telemetry.c agent/telemetry.h \
	agent/mqtt_cmd.c agent/mqtt_cmd.h

check_PROGRAMS += tests/unit/telemetry-unit
TESTS += tests/unit/telemetry-unit
tests_unit_telemetry_unit_SOURCES = \
	tests/unit/telemetry_main.c \
	tests/unit/test_telemetry.c \
	tests/unit/test_mqtt_cmd.c
tests_unit_telemetry_unit_CPPFLAGS = $(AM_CPPFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/agent
tests_unit_telemetry_unit_LDADD = tests/unit/libunit.a $(AGENT_LIBS) $(CUNIT_LIBS)

FUZZ_TARGETS += mqtt_cmd
check_PROGRAMS += tests/fuzz/mqtt_cmd-replay
TESTS += tests/fuzz/mqtt_cmd-replay
tests_fuzz_mqtt_cmd_replay_SOURCES = tests/fuzz/fuzz_mqtt_cmd.c tests/fuzz/replay.c
tests_fuzz_mqtt_cmd_replay_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agent -DFUZZ_NAME='"mqtt_cmd"'
tests_fuzz_mqtt_cmd_replay_LDADD = $(AGENT_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/mqtt_cmd-fuzz
tests_fuzz_mqtt_cmd_fuzz_SOURCES = tests/fuzz/fuzz_mqtt_cmd.c
tests_fuzz_mqtt_cmd_fuzz_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agent
tests_fuzz_mqtt_cmd_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_mqtt_cmd_fuzz_LDADD = $(AGENT_LIBS)
endif
