# docs/: architecture and operations notes, man pages.
dist_doc_DATA += docs/architecture.md
dist_doc_DATA += docs/relay.md docs/agent.md
dist_man_MANS += docs/revtun-relay.8 docs/revtun-relay.conf.5 \
	docs/revtun-agent.8 docs/revtun-agent.conf.5
dist_doc_DATA += docs/security.md
