# relay/: librelay.a (everything but main) and revtun-relay.
noinst_LIBRARIES += relay/librelay.a
relay_librelay_a_SOURCES = \
	relay/acl.c relay/acl.h \
	relay/audit.c relay/audit.h \
	relay/relay_config.c relay/relay_config.h
relay_librelay_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS)
RELAY_LIBS = relay/librelay.a $(COMMON_LIBS) $(LIBSSH_LIBS)

# Unit tests of the relay's pure modules.
check_PROGRAMS += tests/unit/relay-unit
TESTS += tests/unit/relay-unit
tests_unit_relay_unit_SOURCES = \
	tests/unit/relay_main.c \
	tests/unit/test_acl.c \
	tests/unit/test_audit.c \
	tests/unit/test_relay_config.c
tests_unit_relay_unit_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/relay
tests_unit_relay_unit_LDADD = tests/unit/libunit.a $(RELAY_LIBS) $(CUNIT_LIBS)
