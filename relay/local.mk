# relay/: librelay.a (everything but main) and revtun-relay.
noinst_LIBRARIES += relay/librelay.a
relay_librelay_a_SOURCES = \
	relay/acl.c relay/acl.h \
	relay/audit.c relay/audit.h \
	relay/relay_config.c relay/relay_config.h \
	relay/relay.c relay/relay.h \
	relay/sshsess.c relay/sshsess.h \
	relay/listener.c relay/listener.h \
	relay/protodetect.c relay/protodetect.h \
	relay/registry.c relay/registry.h \
	relay/agent_conn.c relay/agent_conn.h \
	relay/operator.c relay/operator.h \
	relay/penalty.c relay/penalty.h \
	relay/bridge.c relay/bridge.h
relay_librelay_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS)
RELAY_LIBS = relay/librelay.a $(COMMON_LIBS) $(LIBSSH_LIBS)

sbin_PROGRAMS += relay/revtun-relay
relay_revtun_relay_SOURCES = relay/main.c
relay_revtun_relay_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS)
relay_revtun_relay_LDADD = $(RELAY_LIBS)

# Unit tests of the relay's pure modules.
check_PROGRAMS += tests/unit/relay-unit
TESTS += tests/unit/relay-unit
tests_unit_relay_unit_SOURCES = \
	tests/unit/relay_main.c \
	tests/unit/test_acl.c \
	tests/unit/test_audit.c \
	tests/unit/test_penalty.c \
	tests/unit/test_protodetect.c \
	tests/unit/test_relay_config.c
tests_unit_relay_unit_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/relay
tests_unit_relay_unit_LDADD = tests/unit/libunit.a $(RELAY_LIBS) $(CUNIT_LIBS)

# Integration tests: the real relay, stock OpenSSH as agent and operator.
check_PROGRAMS += tests/tools/rt-echo
tests_tools_rt_echo_SOURCES = tests/tools/rt-echo.c
RELAY_IT = \
	tests/integration/relay_basic.sh \
	tests/integration/relay_tls.sh \
	tests/integration/relay_acl.sh \
	tests/integration/relay_data.sh \
	tests/integration/relay_hostile.sh
TESTS += $(RELAY_IT)
EXTRA_DIST += $(RELAY_IT) tests/integration/relay_common.sh

# Exec commands answered by an agent's control / shell service.
relay_librelay_a_SOURCES += relay/ctlexec.c relay/ctlexec.h
TESTS += tests/integration/relay_ctl.sh
EXTRA_DIST += tests/integration/relay_ctl.sh tests/tools/ctl_agent.py

# One-way bulk transfers through ssh -L -> relay -> agent (needs both
# daemons and bench/rtbench): stalls, tails and bounded memory.
TESTS += tests/integration/datapath.sh
EXTRA_DIST += tests/integration/datapath.sh
check_PROGRAMS += tests/unit/relay-ctl-unit
TESTS += tests/unit/relay-ctl-unit
tests_unit_relay_ctl_unit_SOURCES = \
	tests/unit/relay_ctl_main.c \
	tests/unit/test_ctlexec.c
tests_unit_relay_ctl_unit_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/relay
tests_unit_relay_ctl_unit_LDADD = tests/unit/libunit.a $(RELAY_LIBS) $(CUNIT_LIBS)
