#!/bin/bash
# mqtt_will.sh - the last will: kill -9 of a connected client makes the
# broker publish the retained will (offline, "will":true); a graceful stop
# (TERM) publishes the offline status itself and the will does not fire;
# the birth (online) is retained and re-published on every connect; a
# message on <prefix>/<agent>/cmd reaches the client's callback.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/mqtt_lib.sh"

mq_setup
mq_start
mq_monitor mon 'revtun/gw-17/status'

# A long-running publisher (slow stream, never finishes on its own).
mq_pub pub1 -n 100000 -r 2 -k 5
rt_wait_log 10 "$T/mon.log" '"status":"online"' || rt_fail "no birth"
rt_wait_log 10 "$MQ/mosquitto.log" 'gw-17 1 revtun/gw-17/cmd' || rt_fail "cmd not subscribed"
# A command reaches the callback (QoS 1, PUBACKed).
timeout 10 mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" --cafile "$PKI/ca.crt" \
	--cert "$PKI/gw-17.crt" --key "$PKI/gw-17.key" -u gw-17 -P gw17-secret \
	-i gw-17-op -t revtun/gw-17/cmd -m '{"cmd":"ping"}' -q 1 || rt_fail "cmd publish failed"
rt_wait_log 10 "$T/pub1.log" 'message on revtun/gw-17/cmd \(14 bytes\)' || rt_fail "cmd not delivered"
rt_wait_log 10 "$MQ/mosquitto.log" 'Received PUBACK from gw-17' || rt_fail "cmd not PUBACKed"
rt_ok "birth online retained; cmd subscribed, delivered and PUBACKed"

kill -9 "$(rt_pid pub1)"
rt_wait_log 10 "$T/mon.log" '"status":"offline","agent":"gw-17","will":true' ||
	rt_fail "the will did not fire on kill -9"
ret=$(timeout 10 mosquitto_sub "${MQ_SUB[@]}" -t revtun/gw-17/status -C 1 -W 5 2>&1)
[ "$ret" = '{"status":"offline","agent":"gw-17","will":true}' ] || rt_fail "retained after kill: '$ret'"
rt_ok "kill -9: will published and retained"

nwill=$(grep -c '"will":true' "$T/mon.log")
mq_pub pub2 -n 100000 -r 2 -k 5
rt_wait 10 "second birth" sh -c "[ \$(grep -c '\"status\":\"online\"' '$T/mon.log') -ge 2 ]" ||
	rt_fail "no birth on the second connect"
kill -TERM "$(rt_pid pub2)"
rt_wait 10 "pub2 exit" rt_dead "$(rt_pid pub2)" || rt_fail "TERM did not stop the client"
wait "$(rt_pid pub2)"; rc=$?
[ "$rc" -eq 0 ] || rt_fail "graceful stop exited $rc"
rt_wait_log 10 "$T/mon.log" '"status":"offline","agent":"gw-17"}$' || rt_fail "no offline status on TERM"
rt_wait_log 10 "$MQ/mosquitto.log" 'Received DISCONNECT from gw-17' || rt_fail "no DISCONNECT"
# The will must not follow (it would come as the connection closes).
end=$(( $(date +%s) + 3 ))
while [ "$(date +%s)" -lt "$end" ]; do
	[ "$(grep -c '"will":true' "$T/mon.log")" -eq "$nwill" ] || rt_fail "the will fired after a graceful stop"
	sleep 0.2
done
ret=$(timeout 10 mosquitto_sub "${MQ_SUB[@]}" -t revtun/gw-17/status -C 1 -W 5 2>&1)
[ "$ret" = '{"status":"offline","agent":"gw-17"}' ] || rt_fail "retained after TERM: '$ret'"
rt_ok "TERM: offline published by the client, DISCONNECT, no will"
rt_pass
