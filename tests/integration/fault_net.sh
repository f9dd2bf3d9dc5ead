#!/bin/bash
# fault_net.sh - the agent<->relay link under network faults (FAULTS.md
# N4, N5, N7, N9, S11 with a real half-open link). The agent runs in one
# network namespace, the relay (and the operator's ssh) in another,
# joined by tests/integration/netns.sh (TUN pair + user-space pump).
#
# 1. Short cut: link down 5 s, then up. The agent's SSH session survives
#    (no reconnect, no "connection lost"); a round trip started on an
#    open channel during the cut completes after it, and the channel
#    keeps working.
# 2. Delay 200 ms + 5 % loss each way: 1 MiB echoed through a channel
#    arrives intact (compared byte for byte), the session is not torn down;
#    the same with 10 % duplicated packets and +-15 ms jitter (reordering).
# 3. DNS: the relay is configured by name and the name does not resolve:
#    a "resolve" failure in the log, retries with growing backoff, and
#    the agent connects by itself once the name resolves.
# 4. Blackhole (half-open: no FIN, no RST, link up): the agent declares
#    the relay dead within keepalive_interval x keepalive_count + 1 s
#    (2 s x 2 here), keeps retrying, and is up again within connect
#    timeout + backoff after the blackhole ends. The relay, whose own
#    keepalive is slower, replaces the stale session at once, and an
#    operator channel that was open on it is closed, not left hanging
#    (N1/N6: "operators' sessions end cleanly").
# Skips (77) only when namespaces or TUN are unavailable.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
. "$top_srcdir/tests/integration/netns.sh"
nn_need
rt_pki
. "$top_srcdir/tests/integration/agent_lib.sh"
. "$top_srcdir/tests/integration/relay_common.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
[ -x "$RT_AGENT" ] || rt_fail "$RT_AGENT not built"
nn_up

RELAY_PORT=$RPORT
ECHO_PORT=$(rt_free_port)
LPORT=$(rt_free_port)

# relay (relay side) on loopback for the operator and on the link address
RELAY_LISTEN_EXTRA=", \"$NN_R_IP:$RPORT\"" relay_write_conf "$T/relay.conf"
rt_spawn relay ip netns exec "$NN_R" "$RT_RELAY" -f "$T/relay.conf"
rt_wait 15 "relay listening" nn_listening r "$RPORT" || rt_fail "relay did not start"

# echo target on the agent side's loopback
rt_spawn echo ip netns exec "$NN_A" "$AG_PY" "$AG_TOOLS/agent_peer.py" echo "$ECHO_PORT"
rt_wait 10 "echo target" nn_listening a "$ECHO_PORT" || rt_fail "echo target did not start"

# net_conf RELAY KA_INTERVAL KA_COUNT : agent config for this test
net_conf() {
	ag_conf "$T/agent.conf"
	sed -i "s|^relays = .*|relays = {\"$1\"}|
		s|^\tkey = .*$|&\n\tserver_name = \"localhost\"|
		s|keepalive_interval = .*|keepalive_interval = \"$2\"|
		s|keepalive_count = .*|keepalive_count = $3|
		s|log_level = \"debug\"|log_level = \"info\"|" "$T/agent.conf"
}
agent_start() {
	: >"$T/agent.log"
	rt_spawn agent ip netns exec "$NN_A" "$RT_AGENT" -f "$T/agent.conf"
}
agent_stop() {
	_ap=$(rt_pid agent)
	kill -TERM "$_ap"; rt_wait 15 "agent exit" rt_dead "$_ap" || rt_fail "agent ignored TERM"
	cp "$T/agent.log" "$T/agent-$1.log"
}
ups() { grep -c 'connected (TLS' "$T/agent.log"; }
lost() { grep -c 'connection lost' "$T/agent.log"; }
# ms since the epoch of the first agent.log line matching REGEX
log_ms() {
	grep -m1 -E "$1" "$T/agent.log" | python3 -c 'import sys, datetime
l = sys.stdin.readline().split(" ")[0]
if l: print(int(datetime.datetime.strptime(l, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))'
}
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# ------------------------------------------------------------ 1. cut 5 s
# keepalive 5 s x 3: a 5 s cut plus TCP's retransmission back-off stays
# well inside the 15 s dead-peer bound, as with the default 15 s x 3.
net_conf "$NN_R_IP:$RPORT" 5s 3
agent_start
ag_wait_up 1 20 || rt_fail "agent did not come up across the link"
rt_wait_log 10 "$T/relay.log" "gw-17: service echo:7 registered" || rt_fail "echo not registered"
rt_spawn opL ip netns exec "$NN_R" ssh -N $SSHOPTS -o ServerAliveInterval=0 \
	-i "$PKI/alice_ed25519" -o IdentitiesOnly=yes -p "$RPORT" \
	-L "127.0.0.1:$LPORT:echo.gw-17:7" alice@127.0.0.1
rt_wait 15 "ssh -L" nn_listening r "$LPORT" || rt_fail "operator ssh -L did not start"
rt_spawn hold ip netns exec "$NN_R" "$AG_PY" "$AG_TOOLS/agent_peer.py" hold "$LPORT" "$T/hold"
rt_wait 15 "held channel" grep -q up "$T/hold" || rt_fail "held channel did not open"
ping_held() {
	echo ping >"$T/hold"
	rt_wait "$1" "held channel answer" grep -qE 'pong|dead' "$T/hold" &&
		grep -q pong "$T/hold"
}
ping_held 10 || rt_fail "held channel broken before the cut"

nn_cut
rt_log "link cut"
nn_exec r ping -c 1 -W 1 "$NN_A_IP" >/dev/null 2>&1 && rt_fail "ping crosses the cut link (cut ineffective)"
# data sent into the cut: the held client writes its round trip now
echo ping >"$T/hold"
sleep 4
grep -q pong "$T/hold" && rt_fail "an answer crossed the cut link (cut ineffective)"
nn_restore
rt_log "link restored after 5 s ($(nn_stats))"
rt_wait 30 "held channel answer" grep -qE 'pong|dead' "$T/hold" && grep -q pong "$T/hold" ||
	rt_fail "data sent during the 5 s cut never arrived: $(cat "$T/hold")"
ping_held 10 || rt_fail "held channel broken after the cut"
[ "$(ups)" = 1 ] && [ "$(lost)" = 0 ] ||
	rt_fail "the agent reconnected across a 5 s cut: $(grep -E 'lost|connected' "$T/agent.log")"
rt_ok "5 s link cut: same SSH session, open channel answers again"

# ------------------------------------------------------------ 2. delay + loss
nn_impair 200 5
t0=$(date +%s)
ip netns exec "$NN_R" "$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$LPORT" 1 1048576 150 \
	>"$T/lossy.out" 2>&1 || rt_fail "1 MiB under delay 200 ms + 5 % loss: $(cat "$T/lossy.out") ($(nn_stats))"
t1=$(date +%s)
stats=$(nn_stats)
nn_impair 0 0
[ "$(ups)" = 1 ] && [ "$(lost)" = 0 ] || rt_fail "session torn down under delay + loss"
ping_held 10 || rt_fail "held channel broken after delay + loss"
rt_ok "delay 200 ms + 5 % loss: 1 MiB echoed intact in $((t1 - t0)) s, no reconnect (pump: $stats)"

# ------------------------------------------------------------ 2b. dup + reorder
nn_impair 20 0 10 15
ip netns exec "$NN_R" "$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$LPORT" 1 1048576 60 \
	>"$T/dup.out" 2>&1 || rt_fail "1 MiB with 10 % duplicates and reordering: $(cat "$T/dup.out") ($(nn_stats))"
stats=$(nn_stats)
nn_impair 0 0
[ "$(ups)" = 1 ] && [ "$(lost)" = 0 ] || rt_fail "session torn down by duplicates / reordering"
ping_held 10 || rt_fail "held channel broken after duplicates / reordering"
case $stats in *" dup=0 "*) rt_fail "the pump duplicated nothing: $stats" ;; esac
rt_ok "10 % duplicates + 20+-15 ms jitter (reordering): 1 MiB echoed intact, no reconnect (pump: $stats)"
kill -TERM "$(rt_pid hold)" "$(rt_pid opL)" 2>/dev/null
agent_stop cut

# ------------------------------------------------------------ 3. DNS
# The relay by name; the agent side's hosts file does not know it yet and
# its resolver answers nothing.
net_conf "relay.test:$RPORT" 2s 2
nn_hosts
agent_start
rt_wait 20 "three resolve failures" sh -c \
	"[ \$(grep -c 'resolve relay.test' '$T/agent.log') -ge 3 ]" ||
	rt_fail "no repeated 'resolve relay.test' failures: $(grep relay "$T/agent.log" | tail -3)"
grep -m1 'resolve relay.test' "$T/agent.log" | grep -qiE 'name|resolution|not known|temporary' ||
	rt_fail "resolve failure does not say why: $(grep -m1 'resolve relay.test' "$T/agent.log")"
# backoff: the announced waits grow (200 ms doubling to the 1 s cap)
python3 - "$T/agent.log" <<'PY' || rt_fail "no backoff between resolve failures"
import re, sys
d = [int(m.group(1)) for m in re.finditer(r"retrying in (\d+) ms", open(sys.argv[1]).read())]
print("waits:", d[:6])
sys.exit(0 if len(d) >= 3 and d[-1] > d[0] and min(d) > 0 else 1)
PY
[ "$(ups)" = 0 ] || rt_fail "connected without a resolvable name?"
rt_ok "DNS failure: '$(grep -m1 'resolve relay.test' "$T/agent.log" | sed 's/.*relay\.test:[0-9]*: //')', retried with backoff"
nn_hosts "$NN_R_IP relay.test"
rt_wait 10 "agent up after the name resolves" ag_count_up 1 ||
	rt_fail "agent did not connect once relay.test resolved: $(grep relay "$T/agent.log" | tail -3)"
rt_ok "name resolves again: agent connected without a restart"

# ------------------------------------------------------------ 4. blackhole
# keepalive 2 s x 2 (set above): dead within 4 s + 1 s tick. An operator
# channel is open through the session when the link goes black.
rt_spawn opL2 ip netns exec "$NN_R" ssh -N $SSHOPTS -o ServerAliveInterval=0 \
	-i "$PKI/alice_ed25519" -o IdentitiesOnly=yes -p "$RPORT" \
	-L "127.0.0.1:$LPORT:echo.gw-17:7" alice@127.0.0.1
rt_wait 15 "ssh -L" nn_listening r "$LPORT" || rt_fail "operator ssh -L did not start"
rm -f "$T/hold"
rt_spawn hold2 ip netns exec "$NN_R" "$AG_PY" "$AG_TOOLS/agent_peer.py" hold "$LPORT" "$T/hold"
rt_wait 15 "held channel" grep -q up "$T/hold" || rt_fail "held channel did not open"
ping_held 10 || rt_fail "held channel broken before the blackhole"
lost0=$(lost)
t0=$(now_ms)
nn_blackhole on
rt_wait 12 "relay declared dead" sh -c "[ \$(grep -c 'connection lost' '$T/agent.log') -gt $lost0 ]" ||
	rt_fail "agent did not notice the half-open link: $(tail -3 "$T/agent.log")"
tdead=$(log_ms 'connection lost')
took=$((tdead - t0))
# bound (docs/agent.md): interval x count + 1 s tick after the last byte
# from the relay = 5000 ms, as the agent measured it ("silent for N ms");
# from the start of the blackhole (later than that last byte) allow 1 s
# more for this script's and the pump's own timing on a loaded machine
silent=$(grep -m1 'connection lost' "$T/agent.log" | sed -n 's/.*silent for \([0-9]*\) ms.*/\1/p')
[ -n "$silent" ] || rt_fail "connection lost, but not by the keepalive: $(grep -m1 'connection lost' "$T/agent.log")"
[ "$silent" -le 5000 ] || rt_fail "relay declared dead after $silent ms of silence, bound 2 s x 2 + 1 s = 5000 ms"
[ "$took" -le 6000 ] || rt_fail "relay declared dead $took ms after the blackhole began (bound 5000 ms + 1 s slack)"
rt_ok "blackhole: relay declared dead after $took ms (bound 5000 ms): $(grep -m1 'connection lost' "$T/agent.log" | sed 's/.*connection lost/connection lost/')"
sleep 3		# a few failing attempts while the link stays black
nn_blackhole off
t0=$(now_ms)
rt_wait 15 "agent up again" ag_count_up 2 ||
	rt_fail "agent did not reconnect after the blackhole: $(grep relay "$T/agent.log" | tail -3)"
rt_ok "unblackhole: agent up again after $(( $(now_ms) - t0 )) ms"
# The relay (keepalive 15 s x 3) still held the old session when the
# link came back: either the agent's new connection replaces it at once,
# or the old connection's FIN (sent by the agent when it gave up, lost in
# the blackhole and retransmitted) ends it first - which of the two comes
# first is a race. Either way the operator's channel on the old session
# is closed promptly, not left to hang.
rt_wait_log 10 "$T/relay.log" "gw-17: up from .*replacing the previous connection|gw-17:echo closed \(agent disconnected\)" ||
	rt_fail "relay kept the stale session: $(grep gw-17 "$T/relay.log" | tail -3)"
t0=$(now_ms)
echo ping >"$T/hold"
rt_wait 15 "old channel answer" grep -qE 'pong|dead' "$T/hold" || rt_fail "held channel: no answer at all"
took=$(( $(now_ms) - t0 ))
grep -q dead "$T/hold" || rt_fail "the channel of the replaced session still answers"
[ "$took" -lt 5000 ] || rt_fail "the channel of the replaced session hung ${took} ms instead of being closed"
	ip netns exec "$NN_R" "$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$LPORT" 1 4096 20 >"$T/after.out" 2>&1 ||
	rt_fail "new channel through the new session: $(cat "$T/after.out")"
rt_ok "stale session replaced; its operator channel closed after ${took} ms; new channels work"
ag_sanitizer_clean || rt_fail "sanitizer report in agent.log"
agent_stop dns
rt_pass
