# docs/: architecture and operations notes, man pages.
dist_doc_DATA += docs/architecture.md
