# tests/fuzz/: libFuzzer targets for the config loaders, the ACL and the
# cfgutil value parsers. Each NAME-replay runs fuzz_NAME.c over
# tests/fuzz/corpus/NAME/ in make check; with --enable-fuzzing, NAME-fuzz is
# the libFuzzer binary (see tests/fuzz/README.md).

FUZZ_TARGETS += agent_config
check_PROGRAMS += tests/fuzz/agent_config-replay
TESTS += tests/fuzz/agent_config-replay
tests_fuzz_agent_config_replay_SOURCES = tests/fuzz/fuzz_agent_config.c tests/fuzz/fixture.c \
	tests/fuzz/fixture.h tests/fuzz/replay.c
tests_fuzz_agent_config_replay_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH2_CFLAGS) -I$(top_srcdir)/agent -DFUZZ_NAME='"agent_config"'
tests_fuzz_agent_config_replay_LDADD = $(AGENT_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/agent_config-fuzz
tests_fuzz_agent_config_fuzz_SOURCES = tests/fuzz/fuzz_agent_config.c tests/fuzz/fixture.c \
	tests/fuzz/fixture.h
tests_fuzz_agent_config_fuzz_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH2_CFLAGS) -I$(top_srcdir)/agent
tests_fuzz_agent_config_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_agent_config_fuzz_LDADD = $(AGENT_LIBS)
endif

FUZZ_TARGETS += relay_config
check_PROGRAMS += tests/fuzz/relay_config-replay
TESTS += tests/fuzz/relay_config-replay
tests_fuzz_relay_config_replay_SOURCES = tests/fuzz/fuzz_relay_config.c tests/fuzz/fixture.c \
	tests/fuzz/fixture.h tests/fuzz/replay.c
tests_fuzz_relay_config_replay_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS) -I$(top_srcdir)/relay -DFUZZ_NAME='"relay_config"'
tests_fuzz_relay_config_replay_LDADD = $(RELAY_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/relay_config-fuzz
tests_fuzz_relay_config_fuzz_SOURCES = tests/fuzz/fuzz_relay_config.c tests/fuzz/fixture.c \
	tests/fuzz/fixture.h
tests_fuzz_relay_config_fuzz_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS) -I$(top_srcdir)/relay
tests_fuzz_relay_config_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_relay_config_fuzz_LDADD = $(RELAY_LIBS)
endif

FUZZ_TARGETS += acl
check_PROGRAMS += tests/fuzz/acl-replay
TESTS += tests/fuzz/acl-replay
tests_fuzz_acl_replay_SOURCES = tests/fuzz/fuzz_acl.c tests/fuzz/replay.c
tests_fuzz_acl_replay_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/relay -DFUZZ_NAME='"acl"'
tests_fuzz_acl_replay_LDADD = $(RELAY_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/acl-fuzz
tests_fuzz_acl_fuzz_SOURCES = tests/fuzz/fuzz_acl.c
tests_fuzz_acl_fuzz_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/relay
tests_fuzz_acl_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_acl_fuzz_LDADD = $(RELAY_LIBS)
endif

FUZZ_TARGETS += cfgutil
check_PROGRAMS += tests/fuzz/cfgutil-replay
TESTS += tests/fuzz/cfgutil-replay
tests_fuzz_cfgutil_replay_SOURCES = tests/fuzz/fuzz_cfgutil.c tests/fuzz/replay.c
tests_fuzz_cfgutil_replay_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME='"cfgutil"'
tests_fuzz_cfgutil_replay_LDADD = $(COMMON_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/cfgutil-fuzz
tests_fuzz_cfgutil_fuzz_SOURCES = tests/fuzz/fuzz_cfgutil.c
tests_fuzz_cfgutil_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_cfgutil_fuzz_LDADD = $(COMMON_LIBS)
endif

FUZZ_TARGETS += ctlproto
check_PROGRAMS += tests/fuzz/ctlproto-replay
TESTS += tests/fuzz/ctlproto-replay
tests_fuzz_ctlproto_replay_SOURCES = tests/fuzz/fuzz_ctlproto.c tests/fuzz/replay.c
tests_fuzz_ctlproto_replay_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_NAME='"ctlproto"'
tests_fuzz_ctlproto_replay_LDADD = $(COMMON_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/ctlproto-fuzz
tests_fuzz_ctlproto_fuzz_SOURCES = tests/fuzz/fuzz_ctlproto.c
tests_fuzz_ctlproto_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_ctlproto_fuzz_LDADD = $(COMMON_LIBS)
endif

FUZZ_TARGETS += protodetect
check_PROGRAMS += tests/fuzz/protodetect-replay
TESTS += tests/fuzz/protodetect-replay
tests_fuzz_protodetect_replay_SOURCES = tests/fuzz/fuzz_protodetect.c tests/fuzz/replay.c
tests_fuzz_protodetect_replay_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/relay -DFUZZ_NAME='"protodetect"'
tests_fuzz_protodetect_replay_LDADD = $(RELAY_LIBS)
if FUZZING
noinst_PROGRAMS += tests/fuzz/protodetect-fuzz
tests_fuzz_protodetect_fuzz_SOURCES = tests/fuzz/fuzz_protodetect.c
tests_fuzz_protodetect_fuzz_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/relay
tests_fuzz_protodetect_fuzz_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_CFLAGS)
tests_fuzz_protodetect_fuzz_LDADD = $(RELAY_LIBS)
endif
