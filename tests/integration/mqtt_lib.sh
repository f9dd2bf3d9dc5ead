# tests/integration/mqtt_lib.sh - sourced by the mqtt_*.sh tests after
# lib.sh: a real mosquitto broker on a free loopback port with mutual TLS
# (certificates from scripts/mkpki), a password file, an ACL and
# persistence, plus helpers to run tests/tools/mqtt_pub against it and a
# monitor subscriber.
#
#   mq_setup                 # rt_setup + rt_pki + broker files in $MQ
#   mq_start / mq_stop [KILL] / mq_restart [KILL]
#   mq_monitor NAME TOPIC    # mosquitto_sub -v as "monitor" into $T/NAME.log
#   mq_pub NAME ARGS...      # rt_spawn of mqtt_pub with TLS and credentials
#   mq_seqs FILE             # the seq=N numbers seen, one per line
#
# Users: gw-17 (password in $MQ/gw-17.pass, ACL: readwrite revtun/gw-17/#),
# monitor (read revtun/#). Agent id = user name = gw-17.

RT_MQTT_PUB="$RT_TOOLS/mqtt_pub"

mq_setup() {
	rt_setup
	rt_need mosquitto mosquitto_sub mosquitto_pub mosquitto_passwd openssl
	rt_pki
	MQ="$T/broker"
	mkdir -p "$MQ/data"
	MQ_PORT=$(rt_free_port)
	cp "$PKI/ca.crt" "$PKI/broker.crt" "$PKI/broker.key" "$MQ/"
	mosquitto_passwd -c -b "$MQ/passwd" gw-17 gw17-secret >/dev/null 2>&1 ||
		rt_fail "mosquitto_passwd failed"
	mosquitto_passwd -b "$MQ/passwd" monitor monitor-secret >/dev/null 2>&1
	printf 'gw17-secret\n' >"$T/gw-17.pass"
	printf 'wrong-secret\n' >"$T/wrong.pass"
	chmod 600 "$T/gw-17.pass" "$T/wrong.pass" "$MQ/passwd"
	cat >"$MQ/acl" <<-'EOF'
	user monitor
	topic read revtun/#
	pattern readwrite revtun/%u/#
	EOF
	cat >"$MQ/mosquitto.conf" <<-EOF
	per_listener_settings false
	allow_anonymous false
	password_file $MQ/passwd
	acl_file $MQ/acl
	persistence true
	persistence_location $MQ/data/
	autosave_interval 1
	log_dest file $MQ/mosquitto.log
	log_type all
	connection_messages true
	log_timestamp_format %Y-%m-%dT%H:%M:%S
	listener $MQ_PORT 127.0.0.1
	cafile $MQ/ca.crt
	certfile $MQ/broker.crt
	keyfile $MQ/broker.key
	require_certificate true
	use_identity_as_username false
	tls_version tlsv1.2
	EOF
	# As root, mosquitto drops to its own user: let it in.
	if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
		chmod 711 "$T"
		chown -R mosquitto: "$MQ"
	fi
	MQ_SUB=(-h 127.0.0.1 -p "$MQ_PORT" --cafile "$PKI/ca.crt"
		--cert "$PKI/gw-18.crt" --key "$PKI/gw-18.key"
		-u monitor -P monitor-secret)
	MQ_NBROKER=0
}

# Starts the broker (in the foreground of an rt_spawn, so its PID is ours).
mq_start() {
	MQ_NBROKER=$((MQ_NBROKER + 1))
	rt_spawn "broker$MQ_NBROKER" mosquitto -c "$MQ/mosquitto.conf"
	MQ_BROKER="broker$MQ_NBROKER"
	rt_wait 10 "broker listening" rt_listening "$MQ_PORT" ||
		rt_fail "mosquitto did not start"
}

# mq_stop [KILL]: TERM (or KILL) the broker and wait until it is gone.
mq_stop() {
	p=$(rt_pid "$MQ_BROKER")
	kill -"${1:-TERM}" "$p" 2>/dev/null
	rt_wait 10 "broker exit" rt_dead "$p" || rt_fail "broker did not stop"
	wait "$p" 2>/dev/null
	rt_wait 10 "port free" sh -c "! grep -qE ':$(printf %04X "$MQ_PORT") [0-9A-F]+:0000 0A' /proc/net/tcp"
}

mq_restart() { mq_stop "${1:-TERM}"; mq_start; }

# mq_monitor NAME TOPIC [extra mosquitto_sub args]: a persistent QoS 1
# subscriber (client id NAME) printing "topic payload" lines.
mq_monitor() {
	name=$1 topic=$2; shift 2
	rt_spawn "$name" mosquitto_sub "${MQ_SUB[@]}" -i "$name" -c -q 1 \
		-t "$topic" -v "$@"
	rt_wait_log 10 "$MQ/mosquitto.log" "$name [0-9] $topic" ||
		rt_fail "monitor $name did not subscribe"
}

# mq_pub NAME ARGS...: mqtt_pub as gw-17 with mutual TLS and password.
mq_pub() {
	name=$1; shift
	rt_spawn "$name" "$RT_MQTT_PUB" -b "127.0.0.1:$MQ_PORT" \
		--ca "$PKI/ca.crt" --cert "$PKI/gw-17.crt" --key "$PKI/gw-17.key" \
		-u gw-17 -P "$T/gw-17.pass" -i gw-17 "$@"
}

# mq_seqs FILE: the distinct seq numbers, sorted.
mq_seqs() { grep -o 'seq=[0-9]*' "$1" | cut -d= -f2 | sort -n | uniq; }

# mq_check_complete FILE FIRST LAST: every seq in FIRST..LAST arrived;
# prints the number of duplicates.
mq_check_complete() {
	f=$1 first=$2 last=$3
	want=$((last - first + 1))
	got=$(mq_seqs "$f" | awk -v a="$first" -v b="$last" '$1 >= a && $1 <= b' | wc -l)
	total=$(grep -c 'seq=' "$f")
	[ "$got" -eq "$want" ] || {
		missing=$(seq "$first" "$last" | sort >"$T/want.txt"; mq_seqs "$f" | sort >"$T/got.txt"; comm -23 "$T/want.txt" "$T/got.txt" | sort -n | head -10 | tr '\n' ' ')
		rt_fail "$want messages expected in $f, $got distinct arrived; first missing: $missing"
	}
	echo $((total - got))
}

# mq_count FILE: seq lines so far (for rt_wait).
mq_has_all() { [ "$(mq_seqs "$1" | wc -l)" -ge "$2" ]; }
