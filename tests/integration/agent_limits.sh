#!/bin/bash
# agent_limits.sh - failures stay local: a target that refuses closes
# only its channel with a logged reason; a target that does not answer is
# given up after target_connect_timeout; channels beyond max_channels are
# refused without dialing while the open ones keep working.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_need_fakerelay
ag_setup
DEAD_PORT=$(rt_free_port)
OP_DEAD=$(rt_free_port)
OP_BLACK=$(rt_free_port)
BLACK_PORT=$(rt_free_port)
rt_spawn blackhole "$AG_PY" "$AG_TOOLS/agent_peer.py" blackhole "$BLACK_PORT"
rt_wait 10 "blackhole" rt_listening "$BLACK_PORT"
ag_conf "$T/agent.conf" "service dead {
	port = 9
	target = \"127.0.0.1:$DEAD_PORT\"
}
service black {
	port = 10
	target = \"127.0.0.1:$BLACK_PORT\"
}
limits {
	max_channels = 3
	target_connect_timeout = \"1s\"
}"
ag_fakerelay relay --op "$OP_DEAD:dead:9" --op "$OP_BLACK:black:10"
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"

# An open session on echo that must not notice the failures next to it.
rt_spawn hold "$AG_PY" "$AG_TOOLS/agent_peer.py" hold "$OP_PORT" "$T/hold"
rt_wait 10 "held session" grep -q up "$T/hold" || rt_fail "held session did not open"

"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_DEAD" 1 100 10 >/dev/null 2>&1 &&
	rt_fail "a refused target looked like a working one"
rt_wait_log 10 "$T/agent.log" "\(dead -> 127.0.0.1:$DEAD_PORT\): closed: cannot reach target 127.0.0.1:$DEAD_PORT: .*refused" ||
	rt_fail "refused target not logged with service, channel and reason"
rt_ok "refused target: that channel closed with a reason"

t0=$(date +%s)
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_BLACK" 1 100 15 >/dev/null 2>&1 &&
	rt_fail "a silent target looked like a working one"
rt_wait_log 10 "$T/agent.log" "\(black -> 127.0.0.1:$BLACK_PORT\): closed: cannot reach target .*timed out" ||
	rt_fail "target connect timeout not logged"
dt=$(( $(date +%s) - t0 ))
[ "$dt" -le 8 ] || rt_fail "target connect took ${dt}s despite a 1 s timeout"
rt_ok "silent target given up after ~1 s"

echo ping >"$T/hold"
rt_wait 10 "held answer" grep -qE 'pong|dead' "$T/hold"
grep -q pong "$T/hold" || rt_fail "open session disturbed by failing targets"
rt_ok "open session unaffected"

# Cap: one channel is open (hold); two more fit, the fourth is refused.
: >"$T/echo.conns"
rt_spawn h2 "$AG_PY" "$AG_TOOLS/agent_peer.py" hold "$OP_PORT" "$T/h2"
rt_spawn h3 "$AG_PY" "$AG_TOOLS/agent_peer.py" hold "$OP_PORT" "$T/h3"
rt_wait 10 "two more sessions" sh -c "grep -q up '$T/h2' && grep -q up '$T/h3'" ||
	rt_fail "sessions within the cap did not open"
n=$(wc -l <"$T/echo.conns")
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 1 100 10 >/dev/null 2>&1 &&
	rt_fail "a channel beyond max_channels got through"
rt_wait_log 10 "$T/agent.log" 'refused: channel limit 3 reached' || rt_fail "cap refusal not logged"
[ "$(wc -l <"$T/echo.conns")" = "$n" ] || rt_fail "target dialed beyond the cap"
echo ping >"$T/hold"
rt_wait 10 "held answer" grep -qE 'pong|dead' "$T/hold"
grep -q pong "$T/hold" || rt_fail "open session broken by the cap refusal"
ag_stop
rt_pass "max_channels enforced without dialing"
