# common/: libcommon.a, linked by both daemons and every test program.
noinst_LIBRARIES += common/libcommon.a
common_libcommon_a_SOURCES = \
	common/err.c common/err.h \
	common/log.c common/log.h \
	common/util.c common/util.h \
	common/buf.c common/buf.h \
	common/loop.c common/loop.h \
	common/net.c common/net.h \
	common/tls.c common/tls.h \
	common/cfgutil.c common/cfgutil.h

COMMON_LIBS = common/libcommon.a $(OPENSSL_LIBS) $(CONFUSE_LIBS)
common_libcommon_a_SOURCES += common/ctlproto.c common/ctlproto.h
common_libcommon_a_SOURCES += common/privs.c common/privs.h \
	common/pidfile.c common/pidfile.h
