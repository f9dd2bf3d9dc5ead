#!/bin/bash
# fault_ssh_ops.sh - what an operator's SSH client can ask the relay for
# beyond the normal path (FAULTS.md O5, O6, O8, S3), with a paramiko
# client so each request can be made on its own:
#
# O8  weak algorithms: a client offering only diffie-hellman-group1-sha1,
#     group14-sha1, group-exchange-sha1, only CBC ciphers, only MD5 /
#     truncated MACs or only ssh-rsa / ssh-dss host keys gets no
#     connection (no algorithm in common).
# S3  an unknown global request with want_reply gets REQUEST_FAILURE and
#     the connection keeps working; a malformed tcpip-forward (no port)
#     is refused or ends that connection, never the relay.
# O5  a shell (with or without a pty-req first), X11 forwarding, the sftp
#     subsystem and an arbitrary exec on the relay are refused (the relay
#     is jump-only; pty-req alone may be granted for `ssh -t relay shell
#     AGENT`, whose PTY is on the agent); the same connection still opens
#     a direct-tcpip channel afterwards.
# O6  operator_idle_timeout (1 s, set by a HUP): an operator connection with no
#     channel traffic is closed after about that long; one that keeps
#     sending is not.
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"
PY=/usr/bin/python3
$PY -c "import paramiko" 2>/dev/null ||
	rt_fail "python3-paramiko missing (apt-get install python3-paramiko; scripts/deps.sh)"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"

relay_write_conf "$T/relay.conf"
relay_echo_start
relay_start
relay_agent agent gw-17 -R "echo:7:127.0.0.1:$ECHOPORT"
rt_wait_log 20 "$T/relay.log" "agent gw-17: service echo:7 registered" ||
	rt_fail "stand-in agent did not register"

cat >"$T/ops.py" <<'PY'
# ops.py PORT KEY CASE : one operator-side case against the relay; prints
# one line, exit 0 when the relay behaved as required.
import socket, sys, time
import paramiko
port, key, case = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pkey = paramiko.Ed25519Key.from_private_key_file(key)

def connect(**restrict):
    t = paramiko.Transport(socket.create_connection(("127.0.0.1", port), timeout=10))
    so = t.get_security_options()
    for k, v in restrict.items():
        setattr(so, k, v)
    t.start_client(timeout=10)
    t.auth_publickey("alice", pkey)
    return t

def echo_ok(t):
    ch = t.open_channel("direct-tcpip", ("echo.gw-17", 7), ("127.0.0.1", 1), timeout=10)
    ch.settimeout(10); ch.sendall(b"ping\n")
    got = b""
    while len(got) < 5:
        d = ch.recv(16)
        if not d:
            break
        got += d
    ch.close()
    return got == b"ping\n"

if case.startswith("weak-"):
    kind, alg = case[5:].split(":", 1)
    try:
        t = connect(**{kind: (alg,)})
    except Exception as e:          # SSHException / EOFError / reset
        print("%s %s refused: %s" % (kind, alg, str(e)[:80] or type(e).__name__)); sys.exit(0)
    print("%s %s ACCEPTED" % (kind, alg)); t.close(); sys.exit(1)

t = connect()
if case == "global":
    r = t.global_request("bogus@example.com", wait=True)
    if r is not None:
        print("unknown global request answered with success"); sys.exit(1)
    if not t.is_active() or not echo_ok(t):
        print("connection broken after an unknown global request"); sys.exit(1)
    print("bogus@example.com: REQUEST_FAILURE, connection still works")
elif case == "malformed":
    # tcpip-forward without its port: a truncated payload
    try:
        r = t.global_request("tcpip-forward", data=("0.0.0.0",), wait=True)
    except Exception as e:
        r = None
    if r is not None:
        print("malformed tcpip-forward answered with success"); sys.exit(1)
    print("malformed tcpip-forward: %s" % ("refused, connection up" if t.is_active() else "connection closed"))
elif case == "session":
    res = []
    for what in ("shell", "pty", "x11", "agent", "sftp", "env"):  # "pty" = pty-req + shell
        ch = t.open_session(timeout=10)
        try:
            if what == "shell": ch.invoke_shell()
            elif what == "pty":
                # pty-req itself may be granted: `ssh -t relay shell AGENT`
                # needs it (the PTY lives on the agent); a shell on the
                # relay after it must not be
                try:
                    ch.get_pty()
                except paramiko.SSHException:
                    pass
                ch.invoke_shell()
            elif what == "x11": ch.request_x11(single_connection=True)
            elif what == "agent":
                # ssh -A sends auth-agent-req@openssh.com without asking
                # for a reply; ask for one, so the refusal shows
                m = paramiko.Message()
                m.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
                m.add_int(ch.remote_chanid)
                m.add_string("auth-agent-req@openssh.com")
                m.add_boolean(True)
                ch._event_pending()
                t._send_user_message(m)
                ch._wait_for_event()
            elif what == "sftp": ch.invoke_subsystem("sftp")
            elif what == "env": ch.exec_command("/bin/sh -c id")
            ok = True
        except paramiko.SSHException:
            ok = False
        if what == "env" and ok:   # an arbitrary command: must fail or say so
            ch.settimeout(10)
            out = b""
            try:
                while True:
                    d = ch.recv(4096)
                    if not d: break
                    out += d
            except socket.timeout:
                pass
            ok = b"uid=" in out
        res.append((what, ok))
        ch.close()
    bad = [w for w, ok in res if ok]
    if bad:
        print("relay granted: %s" % ", ".join(bad)); sys.exit(1)
    if not echo_ok(t):
        print("direct-tcpip broken after the refused requests"); sys.exit(1)
    print("refused: %s; direct-tcpip still works" % ", ".join(w for w, _ in res))
elif case == "idle":
    t0 = time.monotonic()
    while t.is_active() and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    took = time.monotonic() - t0
    if t.is_active():
        print("idle connection still open after 10 s"); sys.exit(1)
    print("idle connection closed after %.1f s" % took)
    sys.exit(0 if took < 4 else 1)
elif case == "busy":
    ch = t.open_channel("direct-tcpip", ("echo.gw-17", 7), ("127.0.0.1", 1), timeout=10)
    ch.settimeout(5)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:
        ch.sendall(b"x"); ch.recv(1); time.sleep(0.3)
    if not t.is_active():
        print("busy connection closed"); sys.exit(1)
    print("busy connection kept for 3 s")
t.close()
PY
ops() { $PY "$T/ops.py" "$RPORT" "$PKI/alice_ed25519" "$1" >"$T/ops-$1.out" 2>&1; }

# O8: weak algorithms, one kind at a time.
for c in kex:diffie-hellman-group1-sha1 kex:diffie-hellman-group14-sha1 \
	kex:diffie-hellman-group-exchange-sha1 ciphers:aes128-cbc ciphers:aes256-cbc \
	ciphers:3des-cbc digests:hmac-md5 digests:hmac-md5-96 digests:hmac-sha1-96 \
	key_types:ssh-rsa key_types:ssh-dss; do
	ops "weak-$c" || rt_fail "weak algorithm: $(cat "$T/ops-weak-$c.out" | tail -2)"
done
rt_ok "weak kex (group1/group14/gex with SHA-1), CBC ciphers, MD5/truncated MACs, ssh-rsa/ssh-dss host keys: no connection"
ops weak-digests:hmac-sha1 && rt_log "note: hmac-sha1 alone is refused" ||
	rt_log "note: hmac-sha1 alone is accepted (as by OpenSSH's defaults)"

# S3
ops global || rt_fail "$(cat "$T/ops-global.out")"
rt_ok "$(cat "$T/ops-global.out")"
ops malformed || rt_fail "$(cat "$T/ops-malformed.out")"
rt_ok "$(tail -1 "$T/ops-malformed.out")"

# O5
ops session || rt_fail "$(tail -3 "$T/ops-session.out")"
rt_ok "$(tail -1 "$T/ops-session.out")"

# O6: turned on by a reload only now, so that it cannot race the cases
# above on a slow machine
RELAY_LIMITS_EXTRA='	operator_idle_timeout = "1s"' relay_write_conf "$T/relay.conf"
kill -HUP "$(rt_pid relay)"
rt_wait_log 10 "$T/relay.log" "reloaded .*relay.conf" || rt_fail "reload with operator_idle_timeout not logged"
ops idle || rt_fail "$(tail -2 "$T/ops-idle.out")"
rt_ok "operator_idle_timeout 1 s: $(tail -1 "$T/ops-idle.out")"
ops busy || rt_fail "$(tail -2 "$T/ops-busy.out")"
rt_ok "$(tail -1 "$T/ops-busy.out")"

# The relay is still there and serves.
rt_alive "$(rt_pid relay)" || rt_fail "relay died"
ops global || rt_fail "relay no longer serves operators"
grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T/relay.log" &&
	rt_fail "sanitizer report in relay.log"
rt_pass
