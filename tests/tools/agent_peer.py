#!/usr/bin/env python3
# agent_peer.py - small peers for revtun-agent's integration tests.
#
#   echo PORT [CONNLOG]         echo server on 127.0.0.1:PORT; appends one
#                               line per accepted connection to CONNLOG
#   bulk PORT N SIZE [TIMEOUT]  N concurrent clients each send SIZE random
#                               bytes, half-close, and check the echo is
#                               identical; exit 0 only if all match
#   pingpong PORT SECS MAXMS    one client doing 64-byte round trips for
#                               SECS; fails if any round trip > MAXMS or
#                               fewer than 2 rounds per second happened
#   stream PORT SIZE            sends SIZE bytes, reads the echo, no check
#                               (a bulk load for other tests)
#   proxy PORT LOG              HTTP CONNECT proxy on 127.0.0.1:PORT; logs
#                               each request line to LOG
#   blackhole PORT              a listener whose accept queue is kept full,
#                               so new connects to it hang (SYN dropped)
#   hold PORT FILE              connects, does one round trip, writes "up"
#                               to FILE, then does a round trip whenever
#                               FILE is rewritten to "ping", answering
#                               "pong" or "dead"
# Everything has a deadline; nothing waits forever.
import os
import socket
import sys
import threading
import time


def echo(port, connlog=None):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(512)

    def serve(s):
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                s.sendall(d)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        s.close()

    while True:
        s, peer = ls.accept()
        if connlog:
            with open(connlog, "a") as f:
                f.write("conn %s:%d\n" % peer)
        threading.Thread(target=serve, args=(s,), daemon=True).start()


def one_bulk(port, size, timeout, results):
    data = os.urandom(size)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.settimeout(timeout)

        def w():
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        t = threading.Thread(target=w, daemon=True)
        t.start()
        got = bytearray()
        while True:
            x = s.recv(65536)
            if not x:
                break
            got += x
        t.join(timeout)
        s.close()
        results.append(bytes(got) == data)
    except OSError as e:
        print("client error:", e, file=sys.stderr)
        results.append(False)


def bulk(port, n, size, timeout=60):
    res = []
    t0 = time.time()
    ts = [threading.Thread(target=one_bulk, args=(port, size, timeout, res))
          for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 5)
    ok = sum(1 for r in res if r)
    print("bulk: %d of %d channels echoed %d bytes intact in %.2f s"
          % (ok, n, size, time.time() - t0))
    return 0 if ok == n else 1


def pingpong(port, secs, maxms):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    msg = b"p" * 64
    worst = 0.0
    rounds = 0
    end = time.time() + secs
    while time.time() < end:
        t0 = time.time()
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            x = s.recv(len(msg) - len(got))
            if not x:
                print("pingpong: connection closed")
                return 1
            got += x
        dt = (time.time() - t0) * 1000
        worst = max(worst, dt)
        rounds += 1
    s.close()
    print("pingpong: %d rounds in %d s, worst %.1f ms" % (rounds, secs, worst))
    if worst > maxms:
        print("pingpong: round trip above %d ms" % maxms)
        return 1
    if rounds < 2 * secs:
        print("pingpong: too few rounds")
        return 1
    return 0


def stream(port, size):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.settimeout(60)
    chunk = os.urandom(65536)

    def w():
        left = size
        try:
            while left > 0:
                n = min(left, len(chunk))
                s.sendall(chunk[:n])
                left -= n
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=w, daemon=True).start()
    got = 0
    try:
        while True:
            x = s.recv(65536)
            if not x:
                break
            got += len(x)
    except OSError:
        pass
    print("stream: %d of %d bytes back" % (got, size))
    return 0 if got == size else 1


def rt(s):
    s.sendall(b"x" * 16)
    got = b""
    while len(got) < 16:
        x = s.recv(16 - len(got))
        if not x:
            return False
        got += x
    return True


def hold(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    if not rt(s):
        return 1
    with open(path, "w") as f:
        f.write("up\n")
    deadline = time.time() + 120
    while time.time() < deadline:
        time.sleep(0.05)
        try:
            with open(path) as f:
                cmd = f.read().strip()
        except OSError:
            continue
        if cmd == "ping":
            try:
                ok = rt(s)
            except OSError:
                ok = False
            with open(path + ".tmp", "w") as f:
                f.write("pong\n" if ok else "dead\n")
            os.rename(path + ".tmp", path)
        elif cmd == "quit":
            return 0
    return 0


def splice(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def proxy(port, log):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)

    def serve(c):
        hdr = b""
        while b"\r\n\r\n" not in hdr and len(hdr) < 8192:
            x = c.recv(1)
            if not x:
                c.close()
                return
            hdr += x
        line = hdr.split(b"\r\n")[0].decode("latin-1")
        with open(log, "a") as f:
            f.write(line + "\n")
        parts = line.split()
        if len(parts) != 3 or parts[0] != "CONNECT":
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            c.close()
            return
        host, p = parts[1].rsplit(":", 1)
        try:
            u = socket.create_connection((host.strip("[]"), int(p)), 10)
            u.settimeout(None)
        except OSError:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            c.close()
            return
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        t = threading.Thread(target=splice, args=(c, u), daemon=True)
        t.start()
        splice(u, c)
        t.join()
        c.close()
        u.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def blackhole(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(0)
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(3600)


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(64)
    if a[0] == "echo":
        echo(int(a[1]), a[2] if len(a) > 2 else None)
    elif a[0] == "bulk":
        sys.exit(bulk(int(a[1]), int(a[2]), int(a[3]),
                      int(a[4]) if len(a) > 4 else 60))
    elif a[0] == "pingpong":
        sys.exit(pingpong(int(a[1]), int(a[2]), int(a[3])))
    elif a[0] == "stream":
        sys.exit(stream(int(a[1]), int(a[2])))
    elif a[0] == "blackhole":
        blackhole(int(a[1]))
    elif a[0] == "proxy":
        proxy(int(a[1]), a[2])
    elif a[0] == "hold":
        sys.exit(hold(int(a[1]), a[2]))
    sys.exit(64)


if __name__ == "__main__":
    main()
