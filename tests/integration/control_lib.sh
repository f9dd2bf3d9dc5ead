# tests/integration/control_lib.sh - helpers shared by the control_*.sh
# tests (sourced after lib.sh and relay_common.sh; not a test itself).
#
#   ctl_conf FILE [EXTRA]   agent config: relay 127.0.0.1:$RPORT, service
#                           echo (port 7), control (7000), shell (7001,
#                           enabled), rollback_timeout $CTL_ROLLBACK (5s),
#                           state_dir $T/state; EXTRA appended
#   ctl_start               relay (operator mallory with every right on
#                           gw-17), echo target, agent; waits until the
#                           agent's services are registered
#   ctl_run OUT args...     operator command as mallory (at most
#                           $CTL_TIMEOUT s, 20): stdout/stderr to
#                           $T/OUT.out / $T/OUT.err, stdin /dev/null;
#                           prints the exit status
#   ctl_run_in OUT args...  same with the caller's stdin

CTL_PY=/usr/bin/python3
CTL_ROLLBACK=${CTL_ROLLBACK:-5s}

ctl_conf() {
	cat >"$1" <<EOF2
relays = {"127.0.0.1:$RPORT"}
log_level = "${CTL_LOGLEVEL:-info}"
connect_timeout = "5s"
shutdown_timeout = "3s"
tls {
	ca = "$PKI/ca.crt"
	cert = "$PKI/gw-17.crt"
	key = "$PKI/gw-17.key"
	min_version = "1.2"
	server_name = "localhost"
}
ssh {
	# long: a keepalive reply racing a forward registration is not what
	# these tests are about
	keepalive_interval = "10s"
	keepalive_count = 3
}
reconnect {
	initial = "200ms"
	max = "1s"
}
service echo {
	port = 7
	target = "127.0.0.1:$ECHO_PORT"
}
service control {
	port = 7000
}
service shell {
	port = 7001
}
control {
	rollback_timeout = "$CTL_ROLLBACK"
	state_dir = "$T/state"
}
shell {
	enable = true
	user = "$(id -un)"
	idle_timeout = "30s"
}
mqtt {
	# password = "hunter2"
	password_file = "/etc/revtun/hunter2.pw"
}
${2:-}
EOF2
	chmod 600 "$1"
}

ctl_start() {
	"$CTL_PY" -c 'import paramiko' 2>/dev/null ||
		rt_fail "python3-paramiko not installed (scripts/check installs it)"
	RELAY_ALICE_ALLOW='"gw-17:echo"'
	relay_write_conf "$T/relay.conf"
	cat >>"$T/relay.conf" <<EOF2
operator mallory {
	keys = {"$(relay_key_line mallory_ed25519)"}
	allow = {"gw-17:echo", "gw-17:web", "gw-17:control"}
	rights = {"gw-17:read", "gw-17:write", "gw-17:logs", "gw-17:shell"}
}
EOF2
	relay_start
	ECHO_PORT=$(rt_free_port)
	rt_spawn echo "$CTL_PY" "$top_srcdir/tests/tools/agent_peer.py" echo \
		"$ECHO_PORT"
	rt_wait 10 "echo target" rt_listening "$ECHO_PORT" ||
		rt_fail "echo target did not start"
	ctl_conf "$T/agent.conf" "${CTL_EXTRA:-}"
	rt_spawn agent "$RT_AGENT" -f "$T/agent.conf"
	rt_wait_log 20 "$T/relay.log" "agent gw-17: service shell:7001 registered" ||
		rt_fail "agent services not registered"
}

# bounded: a command that hangs fails the test (exit 124) instead of
# blocking it
ctl_ssh() {
	timeout "${CTL_TIMEOUT:-20}" ssh $SSHOPTS -i "$PKI/mallory_ed25519" \
		-o IdentitiesOnly=yes -p "$RPORT" mallory@127.0.0.1 "$@"
}

ctl_run() {
	out=$1; shift
	ctl_ssh "$@" >"$T/$out.out" 2>"$T/$out.err" </dev/null
	echo $?
}

ctl_run_in() {
	out=$1; shift
	ctl_ssh "$@" >"$T/$out.out" 2>"$T/$out.err"
	echo $?
}

# ag_sanitizer_clean : the agent log holds no sanitizer report.
ag_sanitizer_clean() {
	! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
		"$T/agent.log"
}
