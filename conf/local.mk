# conf/: annotated example configs, the operators' ssh_config snippet and
# systemd units. Examples go to $(docdir)/examples; the units get their
# paths filled in and go to $(systemdunitdir).
exampledir = $(docdir)/examples
dist_example_DATA = conf/relay.conf conf/agent.conf conf/ssh_config.operator

systemdunitdir = $(prefix)/lib/systemd/system
systemdunit_DATA = conf/revtun-relay.service conf/revtun-agent.service
EXTRA_DIST += conf/revtun-relay.service.in conf/revtun-agent.service.in
CLEANFILES += conf/revtun-relay.service conf/revtun-agent.service

edit_unit = sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g'
conf/revtun-relay.service: $(srcdir)/conf/revtun-relay.service.in Makefile
	@$(MKDIR_P) conf
	$(AM_V_GEN)$(edit_unit) $(srcdir)/conf/revtun-relay.service.in > $@
conf/revtun-agent.service: $(srcdir)/conf/revtun-agent.service.in Makefile
	@$(MKDIR_P) conf
	$(AM_V_GEN)$(edit_unit) $(srcdir)/conf/revtun-agent.service.in > $@

TESTS += tests/integration/units.sh
EXTRA_DIST += tests/integration/units.sh
check_DATA = $(systemdunit_DATA)
