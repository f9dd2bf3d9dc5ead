#!/bin/bash
# bench/run.sh - the benchmark run: sets up the four paths to one rtbench
# service on loopback, measures them alternately, reports medians and
# ratios. Owns the schedule, the result files and the summary; the peers
# themselves are set up by bench/peers.sh.
#
#   direct   rtbench -> rtbench serve
#   ssh      rtbench -> ssh -L -> sshd -> ssh -R -> rtbench serve
#   stunnel  as ssh, but the -R side's SSH runs inside TLS:
#            ssh -R -> stunnel client -> stunnel server -> sshd
#   revtun   rtbench -> ssh -L -> revtun-relay -> revtun-agent -> serve
#
# Each repetition runs every test on every path back to back, the order
# of the paths rotated per repetition, so load drift on a shared machine
# spreads over all of them. Usage and environment: bench/README.md.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
RTBENCH=${RTBENCH:-$top_builddir/bench/rtbench}
RELAY=${RELAY:-$top_builddir/relay/revtun-relay}
AGENT=${AGENT:-$top_builddir/agent/revtun-agent}
OUT=${BENCH_RESULTS:-$here/results}

if [ -n "${BENCH_QUICK:-}" ]; then
	BYTES=${BENCH_BYTES:-32M}
	PINGS=${BENCH_PINGS:-2000}
	PC_CONNS=${BENCH_PC_CONNS:-8}
	PC_ROUNDS=${BENCH_PC_ROUNDS:-250}
	CONNS=${BENCH_CONNS:-20}
else
	BYTES=${BENCH_BYTES:-256M}
	PINGS=${BENCH_PINGS:-20000}
	PC_CONNS=${BENCH_PC_CONNS:-16}
	PC_ROUNDS=${BENCH_PC_ROUNDS:-1000}
	CONNS=${BENCH_CONNS:-100}
fi
REPS=${BENCH_REPS:-3}
CONFIGS=${BENCH_CONFIGS:-direct ssh stunnel revtun}
TMO=${BENCH_TIMEOUT:-90}		# seconds, per single measurement

. "$here/peers.sh"

die() { b_log "error: $*"; exit 1; }

[ -x "$RTBENCH" ] || die "$RTBENCH not built (make bench/rtbench)"
for c in ssh ssh-keygen python3 openssl timeout; do
	command -v "$c" >/dev/null 2>&1 || die "$c not installed"
done

W=$(mktemp -d "${TMPDIR:-/tmp}/rtbench.XXXXXX") || exit 1
on_exit() {
	rc=$?
	b_cleanup
	[ -z "${BENCH_KEEP:-}" ] && rm -rf "$W"
	exit $rc
}
trap on_exit EXIT
trap 'exit 1' INT TERM HUP

mkdir -p "$OUT" || die "$OUT: cannot create"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$OUT/raw-$stamp.txt
SUM=$OUT/summary-$stamp.txt
: >"$RAW"

# ---- set up every path; a path that cannot be set up is skipped ----

declare -A PORT SKIP
active=""

b_spawn serve "$RTBENCH" serve -w "$W/serve.port" 0
b_wait 10 test -s "$W/serve.port" || die "rtbench serve did not start"
SERVE_PORT=$(cat "$W/serve.port")
peers_keys || die "cannot make keys"

# skip CFG WHY: the path is left out of the run and says why.
skip() {
	SKIP[$1]="$2"
	b_log "$1: skipped: $2"
	echo "skipped cfg=$1 reason=\"$2\"" >>"$RAW"
}

# ready CFG PORT: the path works end to end (bounded wait), so use it.
ready() {
	if b_wait "${3:-20}" b_probe "$2"; then
		PORT[$1]=$2
		active="$active $1"
		b_log "$1: ready on 127.0.0.1:$2"
	else
		skip "$1" "no echo through 127.0.0.1:$2 within ${3:-20} s"
	fi
}

for cfg in $CONFIGS; do
	case $cfg in
	direct)
		ready direct "$SERVE_PORT"
		;;
	ssh)
		if [ -z "${SSHD_PORT:-}" ] && ! peers_sshd; then
			skip ssh "private sshd did not start: $(tail -n 2 "$W/sshd.log")"
			continue
		fi
		rp=$(b_free_port) lp=$(b_free_port)
		peers_ssh_reverse ssh-R "$rp"
		b_wait 10 b_listening "$rp" ||
			{ skip ssh "ssh -R did not come up: $(tail -n 2 "$W/ssh-R.log")"; continue; }
		peers_ssh_local ssh-L "$lp" "$SSHD_PORT" "127.0.0.1:$rp"
		ready ssh "$lp"
		;;
	stunnel)
		if [ -z "${SSHD_PORT:-}" ] && ! peers_sshd; then
			skip stunnel "private sshd did not start"
			continue
		fi
		peers_stunnel ||
			{ skip stunnel "stunnel4 missing or did not start (apt-get install stunnel4)"; continue; }
		rp=$(b_free_port) lp=$(b_free_port)
		peers_ssh_reverse stunnel-R "$rp" "$STC_PORT"
		b_wait 15 b_listening "$rp" ||
			{ skip stunnel "ssh -R over stunnel did not come up: $(tail -n 2 "$W/stunnel-R.log")"; continue; }
		peers_ssh_local stunnel-L "$lp" "$SSHD_PORT" "127.0.0.1:$rp"
		ready stunnel "$lp"
		;;
	revtun)
		if [ ! -x "$RELAY" ] || [ ! -x "$AGENT" ]; then
			skip revtun "$RELAY or $AGENT not built"
			continue
		fi
		RT_PORT=$(b_free_port)
		if ! why=$(peers_revtun_conf); then
			skip revtun "$why"
			continue
		fi
		b_spawn relay "$RELAY" -f "$W/relay.conf"
		b_wait 10 b_listening "$RT_PORT" ||
			{ skip revtun "relay not listening: $(tail -n 2 "$W/relay.log")"; continue; }
		b_spawn agent "$AGENT" -f "$W/agent.conf"
		lp=$(b_free_port)
		peers_ssh_local revtun-L "$lp" "$RT_PORT" "bench.gw-17:9000" \
			bench "$PKI/alice_ed25519"
		ready revtun "$lp" 30
		;;
	*)
		die "unknown configuration $cfg (direct ssh stunnel revtun)"
		;;
	esac
done
[ -n "$active" ] || die "no path could be set up"

# ---- measure ----

# measure CFG REP TEST: one rtbench run; its result line goes to $RAW
# with cfg= and rep= in front, a failure as ok=0 with the reason.
measure() {
	cfg=$1 rep=$2 t=$3
	case $t in
	bulk_up) args="up 127.0.0.1:${PORT[$cfg]} $BYTES" ;;
	bulk_down) args="down 127.0.0.1:${PORT[$cfg]} $BYTES" ;;
	ping) args="ping 127.0.0.1:${PORT[$cfg]} $PINGS" ;;
	pingc) args="pingc 127.0.0.1:${PORT[$cfg]} $PC_CONNS $PC_ROUNDS" ;;
	conn) args="conn 127.0.0.1:${PORT[$cfg]} $CONNS" ;;
	esac
	if [ -n "${SKIP[$cfg/$t]:-}" ]; then
		echo "result cfg=$cfg rep=$rep mode=$t ok=0 error=\"${SKIP[$cfg/$t]}\"" >>"$RAW"
		return
	fi
	# shellcheck disable=SC2086
	out=$(timeout -k 5 $((TMO + 10)) "$RTBENCH" -t "$TMO" $args 2>"$W/err")
	rc=$?
	line=$(printf '%s\n' "$out" | grep '^result ' | head -n 1)
	human=$(printf '%s\n' "$out" | grep '^# ' | head -n 1)
	if [ $rc -eq 0 ] && [ -n "$line" ]; then
		echo "result cfg=$cfg rep=$rep ${line#result }" >>"$RAW"
		printf '%-8s rep %s %s\n' "$cfg" "$rep" "${human#\# }"
		return
	fi
	err=$(tr '\n"' ' _' <"$W/err" | cut -c1-200)
	[ $rc -eq 124 ] && err="timed out after $((TMO + 10)) s; $err"
	echo "result cfg=$cfg rep=$rep ${line:+${line#result } }mode=$t ok=0 error=\"$err\"" >>"$RAW"
	printf '%-8s rep %s %s FAILED: %s\n' "$cfg" "$rep" "$t" "$err"
	# a path too slow for one run is not retried: the run stays bounded
	case $err in
	*"timed out"*) SKIP[$cfg/$t]="timed out in rep $rep, not retried" ;;
	esac
}

{
	echo "# rtbench run $stamp"
	echo "# host $(uname -srm), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# $(ssh -V 2>&1), $(openssl version)"
	echo "# sizes bytes=$BYTES pings=$PINGS pingc=${PC_CONNS}x$PC_ROUNDS conns=$CONNS reps=$REPS"
	echo "# paths:$active"
} | tee -a "$RAW"

tests="bulk_up bulk_down ping pingc conn"
set -- $active
n=$#
rep=1
while [ $rep -le "$REPS" ]; do
	# rotate the order of the paths by one per repetition
	order=""
	i=0
	while [ $i -lt "$n" ]; do
		j=$(( (i + rep - 1) % n + 1 ))
		order="$order ${!j}"
		i=$((i + 1))
	done
	for t in $tests; do
		for cfg in $order; do
			measure "$cfg" "$rep" "$t"
		done
	done
	rep=$((rep + 1))
done

# ---- summarize: medians over the repetitions, ratios to direct ----

# med CFG MODE KEY: median of KEY over the ok=1 results, or "-".
med() {
	grep "^result cfg=$1 rep=[0-9]* mode=$2 .*ok=1" "$RAW" |
	awk -v k="$3" '{ for (i = 1; i <= NF; i++) { split($i, kv, "=");
	    if (kv[1] == k) print kv[2] } }' | sort -g |
	awk '{ a[NR] = $1 } END { if (NR == 0) print "-";
	    else if (NR % 2) print a[(NR + 1) / 2];
	    else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# rmed A B MODE KEY: median over the repetitions where both A and B
# passed of A's KEY / B's KEY, or "-".
rmed() {
	for r in $(seq 1 "$REPS"); do
		x=$(grep "^result cfg=$1 rep=$r mode=$3 .*ok=1" "$RAW" | grep -o " $4=[0-9.]*" | cut -d= -f2)
		y=$(grep "^result cfg=$2 rep=$r mode=$3 .*ok=1" "$RAW" | grep -o " $4=[0-9.]*" | cut -d= -f2)
		[ -n "$x" ] && [ -n "$y" ] && awk -v a="$x" -v b="$y" 'BEGIN { if (b > 0) print a / b }'
	done | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-";
	    else if (NR % 2) printf "%.2f\n", a[(NR + 1) / 2];
	    else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

nok() { grep -c "^result cfg=$1 rep=[0-9]* mode=$2 .*ok=1" "$RAW"; }

{
	echo
	echo "median of $REPS repetitions; (x) = ratio to direct"
	printf '%-22s' "metric"
	for cfg in $active; do printf '%20s' "$cfg"; done
	echo
	for m in "bulk_up mibps MiB/s" "bulk_down mibps MiB/s" \
	    "ping p50_us us" "ping p99_us us" "pingc rps rt/s" \
	    "pingc p99_us us" "conn p50_us us" "conn p99_us us"; do
		set -- $m
		printf '%-22s' "$1 $2"
		d=$(med direct "$1" "$2")
		for cfg in $active; do
			v=$(med "$cfg" "$1" "$2")
			if [ "$v" = - ] || [ "$d" = - ] || [ "$cfg" = direct ]; then
				printf '%20s' "$v"
			else
				printf '%20s' "$v ($(awk -v a="$v" -v b="$d" \
				    'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'))"
			fi
		done
		echo
	done
	printf '%-22s' "runs ok"
	for cfg in $active; do
		s=""
		for t in $tests; do s="$s$(nok "$cfg" "$t")/"; done
		printf '%20s' "${s%/}"
	done
	echo
	# revtun against each tunnel peer: the ratio of the medians, and the
	# median of the per-repetition ratios (the two paths measured back to
	# back, so less exposed to load drift on a shared machine)
	for peer in ssh stunnel; do
		[ -n "${PORT[revtun]:-}" ] && [ -n "${PORT[$peer]:-}" ] || continue
		echo "revtun / $peer (throughput: above 1 is faster; us: below 1 is faster):"
		echo "                       of medians   median per rep"
		for m in "bulk_up mibps" "bulk_down mibps" "ping p50_us" \
		    "pingc rps" "conn p50_us"; do
			set -- $m
			a=$(med revtun "$1" "$2") b=$(med "$peer" "$1" "$2")
			[ "$a" = - ] || [ "$b" = - ] && continue
			printf '  %-20s %10s %16s\n' "$1 $2" "$(awk -v a="$a" -v b="$b" \
			    'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" \
			    "$(rmed revtun "$peer" "$1" "$2")"
		done
	done
	grep '^skipped ' "$RAW" || true
	echo "raw results: $RAW"
} | tee "$SUM"

grep -q ' ok=0' "$RAW" && exit 1
exit 0
