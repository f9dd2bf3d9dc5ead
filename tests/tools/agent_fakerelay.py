#!/usr/bin/python3
# agent_fakerelay.py - a relay stand-in for revtun-agent's integration
# tests (needs python3-paramiko).
#
# Speaks the agent side of the relay protocol (DESIGN.md): TLS with a
# required client certificate, then an SSH server (auth "none",
# tcpip-forward registrations). It can also misbehave on purpose.
#
#   --listen PORT            TLS port for agents (127.0.0.1)
#   --cert F --key F --ca F  relay certificate, key, CA for client certs
#   --hostkey F              SSH host key (ed25519, OpenSSH format)
#   --op LPORT:SVC:SPORT     plain TCP port on 127.0.0.1; each connection
#                            opens forwarded-tcpip (SVC, SPORT) on the
#                            current agent session and pipes both ways,
#                            half-close included (repeatable)
#   --hostile SVC:SPORT      once the agent registered its forwards, open
#                            forwarded-tcpip (SVC, SPORT) anyway and print
#                            "HOSTILE refused" or "HOSTILE accepted";
#                            "session" opens a session channel instead;
#                            "global" sends global requests instead (an
#                            unknown one, one with a truncated payload, a
#                            tcpip-forward), each with want_reply, and
#                            prints "GLOBAL <name> failed|succeeded|noreply"
#   --refuse SVC             refuse the tcpip-forward for SVC
#
# Prints one line per event on stdout (flushed): "AGENT <CN>",
# "FORWARD <name> <port>", "CANCEL <name> <port>", "LOST".
import argparse
import os
import socket
import ssl
import sys
import threading

import paramiko

from tlspump import tls_pump


def say(*a):
    print(*a, flush=True)


class Server(paramiko.ServerInterface):
    def __init__(self, refuse):
        self.refuse = refuse
        self.forwards = set()
        self.registered = threading.Event()

    def get_allowed_auths(self, username):
        return "none"

    def check_auth_none(self, username):
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_port_forward_request(self, address, port):
        if address in self.refuse:
            say("REFUSED", address, port)
            return False
        self.forwards.add((address, port))
        say("FORWARD", address, port)
        self.registered.set()
        return port

    def cancel_port_forward_request(self, address, port):
        self.forwards.discard((address, port))
        say("CANCEL", address, port)

    def check_global_request(self, kind, msg):
        return True


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.transport = None


def pipe(src_recv, dst_send, dst_eof, done):
    try:
        while True:
            d = src_recv(65536)
            if not d:
                break
            dst_send(d)
        dst_eof()
    except Exception:
        pass
    done.release()


def operator_conn(state, sock, svc, sport):
    with state.lock:
        t = state.transport
    if t is None or not t.is_active():
        sock.close()
        return
    try:
        ch = t.open_forwarded_tcpip_channel(sock.getpeername(), (svc, sport))
    except Exception as e:
        say("OPENFAIL", svc, sport, e)
        sock.close()
        return
    done = threading.Semaphore(0)

    def sock_eof():
        ch.shutdown_write()

    def chan_eof():
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=pipe, args=(sock.recv, ch.sendall, sock_eof,
                                        done), daemon=True).start()
    threading.Thread(target=pipe, args=(ch.recv, sock.sendall, chan_eof,
                                        done), daemon=True).start()
    done.acquire()
    done.acquire()
    ch.close()
    sock.close()


def op_listener(state, lport, svc, sport):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", lport))
    ls.listen(512)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=operator_conn, args=(state, s, svc, sport),
                         daemon=True).start()


def hostile_globals(t):
    """Global requests a relay has no business sending; each answer (or
    none within 10 s) is printed. The agent must answer failure and stay."""
    reqs = [("bogus@example.com", None),
            ("truncated", b"\x00\x00\xff\xff"),   # a string of 65535 bytes, absent
            ("tcpip-forward", ["0.0.0.0", 22])]
    for name, data in reqs:
        out = []

        def ask():
            if isinstance(data, bytes):
                # paramiko has no raw payload argument: build the message
                m = paramiko.Message()
                m.add_byte(paramiko.common.cMSG_GLOBAL_REQUEST)
                m.add_string(name)
                m.add_boolean(True)
                m.add_bytes(data)
                t.completion_event = threading.Event()
                t.global_response = None
                t._send_user_message(m)
                t.completion_event.wait(10)
                out.append(t.global_response if t.completion_event.is_set()
                           else "noreply")
            else:
                out.append(t.global_request(name, data, wait=True))
        th = threading.Thread(target=ask, daemon=True)
        th.start()
        th.join(10)
        r = out[0] if out else "noreply"
        say("GLOBAL", name, "noreply" if r == "noreply" else
            "failed" if r is None else "succeeded")


def agent_conn(state, args, ctx, hostkey, raw):
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except Exception as e:
        say("TLSFAIL", e)
        raw.close()
        return
    cn = dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]
    say("AGENT", cn)
    mine, theirs = socket.socketpair()
    threading.Thread(target=tls_pump, args=(tls, theirs), daemon=True).start()
    t = paramiko.Transport(mine)
    t.add_server_key(hostkey)
    srv = Server(set(args.refuse))
    t.start_server(server=srv)
    # Like revtun-relay, say something every second while idle: the agent
    # judges the relay alive by the bytes it receives.
    t.set_keepalive(1)
    with state.lock:
        old = state.transport
        state.transport = t
    if old is not None:
        old.close()
    if args.hostile == "global":
        srv.registered.wait(30)
        hostile_globals(t)
    elif args.hostile:
        srv.registered.wait(30)
        try:
            if args.hostile == "session":
                ch = t.open_session(timeout=10)
            else:
                svc, sport = args.hostile.rsplit(":", 1)
                ch = t.open_forwarded_tcpip_channel(("127.0.0.1", 1),
                                                    (svc, int(sport)))
            say("HOSTILE accepted")
            # Whatever the agent does with it, it must not dial.
            ch.settimeout(5)
            try:
                ch.recv(1)
            except Exception:
                pass
        except Exception as e:
            say("HOSTILE refused", e)
    while t.is_active():
        t.join(1)
    say("LOST")


def main():
    # RT_PARAMIKO_LOG=FILE: paramiko's own debug log (why it dropped a
    # connection: it says nothing on stdout)
    if os.environ.get("RT_PARAMIKO_LOG"):
        paramiko.util.log_to_file(os.environ["RT_PARAMIKO_LOG"], level=10)
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--hostkey", required=True)
    p.add_argument("--op", action="append", default=[])
    p.add_argument("--hostile")
    p.add_argument("--refuse", action="append", default=[])
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    hostkey = paramiko.Ed25519Key.from_private_key_file(args.hostkey)
    state = State()
    for op in args.op:
        lport, svc, sport = op.split(":")
        threading.Thread(target=op_listener,
                         args=(state, int(lport), svc, int(sport)),
                         daemon=True).start()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", args.listen))
    ls.listen(16)
    say("LISTENING", args.listen)
    while True:
        raw, _ = ls.accept()
        threading.Thread(target=agent_conn,
                         args=(state, args, ctx, hostkey, raw),
                         daemon=True).start()


if __name__ == "__main__":
    main()
