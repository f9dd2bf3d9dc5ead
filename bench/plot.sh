#!/bin/bash
# bench/plot.sh - draw docs/img/*.png from the newest results with gnuplot
# (apt-get install gnuplot-nox). Skipped (exit 0, a note) without gnuplot.
#
#   throughput.png  median bulk up/down MiB/s per path   (summary-*.txt)
#   latency.png     median 64-byte RTT p50/p99 per path  (summary-*.txt)
#   storm.png       agents registered / TCP established after a relay
#                   restart, over time                   (scale-*.dat)
#   storm-maxpending.png  the same for a run with SCALE_MAX_PENDING set
#
# Usage: bench/plot.sh [RESULTS_DIR [IMG_DIR]]
set -u
here=$(cd "$(dirname "$0")" && pwd)
R=${1:-${BENCH_RESULTS:-$here/results}}
I=${2:-$here/../docs/img}
command -v gnuplot >/dev/null 2>&1 || { echo "plot: gnuplot not installed, no plots"; exit 0; }
mkdir -p "$I" || exit 1
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT

newest() { ls -t "$R"/$1 2>/dev/null | head -n 1; }

sum=$(newest 'summary-*.txt')
if [ -n "$sum" ]; then
	# rows "metric a b ..." with the paths as header, values without "(x)"
	paths=$(awk '/^metric/ { for (i = 2; i <= NF; i++) printf "%s ", $i }' "$sum")
	row() { awk -v m="$1" -v k="$2" '$1 == m && $2 == k {
	    for (i = 3; i <= NF; i++) if ($i !~ /^\(/) printf "%s ", $i }' "$sum"; }
	up=($(row bulk_up mibps)) down=($(row bulk_down mibps))
	p50=($(row ping p50_us)) p99=($(row ping p99_us))
	i=0
	for p in $paths; do
		echo "$p ${up[$i]:--} ${down[$i]:--} ${p50[$i]:--} ${p99[$i]:--}"
		i=$((i + 1))
	done | sed 's/ - / NaN /g; s/ -$/ NaN/' >"$T/sum.dat"
	grep -v '^direct ' "$T/sum.dat" >"$T/tunnels.dat"
	dup=$(awk '$1 == "direct" { printf "direct (no tunnel): up %s, down %s MiB/s", $2, $3 }' "$T/sum.dat")
	load=$(grep -m1 '^# host' "$(sed -n 's/^raw results: //p' "$sum")" 2>/dev/null | sed 's/.*load //')
	gnuplot <<EOF
set terminal pngcairo size 800,450 font ",10" noenhanced
set output "$I/throughput.png"
set title "bulk transfer through each tunnel, loopback, median of reps (load $load)\n$dup"
set ylabel "MiB/s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key top right
plot "$T/tunnels.dat" using 2:xtic(1) title "upload", "" using 3 title "download"
set output "$I/latency.png"
set title "64-byte round trip, one connection, median of reps (load $load)"
set ylabel "microseconds"
plot "$T/sum.dat" using 4:xtic(1) title "p50", "" using 5 title "p99"
EOF
	echo "plot: $I/throughput.png $I/latency.png from $sum"
fi

# storm DAT PNG: registrations and connections after the relay restart
storm() {
	txt=${1%.dat}.txt
	n=$(sed -n 's/.*test=reconnect_storm agents=\([0-9]*\).*/\1/p' "$txt" | head -n 1)
	mp=$(sed -n 's/.*max_pending \([0-9]*\);.*/\1/p' "$txt" | head -n 1)
	gnuplot <<EOF
set terminal pngcairo size 800,450 font ",10" noenhanced
set output "$2"
set title "relay restart with ${n:-?} idle agents connected (SIGTERM at t = 0), relay max_pending ${mp:-256}"
set xlabel "seconds since SIGTERM"
set ylabel "agents"
set grid
set key bottom right
plot "$1" using 1:2 with lines lw 2 title "registered with the new relay", \
     "" using 1:3 with lines lw 1 title "TCP established on the relay port"
EOF
	echo "plot: $2 from $1"
}
# storm.png: the newest run with the default max_pending (256);
# storm-maxpending.png: the newest run with another (SCALE_MAX_PENDING)
def="" alt=""
for f in $(ls -t "$R"/scale-*.dat 2>/dev/null); do
	mp=$(sed -n 's/.*max_pending \([0-9]*\);.*/\1/p' "${f%.dat}.txt" | head -n 1)
	if [ "${mp:-256}" = 256 ]; then
		[ -z "$def" ] && def=$f
	else
		[ -z "$alt" ] && alt=$f
	fi
done
[ -n "$def" ] && storm "$def" "$I/storm.png"
[ -n "$alt" ] && storm "$alt" "$I/storm-maxpending.png"
exit 0
