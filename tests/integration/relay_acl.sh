#!/bin/bash
# relay_acl.sh - registrations outside agents.services or reusing a port are
# refused with the session kept; the ACL is checked on every channel open: in one ssh -L
# session a granted service works while a forbidden one is refused; a HUP
# with a broken file changes nothing (relay up, error with file:line
# logged, old ACL still in force); a good HUP changes the ACL for the
# session that is already open; a reloaded operator_max_channels caps
# concurrent channels; USR1 logs a status line.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"

export RELAY_SERVICES='"echo", "ssh"'
RELAY_ALICE_ALLOW='"gw-17:echo"' relay_write_conf "$T/relay.conf"
relay_echo_start
relay_start
# plc is not in agents.services and dup reuses port 7: both refused, the
# session stays up with echo and ssh
relay_agent agent gw-17 -R "echo:7:127.0.0.1:$ECHOPORT" \
	-R "plc:502:127.0.0.1:$ECHOPORT" -R "dup:7:127.0.0.1:$ECHOPORT" \
	-R "ssh:22:127.0.0.1:$ECHOPORT"
rt_wait_log 20 "$T/relay.log" "agent gw-17: service ssh:22 registered" ||
	rt_fail "agent did not register"
relay_audit_has forward_deny 'd["service"] == "plc" and "agents.services" in d["reason"]' ||
	rt_fail "plc registration not refused"
relay_audit_has forward_deny 'd["service"] == "dup" and "port" in d["reason"]' ||
	rt_fail "duplicate port not refused"
rt_alive "$(rt_pid agent)" || rt_fail "agent session dropped by a refused registration"
rt_ok "registrations outside policy refused, session kept"

LP1=$(rt_free_port)
LP2=$(rt_free_port)
rt_spawn opL ssh -N $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" -L "127.0.0.1:$LP1:echo.gw-17:7" \
	-L "127.0.0.1:$LP2:ssh.gw-17.edge:22" alice@127.0.0.1
rt_wait 15 "ssh -L ports" rt_listening "$LP2" || rt_fail "ssh -L not listening"

# via PORT TEXT : send TEXT through a local forward, print what comes back
via() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
out = b""
try:
    s.sendall(sys.argv[2].encode())
    s.shutdown(socket.SHUT_WR)
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError:
    pass
print(out.decode(errors="replace"), end="")
PY
}

[ "$(via "$LP1" one)" = one ] || rt_fail "granted echo via -L"
[ -z "$(via "$LP2" two)" ] || rt_fail "forbidden ssh service answered via -L"
[ "$(via "$LP1" three)" = three ] || rt_fail "granted echo after a denial"
relay_audit_has channel_deny 'd["service"] == "ssh" and d["operator"] == "alice"' ||
	rt_fail "no channel_deny for gw-17:ssh"
rt_ok "one -L session: echo granted, ssh refused, echo still fine"

# broken reload: nothing changes
cp "$T/relay.conf" "$T/relay.conf.good"
printf 'bogus_option = 1\n' >>"$T/relay.conf"
"$RT_RELAY" -t -f "$T/relay.conf" 2>"$T/t.out"; [ $? = 78 ] || rt_fail "-t: not 78"
grep -qE "relay\.conf:[0-9]+: .*bogus_option" "$T/t.out" || rt_fail "-t: $(cat "$T/t.out")"
kill -HUP "$(rt_pid relay)"
rt_wait_log 10 "$T/relay.log" "reload failed: keeping the running configuration" ||
	rt_fail "broken reload not reported"
grep -qE "error: .*relay\.conf:[0-9]+: .*bogus_option" "$T/relay.log" ||
	rt_fail "no file:line in the reload errors"
rt_alive "$(rt_pid relay)" || rt_fail "relay died on a broken reload"
[ "$(via "$LP1" four)" = four ] || rt_fail "echo after a broken reload"
[ -z "$(via "$LP2" five)" ] || rt_fail "ACL changed by a broken reload"
rt_ok "broken HUP: relay up, old config kept, error with file:line"

# good reload: alice now has ssh but no longer echo; same ssh -L session
RELAY_ALICE_ALLOW='"gw-17:ssh"' relay_write_conf "$T/relay.conf"
kill -HUP "$(rt_pid relay)"
rt_wait_log 10 "$T/relay.log" "reloaded .*relay.conf" || rt_fail "good reload not logged"
[ "$(via "$LP2" six)" = six ] || rt_fail "new grant not in force"
[ -z "$(via "$LP1" seven)" ] || rt_fail "revoked grant still in force"
rt_alive "$(rt_pid opL)" || rt_fail "operator session dropped by the reload"
rt_alive "$(rt_pid agent)" || rt_fail "agent dropped by the reload"
relay_audit_has config 'd["change"] == "reload"' || rt_fail "no config audit line"
rt_ok "good HUP: ACL changed for the open session, nothing dropped"

# channel caps (reloadable): 2 per operator connection
RELAY_LIMITS_EXTRA='operator_max_channels = 2' RELAY_ALICE_ALLOW='"gw-17:ssh"' \
	relay_write_conf "$T/relay.conf"
kill -HUP "$(rt_pid relay)"
rt_wait 10 "second good reload" sh -c "grep -c 'reloaded .*relay.conf' '$T/relay.log' | grep -qx 2" ||
	rt_fail "cap reload not done"
python3 - "$LP2" <<'PY' >"$T/cap.out" || rt_fail "operator channel cap: $(cat "$T/cap.out")"
import socket, sys
port = int(sys.argv[1])
held = []
for i in range(2):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"h"); assert s.recv(1) == b"h"; held.append(s)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
try:
    s.sendall(b"3"); got = s.recv(1)
except OSError:
    got = b""
print("third channel got %r" % got)
sys.exit(0 if got == b"" else 1)
PY
relay_audit_has channel_deny 'd["reason"] == "operator channel limit"' ||
	rt_fail "no channel_deny for the operator cap"
rt_ok "operator_max_channels: third concurrent channel refused"

kill -USR1 "$(rt_pid relay)"
rt_wait_log 10 "$T/relay.log" "status: 1 agents, 1 operators" || rt_fail "USR1 status"
rt_ok "USR1 status"
rt_pass
