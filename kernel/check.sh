#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Static checks of the smpusb driver, each of which must report nothing:
#   1. W=1 build against each kernel's headers (make KVER=...)
#   2. sparse on every file, against each kernel's headers (make C=2)
#   3. checkpatch.pl --strict --no-tree from linux-source-6.1 on every
#      kernel file (unpacked in ${SMP_KUNIT_CACHE:-/var/cache/libsmp-kunit})
# Usage: check.sh [KERNEL...]  (series or releases; default: every series
# build-aux/kernels.sh lists, each of whose headers must be installed).
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
kernels_sh=$here/../build-aux/kernels.sh
if [ $# -gt 0 ]; then
	kernels=$*
elif [ -x "$kernels_sh" ]; then
	kernels=$("$kernels_sh" list)
else
	kernels=$(uname -r)
fi

for k in $kernels; do
	if [ -x "$kernels_sh" ]; then
		if ! kver=$("$kernels_sh" kver "$k" 2>"$tmp/kver.log"); then
			cat "$tmp/kver.log" >&2
			result "kernel $k: headers installed" 1
			continue
		fi
	else
		kver=$k
	fi
	what="$k: $kver"
	[ "$k" = "$kver" ] && what=$k

	# 1. W=1 build, from clean so every file is compiled.
	make -s KVER="$kver" clean >/dev/null 2>&1
	make KVER="$kver" W=1 >"$tmp/build.log" 2>&1
	rc=$?
	if [ $rc = 0 ] && ! grep -Eq '(warning|error):' "$tmp/build.log"; then
		result "W=1 build ($what)" 0
	else
		cat "$tmp/build.log" >&2
		result "W=1 build ($what)" 1
	fi

	# 2. sparse: C=2 checks every file whether or not it is rebuilt.
	if command -v sparse >/dev/null 2>&1; then
		make KVER="$kver" sparse >"$tmp/sparse.log" 2>&1
		rc=$?
		if [ $rc = 0 ] && ! grep -Eq '(warning|error):' "$tmp/sparse.log"; then
			result "sparse (C=2) ($what)" 0
		else
			cat "$tmp/sparse.log" >&2
			result "sparse (C=2) ($what)" 1
		fi
	else
		echo "check.sh: sparse not installed (apt-get install sparse)" >&2
		result "sparse (C=2)" 1
	fi
done
# Leave the default kernel's module in kernel/, as `make` does.
[ "$(echo $kernels | wc -w)" -gt 1 ] && make -s clean >/dev/null 2>&1 && make -s >/dev/null 2>&1

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
		grep -v '\.mod\.c$' | grep -vx 'smpusb_compat\.h')
	"$cp" --strict --no-tree --no-summary --terse -f $files \
		>"$tmp/checkpatch.log" 2>&1
	rc=$?
	# The compat header is the one place allowed LINUX_VERSION_CODE
	# (smpusb_compat.h says why); every other check applies to it.
	"$cp" --strict --no-tree --no-summary --terse --ignore LINUX_VERSION_CODE \
		-f smpusb_compat.h >>"$tmp/checkpatch.log" 2>&1 || rc=1
	files="$files smpusb_compat.h"
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
