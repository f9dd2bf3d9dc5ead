#!/bin/bash
# mqtt_basic.sh - tests/tools/mqtt_pub (agent/mqtt.c) against a real
# mosquitto with mutual TLS, password file and ACL: a QoS 1 stream arrives
# complete at a monitor subscriber, the birth status is published retained,
# a graceful stop publishes the offline status itself (not the will), and
# the client's counters agree (every message acknowledged, no unknown
# PUBACK). Then a wrong CA file and a wrong TLS name are refused.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/mqtt_lib.sh"

mq_setup
mq_start
mq_monitor mon 'revtun/#'

N=300
mq_pub pub -n $N -r 1000
p=$(rt_pid pub)
rt_wait 30 "mqtt_pub to finish" rt_dead "$p" || rt_fail "mqtt_pub did not finish"
wait "$p"; rc=$?
[ "$rc" -eq 0 ] || rt_fail "mqtt_pub exited $rc"
grep -q "done published=$N acked=$N resent=0 unknown_acks=0 dropped=0 queued=0" "$T/pub.log" ||
	rt_fail "counters: $(grep done "$T/pub.log")"
rt_wait 10 "all $N at the monitor" mq_has_all "$T/mon.log" $N
dups=$(mq_check_complete "$T/mon.log" 1 $N)
[ "$dups" -eq 0 ] || rt_fail "$dups duplicates without any outage"
rt_ok "$N QoS 1 messages delivered in order-complete, no duplicates"

# In order: QoS 1 from one client on one topic arrives in send order.
grep -o 'seq=[0-9]*' "$T/mon.log" | cut -d= -f2 >"$T/order.txt"
sort -n -c "$T/order.txt" 2>/dev/null || rt_fail "messages arrived out of order"

# Birth, then the graceful offline status (not the will), both retained.
grep -q 'revtun/gw-17/status {"status":"online","agent":"gw-17"}' "$T/mon.log" ||
	rt_fail "no online status"
rt_wait_log 10 "$T/mon.log" 'revtun/gw-17/status \{"status":"offline","agent":"gw-17"\}$' ||
	rt_fail "no offline status on graceful stop"
grep -q '"will":true' "$T/mon.log" && rt_fail "the will fired on a graceful stop"
ret=$(timeout 10 mosquitto_sub "${MQ_SUB[@]}" -t revtun/gw-17/status -C 1 -W 5 2>&1)
[ "$ret" = '{"status":"offline","agent":"gw-17"}' ] || rt_fail "retained status is '$ret'"
grep -q "Received DISCONNECT from gw-17" "$MQ/mosquitto.log" ||
	rt_fail "no DISCONNECT seen by the broker"
rt_ok "birth online, graceful offline retained, DISCONNECT sent, no will"

# A server certificate from a CA we do not trust, and a name it lacks.
rt_spawn rogue "$RT_MQTT_PUB" -b "127.0.0.1:$MQ_PORT" --ca "$PKI/rogue-ca.crt" \
	--cert "$PKI/gw-17.crt" --key "$PKI/gw-17.key" -u gw-17 -P "$T/gw-17.pass" -n 1
rt_wait_log 10 "$T/rogue.log" 'broker certificate refused' || rt_fail "rogue CA not refused"
rt_spawn badname "$RT_MQTT_PUB" -b "127.0.0.1:$MQ_PORT" --ca "$PKI/ca.crt" \
	--server-name mqtt.example.org \
	--cert "$PKI/gw-17.crt" --key "$PKI/gw-17.key" -u gw-17 -P "$T/gw-17.pass" -n 1
rt_wait_log 10 "$T/badname.log" 'broker certificate refused' || rt_fail "wrong name not refused"
grep -q 'connected (' "$T/rogue.log" "$T/badname.log" && rt_fail "connected despite a refused certificate"
rt_ok "untrusted CA and wrong server name refused"

# A password file readable by others is refused before anything is dialed.
chmod 644 "$T/wrong.pass"
"$RT_MQTT_PUB" -b "127.0.0.1:$MQ_PORT" --ca "$PKI/ca.crt" -u gw-17 -P "$T/wrong.pass" -n 1 \
	>"$T/perm.log" 2>&1 && rt_fail "world-readable password file accepted"
grep -q 'readable by group or others' "$T/perm.log" || rt_fail "perm message: $(cat "$T/perm.log")"
grep -q 'wrong-secret' "$T/perm.log" && rt_fail "password content logged"
rt_ok "world-readable password file refused"
rt_pass
