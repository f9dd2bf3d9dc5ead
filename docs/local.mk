# docs/: architecture and operations notes, man pages.
dist_doc_DATA += docs/architecture.md
dist_doc_DATA += docs/relay.md docs/agent.md
dist_man_MANS += docs/revtun-relay.8 docs/revtun-relay.conf.5 \
	docs/revtun-agent.8 docs/revtun-agent.conf.5
dist_doc_DATA += docs/security.md
dist_doc_DATA += docs/operations.md docs/performance.md
# the plots docs/performance.md shows (as img/NAME.png): installed next to
# it so the relative links keep working
docimgdir = $(docdir)/img
dist_docimg_DATA = docs/img/latency.png docs/img/storm-maxpending.png \
	docs/img/storm.png docs/img/throughput.png
