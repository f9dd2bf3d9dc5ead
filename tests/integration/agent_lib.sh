# tests/integration/agent_lib.sh - helpers shared by the agent_*.sh tests
# (sourced after lib.sh; not a test itself).
#
#   ag_setup                 rt_setup + rt_pki + ports RELAY_PORT, ECHO_PORT,
#                            OP_PORT; starts the echo target
#   ag_conf FILE [EXTRA]     writes an agent config for relay 127.0.0.1:
#                            RELAY_PORT with service "echo" (port 7) and
#                            fast keepalive/backoff; EXTRA is appended
#   ag_fakerelay NAME ARGS   starts the relay stand-in (tools/agent_
#                            fakerelay.py) on RELAY_PORT, operator port
#                            OP_PORT -> echo:7, plus ARGS
#   ag_agent [ARGS]          starts revtun-agent -f $T/agent.conf
#   ag_wait_up N [SECS]      waits until the agent logged N sessions up
#   ag_no_listen PID         fails unless PID owns no listening socket
#                            (tcp, tcp6, udp, udp6, unix)

AG_PY=/usr/bin/python3
AG_TOOLS="$top_srcdir/tests/tools"

ag_need_fakerelay() {
	"$AG_PY" -c 'import paramiko' 2>/dev/null ||
		rt_skip "python3-paramiko missing (apt-get install python3-paramiko)"
}

ag_setup() {
	rt_setup
	rt_need ssh-keygen openssl
	rt_pki
	RELAY_PORT=$(rt_free_port)
	ECHO_PORT=$(rt_free_port)
	OP_PORT=$(rt_free_port)
	[ -x "$RT_AGENT" ] || rt_fail "$RT_AGENT not built"
	rt_spawn echo "$AG_PY" "$AG_TOOLS/agent_peer.py" echo "$ECHO_PORT" \
		"$T/echo.conns"
	rt_wait 10 "echo target" rt_listening "$ECHO_PORT" ||
		rt_fail "echo target did not start"
}

ag_conf() {
	cat >"$1" <<EOF
relays = {"127.0.0.1:$RELAY_PORT"}
log_level = "debug"
connect_timeout = "5s"
shutdown_timeout = "3s"
tls {
	ca = "$PKI/ca.crt"
	cert = "$PKI/gw-17.crt"
	key = "$PKI/gw-17.key"
}
ssh {
	keepalive_interval = "1s"
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
${2:-}
EOF
}

ag_fakerelay() {
	name=$1; shift
	rt_spawn "$name" "$AG_PY" "$AG_TOOLS/agent_fakerelay.py" \
		--listen "$RELAY_PORT" --cert "$PKI/relay.crt" \
		--key "$PKI/relay.key" --ca "$PKI/ca.crt" \
		--hostkey "$PKI/ssh_host_ed25519_key" \
		--op "$OP_PORT:echo:7" "$@"
	rt_wait 15 "relay stand-in" rt_listening "$RELAY_PORT" ||
		rt_fail "relay stand-in did not start"
}

ag_agent() {
	rt_spawn agent "$RT_AGENT" -f "$T/agent.conf" "$@"
}

ag_count_up() {
	[ "$(grep -c 'up with [1-9]' "$T/agent.log" 2>/dev/null)" -ge "$1" ]
}

ag_wait_up() {
	rt_wait "${2:-20}" "agent session #$1 up" ag_count_up "$1"
}

# ag_no_listen PID
ag_no_listen() {
	inodes=$(for f in /proc/"$1"/fd/*; do readlink "$f"; done 2>/dev/null |
		sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -u)
	[ -n "$inodes" ] || { rt_log "no sockets found for pid $1"; return 1; }
	bad=0
	for ino in $inodes; do
		# tcp/tcp6: state 0A = LISTEN; inode is field 10
		if awk -v i="$ino" 'NR > 1 && $4 == "0A" && $10 == i { f = 1 }
		    END { exit !f }' /proc/net/tcp /proc/net/tcp6; then
			rt_log "pid $1 listens on TCP (inode $ino)"; bad=1
		fi
		# udp/udp6: any bound UDP socket can receive datagrams
		if awk -v i="$ino" 'NR > 1 && $10 == i { f = 1 }
		    END { exit !f }' /proc/net/udp /proc/net/udp6; then
			rt_log "pid $1 has a UDP socket (inode $ino)"; bad=1
		fi
		# unix: flags 00010000 = __SO_ACCEPTCON (listening)
		if awk -v i="$ino" 'NR > 1 && $7 == i && $4 == "00010000" {
		    f = 1 } END { exit !f }' /proc/net/unix; then
			rt_log "pid $1 listens on a unix socket (inode $ino)"; bad=1
		fi
	done
	return $bad
}

# ag_sanitizer_clean : the agent log holds no sanitizer report.
ag_sanitizer_clean() {
	! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
		"$T/agent.log"
}

# ag_stop : TERM the agent, expect exit 0 within shutdown_timeout plus
# slack, and a clean sanitizer report (in --enable-asan/ubsan builds).
ag_stop() {
	ap=$(rt_pid agent)
	kill -TERM "$ap" 2>/dev/null
	rt_wait 15 "agent to exit" rt_dead "$ap" || rt_fail "agent ignored TERM"
	wait "$ap"
	rc=$?
	[ "$rc" = 0 ] || rt_fail "agent exited $rc after TERM"
	ag_sanitizer_clean || rt_fail "sanitizer report in agent.log"
}
