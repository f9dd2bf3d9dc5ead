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

# T12: certificates close to their end are announced at start, with the
# date and the consequence (the agent's, the relay's), and still work.
/usr/bin/python3 - "$PKI" "$T" <<'PY' || rt_fail "could not make the short-lived certificates"
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
pki, out = sys.argv[1], sys.argv[2]
ca = x509.load_pem_x509_certificate(open(pki + "/ca.crt", "rb").read())
cakey = serialization.load_pem_private_key(open(pki + "/ca.key", "rb").read(), None)
now = datetime.datetime.now(datetime.timezone.utc)
for name, cn, days, eku in (("soon-agent", "gw-17", 10, ExtendedKeyUsageOID.CLIENT_AUTH),
                            ("soon-relay", "relay", 5, ExtendedKeyUsageOID.SERVER_AUTH)):
    k = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(ca.subject).public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=days, hours=12))
         .add_extension(x509.ExtendedKeyUsage([eku]), False))
    if cn == "relay":
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    c = b.sign(cakey, hashes.SHA256())
    open("%s/%s.crt" % (out, name), "wb").write(c.public_bytes(serialization.Encoding.PEM))
    open("%s/%s.key" % (out, name), "wb").write(k.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY
chmod 600 "$T"/soon-*.key
sed "s|$PKI/gw-17\.crt|$T/soon-agent.crt|; s|$PKI/gw-17\.key|$T/soon-agent.key|" "$T/good.conf" >"$T/agent.conf"
mv "$T/agent.log" "$T/agent0.log"
ag_agent
rt_wait_log 10 "$T/agent.log" "certificate $T/soon-agent.crt expires in 10 days, on 20[0-9-]+ .*: renew it before then, or the relay will refuse this agent" ||
	rt_fail "agent: no warning for its certificate 10 days before its end"
ag_wait_up 1 20 || rt_fail "agent with a short-lived certificate did not come up"
ag_stop
RP2=$(rt_free_port)
sed "s|127.0.0.1:$RPORT|127.0.0.1:$RP2|; s|$PKI/relay\.crt|$T/soon-relay.crt|; s|$PKI/relay\.key|$T/soon-relay.key|" \
	"$T/relay.conf" >"$T/relay2.conf"
rt_spawn relay2 "$RT_RELAY" -f "$T/relay2.conf"
rt_wait_log 15 "$T/relay2.log" "certificate $T/soon-relay.crt expires in 5 days, on .*: renew it before then, or agents will refuse this relay" ||
	rt_fail "relay: no warning for its certificate 5 days before its end"
rt_stop relay2 >/dev/null
rt_ok "T12: agent and relay announce their certificate's end (10 and 5 days) with date and consequence"

# own certificate expired: said at start, refused by the relay, fixed on disk
sed "s|$PKI/gw-17\.|$PKI/agent-expired.|g" "$T/good.conf" >"$T/agent.conf"
mv "$T/agent.log" "$T/agent1.log"
ag_agent
rt_wait_log 10 "$T/agent.log" "certificate $PKI/agent-expired.crt expired on 2020-02-01 .*: the relay will refuse this agent" ||
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
