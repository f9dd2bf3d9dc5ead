#!/bin/bash
# control_shell.sh - the agent's built-in shell service end to end: `ssh
# -tt relay shell gw-17` runs a PTY shell on the agent's host as
# shell.user; the PTY has the operator's window size (stty size), follows
# a window change, and the shell's exit status becomes ssh's; closing the
# operator's side kills the shell (no process left).
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_need ssh-keygen openssl timeout
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"
. "$top_srcdir/tests/integration/control_lib.sh"

ctl_start

# A python pty driver: runs ssh -tt on a PTY of 100x30, types commands,
# resizes to 120x40 (SIGWINCH to ssh) and prints everything ssh printed.
cat >"$T/drive.py" <<'PY'
import fcntl, os, pty, select, signal, struct, sys, termios, time
argv = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
def setsize(cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.kill(pid, signal.SIGWINCH)
setsize(100, 30)
out = b""
def pump(secs, until=None):
    global out
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return False
            if not d:
                return False
            out += d
            if until and until in out:
                return True
    return None
pump(1.5)  # let the login shell print its prompt
os.write(fd, b"echo SIZE1=$(stty size)\r")
pump(10, b"SIZE1=30 100")
setsize(120, 40)
time.sleep(0.5)
os.write(fd, b"echo SIZE2=$(stty size)\r")
pump(10, b"SIZE2=40 120")
os.write(fd, b"echo PID=$$; exit 3\r")
pump(10)
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
print("\nSSH_EXIT=%d" % os.waitstatus_to_exitcode(st))
PY
timeout 40 "$CTL_PY" "$T/drive.py" ssh $SSHOPTS -tt -i "$PKI/mallory_ed25519" \
	-o IdentitiesOnly=yes -p "$RPORT" mallory@127.0.0.1 shell gw-17 \
	>"$T/shell.out" 2>&1 || rt_fail "pty driver failed: $(tail -5 "$T/shell.out")"
# drop CRs and terminal escapes (bracketed paste mode and the like)
tr -d '\r' <"$T/shell.out" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' >"$T/shell.txt"
grep -q "^SIZE1=30 100" "$T/shell.txt" || rt_fail "initial size not 30x100: $(cat "$T/shell.txt")"
grep -q "^SIZE2=40 120" "$T/shell.txt" || rt_fail "resize not followed: $(cat "$T/shell.txt")"
grep -q "^SSH_EXIT=3" "$T/shell.txt" || rt_fail "exit status not 3: $(tail -3 "$T/shell.txt")"
spid=$(sed -n 's/^PID=\([0-9]*\).*/\1/p' "$T/shell.txt" | head -1)
[ -n "$spid" ] || rt_fail "no shell pid"
rt_wait 5 "shell $spid gone" rt_dead "$spid" || rt_fail "shell $spid still there"
rt_wait_log 5 "$T/agent.log" "shell pid $spid: exited with status 3" ||
	rt_fail "agent did not reap the shell"
rt_ok "shell: size 30x100, resize to 40x120, exit status 3, reaped"

# Operator goes away while the shell runs: the shell is hung up.
timeout 30 "$CTL_PY" - ssh $SSHOPTS -tt -i "$PKI/mallory_ed25519" \
	-o IdentitiesOnly=yes -p "$RPORT" mallory@127.0.0.1 shell gw-17 \
	>"$T/shell2.out" 2>&1 <<'PY'
import os, pty, select, signal, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
os.write(fd, b"echo PID=$$; sleep 600\r")
out = b""
end = time.time() + 10
while time.time() < end and b"PID=" not in out.replace(b"echo PID", b""):
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        out += os.read(fd, 4096)
time.sleep(0.5)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
PY
spid=$(tr -d '\r' <"$T/shell2.out" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | sed -n 's/^PID=\([0-9]*\).*/\1/p' | head -1)
[ -n "$spid" ] || rt_fail "no pid from the second shell: $(cat "$T/shell2.out")"
rt_wait 10 "shell $spid hung up" rt_dead "$spid" ||
	rt_fail "shell $spid survived the operator"
rt_ok "operator gone: shell $spid hung up"

# shell.user another account: the agent (root here) prepares the groups
# in the parent and the child only calls setgroups/setgid/setuid and
# execve (the agent has resolver threads: no NSS after fork).
# nobody's login shell is nologin (which does run, as nobody, and says
# "This account is currently not available"): shell.command gives a sh.
st=$(ctl_run shuser config gw-17 set shell.user nobody)
[ "$st" = 0 ] || rt_fail "config set shell.user nobody: exit $st: $(cat "$T/shuser.err" "$T/shuser.out")"
st=$(ctl_run shcmd config gw-17 set shell.command /bin/sh)
[ "$st" = 0 ] || rt_fail "config set shell.command: exit $st: $(cat "$T/shcmd.err" "$T/shcmd.out")"
timeout 30 "$CTL_PY" - ssh $SSHOPTS -tt -i "$PKI/mallory_ed25519" \
	-o IdentitiesOnly=yes -p "$RPORT" mallory@127.0.0.1 shell gw-17 \
	>"$T/shell3.out" 2>&1 <<'PY'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
os.write(fd, b"echo WHO=$(id -u):$(id -g):$(id -G | tr ' ' ,):$HOME:$USER; exit 5\r")
out = b""
end = time.time() + 15
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
_, st = os.waitpid(pid, 0)
sys.stdout.buffer.write(out + b"\nSSH_EXIT=%d\n" % os.waitstatus_to_exitcode(st))
PY
want="WHO=$(id -u nobody):$(id -g nobody):$(id -G nobody | tr ' ' ,):$(getent passwd nobody | cut -d: -f6):nobody"
tr -d '\r' <"$T/shell3.out" | grep -qF "$want" ||
	rt_fail "shell as nobody: want '$want', got: $(tr -d '\r' <"$T/shell3.out" | grep WHO= | tail -1)"
tr -d '\r' <"$T/shell3.out" | grep -q "^SSH_EXIT=5" || rt_fail "shell as nobody: exit status not 5"
rt_ok "shell.user nobody: ${want#WHO=} (uid:gid:groups:home:user), exit status 5"

# shell.enable = false refuses (config set, the same path as apply).
st=$(ctl_run off config gw-17 set shell.enable false)
[ "$st" = 1 ] || rt_fail "disabling shell with service shell configured: exit $st"
grep -q "shell.enable is false" "$T/off.out" || rt_fail "no reason: $(cat "$T/off.out")"
rt_ok "service shell without shell.enable refused"

ag_sanitizer_clean || rt_fail "sanitizer report in the agent log"
rt_pass
