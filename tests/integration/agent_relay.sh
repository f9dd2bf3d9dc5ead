#!/bin/bash
# agent_relay.sh - revtun-agent with the real revtun-relay and stock
# OpenSSH as the operator: ssh -J reaches a private sshd behind the agent
# and runs a command; ssh -L to an echo service with 1 MiB verified both
# ways; 50 concurrent channels; an interactive channel stays responsive
# during bulk transfers; a HUP keeps an open ssh session; the relay
# restarted, the agent comes back; the agent owns no listening socket.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_setup
rt_need ssh /usr/sbin/sshd
. "$top_srcdir/tests/integration/relay_common.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
RELAY_PORT=$RPORT

# A private sshd: own host key, alice's key authorized, loopback only.
SSHD_PORT=$(rt_free_port)
ssh-keygen -q -t ed25519 -N '' -f "$T/sshd_host_key" || rt_fail "ssh-keygen"
cp "$PKI/alice_ed25519.pub" "$T/authorized_keys"
chmod 600 "$T/authorized_keys"
cat >"$T/sshd_config" <<SSHD
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $T/sshd_host_key
AuthorizedKeysFile $T/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile none
SSHD
mkdir -p /run/sshd
rt_spawn sshd /usr/sbin/sshd -D -e -f "$T/sshd_config"
rt_wait 10 "private sshd" rt_listening "$SSHD_PORT" || rt_fail "sshd did not start"

relay_write_conf "$T/relay.conf"
relay_start
ag_conf "$T/agent.conf" "service ssh {
	port = 22
	target = \"127.0.0.1:$SSHD_PORT\"
}"
sed -i 's/log_level = "debug"/log_level = "info"/' "$T/agent.conf"
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up with the real relay"
rt_wait_log 10 "$T/relay.log" "gw-17: service ssh:22 registered" ||
	rt_fail "relay did not register gw-17's ssh service"

cat >"$T/ssh_config" <<SSHCFG
Host relay
	HostName 127.0.0.1
	Port $RELAY_PORT
	User alice
Host *
	IdentityFile $PKI/alice_ed25519
	IdentitiesOnly yes
	StrictHostKeyChecking no
	UserKnownHostsFile /dev/null
	BatchMode yes
	LogLevel ERROR
	ConnectTimeout 10
SSHCFG
op() { ssh -F "$T/ssh_config" "$@"; }

# 1. ssh -J to the sshd behind the agent.
out=$(op -J relay root@ssh.gw-17 'echo via-agent-$((6*7))' </dev/null 2>"$T/ssh-j.err") ||
	rt_fail "ssh -J failed: $(cat "$T/ssh-j.err")"
[ "$out" = via-agent-42 ] || rt_fail "ssh -J ran the command but printed '$out'"
rt_ok "ssh -J relay root@ssh.gw-17 runs a command"

# 2. ssh -L to the echo service.
LPORT=$(rt_free_port)
rt_spawn fwd ssh -F "$T/ssh_config" -N -o ExitOnForwardFailure=yes \
	-L "127.0.0.1:$LPORT:echo.gw-17:7" relay
rt_wait 15 "ssh -L listening" rt_listening "$LPORT" || rt_fail "ssh -L did not start"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$LPORT" 1 1048576 60 ||
	rt_fail "1 MiB through ssh -L not intact"
rt_ok "ssh -L: 1 MiB both ways intact"
# The relay caps channels per operator connection (32 by default), so
# two forwarders carry 25 channels each: 50 at once through the agent.
LPORT2=$(rt_free_port)
rt_spawn fwd2 ssh -F "$T/ssh_config" -N -o ExitOnForwardFailure=yes \
	-L "127.0.0.1:$LPORT2:echo.gw-17:7" relay
rt_wait 15 "second ssh -L listening" rt_listening "$LPORT2" ||
	rt_fail "second ssh -L did not start"
rt_spawn many2 "$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$LPORT2" 25 262144 90
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$LPORT" 25 262144 90 ||
	rt_fail "25 concurrent channels through the first ssh -L failed"
rt_wait 90 "second batch" rt_dead "$(rt_pid many2)"
grep -q "25 of 25" "$T/many2.log" || rt_fail "second batch: $(cat "$T/many2.log")"
rt_ok "50 concurrent channels (2 x 25, 256 KiB each way) intact"

# 3. Interactive round trips while two bulk streams run through the same
# relay session and agent.
for i in 1 2; do
	rt_spawn "bulk$i" "$AG_PY" "$AG_TOOLS/agent_peer.py" stream "$LPORT" 104857600
done
sleep 1	# let the bulk streams reach full speed (not a synchronisation)
# The ping-pong uses the other operator connection: one ssh client's own
# TCP queue would otherwise put it behind the bulk data before the relay
# and the agent ever see it.
"$AG_PY" "$AG_TOOLS/agent_peer.py" pingpong "$LPORT2" 5 2000 >"$T/pp.out" 2>&1 ||
	rt_fail "interactive channel starved: $(cat "$T/pp.out")"
rt_ok "$(cat "$T/pp.out")"
for i in 1 2; do
	rt_wait 120 "bulk $i done" rt_dead "$(rt_pid bulk$i)"
	grep -q "stream: 104857600 of 104857600" "$T/bulk$i.log" ||
		rt_fail "bulk $i: $(cat "$T/bulk$i.log")"
done
rt_ok "both 100 MiB bulk streams complete"

ag_no_listen "$(rt_pid agent)" || rt_fail "agent owns a listening socket"
rt_ok "agent owns no listening socket"

# 4. A HUP that leaves the relay settings alone keeps an open ssh session.
mkfifo "$T/in.fifo"
na=$(grep -c 'Accepted publickey' "$T/sshd.log")
rt_spawn sess sh -c "exec ssh -F '$T/ssh_config' -J relay root@ssh.gw-17 'read x; echo got-\$x' <'$T/in.fifo'"
exec 7>"$T/in.fifo"
rt_wait 20 "ssh session through the agent" sh -c \
	"[ \$(grep -c 'Accepted publickey' '$T/sshd.log') -gt $na ]" ||
	rt_fail "interactive ssh session did not open"
sed -i 's/log_level = "info"/log_level = "debug"/' "$T/agent.conf"
kill -HUP "$(rt_pid agent)"
rt_wait_log 10 "$T/agent.log" 'reload: logging settings applied' || rt_fail "reload not done"
echo hi >&7
exec 7>&-
rt_wait 20 "ssh session to finish" rt_dead "$(rt_pid sess)" || rt_fail "ssh session hung after HUP"
grep -q '^got-hi$' "$T/sess.log" || rt_fail "ssh session broken by HUP: $(cat "$T/sess.log")"
[ "$(grep -c 'connected (TLS' "$T/agent.log")" = 1 ] || rt_fail "HUP reconnected the uplink"
rt_ok "HUP without relay changes: open ssh session survived"

# 5. Relay restart: the agent reconnects by itself.
kill -TERM "$(rt_pid relay)"
rt_wait 15 "relay gone" rt_dead "$(rt_pid relay)" || rt_fail "relay did not stop"
rt_wait_log 15 "$T/agent.log" 'connection lost' || rt_fail "agent did not notice"
mv "$T/relay.log" "$T/relay1.log"
relay_start
ag_wait_up 2 30 || rt_fail "agent did not reconnect to the restarted relay"
out=$(op -J relay root@ssh.gw-17 'echo again' </dev/null 2>"$T/ssh-j2.err") ||
	rt_fail "ssh -J after relay restart: $(cat "$T/ssh-j2.err")"
[ "$out" = again ] || rt_fail "ssh -J after restart printed '$out'"
ag_stop
rt_pass "relay restart: agent reconnected, ssh -J works again"
