#!/bin/bash
# bench/scale.sh - relay memory per idle agent and the reconnect storm,
# with N real revtun-agent processes (the real protocol: TLS + SSH +
# service registration), each with its own certificate CN agent-0001 ..
# agent-N, all pointed at one revtun-relay on loopback.
#
#   1. relay PSS / RSS / Private_Dirty (smaps_rollup) idle, then with all
#      N agents registered; (after - before) / N = bytes per idle agent
#   2. SIGTERM the relay, start it again at once; seconds until all N are
#      registered again (counted from the relay's "up from" log lines)
#      and the connection rate the relay saw (ESTABLISHED sockets on its
#      port and registrations, sampled every 0.25 s)
#
# Environment: SCALE_N [1000] {BENCH_QUICK: 200}, SCALE_TIMEOUT [120]
# seconds per wait, SCALE_MAX_PENDING [256] (the relay's limits.max_pending
# and max_pending_per_source: an experiment knob), BENCH_RESULTS, RELAY, AGENT, BENCH_KEEP=1.
# The PKI (EC P-256, one key and certificate per agent) is made once in
# parallel and cached in $BENCH_RESULTS/scale-pki (remade when short or
# expiring). Loopback: every agent comes from 127.0.0.1, so the relay's
# limits.max_pending_per_source is raised to max_pending (256): on the
# field they come from many addresses. Everything else is the default of
# conf/relay.conf and conf/agent.conf (reconnect 1 s doubling, 20 % jitter).
# Output: scale-STAMP.txt (a result line per number), scale-STAMP.dat
# (time series of the storm, for the plot), the two relay logs. Exit 1 if a step failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=${top_srcdir:-$(cd "$here/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
RELAY=${RELAY:-$top_builddir/relay/revtun-relay}
AGENT=${AGENT:-$top_builddir/agent/revtun-agent}
OUT=${BENCH_RESULTS:-$here/results}
if [ -n "${BENCH_QUICK:-}" ]; then N=${SCALE_N:-200}; else N=${SCALE_N:-1000}; fi
TMO=${SCALE_TIMEOUT:-120}
MAXP=${SCALE_MAX_PENDING:-256}	# relay.conf default max_pending

. "$here/peers.sh"
die() { b_log "scale: error: $*"; exit 1; }
[ -x "$RELAY" ] && [ -x "$AGENT" ] || die "$RELAY or $AGENT not built"
for c in openssl ssh ssh-keygen python3 ss xargs; do
	command -v "$c" >/dev/null 2>&1 || die "$c not installed"
done

# 3 fds per agent in the relay (TCP, socketpair), a few per agent here
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((N * 4 + 256)) ] ||
	die "RLIMIT_NOFILE $(ulimit -n) too low for $N agents"

mkdir -p "$OUT" || die "$OUT: cannot create"
W=$(mktemp -d "${TMPDIR:-/tmp}/rtscale.XXXXXX") || exit 1
SAMPLER=""
on_exit() {
	rc=$?
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
	b_cleanup
	[ -z "${BENCH_KEEP:-}" ] && rm -rf "$W"
	exit $rc
}
trap on_exit EXIT
trap 'exit 1' INT TERM HUP

stamp=$(date -u +%Y%m%dT%H%M%SZ)
RES=$OUT/scale-$stamp.txt
DAT=$OUT/scale-$stamp.dat
: >"$RES"
say() { echo "$*" | tee -a "$RES"; }

# ---- PKI: cached, parallel ----
PKI=$OUT/scale-pki
mkagent() {	# mkagent NAME: key + cert signed by the cached CA
	d=$PKI/agents
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$d/$1.key" 2>/dev/null &&
	openssl req -new -key "$d/$1.key" -subj "/CN=$1" 2>/dev/null |
	openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
	    -CAcreateserial -CAserial "$d/$1.srl" -days 90 -sha256 \
	    -extfile "$PKI/client.ext" -out "$d/$1.crt" 2>/dev/null &&
	chmod 600 "$d/$1.key" && rm -f "$d/$1.srl"
}
export -f mkagent
export PKI
pki_ok() {
	[ -s "$PKI/ca.crt" ] && [ -s "$PKI/agents/agent-$(printf %04d "$N").crt" ] &&
	openssl x509 -checkend 86400 -noout -in "$PKI/agents/agent-0001.crt" \
	    >/dev/null 2>&1
}
t0=$(date +%s.%N)
if ! pki_ok; then
	if [ ! -s "$PKI/ca.crt" ] || ! openssl x509 -checkend 86400 -noout \
	    -in "$PKI/relay.crt" >/dev/null 2>&1; then
		rm -rf "$PKI"
		"$top_srcdir/scripts/mkpki" "$PKI" >"$W/mkpki.log" 2>&1 ||
			die "mkpki failed: $(tail -n 2 "$W/mkpki.log")"
	fi
	mkdir -p "$PKI/agents"
	printf '%s\n' "basicConstraints = critical,CA:FALSE" \
	    "keyUsage = critical,digitalSignature" \
	    "extendedKeyUsage = clientAuth" >"$PKI/client.ext"
	i=1
	while [ $i -le "$N" ]; do
		n=$(printf 'agent-%04d' $i)
		[ -s "$PKI/agents/$n.crt" ] || echo "$n"
		i=$((i + 1))
	done | xargs -P "$(($(nproc) * 2))" -n 1 bash -c 'mkagent "$0"' ||
		die "making agent certificates failed"
	pki_ok || die "agent PKI incomplete"
	b_log "scale: PKI for $N agents in $(echo "$(date +%s.%N) - $t0" | bc) s"
fi

# ---- relay and agents ----
RT_PORT=$(b_free_port)
cut -d' ' -f1,2 "$PKI/alice_ed25519.pub" >"$W/op_keys"
chmod 600 "$W/op_keys"
cat >"$W/relay.conf" <<EOF
listen = {"127.0.0.1:$RT_PORT"}
host_keys = {"$PKI/ssh_host_ed25519_key"}
log_level = "info"
audit_log = ""
domain_suffix = ""
acl_allow_glob = true
tls {
	ca = "$PKI/ca.crt"
	cert = "$PKI/relay.crt"
	key = "$PKI/relay.key"
}
limits {
	max_pending = $MAXP
	max_pending_per_source = $MAXP
}
operator bench {
	keys_file = "$W/op_keys"
	allow = {"agent-*:*"}
}
EOF
"$RELAY" -t -f "$W/relay.conf" >"$W/relay-check.log" 2>&1 ||
	die "relay.conf refused: $(head -n 3 "$W/relay-check.log")"
mkdir -p "$W/a"
i=1
while [ $i -le "$N" ]; do
	n=$(printf 'agent-%04d' $i)
	cat >"$W/a/$n.conf" <<EOF
relays = {"localhost:$RT_PORT"}
log_level = "warning"
tls {
	ca = "$PKI/ca.crt"
	cert = "$PKI/agents/$n.crt"
	key = "$PKI/agents/$n.key"
}
control {
	state_dir = "$W/a/$n.state"
}
service echo {
	port = 7
	target = "127.0.0.1:7"
}
EOF
	i=$((i + 1))
done
"$AGENT" -t -f "$W/a/agent-0001.conf" >"$W/agent-check.log" 2>&1 ||
	die "agent.conf refused: $(head -n 3 "$W/agent-check.log")"

# smaps KEY PID: kB of KEY in /proc/PID/smaps_rollup
smaps() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/smaps_rollup"; }
# registered GEN: distinct agents that came up in relay log GEN
registered() { grep -o 'agent agent-[0-9]*: up from' "$W/relay$1.log" | sort -u | wc -l; }
# listed: the operator's view, the relay's agents exec command (stock ssh)
listed() {
	# shellcheck disable=SC2086
	timeout 30 ssh $B_SSHOPTS -i "$PKI/alice_ed25519" -p "$RT_PORT" \
	    bench@127.0.0.1 agents 2>"$W/ssh-agents.err" | grep -c '^agent-'
}
estab() { ss -Htn state established "( sport = :$RT_PORT )" | wc -l; }
# wait_reg GEN SECS: all N registered in relay log GEN, bounded
wait_reg() {
	_n=$(($2 * 4))
	while [ $_n -gt 0 ]; do
		[ "$(registered "$1")" -ge "$N" ] && return 0
		sleep 0.25
		_n=$((_n - 1))
	done
	return 1
}
now() { date +%s.%N; }

say "# scale run $stamp: $N agents, max_pending $MAXP; host $(uname -srm), $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
b_spawn relay1 "$RELAY" -f "$W/relay.conf"
RPID=$(cat "$W/relay1.pid")
b_wait 10 b_listening "$RT_PORT" || die "relay not listening: $(tail -n 2 "$W/relay1.log")"
sleep 1
r0_pss=$(smaps Pss "$RPID") r0_rss=$(smaps Rss "$RPID") r0_pd=$(smaps Private_Dirty "$RPID")
say "result test=relay_idle pss_kib=$r0_pss rss_kib=$r0_rss private_dirty_kib=$r0_pd"

t0=$(now)
i=1
while [ $i -le "$N" ]; do
	n=$(printf 'agent-%04d' $i)
	b_spawn "a/$n" "$AGENT" -f "$W/a/$n.conf"
	i=$((i + 1))
done
b_log "scale: $N agents started in $(echo "$(now) - $t0" | bc) s"
wait_reg 1 "$TMO" || die "only $(registered 1) of $N agents registered within $TMO s"
t1=$(now)
say "result test=cold_start agents=$N seconds=$(echo "$t1 - $t0" | bc | cut -c1-6) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
sleep 3	# let the handshakes' transient buffers go back
r1_pss=$(smaps Pss "$RPID") r1_rss=$(smaps Rss "$RPID") r1_pd=$(smaps Private_Dirty "$RPID")
say "result test=relay_${N}_agents pss_kib=$r1_pss rss_kib=$r1_rss private_dirty_kib=$r1_pd"
say "result test=relay_per_agent agents=$N pss_kib=$(echo "scale=1; ($r1_pss - $r0_pss) / $N" | bc) rss_kib=$(echo "scale=1; ($r1_rss - $r0_rss) / $N" | bc) private_dirty_kib=$(echo "scale=1; ($r1_pd - $r0_pd) / $N" | bc) target_kib=64"
# one agent's memory, idle, in this crowd
apid=$(cat "$W/a/agent-0001.pid")
say "result test=agent_idle_in_crowd pss_kib=$(smaps Pss "$apid") private_dirty_kib=$(smaps Private_Dirty "$apid")"

# the operator's view must agree (bounded: a few tries 2 s apart)
tries=0
while :; do
	nl=$(listed)
	tries=$((tries + 1))
	[ "$nl" -ge "$N" ] || [ $tries -ge 10 ] && break
	sleep 2
done
say "result test=agents_listed count=$nl expected=$N tries=$tries"
listed_ok=0
[ "$nl" -ge "$N" ] && listed_ok=1

# ---- reconnect storm ----
# sampler: t, registered (new relay), ESTABLISHED on the port
(
	g=2
	end=$(( $(date +%s) + TMO + 15 ))
	while [ "$(date +%s)" -lt $end ]; do
		r=0
		[ -f "$W/relay$g.log" ] && r=$(registered $g)
		echo "$(now) $r $(estab)"
		sleep 0.25
	done
) >"$W/storm.raw" 2>/dev/null &
SAMPLER=$!
sleep 1
ts=$(now)
kill "$RPID"
_n=$((TMO * 5))
while b_alive "$RPID" && [ $_n -gt 0 ]; do sleep 0.2; _n=$((_n - 1)); done
b_alive "$RPID" && die "relay did not stop within $TMO s"
wait "$RPID" 2>/dev/null
tdown=$(now)
b_spawn relay2 "$RELAY" -f "$W/relay.conf"
RPID=$(cat "$W/relay2.pid")
b_wait 10 b_listening "$RT_PORT" || die "restarted relay not listening"
tup=$(now)
ok=1
wait_reg 2 "$TMO" || ok=0
te=$(now)
nl2=$(listed)
sleep 1
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=""
refused=$(grep -c 'refused' "$W/relay2.log")
awk -v ts="$ts" '{ printf "%.2f %d %d\n", $1 - ts, $2, $3 }' "$W/storm.raw" >"$DAT"
# peak registrations per second (1 s windows)
peak=$(awk '{ t[NR] = $1; r[NR] = $2 } END { m = 0;
    for (i = 1; i <= NR; i++) for (j = i; j <= NR && t[j] - t[i] <= 1.0; j++)
        if (r[j] - r[i] > m) m = r[j] - r[i]; print m }' "$DAT")
if [ $ok = 1 ]; then
	say "result test=reconnect_storm agents=$N stop_s=$(echo "$tdown - $ts" | bc | cut -c1-5) listening_s=$(echo "$tup - $ts" | bc | cut -c1-5) all_registered_s=$(echo "$te - $ts" | bc | cut -c1-6) after_listen_s=$(echo "$te - $tup" | bc | cut -c1-6) peak_reg_per_s=$peak refused_lines=$refused listed_after=$nl2 target_s=30 load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
else
	say "result test=reconnect_storm agents=$N ok=0 registered=$(registered 2) within_s=$TMO peak_reg_per_s=$peak refused_lines=$refused"
fi
cp "$W/relay1.log" "$OUT/scale-$stamp-relay1.log" 2>/dev/null
cp "$W/relay2.log" "$OUT/scale-$stamp-relay2.log" 2>/dev/null
say "# storm time series: $DAT (seconds since SIGTERM, registered, established)"
dead=0
for f in "$W"/a/*.pid; do b_alive "$(cat "$f")" || dead=$((dead + 1)); done
say "result test=agents_alive alive=$((N - dead)) of=$N"
[ -n "${BENCH_KEEP:-}" ] && b_log "scale: kept $W"
[ $ok = 1 ] && [ $listed_ok = 1 ] && [ $dead -eq 0 ]
