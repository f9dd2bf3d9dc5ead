# conf/: annotated example configs and the operators' ssh_config snippet,
# installed under $(docdir)/examples.
exampledir = $(docdir)/examples
dist_example_DATA = conf/relay.conf conf/agent.conf conf/ssh_config.operator
