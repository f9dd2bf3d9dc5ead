#!/bin/bash
# control_basic.sh - the agent's built-in control service end to end: the
# real relay and agent, stock OpenSSH as the operator. `status` shows live
# counters (bytes through a service show up); `config show` redacts
# secrets; `config set` of an incomplete service is refused with the
# parser's file:line message and the file on disk is untouched; `config
# apply` of a file with a new service makes it reachable and keeps the old
# file as .last-good; `config set` of a limit changes the file; `logs`
# returns the ring and `logs -f` streams a line logged afterwards;
# `reload` re-reads the file.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_need ssh-keygen openssl sha256sum timeout
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"
. "$top_srcdir/tests/integration/control_lib.sh"

# a consent gate (open at start) to check that it covers the control
# service too
touch "$T/consent"
CTL_EXTRA="consent {
	mode = \"sessions\"
	file = \"$T/consent\"
	interval = \"1s\"
}"
ctl_start

# -- status: stable key: value lines with live counters
st=$(ctl_run s1 status gw-17)
[ "$st" = 0 ] || rt_fail "status: exit $st ($(cat "$T/s1.err"))"
for k in version uptime tunnel relay services sessions connects \
    channels_total bytes_to_target bytes_from_target consent rollback \
    last_event; do
	grep -q "^$k: " "$T/s1.out" || rt_fail "status lacks '$k:': $(cat "$T/s1.out")"
done
grep -qx "tunnel: up" "$T/s1.out" || rt_fail "tunnel not up: $(cat "$T/s1.out")"
b0=$(sed -n 's/^bytes_to_target: //p' "$T/s1.out")
printf 'hello through the tunnel\n' >"$T/hello"
timeout 10 ssh $SSHOPTS -i "$PKI/mallory_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" -W gw-17:7 mallory@127.0.0.1 <"$T/hello" >"$T/echo.out" \
	2>"$T/echo.err" || true
cmp -s "$T/hello" "$T/echo.out" || rt_fail "echo through the tunnel: '$(cat "$T/echo.out" "$T/echo.err")'"
ctl_run s2 status gw-17 >/dev/null
b1=$(sed -n 's/^bytes_to_target: //p' "$T/s2.out")
[ "$b1" -ge $((b0 + 25)) ] || rt_fail "bytes_to_target $b0 -> $b1"
rt_ok "status: all keys, bytes_to_target $b0 -> $b1"

# -- the control service is never reachable as a raw channel, even with a
# service grant on it (gw-17:control above): only through the exec
# commands, which check rights and audit
if timeout 10 ssh $SSHOPTS -i "$PKI/mallory_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" -W control.gw-17:1 mallory@127.0.0.1 </dev/null \
	>"$T/raw.out" 2>"$T/raw.err"; then
	rt_fail "raw channel to the control service was opened"
fi
grep -qE "administratively prohibited|stdio forwarding failed" "$T/raw.err" ||
	rt_fail "raw control channel: unexpected answer: $(cat "$T/raw.err")"
grep -q '"reason":"built-in service: use the exec commands"' "$T/audit.log" ||
	rt_fail "raw control channel: no channel_deny audit line"
rt_ok "raw channel to the control service refused and audited"

# -- a closed consent gate refuses control sessions too (polled every
# 1 s: bounded retries, 0.5 s apart)
ctl_status_until() { # WANT(0|1) : until status succeeds (1) or fails (0)
	for i in $(seq 1 30); do
		st=$(CTL_TIMEOUT=5 ctl_run gate status gw-17)
		if [ "$1" = 1 ]; then [ "$st" = 0 ] && return 0
		else [ "$st" != 0 ] && return 0; fi
		sleep 0.5
	done
	return 1
}
rm -f "$T/consent"
ctl_status_until 0 || rt_fail "status still answered with the consent gate closed"
rt_wait_log 10 "$T/agent.log" "consent gate closed" ||
	rt_fail "agent did not log the consent refusal"
touch "$T/consent"
ctl_status_until 1 || rt_fail "status still refused after the consent gate reopened"
rt_ok "closed consent gate refuses control sessions; reopened allows them"

# -- config show: secrets redacted, paths shown
st=$(ctl_run show config gw-17 show)
[ "$st" = 0 ] || rt_fail "config show: exit $st ($(cat "$T/show.err"))"
grep -q "hunter2" "$T/show.out" && rt_fail "config show leaked a secret"
grep -q 'password_file = "<redacted>"' "$T/show.out" ||
	rt_fail "no redaction marker: $(cat "$T/show.out")"
grep -q "key = \"$PKI/gw-17.key\"" "$T/show.out" ||
	rt_fail "config show lost the key path"
rt_ok "config show redacts secrets, keeps paths"

# -- config set that does not validate: parser message, nothing written
sum0=$(sha256sum <"$T/agent.conf")
st=$(ctl_run bad config gw-17 set service.web.port 9000)
[ "$st" = 1 ] || rt_fail "invalid set: exit $st, want 1"
grep -q "$T/agent.conf:[0-9]*: service web: target: required" "$T/bad.out" ||
	rt_fail "invalid set: no file:line message: $(cat "$T/bad.out" "$T/bad.err")"
[ "$(sha256sum <"$T/agent.conf")" = "$sum0" ] || rt_fail "refused set changed the file"
[ ! -e "$T/agent.conf.last-good" ] || rt_fail "refused set wrote last-good"
rt_ok "invalid set refused with file:line, nothing written"

# -- config set of a limit
st=$(ctl_run set config gw-17 set limits.max_channels 7)
[ "$st" = 0 ] || rt_fail "set: exit $st ($(cat "$T/set.out" "$T/set.err"))"
grep -q "changed: limits" "$T/set.out" || rt_fail "set: $(cat "$T/set.out")"
grep -q "max_channels = 7" "$T/agent.conf" || rt_fail "set not on disk"
rt_wait_log 10 "$T/agent.log" "reload: limits applied" || rt_fail "set not reloaded"
rt_ok "set limits.max_channels applied"

# -- logs, logs -f
st=$(ctl_run logs logs gw-17)
[ "$st" = 0 ] || rt_fail "logs: exit $st"
grep -q "info: reload: limits applied" "$T/logs.out" || rt_fail "logs lack the reload line"
relay_op mallory_ed25519 mallory logs gw-17 -f </dev/null >"$T/follow.out" 2>&1 &
fpid=$!
RT_PIDS="$RT_PIDS $fpid"
rt_wait 10 "logs -f started" grep -q "limits applied" "$T/follow.out" ||
	rt_fail "logs -f: no backlog"
kill -USR1 "$(rt_pid agent)"
rt_wait 10 "logs -f streams" grep -q "status: up" "$T/follow.out" ||
	rt_fail "logs -f did not stream a new line: $(tail -3 "$T/follow.out")"
kill "$fpid" 2>/dev/null
rt_ok "logs returns the ring, logs -f streams new lines"

# -- reload
st=$(ctl_run rl reload gw-17)
[ "$st" = 0 ] || rt_fail "reload: exit $st"
rt_wait_log 10 "$T/agent.log" "reload: no changes" || rt_fail "reload did not happen"
rt_ok "reload"

sum1=$(sha256sum <"$T/agent.conf")
# -- config apply of a broken file: parser message, nothing written
printf 'relays = {\n' | ctl_run_in badapply config gw-17 apply >"$T/st"
[ "$(cat "$T/st")" = 1 ] || rt_fail "syntax error apply: exit $(cat "$T/st")"
grep -q "$T/agent.conf:[0-9]*:" "$T/badapply.out" ||
	rt_fail "syntax error apply: $(cat "$T/badapply.out")"
[ "$(sha256sum <"$T/agent.conf")" = "$sum1" ] || rt_fail "refused apply changed the file"
rt_ok "invalid apply refused with file:line, nothing written"

# -- config apply with a new service: reachable afterwards
WEBPORT=$(rt_free_port)
rt_spawn web "$CTL_PY" "$top_srcdir/tests/tools/agent_peer.py" echo "$WEBPORT"
rt_wait 10 "web target" rt_listening "$WEBPORT" || rt_fail "web target did not start"
cp "$T/agent.conf" "$T/orig.conf"
{ cat "$T/agent.conf"; printf 'service web {\n\tport = 8080\n\ttarget = "127.0.0.1:%s"\n}\n' "$WEBPORT"; } >"$T/new.conf"
ctl_run_in apply config gw-17 apply <"$T/new.conf" >"$T/st"
[ "$(cat "$T/st")" = 0 ] || rt_fail "apply: exit $(cat "$T/st") ($(cat "$T/apply.out" "$T/apply.err"))"
grep -q "added: service web" "$T/apply.out" || rt_fail "apply did not say what changed: $(cat "$T/apply.out")"
cmp -s "$T/new.conf" "$T/agent.conf" || rt_fail "applied file differs on disk"
cmp -s "$T/orig.conf" "$T/agent.conf.last-good" || rt_fail "last-good is not the previous file"
rt_wait_log 10 "$T/relay.log" "agent gw-17: service web:8080 registered" ||
	rt_fail "new service not registered"
timeout 10 ssh $SSHOPTS -i "$PKI/mallory_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" -W gw-17:8080 mallory@127.0.0.1 <"$T/hello" >"$T/web.out" \
	2>"$T/web.err" || true
cmp -s "$T/hello" "$T/web.out" || rt_fail "new service not reachable: '$(cat "$T/web.out" "$T/web.err")'"
rt_ok "apply: new service registered and reachable; last-good kept"

ag_sanitizer_clean || rt_fail "sanitizer report in the agent log"
rt_pass
