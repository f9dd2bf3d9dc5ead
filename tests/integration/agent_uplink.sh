#!/bin/bash
# agent_uplink.sh - how the agent reaches its relay: failover past a dead
# relay to the next in the list; TLS host-name verification (a wrong
# server_name never comes up); SSH host key pin (wrong pin refused, the
# right one accepted after a HUP); an HTTP CONNECT proxy.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
ag_need_fakerelay
ag_setup
ag_fakerelay relay
DEAD_PORT=$(rt_free_port)

# 1. Failover: the first relay refuses connections, the second works.
ag_conf "$T/agent.conf"
sed -i "s/^relays = .*/relays = {\"127.0.0.1:$DEAD_PORT\", \"127.0.0.1:$RELAY_PORT\"}/" "$T/agent.conf"
ag_agent
ag_wait_up 1 || rt_fail "agent did not fail over to the second relay"
grep -q "relay 127.0.0.1:$DEAD_PORT: .*refused" "$T/agent.log" ||
	rt_fail "failure of the first relay not logged with its address"
grep -q "relay 127.0.0.1:$RELAY_PORT: connected" "$T/agent.log" ||
	rt_fail "not connected to the second relay"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 2 1000 10 || rt_fail "session broken"
rt_ok "failover to the second relay"

# 2. Wrong TLS server name: verification fails, the agent keeps retrying.
ag_conf "$T/agent.conf"
sed -i 's/^tls {/tls {\n\tserver_name = "wrong.example"/' "$T/agent.conf"
kill -HUP "$(rt_pid agent)"
rt_wait_log 15 "$T/agent.log" "relay 127.0.0.1:$RELAY_PORT: TLS handshake: relay certificate refused" ||
	rt_fail "a certificate for another name was not refused"
rt_alive "$(rt_pid agent)" || rt_fail "agent exited on a TLS failure"
n=$(grep -c 'up with' "$T/agent.log")
rt_ok "wrong server_name refused"

# 3. Wrong SSH host key pin refused; the right one accepted.
FP=$(ssh-keygen -lf "$PKI/ssh_host_ed25519_key.pub" | awk '{print $2}')
ag_conf "$T/agent.conf"
sed -i 's/^ssh {/ssh {\n\thost_key_fingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"/' "$T/agent.conf"
kill -HUP "$(rt_pid agent)"
rt_wait_log 15 "$T/agent.log" 'does not match the pinned' ||
	rt_fail "wrong host key pin not refused"
[ "$(grep -c 'up with' "$T/agent.log")" = "$n" ] || rt_fail "came up despite a wrong pin"
ag_conf "$T/agent.conf"
sed -i "s|^ssh {|ssh {\n\thost_key_fingerprint = \"$FP\"|" "$T/agent.conf"
kill -HUP "$(rt_pid agent)"
ag_wait_up $((n + 1)) 20 || rt_fail "right host key pin not accepted"
rt_ok "host key pin: wrong refused, $FP accepted"

# 4. Through an HTTP CONNECT proxy.
PROXY_PORT=$(rt_free_port)
rt_spawn proxy "$AG_PY" "$AG_TOOLS/agent_peer.py" proxy "$PROXY_PORT" "$T/proxy.reqs"
rt_wait 10 "proxy" rt_listening "$PROXY_PORT" || rt_fail "proxy did not start"
ag_conf "$T/agent.conf" "proxy {
	host = \"127.0.0.1\"
	port = $PROXY_PORT
}"
kill -HUP "$(rt_pid agent)"
ag_wait_up $((n + 2)) 20 || rt_fail "agent did not come up through the proxy"
grep -q "^CONNECT 127.0.0.1:$RELAY_PORT HTTP/1.1" "$T/proxy.reqs" ||
	rt_fail "no CONNECT seen by the proxy"
"$AG_PY" "$AG_TOOLS/agent_peer.py" bulk "$OP_PORT" 2 100000 10 ||
	rt_fail "session through the proxy broken"
ag_no_listen "$(rt_pid agent)" || rt_fail "agent owns a listening socket"
ag_stop
rt_pass "HTTP CONNECT proxy"
