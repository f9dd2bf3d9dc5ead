# tests/integration/: shell tests with the real daemons and real peers.
# Each area lists its own scripts in its local.mk (relay/, agent/).
EXTRA_DIST += tests/integration/lib.sh
include tests/integration/faults.mk
