# bench/peers.sh - the processes bench/run.sh measures through, sourced by
# it: a private sshd, OpenSSH reverse tunnels with and without stunnel,
# and revtun's relay and agent, all on loopback with throwaway keys.
#
# Every process is started with b_spawn (PID remembered, log in $W) and
# ended by b_cleanup, newest first, by PID only. Every wait is bounded.
#
#   b_spawn NAME cmd args...      background; log $W/NAME.log
#   b_wait SECS cmd args...       poll cmd every 0.2 s, at most SECS
#   b_free_port                   a port nobody listens on right now
#   b_probe PORT                  one verified echo through 127.0.0.1:PORT
#   peers_keys                    PKI (scripts/mkpki) and an ssh client key
#   peers_sshd                    private sshd on $SSHD_PORT
#   peers_ssh_reverse NAME RPORT [PROXYPORT]
#                                 "gateway": ssh -N -R 127.0.0.1:RPORT to
#                                 rtbench serve, direct or via PROXYPORT
#   peers_ssh_local NAME LPORT SSHPORT DEST [USER KEY]
#                                 "operator": ssh -N -L LPORT:DEST
#   peers_stunnel                 TLS server before sshd ($ST_PORT) and a
#                                 TLS client for the gateway ($STC_PORT)
#   peers_revtun_conf             relay.conf on $RT_PORT and agent.conf
#                                 with service bench -> rtbench serve,
#                                 both checked with -t; prints why not

B_PIDS=""

b_log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

b_spawn() {
	_name=$1
	shift
	"$@" >"$W/$_name.log" 2>&1 </dev/null &
	B_PIDS="$! $B_PIDS"
	echo $! >"$W/$_name.pid"
}

b_alive() { kill -0 "$1" 2>/dev/null; }

b_cleanup() {
	for _p in $B_PIDS; do
		kill "$_p" 2>/dev/null
	done
	_i=0
	for _p in $B_PIDS; do
		while b_alive "$_p" && [ $_i -lt 50 ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		kill -9 "$_p" 2>/dev/null
		wait "$_p" 2>/dev/null
	done
	B_PIDS=""
}

b_wait() {
	_n=$(($1 * 5))
	shift
	while [ $_n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
		_n=$((_n - 1))
	done
	return 1
}

b_free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

b_listening() {
	python3 -c 'import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$1"
}

b_probe() { "$RTBENCH" -t 3 probe "127.0.0.1:$1"; }

# Options every ssh here gets: no user config, no prompts, no known_hosts.
B_SSHOPTS="-F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no
 -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10
 -o ServerAliveInterval=0 -o ExitOnForwardFailure=yes -o IdentitiesOnly=yes
 -o ControlMaster=no -o ControlPath=none"

peers_keys() {
	PKI=$W/pki
	"$top_srcdir/scripts/mkpki" "$PKI" >"$W/mkpki.log" 2>&1 || {
		cat "$W/mkpki.log" >&2
		return 1
	}
	ssh-keygen -q -t ed25519 -N '' -C bench -f "$W/client_key" || return 1
	ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$W/host_key" ||
		return 1
	cp "$W/client_key.pub" "$W/authorized_keys"
}

peers_sshd() {
	SSHD_PORT=$(b_free_port)
	cat >"$W/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $W/host_key
PidFile $W/sshd.pidfile
AuthorizedKeysFile $W/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
GatewayPorts no
UseDNS no
MaxStartups 1000
MaxSessions 1000
LogLevel ERROR
EOF
	# sshd insists on its privilege separation directory
	[ -d /run/sshd ] || mkdir -p -m 0755 /run/sshd 2>/dev/null
	b_spawn sshd "$(command -v sshd || echo /usr/sbin/sshd)" -D -e \
		-f "$W/sshd_config"
	b_wait 10 b_listening "$SSHD_PORT"
}

# peers_ssh_reverse NAME RPORT [PROXYPORT]
peers_ssh_reverse() {
	_port=$SSHD_PORT
	[ $# -ge 3 ] && _port=$3
	# shellcheck disable=SC2086
	b_spawn "$1" ssh -N $B_SSHOPTS -i "$W/client_key" -p "$_port" \
		-R "127.0.0.1:$2:127.0.0.1:$SERVE_PORT" "$(id -un)@127.0.0.1"
}

# peers_ssh_local NAME LPORT SSHPORT DEST [USER KEY]
peers_ssh_local() {
	# shellcheck disable=SC2086
	b_spawn "$1" ssh -N $B_SSHOPTS -i "${6:-$W/client_key}" -p "$3" \
		-L "127.0.0.1:$2:$4" "${5:-$(id -un)}@127.0.0.1"
}

peers_stunnel() {
	_st=$(command -v stunnel4 || command -v stunnel) || return 1
	ST_PORT=$(b_free_port)
	STC_PORT=$(b_free_port)
	cat >"$W/stunnel-server.conf" <<EOF
foreground = yes
pid =
debug = 3
[sshd-tls]
accept = 127.0.0.1:$ST_PORT
connect = 127.0.0.1:$SSHD_PORT
cert = $PKI/relay.crt
key = $PKI/relay.key
EOF
	cat >"$W/stunnel-client.conf" <<EOF
foreground = yes
pid =
debug = 3
[sshd-tls]
client = yes
accept = 127.0.0.1:$STC_PORT
connect = 127.0.0.1:$ST_PORT
CAfile = $PKI/ca.crt
verifyChain = yes
checkHost = localhost
EOF
	b_spawn stunnel-server "$_st" "$W/stunnel-server.conf"
	b_spawn stunnel-client "$_st" "$W/stunnel-client.conf"
	b_wait 10 b_listening "$ST_PORT" && b_wait 10 b_listening "$STC_PORT"
}

peers_revtun_conf() {
	cut -d' ' -f1,2 "$PKI/alice_ed25519.pub" >"$W/bench_keys"
	chmod 600 "$W/bench_keys"
	cat >"$W/relay.conf" <<EOF
listen = {"127.0.0.1:$RT_PORT"}
host_keys = {"$PKI/ssh_host_ed25519_key"}
log_level = "warning"
audit_log = ""
domain_suffix = ""
tls {
	ca = "$PKI/ca.crt"
	cert = "$PKI/relay.crt"
	key = "$PKI/relay.key"
}
agents {
	max_channels = 1024
}
limits {
	operator_max_channels = 1024
	max_pending_per_source = 256
}
operator bench {
	keys_file = "$W/bench_keys"
	allow = {"gw-17:bench"}
}
EOF
	cat >"$W/agent.conf" <<EOF
relays = {"localhost:$RT_PORT"}
log_level = "warning"
reconnect {
	initial = "1s"
	max = "2s"
}
tls {
	ca = "$PKI/ca.crt"
	cert = "$PKI/gw-17.crt"
	key = "$PKI/gw-17.key"
}
limits {
	max_channels = 1024
}
service bench {
	port = 9000
	target = "127.0.0.1:$SERVE_PORT"
}
EOF
	"$RELAY" -t -f "$W/relay.conf" >"$W/relay-check.log" 2>&1 ||
		{ echo "relay.conf refused: $(head -n 3 "$W/relay-check.log")"; return 1; }
	"$AGENT" -t -f "$W/agent.conf" >"$W/agent-check.log" 2>&1 ||
		{ echo "agent.conf refused: $(head -n 3 "$W/agent-check.log")"; return 1; }
	return 0
}
