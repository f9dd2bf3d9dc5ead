#!/bin/bash
# units.sh - the systemd units in conf/ are well-formed and hardened:
# `systemd-analyze security --offline` must rate each at most 2.0 ("OK").
. "$top_srcdir/tests/integration/lib.sh"
rt_setup
command -v systemd-analyze >/dev/null || rt_skip "systemd-analyze not installed (optional)"
for u in relay agent; do
	unit="$top_builddir/conf/revtun-$u.service"
	[ -f "$unit" ] || rt_fail "$unit not built"
	grep -q '^ExecStart=/.*/revtun-'$u' -f /' "$unit" || rt_fail "$u: ExecStart paths not filled in"
	cp "$unit" "$T/"
	out=$(systemd-analyze security --offline=true "$T/revtun-$u.service" 2>&1) ||
		{ echo "$out"; rt_fail "$u: systemd-analyze failed"; }
	level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	[ -n "$level" ] || { echo "$out"; rt_fail "$u: no exposure level"; }
	awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || rt_fail "$u: exposure $level > 2.0"
	rt_ok "revtun-$u.service exposure $level"
done
rt_pass
