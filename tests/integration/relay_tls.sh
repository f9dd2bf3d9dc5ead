#!/bin/bash
# relay_tls.sh - agent admission: certificates from the wrong CA, expired,
# not yet valid and revoked are refused with the reason and subject in the
# log; a TLS 1.1-only client is refused; a peer speaking neither TLS nor
# SSH, and one that sends nothing, are closed (the latter at the handshake
# deadline); the per-source pending limit holds while a real agent still
# gets in; agents.allow (after a HUP) refuses other ids.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"

RELAY_HS=2s relay_write_conf "$T/relay.conf"
relay_start

# try_cert NAME : one TLS handshake with NAME's certificate; fails if the
# relay accepted it.
try_cert() {
	timeout 10 openssl s_client -connect "127.0.0.1:$RPORT" \
		-cert "$PKI/$1.crt" -key "$PKI/$1.key" -CAfile "$PKI/ca.crt" \
		-servername localhost </dev/null >"$T/sc-$1.log" 2>&1
	# TLS 1.3: the client learns of the refusal after the handshake; the
	# relay closes at once, so no SSH banner ever arrives
	! grep -q "^SSH-" "$T/sc-$1.log"
}
for c in agent-rogue agent-expired agent-future agent-revoked; do
	try_cert "$c" || rt_fail "$c: the relay answered with SSH"
done
rt_wait_log 10 "$T/relay.log" "agent-rogue|unable to get local issuer" || rt_fail "rogue not logged"
rt_wait_log 10 "$T/relay.log" "certificate has expired.*agent-expired" || rt_fail "expired: reason and subject not logged"
rt_wait_log 10 "$T/relay.log" "not yet valid.*agent-future" || rt_fail "future: reason and subject not logged"
rt_wait_log 10 "$T/relay.log" "revoked.*agent-revoked" || rt_fail "revoked: reason and subject not logged"
grep -q '"agent_up"' "$T/audit.log" 2>/dev/null && rt_fail "a bad certificate came up"
relay_audit_has agent_deny '"expired" in d["reason"] and "agent-expired" in d["reason"]' ||
	rt_fail "no agent_deny audit line for the expired certificate"
relay_audit_has agent_deny '"revoked" in d["reason"]' ||
	rt_fail "no agent_deny audit line for the revoked certificate"
rt_ok "wrong CA, expired, not yet valid, revoked refused and logged"

# a good certificate does get SSH
timeout 10 openssl s_client -quiet -connect "127.0.0.1:$RPORT" \
	-cert "$PKI/gw-18.crt" -key "$PKI/gw-18.key" -CAfile "$PKI/ca.crt" \
	-servername localhost </dev/null >"$T/sc-good.log" 2>&1
grep -q "^SSH-2.0-" "$T/sc-good.log" || rt_fail "good cert: no SSH banner"
rt_ok "good certificate gets the SSH banner"

# TLS 1.1 only
if openssl s_client -help 2>&1 | grep -q -- -tls1_1; then
	timeout 10 openssl s_client -tls1_1 -connect "127.0.0.1:$RPORT" \
		-cert "$PKI/gw-18.crt" -key "$PKI/gw-18.key" </dev/null \
		>"$T/sc-tls11.log" 2>&1
	grep -q "^SSH-" "$T/sc-tls11.log" && rt_fail "TLS 1.1 client got SSH"
	rt_wait_log 10 "$T/relay.log" "TLS handshake failed: .*(version|protocol)" ||
		rt_fail "TLS 1.1 refusal not logged with its reason"
	rt_ok "TLS 1.1 refused"
fi

# neither TLS nor SSH: closed at once
python3 - "$RPORT" <<'PY' || rt_fail "garbage peer not closed"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
s.settimeout(5)
try:
    sys.exit(0 if s.recv(100) == b"" else 1)
except ConnectionResetError:
    sys.exit(0)
PY
rt_ok "garbage closed"

# silent peers: beyond the per-source limit (8) they are refused at once,
# the others are closed at the handshake deadline (2 s here); afterwards a
# real agent and an operator get in.
python3 - "$RPORT" <<'PY' >"$T/idle.out" || rt_fail "idle peers: $(cat "$T/idle.out")"
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(12)]
t0 = time.time()
closed = 0
for s in socks:
    s.settimeout(10)
    try:
        if s.recv(1) == b"":
            closed += 1
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
dt = time.time() - t0
print("closed", closed, "in", round(dt, 1), "s")
sys.exit(0 if closed == 12 and dt < 9 else 1)
PY
grep -q "max_pending_per_source" "$T/relay.log" || rt_fail "per-source limit not hit"
rt_wait_log 5 "$T/relay.log" "nothing received before the handshake deadline" ||
	rt_fail "deadline close not logged"
rt_ok "idle peers limited and closed at the deadline ($(cat "$T/idle.out"))"

relay_echo_start
relay_agent agent gw-17 -R "echo:7:127.0.0.1:$ECHOPORT"
rt_wait_log 20 "$T/relay.log" "agent gw-17: service echo:7 registered" ||
	rt_fail "agent did not come up after the flood"
echo ping | relay_op alice_ed25519 alice -W echo.gw-17:7 >"$T/ping" &&
	[ "$(cat "$T/ping")" = ping ] || rt_fail "channel after the flood"
rt_ok "agent and operator fine afterwards"

# agents.allow (reloaded): gw-18 is no longer let in, gw-17 stays up
RELAY_HS=2s RELAY_AGENTS_EXTRA='allow = {"gw-17"}' relay_write_conf "$T/relay.conf"
kill -HUP "$(rt_pid relay)"
rt_wait_log 10 "$T/relay.log" "reloaded .*relay.conf" || rt_fail "reload"
relay_agent agent18 gw-18 -R "echo:7:127.0.0.1:$ECHOPORT"
rt_wait_log 20 "$T/relay.log" "agent gw-18 from .*refused: agent id not in agents.allow" ||
	rt_fail "gw-18 not refused by agents.allow"
rt_alive "$(rt_pid agent)" || rt_fail "gw-17 dropped by the reload"
rt_ok "agents.allow refuses other ids"
rt_pass
