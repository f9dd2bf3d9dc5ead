#!/bin/bash
# mqtt_malformed.sh - agent/mqtt.c against a fake TLS broker (python3,
# standard library) sending crafted bytes after CONNECT (FAULTS.md 4.4,
# M1-M9, M12-M14): each malformed or refused case must close the
# connection promptly with a cause-specific log line and bounded memory
# (peak RSS far below the 256 MiB a naive client reserves for "remaining
# length 268,435,455"); an unknown PUBACK is counted and ignored; after a
# connection drop the unacknowledged QoS 1 messages are re-sent first with
# DUP=1, their original packet ids and order, although the broker says
# Session Present = 0; a silent broker is dropped after 1.5 x keepalive.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/mqtt_lib.sh"

rt_setup
rt_need python3
rt_pki

cat >"$T/fakebroker.py" <<'PY'
import socket, ssl, sys, time
port, case, cert, key, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca); ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port)); ls.listen(4)
ok = b"\x20\x02\x00\x00"
cases = {"connack-rc1": b"\x20\x02\x00\x01", "connack-rc2": b"\x20\x02\x00\x02",
         "connack-rc4": b"\x20\x02\x00\x04", "connack-rc6": b"\x20\x02\x00\x06",
         "connack-badlen": b"\x20\x03\x00\x00\x00",
         "connack-sp": b"\x20\x02\x01\x00",
         "rl-5bytes": ok + b"\x30\xff\xff\xff\xff\x7f",
         "rl-max-stall": ok + b"\x30\xff\xff\xff\x7f\x00\x03a/b",
         "rl-big": ok + b"\x30\x80\x80\x20",
         "publish-qos3": ok + b"\x36\x07\x00\x03a/b\x00\x01",
         "publish-nul-topic": ok + b"\x30\x06\x00\x03a\x00bX",
         "publish-bad-utf8": ok + b"\x30\x05\x00\x02\xc3\x28X",
         "puback-badflags": ok + b"\x41\x02\x00\x01",
         "suback-badflags": ok + b"\x91\x03\x00\x01\x00",
         "suback-unknown": ok + b"\x90\x03\x77\x77\x00",
         "pubrec": ok + b"\x50\x02\x00\x01",
         "server-pingreq": ok + b"\xc0\x00",
         "publish-before-connack": b"\x30\x05\x00\x03a/bX",
         "puback-unknown": ok + b"\x40\x02\xea\x60",
         "silent": ok}

def packets(s, buf):
    """Yields (first byte, body) of each packet read from s."""
    while True:
        while True:
            if len(buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(buf) and i <= 4:
                    n += (buf[i] & 0x7f) * mult; mult *= 128
                    if not buf[i] & 0x80: break
                    i += 1
                if i < len(buf) and len(buf) >= i + 1 + n:
                    yield buf[0], bytes(buf[i + 1:i + 1 + n]); del buf[:i + 1 + n]; continue
            break
        d = s.recv(65536)
        if not d: return
        buf += d

def publishes(s, want):
    """Reads until `want` telemetry QoS 1 PUBLISHes: [(dup, id, payload)]."""
    got = []
    for b0, body in packets(s, bytearray()):
        if b0 >> 4 == 3 and (b0 >> 1) & 3 == 1:
            tl = body[0] << 8 | body[1]; topic = body[2:2 + tl]
            pid = body[2 + tl] << 8 | body[3 + tl]
            if topic.endswith(b"/telemetry"):
                got.append(((b0 >> 3) & 1, pid, body[4 + tl:].decode()))
                if len(got) >= want: return got
    return got

s = ctx.wrap_socket(ls.accept()[0], server_side=True); s.settimeout(10)
if case == "resend":
    s.recv(4096); s.sendall(ok)
    first = publishes(s, 5)            # never PUBACKed
    s.close()
    s = ctx.wrap_socket(ls.accept()[0], server_side=True); s.settimeout(10)
    s.recv(4096); s.sendall(ok)        # Session Present = 0
    again = publishes(s, 5)
    print("first", first); print("again", again)
    if [(i, p) for _, i, p in first] == [(i, p) for _, i, p in again] and \
       all(d == 0 for d, _, _ in first) and all(d == 1 for d, _, _ in again):
        print("resend ok")
    else:
        print("resend BAD")
    sys.stdout.flush(); time.sleep(1); sys.exit(0)
s.recv(4096)                            # CONNECT
if case == "puback-unknown": s.settimeout(2)
s.sendall(cases[case]); t = time.time()
print(case, "sent", flush=True)
try:
    while (d := s.recv(4096)): pass
    print(case, f"client closed after {time.time() - t:.2f}s", flush=True)
except socket.timeout:
    print(case, "client kept the connection open", flush=True)
except (ConnectionResetError, ssl.SSLError, OSError) as e:
    print(case, f"client closed after {time.time() - t:.2f}s ({e})", flush=True)
PY

# run_case CASE "expected log regex" [mqtt_pub args]: fake broker + client;
# waits for the fake broker's verdict, stops the client, sets VERDICT.
N=0
run_case() {
	case=$1 want=$2; shift 2
	N=$((N + 1))
	port=$(rt_free_port)
	rt_spawn "fake$N" python3 -u "$T/fakebroker.py" "$port" "$case" \
		"$PKI/broker.crt" "$PKI/broker.key" "$PKI/ca.crt"
	rt_wait 10 "fake broker" rt_listening "$port" || rt_fail "$case: fake broker did not start"
	rt_spawn "pub$N" "$RT_MQTT_PUB" -b "127.0.0.1:$port" --ca "$PKI/ca.crt" \
		--cert "$PKI/gw-17.crt" --key "$PKI/gw-17.key" -i gw-17 -B 30 "$@"
	rt_wait 15 "$case verdict" grep -qE 'client (closed|kept)|resend' "$T/fake$N.log" ||
		rt_fail "$case: no verdict from the fake broker"
	[ "$case" = resend ] && rt_wait 10 "resend verdict" grep -qE 'resend (ok|BAD)' "$T/fake$N.log"
	rt_wait_log 5 "$T/pub$N.log" "$want" ||
		rt_fail "$case: expected '$want' in the client log"
	hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$(rt_pid "pub$N")/status" 2>/dev/null)
	kill "$(rt_pid "pub$N")" 2>/dev/null
	[ -n "$hwm" ] && [ "$hwm" -lt 102400 ] || rt_fail "$case: client peak RSS ${hwm} kB"
	VERDICT="$(grep -E 'client|resend' "$T/fake$N.log" | tail -1) (peak RSS ${hwm} kB)"
}
closed_fast() {
	echo "$1" | grep -qE 'closed after [0-2]\.' || rt_fail "not closed promptly: $1"
}

for spec in \
	'connack-rc1|unacceptable protocol version \(configuration error' \
	'connack-rc2|identifier rejected \(configuration error: client id "gw-17"\)' \
	'connack-rc4|error: .*bad user name or password \(user "\(none\)"\); next try in 300 s' \
	'connack-rc6|protocol error: malformed CONNACK \(4 bytes: 20 02 00 06\)' \
	'connack-badlen|protocol error: malformed CONNACK \(5 bytes' \
	'rl-5bytes|protocol error: malformed fixed header' \
	'rl-max-stall|protocol error: PUBLISH packet larger than the 262144 byte limit' \
	'rl-big|protocol error: PUBLISH packet larger than the 262144 byte limit' \
	'publish-qos3|protocol error: malformed PUBLISH' \
	'publish-nul-topic|protocol error: malformed PUBLISH' \
	'publish-bad-utf8|protocol error: malformed PUBLISH' \
	'puback-badflags|protocol error: malformed PUBACK' \
	'suback-badflags|protocol error: malformed SUBACK' \
	'suback-unknown|protocol error: SUBACK for packet id 30583, not requested' \
	'pubrec|protocol error: unexpected PUBREC' \
	'server-pingreq|protocol error: unexpected PINGREQ' \
	'publish-before-connack|protocol error: PUBLISH before CONNACK'
do
	run_case "${spec%%|*}" "${spec#*|}" -n 1
	closed_fast "$VERDICT"
	rt_ok "$VERDICT"
done

run_case connack-sp 'protocol error: Session Present with Clean Session' -c -n 1
closed_fast "$VERDICT"; rt_ok "$VERDICT"

# An unknown PUBACK is counted and ignored: the connection stays up.
run_case puback-unknown 'PUBACK for packet id 60000, which is not in flight: ignored' -n 1 -k 60
v=$VERDICT
echo "$v" | grep -q 'kept the connection open' || rt_fail "unknown PUBACK closed the connection: $v"
rt_ok "unknown PUBACK ignored: $v"

# A broker that never answers: PINGREQ, then closed after 1.5 x keepalive.
run_case silent 'nothing received for [0-9]+ s \(keepalive 2 s\): broker presumed dead' -n 1 -k 2
v=$VERDICT
echo "$v" | grep -qE 'closed after [345]\.' || rt_fail "silent broker: $v (bound 3 s + 1 s tick)"
rt_ok "silent broker: $v"

# Re-send after a drop: same ids, same order, DUP=1, with Session Present 0.
run_case resend 'connected \(.*5 to re-send\)' -n 5 -r 1000 -B 1
grep -q 'resend ok' "$T/fake$N.log" || rt_fail "re-send: $(cat "$T/fake$N.log")"
rt_ok "unacknowledged messages re-sent first, DUP=1, same ids and order: $(grep again "$T/fake$N.log")"
rt_pass
