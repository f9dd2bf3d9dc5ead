#!/bin/bash
# bench/mem.sh - agent and relay memory, idle and with open channels:
# Private_Dirty, PSS and RSS from /proc/PID/smaps_rollup.
#
#   rtbench serve <- revtun-agent <- (TLS+SSH) revtun-relay <- ssh -L <- holder
#
# The holder (python3) opens C channels through the operator's ssh -L
# (default 50), fetches 64 bytes on each (rtbench op 'G') and keeps them all
# open while both daemons are measured; then it closes them. Each
# repetition starts a fresh relay, agent and ssh -L and measures: idle,
# C channels open, C channels open after BYTES went down and up each of
# them in turn (buffers in use), and idle again after they closed (what
# the heap kept: glibc does not give freed memory back by itself).
# Reported: medians over the repetitions; relay and agent per channel =
# (open - idle) / C. The agent target (issue 8) is <= 2 MiB Private_Dirty
# idle.
#
# MEM_TRIM=1 (needs gdb): after the channels closed, call malloc_trim(0)
# inside both daemons and measure again ("trim"): what a malloc_trim in
# the code would give back.
# Environment: MEM_CHANNELS [50], BENCH_REPS [3], MEM_BYTES [1M]
# {BENCH_QUICK: 256K}, BENCH_RESULTS, RTBENCH, RELAY, AGENT, BENCH_KEEP=1.
# Output: mem-STAMP.txt (result lines). Exit 1 if a step failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
RTBENCH=${RTBENCH:-$top_builddir/bench/rtbench}
RELAY=${RELAY:-$top_builddir/relay/revtun-relay}
AGENT=${AGENT:-$top_builddir/agent/revtun-agent}
OUT=${BENCH_RESULTS:-$here/results}
C=${MEM_CHANNELS:-50}
REPS=${BENCH_REPS:-3}
if [ -n "${BENCH_QUICK:-}" ]; then MB=${MEM_BYTES:-256K}; else MB=${MEM_BYTES:-1M}; fi

. "$here/peers.sh"
die() { b_log "mem: error: $*"; exit 1; }
[ -x "$RTBENCH" ] && [ -x "$RELAY" ] && [ -x "$AGENT" ] ||
	die "rtbench, relay or agent not built"
for c in ssh ssh-keygen python3 openssl; do
	command -v "$c" >/dev/null 2>&1 || die "$c not installed"
done

mkdir -p "$OUT" || die "$OUT: cannot create"
W=$(mktemp -d "${TMPDIR:-/tmp}/rtmem.XXXXXX") || exit 1
on_exit() {
	rc=$?
	b_cleanup
	[ -z "${BENCH_KEEP:-}" ] && rm -rf "$W"
	exit $rc
}
trap on_exit EXIT
trap 'exit 1' INT TERM HUP

stamp=$(date -u +%Y%m%dT%H%M%SZ)
RES=$OUT/mem-$stamp.txt
: >"$RES"
say() { echo "$*" | tee -a "$RES"; }

b_spawn serve "$RTBENCH" serve -w "$W/serve.port" 0
b_wait 10 test -s "$W/serve.port" || die "rtbench serve did not start"
SERVE_PORT=$(cat "$W/serve.port")
peers_keys || die "cannot make keys"
RT_PORT=$(b_free_port)
why=$(peers_revtun_conf) || die "$why"
# up: a fresh relay, agent and operator ssh -L for one repetition
up() {
	b_spawn relay "$RELAY" -f "$W/relay.conf"
	b_wait 10 b_listening "$RT_PORT" || die "relay not listening"
	b_spawn agent "$AGENT" -f "$W/agent.conf"
	LP=$(b_free_port)
	peers_ssh_local revtun-L "$LP" "$RT_PORT" "bench.gw-17:9000" bench "$PKI/alice_ed25519"
	b_wait 30 b_probe "$LP" || die "no echo through revtun: $(tail -n 2 "$W/agent.log")"
	RPID=$(cat "$W/relay.pid") APID=$(cat "$W/agent.pid") LPID=$(cat "$W/revtun-L.pid")
}
# down: end this repetition's three processes, by PID, bounded
down() {
	for p in $LPID $APID $RPID; do
		kill "$p" 2>/dev/null
		_n=50
		while b_alive "$p" && [ $_n -gt 0 ]; do sleep 0.1; _n=$((_n - 1)); done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}

# holder: C channels, 64 bytes each, then BYTES down and up on each (the
# ops 'G' / 'S' of rtbench serve; only lengths are checked), then hold until
# $W/release exists; writes $W/held (or $W/bulked) when there.
cat >"$W/holder.py" <<'EOF'
import os, socket, struct, sys, time
port, c, nbytes, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def hdr(op, count): return b"RTB1" + op + b"\0\0\0" + struct.pack(">QQ", count, 1)
def readn(s, n):
    b = bytearray()
    while len(b) < n:
        x = s.recv(n - len(b))
        if not x: raise SystemExit("EOF")
        b += x
    return b
socks = []
for i in range(c):   # op 'G' 64: 64 bytes back, then the channel idles
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(hdr(b"G", 64)); readn(s, 64)
    socks.append(s)
open(w + "/held", "w").close()
while not os.path.exists(w + "/bulk"):
    time.sleep(0.05)
for s in socks:      # the same channels: BYTES down, BYTES up, in turn
    s.sendall(hdr(b"G", nbytes)); readn(s, nbytes)
    s.sendall(hdr(b"S", nbytes) + b"\0" * nbytes); readn(s, 32)
open(w + "/bulked", "w").close()
while not os.path.exists(w + "/release"):
    time.sleep(0.05)
EOF
bytes=$(numfmt --from=iec "${MB^^}") || die "MEM_BYTES=$MB: not a size"

# snap TAG: one line of both daemons' numbers (kB)
snap() {
	for who in relay:$RPID agent:$APID; do
		p=${who#*:}
		awk -v t="$1" -v w="${who%%:*}" '
		    $1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 }
		    $1 == "Private_Dirty:" { d = $2 }
		    END { printf "%s %s %s %s %s\n", t, w, d, p, r }' "/proc/$p/smaps_rollup"
	done >>"$W/snaps"
}
settle() { sleep 2; }

say "# mem run $stamp: $C channels, $MB per channel bulk, $REPS reps; host $(uname -srm), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$W/snaps"
rep=1
while [ "$rep" -le "$REPS" ]; do
	rm -f "$W/held" "$W/bulk" "$W/bulked" "$W/release"
	up
	settle
	snap "idle$rep"
	python3 "$W/holder.py" "$LP" "$C" "$bytes" "$W" >"$W/holder.log" 2>&1 &
	hp=$!
	b_wait 60 test -e "$W/held" || die "holder could not open $C channels: $(tail -n 2 "$W/holder.log")"
	settle
	snap "open$rep"
	touch "$W/bulk"
	b_wait 120 test -e "$W/bulked" || die "holder bulk failed: $(tail -n 2 "$W/holder.log")"
	settle
	snap "bulk$rep"
	touch "$W/release"
	wait "$hp" || die "holder failed: $(tail -n 2 "$W/holder.log")"
	settle
	snap "after$rep"
	if [ -n "${MEM_TRIM:-}" ]; then
		# what malloc_trim(0) in the daemons would give back (gdb)
		for p in $RPID $APID; do
			timeout 60 gdb -q -batch -p "$p" -ex 'call (int) malloc_trim(0)' \
			    >"$W/gdb.log" 2>&1 || b_log "mem: gdb on $p failed"
		done
		settle
		snap "trim$rep"
	fi
	down
	rep=$((rep + 1))
done

# med WHO TAGPREFIX FIELD(3=private_dirty 4=pss 5=rss): median over reps
med() {
	awk -v w="$1" -v t="$2" -v f="$3" '$2 == w && $1 ~ "^" t "[0-9]+$" { print $f }' "$W/snaps" |
	sort -n | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "-") }'
}
cat "$W/snaps" >>"$RES"
for who in agent relay; do
	for st in idle open bulk after ${MEM_TRIM:+trim}; do
		say "result test=${who}_$st channels=$(case $st in idle|after|trim) echo 0;; *) echo "$C";; esac) private_dirty_kib=$(med $who $st 3) pss_kib=$(med $who $st 4) rss_kib=$(med $who $st 5)"
	done
	for st in open bulk; do
		say "result test=${who}_per_channel_$st private_dirty_kib=$(echo "scale=1; ($(med $who $st 3) - $(med $who idle 3)) / $C" | bc)"
	done
done
say "result test=agent_target idle_private_dirty_kib=$(med agent idle 3) after_traffic_private_dirty_kib=$(med agent after 3) target_kib=2048"
