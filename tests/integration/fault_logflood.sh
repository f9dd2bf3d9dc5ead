#!/bin/bash
# fault_logflood.sh - a peer cannot fill the relay's disk through its log
# (FAULTS.md P9: "rate-limited logging; no disk fill"). 2,000 connections
# that each send a bogus TLS record (LF_CONNS, at most LF_SECS = 20 s)
# may add at most LF_MAX_LINES (200) lines to the relay's log; the relay
# still serves an agent afterwards.
#
# Refused handshakes are logged through a rate limiter
# (relay/agent_conn.c agent_free, 20 lines per 10 s plus a count of the
# suppressed ones).
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"
[ -x "$RT_RELAY" ] || rt_fail "$RT_RELAY not built"
LF_CONNS=${LF_CONNS:-2000}
LF_SECS=${LF_SECS:-20}
LF_MAX_LINES=${LF_MAX_LINES:-200}

relay_write_conf "$T/relay.conf"
relay_echo_start
relay_start
before=$(wc -l <"$T/relay.log")
python3 - "$RPORT" "$LF_CONNS" "$LF_SECS" <<'PY' >"$T/flood.out" 2>&1 || rt_fail "flood client: $(cat "$T/flood.out")"
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
end, done = time.time() + secs, 0
while done < n and time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"\x16\x01\x00\x00\x05hello")    # a record with a bad version
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
        done += 1
    except OSError:
        time.sleep(0.01)
print("%d connections" % done)
PY
rt_alive "$(rt_pid relay)" || rt_fail "relay died under the flood"
sleep 0.5
added=$(( $(wc -l <"$T/relay.log") - before ))
rt_log "flood: $(cat "$T/flood.out"), relay log grew by $added lines ($(wc -c <"$T/relay.log") bytes)"
relay_agent agent gw-17 -R "echo:7:127.0.0.1:$ECHOPORT"
rt_wait_log 20 "$T/relay.log" "agent gw-17: service echo:7 registered" ||
	rt_fail "relay does not serve an agent after the flood"
rt_ok "relay serves an agent after the flood"
# Regression: relay/agent_conn.c agent_free() once logged every failure.
[ "$added" -le "$LF_MAX_LINES" ] ||
	rt_fail "$(cat "$T/flood.out") added $added lines to the relay log (bound $LF_MAX_LINES): failed handshakes are logged without rate limit"
rt_pass
