#!/bin/bash
# relay_ctl.sh - exec commands answered by an agent's control / shell
# service, against a stand-in agent (tests/tools/ctl_agent.py, paramiko
# over TLS): output and exit status pass through; 1 MiB of stdin reaches
# the agent intact (sha256) and the config audit names its size and hash;
# a read-only operator runs status but is refused config apply and logs,
# with exec / exec_deny audit lines; an unknown agent and a forbidden one
# get byte-identical answers; bad syntax is exit 2 with usage; an agent
# without a control service is named; an agent that closes early or sends
# garbage gives 255; secrets of config set stay out of the audit; 3 MiB
# of output through a slow reader arrives whole; `ssh -t shell` carries
# the PTY size, a window change and exit status 3; `logs -f` ends when
# the operator leaves; the agent's events arrive on the relay's events
# channel and are audited (agent_event) and acked, a malformed one acked
# but not audited, an agent without the channel not asked again; an
# agent going away ends a command with 255.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"

# the distribution's python3 has python3-paramiko; a python3 earlier in
# PATH (pyenv) may not
CTL_PY=
for py in python3 /usr/bin/python3; do
	"$py" -c 'import paramiko' 2>/dev/null && { CTL_PY=$py; break; }
done
[ -n "$CTL_PY" ] ||
	rt_fail "python3-paramiko not installed (scripts/check installs it)"

relay_write_conf "$T/relay.conf"
cat >>"$T/relay.conf" <<CONF
operator mallory {
	keys = {"$(relay_key_line mallory_ed25519)"}
	rights = {"gw-17:read", "gw-17:write", "gw-17:logs", "gw-17:shell",
		"gw-18:read", "gw-19:read"}
}
CONF
relay_start

CTL_AGENT="$top_srcdir/tests/tools/ctl_agent.py"
rt_spawn agent17 "$CTL_PY" "$CTL_AGENT" --port "$RPORT" --pki "$PKI" \
	--id gw-17 --ready "$T/gw-17.ready" --log "$T/agent17.paramiko" \
	--event '{"event":"config_rollback","reason":"relay unreachable","t":12}' \
	--event '{"bad json'
rt_spawn agent18 "$CTL_PY" "$CTL_AGENT" --port "$RPORT" --pki "$PKI" \
	--id gw-18 --ready "$T/gw-18.ready" --no-control --no-shell
rt_wait 20 "gw-17 up" test -s "$T/gw-17.ready" || rt_fail "gw-17 did not start"
rt_wait 20 "gw-18 up" test -s "$T/gw-18.ready" || rt_fail "gw-18 did not start"
rt_wait_log 10 "$T/relay.log" "agent gw-17: service shell:2 registered" ||
	rt_fail "gw-17 services not registered"

# run OUT USER KEY command... : stdout to $T/OUT.out, stderr to
# $T/OUT.err, exit status echoed
run() {
	out=$1 user=$2; shift 2
	relay_op "${user}_ed25519" "$user" "$@" >"$T/$out.out" \
		2>"$T/$out.err" </dev/null
	echo $?
}

# -- status: output and exit status through, for a read-only operator too
st=$(run s1 mallory status gw-17)
[ "$st" = 0 ] || rt_fail "status: exit $st ($(cat "$T/s1.err"))"
grep -qx "status of gw-17 for mallory: ok" "$T/s1.out" ||
	rt_fail "status output: $(cat "$T/s1.out")"
grep -qx "mallory|status" "$T/gw-17.ready.reqs" ||
	rt_fail "agent did not get OPERATOR\\0status"
st=$(run s2 alice status gw-17)
[ "$st" = 0 ] || rt_fail "read-only status: exit $st"
relay_audit_has exec 'd["operator"] == "alice" and d["agent"] == "gw-17" and d["command"] == "status gw-17" and "gw-17:read" in d["rule"]' ||
	rt_fail "no exec audit line for alice status"
rt_ok "status passes output and exit status, audited with the rule"

# -- read-only operator: config apply / logs refused, same as unknown
st=$(printf 'x = 1\n' | relay_op alice_ed25519 alice config gw-17 apply \
	>"$T/a1.out" 2>"$T/a1.err"; echo $?)
[ "$st" = 1 ] || rt_fail "read-only config apply: exit $st, want 1"
[ ! -s "$T/a1.out" ] || rt_fail "refused apply wrote to stdout"
grep -q "config apply" "$T/gw-17.ready.reqs" &&
	rt_fail "a refused apply reached the agent"
relay_audit_has exec_deny 'd["operator"] == "alice" and d["command"] == "config gw-17 apply" and d["rule"] == "default deny"' ||
	rt_fail "no exec_deny audit for alice config apply"
st2=$(run a2 alice config gw-99 apply)
[ "$st2" = "$st" ] || rt_fail "unknown agent: exit $st2, forbidden: $st"
cmp -s "$T/a1.err" "$T/a2.err" ||
	rt_fail "unknown and forbidden differ: '$(cat "$T/a1.err")' vs '$(cat "$T/a2.err")'"
st3=$(run a3 alice status gw-18)
cmp -s "$T/a1.err" "$T/a3.err" && [ "$st3" = 1 ] ||
	rt_fail "online forbidden agent answered differently: $st3 '$(cat "$T/a3.err")'"
st=$(run a6 mallory status gw-19)
[ "$st" = 1 ] && cmp -s "$T/a1.err" "$T/a6.err" ||
	rt_fail "permitted but offline agent answered differently: $st"
relay_audit_has exec_deny 'd["agent"] == "gw-19" and d["reason"] == "no such agent"' ||
	rt_fail "offline agent: no exec_deny"
st=$(run a4 alice logs gw-17)
[ "$st" = 1 ] && cmp -s "$T/a1.err" "$T/a4.err" ||
	rt_fail "read-only logs: exit $st '$(cat "$T/a4.err")'"
st=$(run a5 bob reload gw-17)
[ "$st" = 1 ] && cmp -s "$T/a1.err" "$T/a5.err" ||
	rt_fail "bob reload: exit $st"
rt_ok "read-only apply/logs refused; unknown == offline == forbidden ($(cat "$T/a1.err"))"

# -- strict parsing: usage on stderr, exit 2, nothing sent
for cmd in "status" "status gw-17 extra" "config gw-17" "config gw-17 frob" \
	"config gw-17 set onlykey" "logs gw-17 -x" "shell" "reload a b"; do
	st=$(run u mallory $cmd)
	[ "$st" = 2 ] || rt_fail "'$cmd': exit $st, want 2"
	grep -q "^usage: " "$T/u.err" || rt_fail "'$cmd': no usage: $(cat "$T/u.err")"
done
relay_audit_has exec_deny 'd["reason"] == "usage" and d["command"] == "config gw-17 frob"' ||
	rt_fail "usage error not audited"
rt_ok "bad syntax: usage, exit 2"

# -- no control service
st=$(run n1 mallory status gw-18)
[ "$st" = 1 ] || rt_fail "no control service: exit $st"
grep -qx "revtun: gw-18 has no control service enabled" "$T/n1.err" ||
	rt_fail "no control service: '$(cat "$T/n1.err")'"
rt_ok "agent without a control service named"

# -- 1 MiB config apply: stdin intact, audit with size and hash
head -c 1048576 /dev/urandom >"$T/big.conf"
want=$(sha256sum <"$T/big.conf" | cut -d' ' -f1)
st=$(relay_op mallory_ed25519 mallory config gw-17 apply <"$T/big.conf" \
	>"$T/ap.out" 2>"$T/ap.err"; echo $?)
[ "$st" = 0 ] || rt_fail "apply: exit $st ($(cat "$T/ap.err"))"
grep -qx "applied 1048576 bytes sha256 $want" "$T/ap.out" ||
	rt_fail "apply: agent saw '$(cat "$T/ap.out")', want sha256 $want"
relay_audit_has config "d[\"operator\"] == \"mallory\" and d[\"agent\"] == \"gw-17\" and d[\"bytes\"] == 1048576 and d[\"sha256\"] == \"$want\" and d[\"exit_status\"] == 0" ||
	rt_fail "no config audit with size and sha256 for the apply"
# a small file travels in the same packets as the exec request: it must
# be kept until the command is known, not dropped
printf 'x = 1\n' >"$T/small.conf"
want=$(sha256sum <"$T/small.conf" | cut -d' ' -f1)
st=$(relay_op mallory_ed25519 mallory config gw-17 apply <"$T/small.conf" \
	>"$T/ap2.out" 2>"$T/ap2.err"; echo $?)
[ "$st" = 0 ] && grep -qx "applied 6 bytes sha256 $want" "$T/ap2.out" ||
	rt_fail "small apply: exit $st '$(cat "$T/ap2.out" "$T/ap2.err")'"
st=$(run sh1 mallory config gw-17 show)
[ "$st" = 0 ] && grep -qx 'id = "gw-17"' "$T/sh1.out" ||
	rt_fail "config show: exit $st"
rt_ok "1 MiB apply intact (sha256), audited with size and hash"

# -- config set: result and failure through, secrets not logged
st=$(run c1 mallory config gw-17 set mqtt.keepalive 30 s)
[ "$st" = 0 ] && grep -qx "set mqtt.keepalive = 30 s" "$T/c1.out" ||
	rt_fail "config set: exit $st '$(cat "$T/c1.out")'"
relay_audit_has config 'd["change"] == "set mqtt.keepalive = 30 s" and d["exit_status"] == 0' ||
	rt_fail "no config audit for set"
st=$(run c2 mallory config gw-17 set mqtt.password hunter2)
[ "$st" = 0 ] || rt_fail "config set password: exit $st"
grep -q hunter2 "$T/audit.log" && rt_fail "secret value in the audit log"
grep -q hunter2 "$T/relay.log" && rt_fail "secret value in the relay log"
relay_audit_has config 'd["change"] == "set mqtt.password (value not logged)"' ||
	rt_fail "no redacted config audit for the password"
st=$(run c3 mallory config gw-17 set bad.option 1)
[ "$st" = 1 ] && grep -qx "unknown key bad.option" "$T/c3.out" ||
	rt_fail "agent failure: exit $st '$(cat "$T/c3.out")'"
relay_audit_has config 'd["change"] == "set bad.option = 1" and d["exit_status"] == 1' ||
	rt_fail "refused set not audited with its status"
rt_ok "config set: output, exit 1 from the agent, secret kept out of logs"

# -- protocol errors and early close: 255 and one line
st=$(run e1 mallory config gw-17 set close.early 1)
[ "$st" = 255 ] || rt_fail "early close: exit $st"
grep -q "closed the control channel before the command finished" "$T/e1.err" ||
	rt_fail "early close: '$(cat "$T/e1.err")'"
grep -qx partial "$T/e1.out" || rt_fail "output before the early close lost"
st=$(run e2 mallory config gw-17 set garbage 1)
[ "$st" = 255 ] && grep -q "protocol error" "$T/e2.err" ||
	rt_fail "garbage frame: exit $st '$(cat "$T/e2.err")'"
[ "$(wc -l <"$T/e2.err")" = 1 ] || rt_fail "more than one line on stderr"
rt_ok "early close and bad frame: exit 255 with one line"

# -- 3 MiB of output through a reader that is slow at first
relay_op mallory_ed25519 mallory config gw-17 set big 1 </dev/null 2>"$T/b.err" |
	python3 -c '
import hashlib, sys, time
time.sleep(2)
d = sys.stdin.buffer.read()
blob, tail = d[:3 * 1024 * 1024], d[3 * 1024 * 1024:]
ok = tail == b"\nsha256 " + hashlib.sha256(blob).hexdigest().encode() + b"\n"
sys.exit(0 if ok else 1)' || rt_fail "3 MiB output damaged ($(cat "$T/b.err"))"
rt_ok "3 MiB output through a slow reader intact"

# -- logs, logs -f ended by the operator, reload
st=$(run l1 mallory logs gw-17)
[ "$st" = 0 ] && [ "$(wc -l <"$T/l1.out")" = 3 ] || rt_fail "logs: exit $st"
rt_spawn follow ssh $SSHOPTS -i "$PKI/mallory_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" mallory@127.0.0.1 logs gw-17 -f
rt_wait 10 "logs -f output" grep -q "follow 3" "$T/follow.log" ||
	rt_fail "logs -f did not stream"
kill "$(rt_pid follow)"
rt_wait_log 10 "$T/relay.log" '"logs gw-17 -f" on gw-17 ended by the operator' ||
	rt_fail "logs -f not ended when the operator left"
st=$(run r1 mallory reload gw-17)
[ "$st" = 0 ] && grep -qx reloading "$T/r1.out" || rt_fail "reload: exit $st"
relay_audit_has config 'd["change"] == "reload" and d["operator"] == "mallory"' ||
	rt_fail "reload not audited as a config change"
rt_ok "logs, logs -f (ended by the operator), reload"

# -- shell with a PTY: size, window change, exit status 3
python3 - "$PKI/mallory_ed25519" "$RPORT" >"$T/sh.out" 2>&1 <<'PY' ||
import fcntl, os, pty, select, struct, sys, termios, time
key, port = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    os.execvp("ssh", ["ssh", "-t", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
        "-o", "LogLevel=ERROR", "-i", key, "-o", "IdentitiesOnly=yes",
        "-p", port, "mallory@127.0.0.1", "shell", "gw-17"])
out = b""
def until(what, secs=10):
    global out
    end = time.time() + secs
    while what not in out and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return what in out
ok = until(b"pty 100x40 ")
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
ok = ok and until(b"winch 120x50")
os.write(fd, b"hello\r")
ok = ok and until(b"hello")
os.write(fd, b"exit\r")
until(b"\0", 3)
_, status = os.waitpid(pid, 0)
print(out.decode(errors="replace"))
print("exit", os.WEXITSTATUS(status))
sys.exit(0 if ok and os.WEXITSTATUS(status) == 3 else 1)
PY
	rt_fail "shell: $(cat "$T/sh.out")"
relay_audit_has exec 'd["command"] == "shell gw-17" and d["operator"] == "mallory"' ||
	rt_fail "shell not audited"
rt_ok "ssh -t shell: PTY size and window change through, exit status 3"

# -- agent events over the relay's events channel: audited, then acked; a
# malformed one is acked but not audited
rt_wait 15 "agent_event id 1" relay_audit_has agent_event \
	'd["agent"] == "gw-17" and d["detail"].startswith("{\"id\":1,\"event\":\"config_rollback\"")' ||
	rt_fail "no agent_event for gw-17: $(grep agent_event "$T/audit.log")"
rt_wait 10 "acks 1 and 2" grep -qx "ack 2" "$T/gw-17.ready.acks" ||
	rt_fail "acks: $(cat "$T/gw-17.ready.acks" 2>/dev/null)"
grep -qx "ack 1" "$T/gw-17.ready.acks" || rt_fail "no ack 1"
grep -qx "relay|events" "$T/gw-17.ready.reqs" ||
	rt_fail "the relay's events request: $(cat "$T/gw-17.ready.reqs")"
relay_audit_has agent_event '"bad json" in d["detail"]' &&
	rt_fail "a malformed event was audited"
grep -q "agent gw-17: event refused: not one printable JSON object" "$T/relay.log" ||
	rt_fail "malformed event not logged"
[ "$(grep -c '"agent_event"' "$T/audit.log")" = 1 ] ||
	rt_fail "agent_event lines: $(grep agent_event "$T/audit.log")"
rt_alive "$(rt_pid agent17)" || rt_fail "the events channel dropped the agent session"
rt_ok "agent events: audited once, acked; a malformed one acked, not audited"

# -- the agent going away ends a running command with 255
rt_spawn follow2 ssh $SSHOPTS -i "$PKI/mallory_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" mallory@127.0.0.1 logs gw-17 -f
rt_wait 10 "logs -f output" grep -q "follow 2" "$T/follow2.log" ||
	rt_fail "second logs -f did not stream"
kill "$(rt_pid agent17)"
rt_wait 15 "operator ssh to end" rt_dead "$(rt_pid follow2)" ||
	rt_fail "command not ended when the agent went away"
wait "$(rt_pid follow2)"; st=$?
[ "$st" = 255 ] || rt_fail "agent gone: exit $st"
grep -q "gw-17 disconnected\|closed the control channel" "$T/follow2.log" ||
	rt_fail "agent gone: $(tail -n 2 "$T/follow2.log")"
rt_alive "$(rt_pid relay)" || rt_fail "relay died"
rt_ok "agent gone: running command ends with 255"

# -- a graceful stop with a command running: exit 0, no sanitizer report
rm -f "$T/gw-17.ready"
rt_spawn agent17b "$CTL_PY" "$CTL_AGENT" --port "$RPORT" --pki "$PKI" \
	--id gw-17 --ready "$T/gw-17.ready" --log "$T/agent17b.paramiko"
rt_wait 20 "gw-17 back" test -s "$T/gw-17.ready" || rt_fail "gw-17 did not return"
# this one answers "events" as an unknown command: not asked again
rt_wait 10 "events channel given up" grep -q \
	"agent gw-17: events channel: the agent does not deliver events" "$T/relay.log" ||
	rt_fail "relay did not give up the events channel of an agent without it"
rt_spawn follow3 ssh $SSHOPTS -i "$PKI/mallory_ed25519" -o IdentitiesOnly=yes \
	-p "$RPORT" mallory@127.0.0.1 logs gw-17 -f
rt_wait 10 "logs -f output" grep -q "follow 2" "$T/follow3.log" ||
	rt_fail "third logs -f did not stream"
rt_stop relay 15 >"$T/relay.exit"
[ "$(cat "$T/relay.exit")" = 0 ] ||
	rt_fail "relay stop with a command running: exit '$(cat "$T/relay.exit")'"
grep -qE "Sanitizer|runtime error" "$T/relay.log" &&
	rt_fail "sanitizer report in relay.log"
rt_pass
