#!/bin/bash
# agent_basic.sh - revtun-agent end to end through a relay stand-in:
# config check exit codes, bytes intact both ways (1 MiB and 50
# concurrent channels), half-close, and no listening socket of any kind.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_need_fakerelay
ag_setup

ag_conf "$T/agent.conf"
"$RT_AGENT" -t -f "$T/agent.conf" >"$T/t-good.log" 2>&1 ||
	rt_fail "-t on a good config did not exit 0"
printf 'relays = {"x:1"}\nbogus = 1\n' >"$T/bad.conf"
"$RT_AGENT" -t -f "$T/bad.conf" >"$T/t-bad.log" 2>&1
rc=$?
[ "$rc" = 78 ] || rt_fail "-t on a bad config exited $rc, want 78"
grep -q 'bad.conf:2' "$T/t-bad.log" || rt_fail "-t did not name file:line"
rt_ok "-t exits 0 / 78 with file:line"

ag_fakerelay relay
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"
grep -q 'FORWARD echo 7' "$T/relay.log" || rt_fail "forward echo:7 not registered"
rt_ok "session up, service registered as (echo, 7)"

"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 1 1048576 60 ||
	rt_fail "1 MiB echo through the tunnel not intact"
rt_ok "1 MiB both ways intact"

"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 50 65536 60 ||
	rt_fail "50 concurrent channels did not all complete intact"
rt_ok "50 concurrent channels intact"

ag_no_listen "$(rt_pid agent)" || rt_fail "agent owns a listening socket"
rt_ok "agent owns no listening socket"

rt_wait 10 "all channels closed" grep -q 'chan 51 .*closed: both sides done' \
	"$T/agent.log" || rt_fail "channels not closed after both EOFs"
ag_stop
rt_pass
