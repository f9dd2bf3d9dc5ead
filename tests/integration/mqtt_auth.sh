#!/bin/bash
# mqtt_auth.sh - credential refusals against a real mosquitto (2.0.11
# answers a wrong password with CONNACK 5): the client logs a clear,
# cause-specific line without the password, does not hammer the broker
# (one attempt in a 10 s window: the long retry after 4/5 is 5 min), and
# the same holds for an unknown user. A client certificate from another CA
# is refused in the TLS handshake and retried with backoff.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/mqtt_lib.sh"

mq_setup
mq_start

attempts() { grep -c "New connection from 127.0.0.1" "$MQ/mosquitto.log"; }
# at_most_one SECS BASE: over a window of SECS, the broker never sees more
# than one connection attempt since BASE (polled, fails at once).
at_most_one() {
	end=$(( $(date +%s) + $1 ))
	while [ "$(date +%s)" -lt "$end" ]; do
		n=$(( $(attempts) - $2 ))
		[ "$n" -le 1 ] || rt_fail "$n connection attempts within $1 s"
		sleep 0.5
	done
}

a0=$(attempts)
rt_spawn bad "$RT_MQTT_PUB" -b "127.0.0.1:$MQ_PORT" --ca "$PKI/ca.crt" \
	--cert "$PKI/gw-17.crt" --key "$PKI/gw-17.key" -u gw-17 -P "$T/wrong.pass" \
	-i gw-17 -n 1 -B 1
rt_wait_log 10 "$T/bad.log" 'not authorised|bad user name or password' ||
	rt_fail "no clear refusal line"
grep -qE 'error: mqtt broker .*connection refused: (not authorised|bad user name or password) \(user "gw-17"\); next try in 300 s' "$T/bad.log" ||
	rt_fail "refusal line: $(grep refused "$T/bad.log")"
grep -q 'wrong-secret' "$T/bad.log" "$MQ/mosquitto.log" && rt_fail "password logged"
at_most_one 10 "$a0"
grep -q 'next attempt .* in 2[0-9][0-9]\.[0-9] s\|next attempt .* in 3[0-9][0-9]\.[0-9] s' "$T/bad.log" ||
	rt_fail "no long retry announced: $(grep 'next attempt' "$T/bad.log")"
rt_ok "wrong password: clear log line, one attempt in 10 s, next in ~5 min"
kill "$(rt_pid bad)"

a0=$(attempts)
rt_spawn nouser "$RT_MQTT_PUB" -b "127.0.0.1:$MQ_PORT" --ca "$PKI/ca.crt" \
	--cert "$PKI/gw-17.crt" --key "$PKI/gw-17.key" -u nobody -P "$T/gw-17.pass" \
	-i gw-17 -n 1 -B 1
rt_wait_log 10 "$T/nouser.log" 'user "nobody"' || rt_fail "unknown user not refused clearly"
at_most_one 5 "$a0"
rt_ok "unknown user refused, no retry storm"
kill "$(rt_pid nouser)"

# Client certificate the broker does not trust: a TLS refusal, normal backoff.
rt_spawn rogue "$RT_MQTT_PUB" -b "127.0.0.1:$MQ_PORT" --ca "$PKI/ca.crt" \
	--cert "$PKI/agent-rogue.crt" --key "$PKI/agent-rogue.key" -u gw-17 -P "$T/gw-17.pass" \
	-i gw-17 -n 1 -B 4
rt_wait_log 15 "$T/rogue.log" 'next attempt .* in [0-9.]+ s' || rt_fail "rogue cert: no backoff"
# TLS 1.3: the client finishes its side before the broker checks the
# certificate, so the refusal arrives as an alert or, when the broker
# closes first, as a reset on the next write.
grep -qE 'warning: mqtt broker .*(alert|certificate|closed|reset by peer)' "$T/rogue.log" ||
	rt_fail "rogue cert refusal: $(grep -E 'warning|error' "$T/rogue.log" | head -3)"
grep -q 'connected (' "$T/rogue.log" && rt_fail "connected with a foreign certificate"
rt_ok "foreign client certificate refused in TLS ($(grep -m1 -oE 'TLS handshake: .*|read: .*' "$T/rogue.log"))"
rt_pass
