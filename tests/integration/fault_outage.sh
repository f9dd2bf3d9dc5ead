#!/bin/bash
# fault_outage.sh - FAULTS.md N2 (relay down for hours), compressed: the
# agent's reconnect loop runs at a 20 ms backoff so that a few seconds hold
# as many attempts as hours would at the 60 s cap.
#   1. no relay at all: 600 refused connects;
#   2. a relay that refuses the agent's (revoked) certificate: 300 full
#      TLS handshakes, each refused and audited;
# across each phase the agent's open fds stay the same and its VmRSS grows
# by at most OUTAGE_RSS_KB (default 256 KiB; not checked in sanitizer
# builds, whose allocator keeps freed memory in quarantine); the relay's
# fds too. 3. the certificate is fixed and the agent reloaded: it comes
# up and carries data, with no restart after 900 failed attempts.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
rt_setup
rt_need ssh-keygen openssl
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"
RSS_KB=${OUTAGE_RSS_KB:-256}
SAN_BUILD=""
ldd "$RT_AGENT" 2>/dev/null | grep -q libasan && SAN_BUILD=1

relay_write_conf "$T/relay.conf"
sed -i 's/log_level = "info"/log_level = "warning"/' "$T/relay.conf"
relay_echo_start
RELAY_PORT=$RPORT ECHO_PORT=$ECHOPORT ag_conf "$T/good.conf"
sed -i 's/log_level = "debug"/log_level = "info"/; s/initial = "200ms"/initial = "20ms"/; s/max = "1s"/max = "20ms"\n\tjitter = 0/' "$T/good.conf"
# The in-memory log ring (for `logs AGENT`) fills up with the retry lines
# and then stays at its size: keep it small, so the warm-up fills it.
printf 'control {\n\tlog_lines = 50\n\tstate_dir = "%s"\n}\n' "$T/state" >>"$T/good.conf"
sed "s|$PKI/gw-17\.|$PKI/agent-revoked.|g" "$T/good.conf" >"$T/agent.conf"
ag_agent
AP=$(rt_pid agent)

attempts() { grep -c 'relay(s) failed; retrying' "$T/agent.log"; }
nfd() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# least fd count over 5 samples: a socket may be in flight at any moment
minfd() {
	m=100000
	for _ in 1 2 3 4 5; do
		n=$(nfd "$1"); [ "$n" -lt "$m" ] && m=$n; sleep 0.05
	done
	echo "$m"
}
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# phase NAME WARMUP COUNT : COUNT attempts after WARMUP more, compared
phase() {
	name=$1 a0=$(( $(attempts) + $2 ))
	rt_wait 60 "$name: $2 warm-up attempts" eval '[ "$(attempts)" -ge '"$a0"' ]' ||
		rt_fail "$name: the agent stopped retrying ($(attempts) attempts)"
	f1=$(minfd "$AP") m1=$(rss "$AP")
	rt_wait 120 "$name: $3 attempts" eval '[ "$(attempts)" -ge '"$((a0 + $3))"' ]' ||
		rt_fail "$name: the agent stopped retrying ($(attempts) attempts)"
	f2=$(minfd "$AP") m2=$(rss "$AP")
	rt_alive "$AP" || rt_fail "$name: agent died"
	[ "$f2" -le "$f1" ] || rt_fail "$name: agent fds $f1 -> $f2 over $3 attempts"
	if [ -z "$SAN_BUILD" ]; then
		[ $((m2 - m1)) -le "$RSS_KB" ] ||
			rt_fail "$name: agent VmRSS $m1 -> $m2 KiB over $3 attempts (bound +$RSS_KB)"
	fi
	rt_ok "$name: $3 attempts, agent fds $f1 -> $f2, VmRSS $m1 -> $m2 KiB"
}

# 1. Nothing listens on the relay port.
phase "relay down" 50 600
grep -q 'Connection refused' "$T/agent.log" || rt_fail "relay down: refusals not logged"

# 2. The relay is back but refuses the agent's revoked certificate.
relay_start
RP=$(rt_pid relay)
rt_wait 20 "first TLS refusal" relay_audit_has agent_deny || rt_fail "relay did not refuse the revoked agent"
rf1=$(minfd "$RP")
phase "certificate refused" 50 300
rf2=$(minfd "$RP")
[ "$rf2" -le "$rf1" ] || rt_fail "relay fds $rf1 -> $rf2 over 300 refused handshakes"
n=$(grep -c '"event":"agent_deny"' "$T/audit.log")
[ "$n" -ge 300 ] || rt_fail "only $n agent_deny audit lines for 300+ refused handshakes"
rt_ok "relay: $n refusals audited, fds $rf1 -> $rf2"

# 3. The certificate is fixed: up without a restart.
cp "$T/good.conf" "$T/agent.conf"
kill -HUP "$AP"
ag_wait_up 1 20 || rt_fail "agent did not come up once its certificate was fixed"
head -c 65536 /dev/urandom >"$T/in"
relay_op alice_ed25519 alice -W gw-17.edge:7 <"$T/in" >"$T/out" && cmp -s "$T/in" "$T/out" ||
	rt_fail "no data through the agent after the outage"
rt_ok "after $(attempts) failed attempts: up after a reload, 64 KiB echoed"
ag_stop
rt_pass
