# tests/: CUnit unit tests (one program per library), integration scripts,
# fuzz corpus replay and the small peers the tests use.

# The shared CUnit runner and helpers every unit-test program links.
check_LIBRARIES = tests/unit/libunit.a
tests_unit_libunit_a_SOURCES = \
	tests/unit/runner.c tests/unit/runner.h \
	tests/unit/testpki.c tests/unit/testpki.h
tests_unit_libunit_a_CPPFLAGS = $(AM_CPPFLAGS) $(CUNIT_CFLAGS)

check_PROGRAMS += tests/unit/common-unit
TESTS += tests/unit/common-unit
tests_unit_common_unit_SOURCES = \
	tests/unit/common_main.c \
	tests/unit/test_err.c \
	tests/unit/test_log.c \
	tests/unit/test_util.c \
	tests/unit/test_buf.c \
	tests/unit/test_loop.c \
	tests/unit/test_net.c \
	tests/unit/test_tls.c \
	tests/unit/test_cfgutil.c \
	tests/unit/test_ctlproto.c \
	tests/unit/test_privs.c
tests_unit_common_unit_CPPFLAGS = $(AM_CPPFLAGS) $(CUNIT_CFLAGS)
tests_unit_common_unit_LDADD = tests/unit/libunit.a $(COMMON_LIBS) $(CUNIT_LIBS)

# Allocation-failure torture (FAULTS.md P6): fails the N-th allocation for
# every N over the loaders and core objects (exits 77 in --enable-asan).
check_PROGRAMS += tests/unit/alloc-torture
TESTS += tests/unit/alloc-torture
tests_unit_alloc_torture_SOURCES = tests/unit/alloc_torture.c
tests_unit_alloc_torture_CPPFLAGS = $(AM_CPPFLAGS) $(LIBSSH_CFLAGS) $(LIBSSH2_CFLAGS) \
	-I$(top_srcdir)/agent -I$(top_srcdir)/relay
tests_unit_alloc_torture_LDADD = tests/unit/libunit.a $(RELAY_LIBS) $(AGENT_LIBS) $(CUNIT_LIBS)

include tests/integration/local.mk

# Fuzz corpora (tests/fuzz/corpus/NAME/) replay in make check through each
# target's NAME-replay program; with --enable-fuzzing, NAME-fuzz is the
# libFuzzer binary: tests/fuzz/NAME-fuzz $(top_srcdir)/tests/fuzz/corpus/NAME
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/README.md
include tests/fuzz/local.mk
