# tests/integration/lib.sh - sourced by every integration test.
#
# Gives each test its own temp dir, a throwaway PKI, free ports, bounded
# polling instead of sleeps, and a trap that ends exactly the processes the
# test started (by PID) and removes the temp dir.
#
#   . "$top_srcdir/tests/integration/lib.sh"
#   rt_setup                       # temp dir in $T, traps, $RT_BIN paths
#   rt_pki                         # scripts/mkpki into $T/pki
#   port=$(rt_free_port)
#   rt_spawn NAME cmd args...      # background, stdout+stderr to $T/NAME.log,
#                                  # PID in $T/NAME.pid, killed at exit
#   rt_wait 10 "description" cmd   # poll cmd until it succeeds, max 10 s
#   rt_pass / rt_fail "why" / rt_skip "why"
#
# Exit codes follow automake: 0 pass, 1 fail, 77 skip (optional tools only),
# 99 hard error.

set -u

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
RT_RELAY="$top_builddir/relay/revtun-relay"
RT_AGENT="$top_builddir/agent/revtun-agent"
RT_TOOLS="$top_builddir/tests/tools"
RT_TEST=$(basename "$0" .sh)
RT_PIDS=""

rt_log() { printf '[%s %s] %s\n' "$RT_TEST" "$(date +%H:%M:%S)" "$*"; }

rt_cleanup() {
	rc=$?
	for p in $RT_PIDS; do kill "$p" 2>/dev/null; done
	# give them a moment, then make sure (bounded)
	i=0
	for p in $RT_PIDS; do
		while rt_alive "$p" && [ $i -lt 50 ]; do
			sleep 0.1; i=$((i + 1))
		done
		kill -9 "$p" 2>/dev/null
	done
	if [ "$rc" != 0 ] && [ -n "${T:-}" ] && [ -d "$T" ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "---- $f (last 40 lines)"; tail -n 40 "$f"
		done
	fi
	[ -n "${T:-}" ] && [ -z "${RT_KEEP:-}" ] && rm -rf "$T"
	exit "$rc"
}

rt_setup() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/rt-$RT_TEST.XXXXXX") || exit 99
	trap rt_cleanup EXIT
	trap 'exit 1' INT TERM
	rt_log "temp dir $T"
}

rt_fail() { rt_log "FAIL: $*"; exit 1; }
rt_skip() { rt_log "SKIP: $*"; exit 77; }
rt_pass() { rt_log "PASS${1:+: $*}"; exit 0; }
rt_ok()   { rt_log "ok: $*"; }

# rt_need CMD... : a core peer missing is a failure, not a skip.
rt_need() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || rt_fail "required tool $c not installed (scripts/check installs it)"
	done
}

rt_pki() {
	"$top_srcdir/scripts/mkpki" "$T/pki" >"$T/mkpki.log" 2>&1 ||
		{ cat "$T/mkpki.log"; rt_fail "mkpki failed"; }
	PKI="$T/pki"
}

# A TCP port nobody listens on right now (the kernel picks it).
rt_free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rt_spawn() {
	name=$1; shift
	"$@" >"$T/$name.log" 2>&1 &
	pid=$!
	echo "$pid" >"$T/$name.pid"
	RT_PIDS="$RT_PIDS $pid"
}

rt_pid() { cat "$T/$1.pid"; }

# rt_alive PID : running and not a zombie waiting to be reaped.
rt_alive() {
	[ -r "/proc/$1/stat" ] || return 1
	! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$1/stat" 2>/dev/null
}

# rt_wait SECONDS "what" cmd... : poll every 0.1 s until cmd succeeds.
rt_wait() {
	secs=$1; what=$2; shift 2
	end=$(( $(date +%s) + secs ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && { rt_log "timed out after ${secs}s waiting for: $what"; return 1; }
		sleep 0.1
	done
	return 0
}

# rt_wait_log SECONDS FILE REGEX : wait for a line in a log file.
rt_wait_log() { rt_wait "$1" "'$3' in $(basename "$2")" grep -qE -- "$3" "$2"; }

# rt_listening PORT : something listens on 127.0.0.1:PORT or [::1]:PORT.
rt_listening() {
	hex=$(printf '%04X' "$1")
	grep -qE "^ *[0-9]+: [0-9A-F]+:$hex [0-9A-F]+:0000 0A" /proc/net/tcp /proc/net/tcp6
}

rt_dead() { ! rt_alive "$1"; }

# rt_stop NAME [SECONDS] : TERM a spawned process, wait for it to exit and
# print its exit status. Call it directly, not in $(...): only the shell
# that spawned the process can collect its status.
rt_stop() {
	p=$(rt_pid "$1"); secs=${2:-10}
	kill -TERM "$p" 2>/dev/null
	rt_wait "$secs" "$1 to exit" rt_dead "$p" || return 1
	wait "$p" 2>/dev/null
	echo $?
}
