# tests/integration/: shell tests with the real daemons and real peers.
