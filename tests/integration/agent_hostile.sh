#!/bin/bash
# agent_hostile.sh - the agent never trusts the relay: a forwarded-tcpip
# channel for a service not in the agent's config is refused and nothing
# is dialed; neither is anything for a "session" channel; a registration
# the relay refuses leaves the session up; global requests from the relay
# (unknown, truncated, tcpip-forward) are answered with failure.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_need_fakerelay
ag_setup
# "plc" exists nowhere in the agent's config; a trap listener stands where
# such a target could be, and "denied" is a service the relay refuses.
TRAP_PORT=$(rt_free_port)
rt_spawn trap "$AG_PY" "$AG_TOOLS/agent_peer.py" echo "$TRAP_PORT" "$T/trap.conns"
rt_wait 10 "trap listener" rt_listening "$TRAP_PORT"
ag_conf "$T/agent.conf" "service denied {
	port = 9
	target = \"127.0.0.1:$TRAP_PORT\"
}"
: >"$T/echo.conns"
ag_fakerelay relay --hostile plc:502 --refuse denied
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"
rt_wait_log 30 "$T/relay.log" 'HOSTILE' || rt_fail "hostile open got no answer"
grep -q 'HOSTILE refused' "$T/relay.log" ||
	rt_fail "agent accepted a channel for a service not in its config"
[ -s "$T/trap.conns" ] && rt_fail "something was dialed for the hostile channel"
[ -s "$T/echo.conns" ] && rt_fail "echo target dialed for the hostile channel"
rt_ok "unknown service refused, nothing dialed"

grep -q 'service denied (port 9) refused by the relay' "$T/agent.log" ||
	rt_fail "relay refusal of a forward not logged"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 2 1000 10 ||
	rt_fail "session unusable after a refused registration"
rt_ok "refused registration: session stays up, other services work"

# A relay opening a "session" channel (a shell on the gateway) gets
# nothing: libssh2 1.10 leaves the open unanswered, nothing is dialed.
kill "$(rt_pid relay)"
rt_wait 10 "stand-in gone" rt_dead "$(rt_pid relay)"
mv "$T/relay.log" "$T/relay1.log"
: >"$T/echo.conns"
ag_fakerelay relay --hostile session
ag_wait_up 2 20 || rt_fail "agent did not reconnect"
rt_wait_log 30 "$T/relay.log" 'HOSTILE' || rt_fail "session open got no outcome"
grep -q 'HOSTILE refused' "$T/relay.log" || rt_fail "agent accepted a session channel"
[ -s "$T/echo.conns" ] && rt_fail "something was dialed for the session channel"
[ -s "$T/trap.conns" ] && rt_fail "trap dialed for the session channel"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 2 1000 10 ||
	rt_fail "session unusable after the hostile open"
rt_ok "session channel refused, nothing dialed"

# A relay sending global requests (S3, agent side): an unknown one, one
# whose payload is cut short, and a tcpip-forward (only operators' clients
# may ask that of a server): each gets a failure, the session stays.
kill "$(rt_pid relay)"
rt_wait 10 "stand-in gone" rt_dead "$(rt_pid relay)"
mv "$T/relay.log" "$T/relay2.log"
: >"$T/echo.conns"
ag_fakerelay relay --hostile global
ag_wait_up 3 20 || rt_fail "agent did not reconnect"
rt_wait 40 "three global answers" eval '[ "$(grep -c "^GLOBAL" "$T/relay.log")" -ge 3 ]' ||
	rt_fail "global requests: no outcome"
grep '^GLOBAL' "$T/relay.log" | grep -v ' failed$' &&
	rt_fail "agent did not answer failure to every global request"
ag_count_up 4 && rt_fail "agent reconnected after the global requests"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 2 1000 10 ||
	rt_fail "session unusable after hostile global requests"
[ -s "$T/echo.conns" ] || rt_fail "bulk did not reach the echo target"
rt_ok "global requests from the relay answered with failure; same session works"
rt_alive "$(rt_pid agent)" || rt_fail "agent exited"
ag_stop
rt_pass
