#!/bin/bash
# fault_churn.sh - open/close and reconnect churn leaks nothing (FAULTS.md
# S7; also the relay's replace-same-id path).
#
# 1. Channel churn: CHURN_CHANNELS (10,000) direct-tcpip channels opened,
#    used for one 32-byte echo round trip and closed, through one operator
#    SSH connection (paramiko, CHURN_THREADS at a time), the real relay,
#    one real agent and an echo target.
# 2. Reconnect churn: CHURN_RECONNECTS (500) reconnects of the agent. A
#    second agent process with the same id (same certificate) is started
#    next to it: the relay replaces the older session each time one of
#    them comes up, so the two keep knocking each other off (20 ms
#    backoff). Each reconnect of agent A is a full TCP + TLS + SSH +
#    forward-registration cycle, and each is also a replacement in the
#    relay's registry.
#
# Both daemons are measured in a quiet state (agent A up alone, no
# operator channel open) after a warm-up and after the churn: the number
# of open fds (/proc/PID/fd) must be equal (+-1 for a transient
# socket) and VmRSS must not grow by more than CHURN_RSS_KB (default
# 1024 KiB, i.e. ~100 bytes per channel / ~2 KiB per reconnect). Every
# loop is bounded in count and time.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_setup
"$AG_PY" -c "import paramiko" 2>/dev/null ||
	rt_fail "python3-paramiko missing (apt-get install python3-paramiko; scripts/deps.sh)"
. "$top_srcdir/tests/integration/relay_common.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
RELAY_PORT=$RPORT
NCHAN=${CHURN_CHANNELS:-10000}
NRECON=${CHURN_RECONNECTS:-500}
RSS_KB=${CHURN_RSS_KB:-1024}

relay_write_conf "$T/relay.conf"
sed -i 's/log_level = "info"/log_level = "warning"/' "$T/relay.conf"
relay_start
ag_conf "$T/agent.conf"
sed -i 's/log_level = "debug"/log_level = "info"/; s/initial = "200ms"/initial = "20ms"/; s/max = "1s"/max = "20ms"\n\tjitter = 0/' "$T/agent.conf"
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"
AP=$(rt_pid agent)
RP=$(rt_pid relay)

nfd() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
SAN_BUILD=""
ldd "$RT_AGENT" "$RT_RELAY" 2>/dev/null | grep -q libasan && SAN_BUILD=1
[ -n "$SAN_BUILD" ] && rt_log "sanitizer build: VmRSS reported, not checked (fds are)"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# quiet PID : fd count is stable for 1 s (nothing in flight)
stable_fds() {
	a=$(nfd "$1"); sleep 0.5; b=$(nfd "$1"); sleep 0.5; c=$(nfd "$1")
	[ "$a" = "$b" ] && [ "$b" = "$c" ]
}
snapshot() {	# NAME : records fds and RSS of both daemons in $T/NAME
	rt_wait 10 "agent fds stable" stable_fds "$AP" || true
	rt_wait 10 "relay fds stable" stable_fds "$RP" || true
	echo "$(nfd "$AP") $(rss "$AP") $(nfd "$RP") $(rss "$RP")" >"$T/$1"
	rt_log "$1: agent fds $(nfd "$AP") rss $(rss "$AP") KiB; relay fds $(nfd "$RP") rss $(rss "$RP") KiB"
}
# compare BASE AFTER WHAT
compare() {
	read -r afd arss rfd rrss <"$T/$1"
	read -r afd2 arss2 rfd2 rrss2 <"$T/$2"
	bad=""
	[ $((afd2 - afd)) -le 1 ] || bad="$bad agent fds $afd -> $afd2;"
	[ $((rfd2 - rfd)) -le 1 ] || bad="$bad relay fds $rfd -> $rfd2;"
	# ASan's quarantine keeps freed memory for a while, so RSS is only
	# meaningful without it; LeakSanitizer checks leaks at exit instead.
	if [ -z "$SAN_BUILD" ]; then
		[ $((arss2 - arss)) -le "$RSS_KB" ] || bad="$bad agent VmRSS $arss -> $arss2 KiB;"
		[ $((rrss2 - rrss)) -le "$RSS_KB" ] || bad="$bad relay VmRSS $rrss -> $rrss2 KiB;"
	fi
	[ -z "$bad" ] || rt_fail "$3: growth:$bad"
	rt_ok "$3: agent fds $afd -> $afd2, VmRSS $arss -> $arss2 KiB; relay fds $rfd -> $rfd2, VmRSS $rrss -> $rrss2 KiB"
}

# ---------------------------------------------------------------- channels
cat >"$T/churn.py" <<'PY'
# churn.py PORT KEY COUNT THREADS DEADLINE_S : COUNT channels echo.gw-17:7
# over one SSH connection, THREADS at a time; each sends 32 bytes,
# checks the echo, closes. Prints "N ok in S s"; exit 1 on any failure.
import os, sys, threading, time
import paramiko
port, key, count, nthr, deadline = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
t = paramiko.Transport(("127.0.0.1", int(port)))
t.connect(username="alice", pkey=paramiko.Ed25519Key.from_private_key_file(key))
lock = threading.Lock()
st = {"next": 0, "ok": 0, "err": None}
t0 = time.monotonic()
def worker():
    while True:
        with lock:
            if st["next"] >= count or st["err"] or time.monotonic() - t0 > deadline:
                return
            st["next"] += 1
        try:
            ch = t.open_channel("direct-tcpip", ("echo.gw-17", 7), ("127.0.0.1", 1), timeout=10)
            ch.settimeout(10)
            msg = os.urandom(32)
            ch.sendall(msg)
            got = b""
            while len(got) < len(msg):
                d = ch.recv(64)
                if not d:
                    break
                got += d
            ch.close()
            if got != msg:
                raise RuntimeError("echo mismatch: %r" % got)
            with lock:
                st["ok"] += 1
        except Exception as e:
            with lock:
                st["err"] = st["err"] or "channel %d: %r" % (st["next"], e)
            return
ths = [threading.Thread(target=worker) for _ in range(nthr)]
for th in ths: th.start()
for th in ths: th.join(deadline + 30)
t.close()
print("%d ok in %.1f s%s" % (st["ok"], time.monotonic() - t0, "; " + st["err"] if st["err"] else ""))
sys.exit(0 if st["ok"] == count else 1)
PY
churn() {	# COUNT DEADLINE
	"$AG_PY" "$T/churn.py" "$RPORT" "$PKI/alice_ed25519" "$1" "${CHURN_THREADS:-8}" "$2" \
		>"$T/churn.out" 2>&1 || rt_fail "channel churn: $(tail -3 "$T/churn.out")"
}
churn 500 60	# warm-up: allocator pools, libssh/libssh2 lazy state
snapshot base1
churn "$NCHAN" 150
rt_ok "channel churn: $NCHAN channels, $(cat "$T/churn.out")"
snapshot after1
compare base1 after1 "$NCHAN channel opens/closes"
n=$(grep -c '"event": *"channel_close"' "$T/audit.log")	# audit is JSON lines
[ "$n" -ge $((NCHAN + 500)) ] || rt_fail "audit: only $n channel_close lines"

# ---------------------------------------------------------------- reconnects
ups() { grep -c 'connected (TLS' "$T/agent.log"; }
# a_up : agent A's last session event is "up" (and it has held for 0.5 s)
a_last() { grep -E 'up with [0-9]|connection lost|relay 127' "$T/agent.log" | tail -n 1; }
a_up() {
	a_last | grep -q 'up with [1-9]' || return 1
	l=$(a_last); sleep 0.5; [ "$(a_last)" = "$l" ]
}
sed "s|$T/agent.log|$T/agentB.log|" "$T/agent.conf" >"$T/agentB.conf"
# kick N DEADLINE : run agent B until agent A has reconnected N more times
kick() {
	want=$(( $(ups) + $1 ))
	rt_spawn agentB "$RT_AGENT" -f "$T/agentB.conf"
	rt_wait "$2" "agent A: $1 reconnects" sh -c \
		"[ \$(grep -c 'connected (TLS' '$T/agent.log') -ge $want ]" ||
		rt_fail "agent A reconnected only $(( $(ups) - want + $1 )) of $1 times in $2 s"
	bp=$(rt_pid agentB)
	kill -TERM "$bp"; rt_wait 15 "agent B exit" rt_dead "$bp" || rt_fail "agent B ignored TERM"
	# agent A alone again: it must come back up and stay
	rt_wait 10 "agent A up again" a_up || rt_fail "agent A not up after the churn"
	rt_alive "$AP" || rt_fail "agent A died during the churn"
	rt_alive "$RP" || rt_fail "relay died during the churn"
}
kick 20 30
snapshot base2
t0=$(date +%s)
kick "$NRECON" 150
rt_ok "reconnect churn: $NRECON reconnects of agent A (each a replacement in the relay) in $(( $(date +%s) - t0 )) s"
snapshot after2
# The channels still work after the churn.
churn 50 30
snapshot after2b
compare base2 after2b "$NRECON agent reconnects"
n=$(grep -c '"event": *"agent_up"' "$T/audit.log")
[ "$n" -ge $((2 * NRECON)) ] || rt_fail "audit: $n agent_up lines, want >= $((2 * NRECON)) (A and B)"
ag_stop
rt_pass
