#!/bin/bash
# fault_config.sh - FAULTS.md C6 and C8 against the real daemons:
#   C8: hostile configuration files (100 MB, symlink to /dev/zero, FIFO,
#       directory, NUL byte, 20,000 nested sections, a 900 KB line, random
#       bytes, empty) are refused by both daemons at start and by -t, with
#       exit 78 (EX_CONFIG), quickly (no read of /dev/zero, no hang on the
#       FIFO), and a first message that names the file.
#   C6: key of another pair and an empty CA bundle stop the relay at start
#       with the file named; the agent names them on every attempt and never
#       falls back to unverified TLS; an agent whose own certificate expired
#       says so at start, is refused by the relay (audited), and connects by
#       itself once a valid certificate is in place.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/agent_lib.sh"
rt_setup
rt_need ssh-keygen openssl timeout
rt_pki
. "$top_srcdir/tests/integration/relay_common.sh"

san_clean() { ! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$1"; }

# 1. C8: hostile files.
H=$T/hostile
mkdir "$H"
truncate -s 100M "$H/big.conf"
ln -s /dev/zero "$H/zero.conf"
mkfifo "$H/fifo.conf"
mkdir "$H/dir.conf"
printf 'log_level = "info"\nlog\0_level = "debug"\n' >"$H/nul.conf"
python3 -c 'print("s {" * 20000)' >"$H/deep.conf"
python3 -c 'print("x = \"" + "a" * 900000 + "\"")' >"$H/longline.conf"
head -c 4096 /dev/urandom >"$H/random.conf"
: >"$H/empty.conf"
# case FILE PATTERN : what the first message must say after "FILE"
cases="big:larger than the limit
zero:not a regular file
fifo:not a regular file
dir:not a regular file
nul:NUL byte
deep:is never closed
longline:
random:
empty:"
n=0
for d in relay agent; do
	bin=$RT_RELAY; [ $d = agent ] && bin=$RT_AGENT
	while IFS=: read -r name want; do
		f=$H/$name.conf
		for mode in "-t" ""; do
			t0=$(date +%s)
			timeout 20 "$bin" $mode -f "$f" >"$T/c8.out" 2>&1
			rc=$?
			dt=$(( $(date +%s) - t0 ))
			[ "$rc" = 78 ] || { cat "$T/c8.out"; rt_fail "$d ${mode:-start} $name.conf: exit $rc, want 78"; }
			# empty: the missing required settings are named instead
			if [ "$name" = empty ]; then
				grep -q "^$f: .*required" "$T/c8.out" ||
					{ cat "$T/c8.out"; rt_fail "$d $name.conf: required settings not named"; }
			else
				head -n 1 "$T/c8.out" | grep -qE -- "^$f(:[0-9]+)?: .*${want:-.}" ||
					{ cat "$T/c8.out"; rt_fail "$d ${mode:-start} $name.conf: first message does not name the file${want:+ and say '$want'}"; }
			fi
			san_clean "$T/c8.out" || { cat "$T/c8.out"; rt_fail "$d $name.conf: sanitizer report"; }
			[ "$dt" -le 10 ] || rt_fail "$d $name.conf: took ${dt}s"
			n=$((n + 1))
		done
	done <<<"$cases"
done
rt_ok "C8: $n hostile-file starts refused with exit 78 and the file named ($(head -n 1 "$T/c8.out" | cut -c1-80))"

# 2. C6 at the relay: the daemon does not start, and says which file.
relay_write_conf "$T/relay.conf"
: >"$T/empty-ca.pem"
sed "s|$PKI/relay.key|$PKI/gw-17.key|" "$T/relay.conf" >"$T/mismatch.conf"
sed "s|ca = \"$PKI/ca.crt\"|ca = \"$T/empty-ca.pem\"|" "$T/relay.conf" >"$T/noca.conf"
for c in "mismatch:$PKI/gw-17.key.*mismatch" "noca:CA file $T/empty-ca.pem: no certificate"; do
	name=${c%%:*} want=${c#*:}
	timeout 20 "$RT_RELAY" -f "$T/$name.conf" >"$T/$name.out" 2>&1
	rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || { cat "$T/$name.out"; rt_fail "relay with $name: exit $rc"; }
	grep -qE -- "$want" "$T/$name.out" || { cat "$T/$name.out"; rt_fail "relay with $name: '$want' not said"; }
	! rt_listening "$RPORT" || rt_fail "relay with $name: listening anyway"
done
rt_ok "C6 relay: key of another pair and empty CA stop the start, file named"

# 3. C6 at the agent, against a real relay.
relay_echo_start
relay_start
RELAY_PORT=$RPORT ECHO_PORT=$ECHOPORT ag_conf "$T/good.conf"
sed -i 's/log_level = "debug"/log_level = "info"/' "$T/good.conf"
sed "s|$PKI/ca.crt|$T/empty-ca.pem|" "$T/good.conf" >"$T/agent.conf"
ag_agent
rt_wait_log 15 "$T/agent.log" "CA file $T/empty-ca.pem: no certificate" ||
	rt_fail "agent with an empty CA: not named"
rt_wait 15 "a second attempt" eval '[ "$(grep -c "empty-ca.pem" "$T/agent.log")" -ge 2 ]' ||
	rt_fail "agent with an empty CA: no retry"
grep -q 'agent_up' "$T/audit.log" 2>/dev/null && rt_fail "empty CA: the agent connected (no verification?)"
# the own certificate is also the wrong pair's: named on each attempt
sed "s|$PKI/gw-17.key|$PKI/gw-18.key|" "$T/good.conf" >"$T/agent.conf"
kill -HUP "$(rt_pid agent)"
rt_wait_log 15 "$T/agent.log" "gw-18.key .*mismatch" ||
	rt_fail "agent with a key of another pair: not named"
grep -q 'agent_up' "$T/audit.log" 2>/dev/null && rt_fail "key mismatch: the agent connected"
rt_ok "C6 agent: empty CA and key mismatch named on every attempt, no session"
ag_stop

# own certificate expired: said at start, refused by the relay, fixed on disk
sed "s|$PKI/gw-17\.|$PKI/agent-expired.|g" "$T/good.conf" >"$T/agent.conf"
mv "$T/agent.log" "$T/agent1.log"
ag_agent
rt_wait_log 10 "$T/agent.log" "certificate $PKI/agent-expired.crt has expired" ||
	rt_fail "expired own certificate not reported at start"
rt_wait 15 "relay refusal audited" relay_audit_has agent_deny \
	"'has expired' in (d.get('reason') or '')" || rt_fail "relay did not audit the expired agent certificate"
cp "$PKI/gw-17.crt" "$PKI/agent-expired.crt"
cp "$PKI/gw-17.key" "$PKI/agent-expired.key"
ag_wait_up 1 30 || rt_fail "agent did not connect once a valid certificate was in place"
rt_ok "C6 agent: expired own certificate reported, refused, then up with a valid one without a restart"
ag_stop
san_clean "$T/relay.log" || rt_fail "sanitizer report in relay.log"
rt_pass
