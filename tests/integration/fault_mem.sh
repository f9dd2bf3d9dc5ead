#!/bin/bash
# fault_mem.sh - memory pressure on the running daemons (FAULTS.md P6,
# the "prlimit --as" half; tests/unit/alloc_torture.c fails every single
# allocation of the library code instead).
#
# A real relay, a real agent, stock OpenSSH and paramiko operators, and
# two targets behind the agent: "sink" accepts and never reads, "src"
# sends without end. Load: many channels, half pushing into sink, half
# from src with the operator never reading, so every buffer on the way
# fills (channel_buffer 4M on both daemons).
#
# 1. Both daemons unlimited: VmPeak measured idle (agent up, one echo
#    served). The limits follow: relay max(64 MiB, idle + 48 MiB), agent
#    max(24 MiB, idle + 16 MiB). Measured on x86_64 Debian 12 (libssh
#    0.10.6, libssh2 1.10, OpenSSL 3.0): relay idle VmPeak 11.0-11.5 MiB,
#    75 MiB with 8 such channels, 525 MiB with 64 (about 8 MiB a
#    channel); agent 9.3 MiB idle, 42 MiB with 64 (still growing). So
#    the relay's margin holds about 6 loaded channels and the agent's a
#    few; the load asks for many times that.
# 2. The agent under prlimit --as (the relay unlimited), 32 channels:
#    channels whose buffers cannot grow are closed ("out of memory
#    buffering data from the target"); a send queue that cannot grow
#    ends the session (libssh2 cannot take a short write, DESIGN.md
#    pitfall 1) and the agent reconnects; so does a libssh2 transport
#    error (libssh2 aborted the agent on the next read before 98c153b).
# 3. The relay under prlimit --as (the agent unlimited), 2 operator
#    connections x 48 channels: its channel buffers run out first
#    ("error: operator alice chan N: out of memory buffering data from
#    the operator: closing the channel", audited as the close reason).
# 4. The relay under idle + 2 MiB, 3 x 16 channels: now libssh's and
#    OpenSSL's own allocations fail too. libssh ends the session with
#    "FUNC: Out of memory" (the relay crashed with SIGSEGV in
#    ssh_channel_poll before fb5169d) or, when it cannot grow its socket
#    input buffer, reports "Socket error: disconnected" (libssh treats
#    that as EOF; the relay cannot tell).
# After each: the limited daemon is alive (same PID; a signal death is a
# failure, its status is printed), logged "out of memory" for what it
# could not allocate, no crash or sanitizer text in any log, and a fresh
# stock ssh -W session gets 256 KiB echoed intact. Each limited daemon
# exits 0 on TERM.
#
# Note: util-linux 2.38 prlimit takes bytes only: "--as=64M" sets a limit
# of 64 bytes (every program then dies at exec with SIGSEGV), so limits
# are given in bytes and checked in /proc/PID/limits.
#
# Skipped (77) in --enable-asan builds: ASan reserves terabytes of
# address space. About 25-40 s.
. "$top_srcdir/tests/integration/lib.sh"
if ldd "$RT_RELAY" "$RT_AGENT" 2>/dev/null | grep -q libasan; then
	rt_skip "ASan build: its shadow memory needs terabytes of address space, prlimit --as cannot apply"
fi
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_setup
rt_need prlimit
"$AG_PY" -c "import paramiko" 2>/dev/null ||
	rt_fail "python3-paramiko missing (apt-get install python3-paramiko; scripts/deps.sh)"
. "$top_srcdir/tests/integration/relay_common.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
RELAY_PORT=$RPORT
MiB=1024

# ---------------------------------------------------------------- peers
SINK=$(rt_free_port)
SRC=$(rt_free_port)
cat >"$T/targets.py" <<'PY'
# targets.py SINKPORT SRCPORT LIFETIME : sink accepts and never reads;
# src accepts and sends until the peer is gone. Exits after LIFETIME s.
import socket, sys, threading, time
sinkp, srcp, life = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
held = []
def listen(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind(("127.0.0.1", port))
    ls.listen(1024)
    return ls
def blast(s):
    chunk = b"s" * 65536
    s.settimeout(life)
    try:
        while True:
            s.sendall(chunk)
    except OSError:
        pass
    s.close()
def serve(ls, fn):
    while True:
        s, _ = ls.accept()
        held.append(s)
        if fn:
            threading.Thread(target=fn, args=(s,), daemon=True).start()
for port, fn in ((sinkp, None), (srcp, blast)):
    threading.Thread(target=serve, args=(listen(port), fn), daemon=True).start()
time.sleep(life)
PY
rt_spawn targets "$AG_PY" "$T/targets.py" "$SINK" "$SRC" 300
rt_wait 10 "targets" rt_listening "$SRC" || rt_fail "targets did not start"

cat >"$T/load.py" <<'PY'
# load.py PORT KEY NCONN NCHAN SECS : NCONN operator connections with
# NCHAN channels each, alternately to sink.gw-17 (pushed into) and
# src.gw-17 (never read). Runs until SECS, until every channel is closed
# or until no byte moved for 4 s; then closes all. Prints JSON counts.
import json, socket, sys, time
import paramiko
port, key, nconn, nchan, secs = (int(sys.argv[1]), sys.argv[2],
    int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
t0 = time.monotonic()
left = lambda: secs - (time.monotonic() - t0)
pk = paramiko.Ed25519Key.from_private_key_file(key)
st = {"conns": 0, "open": 0, "refused": 0, "errors": [], "closed": 0,
      "pushed": 0}
trs, chans = [], []
for i in range(nconn):
    try:
        t = paramiko.Transport(("127.0.0.1", port))
        t.connect(username="alice", pkey=pk)
        trs.append(t)
        st["conns"] += 1
    except Exception as e:
        st["errors"].append("connect: %r" % e)
        continue
    for j in range(nchan):
        if left() <= 0:
            break
        svc = "sink" if j % 2 == 0 else "src"
        try:
            ch = t.open_channel("direct-tcpip", (svc + ".gw-17", 1),
                                ("127.0.0.1", 1), timeout=min(10, left()))
            ch.settimeout(0.0)
            chans.append((svc, ch))
            st["open"] += 1
        except Exception as e:
            st["refused"] += 1
            if len(st["errors"]) < 4:
                st["errors"].append("open %s: %r" % (svc, e))
chunk = b"p" * 32768
last = time.monotonic()
while left() > 0 and time.monotonic() - last < 4:
    if chans and all(ch.closed for _, ch in chans):
        break
    for svc, ch in chans:
        while svc == "sink" and not ch.closed and ch.send_ready():
            try:
                n = ch.send(chunk)
            except Exception:	# window shut, channel or transport gone
                break
            if n <= 0:
                break
            st["pushed"] += n
            last = time.monotonic()
    time.sleep(0.05)
st["closed"] = sum(1 for _, ch in chans if ch.closed)
st["secs"] = round(time.monotonic() - t0, 1)
for t in trs:
    t.close()
print(json.dumps(st))
PY

# ---------------------------------------------------------------- config
RELAY_ALICE_ALLOW='"gw-17:echo", "gw-17:sink", "gw-17:src"'
RELAY_AGENTS_EXTRA='	max_channels = 256'
RELAY_LIMITS_EXTRA='	channel_buffer = "4M"
	operator_max_channels = 256
	operator_max_denials = 0'
relay_write_conf "$T/relay.conf"
ag_conf "$T/agent.conf" "service sink {
	port = 9
	target = \"127.0.0.1:$SINK\"
}
service src {
	port = 19
	target = \"127.0.0.1:$SRC\"
}
limits {
	max_channels = 256
	channel_buffer = \"4M\"
}"
sed -i 's/log_level = "debug"/log_level = "info"/' "$T/agent.conf"

# ---------------------------------------------------------------- helpers
vm() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }	# PID VmPeak|VmSize -> KiB
# alive NAME : the process is still running, else fail with its status
alive() {
	p=$(rt_pid "$1")
	rt_alive "$p" && return 0
	wait "$p"; st=$?
	[ "$st" -gt 128 ] && st="$st (signal $((st - 128)))"
	rt_fail "$1 died under memory pressure: exit status $st; log: $(tail -n 5 "$T/$1.log")"
}
# no_crash : no crash or sanitizer text in any daemon log
CRASH_RE='Segmentation fault|Aborted|core dumped|stack smashing|double free|corrupted|AddressSanitizer|LeakSanitizer|runtime error:'
no_crash() {
	f=$(grep -lE "$CRASH_RE" "$T"/relay*.log "$T"/agent*.log 2>/dev/null)
	[ -z "$f" ] || rt_fail "crash text in $f: $(grep -hE "$CRASH_RE" $f | head -n 3)"
}
# limited NAME BYTES : the process runs with that address-space limit
limited() {
	got=$(awk '/^Max address space/ { print $4 }' "/proc/$(rt_pid "$1")/limits")
	[ "$got" = "$2" ] || rt_fail "$1: address space limit is '$got', want $2"
}
head -c 262144 /dev/urandom >"$T/payload"
# echo_ok : a fresh stock ssh -W session gets 256 KiB echoed intact
echo_ok() {
	timeout 20 ssh $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes \
		-p "$RPORT" -W echo.gw-17:7 alice@127.0.0.1 <"$T/payload" \
		>"$T/echo.out" 2>"$T/echo.err" && cmp -s "$T/payload" "$T/echo.out"
}
# load NCONN NCHAN SECS : runs load.py, its JSON in $T/load.json
load() {
	timeout $(($3 + 60)) "$AG_PY" "$T/load.py" "$RPORT" "$PKI/alice_ed25519" \
		"$1" "$2" "$3" >"$T/load.json" 2>"$T/load.err" ||
		rt_fail "load generator failed: $(tail -n 3 "$T/load.err")"
	rt_log "load: $(cat "$T/load.json")"
}
jget() { "$AG_PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/load.json" "$1"; }

# ------------------------------------------------- 1. unlimited: measure
relay_start
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up"
rt_wait 20 "first echo" echo_ok || rt_fail "echo through the tunnel failed: $(cat "$T/echo.err")"
R_IDLE=$(vm "$(rt_pid relay)" VmPeak)
A_IDLE=$(vm "$(rt_pid agent)" VmPeak)
R_LIM=$(( R_IDLE + 48 * MiB )); [ "$R_LIM" -lt $((64 * MiB)) ] && R_LIM=$((64 * MiB))
A_LIM=$(( A_IDLE + 16 * MiB )); [ "$A_LIM" -lt $((24 * MiB)) ] && A_LIM=$((24 * MiB))
rt_ok "unlimited, idle: relay VmPeak $R_IDLE KiB, agent $A_IDLE KiB; limits: relay $R_LIM KiB (margin $((R_LIM - R_IDLE)) KiB), agent $A_LIM KiB (margin $((A_LIM - A_IDLE)) KiB)"

# ------------------------------------------------- 2. agent under the limit
ag_stop
rt_spawn agentlim prlimit --as=$((A_LIM * 1024)) "$RT_AGENT" -f "$T/agent.conf"
rt_wait 20 "limited agent up" grep -q 'up with [1-9]' "$T/agentlim.log" ||
	rt_fail "agent did not come up under prlimit --as=$((A_LIM * 1024)): $(tail -n 5 "$T/agentlim.log")"
limited agentlim $((A_LIM * 1024))
rt_ok "agent up under prlimit --as=$((A_LIM * 1024)): VmPeak $(vm "$(rt_pid agentlim)" VmPeak) KiB"
load 1 32 15
alive agentlim
[ "$(jget open)" -ge 4 ] || rt_fail "agent phase: only $(jget open) channels opened"
grep -q 'out of memory' "$T/agentlim.log" ||
	rt_fail "agent under the limit logged no 'out of memory' (VmPeak $(vm "$(rt_pid agentlim)" VmPeak) KiB): the load did not reach the limit"
rt_ok "agent: $(grep -c 'out of memory' "$T/agentlim.log") 'out of memory' lines, e.g. '$(grep -m1 'out of memory' "$T/agentlim.log" | cut -d' ' -f3- | cut -c1-160)'; VmPeak $(vm "$(rt_pid agentlim)" VmPeak) KiB"
no_crash
rt_wait 30 "echo after the agent's load" echo_ok ||
	rt_fail "no fresh session through the limited agent after the load: $(cat "$T/echo.err")"
alive agentlim
rt_ok "agent under the limit: alive (PID $(rt_pid agentlim)), $(grep -c 'up with [1-9]' "$T/agentlim.log") session(s) up in all, fresh ssh -W echo intact"
p=$(rt_pid agentlim); kill -TERM "$p"
rt_wait 15 "limited agent to exit" rt_dead "$p" || rt_fail "limited agent ignored TERM"
wait "$p"; st=$?
[ "$st" = 0 ] || rt_fail "limited agent exited $st after TERM"

# ------------------------------------------------- 3. relay under the limit
rt_stop relay 10 >"$T/relay.status" || rt_fail "unlimited relay did not stop"
[ "$(cat "$T/relay.status")" = 0 ] || rt_fail "unlimited relay exited $(cat "$T/relay.status")"
rt_spawn relaylim prlimit --as=$((R_LIM * 1024)) "$RT_RELAY" -f "$T/relay.conf"
rt_wait 15 "limited relay listening" rt_listening "$RPORT" ||
	rt_fail "relay did not start under prlimit --as=$((R_LIM * 1024)): $(tail -n 5 "$T/relaylim.log")"
limited relaylim $((R_LIM * 1024))
ag_agent
rt_wait 20 "agent up at the limited relay" grep -q 'agent gw-17: up from' "$T/relaylim.log" ||
	rt_fail "agent did not come up at the limited relay"
rt_wait 20 "echo via the limited relay" echo_ok || rt_fail "echo via the limited relay failed: $(cat "$T/echo.err")"
RP=$(rt_pid relaylim)
rt_ok "relay up under prlimit --as=$((R_LIM * 1024)): VmPeak $(vm "$RP" VmPeak) KiB"
load 2 48 20
alive relaylim
[ "$(jget open)" -ge 8 ] || rt_fail "relay phase: only $(jget open) channels opened"
# Nearly always the channel buffers (the big blocks) fail first; should
# libssh's own allocation fail first, its session ends with "Out of memory".
n=$(grep -c 'error: .*out of memory' "$T/relaylim.log")
m=$(grep -c ': Out of memory' "$T/relaylim.log")
[ $((n + m)) -ge 1 ] || rt_fail "relay under the limit logged no 'out of memory' (VmPeak $(vm "$RP" VmPeak) KiB): the load did not reach the limit"
[ "$n" = 0 ] || relay_audit_has channel_close '"out of memory" in d.get("reason", "")' ||
	rt_fail "no channel_close audit line with reason 'out of memory'"
rt_ok "relay: $n 'out of memory' errors, $m libssh 'Out of memory', e.g. '$(grep -m1 -iE 'error: .*out of memory|: Out of memory' "$T/relaylim.log" | cut -d' ' -f3- | cut -c1-160)'; VmPeak $(vm "$RP" VmPeak) KiB of $R_LIM"
no_crash
rt_wait 30 "echo after the relay's load" echo_ok ||
	rt_fail "no fresh session via the limited relay after the load: $(cat "$T/echo.err")"
alive relaylim
rt_ok "relay under the limit: alive (PID $RP), VmSize after the load $(vm "$RP" VmSize) KiB, fresh ssh -W echo intact"
rt_stop relaylim 10 >"$T/relay.status" || rt_fail "limited relay did not stop on TERM"
[ "$(cat "$T/relay.status")" = 0 ] || rt_fail "limited relay exited $(cat "$T/relay.status") after TERM"

# ------------------------------------- 4. relay under a tight limit
# idle + 2 MiB: libssh's and OpenSSL's own allocations fail now, not only
# the channel buffers. libssh 0.10 drops a data packet it cannot buffer
# and leaves that channel's buffer NULL (the relay crashed with SIGSEGV in
# ssh_channel_poll before sshsess_lib_oom()): the connection must end with
# libssh's "Out of memory" instead, and the agent reconnect.
T_LIM=$(( R_IDLE + 2 * MiB ))
rt_spawn relaytight prlimit --as=$((T_LIM * 1024)) "$RT_RELAY" -f "$T/relay.conf"
rt_wait 15 "tight relay listening" rt_listening "$RPORT" ||
	rt_fail "relay did not start under prlimit --as=$((T_LIM * 1024)): $(tail -n 5 "$T/relaytight.log")"
limited relaytight $((T_LIM * 1024))
rt_wait 20 "agent up at the tight relay" grep -q 'agent gw-17: up from' "$T/relaytight.log" ||
	rt_fail "agent did not come up at the tight relay"
RP=$(rt_pid relaytight)
load 3 16 10
alive relaytight
grep -qi 'out of memory' "$T/relaytight.log" ||
	rt_fail "relay under the tight limit logged no 'out of memory' (VmPeak $(vm "$RP" VmPeak) KiB)"
rt_ok "tight relay ($T_LIM KiB): $(grep -ci 'out of memory' "$T/relaytight.log") 'out of memory' lines: $(grep -i 'out of memory' "$T/relaytight.log" | cut -d' ' -f3- | sed -E 's/chan [0-9]+/chan N/; s/[0-9]+ (bytes|ms|s)\b/N \1/g' | sort | uniq -c | sort -rn | head -n 3 | tr -s ' \n' ' ')"
no_crash
rt_wait 30 "echo after the tight relay's load" echo_ok ||
	rt_fail "no fresh session via the tight relay after the load: $(cat "$T/echo.err")"
alive relaytight
rt_ok "tight relay: alive (PID $RP), VmSize after the load $(vm "$RP" VmSize) KiB, fresh ssh -W echo intact"
rt_stop relaytight 10 >"$T/relay.status" || rt_fail "tight relay did not stop on TERM"
[ "$(cat "$T/relay.status")" = 0 ] || rt_fail "tight relay exited $(cat "$T/relay.status") after TERM"
ag_stop
no_crash
rt_pass
