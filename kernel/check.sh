#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Static checks of the smpusb driver, each of which must report nothing:
#   1. W=1 build against Debian's headers (make, see Makefile for KVER)
#   2. sparse on every file (make C=2)
#   3. checkpatch.pl --strict --no-tree from linux-source-6.1 on every
#      kernel file (unpacked in ${SMP_KUNIT_CACHE:-/var/cache/libsmp-kunit})
# Prints one "check.sh: PASS|FAIL: <check>" line per check; exits non-zero
# when any check fails or cannot run.
set -u

here=$(cd "$(dirname "$0")" && pwd)
cache=${SMP_KUNIT_CACHE:-/var/cache/libsmp-kunit}
tarball=/usr/src/linux-source-6.1.tar.xz
src=$cache/linux-source-6.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

result() {
	if [ "$2" = 0 ]; then
		echo "check.sh: PASS: $1"
	else
		echo "check.sh: FAIL: $1" >&2
		fail=1
	fi
}

cd "$here" || exit 1

# 1. W=1 build, from clean so every file is compiled.
make -s clean >/dev/null 2>&1
make W=1 >"$tmp/build.log" 2>&1
rc=$?
if [ $rc = 0 ] && ! grep -Eq '(warning|error):' "$tmp/build.log"; then
	result "W=1 build" 0
else
	cat "$tmp/build.log" >&2
	result "W=1 build" 1
fi

# 2. sparse: C=2 checks every file whether or not it is rebuilt.
if command -v sparse >/dev/null 2>&1; then
	make sparse >"$tmp/sparse.log" 2>&1
	rc=$?
	if [ $rc = 0 ] && ! grep -Eq '(warning|error):' "$tmp/sparse.log"; then
		result "sparse (C=2)" 0
	else
		cat "$tmp/sparse.log" >&2
		result "sparse (C=2)" 1
	fi
else
	echo "check.sh: sparse not installed (apt-get install sparse)" >&2
	result "sparse (C=2)" 1
fi

# 3. checkpatch --strict on every file of the driver.
if [ ! -f "$src/.libsmp-unpacked" ] && [ -f "$tarball" ]; then
	mkdir -p "$cache" && rm -rf "$src" &&
		tar -C "$cache" -xf "$tarball" && touch "$src/.libsmp-unpacked"
fi
cp=$src/scripts/checkpatch.pl
if [ -x "$cp" ]; then
	# Relative paths, so checkpatch knows include/uapi/ for what it is;
	# generated *.mod.c files are not ours; tests/smpusb-tool.c is
	# userspace (built with -Wall -Wextra -Werror by the Makefile).
	files=$(ls *.c *.h include/uapi/linux/*.h tests/*_kunit.c Kbuild Kconfig \
		Makefile dkms.conf Documentation/ABI/testing/* 2>/dev/null |
		grep -v '\.mod\.c$')
	"$cp" --strict --no-tree --no-summary --terse -f $files \
		>"$tmp/checkpatch.log" 2>&1
	rc=$?
	if [ $rc = 0 ] && [ ! -s "$tmp/checkpatch.log" ]; then
		result "checkpatch --strict ($(echo $files | wc -w) files)" 0
	else
		cat "$tmp/checkpatch.log" >&2
		result "checkpatch --strict" 1
	fi
else
	echo "check.sh: $cp missing: apt-get install linux-source-6.1" >&2
	result "checkpatch --strict" 1
fi

exit $fail
