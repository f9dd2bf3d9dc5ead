#!/bin/bash
# agent_reconnect.sh - the agent recovers on its own: relay killed and
# restarted (backoff, reconnect, sessions work again), and a relay that
# stops answering (SIGSTOP: half-open link) is declared dead by the SSH
# keepalive within keepalive_interval x keepalive_count (+1 s tick).
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_need_fakerelay
ag_setup
ag_conf "$T/agent.conf"
ag_fakerelay relay
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 3 4096 || rt_fail "first session broken"

# 1. Relay killed; agent retries with backoff; relay back; agent back.
kill -9 "$(rt_pid relay)"
rt_wait_log 10 "$T/agent.log" 'connection lost' || rt_fail "loss not noticed"
rt_wait_log 10 "$T/agent.log" 'retrying in' || rt_fail "no backoff retry logged"
mv "$T/relay.log" "$T/relay1.log"
ag_fakerelay relay
ag_wait_up 2 20 || rt_fail "agent did not reconnect after the relay restart"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 3 4096 ||
	rt_fail "sessions broken after reconnect"
rt_ok "relay restart: reconnected and sessions work"

# 2. Half-open: the relay stops (no FIN, no RST). Bound: 1 s x 3 + 1 s
# tick; allow slack for a busy machine.
rp=$(rt_pid relay)
kill -STOP "$rp"
t0=$(date +%s)
rt_wait 15 "dead relay detected" grep -q 'silent for .*dead' "$T/agent.log" ||
	{ kill -CONT "$rp"; rt_fail "half-open relay not detected"; }
dt=$(( $(date +%s) - t0 ))
kill -CONT "$rp"
rt_ok "silent relay declared dead after ${dt}s (bound 4 s + slack)"
[ "$dt" -le 10 ] || rt_fail "dead-peer detection took ${dt}s"
ag_wait_up 3 20 || rt_fail "agent did not reconnect after the dead relay"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 3 4096 ||
	rt_fail "sessions broken after the half-open episode"
rt_alive "$(rt_pid agent)" || rt_fail "agent exited"
ag_stop
rt_pass
