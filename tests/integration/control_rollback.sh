#!/bin/bash
# control_rollback.sh - a remote config change that cuts the agent off is
# rolled back by the agent itself: `config set relays` to a dead address
# is answered (exit 0), then the agent cannot reach any relay; after
# control.rollback_timeout (5 s here) it restores agent.conf.last-good
# atomically, reloads, reconnects and is reachable again; `status` then
# shows the config_rollback event (also kept in state_dir). A change that
# keeps the relay reachable is not rolled back. A probation interrupted by
# a restart goes on after it (state_dir/probation) and still rolls back.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_need ssh-keygen openssl sha256sum timeout
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"
CTL_ROLLBACK=5s
. "$top_srcdir/tests/integration/control_lib.sh"

ctl_start
cp "$T/agent.conf" "$T/orig.conf"

# -- a harmless change stays
st=$(ctl_run ok config gw-17 set limits.max_channels 9)
[ "$st" = 0 ] || rt_fail "set: exit $st ($(cat "$T/ok.out" "$T/ok.err"))"
rt_wait_log 10 "$T/agent.log" "the new configuration stays" ||
	rt_fail "probation not ended by a live relay"
cp "$T/agent.conf" "$T/good.conf"
grep -q "max_channels = 9" "$T/good.conf" || rt_fail "set not written"

# -- a change that cuts the agent off
DEAD=$(rt_free_port)
ups0=$(grep -c "agent gw-17: up from" "$T/relay.log")
st=$(ctl_run cut config gw-17 set relays "{\"127.0.0.1:$DEAD\"}")
[ "$st" = 0 ] || rt_fail "cutting set: exit $st ($(cat "$T/cut.out" "$T/cut.err"))"
grep -q "changed: relay settings" "$T/cut.out" || rt_fail "cut: $(cat "$T/cut.out")"
grep -q "127.0.0.1:$DEAD" "$T/agent.conf" || rt_fail "dead relay not written"
t0=$(date +%s)
rt_wait 10 "agent dialing the dead relay" grep -q "127.0.0.1:$DEAD" "$T/agent.log" ||
	rt_fail "agent did not switch to the dead relay"
rt_wait_log 15 "$T/agent.log" "warning: config: relay not reachable within 5 s after the change by mallory; restoring" ||
	rt_fail "no rollback"
t1=$(date +%s)
[ $((t1 - t0)) -ge 4 ] || rt_fail "rolled back after $((t1 - t0)) s, before the timeout"
cmp -s "$T/good.conf" "$T/agent.conf" || rt_fail "agent.conf is not the last good file"
ups_more() { [ "$(grep -c "agent gw-17: up from" "$T/relay.log")" -gt "$ups0" ]; }
rt_wait 15 "agent back on the relay" ups_more ||
	rt_fail "agent did not come back"
rt_wait_log 10 "$T/agent.log" "relay reachable again after the rollback" ||
	rt_fail "no reconnection report"
rt_ok "rolled back after $((t1 - t0)) s and reconnected"

st=$(ctl_run s status gw-17)
[ "$st" = 0 ] || rt_fail "status after rollback: exit $st"
grep -q '^last_event: {"event":"config_rollback","reason":"relay not reachable within 5 s after the change","from":"mallory"' "$T/s.out" ||
	rt_fail "status lacks the event: $(cat "$T/s.out")"
grep -q '"event":"config_rollback"' "$T/state/event.pending" ||
	rt_fail "event not kept in state_dir"
[ ! -e "$T/state/probation" ] || rt_fail "probation marker left behind"
grep -qx "rollback: none" "$T/s.out" || rt_fail "still on probation"
rt_ok "status shows the rollback event; state_dir keeps it"

# -- the probation survives a restart: cut off, stop, start again
st=$(ctl_run cut2 config gw-17 set relays "{\"127.0.0.1:$DEAD\"}")
[ "$st" = 0 ] || rt_fail "second cutting set: exit $st"
[ -e "$T/state/probation" ] || rt_fail "no probation marker in state_dir"
rt_stop agent 10 >"$T/stop.st"
[ "$(cat "$T/stop.st")" = 0 ] || rt_fail "agent stop: exit $(cat "$T/stop.st")"
ag_sanitizer_clean || rt_fail "sanitizer report in the agent log"
ups0=$(grep -c "agent gw-17: up from" "$T/relay.log")
rt_spawn agent2 "$RT_AGENT" -f "$T/agent.conf"
rt_wait_log 10 "$T/agent2.log" "was on probation when the agent stopped" ||
	rt_fail "restarted agent ignored the probation"
rt_wait_log 15 "$T/agent2.log" "restoring" || rt_fail "no rollback after restart"
rt_wait 15 "agent back on the relay" ups_more ||
	rt_fail "agent did not come back after restart"
cmp -s "$T/good.conf" "$T/agent.conf" || rt_fail "agent.conf is not the last good file"
rt_ok "probation survives a restart and rolls back"
cp "$T/agent2.log" "$T/agent.log"

ag_sanitizer_clean || rt_fail "sanitizer report in the agent log"
rt_pass
