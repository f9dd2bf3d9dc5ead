#!/bin/bash
# fault_slowloris.sh - slowloris against the relay's TLS port from many
# source addresses (FAULTS.md T11): 40 sources x 7 connections (each
# under max_pending_per_source = 8, together above max_pending = 256)
# that send one byte of a TLS record and then nothing, re-opened whenever
# the relay closes them, for at most SL_SECS (12) seconds. Meanwhile a
# real agent from another address must get its session up within
# SL_BOUND_MS (3000 ms) - FAULTS.md T11: "a real agent still connects
# within X ms". Afterwards the relay is alive and serves the agent.
#
# When the pending table is full the relay closes the oldest connection
# that has not finished its handshake (relay/listener.c
# pending_evict_oldest), so silent peers are pushed out by newer
# connections instead of locking agents out.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
. "$top_srcdir/tests/integration/netns.sh"
nn_need
rt_pki
. "$top_srcdir/tests/integration/agent_lib.sh"
. "$top_srcdir/tests/integration/relay_common.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
[ -x "$RT_AGENT" ] || rt_fail "$RT_AGENT not built"
SL_SECS=${SL_SECS:-12}
SL_BOUND_MS=${SL_BOUND_MS:-3000}
NSRC=40 PER=7
nn_up

# 40 extra source addresses on the agent side, routed back by the relay side
for i in $(seq 1 $NSRC); do
	ip -n "$NN_A" addr add "10.201.1.$i/32" dev "$NN_DEV" || rt_fail "addr 10.201.1.$i"
done
ip -n "$NN_R" route add 10.201.1.0/24 dev "$NN_DEV" || rt_fail "route to the extra sources"

RELAY_PORT=$RPORT
ECHO_PORT=$(rt_free_port)
RELAY_LISTEN_EXTRA=", \"$NN_R_IP:$RPORT\"" relay_write_conf "$T/relay.conf"
grep -q 'handshake_timeout = "10s"' "$T/relay.conf" || rt_fail "expected the 10 s handshake timeout"
rt_spawn relay ip netns exec "$NN_R" "$RT_RELAY" -f "$T/relay.conf"
rt_wait 15 "relay listening" nn_listening r "$RPORT" || rt_fail "relay did not start"
rt_spawn echo ip netns exec "$NN_A" "$AG_PY" "$AG_TOOLS/agent_peer.py" echo "$ECHO_PORT"
rt_wait 10 "echo target" nn_listening a "$ECHO_PORT" || rt_fail "echo target did not start"
ag_conf "$T/agent.conf"
sed -i "s|^relays = .*|relays = {\"$NN_R_IP:$RPORT\"}|
	s|^\tkey = .*$|&\n\tserver_name = \"localhost\"|
	s|log_level = \"debug\"|log_level = \"info\"|
	s|^connect_timeout = .*|connect_timeout = \"2s\"|" "$T/agent.conf"

cat >"$T/loris.py" <<'PY'
# loris.py RELAY_IP PORT NSRC PER SECS READY : NSRC x PER connections,
# source 10.201.1.1.., each sends one byte (0x16, the start of a TLS
# record) once connected and then stays silent; one the relay closes is
# opened again 50 ms later. Stops after SECS.
import select, socket, sys, time
ip, port, nsrc, per, secs, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
n = nsrc * per
src = ["10.201.1.%d" % (1 + i // per) for i in range(n)]
sock, sent, retry = [None] * n, [False] * n, [0.0] * n
opened = closed = 0
end = time.time() + secs
said = False
while time.time() < end:
    now = time.time()
    for k in range(n):
        if sock[k] is None and now >= retry[k]:
            s = socket.socket(); s.setblocking(False)
            try:
                s.bind((src[k], 0)); s.connect_ex((ip, port))
                sock[k], sent[k] = s, False; opened += 1
            except OSError:
                s.close(); retry[k] = now + 0.05
    idx = {sock[k].fileno(): k for k in range(n) if sock[k] is not None}
    rl = [sock[k] for k in idx.values()]
    wl = [sock[k] for k in idx.values() if not sent[k]]
    r, w, _ = select.select(rl, wl, [], 0.05)
    for s in w:
        k = idx[s.fileno()]
        try:
            s.send(b"\x16"); sent[k] = True
        except OSError:
            pass
    for s in r:
        k = idx[s.fileno()]
        try:
            d = s.recv(1)
        except OSError:
            d = b""
        if not d:
            closed += 1; s.close(); sock[k] = None; retry[k] = time.time() + 0.05
    if not said and all(sent):
        open(ready, "w").write("%d\n" % opened); said = True
print("opened %d, closed by the relay %d" % (opened, closed))
PY
rt_spawn loris ip netns exec "$NN_A" "$AG_PY" "$T/loris.py" "$NN_R_IP" "$RPORT" \
	"$NSRC" "$PER" "$SL_SECS" "$T/loris.ready"
rt_wait 10 "slowloris connections" test -s "$T/loris.ready" || rt_fail "slowloris did not start"
rt_wait_log 10 "$T/relay.log" "max_pending reached" ||
	rt_log "note: relay did not log 'max_pending reached'"
sleep 1
t0=$(python3 -c 'import time; print(int(time.time() * 1000))')
rt_spawn agent ip netns exec "$NN_A" "$RT_AGENT" -f "$T/agent.conf"
known_bug=""
if rt_wait $(( (SL_BOUND_MS + 999) / 1000 )) "agent up during the slowloris" ag_count_up 1; then
	took=$(( $(python3 -c 'import time; print(int(time.time() * 1000))') - t0 ))
	rt_ok "agent up after $took ms while $((NSRC * PER)) slowloris connections from $NSRC sources were held"
else
	# Regression: relay/listener.c listener_accept() once refused all /
	# eviction once max_pending is full (see the header). Recorded here,
	# reported at the end, after the recovery checks below have run.
	known_bug="a real agent could not connect within $SL_BOUND_MS ms during a slowloris from $NSRC sources x $PER (max_pending full: every new connection refused; agent: $(grep -c 'TLS handshake: unexpected EOF' "$T/agent.log") attempts ended by the relay)"
	rt_log "$known_bug"
fi
rt_wait $((SL_SECS + 15)) "slowloris over" rt_dead "$(rt_pid loris)"
rt_log "slowloris: $(cat "$T/loris.log")"
rt_alive "$(rt_pid relay)" || rt_fail "relay died under the slowloris"
# pending slowloris handshakes expire after handshake_timeout (10 s)
rt_wait 20 "agent up after the slowloris" ag_count_up 1 || rt_fail "agent never came up, even after the slowloris"
rt_ok "after the slowloris: relay alive, agent up"
[ -z "$known_bug" ] || rt_fail "$known_bug"
rt_pass
