#!/bin/bash
# agent_signals.sh - HUP reloads without disturbing what did not change,
# a broken file changes nothing, USR1 logs status, TERM during a transfer
# stops within shutdown_timeout with exit 0.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_need_fakerelay
ag_setup
ag_conf "$T/agent.conf"
ag_fakerelay relay
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"
ap=$(rt_pid agent)

# An open session that must survive reloads.
rt_spawn hold "$AG_PY" "$AG_TOOLS/agent_peer.py" hold "$OP_PORT" "$T/hold"
rt_wait 10 "held session up" grep -q up "$T/hold" || rt_fail "held session did not open"
ping_held() {
	echo ping >"$T/hold"
	rt_wait 10 "held session answer" grep -qE 'pong|dead' "$T/hold" &&
		grep -q pong "$T/hold"
}

# 1. Reload adding a service (relay settings untouched).
ag_conf "$T/agent.conf" "service echo2 {
	port = 8
	target = \"127.0.0.1:$ECHO_PORT\"
}
log_level = \"info\""
kill -HUP "$ap"
rt_wait 10 "echo2 registered" grep -q 'FORWARD echo2 8' "$T/relay.log" ||
	rt_fail "new service not registered after HUP"
ping_held || rt_fail "open session did not survive a reload"
[ "$(grep -c 'connected (TLS' "$T/agent.log")" = 1 ] ||
	rt_fail "reload without relay changes reconnected"
rt_ok "HUP added a service; open session alive; no reconnect"

# 2. Reload removing that service: its forward is cancelled, others stay.
ag_conf "$T/agent.conf"
kill -HUP "$ap"
rt_wait 10 "echo2 cancelled" grep -q 'CANCEL echo2 8' "$T/relay.log" ||
	rt_fail "removed service not withdrawn"
ping_held || rt_fail "open session did not survive removing another service"
rt_ok "HUP removed a service; open session alive"

# 3. Broken file: every error logged, nothing changes.
cp "$T/agent.conf" "$T/good.conf"
printf 'limits {\n max_channels = -5\n}\nnosuch = 1\n' >>"$T/agent.conf"
kill -HUP "$ap"
rt_wait_log 10 "$T/agent.log" 'keeping the running configuration' ||
	rt_fail "bad reload not reported"
grep -q 'agent.conf:2[0-9]' "$T/agent.log" || rt_fail "bad reload errors lack file:line"
rt_alive "$ap" || rt_fail "agent died on a bad reload"
ping_held || rt_fail "open session did not survive a bad reload"
cp "$T/good.conf" "$T/agent.conf"
rt_ok "broken config: agent running, errors with file:line, session alive"

# 4. USR1 status.
kill -USR1 "$ap"
rt_wait_log 10 "$T/agent.log" 'status: .*relay 127.0.0.1' || rt_fail "USR1 gave no status"
rt_wait_log 10 "$T/agent.log" 'status: chan [0-9]+ \(echo' ||
	rt_fail "USR1 status does not list the open channel"
rt_ok "USR1 status logged"
echo quit >"$T/hold"

# 5. TERM in the middle of a transfer: exit 0 within shutdown_timeout
# (3 s) plus slack.
rt_spawn bulk "$AG_PY" "$AG_TOOLS/agent_peer.py" stream "$OP_PORT" 2147483648
rt_wait 10 "transfer running" grep -qE 'chan [0-9]+ \(echo\): opened' "$T/agent.log"
sleep 0.5	# let data flow (not a synchronisation)
t0=$(date +%s)
# (not rt_stop: its "wait" runs in a command substitution, which is not
# the agent's parent)
kill -TERM "$ap"
rt_wait 8 "agent to exit" rt_dead "$ap" || rt_fail "agent did not stop within 8 s of TERM"
wait "$ap"
rc=$?
dt=$(( $(date +%s) - t0 ))
[ "$rc" = 0 ] || rt_fail "agent exited $rc after TERM"
grep -q 'stop: SIGTERM' "$T/agent.log" || rt_fail "TERM not logged"
ag_sanitizer_clean || rt_fail "sanitizer report in agent.log"
rt_pass "TERM during transfer: exit 0 after ${dt}s"
