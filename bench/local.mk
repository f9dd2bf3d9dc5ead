# bench/: the benchmark harness against peers (issue 8). rtbench is the
# load tool and its echo/sink/source service; `make bench` runs
# bench/run.sh, which compares direct TCP, OpenSSH -R, OpenSSH inside
# stunnel and revtun on loopback, then bench/cpucost.sh (CPU ms per MiB
# per path), bench/mem.sh (agent and relay
# memory idle and with 50 channels), bench/scale.sh (1,000 agents: relay
# memory per agent, reconnect storm) and bench/plot.sh (docs/img/*.png).
# Never part of `make check`.

noinst_PROGRAMS += bench/rtbench
bench_rtbench_SOURCES = bench/rtbench.c
EXTRA_DIST += bench/run.sh bench/peers.sh bench/mem.sh bench/scale.sh \
	bench/plot.sh bench/cpucost.sh bench/profile.sh bench/README.md

# The daemons are built if they can be; run.sh skips the revtun leg when
# they are missing. Environment: see bench/README.md (BENCH_QUICK=1 ...).
.PHONY: bench
bench: bench/rtbench$(EXEEXT)
	-$(MAKE) $(AM_MAKEFLAGS) relay/revtun-relay$(EXEEXT) agent/revtun-agent$(EXEEXT)
	@rc=0; \
	export top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)'; \
	bash $(top_srcdir)/bench/run.sh || rc=1; \
	bash $(top_srcdir)/bench/cpucost.sh || rc=1; \
	bash $(top_srcdir)/bench/mem.sh || rc=1; \
	bash $(top_srcdir)/bench/scale.sh || rc=1; \
	bash $(top_srcdir)/bench/plot.sh; \
	exit $$rc
