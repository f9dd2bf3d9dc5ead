#!/bin/bash
# bench/profile.sh - where the relay and the agent spend their CPU time
# and their memory, on the revtun path of bench/run.sh:
#
#   rtbench -> ssh -L -> revtun-relay -> (TLS+SSH) revtun-agent -> serve
#
# CPU: `perf record -e cpu-clock -g` (a software clock: works where the
# hardware counters are not exposed, as in VMs; `perf stat -e instructions`
# says "not supported" there) on both daemons while rtbench runs bulk up,
# bulk down and ping; then `perf report` per daemon, self time by symbol
# and by shared object. Without perf: valgrind --tool=callgrind is the
# fallback (PROFILE_TOOL=callgrind), much slower, so smaller sizes.
# Memory: the daemons' mappings sorted by Private_Dirty (smaps), idle.
#
# Environment: PROF_BYTES [128M], PROF_PINGS [5000], PROFILE_TOOL
# [perf], PROF_CALLGRAPH [fp] (dwarf: callers inside libcrypto), BENCH_RESULTS, RTBENCH, RELAY, AGENT, BENCH_KEEP=1.
# Output: profile-STAMP.txt.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
RTBENCH=${RTBENCH:-$top_builddir/bench/rtbench}
RELAY=${RELAY:-$top_builddir/relay/revtun-relay}
AGENT=${AGENT:-$top_builddir/agent/revtun-agent}
OUT=${BENCH_RESULTS:-$here/results}
TOOL=${PROFILE_TOOL:-perf}
if [ "$TOOL" = callgrind ]; then
	BYTES=${PROF_BYTES:-16M} PINGS=${PROF_PINGS:-1000}
else
	BYTES=${PROF_BYTES:-128M} PINGS=${PROF_PINGS:-5000}
fi

. "$here/peers.sh"
die() { b_log "profile: error: $*"; exit 1; }
command -v "$TOOL" >/dev/null 2>&1 || [ "$TOOL" = callgrind ] ||
	die "$TOOL not installed"
[ "$TOOL" != callgrind ] || command -v valgrind >/dev/null 2>&1 ||
	die "valgrind not installed"

mkdir -p "$OUT" || die "$OUT: cannot create"
W=$(mktemp -d "${TMPDIR:-/tmp}/rtprof.XXXXXX") || exit 1
on_exit() {
	rc=$?
	b_cleanup
	[ -z "${BENCH_KEEP:-}" ] && rm -rf "$W"
	exit $rc
}
trap on_exit EXIT
trap 'exit 1' INT TERM HUP
stamp=$(date -u +%Y%m%dT%H%M%SZ)
RES=$OUT/profile-$stamp.txt

b_spawn serve "$RTBENCH" serve -w "$W/serve.port" 0
b_wait 10 test -s "$W/serve.port" || die "rtbench serve did not start"
SERVE_PORT=$(cat "$W/serve.port")
peers_keys || die "cannot make keys"
RT_PORT=$(b_free_port)
why=$(peers_revtun_conf) || die "$why"
VG=""
[ "$TOOL" = callgrind ] && VG="valgrind --tool=callgrind --callgrind-out-file=$W/cg.%p"
# shellcheck disable=SC2086
b_spawn relay $VG "$RELAY" -f "$W/relay.conf"
b_wait 30 b_listening "$RT_PORT" || die "relay not listening"
# shellcheck disable=SC2086
b_spawn agent $VG "$AGENT" -f "$W/agent.conf"
LP=$(b_free_port)
peers_ssh_local revtun-L "$LP" "$RT_PORT" "bench.gw-17:9000" bench "$PKI/alice_ed25519"
b_wait 60 b_probe "$LP" || die "no echo through revtun"
RPID=$(cat "$W/relay.pid") APID=$(cat "$W/agent.pid")

{
	echo "# profile $stamp ($TOOL): bulk up + down $BYTES, ping $PINGS"
	echo "# host $(uname -srm), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
	for who in relay:$RPID agent:$APID; do
		echo "## memory, $who idle: mappings by Private_Dirty (kB)"
		awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) }
		    $1 == "Private_Dirty:" { pd[name] += $2 }
		    END { for (n in pd) if (pd[n] > 0) printf "%8d  %s\n", pd[n], n }' \
		    "/proc/${who#*:}/smaps" | sort -rn | head -n 12
	done
} >"$RES"

# cpu PID: utime + stime in clock ticks
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# load: each test, with the share of one core the relay and the agent
# used meanwhile (a process at ~100 % is the bottleneck: both are single
# threaded)
load() {
	hz=$(getconf CLK_TCK)
	for t in "up 127.0.0.1:$LP $BYTES" "down 127.0.0.1:$LP $BYTES" \
	    "ping 127.0.0.1:$LP $PINGS"; do
		r0=$(cpu "$RPID") a0=$(cpu "$APID") t0=$(date +%s.%N)
		# shellcheck disable=SC2086
		"$RTBENCH" -t 300 $t | grep '^# ' >>"$RES"
		r1=$(cpu "$RPID") a1=$(cpu "$APID") t1=$(date +%s.%N)
		mib=$(( $(numfmt --from=iec "${BYTES^^}") / 1048576 ))
		case $t in ping*) mib=0 ;; esac
		awk -v r=$((r1 - r0)) -v a=$((a1 - a0)) -v hz="$hz" -v t0="$t0" \
		    -v t1="$t1" -v mib="$mib" 'BEGIN { w = t1 - t0;
		    printf "#   cpu over %.2f s: relay %.0f %%, agent %.0f %% of one core", w, 100 * r / hz / w, 100 * a / hz / w;
		    if (mib > 0) printf "; cpu ms per MiB: relay %.1f, agent %.1f", 1000 * r / hz / mib, 1000 * a / hz / mib;
		    printf "\n" }' >>"$RES"
	done
}

if [ "$TOOL" = perf ]; then
	perf record -q -e cpu-clock -F 999 --call-graph "${PROF_CALLGRAPH:-fp}" -o "$W/relay.data" -p "$RPID" \
	    >"$W/perf-relay.log" 2>&1 &
	PR=$!
	perf record -q -e cpu-clock -F 999 --call-graph "${PROF_CALLGRAPH:-fp}" -o "$W/agent.data" -p "$APID" \
	    >"$W/perf-agent.log" 2>&1 &
	PA=$!
	sleep 1
	load
	kill -INT "$PR" "$PA"
	wait "$PR" "$PA"
	for who in relay agent; do
		{
			echo "## $who: self time by shared object"
			perf report -i "$W/$who.data" --stdio --no-children \
			    --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 12
			echo "## $who: self time by symbol"
			perf report -i "$W/$who.data" --stdio --no-children \
			    --sort dso,sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 30
		} >>"$RES"
	done
else
	load
	kill "$RPID" "$APID"
	sleep 3
	for f in "$W"/cg.*; do
		echo "## callgrind $f" >>"$RES"
		callgrind_annotate "$f" 2>/dev/null | head -n 40 >>"$RES"
	done
fi
cat "$RES"
