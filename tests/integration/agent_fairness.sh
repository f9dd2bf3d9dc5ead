#!/bin/bash
# agent_fairness.sh - an interactive channel keeps making progress while
# other channels move bulk data through the same agent (round-robin
# service, per-round quota, output high-water mark).
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_need_fakerelay
ag_setup
ag_conf "$T/agent.conf" 'limits { channel_buffer = "256k" }'
ag_fakerelay relay
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"

# Two bulk streams of 200 MiB each, then the interactive session.
for i in 1 2; do
	rt_spawn "bulk$i" "$AG_PY" "$AG_TOOLS/agent_peer.py" stream "$OP_PORT" 209715200
done
rt_wait 10 "bulk channels open" grep -q 'chan 2 (echo): opened' "$T/agent.log" ||
	rt_fail "bulk channels did not open"
sleep 0.5	# let the bulk transfers reach full speed (not a synchronisation)
"$AG_PY" "$AG_TOOLS/agent_peer.py" pingpong "$OP_PORT" 5 2000 >"$T/pp.out" 2>&1
rc=$?
cat "$T/pp.out"
[ "$rc" = 0 ] || rt_fail "interactive channel starved by bulk transfers"
for i in 1 2; do
	rt_alive "$(rt_pid bulk$i)" || grep -q "stream: 209715200 of" "$T/bulk$i.log" ||
		rt_fail "bulk stream $i failed: $(cat "$T/bulk$i.log")"
done
rt_ok "bulk was still running or complete while ping-pong ran"
ag_stop
rt_pass "$(cat "$T/pp.out")"
