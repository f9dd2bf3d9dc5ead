#!/bin/bash
# agent_idle.sh - an idle agent whose keepalive bound (1 s x 2) is much
# shorter than the relay's keepalive interval (15 s, the default) stays
# connected: the relay answers the agent's keepalives with its own, and
# the agent judges the relay by the bytes it receives. A frozen relay
# (SIGSTOP: TCP stays up, nothing answers) is still declared dead within
# the bound.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_setup
. "$top_srcdir/tests/integration/relay_common.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
RELAY_PORT=$RPORT

relay_write_conf "$T/relay.conf"
relay_start
ag_conf "$T/agent.conf"
sed -i 's/keepalive_count = 3/keepalive_count = 2/' "$T/agent.conf"
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"

# idle for 8 s = 4 times the agent's bound: no reconnect
end=$(( $(date +%s) + 8 ))
while [ "$(date +%s)" -lt "$end" ]; do
	grep -q "connection lost" "$T/agent.log" &&
		rt_fail "idle agent dropped a healthy relay: $(grep -m1 'connection lost' "$T/agent.log")"
	sleep 0.5
done
ag_count_up 2 && rt_fail "idle agent reconnected"
rt_ok "idle agent stayed connected for 8 s with a 2 s dead-peer bound"

kill -STOP "$(rt_pid relay)"
t0=$(date +%s%N)
rt_wait 10 "frozen relay declared dead" grep -q "connection lost.*silent" "$T/agent.log" ||
	{ kill -CONT "$(rt_pid relay)"; rt_fail "frozen relay not detected"; }
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$(rt_pid relay)"
rt_ok "frozen relay declared dead after $ms ms (bound 2 s + 1 s)"
ag_wait_up 2 || rt_fail "agent did not reconnect after the relay woke up"
rt_ok "agent back after the relay resumed"
rt_stop agent 10 >"$T/agent.status" || rt_fail "agent did not stop"
[ "$(cat "$T/agent.status")" = 0 ] || rt_fail "agent exit status $(cat "$T/agent.status")"
rt_pass
