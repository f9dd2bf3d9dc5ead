#!/bin/bash
# fault_clock.sh - FAULTS.md T2 and P7 with a real relay and agent, the
# agent's (and in part 2 the relay's) wall clock moved by libfaketime:
#   1. T2: a gateway that boots in 1970 (no RTC) refuses the relay's
#      certificate as not yet valid, says the clock may be wrong, never
#      falls back to ignoring time, keeps retrying, and connects by itself
#      once the clock is set.
#   2. P7: with the tunnel up, the wall clock of both daemons jumps two
#      hours forward, then three hours back: keepalives (1 s x 2 on both
#      sides), backoff and timeouts run on CLOCK_MONOTONIC, so the session
#      stays up (no reconnect) and carries data after each jump.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
rt_setup
rt_need ssh-keygen openssl
FT_LIB=
for d in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib/*-linux-gnu* /usr/lib; do
	[ -r "$d/faketime/libfaketime.so.1" ] && { FT_LIB=$d/faketime/libfaketime.so.1; break; }
done
[ -n "$FT_LIB" ] || rt_fail "libfaketime not installed (apt-get install faketime; scripts/check installs it)"
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"

# Each daemon reads its fake wall clock from a file, re-read every second;
# CLOCK_MONOTONIC is left alone (that is the point of part 2).
# verify_asan_link_order=0: in sanitizer builds libfaketime is preloaded
# ahead of the ASan runtime, which is harmless here.
ft_env() {
	echo "LD_PRELOAD=$FT_LIB FAKETIME_TIMESTAMP_FILE=$1 FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}
echo "+0" >"$T/relay.ft"
echo "@1970-01-02 00:00:00" >"$T/agent.ft"

RELAY_KA=1s RELAY_KC=2 relay_write_conf "$T/relay.conf"
relay_echo_start
rt_spawn relay env $(ft_env "$T/relay.ft") "$RT_RELAY" -f "$T/relay.conf"
rt_wait 15 "relay listening" rt_listening "$RPORT" || rt_fail "relay did not start"

RELAY_PORT=$RPORT ECHO_PORT=$ECHOPORT ag_conf "$T/agent.conf"
sed -i 's/keepalive_count = 3/keepalive_count = 2/; s/log_level = "debug"/log_level = "info"/' "$T/agent.conf"
rt_spawn agent env $(ft_env "$T/agent.ft") "$RT_AGENT" -f "$T/agent.conf"

# echo_ok TAG : one round trip operator -> relay -> agent -> echo target.
echo_ok() {
	head -c 65536 /dev/urandom >"$T/in.$1"
	relay_op alice_ed25519 alice -W gw-17.edge:7 <"$T/in.$1" >"$T/out.$1" &&
		cmp -s "$T/in.$1" "$T/out.$1"
}
attempts() { grep -c 'not yet valid' "$T/agent.log" 2>/dev/null; }

# 1. T2: boots in 1970.
rt_wait_log 20 "$T/agent.log" 'certificate is not yet valid.*local clock 1970-01-02.*clock wrong or certificate not yet valid' ||
	rt_fail "1970 clock: no 'not yet valid ... clock wrong' in the agent log"
rt_wait 20 "a second refused attempt" eval '[ "$(attempts)" -ge 2 ]' ||
	rt_fail "1970 clock: the agent did not retry"
ag_count_up 1 && rt_fail "1970 clock: the agent got a session (time check skipped?)"
grep -q '"event": *"agent_up"' "$T/audit.log" 2>/dev/null &&
	rt_fail "1970 clock: the relay registered the agent"
rt_ok "1970 clock refused $(attempts) times: $(grep -m1 -o 'certificate is not yet valid.*' "$T/agent.log" | cut -c1-160)"
echo "+0" >"$T/agent.ft"
t0=$(date +%s)
ag_wait_up 1 30 || rt_fail "clock set: the agent did not connect by itself"
rt_ok "clock set: connected by itself after $(( $(date +%s) - t0 )) s"
rt_wait 15 "echo through the tunnel" echo_ok a ||
	rt_fail "no data through the tunnel after the clock was set"

# 2. P7: wall-clock jumps on both sides. Each phase lasts 4 s, twice the
# 1 s x 2 keepalive bound of either side, so a keepalive that stalled or
# fired early would have ended the session.
ups() { grep -c 'up with [1-9]' "$T/agent.log"; }
losses() { grep -c 'connection lost\|dead' "$T/agent.log"; }
u0=$(ups) l0=$(losses)
for jump in "+7200" "-3600"; do
	echo "$jump" >"$T/agent.ft"
	echo "$jump" >"$T/relay.ft"
	sleep 4	# a window in which nothing may happen (not a wait for a condition)
	echo_ok "j$jump" || rt_fail "clock jump $jump s: no data through the session"
	[ "$(ups)" = "$u0" ] && [ "$(losses)" = "$l0" ] ||
		rt_fail "clock jump $jump s: the session was lost or re-made"
	rt_ok "clock jump $jump s: same session, data flows"
done
rt_alive "$(rt_pid relay)" || rt_fail "relay exited"
ag_stop
rt_pass
