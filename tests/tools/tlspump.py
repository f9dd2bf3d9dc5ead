# tlspump.py - TLS for paramiko from one thread (imported by the stand-ins
# in this directory: agent_fakerelay.py, ctl_agent.py).
import select
import ssl


def tls_pump(tls, plain, cap=64 << 10):
    """Moves bytes between the TLS socket and paramiko's end of a
    socketpair, in this one thread, holding at most cap bytes each way.
    paramiko reads in its transport thread and writes from the channel
    threads; on one SSLSocket that puts two threads in the same OpenSSL
    object at once, which now and then ended the connection with a bogus
    EOF on both sides."""
    tls.setblocking(False)
    plain.setblocking(False)
    to_tls, to_plain = bytearray(), bytearray()
    tls_eof = plain_eof = False
    try:
        while True:
            if tls_eof and not to_plain:
                break
            if plain_eof and not to_tls:
                break
            rl, wl = [], []
            if not tls_eof and len(to_plain) < cap:
                rl.append(tls)
            if not plain_eof and len(to_tls) < cap:
                rl.append(plain)
            if to_tls:
                wl.append(tls)
            if to_plain:
                wl.append(plain)
            if tls in rl and tls.pending():
                r = [tls]
            else:
                r, _, _ = select.select(rl, wl, [], 1.0)
            if tls in r:
                try:
                    d = tls.recv(65536)
                    if d:
                        to_plain += d
                    else:
                        tls_eof = True
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
            if plain in r:
                try:
                    d = plain.recv(65536)
                    if d:
                        to_tls += d
                    else:
                        plain_eof = True
                except BlockingIOError:
                    pass
            if to_tls:
                try:
                    n = tls.send(to_tls)
                    del to_tls[:n]
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
            if to_plain:
                try:
                    n = plain.send(to_plain)
                    del to_plain[:n]
                except BlockingIOError:
                    pass
    except (OSError, ssl.SSLError):
        pass
    for sk in (plain, tls):
        try:
            sk.close()
        except OSError:
            pass
