#!/bin/bash
# relay_basic.sh - one agent (stock ssh over TLS), one operator: 1 MiB both
# ways through ssh -W with the sha256 compared, `agents` and `help`, an
# unknown key refused, a forbidden target refused like an unknown one, and
# the audit lines for all of it.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"

OPPORT=$(rt_free_port)
HAVE6=0
python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null && HAVE6=1
[ $HAVE6 = 1 ] && RELAY_LISTEN_EXTRA=", \"[::1]:$RPORT\""
RELAY_OP_LISTEN="\"127.0.0.1:$OPPORT\"" relay_write_conf "$T/relay.conf"
"$RT_RELAY" -t -f "$T/relay.conf" || rt_fail "relay -t refused a good config"
sed "s#$PKI/relay.key#$PKI/gw-17.key#" "$T/relay.conf" >"$T/bad.conf"
"$RT_RELAY" -t -f "$T/bad.conf" 2>"$T/bad.out"; st=$?
[ $st = 78 ] || rt_fail "-t with a mismatched TLS key: exit $st, want 78"
grep -q "gw-17.key.*mismatch" "$T/bad.out" || rt_fail "-t: $(cat "$T/bad.out")"
rt_ok "-t: good config 0, mismatched key 78 with the file named"
relay_echo_start
relay_start
relay_agent agent gw-17 -R "echo:7:127.0.0.1:$ECHOPORT"
rt_wait_log 20 "$T/relay.log" "agent gw-17: service echo:7 registered" ||
	rt_fail "agent did not register echo"
rt_ok "agent gw-17 up with echo:7"

head -c 1048576 /dev/urandom >"$T/in.bin"
relay_op alice_ed25519 alice -W echo.gw-17:7 <"$T/in.bin" >"$T/out.bin" ||
	rt_fail "ssh -W echo.gw-17:7 failed"
[ "$(sha256sum <"$T/in.bin")" = "$(sha256sum <"$T/out.bin")" ] ||
	rt_fail "1 MiB echoed back differs ($(wc -c <"$T/out.bin") bytes back)"
rt_ok "1 MiB through ssh -W, sha256 equal"

# agent:port form and the domain suffix
echo hello | relay_op alice_ed25519 alice -W gw-17.edge:7 >"$T/out2" ||
	rt_fail "ssh -W gw-17.edge:7 failed"
[ "$(cat "$T/out2")" = hello ] || rt_fail "gw-17.edge:7 echoed '$(cat "$T/out2")'"
rt_ok "agent:port form with domain suffix"

# IPv6 and the operator-only port
if [ $HAVE6 = 1 ]; then
	echo six | ssh $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes \
		-p "$RPORT" -W echo.gw-17:7 alice@::1 >"$T/out6" &&
		[ "$(cat "$T/out6")" = six ] || rt_fail "operator over IPv6"
	rt_ok "operator over IPv6"
fi
echo op | ssh $SSHOPTS -i "$PKI/alice_ed25519" -o IdentitiesOnly=yes \
	-p "$OPPORT" -W echo.gw-17:7 alice@127.0.0.1 >"$T/outop" &&
	[ "$(cat "$T/outop")" = op ] || rt_fail "operator-only port"
timeout 10 openssl s_client -quiet -connect "127.0.0.1:$OPPORT" \
	-cert "$PKI/gw-18.crt" -key "$PKI/gw-18.key" -CAfile "$PKI/ca.crt" \
	</dev/null >"$T/sc-op.log" 2>&1
grep -q "^SSH-" "$T/sc-op.log" && rt_fail "TLS accepted on the operator-only port"
rt_ok "operator-only port: SSH yes, TLS no"

relay_op alice_ed25519 alice agents >"$T/agents.out" || rt_fail "agents failed"
grep -q '^gw-17 .*echo:7' "$T/agents.out" || rt_fail "agents: $(cat "$T/agents.out")"
relay_op bob_ed25519 bob agents >"$T/agents.bob" || rt_fail "agents (bob) failed"
grep -q gw-17 "$T/agents.bob" && rt_fail "bob sees gw-17 without a grant"
relay_op alice_ed25519 alice help | grep -q agents || rt_fail "help"
relay_op alice_ed25519 alice shutdown >/dev/null 2>&1 && rt_fail "unknown command exit 0"
rt_ok "exec agents/help"

relay_op alice_ed25519 alice -tt </dev/null >"$T/shell.out" 2>&1 &&
	rt_fail "a shell/pty on the relay succeeded"
grep -q "request failed" "$T/shell.out" || rt_fail "shell: $(cat "$T/shell.out")"
relay_op alice_ed25519 alice -N -R 9999:127.0.0.1:22 -o ExitOnForwardFailure=yes \
	</dev/null >/dev/null 2>&1 && rt_fail "ssh -R to the relay succeeded"
rt_ok "shell, pty and -R refused"

# unknown key
relay_op mallory_ed25519 alice -W echo.gw-17:7 </dev/null >/dev/null 2>&1 &&
	rt_fail "mallory's key was accepted"
relay_audit_has auth_fail 'd["operator"] == "alice" and d["key_fp"].startswith("SHA256:")' ||
	rt_fail "no auth_fail audit line"
rt_ok "unknown key refused"

# forbidden (bob), unknown agent and offline agent answer the same
deny_line() {
	relay_op bob_ed25519 bob -v -W "$1" </dev/null 2>&1 >/dev/null |
		grep -o 'open failed: .*' | head -n 1
}
e1=$(deny_line echo.gw-17:7)
e2=$(deny_line echo.gw-99:7)
e3=$(deny_line echo.gw-18:7)
e4=$(deny_line gw-18.edge:7)
[ -n "$e1" ] || rt_fail "no 'open failed' for a forbidden target"
[ "$e1" = "$e2" ] && [ "$e2" = "$e3" ] && [ "$e3" = "$e4" ] ||
	rt_fail "denials differ: '$e1' / '$e2' / '$e3' / '$e4'"
echo "$e1" | grep -qi "administratively prohibited" || rt_fail "denial text: $e1"
rt_ok "forbidden, unknown and offline look the same"

relay_audit_has auth_ok 'd["operator"] == "alice"' || rt_fail "no auth_ok"
relay_audit_has channel_open 'd["agent"] == "gw-17" and d["service"] == "echo" and "gw-17:echo" in d["rule"]' ||
	rt_fail "no channel_open with rule"
relay_audit_has channel_close 'd["bytes_to_agent"] == 1048576 and d["bytes_from_agent"] == 1048576 and d["duration_ms"] >= 0' ||
	rt_fail "no channel_close with 1 MiB each way"
relay_audit_has channel_deny 'd["operator"] == "bob" and d["rule"] == "default deny"' ||
	rt_fail "no channel_deny for bob"
relay_audit_has agent_up 'd["agent"] == "gw-17" and d["cert_fp"].startswith("SHA256:")' ||
	rt_fail "no agent_up"
relay_audit_has forward_ok 'd["service"] == "echo" and d["port"] == 7' || rt_fail "no forward_ok"
rt_ok "audit lines"

rt_stop relay 10 >"$T/relay.status" || rt_fail "relay did not stop on TERM"
[ "$(cat "$T/relay.status")" = 0 ] || rt_fail "relay exit status $(cat "$T/relay.status")"
rt_pass
