#!/bin/bash
# bench/cpucost.sh - CPU time per MiB moved, per tunnel path: the sum of
# utime + stime (/proc/PID/stat) over every process of the tunnel (for
# ssh: sshd and its per-connection children, ssh -R, ssh -L; stunnel:
# the same plus both stunnels; revtun: relay, agent, ssh -L), rtbench
# and its service excluded. On a shared 2-core machine throughput is
# bounded by this cost, and unlike MiB/s it barely depends on the load.
#
# Environment: CPU_BYTES [256M] {BENCH_QUICK: 64M}, BENCH_REPS [3] (median), BENCH_RESULTS,
# RTBENCH, RELAY, AGENT. Output: cpucost-STAMP.txt.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
RTBENCH=${RTBENCH:-$top_builddir/bench/rtbench}
RELAY=${RELAY:-$top_builddir/relay/revtun-relay}
AGENT=${AGENT:-$top_builddir/agent/revtun-agent}
OUT=${BENCH_RESULTS:-$here/results}
if [ -n "${BENCH_QUICK:-}" ]; then BYTES=${CPU_BYTES:-64M}; else BYTES=${CPU_BYTES:-256M}; fi
REPS=${BENCH_REPS:-3}

. "$here/peers.sh"
die() { b_log "cpucost: error: $*"; exit 1; }
mkdir -p "$OUT" || die "$OUT: cannot create"
W=$(mktemp -d "${TMPDIR:-/tmp}/rtcpu.XXXXXX") || exit 1
on_exit() { rc=$?; b_cleanup; rm -rf "$W"; exit $rc; }
trap on_exit EXIT
trap 'exit 1' INT TERM HUP
RES=$OUT/cpucost-$(date -u +%Y%m%dT%H%M%SZ).txt

b_spawn serve "$RTBENCH" serve -w "$W/serve.port" 0
b_wait 10 test -s "$W/serve.port" || die "rtbench serve did not start"
SERVE_PORT=$(cat "$W/serve.port")
peers_keys || die "cannot make keys"
peers_sshd || die "sshd did not start"
declare -A PORT ROOTS
rp=$(b_free_port) lp=$(b_free_port)
peers_ssh_reverse ssh-R "$rp"
b_wait 10 b_listening "$rp" || die "ssh -R"
peers_ssh_local ssh-L "$lp" "$SSHD_PORT" "127.0.0.1:$rp"
b_wait 20 b_probe "$lp" || die "ssh path"
PORT[ssh]=$lp ROOTS[ssh]="sshd ssh-R ssh-L"
if peers_stunnel; then
	rp=$(b_free_port) lp=$(b_free_port)
	peers_ssh_reverse stunnel-R "$rp" "$STC_PORT"
	b_wait 15 b_listening "$rp" &&
	peers_ssh_local stunnel-L "$lp" "$SSHD_PORT" "127.0.0.1:$rp" &&
	b_wait 20 b_probe "$lp" && PORT[stunnel]=$lp &&
	ROOTS[stunnel]="sshd stunnel-R stunnel-L stunnel-server stunnel-client"
fi
RT_PORT=$(b_free_port)
why=$(peers_revtun_conf) || die "$why"
b_spawn relay "$RELAY" -f "$W/relay.conf"
b_wait 10 b_listening "$RT_PORT" || die "relay"
b_spawn agent "$AGENT" -f "$W/agent.conf"
lp=$(b_free_port)
peers_ssh_local revtun-L "$lp" "$RT_PORT" "bench.gw-17:9000" bench "$PKI/alice_ed25519"
b_wait 30 b_probe "$lp" && PORT[revtun]=$lp ROOTS[revtun]="relay agent revtun-L"

# tree PID: PID and all its descendants
tree() { echo "$1"; for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree "$c"; done; }
# ticks CFG: CPU ticks of every process of the path
ticks() {
	t=0
	for n in ${ROOTS[$1]}; do
		for p in $(tree "$(cat "$W/$n.pid")"); do
			v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null)
			t=$((t + ${v:-0}))
		done
	done
	echo $t
}
hz=$(getconf CLK_TCK)
mib=$(( $(numfmt --from=iec "${BYTES^^}") / 1048576 ))
echo "# cpucost: $BYTES per transfer, $REPS reps; $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$RES"
for rep in $(seq 1 "$REPS"); do
	for t in up down; do
		for cfg in ssh stunnel revtun; do
			[ -n "${PORT[$cfg]:-}" ] || continue
			a=$(ticks "$cfg")
			"$RTBENCH" -t 120 "$t" "127.0.0.1:${PORT[$cfg]}" "$BYTES" >/dev/null ||
				{ echo "result cfg=$cfg rep=$rep mode=$t ok=0" | tee -a "$RES"; continue; }
			b=$(ticks "$cfg")
			awk -v c="$cfg" -v r="$rep" -v m="$t" -v d=$((b - a)) -v hz="$hz" -v mib="$mib" \
			    'BEGIN { printf "result cfg=%s rep=%s mode=%s cpu_ms_per_mib=%.2f\n", c, r, m, 1000 * d / hz / mib }' |
			    tee -a "$RES"
		done
	done
done
for t in up down; do
	for cfg in ssh stunnel revtun; do
		v=$(grep "cfg=$cfg rep=[0-9]* mode=$t cpu" "$RES" | sed 's/.*=//' | sort -g |
		    awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }')
		[ -n "$v" ] && echo "median cfg=$cfg mode=$t cpu_ms_per_mib=$v" | tee -a "$RES"
	done
done
