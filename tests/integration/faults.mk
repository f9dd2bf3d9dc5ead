# tests/integration/faults.mk - fault-injection tests (docs/faults.md maps
# every FAULTS.md case to a test) and the valgrind run of the unit tests.

FAULT_ITESTS = \
	tests/integration/fault_tls_scan.sh \
	tests/integration/fault_churn.sh \
	tests/integration/fault_net.sh \
	tests/integration/fault_net2.sh \
	tests/integration/fault_ssh_ops.sh \
	tests/integration/fault_slowloris.sh \
	tests/integration/fault_logflood.sh \
	tests/integration/fault_clock.sh \
	tests/integration/fault_config.sh \
	tests/integration/fault_pipe.sh \
	tests/integration/fault_ssh_wire.sh \
	tests/integration/fault_mqtt.sh \
	tests/integration/privdrop.sh \
	tests/integration/fault_operators.sh \
	tests/integration/fault_outage.sh \
	tests/integration/fault_mem.sh

TESTS += $(FAULT_ITESTS)
EXTRA_DIST += $(FAULT_ITESTS) tests/integration/netns.sh docs/faults.md \
	tests/integration/ssh_wire.py tests/integration/nn_dns.py

# make check-valgrind: every CUnit program tests/unit/*-unit under
# valgrind memcheck; a definite leak or any memory error fails. Not part
# of make check (slow, and meaningless in --enable-asan builds, whose
# shadow memory valgrind cannot run). Each program's output goes to
# tests/unit/NAME.valgrind.log.
VALGRIND = valgrind
VALGRIND_FLAGS = --leak-check=full --error-exitcode=1 \
	--errors-for-leak-kinds=definite --track-origins=yes --quiet

check-valgrind: $(check_LIBRARIES) $(check_PROGRAMS)
	@command -v $(VALGRIND) >/dev/null 2>&1 || \
		{ echo "check-valgrind: $(VALGRIND) not installed (apt-get install valgrind)"; exit 1; }
	@case ' $(SAN_CFLAGS) ' in *sanitize=address*) \
		echo "check-valgrind: an --enable-asan build cannot run under valgrind; configure without it"; exit 1;; esac
	@fail=0; n=0; for u in $(check_PROGRAMS); do \
		case $$u in tests/unit/*-unit$(EXEEXT)) ;; *) continue;; esac; \
		n=$$((n + 1)); log=$$u.valgrind.log; \
		if top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
		   $(VALGRIND) $(VALGRIND_FLAGS) --log-file=$$log.vg ./$$u >$$log 2>&1; then \
			echo "PASS: valgrind $$u"; \
		else \
			echo "FAIL: valgrind $$u (see $$log and $$log.vg)"; \
			tail -n 30 $$log.vg; fail=1; \
		fi; \
	done; echo "check-valgrind: $$n unit programs, $$([ $$fail = 0 ] && echo all clean || echo FAILED)"; \
	test $$n -gt 0 && exit $$fail

CLEANFILES += tests/unit/*.valgrind.log tests/unit/*.valgrind.log.vg
.PHONY: check-valgrind
