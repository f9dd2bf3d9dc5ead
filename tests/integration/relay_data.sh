#!/bin/bash
# relay_data.sh - the data path and the agent's life cycle: 20 concurrent
# channels through one agent and one ssh -L session, 512 KiB each way per
# channel with sha256 compared, while both SSH legs re-key every 256 KiB;
# an interactive channel keeps answering next to two bulk channels; a second connection with the same agent id
# replaces the first at once; keepalive declares a frozen agent dead within
# interval x count (+ the 0.5 s tick); TERM waits for open channels up to
# shutdown_timeout, then exits 0.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"

RELAY_KA=1s relay_write_conf "$T/relay.conf"
relay_echo_start
relay_start
# both SSH legs re-key every 256 KiB: no byte may be lost at a re-key
relay_agent agent gw-17 -o RekeyLimit=256K -R "echo:7:127.0.0.1:$ECHOPORT"
rt_wait_log 20 "$T/relay.log" "agent gw-17: service echo:7 registered" ||
	rt_fail "agent did not register"

LP=$(rt_free_port)
rt_spawn opL ssh -N $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes \
	-o RekeyLimit=256K -p "$RPORT" -L "127.0.0.1:$LP:echo.gw-17:7" alice@127.0.0.1
rt_wait 15 "ssh -L port" rt_listening "$LP" || rt_fail "ssh -L not listening"

python3 - "$LP" <<'PY' >"$T/many.out" 2>&1 || rt_fail "concurrent channels: $(tail -5 "$T/many.out")"
import hashlib, os, socket, sys, threading
port, N, SIZE = int(sys.argv[1]), 20, 512 * 1024
res = {}
def one(i):
    data = os.urandom(SIZE)
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    got = []
    def rd():
        while True:
            d = s.recv(65536)
            if not d:
                break
            got.append(d)
    t = threading.Thread(target=rd); t.start()
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    t.join(90)
    back = b"".join(got)
    res[i] = hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
    if not res[i]:
        print("channel", i, "got", len(back), "of", SIZE)
ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]
for t in ts: t.start()
for t in ts: t.join(120)
ok = sum(1 for v in res.values() if v)
print(ok, "of", N, "channels verified")
sys.exit(0 if ok == N else 1)
PY
rt_ok "$(cat "$T/many.out")"
n=$(python3 -c 'import json,sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l).get("event") == "channel_close"
          and json.loads(l)["bytes_to_agent"] == 524288 and json.loads(l)["bytes_from_agent"] == 524288))' "$T/audit.log")
[ "$n" = 20 ] || rt_fail "audit: $n channel_close lines with 512 KiB each way, want 20"
rt_ok "20 channel_close audit lines with the byte counts"

# fairness: an interactive channel keeps answering next to two bulk ones
python3 - "$LP" <<'PY' >"$T/fair.out" 2>&1 || rt_fail "starved: $(cat "$T/fair.out")"
import os, socket, sys, threading, time
port = int(sys.argv[1])
stop = False
def bulk():
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    blk = os.urandom(65536)
    threading.Thread(target=lambda: [None for _ in iter(lambda: s.recv(262144), b"")],
                     daemon=True).start()
    while not stop:
        s.sendall(blk)
    s.close()
ts = [threading.Thread(target=bulk, daemon=True) for _ in range(2)]
for t in ts: t.start()
time.sleep(0.5)
p = socket.create_connection(("127.0.0.1", port), timeout=10)
p.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtts = []
end = time.time() + 4
while time.time() < end:
    t0 = time.time(); p.sendall(b"x"); p.recv(1)
    rtts.append((time.time() - t0) * 1000)
    time.sleep(0.02)
stop = True
rtts.sort()
print("%d round trips next to 2 bulk channels, p50 %.0f ms, max %.0f ms" %
      (len(rtts), rtts[len(rtts) // 2], rtts[-1]))
sys.exit(0 if len(rtts) >= 5 and rtts[-1] < 3000 else 1)
PY
rt_ok "$(cat "$T/fair.out")"

# the same id again: the old connection goes at once
relay_agent agent2 gw-17 -R "echo:7:127.0.0.1:$ECHOPORT"
rt_wait_log 20 "$T/relay.log" "agent gw-17: up .*replacing the previous connection" ||
	rt_fail "second connection did not replace the first"
rt_wait 10 "first agent to be dropped" rt_dead "$(rt_pid agent)" ||
	rt_fail "first agent connection still up"
grep -q "agent gw-17: down (replaced by a new connection" "$T/relay.log" ||
	rt_fail "replacement not logged"
rt_wait_log 10 "$T/relay.log" "agent gw-17: service echo:7 registered.*" || true
rt_wait 10 "echo via the new agent" sh -c \
	"echo again | ssh $SSHOPTS -i $PKI/alice_ed25519 -o IdentitiesOnly=yes -p $RPORT -W echo.gw-17:7 alice@127.0.0.1 | grep -qx again" ||
	rt_fail "no channel through the new connection"
rt_ok "a new connection with the same id replaces the old one"

# keepalive: an idle but healthy agent answers and stays (5 s = 5 intervals)
end=$(( $(date +%s) + 5 ))
while [ "$(date +%s)" -lt "$end" ]; do
	grep -q "down (no data" "$T/relay.log" && rt_fail "healthy idle agent declared dead"
	sleep 0.2
done
rt_ok "healthy idle agent kept through 5 keepalive intervals"

# keepalive: freeze the agent (its TLS link stays open but silent)
ssh_pid=$(rt_pid agent2)
t0=$(date +%s)
kill -STOP "$ssh_pid"
rt_wait_log 15 "$T/relay.log" "agent gw-17: down \(no data for [0-9]+ s \(keepalive\)\)" ||
	{ kill -CONT "$ssh_pid"; rt_fail "frozen agent not declared dead"; }
dt=$(( $(date +%s) - t0 ))
kill -CONT "$ssh_pid"
[ "$dt" -le 6 ] || rt_fail "dead agent found after ${dt}s, bound is 1s x 3 + tick"
rt_ok "frozen agent declared dead after ~${dt}s (1s x 3)"

# TERM with a channel open: the relay keeps it until shutdown_timeout (5 s)
kill -CONT "$ssh_pid" 2>/dev/null
relay_agent agent3 gw-17 -R "echo:7:127.0.0.1:$ECHOPORT"
rt_wait 20 "agent back" sh -c "grep -c 'service echo:7 registered' '$T/relay.log' | grep -qx 3" ||
	rt_fail "agent did not come back"
rt_spawn holder python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"x"); s.recv(1); print("holding", flush=True); time.sleep(60)' "$LP"
rt_wait 10 "held channel" grep -q holding "$T/holder.log" || rt_fail "no held channel"
t0=$(date +%s)
kill -TERM "$(rt_pid relay)"
rt_wait_log 5 "$T/relay.log" "stopping; waiting up to 5000 ms for 1 open channels" ||
	rt_fail "TERM: open channel not waited for"
rt_alive "$(rt_pid relay)" || rt_fail "relay did not wait for the open channel"
rt_wait 10 "relay to exit" rt_dead "$(rt_pid relay)" ||
	rt_fail "relay did not stop within shutdown_timeout"
dt=$(( $(date +%s) - t0 ))
wait "$(rt_pid relay)"; st=$?
[ "$st" = 0 ] || rt_fail "relay exit status $st"
[ "$dt" -ge 4 ] && [ "$dt" -le 10 ] || rt_fail "stopped after ${dt}s, shutdown_timeout is 5s"
relay_audit_has channel_close 'd["reason"] == "relay stopping"' ||
	rt_fail "held channel not audited as closed by the stop"
rt_ok "TERM waits for open channels up to shutdown_timeout (${dt}s), exit 0"
rt_pass
