#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Syntax check of udev rules files with Debian 12's udevadm (systemd 252 has
# no `udevadm verify`): in a private mount namespace, the files replace
# /etc/udev/rules.d, the groups they name are added to a copy of
# /etc/group, and `udevadm test` parses every rules file.  Any message udev
# prints about one of our files (invalid key, unknown group, ...) fails.
# usage: check-rules.sh RULES...      (needs root for the mount namespace)
set -u
[ $# -gt 0 ] || { echo "usage: $0 RULES..." >&2; exit 2; }
command -v udevadm > /dev/null || { echo "check-rules: udevadm missing (apt-get install udev)" >&2; exit 2; }
command -v unshare > /dev/null || { echo "check-rules: unshare missing" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "check-rules: needs root (mount namespace)" >&2; exit 2; }

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/rules.d"
for f in "$@"; do
	[ -f "$f" ] || { echo "check-rules: $f not found" >&2; exit 2; }
	cp "$f" "$tmp/rules.d/" || exit 2
done
# The groups the rules use exist on an installed system (sysusers.d).
cp /etc/group "$tmp/group"
for g in $(sed -n 's/.*GROUP:\{0,1\}="\([^"$]*\)".*/\1/p' "$@" | sort -u); do
	getent group "$g" > /dev/null || echo "$g:x:999:" >> "$tmp/group"
done
dev=
for d in /sys/class/net/lo /sys/devices/virtual/mem/null /sys/class/tty/tty0; do
	[ -e "$d" ] && { dev=$d; break; }
done
[ -n "$dev" ] || { echo "check-rules: no sysfs device to run udevadm test on" >&2; exit 2; }

unshare -m /bin/sh -c '
	mount --make-rprivate / &&
	mount --bind "$1/rules.d" /etc/udev/rules.d &&
	mount --bind "$1/group" /etc/group &&
	udevadm test --action=add "$2"' sh "$tmp" "$dev" > "$tmp/out" 2>&1
rc=$?
fail=0
for f in "$@"; do
	b=$(basename "$f")
	if ! grep -q "^Reading rules file: /etc/udev/rules.d/$b\$" "$tmp/out"; then
		echo "check-rules: udevadm did not read $b (exit $rc):" >&2
		tail -n 20 "$tmp/out" >&2
		fail=1
		continue
	fi
	if grep "^/etc/udev/rules.d/$b" "$tmp/out" >&2; then
		echo "check-rules: $b: udev complains (lines above)" >&2
		fail=1
	else
		echo "check-rules: $b: parsed clean"
	fi
done
exit $fail
