# tests/integration/netns.sh - two network namespaces joined by one
# point-to-point link, with faults on that link. Sourced by fault_*.sh
# after lib.sh and rt_setup (not a test itself).
#
# The link is a pair of TUN devices, one per namespace, and a small
# user-space packet pump between them (python3). This kernel has no
# sch_netem and the sandbox may lack other qdiscs, so nothing here needs
# tc, iptables or nftables: every fault is done by the pump or by the
# link state.
#
#   nn_need                 exit 77 unless namespaces and TUN work here
#   nn_up                   namespaces $NN_A (agent side, $NN_A_IP) and
#                           $NN_R (relay side, $NN_R_IP), pump running;
#                           removed again by nn_down (hooked into EXIT)
#   nn_exec a|r CMD...      run CMD in a namespace (exec, so a PID from
#                           rt_spawn nn_exec ... is CMD's own)
#   nn_impair DELAY_MS LOSS_PCT [DUP_PCT [JITTER_MS]]
#                           each direction: packets held DELAY_MS (+-
#                           JITTER_MS, so they reorder), LOSS_PCT of them
#                           dropped, DUP_PCT sent twice ("200 5" gives a
#                           ~400 ms round trip); "0 0" clears
#   nn_rate KBIT [QUEUE]    each direction a link of KBIT kbit/s (0: no
#                           limit): packets leave one after the other at
#                           that rate, a queue of at most QUEUE bytes
#                           (default 32768) waits, more is dropped (tail
#                           drop, like tc tbf's limit)
#   nn_blackhole on|off     drop every packet silently while the link
#                           stays up: TCP peers see neither FIN nor RST
#   nn_cut / nn_restore     link down / up on both ends
#   nn_hosts LINE...        /etc/hosts of the agent side (rewritten in
#                           place: the bind mount ip netns exec makes
#                           keeps seeing it); its resolv.conf points at
#                           an address where nothing answers, so names
#                           not in the file fail at once
#   nn_resolv LINE...       resolv.conf of the agent side (in place)
#   nn_addr_r IP            one more IPv4 address on the relay side,
#                           routed from the agent side over the link
#   nn_listening a|r PORT   something listens on PORT in that namespace
#   nn_stats                packet counters of the pump (one line)
#
# The link also carries IPv6 ($NN_A_IP6 <-> $NN_R_IP6) when the kernel
# has it (NN_V6=1 after nn_up).
#
# Names carry the test's PID so concurrent runs never collide; the
# addresses are private to the namespaces and can repeat across runs.

NN_TAG="rtf$$"
NN_A="$NN_TAG-a"
NN_R="$NN_TAG-r"
NN_A_IP=10.201.0.1
NN_R_IP=10.201.0.2
NN_A_IP6=fd00:201::1
NN_R_IP6=fd00:201::2
NN_V6=0
NN_DEV=rtf0
NN_UP=0

nn_need() {
	[ "$(id -u)" = 0 ] || rt_skip "network namespaces need root"
	command -v ip >/dev/null 2>&1 || rt_skip "iproute2 (ip) not installed"
	[ -c /dev/net/tun ] || rt_skip "no /dev/net/tun: this kernel has no TUN device"
	ip netns add "$NN_TAG-probe" 2>/dev/null ||
		rt_skip "cannot create network namespaces here (ip netns add failed)"
	ip netns del "$NN_TAG-probe" 2>/dev/null
	rt_need python3 ping	# the pump; link checks (iputils-ping)
	return 0
}

nn_ns() { case $1 in a) echo "$NN_A" ;; r) echo "$NN_R" ;; *) echo "nn: a or r, not '$1'" >&2; return 1 ;; esac; }

nn_exec() {
	_ns=$(nn_ns "$1") || return 1
	shift
	ip netns exec "$_ns" "$@"
}

nn_write_pump() {
	cat >"$T/nn_pump.py" <<'PY'
# nn_pump.py NS_A NS_B IFNAME CTL READY - forwards packets between a TUN
# device in each of two network namespaces; CTL (key=value lines, re-read
# when its mtime changes) sets delay_ms, jitter_ms (each packet delayed
# by delay +- jitter, uniform: packets overtake each other), loss_pct,
# dup_pct (a second copy of the packet), blackhole (0/1), rate_kbit (0 =
# unlimited: else packets of one direction leave one after another at
# that rate) and queue_bytes (the most waiting for the rate; tail drop).
import ctypes, fcntl, heapq, os, random, select, signal, struct, sys, time
ns_a, ns_b, ifname, ctl, ready = sys.argv[1:6]
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET, TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x40000000, 0x400454CA, 0x0001, 0x1000
def enter(path):
    fd = os.open(path, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno(); raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    os.close(fd)
def tun_in(path):
    enter(path)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TUN | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd
home = "/proc/self/ns/net"
home_fd = os.open(home, os.O_RDONLY)
fa, fb = tun_in(ns_a), tun_in(ns_b)
if libc.setns(home_fd, CLONE_NEWNET) != 0:
    sys.exit("setns home failed")
cfg = {"delay_ms": 0.0, "jitter_ms": 0.0, "loss_pct": 0.0, "dup_pct": 0.0, "blackhole": 0.0,
       "rate_kbit": 0.0, "queue_bytes": 32768.0}
st = {"in": 0, "dropped": 0, "dup": 0, "out": 0, "write_err": 0, "rate_drop": 0}
busy = {}   # per output fd: when the rate-limited link is free again
seen = [None]
def reload():
    try:
        m = os.stat(ctl).st_mtime_ns
    except FileNotFoundError:
        return
    if m == seen[0]:
        return
    seen[0] = m
    for line in open(ctl):
        k, _, v = line.strip().partition("=")
        if k in cfg:
            cfg[k] = float(v or 0)
run = [True]
signal.signal(signal.SIGTERM, lambda *a: run.__setitem__(0, False))
reload()
with open(ready + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(ready + ".tmp", ready)
q, seq, last = [], 0, 0.0
while run[0]:
    now = time.monotonic()
    wait = min(0.05, max(0.0, q[0][0] - now)) if q else 0.05
    try:
        r, _, _ = select.select([fa, fb], [], [], wait)
    except InterruptedError:
        r = []
    reload()
    now = time.monotonic()
    for fd in r:
        out = fb if fd == fa else fa
        for _ in range(256):        # bounded per wake-up
            try:
                pkt = os.read(fd, 65535)
            except OSError:
                break
            st["in"] += 1
            if cfg["blackhole"] or (cfg["loss_pct"] and random.random() * 100 < cfg["loss_pct"]):
                st["dropped"] += 1
                continue
            copies = 2 if cfg["dup_pct"] and random.random() * 100 < cfg["dup_pct"] else 1
            st["dup"] += copies - 1
            for _ in range(copies):
                d = cfg["delay_ms"]
                if cfg["jitter_ms"]:
                    d = max(0.0, d + random.uniform(-cfg["jitter_ms"], cfg["jitter_ms"]))
                t = now + d / 1000.0
                if cfg["rate_kbit"] > 0:
                    bps = cfg["rate_kbit"] * 1000.0 / 8.0    # bytes per second
                    start = max(t, busy.get(out, 0.0))
                    if (start - t) * bps + len(pkt) > cfg["queue_bytes"]:
                        st["rate_drop"] += 1
                        continue
                    t = busy[out] = start + len(pkt) / bps
                seq += 1
                heapq.heappush(q, (t, seq, out, pkt))
    now = time.monotonic()
    while q and q[0][0] <= now:
        _, _, out, pkt = heapq.heappop(q)
        try:
            os.write(out, pkt); st["out"] += 1
        except OSError:
            st["write_err"] += 1    # link down: the packet is lost
    if now - last >= 0.5:
        last = now
        with open(ctl + ".stats.tmp", "w") as f:
            f.write(" ".join("%s=%d" % kv for kv in st.items()) + "\n")
        os.rename(ctl + ".stats.tmp", ctl + ".stats")
PY
}

nn_ctl() {	# rewrite the pump's control file atomically, wait one poll
	printf 'delay_ms=%s\njitter_ms=%s\nloss_pct=%s\ndup_pct=%s\nblackhole=%s\nrate_kbit=%s\nqueue_bytes=%s\n' \
		"$NN_DELAY" "$NN_JITTER" "$NN_LOSS" "$NN_DUP" "$NN_BH" "$NN_RATE" "$NN_QUEUE" >"$T/nn_ctl.tmp"
	mv "$T/nn_ctl.tmp" "$T/nn_ctl"
	sleep 0.15
}

nn_up() {
	NN_DELAY=0 NN_JITTER=0 NN_LOSS=0 NN_DUP=0 NN_BH=0 NN_RATE=0 NN_QUEUE=32768
	# our own EXIT hook first, then lib.sh's (which keeps the exit status)
	trap '_nn_rc=$?; nn_down; (exit $_nn_rc); rt_cleanup' EXIT
	ip netns add "$NN_A" || rt_fail "ip netns add $NN_A"
	NN_UP=1
	ip netns add "$NN_R" || rt_fail "ip netns add $NN_R"
	ip -n "$NN_A" link set lo up && ip -n "$NN_R" link set lo up ||
		rt_fail "loopback up in the namespaces"
	nn_write_pump
	nn_ctl
	rt_spawn nn_pump python3 "$T/nn_pump.py" "/run/netns/$NN_A" \
		"/run/netns/$NN_R" "$NN_DEV" "$T/nn_ctl" "$T/nn_pump.ready"
	rt_wait 10 "packet pump" test -s "$T/nn_pump.ready" || {
		grep -qi 'tun\|Operation not permitted\|No such device' "$T/nn_pump.log" &&
			rt_skip "TUN devices do not work here: $(tail -1 "$T/nn_pump.log")"
		rt_fail "packet pump did not start: $(tail -3 "$T/nn_pump.log")"
	}
	ip -n "$NN_A" addr add "$NN_A_IP" peer "$NN_R_IP" dev "$NN_DEV" &&
		ip -n "$NN_R" addr add "$NN_R_IP" peer "$NN_A_IP" dev "$NN_DEV" &&
		ip -n "$NN_A" link set "$NN_DEV" up && ip -n "$NN_R" link set "$NN_DEV" up ||
		rt_fail "cannot configure the TUN link"
	# IPv6 too where the kernel has it (no DAD: the link is ours alone)
	ip -n "$NN_A" -6 addr add "$NN_A_IP6" peer "$NN_R_IP6" dev "$NN_DEV" nodad 2>/dev/null &&
		ip -n "$NN_R" -6 addr add "$NN_R_IP6" peer "$NN_A_IP6" dev "$NN_DEV" nodad 2>/dev/null &&
		NN_V6=1
	mkdir -p "/etc/netns/$NN_A" || rt_fail "mkdir /etc/netns/$NN_A"
	printf '127.0.0.1 localhost\n' >"/etc/netns/$NN_A/hosts"
	# a resolver address with nothing behind it: refused at once
	printf 'nameserver 127.0.0.53\noptions timeout:1 attempts:1\n' >"/etc/netns/$NN_A/resolv.conf"
	rt_wait 5 "link up" nn_exec a ping -c 1 -W 1 "$NN_R_IP" ||
		rt_fail "no ping across the link: $(cat "$T/nn_ctl.stats" 2>/dev/null)"
	rt_log "netns: $NN_A ($NN_A_IP) <-> $NN_R ($NN_R_IP) over TUN + pump"
}

nn_down() {
	[ "$NN_UP" = 1 ] || return 0
	NN_UP=0
	for _ns in "$NN_A" "$NN_R"; do
		# only processes this test put there
		for _p in $(ip netns pids "$_ns" 2>/dev/null); do kill "$_p" 2>/dev/null; done
	done
	sleep 0.2
	for _ns in "$NN_A" "$NN_R"; do
		for _p in $(ip netns pids "$_ns" 2>/dev/null); do kill -9 "$_p" 2>/dev/null; done
		ip netns del "$_ns" 2>/dev/null
	done
	rm -rf "/etc/netns/$NN_A" "/etc/netns/$NN_R"
	[ -f "$T/nn_pump.pid" ] && kill "$(cat "$T/nn_pump.pid")" 2>/dev/null
	return 0
}

nn_impair() { NN_DELAY=$1 NN_LOSS=$2 NN_DUP=${3:-0} NN_JITTER=${4:-0}; nn_ctl; }
nn_blackhole() { case $1 in on) NN_BH=1 ;; *) NN_BH=0 ;; esac; nn_ctl; }
nn_cut() { ip -n "$NN_A" link set "$NN_DEV" down; ip -n "$NN_R" link set "$NN_DEV" down; }
nn_restore() {
	ip -n "$NN_A" link set "$NN_DEV" up; ip -n "$NN_R" link set "$NN_DEV" up
	# peer addresses come back with the link; nothing else to redo
}
nn_rate() { NN_RATE=$1 NN_QUEUE=${2:-32768}; nn_ctl; }
nn_resolv() {
	# in place, like nn_hosts; glibc re-reads it when it changes
	printf '%s\n' "$@" >"/etc/netns/$NN_A/resolv.conf"
}
nn_addr_r() {
	ip -n "$NN_R" addr add "$1/32" dev "$NN_DEV" &&
		ip -n "$NN_A" route add "$1/32" dev "$NN_DEV"
}
nn_hosts() {
	# in place (same inode): the bind mount of each ip netns exec sees it
	printf '%s\n' '127.0.0.1 localhost' "$@" >"/etc/netns/$NN_A/hosts"
}
nn_listening() {
	_hex=$(printf '%04X' "$2")
	nn_exec "$1" cat /proc/net/tcp | grep -qE "^ *[0-9]+: [0-9A-F]+:$_hex [0-9A-F]+:0000 0A"
}
nn_stats() { cat "$T/nn_ctl.stats" 2>/dev/null; }
