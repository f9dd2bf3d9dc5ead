#!/bin/bash
# privdrop.sh - least privilege and one instance (issue 7 item 5, FAULTS.md
# P8). Real relay and agent started as root with user = "nobody":
#   - both run with every uid and gid non-zero and no capability
#     (/proc/PID/status: Uid, Gid, CapPrm, CapEff, CapAmb);
#   - the relay's TLS key and SSH host key stay root-only (0600 root): the
#     agent still connects, an operator session passes data, `status`
#     reaches the agent's control service;
#   - relay HUP as nobody: an ACL change takes effect (new channel denied
#     and audited) while an open session continues, and the root-only
#     tls.key gives the documented "keeping the certificate and key" line;
#     new agent handshakes still work after it and the CRL still refuses
#     a revoked certificate;
#   - agent HUP as nobody reloads;
#   - a second relay / agent on the same pid_file is refused naming the
#     file and the running pid; a second agent with its own pid_file but
#     the same control.state_dir is refused too;
#   - TERM: pid files are removed or emptied; a stale pid file (dead pid,
#     no lock) is taken over at the next start;
#   - an audit log replaced by a symlink or a hard link to a root file in
#     nobody's log directory: the relay refuses to start (exit 71) and the
#     root file keeps its owner and content.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
[ "$(id -u)" = 0 ] || rt_skip "must run as root (it tests the drop from root)"
id nobody >/dev/null 2>&1 || rt_fail "no user nobody on this system"
rt_need ssh openssl
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"
. "$top_srcdir/tests/integration/control_lib.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
[ -x "$RT_AGENT" ] || rt_fail "$RT_AGENT not built"
/usr/bin/python3 -c 'import paramiko' 2>/dev/null ||
	rt_fail "python3-paramiko not installed (scripts/check installs it)"

NOBODY=$(id -u nobody)
# nobody must reach the configs, certificates and CRL; keys stay root's
chmod 755 "$T"
mkdir -m 755 "$T/run"			# pid files: root's directory
mkdir -m 700 "$T/log" "$T/akeys"
chown nobody "$T/log" "$T/akeys"	# audit log dir, agent key dir
ls -l "$PKI/relay.key" "$PKI/ssh_host_ed25519_key" | grep -q '^-rw------- 1 root' ||
	rt_fail "test set-up: relay keys are not root-only 0600"

# -- relay: user nobody, pid_file, audit log in nobody's directory
RELAY_ALICE_ALLOW='"gw-17:echo"'
relay_write_conf "$T/relay.conf"
sed -i "s|^audit_log = .*|audit_log = \"$T/log/audit.log\"\nuser = \"nobody\"\npid_file = \"$T/run/relay.pid\"|" \
	"$T/relay.conf"
cat >>"$T/relay.conf" <<EOF
operator mallory {
	keys = {"$(relay_key_line mallory_ed25519)"}
	allow = {"gw-17:echo", "gw-17:control"}
	rights = {"gw-17:read"}
}
EOF
ln -s "$T/log/audit.log" "$T/audit.log"	# for relay_audit_has

# ids_dropped PID : every uid and gid non-zero, no capability at all
ids_dropped() {
	s=/proc/$1/status
	awk '/^Uid:|^Gid:/ { for (i = 2; i <= 5; i++) if ($i == 0) bad = 1 }
	    /^CapPrm:|^CapEff:|^CapAmb:/ { if ($2 !~ /^0+$/) bad = 1 }
	    END { exit bad }' "$s" &&
	grep -qE "^Uid:[[:space:]]+$NOBODY[[:space:]]+$NOBODY[[:space:]]+$NOBODY[[:space:]]+$NOBODY$" "$s"
}

relay_start
RP=$(rt_pid relay)
rt_wait_log 10 "$T/relay.log" "running as user nobody" ||
	rt_fail "relay did not report the drop"
ids_dropped "$RP" || rt_fail "relay ids/caps: $(grep -E '^(Uid|Gid|Cap)' /proc/$RP/status)"
[ "$(cat "$T/run/relay.pid")" = "$RP" ] || rt_fail "relay pid_file holds '$(cat "$T/run/relay.pid")', not $RP"
rt_ok "relay runs as nobody (uid/gid non-zero, CapPrm/CapEff/CapAmb 0), pid_file $RP"

# -- a second relay on the same config: refused by the pid file, before
# it binds (the message names the file and the running pid)
timeout 10 "$RT_RELAY" -f "$T/relay.conf" >"$T/relay2.log" 2>&1
rc=$?
[ "$rc" = 71 ] || rt_fail "second relay exited $rc, expected 71: $(cat "$T/relay2.log")"
grep -q "pid_file $T/run/relay.pid: locked by pid $RP (another instance is running)" "$T/relay2.log" ||
	rt_fail "second relay: unexpected message: $(cat "$T/relay2.log")"
rt_alive "$RP" || rt_fail "the running relay died"
rt_ok "second relay refused: $(tail -n 1 "$T/relay2.log")"

# -- agent: user nobody, its key owned by nobody (it reads it again on
# every reconnect), pid_file, state_dir created for nobody
ECHO_PORT=$(rt_free_port)
rt_spawn echo /usr/bin/python3 "$top_srcdir/tests/tools/agent_peer.py" echo "$ECHO_PORT"
rt_wait 10 "echo target" rt_listening "$ECHO_PORT" || rt_fail "echo target did not start"
cp "$PKI/gw-17.key" "$T/akeys/gw-17.key"
chown nobody "$T/akeys/gw-17.key"
chmod 600 "$T/akeys/gw-17.key"
ctl_conf "$T/agent.conf" "user = \"nobody\"
pid_file = \"$T/run/agent.pid\""
sed -i -e "s|key = \"$PKI/gw-17.key\"|key = \"$T/akeys/gw-17.key\"|" \
	-e "s|user = \"$(id -un)\"|user = \"nobody\"|" "$T/agent.conf"
chown nobody "$T/agent.conf"		# HUP re-reads it as nobody
"$RT_AGENT" -t -f "$T/agent.conf" >"$T/agent-t.log" 2>&1 ||
	rt_fail "agent -t: $(cat "$T/agent-t.log")"
rt_spawn agent "$RT_AGENT" -f "$T/agent.conf"
AP=$(rt_pid agent)
rt_wait_log 20 "$T/relay.log" "agent gw-17: service shell:7001 registered" ||
	rt_fail "agent services not registered"
grep -q "running as user nobody" "$T/agent.log" || rt_fail "agent did not report the drop"
ids_dropped "$AP" || rt_fail "agent ids/caps: $(grep -E '^(Uid|Gid|Cap)' /proc/$AP/status)"
[ "$(stat -c %U "$T/state")" = nobody ] || rt_fail "state_dir not created for nobody"
[ "$(cat "$T/run/agent.pid")" = "$AP" ] || rt_fail "agent pid_file holds '$(cat "$T/run/agent.pid")'"
rt_ok "agent runs as nobody, connected through the dropped relay"

# -- data and control through both dropped daemons
printf 'hello from a dropped relay\n' >"$T/hello"
timeout 15 ssh $SSHOPTS -i "$PKI/mallory_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" -W gw-17:7 mallory@127.0.0.1 <"$T/hello" >"$T/echo.out" \
	2>"$T/echo.err" || true
cmp -s "$T/hello" "$T/echo.out" || rt_fail "echo: '$(cat "$T/echo.out" "$T/echo.err")'"
st=$(ctl_run s1 status gw-17)
[ "$st" = 0 ] || rt_fail "status: exit $st ($(cat "$T/s1.err"))"
grep -qx "tunnel: up" "$T/s1.out" || rt_fail "status: $(cat "$T/s1.out")"
rt_ok "operator data through the tunnel; status gw-17 answers"

# -- relay HUP as nobody: open session continues, ACL change applies,
# the root-only key is kept with the documented message
cat >"$T/hold.py" <<'PY'
import os, socket, subprocess, sys, time
T, port, key = sys.argv[1], sys.argv[2], sys.argv[3]
p = subprocess.Popen(["ssh", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
    "-o", "LogLevel=ERROR", "-i", key, "-o", "IdentitiesOnly=yes",
    "-p", port, "-W", "gw-17:7", "mallory@127.0.0.1"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def roundtrip(msg):
    p.stdin.write(msg); p.stdin.flush()
    got = b""
    while len(got) < len(msg):
        b = p.stdout.read1(4096)
        if not b:
            break
        got += b
    return got == msg
ok1 = roundtrip(b"before the reload\n")
open(T + "/hold.1", "w").write("ok" if ok1 else "bad")
end = time.time() + 60
while not os.path.exists(T + "/hold.go") and time.time() < end:
    time.sleep(0.1)
ok2 = roundtrip(b"after the reload\n")
open(T + "/hold.2", "w").write("ok" if ok2 else "bad")
p.stdin.close(); p.wait(10)
PY
rt_spawn hold timeout 90 /usr/bin/python3 "$T/hold.py" "$T" "$RPORT" "$PKI/mallory_ed25519"
rt_wait 20 "held session open" test -s "$T/hold.1" || rt_fail "held session did not start"
[ "$(cat "$T/hold.1")" = ok ] || rt_fail "held session: no echo before the reload"
sed -i 's|allow = {"gw-17:echo", "gw-17:control"}|allow = {"gw-17:control"}|' "$T/relay.conf"
kill -HUP "$RP"
rt_wait_log 15 "$T/relay.log" "reloaded $T/relay.conf" ||
	rt_fail "relay did not reload as nobody"
grep -q "tls.key $PKI/relay.key is not readable by user nobody: keeping the certificate and key loaded at start" "$T/relay.log" ||
	rt_fail "no 'keeping the certificate and key' line after HUP"
grep -q "host keys: 1 not readable by user nobody" "$T/relay.log" ||
	rt_fail "no host key note after HUP"
touch "$T/hold.go"
rt_wait 20 "held session after the reload" test -s "$T/hold.2" ||
	rt_fail "held session hung after the reload"
[ "$(cat "$T/hold.2")" = ok ] || rt_fail "held session lost data across the reload"
timeout 15 ssh $SSHOPTS -i "$PKI/mallory_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" -W gw-17:7 mallory@127.0.0.1 <"$T/hello" >"$T/echo2.out" \
	2>"$T/echo2.err" && cmp -s "$T/hello" "$T/echo2.out" &&
	rt_fail "new echo channel still allowed after the ACL change"
rt_wait 10 "channel_deny audit line" relay_audit_has channel_deny \
	'd.get("operator") == "mallory"' || rt_fail "no channel_deny audited for mallory"
# the agent kept its session through all this (TLS context swapped in
# place, not rebuilt)
[ "$(grep -c 'up with [1-9]' "$T/agent.log")" = 1 ] || rt_fail "agent reconnected during the relay reload"
st=$(ctl_run s2 status gw-17)
[ "$st" = 0 ] || rt_fail "status after the reload: exit $st ($(cat "$T/s2.err"))"
rt_ok "relay HUP as nobody: ACL change applied, open session continued, root-only key kept"

# new agent handshakes after the in-place swap: the kept certificate and
# key still serve, the reloaded trust store still checks the CRL
sc() { # CERT : stdout of a TLS session to the relay with that client cert
	timeout 10 openssl s_client -connect "127.0.0.1:$RPORT" \
		-cert "$PKI/$1.crt" -key "$PKI/$1.key" -CAfile "$PKI/ca.crt" \
		-servername localhost -verify_return_error </dev/null 2>&1
}
/usr/bin/python3 - "$PKI" "$RPORT" >"$T/sc-gw18.log" 2>&1 <<'PY' ||
import socket, ssl, sys
pki, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
ctx.load_cert_chain(pki + "/gw-18.crt", pki + "/gw-18.key")
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        banner = s.recv(256)
print(banner[:40])
sys.exit(0 if banner.startswith(b"SSH-2.0-") else 1)
PY
	rt_fail "gw-18 handshake after the reload got no SSH banner: $(tail -5 "$T/sc-gw18.log")"
sc agent-revoked >"$T/sc-revoked.log"
! grep -q "^SSH-" "$T/sc-revoked.log" || rt_fail "revoked cert accepted after the reload"
rt_wait_log 10 "$T/relay.log" "revoked.*agent-revoked" ||
	rt_fail "revoked cert after the reload: reason not logged"
rt_ok "after the reload: new agent handshake with the kept key works, CRL still enforced"

# -- agent HUP as nobody
sed -i 's/log_level = "info"/log_level = "debug"/' "$T/agent.conf"
kill -HUP "$AP"
rt_wait_log 10 "$T/agent.log" "reload: logging settings applied" ||
	rt_fail "agent did not reload as nobody"
rt_ok "agent HUP as nobody reloads"

# -- a second agent on the same pid_file, then one with its own pid_file
# but the same state_dir
timeout 10 "$RT_AGENT" -f "$T/agent.conf" >"$T/agent2.log" 2>&1
rc=$?
[ "$rc" != 0 ] || rt_fail "second agent started"
grep -q "pid_file $T/run/agent.pid: locked by pid $AP (another instance is running)" "$T/agent2.log" ||
	rt_fail "second agent: $(cat "$T/agent2.log")"
sed "s|pid_file = \"$T/run/agent.pid\"|pid_file = \"$T/run/agent-b.pid\"|" \
	"$T/agent.conf" >"$T/agent-b.conf"
timeout 10 "$RT_AGENT" -f "$T/agent-b.conf" >"$T/agent3.log" 2>&1
rc=$?
[ "$rc" != 0 ] || rt_fail "agent on a shared state_dir started"
grep -q "control.state_dir $T/state/agent.lock: locked by pid $AP (another instance is running): two agents must not share a control.state_dir" "$T/agent3.log" ||
	rt_fail "agent on a shared state_dir: $(cat "$T/agent3.log")"
rt_alive "$AP" || rt_fail "the running agent died"
rt_ok "second agent refused by pid_file and by the state_dir lock"

# -- clean stop: pid files gone or emptied (root's /run-like directory:
# nobody cannot unlink there, so the relay empties it)
rt_stop agent 15 >"$T/agent.rc"
st=$(cat "$T/agent.rc")
[ "$st" = 0 ] || rt_fail "agent exit $st after TERM"
[ ! -s "$T/run/agent.pid" ] || rt_fail "agent pid_file still holds $(cat "$T/run/agent.pid")"
[ ! -e "$T/state/agent.lock" ] || rt_fail "state_dir lock left behind"
rt_stop relay 15 >"$T/relay.rc"
st=$(cat "$T/relay.rc")
[ "$st" = 0 ] || rt_fail "relay exit $st after TERM"
[ ! -s "$T/run/relay.pid" ] || rt_fail "relay pid_file still holds $(cat "$T/run/relay.pid")"
rt_ok "TERM: both exit 0, pid files emptied or removed"

# -- stale pid files (a crash left a pid nobody holds): taken over
echo 999999 >"$T/run/relay.pid"
echo 999998 >"$T/run/agent.pid"
relay_start
RP=$(rt_pid relay)
rt_wait_log 10 "$T/relay.log" "pid_file $T/run/relay.pid: stale \\(pid 999999" ||
	rt_fail "relay did not take the stale pid file over"
[ "$(cat "$T/run/relay.pid")" = "$RP" ] || rt_fail "relay pid_file not rewritten"
rt_spawn agent "$RT_AGENT" -f "$T/agent.conf"
AP=$(rt_pid agent)
rt_wait_log 10 "$T/agent.log" "$T/run/agent.pid: stale \\(pid 999998" ||
	rt_fail "agent did not take the stale pid file over"
rt_wait_log 20 "$T/relay.log" "agent gw-17: service shell:7001 registered" ||
	rt_fail "agent did not come back after the take-over"
[ "$(cat "$T/run/agent.pid")" = "$AP" ] || rt_fail "agent pid_file not rewritten"
rt_ok "stale pid files taken over by relay and agent"

# -- the audit log's directory belongs to nobody: a symlink or a hard link
# nobody planted there in place of the log must not make root append to,
# or chown, the file it points to (here a root-owned stand-in for
# /etc/shadow); the relay refuses to start instead
rt_stop agent 15 >/dev/null
rt_stop relay 15 >/dev/null
printf 'root:secret\n' >"$T/precious"
chmod 600 "$T/precious"
for kind in symlink hardlink; do
	rm -f "$T/log/audit.log"
	if [ $kind = symlink ]; then
		ln -s "$T/precious" "$T/log/audit.log"
		want='symbolic link'
	else
		ln "$T/precious" "$T/log/audit.log"
		want='one link'
	fi
	timeout 20 "$RT_RELAY" -f "$T/relay.conf" >"$T/relay_$kind.log" 2>&1
	rc=$?
	[ "$rc" = 71 ] ||
		rt_fail "$kind audit log: relay exited $rc, expected 71: $(tail -n 3 "$T/relay_$kind.log")"
	grep -q "$want" "$T/relay_$kind.log" ||
		rt_fail "$kind audit log: no '$want' in: $(tail -n 3 "$T/relay_$kind.log")"
	[ "$(stat -c %u "$T/precious")" = 0 ] ||
		rt_fail "$kind audit log: root's file given to uid $(stat -c %u "$T/precious")"
	[ "$(cat "$T/precious")" = "root:secret" ] ||
		rt_fail "$kind audit log: root's file changed: $(head -c 200 "$T/precious")"
done
rm -f "$T/log/audit.log"
rt_ok "audit log planted as a symlink or hard link: relay refuses, root's file untouched"

for n in relay agent; do
	! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/$n.log" ||
		rt_fail "sanitizer report in $n.log"
done
rt_pass
