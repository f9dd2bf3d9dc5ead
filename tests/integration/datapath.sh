#!/bin/bash
# datapath.sh - one-way bulk transfers through the whole path: stock ssh -L
# -> revtun-relay -> revtun-agent -> a local service, with nothing flowing
# back to keep packets arriving (echo tests hide stalls that way):
#   1. upload: 32 MiB operator -> service, every byte checked by the
#      service (rtbench serve), within DP_BOUND seconds;
#   2. download: 32 MiB service -> operator, every byte checked by the
#      client, within DP_BOUND seconds;
#   3. tails: 10 uploads and 10 downloads of 1 MiB, one after the other,
#      within DP_TAIL_BOUND seconds in all: the last bytes of a transfer
#      must not wait for an unrelated event (a keepalive tick resumed
#      them once, 1-8 s per transfer);
#   4. backpressure: 64 MiB pushed into a target that reads at about
#      4 MiB/s: the data arrives intact (sha256) and the VmRSS of the
#      agent and of the relay stays under 64 MiB all along (buffers and
#      SSH windows are bounded; nothing queues the rest in memory).
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_setup
. "$top_srcdir/tests/integration/relay_common.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
RTBENCH="$top_builddir/bench/rtbench"
[ -x "$RTBENCH" ] || rt_fail "$RTBENCH not built"
# rtbench is only the load tool: its own leaks at exit (sanitizer builds)
# are not what this test checks
RTB_ASAN="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
rtb() { env ASAN_OPTIONS="$RTB_ASAN" "$RTBENCH" "$@"; }
RELAY_PORT=$RPORT
DP_BOUND=${DP_BOUND:-60}
DP_TAIL_BOUND=${DP_TAIL_BOUND:-20}
SIZE=$((32 * 1024 * 1024))
SLOW_SIZE=$((64 * 1024 * 1024))
RSS_LIMIT_KB=$((64 * 1024))
# AddressSanitizer's shadow memory and quarantine make VmRSS say nothing
# about our buffers: there the peak is only reported.
if ldd "$RT_AGENT" "$RT_RELAY" 2>/dev/null | grep -q libasan; then
	RSS_LIMIT_KB=$((1024 * 1024 * 1024))
	rt_log "sanitizer build: VmRSS reported, not checked"
fi

rt_spawn serve env ASAN_OPTIONS="$RTB_ASAN" "$RTBENCH" serve -b 127.0.0.1 -w "$T/serve.port" 0
rt_wait 10 "rtbench serve" test -s "$T/serve.port" ||
	rt_fail "rtbench serve did not start"
SERVE_PORT=$(cat "$T/serve.port")

# The slow target: reads 64 KiB every 16 ms (about 4 MiB/s), hashes what
# it got and writes "BYTES SHA256" to a file at EOF.
SLOW_PORT=$(rt_free_port)
cat >"$T/slow.py" <<'PY'
import hashlib, os, socket, sys, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(4)
s, _ = ls.accept()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
h, n = hashlib.sha256(), 0
while True:
    d = s.recv(65536)
    if not d:
        break
    h.update(d)
    n += len(d)
    time.sleep(0.016)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("%d %s\n" % (n, h.hexdigest()))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
PY
rt_spawn slow python3 "$T/slow.py" "$SLOW_PORT" "$T/slow.result"
rt_wait 10 "slow target" rt_listening "$SLOW_PORT" ||
	rt_fail "slow target did not start"

RELAY_ALICE_ALLOW='"gw-17:bench", "gw-17:slow"' relay_write_conf "$T/relay.conf"
relay_start
ag_conf "$T/agent.conf" "service bench {
	port = 9000
	target = \"127.0.0.1:$SERVE_PORT\"
}
service slow {
	port = 9001
	target = \"127.0.0.1:$SLOW_PORT\"
}"
sed -i 's/log_level = "debug"/log_level = "info"/' "$T/agent.conf"
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up with the real relay"
rt_wait_log 10 "$T/relay.log" "gw-17: service slow:9001 registered" ||
	rt_fail "relay did not register gw-17's services"

LPORT=$(rt_free_port)
SPORT=$(rt_free_port)
rt_spawn fwd ssh -N $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes \
	-o ExitOnForwardFailure=yes -p "$RPORT" \
	-L "127.0.0.1:$LPORT:bench.gw-17:9000" \
	-L "127.0.0.1:$SPORT:slow.gw-17:9001" alice@127.0.0.1
rt_wait 15 "ssh -L listening" rt_listening "$SPORT" ||
	rt_fail "ssh -L did not start"
rtb -t 20 probe "127.0.0.1:$LPORT" || rt_fail "no echo through the tunnel"

# dp_run NAME MODE : rtbench MODE of SIZE bytes, checked, within DP_BOUND.
dp_run() {
	t0=$(date +%s.%N)
	rtb -t "$DP_BOUND" "$2" "127.0.0.1:$LPORT" "$SIZE" \
		>"$T/$1.out" 2>&1 ||
		rt_fail "$1: 32 MiB not done intact within ${DP_BOUND}s: $(cat "$T/$1.out")"
	secs=$(python3 -c "import time; print('%.2f' % (time.time() - $t0))")
	rt_ok "$1: 32 MiB verified in $secs s ($(grep -o 'mibps=[0-9.]*' "$T/$1.out"))"
}
dp_run upload up
dp_run download down

# dp_tails MODE : ten 1 MiB transfers back to back within DP_TAIL_BOUND.
dp_tails() {
	t0=$(date +%s.%N)
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rtb -t "$DP_TAIL_BOUND" -s "$i" "$1" "127.0.0.1:$LPORT" \
			1048576 >"$T/tail-$1.out" 2>&1 ||
			rt_fail "$1 #$i of 1 MiB failed: $(cat "$T/tail-$1.out")"
	done
	secs=$(python3 -c "import time; print('%.2f' % (time.time() - $t0))")
	python3 -c "import sys; sys.exit(not $secs < $DP_TAIL_BOUND)" ||
		rt_fail "10 x 1 MiB $1 took $secs s (bound ${DP_TAIL_BOUND}s): stalled tails"
	rt_ok "10 x 1 MiB $1 verified in $secs s"
}
dp_tails up
dp_tails down

# Backpressure: memory stays bounded behind a slow target.
ap=$(rt_pid agent)
rp=$(rt_pid relay)
cat >"$T/push.py" <<'PY'
import hashlib, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=120)
n, blk, h = int(sys.argv[2]), bytearray(65536), hashlib.sha256()
for i in range(n // len(blk)):
    blk[0:8] = i.to_bytes(8, "big")
    s.sendall(blk)
    h.update(blk)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print("%d %s" % (n, h.hexdigest()))
PY
rt_spawn push python3 "$T/push.py" "$SPORT" "$SLOW_SIZE"
maxrss=0 maxrss_r=0
end=$(( $(date +%s) + 90 ))
while [ ! -s "$T/slow.result" ]; do
	[ "$(date +%s)" -ge "$end" ] && rt_fail "slow target: 64 MiB not done in 90 s"
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$ap/status")
	[ "${rss:-0}" -gt "$maxrss" ] && maxrss=$rss
	[ "$maxrss" -gt "$RSS_LIMIT_KB" ] &&
		rt_fail "agent VmRSS $maxrss KiB behind a slow target (limit $RSS_LIMIT_KB KiB)"
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$rp/status")
	[ "${rss:-0}" -gt "$maxrss_r" ] && maxrss_r=$rss
	[ "$maxrss_r" -gt "$RSS_LIMIT_KB" ] &&
		rt_fail "relay VmRSS $maxrss_r KiB behind a slow target (limit $RSS_LIMIT_KB KiB)"
	sleep 0.2
done
rt_wait 20 "pusher to finish" rt_dead "$(rt_pid push)" || rt_fail "pusher hung"
[ "$(cat "$T/slow.result")" = "$(cat "$T/push.log")" ] ||
	rt_fail "slow target got '$(cat "$T/slow.result")', sent '$(cat "$T/push.log")'"
rt_ok "slow target: 64 MiB intact, VmRSS peak agent $maxrss KiB, relay $maxrss_r KiB (limit $RSS_LIMIT_KB)"

ag_stop
rt_pass
