#!/bin/bash
# telemetry_basic.sh - revtun-agent publishing through a real mosquitto
# while connected to the real revtun-relay: telemetry with the system and
# tunnel fields, a valid HMAC (python3 and openssl recipes of
# docs/mqtt.md) and an increasing seq; user metrics from a file and from a
# command; events for tunnel up and an operator session open/close; a
# signed ping answered by a pong with its nonce; an unsigned command
# refused and logged; a graceful stop publishes the offline status.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/telemetry_lib.sh"

tl_setup
printf '# site metrics\ntank_level 73.5\nsite plant-4\n' >"$T/metrics.txt"
tl_conf "" "	interval = \"2s\"
	metrics_file = \"$T/metrics.txt\"
	metrics_file_interval = \"2s\"
	metrics_command = \"echo cmd_metric 42; echo cmd_state ok\"
	metrics_command_interval = \"2s\"
	metrics_command_timeout = \"5s\""
"$RT_AGENT" -t -f "$T/agent.conf" >"$T/t.log" 2>&1 ||
	rt_fail "-t refused the config: $(cat "$T/t.log")"
ag_agent
ag_wait_up 1 || rt_fail "agent did not come up with the relay"
rt_wait_log 10 "$T/mon.log" 'revtun/gw-17/status \{"status":"online"' ||
	rt_fail "no online status"

rt_wait 15 "3 telemetry payloads" sh -c \
	"[ \$(grep -c '^revtun/gw-17/telemetry .*\"system\"' '$T/mon.log') -ge 3 ]" ||
	rt_fail "telemetry did not arrive"
n=$(tl_py telemetry 3) || rt_fail "telemetry check: $n"
grep -q '^revtun/gw-17/telemetry .*"tunnel":{"state":"up"' "$T/mon.log" ||
	rt_fail "no telemetry with the tunnel up"
rt_ok "telemetry: system + tunnel fields, HMAC valid, seq increasing ($n payloads)"

# The openssl recipe of docs/mqtt.md on one payload.
p=$(tl_py last telemetry)
u="${p:0:$((${#p} - 75))}}"
want=$(printf '%s' "$u" | openssl dgst -sha256 -mac HMAC \
	-macopt hexkey:"$(cat "$T/tm.key")" | sed 's/.*= //')
got=${p: -66:64}
[ "$want" = "$got" ] || rt_fail "openssl recipe: $want != $got"
rt_ok "openssl HMAC recipe agrees"

rt_wait 10 "file metrics" tl_py user file tank_level 73.5 ||
	rt_fail "metrics_file values not published"
tl_py user file site '"plant-4"' || rt_fail "string metric"
rt_wait 10 "command metrics" tl_py user command cmd_metric 42 ||
	rt_fail "metrics_command values not published"
rt_ok "user metrics from the file and the command"

rt_wait 10 "tunnel-up event" tl_py event tunnel-up || rt_fail "no tunnel-up event"
echo hello-telemetry | relay_op alice_ed25519 alice -W echo.gw-17:7 >"$T/op.out" ||
	rt_fail "operator session failed"
[ "$(cat "$T/op.out")" = hello-telemetry ] || rt_fail "echo: $(cat "$T/op.out")"
rt_wait 10 "session-open event" tl_py event session-open ||
	rt_fail "no session-open event"
rt_wait 10 "session-close event" tl_py event session-close ||
	rt_fail "no session-close event"
rt_ok "events: tunnel-up, session-open, session-close (signed, seq up)"

nonce=00112233445566778899aabbccddeeff
tl_cmd "$(tl_sign ping $nonce)"
rt_wait 10 "pong" tl_py event pong nonce $nonce || rt_fail "no pong"
tl_cmd '{"cmd":"ping","ts":1,"nonce":"00112233445566778899aabbccddee00"}'
rt_wait_log 10 "$T/agent.log" 'command refused: missing field hmac' ||
	rt_fail "unsigned ping not refused in the log"
rt_wait 10 "command-refused event" tl_py event command-refused ||
	rt_fail "no command-refused event"
rt_ok "signed ping -> pong with its nonce; unsigned refused and logged"

# The openssl recipe of docs/mqtt.md for commands, with and without args.
osign() {	# CMD NONCE [ARGS]
	ts=$(date +%s)
	mac=$(printf 'revtun-cmd-v1\ngw-17\n%s\n%s\n%s\n%s' "$1" "$ts" "$2" "${3:-}" |
		openssl dgst -sha256 -mac HMAC -macopt hexkey:"$(cat "$T/cmd.key")" |
		sed 's/.*= //')
	printf '{"cmd":"%s","ts":%s,"nonce":"%s"%s,"hmac":"%s"}' "$1" "$ts" "$2" \
		"${3:+,\"args\":$3}" "$mac"
}
tl_cmd "$(osign ping 0123456789abcdef0123456789abcdef)"
rt_wait 10 "pong (openssl)" tl_py event pong nonce 0123456789abcdef0123456789abcdef ||
	rt_fail "openssl-signed ping refused: $(grep 'command refused' "$T/agent.log" | tail -1)"
tl_cmd "$(osign ping fedcba9876543210fedcba9876543210 '{"note": "args are signed as sent"}')"
rt_wait 10 "pong (args)" tl_py event pong nonce fedcba9876543210fedcba9876543210 ||
	rt_fail "openssl-signed ping with args refused: $(grep 'command refused' "$T/agent.log" | tail -1)"
rt_ok "openssl command recipe (with and without args) accepted"

# Reload with a changed telemetry section: config-change event, the
# client restarts gracefully (offline, online), seq keeps increasing.
s0=$(tl_py maxseq telemetry)
sed -i 's/^\tinterval = "2s"/\tinterval = "3s"/' "$T/agent.conf"
kill -HUP "$(rt_pid agent)"
rt_wait 10 "config-change event" tl_py event config-change reason 'reload: telemetry' ||
	rt_fail "no config-change event after HUP"
rt_wait 10 "online again" sh -c "[ \$(grep -c 'revtun/gw-17/status {\"status\":\"online\"' '$T/mon.log') -ge 2 ]" ||
	rt_fail "client not restarted after the reload"
rt_wait 10 "telemetry after reload" sh -c "[ \$(python3 '$T/tl.py' maxseq '$T/mon.log' '$T/tm.key' telemetry) -gt $s0 ]" ||
	rt_fail "no telemetry after the reload"
n=$(tl_py telemetry 3) || rt_fail "telemetry check after reload: $n"
rt_ok "reload: config-change event, client restarted, seq continues"

kill -USR1 "$(rt_pid agent)"
rt_wait_log 5 "$T/agent.log" 'status: mqtt up' || rt_fail "USR1 has no mqtt line"
ag_stop
rt_wait_log 10 "$T/mon.log" 'revtun/gw-17/status \{"status":"offline","agent":"gw-17"\}$' ||
	rt_fail "no offline status on TERM"
grep -q '"will":true' "$T/mon.log" && rt_fail "the will fired on a graceful stop"
rt_ok "graceful stop: offline status, no will"
rt_pass
