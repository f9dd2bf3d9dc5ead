#!/bin/bash
# mqtt_outage.sh - no loss across broker outages (agent/mqtt.c, spool.c):
#  1. a numbered QoS 1 stream survives a broker restart, a silent broker
#     (SIGSTOP: the client must declare it dead within 1.5 x keepalive + 1 s
#     and reconnect once it answers again, re-sending its unacknowledged
#     messages with DUP=1) and then a 30-second broker outage: the monitor
#     sees every number (duplicates allowed and counted);
#  2. a publisher that queued messages into its disk spool while the broker
#     was down and was then killed (-9) is started again once the broker is
#     back and delivers every spooled message, without new input; a full
#     queue drops its oldest messages, counted and logged.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/mqtt_lib.sh"

mq_setup
mq_start
mq_monitor mon 'revtun/gw-17/telemetry'

# ---- 1. restart, then a 30 s outage, in the middle of one stream
N=1200
mq_pub pub -n $N -r 40 -B 2 -k 5 -s "$T/spool1"
seen() { [ "$(mq_seqs "$T/mon.log" | wc -l)" -ge "$1" ]; }
rt_wait 30 "200 messages" seen 200 || rt_fail "stream did not start"
mq_restart
rt_ok "broker restarted after $(mq_seqs "$T/mon.log" | wc -l) messages"
rt_wait 30 "350 messages" seen 350 || rt_fail "stream did not resume after the restart"
kill -STOP "$(rt_pid "$MQ_BROKER")"
t0=$(date +%s)
rt_wait 15 "dead broker detected" grep -q 'broker presumed dead' "$T/pub.log" ||
	{ kill -CONT "$(rt_pid "$MQ_BROKER")"; rt_fail "silent broker not detected"; }
dt=$(( $(date +%s) - t0 ))
kill -CONT "$(rt_pid "$MQ_BROKER")"
# keepalive 5 s: 7.5 s + 1 s tick, plus 1 s for date's granularity
[ "$dt" -le 10 ] || rt_fail "silent broker detected after ${dt} s (bound 8.5 s)"
rt_ok "silent broker detected after ~${dt} s (keepalive 5 s)"
rt_wait 30 "500 messages" seen 500 || rt_fail "stream did not resume after the pause"
mq_stop
t0=$(date +%s)
rt_ok "broker stopped for 30 s"
rt_wait 40 "30 s outage" sh -c "[ \$(( \$(date +%s) - $t0 )) -ge 30 ]"
mq_start
p=$(rt_pid pub)
rt_wait 60 "mqtt_pub to finish" rt_dead "$p" || rt_fail "mqtt_pub did not finish after the outage"
wait "$p"; rc=$?
[ "$rc" -eq 0 ] || rt_fail "mqtt_pub exited $rc"
rt_wait 15 "all $N at the monitor" mq_has_all "$T/mon.log" $N
dups=$(mq_check_complete "$T/mon.log" 1 $N)
stats=$(grep 'done published' "$T/pub.log")
echo "$stats" | grep -q "acked=$N .*dropped=0 queued=0" || rt_fail "counters: $stats"
echo "$stats" | grep -q "connects=4" || rt_fail "expected 4 sessions: $stats"
resent=$(echo "$stats" | sed 's/.*resent=\([0-9]*\).*/\1/')
[ "$resent" -gt 0 ] || rt_fail "nothing re-sent after the silent broker: $stats"
grep -qE 'Received PUBLISH from gw-17 \(d1, q1' "$MQ/mosquitto.log" ||
	rt_fail "client counts $resent re-sends, broker saw no DUP=1"
rt_ok "$N messages complete across a restart and a 30 s outage ($dups duplicates, $resent re-sent with DUP=1)"

# ---- 2. publisher crashes with a spool while the broker is down
mq_stop
mq_pub pub2 -n 50 -S 5001 -r 500 -B 2 -s "$T/spool2"
rt_wait_log 10 "$T/pub2.log" 'all messages queued' || rt_fail "pub2 did not queue"
kill -9 "$(rt_pid pub2)"
rt_wait 10 "pub2 gone" rt_dead "$(rt_pid pub2)"
ls "$T/spool2"/seg-*.rts >/dev/null 2>&1 || rt_fail "no spool segment written"
# Queue full while the broker is down: the oldest go, counted and logged.
mq_pub full -n 30 -r 1000 -m 10 -B 2
rt_wait_log 10 "$T/full.log" 'all messages queued' || rt_fail "full: did not queue"
rt_stop full >/dev/null || rt_fail "full: TERM did not stop it"
grep -q 'dropped=20 queued=10' "$T/full.log" || rt_fail "drop counter: $(grep done "$T/full.log")"
grep -q 'spool: queue full: dropped message 1 ' "$T/full.log" || rt_fail "drop of the oldest not logged"
rt_ok "queue of 10 full: 20 oldest dropped, counted and logged"
mq_start
mq_pub pub3 -n 0 -B 2 -s "$T/spool2"
rt_wait 30 "pub3 to finish" rt_dead "$(rt_pid pub3)" || rt_fail "pub3 did not finish"
wait "$(rt_pid pub3)"; rc=$?
[ "$rc" -eq 0 ] || rt_fail "pub3 exited $rc"
grep -q '50 unacknowledged message(s) loaded' "$T/pub3.log" || rt_fail "spool not loaded: $(head -3 "$T/pub3.log")"
has_spooled() { [ "$(mq_seqs "$T/mon.log" | awk '$1 > 5000' | wc -l)" -ge 50 ]; }
rt_wait 15 "spooled messages at the monitor" has_spooled
mq_check_complete "$T/mon.log" 5001 5050 >/dev/null
# Everything acknowledged: a fourth start has nothing to send.
mq_pub pub4 -n 0 -B 2 -s "$T/spool2"
rt_wait 20 "pub4 to finish" rt_dead "$(rt_pid pub4)" || rt_fail "pub4 did not finish"
grep -q 'done published=0 ' "$T/pub4.log" || rt_fail "acknowledged messages re-sent: $(grep done "$T/pub4.log")"
rt_ok "50 messages spooled while the broker was down survive kill -9 and are delivered once, by the next start"
rt_pass
