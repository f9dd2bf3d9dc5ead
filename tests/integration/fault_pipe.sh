#!/bin/bash
# fault_pipe.sh - FAULTS.md P4 (SIGPIPE / EPIPE) with a real relay, a real
# agent and stock ssh: peers vanish while revtun is writing to them.
#   1. the agent's local service closes (FIN, then RST) while the operator
#      pushes 8 MiB at it: the agent writes into a closed socket;
#   2. the operator's ssh is killed -9 while a service streams at it: the
#      relay writes into a dead socket;
#   3. the agent -> relay TCP connection is reset under load is covered by
#      fault_net.sh and agent_reconnect.sh, not repeated here.
# After each: neither daemon died (SIGPIPE is ignored; EPIPE closes that
# channel only), a channel held open across all of it still answers, and a
# fresh session works.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
rt_setup
rt_need ssh-keygen openssl
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"

# Local services behind the agent: "closer" reads 1 KiB then closes (FIN on
# even connections, RST on odd ones); "firehose" writes without end.
cat >"$T/svc.py" <<'PY'
import socket, struct, sys, threading, time
kind, portfile = sys.argv[1], sys.argv[2]
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(16)
open(portfile + ".tmp", "w").write(str(ls.getsockname()[1]))
import os; os.rename(portfile + ".tmp", portfile)
n = 0
def serve(c, n):
    c.settimeout(30)
    try:
        if kind == "closer":
            got = 0
            while got < 1024:
                b = c.recv(1024 - got)
                if not b: break
                got += len(b)
            if n % 2:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            block = b"x" * 65536
            end = time.time() + 60
            while time.time() < end:
                c.sendall(block)
    except OSError:
        pass
    c.close()
end = time.time() + 300
while time.time() < end:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
    n += 1
PY
rt_spawn closer python3 "$T/svc.py" closer "$T/closer.port"
rt_spawn firehose python3 "$T/svc.py" firehose "$T/firehose.port"
rt_wait 10 "services" test -s "$T/closer.port" -a -s "$T/firehose.port" ||
	rt_fail "local services did not start"

RELAY_ALICE_ALLOW='"gw-17:echo", "gw-17:closer", "gw-17:firehose"' \
	relay_write_conf "$T/relay.conf"
relay_echo_start
relay_start
RELAY_PORT=$RPORT ECHO_PORT=$ECHOPORT ag_conf "$T/agent.conf" "service closer {
	port = 8
	target = \"127.0.0.1:$(cat "$T/closer.port")\"
}
service firehose {
	port = 9
	target = \"127.0.0.1:$(cat "$T/firehose.port")\"
}"
sed -i 's/log_level = "debug"/log_level = "info"/' "$T/agent.conf"
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"

# A channel held open through everything below.
LP=$(rt_free_port)
rt_spawn opL ssh -N $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" -L "127.0.0.1:$LP:gw-17.edge:7" alice@127.0.0.1
rt_wait 15 "ssh -L" rt_listening "$LP" || rt_fail "ssh -L not listening"
rt_spawn hold "$AG_PY" "$AG_TOOLS/agent_peer.py" hold "$LP" "$T/hold"
rt_wait 15 "held channel up" grep -q up "$T/hold" || rt_fail "held channel did not open"
ping_held() {
	echo ping >"$T/hold"
	rt_wait 10 "held channel answer" grep -qE 'pong|dead' "$T/hold" &&
		grep -q pong "$T/hold"
}
both_alive() {
	rt_alive "$(rt_pid relay)" || rt_fail "$1: relay died"
	rt_alive "$(rt_pid agent)" || rt_fail "$1: agent died"
}
fresh_echo() {
	head -c 100000 /dev/urandom >"$T/in"
	relay_op alice_ed25519 alice -W gw-17.edge:7 <"$T/in" >"$T/out" &&
		cmp -s "$T/in" "$T/out"
}

# 1. The service closes while we push 8 MiB at it, six times (FIN, RST).
for i in 1 2 3 4 5 6; do
	head -c 8388608 /dev/zero |
		timeout 30 ssh $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes \
		-p "$RPORT" -W gw-17.edge:8 alice@127.0.0.1 >/dev/null 2>>"$T/closer.ssh"
	rc=$?
	[ "$rc" != 124 ] || rt_fail "closer #$i: the operator's channel hung after the service closed"
done
both_alive "service closed while written"
ping_held || rt_fail "service closed while written: held channel broken"
fresh_echo || rt_fail "service closed while written: fresh session broken"
rt_ok "service closed 6x under an 8 MiB push (FIN and RST): daemons up, held channel and a fresh session fine"

# 2. The operator dies while the relay writes a stream to it, six times.
for i in 1 2 3 4 5 6; do
	ssh $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes -p "$RPORT" \
		-W gw-17.edge:9 alice@127.0.0.1 </dev/null >"$T/fh.$i" 2>/dev/null &
	sp=$!
	rt_wait 15 "stream flowing" eval '[ "$(stat -c %s "$T/fh.$i" 2>/dev/null || echo 0)" -gt 1048576 ]' ||
		{ kill -9 "$sp"; rt_fail "firehose #$i: no data"; }
	kill -9 "$sp"
	wait "$sp" 2>/dev/null
done
fh_closed() {
	[ "$(grep '"event":"channel_close"' "$T/audit.log" | grep -c '"service":"firehose"')" -ge 6 ]
}
rt_wait 15 "relay closed the dead operators' channels" fh_closed ||
	rt_fail "channels of killed operators not all closed (audit)"
both_alive "operator killed mid-stream"
ping_held || rt_fail "operator killed mid-stream: held channel broken"
fresh_echo || rt_fail "operator killed mid-stream: fresh session broken"
rt_ok "operator killed 6x while the relay streamed to it: channels closed, daemons up, held channel fine"

ag_stop
san_ok() { ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/relay.log"; }
san_ok || rt_fail "sanitizer report in relay.log"
rt_pass
