# tests/integration/relay_common.sh - helpers shared by the relay_*.sh
# integration tests (sourced after lib.sh and rt_setup/rt_pki).
#
# The stand-in agent is stock OpenSSH over `openssl s_client` (auth none,
# one -R per service); operators are stock OpenSSH with the test keys.
#
#   relay_write_conf FILE [extra operator sections...]
#   relay_start                 relay on $RPORT with $T/relay.conf
#   relay_echo_start            echo service, port in $ECHOPORT
#   relay_agent NAME CERT -R spec...   start a stand-in agent
#   relay_op KEY USER args...   run ssh as an operator (foreground)

rt_need ssh openssl python3 sha256sum

RPORT=$(rt_free_port)
SSHOPTS="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=10"

relay_key_line() { cut -d' ' -f1,2 "$PKI/$1.pub"; }

# relay_write_conf FILE : a relay config on $RPORT, audit to $T/audit.log,
# alice may reach gw-17:echo and gw-17:ssh (and list gw-17), bob gw-18 only.
relay_write_conf() {
	# defaults here: quotes inside ${x:-"..."} vanish in a here-document
	_svc=${RELAY_SERVICES:-'"*"'}
	_allow=${RELAY_ALICE_ALLOW:-'"gw-17:echo", "gw-17:ssh"'}
	cat >"$1" <<CONF
listen = {"127.0.0.1:$RPORT"${RELAY_LISTEN_EXTRA:-}}
operator_listen = {${RELAY_OP_LISTEN:-}}
host_keys = {"$PKI/ssh_host_ed25519_key"}
log_level = "info"
audit_log = "$T/audit.log"
domain_suffix = ".edge"
tls {
	ca = "$PKI/ca.crt"
	cert = "$PKI/relay.crt"
	key = "$PKI/relay.key"
	crl = "$PKI/crl.pem"
	min_version = "1.2"
}
agents {
	services = {$_svc}
	keepalive_interval = "${RELAY_KA:-15s}"
	keepalive_count = ${RELAY_KC:-3}
${RELAY_AGENTS_EXTRA:-}
}
limits {
	handshake_timeout = "${RELAY_HS:-10s}"
	shutdown_timeout = "5s"
${RELAY_LIMITS_EXTRA:-}
}
operator alice {
	keys = {"$(relay_key_line alice_ed25519)"}
	allow = {$_allow}
	rights = {"gw-17:read"}
}
operator bob {
	keys = {"$(relay_key_line bob_ed25519)"}
	allow = {"gw-18:echo"}
}
CONF
}

relay_start() {
	rt_spawn relay "$RT_RELAY" -f "$T/relay.conf"
	rt_wait 15 "relay listening" rt_listening "$RPORT" ||
		rt_fail "relay did not start"
}

relay_echo_start() {
	rt_spawn echo "$RT_TOOLS/rt-echo" "$T/echo.port"
	rt_wait 10 "echo port" test -s "$T/echo.port" || rt_fail "echo did not start"
	ECHOPORT=$(cat "$T/echo.port")
}

# relay_agent NAME CERT [ssh args...]: stock ssh as the agent, over TLS.
relay_agent() {
	name=$1 cert=$2; shift 2
	rt_spawn "$name" ssh -N $SSHOPTS -o ServerAliveInterval=0 \
		-o ExitOnForwardFailure=no \
		-o ProxyCommand="openssl s_client -quiet -connect 127.0.0.1:$RPORT -cert $PKI/$cert.crt -key $PKI/$cert.key -CAfile $PKI/ca.crt -verify_return_error -servername localhost" \
		"$@" "x@$cert"
}

# relay_op KEY USER ssh-args... : one operator ssh command (foreground).
relay_op() {
	key=$1 user=$2; shift 2
	ssh $SSHOPTS -i "$PKI/$key" -o IdentitiesOnly=yes -p "$RPORT" \
		"$user@127.0.0.1" "$@"
}

# relay_audit_has EVENT [python-condition on d] : an audit line matches.
relay_audit_has() {
	python3 - "$T/audit.log" "$1" "${2:-True}" <<'PY'
import json, sys
path, ev, cond = sys.argv[1], sys.argv[2], sys.argv[3]
ok = False
for line in open(path):
    d = json.loads(line)
    if d.get("event") == ev and eval(cond, {}, {"d": d}):
        ok = True
sys.exit(0 if ok else 1)
PY
}
