#!/bin/bash
# telemetry_ondemand.sh - uplink_mode = "on-demand" with the real relay
# and a real mosquitto: the agent publishes telemetry but does not dial the
# relay; an unsigned tunnel-open and one signed with the wrong key are
# refused (logged, still disconnected); a signed tunnel-open connects it
# (listed by the relay's `agents`, an operator session works); the same
# command replayed is refused; telemetry-now publishes at once; a signed
# tunnel-close disconnects it and a replay of the old tunnel-open does not
# reconnect; a new tunnel-open with no session is dropped after
# on_demand_idle.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/telemetry_lib.sh"

tl_gone() { ! tl_agents | grep -q '^gw-17'; }

tl_setup
tl_conf 'uplink_mode = "on-demand"
on_demand_idle = "8s"' '	interval = "60s"'
"$RT_AGENT" -t -f "$T/agent.conf" >"$T/t.log" 2>&1 ||
	rt_fail "-t refused the config: $(cat "$T/t.log")"
ag_agent
rt_wait_log 10 "$T/mon.log" 'revtun/gw-17/status \{"status":"online"' ||
	rt_fail "no online status"
rt_wait 10 "first telemetry" tl_py telemetry 1 || rt_fail "no telemetry"
grep -q '"tunnel":{"state":"idle"' "$T/mon.log" || rt_fail "tunnel state not idle"
sleep 1
tl_agents | grep -q '^gw-17' && rt_fail "on-demand agent connected at start"
grep -q "relay 127.0.0.1:$RELAY_PORT" "$T/agent.log" &&
	rt_fail "on-demand agent dialed the relay at start"
rt_ok "on-demand: telemetry published, relay not dialed"

# Unsigned, then signed with another key: refused, still disconnected.
tl_cmd "{\"cmd\":\"tunnel-open\",\"ts\":$(date +%s),\"nonce\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"
rt_wait_log 10 "$T/agent.log" 'command refused: missing field hmac' ||
	rt_fail "unsigned tunnel-open not refused"
openssl rand -hex 32 >"$T/other.key"
bad=$(python3 "$T/tl.py" sign "$T/other.key" tunnel-open)
tl_cmd "$bad"
rt_wait_log 10 "$T/agent.log" 'command refused: bad hmac' ||
	rt_fail "tunnel-open with the wrong key not refused"
sleep 1
tl_agents | grep -q '^gw-17' && rt_fail "connected after a refused tunnel-open"
rt_ok "unsigned and wrongly signed tunnel-open refused and logged"

# Signed: connects; the relay lists it; an operator session works.
open1=$(tl_sign tunnel-open)
tl_cmd "$open1"
ag_wait_up 1 || rt_fail "signed tunnel-open did not connect"
rt_wait_log 10 "$T/relay.log" 'gw-17: service echo:7 registered' ||
	rt_fail "relay did not register gw-17"
tl_agents | grep -q '^gw-17 .*echo:7' || rt_fail "agents: $(tl_agents)"
echo on-demand | relay_op alice_ed25519 alice -W echo.gw-17:7 >"$T/op.out" ||
	rt_fail "operator session failed"
[ "$(cat "$T/op.out")" = on-demand ] || rt_fail "echo: $(cat "$T/op.out")"
rt_wait 10 "tunnel-up event" tl_py event tunnel-up reason on-demand ||
	rt_fail "no tunnel-up event"
rt_ok "signed tunnel-open: connected, listed by the relay, session works"

# Replayed: refused.
tl_cmd "$open1"
rt_wait_log 10 "$T/agent.log" 'command refused: replayed nonce' ||
	rt_fail "replayed tunnel-open not refused"
rt_ok "replayed tunnel-open refused"

# telemetry-now: one more telemetry payload at once (interval is 60 s).
s0=$(tl_py maxseq telemetry)
tl_cmd "$(tl_sign telemetry-now)"
rt_wait 5 "telemetry-now" sh -c "[ \$(python3 '$T/tl.py' maxseq '$T/mon.log' '$T/tm.key' telemetry) -gt $s0 ]" ||
	rt_fail "telemetry-now published nothing"
grep -q '"tunnel":{"state":"up"' "$T/mon.log" || rt_fail "telemetry-now: tunnel not up"
rt_ok "telemetry-now publishes at once"

# tunnel-close: disconnects; the old tunnel-open replayed does nothing.
tl_cmd "$(tl_sign tunnel-close)"
rt_wait_log 10 "$T/agent.log" 'on-demand: tunnel-close command' ||
	rt_fail "tunnel-close not applied"
rt_wait 10 "relay forgets gw-17" tl_gone ||
	rt_fail "agent still listed after tunnel-close"
rt_wait 10 "tunnel-down event" tl_py event tunnel-down reason 'on-demand: tunnel-close command' ||
	rt_fail "no tunnel-down event"
tl_cmd "$open1"
rt_wait 10 "second replay refused" sh -c "[ \$(grep -c 'command refused: replayed nonce' '$T/agent.log') -ge 2 ]" ||
	rt_fail "replay after close not refused"
sleep 1
tl_agents | grep -q '^gw-17' && rt_fail "replayed tunnel-open reconnected"
rt_ok "tunnel-close disconnects; a replayed tunnel-open does not reconnect"

# Idle: opened, no session for on_demand_idle (8 s): dropped.
tl_cmd "$(tl_sign tunnel-open)"
ag_wait_up 2 || rt_fail "second tunnel-open did not connect"
rt_wait_log 20 "$T/agent.log" 'on-demand: idle for 8 s' ||
	rt_fail "idle on-demand tunnel not dropped"
rt_ok "idle on-demand tunnel dropped after on_demand_idle"
ag_stop
rt_pass
