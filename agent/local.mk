# agent/: libagent.a (everything but main) and revtun-agent.
noinst_LIBRARIES += agent/libagent.a
agent_libagent_a_SOURCES = \
	agent/agent_config.c agent/agent_config.h
agent_libagent_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH2_CFLAGS)
AGENT_LIBS = agent/libagent.a $(COMMON_LIBS) $(LIBSSH2_LIBS)

# Unit tests of the agent's pure modules.
check_PROGRAMS += tests/unit/agent-unit
TESTS += tests/unit/agent-unit
tests_unit_agent_unit_SOURCES = \
	tests/unit/agent_main.c \
	tests/unit/test_agent_config.c
tests_unit_agent_unit_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH2_CFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/agent
tests_unit_agent_unit_LDADD = tests/unit/libunit.a $(AGENT_LIBS) $(CUNIT_LIBS)
