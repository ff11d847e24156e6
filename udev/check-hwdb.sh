#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Compile hwdb files alone with `systemd-hwdb --strict update --root` and
# fail on any message (--strict in systemd 252 still exits 0 for some
# ignored records), then check lookups:
# usage: check-hwdb.sh HWDB [MODALIAS=KEY=VALUE | MODALIAS=!]...
#   MODALIAS=KEY=VALUE  the lookup must give KEY=VALUE
#   MODALIAS=!          the lookup must give nothing
set -u
[ $# -ge 1 ] || { echo "usage: $0 HWDB [CHECK...]" >&2; exit 2; }
command -v systemd-hwdb > /dev/null || { echo "check-hwdb: systemd-hwdb missing" >&2; exit 2; }
hwdb=$1
shift
[ -f "$hwdb" ] || { echo "check-hwdb: $hwdb not found" >&2; exit 2; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/etc/udev/hwdb.d"
cp "$hwdb" "$tmp/etc/udev/hwdb.d/"
if ! systemd-hwdb --strict update --root "$tmp" > "$tmp/out" 2>&1 || [ -s "$tmp/out" ]; then
	echo "check-hwdb: $hwdb does not compile clean:" >&2
	cat "$tmp/out" >&2
	exit 1
fi
[ -s "$tmp/etc/udev/hwdb.bin" ] || { echo "check-hwdb: no hwdb.bin produced" >&2; exit 1; }
fail=0
for c in "$@"; do
	alias=${c%%=*}
	want=${c#*=}
	got=$(systemd-hwdb query --root "$tmp" "$alias" 2>&1)
	if [ "$want" = "!" ]; then
		if [ -n "$got" ]; then
			echo "check-hwdb: $alias: want no match, got: $got" >&2
			fail=1
		fi
	elif ! grep -qxF "$want" <<< "$got"; then
		echo "check-hwdb: $alias: want $want, got: ${got:-nothing}" >&2
		fail=1
	fi
done
[ "$fail" = 0 ] && echo "check-hwdb: $(basename "$hwdb"): compiles clean, $# lookups as expected"
exit $fail
