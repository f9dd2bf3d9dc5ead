#!/bin/bash
# fault_mqtt.sh - revtun-agent's MQTT client against broker faults
# (FAULTS.md M15, M16, M18, P3, N5), with a real mosquitto (mutual TLS,
# password file, ACL; mqtt_lib.sh). No relay is running: the agent's
# uplink retries in the background, which does not matter here.
#
#  M16 ok      normal ACL: the agent's probe on its own cmd topic comes
#              back ("verified end to end"), no warning; a signed ping is
#              answered by a pong.
#  M15         ACL without the events topic: the broker PUBACKs and drops
#              the pongs (log "Denied PUBLISH"); the agent's queue stays
#              empty, nothing is re-sent, telemetry still reaches the
#              monitor, no event does.
#  M16 silent  ACL that lets the agent write but not read its cmd topic:
#              mosquitto 2.0.11 still grants the SUBACK; the probe does not
#              come back and the agent warns ("broker ACL?"), publishes a
#              cmd-subscription event and counts it in its status line.
#  N5          broker SIGSTOPped for 4 s (a cut shorter than 1.5 x the 5 s
#              keepalive): no reconnect, no gap in the telemetry seqs.
#  M16 0x80    a fake broker (python3 ssl) answering SUBSCRIBE with 0x80:
#              the agent logs the refusal, sends no probe, stays connected
#              and publishes a cmd-subscription "refused" event.
#  M18         spool on a 1 MiB tmpfs (mostly taken by a filler file),
#              broker stopped, telemetry every second, queue of 10: ENOSPC
#              logged rate-limited, queue bounded (oldest dropped,
#              counted), no crash; broker back: what is queued arrives in
#              order; the spool writes again; messages spooled before a
#              restart (broker down) are loaded and delivered after it.
#  P3          50 x (start with a spool and no broker, kill -9 after a
#              random 0.1-1.5 s); see the P3 block for what is asserted.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/telemetry_lib.sh"

FM_MNT=""
fm_cleanup() {
	rc=$?
	# Lazy: detached now even while an agent still holds it (lib.sh
	# ends the processes, then removes $T).
	kill "${FM_P3:-}" 2>/dev/null
	for f in "$T"/k*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
	[ -n "$FM_MNT" ] && umount -l "$FM_MNT" 2>/dev/null
	(exit "$rc")
	rt_cleanup
}

mq_setup
trap fm_cleanup EXIT
rt_need python3
[ -x "$RT_AGENT" ] || rt_fail "$RT_AGENT not built"
RELAY_PORT=$(rt_free_port)	# nobody listens there
ECHO_PORT=$(rt_free_port)
openssl rand -hex 32 >"$T/cmd.key"
chmod 600 "$T/cmd.key"
tl_write_py
T0=$(date +%s)

# fm_conf FILE BROKER_PORT [MQTT_EXTRA] [TELEMETRY_EXTRA]
fm_conf() {
	ag_conf "$1" "
mqtt {
	enable = true
	brokers = {\"127.0.0.1:$2\"}
	username = \"gw-17\"
	password_file = \"$T/gw-17.pass\"
	keepalive = \"5s\"
	backoff_max = \"2s\"
	cmd_key_file = \"$T/cmd.key\"
	tls {
		ca = \"$PKI/ca.crt\"
		cert = \"$PKI/gw-17.crt\"
		key = \"$PKI/gw-17.key\"
	}
${3:-}
}
telemetry {
	interval = \"1s\"
${4:-}
}"
}

# fm_acl ACL_LINES...: the broker ACL (monitor reads everything).
fm_acl() {
	{ printf 'user monitor\ntopic read revtun/#\n'; printf '%s\n' "$@"; } >"$MQ/acl"
}

# fm_status NAME: USR1 the agent, print its newest "status: mqtt" line.
fm_status() {
	n=$(grep -c 'status: mqtt' "$T/$1.log")
	kill -USR1 "$(rt_pid "$1")"
	rt_wait 10 "status line" sh -c "[ \$(grep -c 'status: mqtt' '$T/$1.log') -gt $n ]" ||
		rt_fail "$1: no status line after USR1"
	grep 'status: mqtt' "$T/$1.log" | tail -1
}

# fm_field LINE NAME: the number before NAME in a status line ("12 acked").
fm_field() { echo "$1" | grep -oE "[0-9]+ $2" | head -1 | cut -d' ' -f1; }

# fm_tel_seqs: telemetry seqs at the monitor, in arrival order.
fm_tel_seqs() {
	grep '^revtun/gw-17/telemetry ' "$T/mon.log" | grep -oE '"seq":[0-9]+' | cut -d: -f2
}
# fm_qzero NAME: the agent's queue is empty now (polled at most twice a
# second: each poll is a USR1 status line).
fm_qzero() { sleep 0.5; [ "$(fm_field "$(fm_status "$1")" queued)" -eq 0 ]; }
fm_tel_count() { [ "$(fm_tel_seqs | wc -l)" -ge "$1" ]; }
fm_connects() { grep -c 'connected (' "$T/$1.log"; }

# ---- P3 (loop part; runs in the background while M15/M16/N5 run, to
# keep the test short): 50 x start the agent with a spool and no broker
# (its broker port is dead), kill -9 after a random 0.1-1.5 s. Each run's
# log is $T/kN.log, its PID $T/kN.pid (fm_cleanup ends a live one).
# What is asserted, and why it is the right bound: the agent logs
# "mqtt: telemetry queued: <envelope>" (debug) after spool_push has
# write(2)n the record. A SIGKILL keeps the page cache, so every message
# logged before the kill must be loaded by the next start and reach the
# monitor at the end: the asserted loss is zero. fdatasync (at most once a
# second) matters only for a power cut, which may lose the last <= 1 s
# (docs/mqtt.md); this test cannot cut power and does not claim to. A
# message built but killed before it was logged was never accepted.
DEADPORT=$(rt_free_port)
fm_conf "$T/p3.conf" "$DEADPORT" "	spool_dir = \"$T/p3spool\"" \
	"	metrics_file = \"$T/metrics\"
	metrics_file_interval = \"1s\""
printf 'tank_level 73.5\nsite plant-4\n' >"$T/metrics"
fm_p3_loop() {
	end=$(( $(date +%s) + 80 )); i=0
	while [ $i -lt 50 ] && [ "$(date +%s)" -lt "$end" ]; do
		i=$((i + 1))
		rt_spawn "k$i" "$RT_AGENT" -f "$T/p3.conf"
		ms=$(( RANDOM % 1401 + 100 ))
		sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"	# the fault's timing
		p=$(rt_pid "k$i")
		rt_alive "$p" || { echo "k$i exited by itself" >>"$T/p3.err"; break; }
		kill -9 "$p"
		rt_wait 10 "k$i gone" rt_dead "$p" || { echo "k$i survived kill -9" >>"$T/p3.err"; break; }
		wait "$p" 2>/dev/null
		echo "$i $ms" >>"$T/p3.runs"
	done
	echo "$i" >"$T/p3.done"
}
: >"$T/p3.runs"
fm_p3_loop 2>"$T/p3.stderr" &
FM_P3=$!
RT_PIDS="$FM_P3 $RT_PIDS"

# ---- M16 ok: normal ACL, the probe comes back, a signed ping works
fm_acl 'pattern readwrite revtun/%u/#'
mq_start
mq_monitor mon 'revtun/gw-17/#'
fm_conf "$T/agent.conf" "$MQ_PORT"
rt_spawn agent "$RT_AGENT" -f "$T/agent.conf"
rt_wait_log 20 "$T/agent.log" 'subscription to revtun/gw-17/cmd verified end to end' ||
	rt_fail "M16: the probe did not come back with the normal ACL"
tl_cmd "$(tl_sign ping)"
rt_wait_log 10 "$T/mon.log" '^revtun/gw-17/events .*"event":"pong"' ||
	rt_fail "M16: no pong for a signed ping"
grep -qE 'did not come back|command refused' "$T/agent.log" &&
	rt_fail "M16: warning or refusal with the normal ACL: $(grep -E 'did not come back|command refused' "$T/agent.log" | head -2)"
grep -q '"event":"command-refused"' "$T/mon.log" && rt_fail "M16: the probe was taken for a command"
st=$(fm_status agent)
echo "$st" | grep -q 'cmd subscription ok (0 probes lost)' || rt_fail "M16: status: $st"
rt_ok "M16: normal ACL: probe back, no warning, signed ping answered, status 'cmd subscription ok'"

# ---- M15: the events topic outside the ACL
fm_acl 'user gw-17' 'topic readwrite revtun/gw-17/cmd' \
	'topic readwrite revtun/gw-17/status' 'topic readwrite revtun/gw-17/telemetry'
c0=$(fm_connects agent)
mq_restart
rt_wait 20 "agent reconnected" sh -c "[ \$(grep -c 'connected (' '$T/agent.log') -gt $c0 ]" ||
	rt_fail "M15: agent did not reconnect"
# Re-sends after the reconnect (DUP=1) are legitimate: mark the logs once
# the queue has drained.
rt_wait 15 "queue drained" fm_qzero agent || rt_fail "M15: queue not drained after the reconnect"
mon0=$(wc -l <"$T/mon.log")
blog0=$(wc -l <"$MQ/mosquitto.log")
ntel0=$(fm_tel_seqs | wc -l)
for i in 1 2 3; do tl_cmd "$(tl_sign ping)"; done
rt_wait 10 "3 more pings accepted" sh -c "[ \$(grep -c 'command ping accepted' '$T/agent.log') -ge 4 ]" ||
	rt_fail "M15: pings not accepted"
rt_wait_log 10 "$MQ/mosquitto.log" "Denied PUBLISH from gw-17 .*'revtun/gw-17/events'" ||
	rt_fail "M15: the broker did not deny the events"
rt_wait 15 "5 more telemetry payloads" fm_tel_count $((ntel0 + 5)) ||
	rt_fail "M15: telemetry stopped reaching the monitor"
rt_wait 15 "queue drained" fm_qzero agent || rt_fail "M15: the queue does not drain: $(fm_status agent)"
st=$(fm_status agent)
d=$(fm_field "$st" dropped)
[ "$d" -eq 0 ] || rt_fail "M15: drops: $st"
denied=$(tail -n +"$blog0" "$MQ/mosquitto.log" | grep -c "Denied PUBLISH from gw-17 .*revtun/gw-17/events")
[ "$denied" -ge 3 ] || rt_fail "M15: $denied denied publishes (want >= 3 pongs)"
tail -n +"$blog0" "$MQ/mosquitto.log" | grep -q 'Received PUBLISH from gw-17 (d1' &&
	rt_fail "M15: the agent re-sent (DUP=1) after the denied publishes"
tail -n +"$((mon0 + 1))" "$T/mon.log" | grep -q '^revtun/gw-17/events' &&
	rt_fail "M15: a denied event reached the monitor"
rt_ok "M15: $denied events denied and PUBACKed (queue drained to 0, 0 dropped, no DUP=1 re-send), telemetry still delivered, no event delivered"

# ---- M16 silent: agent may write but not read its cmd topic
fm_acl 'user gw-17' 'topic write revtun/gw-17/#'
c0=$(fm_connects agent)
mq_restart
rt_wait 20 "agent reconnected" sh -c "[ \$(grep -c 'connected (' '$T/agent.log') -gt $c0 ]" ||
	rt_fail "M16: agent did not reconnect"
t1=$(date +%s)
rt_wait_log 25 "$T/agent.log" 'subscription to revtun/gw-17/cmd was granted, but the probe .* did not come back within [0-9]+ s \(broker ACL\?' ||
	rt_fail "M16: no warning for a silent cmd subscription"
dt=$(( $(date +%s) - t1 ))
grep -q "Sending SUBACK to gw-17" "$MQ/mosquitto.log" || rt_fail "M16: no SUBACK in the broker log"
rt_wait_log 10 "$T/mon.log" '"event":"cmd-subscription","result":"silent"' ||
	rt_fail "M16: no cmd-subscription event"
st=$(fm_status agent)
echo "$st" | grep -q 'cmd subscription silent (1 probes lost)' || rt_fail "M16: status: $st"
rt_ok "M16: SUBACK granted but nothing delivered: warned after ~${dt} s, event and status 'silent'"

# ---- N5: broker frozen for 4 s, keepalive 5 s: no reconnect, no gap
c0=$(fm_connects agent)
s0=$(fm_tel_seqs | tail -1)
bp=$(rt_pid "$MQ_BROKER")
kill -STOP "$bp"
sleep 4		# the fault itself: a 4 s silence
kill -CONT "$bp"
rt_wait 20 "telemetry after the freeze" sh -c "[ \$(grep '^revtun/gw-17/telemetry ' '$T/mon.log' | grep -oE '\"seq\":[0-9]+' | cut -d: -f2 | tail -1) -ge $((s0 + 6)) ]" ||
	rt_fail "N5: telemetry did not resume"
[ "$(fm_connects agent)" -eq "$c0" ] || rt_fail "N5: the agent reconnected"
grep -q 'presumed dead' "$T/agent.log" && rt_fail "N5: broker declared dead"
s1=$(fm_tel_seqs | tail -1)
miss=$(fm_tel_seqs | sort -n | uniq | awk -v a="$s0" -v b="$s1" '$1 >= a && $1 <= b' | wc -l)
[ "$miss" -eq $((s1 - s0 + 1)) ] || rt_fail "N5: gap in telemetry seqs $s0..$s1 ($miss distinct)"
rt_ok "N5: 4 s freeze: same session, telemetry seqs $s0..$s1 complete"
rt_stop agent >/dev/null || rt_fail "agent did not stop"
grep -qE 'AddressSanitizer|runtime error' "$T/agent.log" && rt_fail "sanitizer report in agent.log"

# ---- M16 0x80: a fake broker refusing the subscription
cat >"$T/fake.py" <<'PY'
# Minimal MQTT 3.1.1 broker over TLS for one client: CONNACK 0, SUBACK
# 0x80 for every SUBSCRIBE, PUBACK for QoS 1 PUBLISH, PINGRESP; prints
# each packet it gets; runs until killed.
import socket, ssl, sys
port, cert, key, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca); ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port)); ls.listen(4)
while True:
    s = ctx.wrap_socket(ls.accept()[0], server_side=True)
    buf = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            print("client closed", flush=True); break
        buf += d
        while len(buf) >= 2:
            n, mult, i = 0, 1, 1
            while buf[i] & 0x80:
                n += (buf[i] & 0x7f) * mult; mult *= 128; i += 1
            n += (buf[i] & 0x7f) * mult
            if len(buf) < i + 1 + n: break
            t, body = buf[0], bytes(buf[i + 1:i + 1 + n]); del buf[:i + 1 + n]
            if t >> 4 == 1:
                s.sendall(b"\x20\x02\x00\x00"); print("CONNECT", flush=True)
            elif t >> 4 == 8:
                pid = body[:2]; print("SUBSCRIBE", body[4:-1].decode(), flush=True)
                s.sendall(b"\x90\x03" + pid + b"\x80")
            elif t >> 4 == 3:
                tl = body[0] << 8 | body[1]; topic = body[2:2 + tl].decode()
                q = (t >> 1) & 3; off = 2 + tl + (2 if q else 0)
                print("PUBLISH", topic, body[off:].decode(errors="replace"), flush=True)
                if q == 1: s.sendall(b"\x40\x02" + body[2 + tl:4 + tl])
            elif t >> 4 == 12:
                s.sendall(b"\xd0\x00")
PY
FPORT=$(rt_free_port)
rt_spawn fake python3 -u "$T/fake.py" "$FPORT" "$PKI/broker.crt" "$PKI/broker.key" "$PKI/ca.crt"
rt_wait 10 "fake broker" rt_listening "$FPORT" || rt_fail "fake broker did not start"
fm_conf "$T/agentf.conf" "$FPORT"
rt_spawn agentf "$RT_AGENT" -f "$T/agentf.conf"
rt_wait_log 15 "$T/agentf.log" 'subscription to revtun/gw-17/cmd refused \(SUBACK 0x80\): no command can arrive; check the broker.s ACL' ||
	rt_fail "M16 0x80: refusal not logged"
rt_wait_log 10 "$T/fake.log" 'PUBLISH revtun/gw-17/events .*"event":"cmd-subscription","result":"refused"' ||
	rt_fail "M16 0x80: no cmd-subscription refused event"
rt_wait 10 "3 telemetry payloads at the fake" sh -c "[ \$(grep -c 'PUBLISH revtun/gw-17/telemetry' '$T/fake.log') -ge 3 ]" ||
	rt_fail "M16 0x80: telemetry stopped after the refusal"
st=$(fm_status agentf)
echo "$st" | grep -q 'mqtt up .*cmd subscription refused' || rt_fail "M16 0x80: status: $st"
grep -q 'PUBLISH revtun/gw-17/cmd' "$T/fake.log" && rt_fail "M16 0x80: a probe was sent on a refused subscription"
grep -q 'client closed' "$T/fake.log" && rt_fail "M16 0x80: the connection was dropped"
[ "$(fm_connects agentf)" -eq 1 ] || rt_fail "M16 0x80: reconnected"
rt_stop agentf >/dev/null || rt_fail "agentf did not stop"
grep -qE 'AddressSanitizer|runtime error' "$T/agentf.log" && rt_fail "sanitizer report in agentf.log"
rt_ok "M16 0x80: refusal logged, 'refused' event and status, no probe, session and telemetry kept"
rt_log "elapsed so far: $(( $(date +%s) - T0 )) s"

# ---- M18: disk full under the spool, broker down, queue bounded
mq_stop
if [ "$(id -u)" = 0 ] && mkdir -p "$T/spoolfs" &&
    mount -t tmpfs -o size=1m,mode=0700 tmpfs "$T/spoolfs"; then
	FM_MNT="$T/spoolfs"
	# Leave 2 pages: the spool hits ENOSPC after ~10 records.
	dd if=/dev/zero of="$FM_MNT/filler" bs=4k count=254 2>/dev/null ||
		rt_fail "M18: filler did not fit"
	fm_conf "$T/sp.conf" "$MQ_PORT" "	spool_dir = \"$FM_MNT/spool\"
	queue_max_messages = 10" "	metrics_file = \"$T/metrics\"
	metrics_file_interval = \"1s\""
	mon0=$(wc -l <"$T/mon.log")
	t1=$(date +%s)
	rt_spawn sp "$RT_AGENT" -f "$T/sp.conf"
	rt_wait_log 30 "$T/sp.log" 'spool .*/spool: write: No space left on device \([0-9]+ records not written so far; queued messages are kept in memory\)' ||
		rt_fail "M18: ENOSPC not logged"
	rt_wait_log 30 "$T/sp.log" 'spool: queue full: dropped message' ||
		rt_fail "M18: the full queue did not drop"
	werr() { sleep 1; [ "$(fm_field "$(fm_status sp)" 'spool write errors')" -ge "$1" ]; }
	rt_wait 30 "20 write errors" werr 20 || rt_fail "M18: fewer than 20 write errors"
	st=$(fm_status sp)
	el=$(( $(date +%s) - t1 ))
	q=$(fm_field "$st" queued); d=$(fm_field "$st" dropped)
	we=$(fm_field "$st" 'spool write errors')
	[ "$q" -le 10 ] && [ "$d" -gt 0 ] || rt_fail "M18: queue not bounded: $st"
	nlog=$(grep -c 'No space left on device' "$T/sp.log")
	# log_warn_rl: 5 lines per 10 s window
	[ "$nlog" -le $(( (el / 10 + 1) * 5 )) ] ||
		rt_fail "M18: $nlog ENOSPC lines in ${el} s ($we errors): not rate limited"
	rt_alive "$(rt_pid sp)" || rt_fail "M18: agent died"
	rt_ok "M18: ENOSPC: $we write errors, $nlog log lines in ${el} s; queue $q of 10, $d oldest dropped"
	mq_start
	rt_wait 20 "sp connected" grep -q 'connected (' "$T/sp.log" || rt_fail "M18: no reconnect"
	sp_seqs() { tail -n +"$((mon0 + 1))" "$T/mon.log" | grep '^revtun/gw-17/telemetry ' |
		grep -oE '"seq":[0-9]+' | cut -d: -f2; }
	sp_n() { [ "$(sp_seqs | wc -l)" -ge "$1" ]; }
	rt_wait 20 "queued telemetry delivered" sp_n $((q + 2)) || rt_fail "M18: queue not delivered"
	rt_wait 15 "queue drained" fm_qzero sp || rt_fail "M18: queue not drained: $(fm_status sp)"
	st=$(fm_status sp)
	d=$(fm_field "$st" dropped)
	sp_seqs >"$T/sp.seqs"	# one snapshot: telemetry goes on
	first=$(head -1 "$T/sp.seqs"); last=$(tail -1 "$T/sp.seqs")
	uniq "$T/sp.seqs" | awk 'NR > 1 && $1 <= p { bad = 1 } { p = $1 } END { exit bad }' ||
		rt_fail "M18: delivered out of order: $(tr '\n' ' ' <"$T/sp.seqs")"
	# Every seq up to the last delivered one arrived or was counted as
	# dropped (the oldest during the outage; on a slow machine also a
	# new one refused while all 10 queued were in flight).
	got=$(sort -un "$T/sp.seqs" | wc -l)
	[ "$d" -eq $((last - got)) ] ||
		rt_fail "M18: $d dropped, but $((last - got)) of seqs 1..$last missing: $(tr '\n' ' ' <"$T/sp.seqs")"
	[ "$first" -gt 1 ] || rt_fail "M18: the oldest message was not the one dropped"
	rt_ok "M18: broker back: seqs $first..$last in order; all 1..$last delivered or counted as dropped ($d, oldest first)"
	# Acknowledged segments make room again: with the broker up and the
	# filler still there (2 pages), the spool writes again: a finished
	# segment is replaced when the disk is full. A write can still fail
	# while the current segment holds an unacknowledged message, so a
	# few errors remain; without the rotation every message and every
	# acknowledgement would fail (4 records per second here).
	we1=$(fm_field "$st" 'spool write errors')
	n1=$(sp_seqs | wc -l)
	sleep 5		# an observation window, ~10 more messages
	st=$(fm_status sp)
	we2=$(fm_field "$st" 'spool write errors')
	n2=$(sp_seqs | wc -l)
	[ "$n2" -ge $((n1 + 5)) ] || rt_fail "M18: telemetry stalled after the outage"
	[ $(( (we2 - we1) * 2 )) -le $((n2 - n1)) ] ||
		rt_fail "M18: still failing to write with the broker up ($we1 -> $we2 errors for $((n2 - n1)) messages)"
	grep -q 'spool .*: disk full: new segment' "$T/sp.log" || rt_fail "M18: no segment rotation on the full disk"
	rt_ok "M18: with the broker up the spool writes again ($((we2 - we1)) errors for $((n2 - n1)) messages in 5 s; $(grep -c 'disk full: new segment' "$T/sp.log") segment rotations)"
	rt_stop sp >/dev/null || rt_fail "M18: agent did not stop"
	grep -qE 'AddressSanitizer|runtime error' "$T/sp.log" && rt_fail "sanitizer report in sp.log"
	# Restart with messages in the spool: broker down, a few messages
	# spooled on the nearly full disk, graceful stop, broker up, start.
	mq_stop
	rt_spawn sp2 "$RT_AGENT" -f "$T/sp.conf"
	rt_wait 20 "3 messages queued" sh -c "[ \$(grep -c 'mqtt: telemetry queued: ' '$T/sp2.log') -ge 3 ]" ||
		rt_fail "M18: sp2 queued nothing"
	rt_stop sp2 >/dev/null || rt_fail "M18: sp2 did not stop"
	grep -qE 'AddressSanitizer|runtime error' "$T/sp2.log" && rt_fail "sanitizer report in sp2.log"
	grep -oE 'mqtt: telemetry queued: .*"seq":[0-9]+' "$T/sp2.log" |
		grep -oE '"ts":"[^"]*","seq":[0-9]+' | sort -u >"$T/sp2.want"
	mq_start
	rt_spawn sp3 "$RT_AGENT" -f "$T/sp.conf"
	rt_wait_log 20 "$T/sp3.log" 'spool .*/spool: [1-9][0-9]* unacknowledged message\(s\) loaded' ||
		rt_fail "M18: the spooled messages were not loaded after the restart"
	grep -qE 'corrupt region|telemetry disabled' "$T/sp3.log" &&
		rt_fail "M18: $(grep -E 'corrupt region|telemetry disabled' "$T/sp3.log")"
	if grep -q 'No space left' "$T/sp2.log"; then
		# Some of them were in memory only: just what was loaded.
		rt_wait_log 20 "$T/sp3.log" 'connected \(' || rt_fail "M18: restart did not connect"
	else
		sp2_have() {
			grep '^revtun/gw-17/telemetry ' "$T/mon.log" | grep -oE '"ts":"[^"]*","seq":[0-9]+' |
				sort -u | comm -23 "$T/sp2.want" - >"$T/sp2.missing"
			[ ! -s "$T/sp2.missing" ]
		}
		rt_wait 20 "spooled messages at the monitor" sp2_have ||
			rt_fail "M18: spooled before the restart, never delivered: $(tr '\n' ' ' <"$T/sp2.missing")"
	fi
	rt_stop sp3 >/dev/null || rt_fail "M18: sp3 did not stop"
	grep -qE 'AddressSanitizer|runtime error' "$T/sp3.log" && rt_fail "sanitizer report in sp3.log"
	rt_ok "M18: restart on the nearly full disk: $(grep -oE '[0-9]+ unacknowledged message\(s\) loaded from [0-9]+ segment\(s\)' "$T/sp3.log"), $(wc -l <"$T/sp2.want") spooled by the previous run$(grep -q 'No space left' "$T/sp2.log" && echo ' (some in memory only: ENOSPC)' || echo ', all delivered')"
else
	rt_log "M18: not root or no tmpfs mount here: the disk-full part is not run"
	mq_start
fi

# ---- P3: the loop's verdict, then delivery of everything spooled
rt_wait 90 "P3 loop" test -s "$T/p3.done" || rt_fail "P3: loop did not finish"
[ -s "$T/p3.err" ] && rt_fail "P3: $(cat "$T/p3.err")"
runs=$(wc -l <"$T/p3.runs")
[ "$runs" -ge 50 ] || rt_log "P3: only $runs runs within the time bound"
[ "$runs" -ge 25 ] || rt_fail "P3: only $runs runs"
prev=0; loads=0
for i in $(seq 1 "$runs"); do
	f="$T/k$i.log"
	grep -qE 'AddressSanitizer|runtime error' "$f" && rt_fail "P3: sanitizer report in k$i.log"
	grep -qE 'skipped [1-9][0-9]* corrupt region|telemetry disabled' "$f" &&
		rt_fail "P3 run $i: $(grep -E 'corrupt region|telemetry disabled' "$f")"
	n=$(grep -oE '[0-9]+ unacknowledged message\(s\) loaded' "$f" | cut -d' ' -f1)
	if [ -n "$n" ]; then
		loads=$((loads + 1))
		[ "$n" -ge "$prev" ] || rt_fail "P3 run $i loaded $n messages, $prev were logged as queued before"
	fi
	prev=$((prev + $(grep -c 'mqtt: telemetry queued: ' "$f")))
done
[ "$loads" -ge $((runs / 2)) ] || rt_fail "P3: only $loads of $runs runs got as far as loading the spool"
cat "$T"/k*.log | grep -oE 'mqtt: telemetry queued: .*"seq":[0-9]+' |
	grep -oE '"ts":"[^"]*","seq":[0-9]+' | sort -u >"$T/p3.want"
[ "$(wc -l <"$T/p3.want")" -eq "$prev" ] || rt_fail "P3: duplicate envelopes in the logs"
fm_conf "$T/p3.conf" "$MQ_PORT" "	spool_dir = \"$T/p3spool\""
rt_spawn kfin "$RT_AGENT" -f "$T/p3.conf"
rt_wait_log 20 "$T/kfin.log" 'unacknowledged message\(s\) loaded' || rt_fail "P3: final start did not load"
p3_have() {
	grep '^revtun/gw-17/telemetry ' "$T/mon.log" | grep -oE '"ts":"[^"]*","seq":[0-9]+' |
		sort -u | comm -23 "$T/p3.want" - >"$T/p3.missing"
	[ ! -s "$T/p3.missing" ]
}
rt_wait 40 "every logged P3 message at the monitor" p3_have ||
	rt_fail "P3: $(wc -l <"$T/p3.missing") of $prev logged messages never arrived, e.g. $(head -2 "$T/p3.missing" | tr '\n' ' ')"
torn=$(cat "$T"/k*.log "$T/kfin.log" | grep -oE 'and [0-9]+ torn record' | awk '{ s += $2 } END { print s + 0 }')
rt_stop kfin >/dev/null || rt_fail "P3: final agent did not stop"
grep -qE 'AddressSanitizer|runtime error' "$T/kfin.log" && rt_fail "sanitizer report in kfin.log"
rt_ok "P3: $runs kill -9 runs (random 0.1-1.5 s), spool loaded $loads times without a corrupt region ($torn torn tails skipped), all $prev messages logged as queued delivered"
rt_log "elapsed: $(( $(date +%s) - T0 )) s"

rt_pass
