#!/usr/bin/env python3
# nn_dns.py ADDR PORT ZONE LOG READY - a tiny DNS responder (UDP, stdlib
# only) for the network fault tests: it answers what ZONE says, so a test
# can make a name fail in each way a resolver can fail.
#
# ZONE has one rule per line, re-read whenever the file changes:
#   NAME A 10.0.0.1          an A record (several lines: several records,
#   NAME AAAA fd00::1        in file order); a type the name has no record
#                            of gets an empty NOERROR answer (NODATA)
#   NAME NXDOMAIN            rcode 3
#   NAME SERVFAIL            rcode 2
#   NAME REFUSED             rcode 5
#   NAME TIMEOUT             no answer at all
# Names are matched case-insensitively, without the final dot; a name
# with no rule gets NXDOMAIN. Each query is logged to LOG as
# "<epoch ms> <NAME> <TYPE> <what was done>". READY is written (with the
# PID) once the socket is bound. Runs until SIGTERM.
import os
import signal
import socket
import struct
import sys
import time

addr, port, zone_path, log_path, ready = sys.argv[1:6]
TYPES = {1: "A", 28: "AAAA"}
RCODES = {"NXDOMAIN": 3, "SERVFAIL": 2, "REFUSED": 5}

zone = {}
zone_mtime = [None]


def load_zone():
    try:
        m = os.stat(zone_path).st_mtime_ns
    except FileNotFoundError:
        return
    if m == zone_mtime[0]:
        return
    zone_mtime[0] = m
    zone.clear()
    for line in open(zone_path):
        f = line.split()
        if len(f) < 2 or f[0].startswith("#"):
            continue
        zone.setdefault(f[0].lower().rstrip("."), []).append(
            (f[1].upper(), f[2] if len(f) > 2 else None))


def parse_question(msg):
    """Returns (qname, qtype, end of question) or None if malformed."""
    i, labels = 12, []
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(msg):
            return None     # no compression in questions from glibc
        labels.append(msg[i:i + n].decode("ascii", "replace"))
        i += n
    if i + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[i:i + 4])
    return ".".join(labels).lower(), qtype, i + 4


def answer(msg, qend, rcode, records):
    qid, flags = struct.unpack("!HH", msg[:4])
    # QR=1, opcode and RD copied, AA=1, RA=1
    flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
    out = struct.pack("!HHHHHH", qid, flags, 1, len(records), 0, 0)
    out += msg[12:qend]
    for rtype, rdata in records:
        out += struct.pack("!HHHIH", 0xC00C, rtype, 1, 30, len(rdata)) + rdata
    return out


def main():
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET,
                      socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    s.settimeout(0.2)
    run = [True]
    signal.signal(signal.SIGTERM, lambda *a: run.__setitem__(0, False))
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    log = open(log_path, "a", buffering=1)
    while run[0]:
        load_zone()
        try:
            msg, peer = s.recvfrom(4096)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if len(msg) < 12:
            continue
        q = parse_question(msg)
        if q is None:
            continue
        load_zone()
        name, qtype, qend = q
        rules = zone.get(name, [("NXDOMAIN", None)])
        kinds = [k for k, _ in rules]
        tname = TYPES.get(qtype, str(qtype))
        if "TIMEOUT" in kinds:
            what = "timeout (no answer)"
            reply = None
        elif any(k in RCODES for k in kinds):
            k = next(k for k in kinds if k in RCODES)
            what = k
            reply = answer(msg, qend, RCODES[k], [])
        else:
            recs = []
            for k, v in rules:
                if k == tname == "A":
                    recs.append((1, socket.inet_pton(socket.AF_INET, v)))
                elif k == tname == "AAAA":
                    recs.append((28, socket.inet_pton(socket.AF_INET6, v)))
            what = "%d record(s)" % len(recs) if recs else "NODATA"
            reply = answer(msg, qend, 0, recs)
        log.write("%d %s %s %s\n" % (int(time.time() * 1000), name, tname, what))
        if reply is not None:
            s.sendto(reply, peer)


main()
