#!/usr/bin/env python3
# ctl_agent.py - a stand-in agent for the relay's control-command tests
# (tests/integration/relay_ctl.sh): paramiko SSH client over TLS with the
# given agent certificate, auth none, registering "control" (port 1) and,
# unless --no-shell, "shell" (port 2), answering forwarded channels with
# ctlproto frames (common/ctlproto.h).
#
#   ctl_agent.py --port P --pki DIR --id gw-17 --ready FILE
#                [--no-shell] [--no-control] [--event JSON]... [--log F]
#
# Behaviour per CTL_REQ command (OPERATOR\0COMMAND):
#   status               "status of ID for OPERATOR\n", EXIT 0
#   config show          a short file, EXIT 0
#   config apply         reads DATA to EOF, answers "applied N bytes sha256
#                        HEX\n", EXIT 0
#   config set K V       "set K = V\n", EXIT 0; K "bad.option": "unknown key
#                        bad.option\n", EXIT 1; K "close.early": closes the
#                        channel without EXIT; K "garbage": sends a frame
#                        of unknown type 9; K "big": 3 MiB of output
#                        (slowly read by the test), EXIT 0
#   logs                 three lines, EXIT 0; "logs -f" a line every 0.2 s
#                        until the channel closes
#   reload               "reloading\n", EXIT 0
#   shell (on "shell")   "pty COLSxROWS TERM\n" from CTL_PTY (or "no pty"),
#                        echoes DATA, "winch CxR\n" per CTL_WINCH; ends with
#                        EXIT 3 on CTL_EOF or when input holds "exit"
#   events (from "relay", the relay's events channel; only with --event):
#                        each --event as one DATA frame, numbered from 1
#                        ({"id":N, is put in front unless the JSON starts
#                        with {"id":); every ack received is appended to
#                        FILE.acks; the channel stays open. Without
#                        --event "events" is an unknown command, as on an
#                        agent that predates the events channel.
# Every received REQ is appended to FILE.reqs ("OPERATOR|COMMAND").
import argparse
import hashlib
import os
import socket
import ssl
import struct
import sys
import threading
import time

import paramiko

from tlspump import tls_pump

REQ, DATA, EOF, EXIT, PTY, WINCH = 1, 2, 3, 4, 5, 6
MAXP = 65536


def frame(t, payload=b""):
    return struct.pack(">I", (t << 24) | len(payload)) + payload


class Frames:
    def __init__(self, ch):
        self.ch = ch
        self.buf = b""

    def next(self):
        while True:
            if len(self.buf) >= 4:
                hdr = struct.unpack(">I", self.buf[:4])[0]
                t, n = hdr >> 24, hdr & 0xFFFFFF
                if n > MAXP:
                    raise ValueError("frame too long")
                if len(self.buf) >= 4 + n:
                    p = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return t, p
            d = self.ch.recv(65536)
            if not d:
                return None, None
            self.buf += d


def send(ch, t, payload=b""):
    for i in range(0, max(len(payload), 1), MAXP):
        ch.sendall(frame(t, payload[i:i + MAXP]))
        if t != DATA:
            break


def done(ch, status, text=b""):
    if text:
        send(ch, DATA, text)
    send(ch, EOF)
    send(ch, EXIT, struct.pack(">I", status))
    time.sleep(0.05)
    ch.close()


def serve(ch, args):
    fr = Frames(ch)
    try:
        t, p = fr.next()
        if t != REQ:
            ch.close()
            return
        op, cmd = p.split(b"\0", 1)
        with open(args.ready + ".reqs", "a") as f:
            f.write("%s|%s\n" % (op.decode(), cmd.decode()))
        words = cmd.decode().split(" ", 3)
        if op == b"relay" and cmd == b"events" and args.event:
            for i, ev in enumerate(args.event, 1):
                if not ev.startswith('{"id":'):
                    ev = '{"id":%d,%s' % (i, ev[1:])
                send(ch, DATA, ev.encode())
            while True:
                t, p = fr.next()
                if t is None:
                    break
                with open(args.ready + ".acks", "a") as f:
                    f.write("%s\n" % p.decode(errors="replace"))
            return
        if words[0] == "status":
            done(ch, 0, b"status of %s for %s: ok\n" %
                 (args.id.encode(), op))
        elif words[:2] == ["config", "show"]:
            done(ch, 0, b"id = \"%s\"\nmqtt.password = \"***\"\n" %
                 args.id.encode())
        elif words[:2] == ["config", "apply"]:
            h = hashlib.sha256()
            n = 0
            while True:
                t, p = fr.next()
                if t == DATA:
                    h.update(p)
                    n += len(p)
                elif t == EOF:
                    break
                else:
                    ch.close()
                    return
            done(ch, 0, b"applied %d bytes sha256 %s\n" %
                 (n, h.hexdigest().encode()))
        elif words[:2] == ["config", "set"] and len(words) == 4:
            key, val = words[2], words[3]
            if key == "bad.option":
                done(ch, 1, b"unknown key bad.option\n")
            elif key == "close.early":
                send(ch, DATA, b"partial\n")
                ch.close()
            elif key == "garbage":
                ch.sendall(frame(9, b"x"))
                time.sleep(1)
                ch.close()
            elif key == "big":
                blob = os.urandom(3 * 1024 * 1024)
                send(ch, DATA, blob)
                done(ch, 0, b"\nsha256 %s\n" %
                     hashlib.sha256(blob).hexdigest().encode())
            else:
                done(ch, 0, ("set %s = %s\n" % (key, val)).encode())
        elif words[0] == "logs" and len(words) == 1:
            done(ch, 0, b"line 1\nline 2\nline 3\n")
        elif words == ["logs", "-f"]:
            i = 0
            while not ch.closed and i < 300:
                send(ch, DATA, b"follow %d\n" % i)
                i += 1
                time.sleep(0.2)
            ch.close()
        elif words[0] == "reload":
            done(ch, 0, b"reloading\n")
        elif words[0] == "shell":
            first = True
            while True:
                t, p = fr.next()
                if t == PTY:
                    cols, rows = struct.unpack(">HH", p[:4])
                    send(ch, DATA, b"pty %dx%d %s\n" % (cols, rows, p[4:]))
                    first = False
                    continue
                if first:
                    send(ch, DATA, b"no pty\n")
                    first = False
                if t == WINCH:
                    cols, rows = struct.unpack(">HH", p)
                    send(ch, DATA, b"winch %dx%d\n" % (cols, rows))
                elif t == DATA:
                    send(ch, DATA, p)
                    if b"exit" in p:
                        done(ch, 3)
                        return
                elif t == EOF or t is None:
                    done(ch, 3)
                    return
                else:
                    ch.close()
                    return
        else:
            done(ch, 2, b"unknown command\n")
    except (OSError, EOFError, ValueError, paramiko.SSHException):
        try:
            ch.close()
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--id", default="gw-17")
    ap.add_argument("--ready", required=True)
    ap.add_argument("--no-shell", action="store_true")
    ap.add_argument("--no-control", action="store_true")
    ap.add_argument("--event", action="append", default=[])
    ap.add_argument("--log", help="paramiko debug log")
    args = ap.parse_args()
    if args.log:
        paramiko.util.log_to_file(args.log)

    ctx = ssl.create_default_context(cafile=os.path.join(args.pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(args.pki, args.id + ".crt"),
                        os.path.join(args.pki, args.id + ".key"))
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    # paramiko reads in its own thread and writes from the caller's: an
    # SSL object must not see both at once, so paramiko gets a plain
    # socketpair and one thread moves the bytes to and from TLS
    mine, theirs = socket.socketpair()
    threading.Thread(target=tls_pump, args=(s, mine, 1 << 20),
                     daemon=True).start()
    t = paramiko.Transport(theirs)
    t.start_client(timeout=10)
    try:
        t.auth_none("agent")
    except paramiko.BadAuthenticationType:
        sys.exit("auth none refused")

    def handler(ch, origin, server):
        threading.Thread(target=serve, args=(ch, args), daemon=True).start()

    # the relay opens its events channel as soon as "control" is
    # registered; paramiko installs the handler only after the reply and
    # would refuse an open that comes first
    t._tcp_handler = handler
    if not args.no_control:
        t.request_port_forward("control", 1, handler)
    if not args.no_shell:
        t.request_port_forward("shell", 2, handler)
    with open(args.ready, "w") as f:
        f.write("up\n")
    while t.is_active():
        time.sleep(0.2)
    sys.exit("session ended: %s" % (t.get_exception() or "closed"))


if __name__ == "__main__":
    main()
