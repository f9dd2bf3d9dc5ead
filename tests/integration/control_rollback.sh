#!/bin/bash
# control_rollback.sh - a remote config change that cuts the agent off is
# rolled back by the agent itself: `config set relays` to a dead address
# is answered (exit 0), then the agent cannot reach any relay; after
# control.rollback_timeout (5 s here) it restores agent.conf.last-good
# atomically, reloads, reconnects and is reachable again; `status` then
# shows the config_rollback event (also kept in state_dir), and the
# relay's audit log has it as one agent_event line (id 1) once the agent
# is back: the agent delivers it over the relay's events channel and
# forgets it only when the relay acks it. An operator cannot run
# "events". A change that keeps the relay reachable is not rolled back. A
# probation interrupted by a restart goes on after it (state_dir/
# probation) and still rolls back; with the relay down too, that second
# event (id 2) waits in state_dir/events.queue and reaches the audit log,
# once, when the relay is back.
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
grep -q '^last_event: {"id":1,"event":"config_rollback","reason":"relay not reachable within 5 s after the change","from":"mallory"' "$T/s.out" ||
	rt_fail "status lacks the event: $(cat "$T/s.out")"
grep -q '"event":"config_rollback"' "$T/state/event.pending" ||
	rt_fail "event not kept in state_dir"
[ ! -e "$T/state/probation" ] || rt_fail "probation marker left behind"
grep -qx "rollback: none" "$T/s.out" || rt_fail "still on probation"
rt_ok "status shows the rollback event; state_dir keeps it"

# ev_audited ID : number of agent_event lines of gw-17 for a
# config_rollback by mallory with that event id
ev_audited() {
	python3 - "$T/audit.log" "$1" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d.get("event") != "agent_event" or d.get("agent") != "gw-17":
        continue
    e = json.loads(d["detail"])
    if e.get("id") == int(sys.argv[2]) and e.get("event") == "config_rollback" \
            and e.get("from") == "mallory" and "not reachable" in e.get("reason", ""):
        n += 1
print(n)
PY
}
ev_in_audit() { [ "$(ev_audited "$1")" -ge 1 ]; }
# ev_queued : event lines waiting in state_dir/events.queue
ev_queued() { grep -c '^{"id":' "$T/state/events.queue"; }

rt_wait 15 "agent_event 1 in the relay audit log" ev_in_audit 1 ||
	rt_fail "rollback not in the relay audit log: $(grep agent_event "$T/audit.log")"
rt_wait 10 "the agent forgets the acked event" \
	grep -q "relay logged event up to id 1; 0 left" "$T/agent.log" ||
	rt_fail "no ack seen by the agent"
[ "$(ev_queued)" = 0 ] || rt_fail "acked event still queued: $(cat "$T/state/events.queue")"
grep -q "agent gw-17: events channel open" "$T/relay.log" ||
	rt_fail "relay did not log the events channel"
rt_log "audit: $(grep '"agent_event"' "$T/audit.log")"
rt_ok "rollback event in the relay audit log (id 1), acked, queue empty"

# -- an operator cannot reach the events channel
st=$(ctl_run evop events gw-17)
[ "$st" != 0 ] || rt_fail "operator ran \"events\": exit 0"
cat "$T/evop.out" "$T/evop.err" | grep -q 'unknown command "events"' ||
	rt_fail "events: $(cat "$T/evop.out" "$T/evop.err")"
grep -q "events by mallory" "$T/agent.log" &&
	rt_fail "an operator's \"events\" reached the agent"
[ "$(grep -c "events by relay" "$T/agent.log")" -ge 1 ] ||
	rt_fail "agent log lacks the relay's events channel"
rt_ok "operators get no events channel"

# -- the probation survives a restart: cut off, stop, start again; the
# relay is down as well, so the second event waits for it
st=$(ctl_run cut2 config gw-17 set relays "{\"127.0.0.1:$DEAD\"}")
[ "$st" = 0 ] || rt_fail "second cutting set: exit $st"
[ -e "$T/state/probation" ] || rt_fail "no probation marker in state_dir"
rt_stop agent 10 >"$T/stop.st"
[ "$(cat "$T/stop.st")" = 0 ] || rt_fail "agent stop: exit $(cat "$T/stop.st")"
ag_sanitizer_clean || rt_fail "sanitizer report in the agent log"
rt_stop relay 10 >"$T/stop.st"
[ "$(cat "$T/stop.st")" = 0 ] || rt_fail "relay stop: exit $(cat "$T/stop.st")"
! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/relay.log" ||
	rt_fail "sanitizer report in the relay log"
rt_spawn agent2 "$RT_AGENT" -f "$T/agent.conf"
rt_wait_log 10 "$T/agent2.log" "was on probation when the agent stopped" ||
	rt_fail "restarted agent ignored the probation"
rt_wait_log 15 "$T/agent2.log" "restoring" || rt_fail "no rollback after restart"
cmp -s "$T/good.conf" "$T/agent.conf" || rt_fail "agent.conf is not the last good file"
# the agent now dials the restored (good) address, where nothing listens
dials_good() { sed -n '/restoring/,$p' "$T/agent2.log" | grep -q "127.0.0.1:$RPORT"; }
rt_wait 15 "agent retrying the relay" dials_good ||
	rt_fail "agent did not retry the restored relay address"
grep -q '^{"id":2,"event":"config_rollback"' "$T/state/events.queue" ||
	rt_fail "second event not queued: $(cat "$T/state/events.queue")"
[ "$(ev_queued)" = 1 ] || rt_fail "queue: $(cat "$T/state/events.queue")"
[ "$(ev_audited 2)" = 0 ] || rt_fail "event 2 audited with the relay down?"
rt_ok "probation survives a restart and rolls back; event 2 queued while no relay is up"

rt_spawn relay2 "$RT_RELAY" -f "$T/relay.conf"
rt_wait 15 "relay listening again" rt_listening "$RPORT" ||
	rt_fail "relay did not start again"
rt_wait 20 "agent back on the relay" \
	grep -q "agent gw-17: up from" "$T/relay2.log" ||
	rt_fail "agent did not come back after restart"
rt_wait 15 "agent_event 2 in the relay audit log" ev_in_audit 2 ||
	rt_fail "queued event not delivered: $(grep agent_event "$T/audit.log")"
rt_wait 10 "the agent forgets event 2" \
	grep -q "relay logged event up to id 2; 0 left" "$T/agent2.log" ||
	rt_fail "no ack for event 2"
[ "$(ev_queued)" = 0 ] || rt_fail "acked event 2 still queued"
# exactly once each: the ack reached the agent before anything broke
[ "$(ev_audited 1)" = 1 ] || rt_fail "event 1 audited $(ev_audited 1) times"
[ "$(ev_audited 2)" = 1 ] || rt_fail "event 2 audited $(ev_audited 2) times"
rt_log "audit: $(grep '"agent_event"' "$T/audit.log" | tail -1)"
rt_ok "queued event delivered after the relay came back; each id audited once"
cp "$T/agent2.log" "$T/agent.log"

ag_sanitizer_clean || rt_fail "sanitizer report in the agent log"
rt_pass
