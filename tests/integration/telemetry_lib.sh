# tests/integration/telemetry_lib.sh - sourced by the telemetry_*.sh tests
# after lib.sh: revtun-agent with mqtt + telemetry against a real
# mosquitto (mqtt_lib.sh) and the real revtun-relay (relay_common.sh),
# plus the docs/mqtt.md recipes as code.
#
#   tl_setup                  mq_setup + broker + relay + keys in $T
#   tl_conf EXTRA_TOP EXTRA_TELEMETRY   writes $T/agent.conf
#   tl_sign CMD [NONCE [TS]]  prints a signed command (python3, mc recipe)
#   tl_cmd PAYLOAD            publishes PAYLOAD on revtun/gw-17/cmd
#   tl_py CHECK ARGS...       runs a check of $T/tl.py on the monitor log
#   tl_agents                 the relay's `agents` list as alice

. "$top_srcdir/tests/integration/mqtt_lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"

tl_setup() {
	mq_setup
	RELAY_PORT=$(rt_free_port)
	ECHO_PORT=$(rt_free_port)
	rt_need ssh python3
	[ -x "$RT_AGENT" ] || rt_fail "$RT_AGENT not built"
	[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
	. "$top_srcdir/tests/integration/relay_common.sh"
	RELAY_PORT=$RPORT
	rt_spawn echo "$AG_PY" "$AG_TOOLS/agent_peer.py" echo "$ECHO_PORT" \
		"$T/echo.conns"
	rt_wait 10 "echo target" rt_listening "$ECHO_PORT" ||
		rt_fail "echo target did not start"
	openssl rand -hex 32 >"$T/tm.key"
	openssl rand -hex 32 >"$T/cmd.key"
	chmod 600 "$T/tm.key" "$T/cmd.key"
	mq_start
	mq_monitor mon 'revtun/gw-17/#'
	relay_write_conf "$T/relay.conf"
	relay_start
	tl_write_py
}

# tl_conf TOP TELEMETRY: agent config with mqtt on, TOP at the top level,
# TELEMETRY inside telemetry { }.
tl_conf() {
	ag_conf "$T/agent.conf" "$1
mqtt {
	enable = true
	brokers = {\"127.0.0.1:$MQ_PORT\"}
	username = \"gw-17\"
	password_file = \"$T/gw-17.pass\"
	keepalive = \"5s\"
	cmd_key_file = \"$T/cmd.key\"
	tls {
		ca = \"$PKI/ca.crt\"
		cert = \"$PKI/gw-17.crt\"
		key = \"$PKI/gw-17.key\"
	}
}
telemetry {
	hmac_key_file = \"$T/tm.key\"
$2
}"
}

tl_sign() { python3 "$T/tl.py" sign "$T/cmd.key" "$@"; }

# tl_cmd PAYLOAD: as user gw-17 (the ACL lets it write revtun/gw-17/#)
# with another client id, so the agent's session is not taken over.
tl_cmd() {
	mosquitto_pub -h 127.0.0.1 -p "$MQ_PORT" --cafile "$PKI/ca.crt" \
		--cert "$PKI/gw-18.crt" --key "$PKI/gw-18.key" \
		-u gw-17 -P gw17-secret -i operator-cmd -q 1 \
		-t revtun/gw-17/cmd -m "$1" || rt_fail "mosquitto_pub failed"
}

tl_py() { python3 "$T/tl.py" "$1" "$T/mon.log" "$T/tm.key" "${@:2}"; }

tl_agents() { relay_op alice_ed25519 alice agents 2>/dev/null; }

tl_write_py() {
	cat >"$T/tl.py" <<'PY'
import hashlib, hmac, json, os, sys, time

def key(path):
    return bytes.fromhex(open(path).read().strip())

def payloads(log, leaf):
    out = []
    for line in open(log, "rb"):
        line = line.rstrip(b"\n")
        t, _, p = line.partition(b" ")
        if t == b"revtun/gw-17/" + leaf.encode():
            out.append(p)
    return out

def verify(k, p):
    # docs/mqtt.md: HMAC over the payload minus its last 75 bytes plus "}"
    u = p[:-75] + b"}"
    return hmac.compare_digest(hmac.new(k, u, "sha256").hexdigest(),
                               p[-66:-2].decode())

cmd = sys.argv[1]
if cmd == "sign":
    # sign KEYFILE CMD [NONCE [TS]] -> the command JSON (docs/mqtt.md)
    k = key(sys.argv[2]); c = sys.argv[3]
    nonce = sys.argv[4] if len(sys.argv) > 4 else os.urandom(16).hex()
    ts = int(sys.argv[5]) if len(sys.argv) > 5 else int(time.time())
    canon = "revtun-cmd-v1\ngw-17\n%s\n%d\n%s\n" % (c, ts, nonce)
    mac = hmac.new(k, canon.encode(), "sha256").hexdigest()
    print(json.dumps({"cmd": c, "ts": ts, "nonce": nonce, "hmac": mac},
                     separators=(",", ":")))
    sys.exit(0)

log, k = sys.argv[2], key(sys.argv[3])
if cmd == "telemetry":
    # telemetry LOG KEY MIN: >= MIN system payloads, all signed, seq up
    n = int(sys.argv[4]); seqs = []; sysp = 0
    for p in payloads(log, "telemetry"):
        if not verify(k, p):
            sys.exit("bad hmac: %r" % p[:200])
        d = json.loads(p)
        assert d["agent"] == "gw-17" and list(d)[:3] == ["agent", "ts", "seq"]
        assert list(d)[-1] == "hmac"
        seqs.append(d["seq"])
        if "system" in d:
            s, t = d["system"], d["tunnel"]
            for f in ("uptime_s", "load", "mem", "disks", "ifaces"):
                assert f in s, f
            assert s["disks"][0]["path"] == "/" and s["disks"][0]["total"] > 0
            assert s["mem"]["total_kb"] > 0 and len(s["load"]) == 3
            for f in ("state", "sessions", "bytes_to_relay",
                      "bytes_from_relay", "reconnects"):
                assert f in t, f
            sysp += 1
    if sysp < n:
        sys.exit("%d system payloads, want %d" % (sysp, n))
    if seqs != sorted(seqs) or len(set(seqs)) != len(seqs):
        sys.exit("seq not increasing: %r" % seqs)
    print(len(seqs))
elif cmd == "user":
    # user LOG KEY NAME METRIC VALUE: a user set with that value
    name, m, v = sys.argv[4], sys.argv[5], json.loads(sys.argv[6])
    for p in payloads(log, "telemetry"):
        d = json.loads(p)
        if d.get("user", {}).get(name, {}).get(m) == v and verify(k, p):
            sys.exit(0)
    sys.exit(1)
elif cmd == "event":
    # event LOG KEY NAME [FIELD VALUE]: a signed event with that field
    name = sys.argv[4]
    f = sys.argv[5] if len(sys.argv) > 5 else None
    seqs = []
    found = False
    for p in payloads(log, "events"):
        if not verify(k, p):
            sys.exit("bad hmac on event: %r" % p[:200])
        d = json.loads(p)
        seqs.append(d["seq"])
        if d["event"] == name and (f is None or str(d.get(f)) == sys.argv[6]):
            found = True
    if seqs != sorted(seqs):
        sys.exit("event seq not increasing: %r" % seqs)
    sys.exit(0 if found else 1)
elif cmd == "last":
    # last LOG KEY LEAF: prints the last payload on LEAF
    print(payloads(log, sys.argv[4])[-1].decode())
elif cmd == "maxseq":
    print(max([json.loads(p)["seq"] for p in payloads(log, sys.argv[4])]
              or [0]))
PY
}
