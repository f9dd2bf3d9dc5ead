#!/usr/bin/python3
# ssh_wire.py - hostile SSH-layer peers for fault_ssh_wire.sh (FAULTS.md S4,
# S8). Run with /usr/bin/python3 (paramiko). Every mode has a deadline.
#
#   flood PORT KEY HOST TPORT BYTES
#       paramiko operator (user alice): opens direct-tcpip HOST:TPORT
#       through the relay, then sends BYTES as CHANNEL_DATA packets of
#       32 KiB built by hand, ignoring the window the relay advertised.
#       Prints "sent N closed|open SECS" (closed = the relay ended the
#       connection); exit 0 if it was closed before all BYTES went out.
#   agentflood PORT PKI BOBKEY BYTES
#       the same from the agent's side: a fake agent gw-18 (paramiko inside
#       TLS with gw-18's certificate) registers echo:7, operator bob
#       (paramiko) opens echo.gw-18:7 and never reads, the fake agent
#       sends BYTES on that channel past the window. Exit 0 if the relay
#       closed the agent's connection before all went out and bob's
#       channel was closed too.
#   sink PORT
#       accepts connections and never reads from them (a stalled service).
#   flip LISTEN UPSTREAM AFTER ARMFILE
#       TCP proxy 127.0.0.1:LISTEN -> 127.0.0.1:UPSTREAM, passing bytes
#       unchanged until a direction (c2s = client to server, s2c = back)
#       is written to ARMFILE: then it XORs one byte of that direction
#       with 0x55 once AFTER more bytes went that way, removes ARMFILE and
#       passes everything unchanged again. Logs "conn N", "conn N:
#       flipped ..." and "conn N closed c2s=.. s2c=.." to stdout.
#   mitm LISTEN UPSTREAM AFTER ARMFILE PKI
#       the same with TLS on both legs: presents PKI/relay.crt (issued by
#       PKI/ca.crt for the relay's name) to the agent, requiring its
#       certificate, and dials the relay with the agent's own
#       PKI/gw-17.crt, so the bytes it sees and flips are the cleartext
#       SSH stream inside the tunnel (c2s = agent to relay).
#   biglen PORT PKI TLS|RAW
#       a fake peer: (over TLS with gw-18's certificate, or raw TCP as an
#       operator would) an SSH banner, then a binary packet whose length
#       field says 0xfffffff0, then a trickle of bytes. Prints
#       "closed after SECS"; exit 0 if the relay closed it within 10 s.
import os
import select
import socket
import ssl
import sys
import threading
import time

CHUNK = 32768


def log(*a):
    print(*a, flush=True)


def flood(port, key, host, tport, nbytes):
    import paramiko
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    t = paramiko.Transport(sock)
    t.start_client(timeout=10)
    t.auth_publickey("alice", paramiko.Ed25519Key.from_private_key_file(key))
    ch = t.open_channel("direct-tcpip", (host, tport), ("127.0.0.1", 1),
                        timeout=10)
    # the relay's advertised window, for the record
    log("window %d maxpacket %d" % (ch.out_window_size, ch.out_max_packet_size))
    # no send may block for ever if the relay stops reading
    sock.settimeout(20)
    t0 = time.monotonic()
    sent, closed = send_raw(t, ch.remote_chanid, nbytes)
    log("sent %d %s %.1f" % (sent, "closed" if closed else "open",
                            time.monotonic() - t0))
    t.close()
    return 0 if closed and sent < nbytes else 1


def send_raw(t, chanid, nbytes):
    """CHANNEL_DATA packets of 32 KiB built by hand and sent with the
    transport's own packet writer (encrypted and MACed like any packet,
    but bypassing Channel's window accounting). Returns (sent, closed)."""
    import paramiko
    from paramiko.common import cMSG_CHANNEL_DATA
    from paramiko.message import Message
    payload = os.urandom(CHUNK)
    sent = 0
    while sent < nbytes:
        m = Message()
        m.add_byte(cMSG_CHANNEL_DATA)
        m.add_int(chanid)
        m.add_string(payload)
        try:
            t._send_user_message(m)
        except (OSError, EOFError, paramiko.SSHException):
            return sent, True
        if not t.is_active():
            return sent, True
        sent += len(payload)
    # what was sent may still sit in socket buffers: give the relay time
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if not t.is_active():
            return sent, True
        time.sleep(0.1)
    return sent, False


def tls_pair(port, pki, cert):
    """A socket for paramiko whose bytes go to the relay inside TLS with
    PKI/CERT.crt; one thread moves both ways (see relay_both)."""
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.load_verify_locations(pki + "/ca.crt")
    cli.load_cert_chain(pki + "/%s.crt" % cert, pki + "/%s.key" % cert)
    u = cli.wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                 timeout=10),
                        server_hostname="localhost")
    u.settimeout(None)
    mine, theirs = socket.socketpair()
    threading.Thread(target=relay_both, daemon=True,
                     args=(theirs, u, 0, Flipper(0, None),
                           {"c2s": 0, "s2c": 0})).start()
    return mine


def agentflood(port, pki, bobkey, nbytes):
    """A fake agent gw-18 (paramiko inside TLS) registers echo:7; operator
    bob opens echo.gw-18:7 and never reads; the agent then sends nbytes
    on that channel regardless of the relay's window. Exit 0 if the relay
    closed the agent's connection before all of it went out."""
    import queue
    import paramiko
    at = paramiko.Transport(tls_pair(port, pki, "gw-18"))
    at.start_client(timeout=10)
    at.auth_none("gw-18")
    chans = queue.Queue()
    at.request_port_forward("echo", 7,
                            handler=lambda ch, o, s: chans.put(ch))
    ot = paramiko.Transport(socket.create_connection(("127.0.0.1", port),
                                                     timeout=10))
    ot.start_client(timeout=10)
    ot.auth_publickey("bob",
                      paramiko.Ed25519Key.from_private_key_file(bobkey))
    och = ot.open_channel("direct-tcpip", ("echo.gw-18", 7), ("127.0.0.1", 1),
                          timeout=10)
    ach = chans.get(timeout=10)
    log("agent channel open, window %d" % ach.out_window_size)
    t0 = time.monotonic()
    sent, closed = send_raw(at, ach.remote_chanid, nbytes)
    log("sent %d %s %.1f" % (sent, "closed" if closed else "open",
                            time.monotonic() - t0))
    # the operator's channel must not be left hanging either
    end = time.monotonic() + 10
    while not och.closed and ot.is_active() and time.monotonic() < end:
        time.sleep(0.1)
    log("operator channel %s" % ("closed" if och.closed or not ot.is_active()
                                 else "STILL OPEN"))
    ok = closed and sent < nbytes and (och.closed or not ot.is_active())
    ot.close()
    at.close()
    return 0 if ok else 1


def sink(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    held = []
    while True:
        s, _ = ls.accept()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        held.append(s)      # never read, never closed


class Flipper:
    """Shared by all connections of one proxy. Armed by writing a
    direction (c2s or s2c) to ARMFILE: it then counts that direction's
    bytes, in any connection, and XORs one byte with 0x55 once AFTER of
    them went through; then it removes ARMFILE and passes all unchanged
    until armed again."""

    def __init__(self, after, armfile):
        self.after, self.armfile = after, armfile
        self.armed, self.count = None, 0
        self.lock = threading.Lock()

    def maybe(self, conn_no, direction, data):
        with self.lock:
            if self.armed is None and self.armfile is not None:
                try:
                    with open(self.armfile) as f:
                        self.armed = f.read().strip() or None
                    self.count = 0
                except OSError:
                    pass
            if self.armed != direction:
                return data
            if self.count + len(data) <= self.after:
                self.count += len(data)
                return data
            i = self.after - self.count
            self.armed = None
            os.unlink(self.armfile)
        b = bytearray(data)
        b[i] ^= 0x55
        log("conn %d: flipped %s byte %d after arming" % (conn_no, direction,
                                                          self.after))
        return bytes(b)


def relay_both(c, u, conn_no, flipper, counts):
    """One thread per connection moves both directions (an SSL object
    must not be read and written from two threads at once)."""
    ends = {c: (u, "c2s"), u: (c, "s2c")}
    try:
        while True:
            ready = [s for s in ends if getattr(s, "pending", lambda: 0)()]
            if not ready:
                ready, _, _ = select.select(list(ends), [], [], 60)
                if not ready:
                    return      # both sides idle for a minute: give up
            for a in ready:
                b, direction = ends[a]
                try:
                    d = a.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                if not d:
                    return
                d = flipper.maybe(conn_no, direction, d)
                counts[direction] += len(d)
                b.sendall(d)
    except (OSError, ssl.SSLError):
        pass


def serve_proxy(listen, upstream, after, armfile, wrap_in=None,
                wrap_out=None):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen))
    ls.listen(16)
    flipper = Flipper(after, armfile)
    n = 0
    while True:
        c, _ = ls.accept()
        n += 1
        threading.Thread(target=proxy_conn, daemon=True,
                         args=(c, n, upstream, flipper, wrap_in,
                               wrap_out)).start()


def proxy_conn(c, n, upstream, flipper, wrap_in, wrap_out):
    try:
        c.settimeout(10)
        if wrap_in is not None:
            c = wrap_in(c)
        u = socket.create_connection(("127.0.0.1", upstream), timeout=10)
        if wrap_out is not None:
            u = wrap_out(u)
        c.settimeout(None)
        u.settimeout(None)
    except (OSError, ssl.SSLError) as e:
        log("conn %d setup failed: %s" % (n, e))
        c.close()
        return
    log("conn %d" % n)
    counts = {"c2s": 0, "s2c": 0}
    relay_both(c, u, n, flipper, counts)
    log("conn %d closed c2s=%d s2c=%d" % (n, counts["c2s"], counts["s2c"]))
    c.close()
    u.close()


def mitm(listen, upstream, after, armfile, pki):
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(pki + "/relay.crt", pki + "/relay.key")
    srv.load_verify_locations(pki + "/ca.crt")
    srv.verify_mode = ssl.CERT_REQUIRED     # the agent shows its cert to us
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.load_verify_locations(pki + "/ca.crt")
    cli.load_cert_chain(pki + "/gw-17.crt", pki + "/gw-17.key")
    serve_proxy(listen, upstream, after, armfile,
                lambda s: srv.wrap_socket(s, server_side=True),
                lambda s: cli.wrap_socket(s, server_hostname="localhost"))


def biglen(port, pki, mode):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if mode == "TLS":
        cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cli.load_verify_locations(pki + "/ca.crt")
        # gw-18: a fake gw-17 that got in would replace the real one
        cli.load_cert_chain(pki + "/gw-18.crt", pki + "/gw-18.key")
        s = cli.wrap_socket(s, server_hostname="localhost")
    s.sendall(b"SSH-2.0-biglen_0.1\r\n")
    # packet_length 0xfffffff0, padding_length 4, then a trickle: a
    # receiver that trusted the length would wait for (or allocate) 4 GiB
    s.sendall(b"\xff\xff\xff\xf0\x04" + b"\x14" * 11)
    t0 = time.monotonic()
    s.settimeout(0.2)
    closed = False
    banner = b""
    while time.monotonic() - t0 < 10:
        try:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            banner += d
        except (socket.timeout, ssl.SSLWantReadError):
            try:
                s.sendall(b"\x00" * 64)
            except OSError:
                closed = True
                break
        except OSError:
            closed = True
            break
    dt = time.monotonic() - t0
    log("%s after %.1f s (relay sent %r)" % ("closed" if closed else "OPEN",
                                             dt, banner[:40]))
    s.close()
    return 0 if closed else 1


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "flood":
        return flood(int(argv[2]), argv[3], argv[4], int(argv[5]),
                     int(argv[6]))
    if mode == "agentflood":
        return agentflood(int(argv[2]), argv[3], argv[4], int(argv[5]))
    if mode == "sink":
        return sink(int(argv[2]))
    if mode == "flip":
        return serve_proxy(int(argv[2]), int(argv[3]), int(argv[4]), argv[5])
    if mode == "mitm":
        return mitm(int(argv[2]), int(argv[3]), int(argv[4]), argv[5], argv[6])
    if mode == "biglen":
        return biglen(int(argv[2]), argv[3], argv[4])
    sys.stderr.write("usage: ssh_wire.py flood|sink|flip|mitm|biglen ...\n")
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
