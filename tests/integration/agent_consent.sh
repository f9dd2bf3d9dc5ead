#!/bin/bash
# agent_consent.sh - the local consent gate: "sessions" mode with a file
# refuses new channels (nothing dialed) while closed and allows them once
# open; "connect" mode with a command keeps the agent off the relay while
# the command fails. Changes are picked up without a restart.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_need_fakerelay
ag_setup
ag_conf "$T/agent.conf" "consent {
	mode = \"sessions\"
	file = \"$T/consent\"
	interval = \"200ms\"
}"
ag_fakerelay relay
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up with the gate closed"
grep -q 'gate closed' "$T/agent.log" || rt_fail "closed gate not logged"

: >"$T/echo.conns"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 1 1000 10 >/dev/null 2>&1 &&
	rt_fail "a session got through a closed gate"
rt_wait_log 10 "$T/agent.log" 'refused: consent gate closed' ||
	rt_fail "refusal not logged"
[ -s "$T/echo.conns" ] && rt_fail "target dialed while the gate was closed"
rt_ok "gate closed: session refused, target not dialed"

touch "$T/consent"
rt_wait_log 10 "$T/agent.log" 'gate open' || rt_fail "opened gate not noticed"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 2 1000 10 ||
	rt_fail "sessions refused with the gate open"
rt_ok "gate open: sessions work"

rm -f "$T/consent"
rt_wait_log 10 "$T/agent.log" 'gate closed \(file absent\)' || true
[ "$(grep -c 'gate closed' "$T/agent.log")" -ge 2 ] || rt_fail "closing not noticed"

# connect mode via HUP: the command fails -> the agent leaves the relay.
ag_conf "$T/agent.conf" "consent {
	mode = \"connect\"
	command = \"test -f $T/consent2\"
	interval = \"200ms\"
}"
kill -HUP "$(rt_pid agent)"
rt_wait_log 10 "$T/agent.log" 'disconnecting: consent gate closed' ||
	rt_fail "connect mode did not disconnect"
rt_wait_log 10 "$T/relay.log" 'LOST' || rt_fail "relay still sees the agent"
n=$(grep -c 'AGENT gw-17' "$T/relay.log")
sleep 1	# the agent must stay away: nothing to poll for
[ "$(grep -c 'AGENT gw-17' "$T/relay.log")" = "$n" ] ||
	rt_fail "agent connected with the gate closed"
touch "$T/consent2"
rt_wait_log 10 "$T/agent.log" 'gate open \(command exited 0\)' ||
	rt_fail "command gate opening not noticed"
ag_wait_up 2 || rt_fail "agent did not connect once the gate opened"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 1 1000 10 ||
	rt_fail "session failed after the gate opened"
ag_stop
rt_pass
