#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
#
# Runs the smpusb KUnit suite under UML with kunit.py, on Debian's
# linux-source-6.1 unpacked in a cache outside the repository
# (${SMP_KUNIT_CACHE:-/var/cache/libsmp-kunit}).  The tree gets
# drivers/misc/smpusb/ holding symlinks to this repository's files, so the
# repository stays the source of truth; the UML build output is kept in the
# cache between runs.
#
# Fails loudly when the source is missing, the build fails, or any test
# case defined in smpusb_kunit.c is not reported as passed (skipped and
# missing cases are failures).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
kdir=$(cd "$here/.." && pwd)
cache=${SMP_KUNIT_CACHE:-/var/cache/libsmp-kunit}
tarball=/usr/src/linux-source-6.1.tar.xz
src=$cache/linux-source-6.1
build=$cache/build-um
python=/usr/bin/python3
jobs=${SMP_KUNIT_JOBS:-2}

die() {
	echo "run-kunit: FAIL: $*" >&2
	exit 1
}

[ -x "$python" ] || die "$python not found (Debian's python3 is required)"

if [ ! -f "$src/.libsmp-unpacked" ]; then
	[ -f "$tarball" ] || die "$tarball missing: apt-get install linux-source-6.1"
	mkdir -p "$cache"
	echo "run-kunit: unpacking $tarball into $cache"
	rm -rf "$src"
	tar -C "$cache" -xf "$tarball"
	touch "$src/.libsmp-unpacked"
fi

# Link our sources into the tree: a real directory of symlinks, so build
# products of the out-of-tree module in kernel/ never leak into it.
dst=$src/drivers/misc/smpusb
rm -rf "$dst"
mkdir -p "$dst/tests"
for f in "$kdir"/Kbuild "$kdir"/Kconfig "$kdir"/*.c "$kdir"/*.h; do
	[ -e "$f" ] && ln -s "$f" "$dst/"
done
for f in "$kdir"/tests/*_kunit.c; do
	[ -e "$f" ] && ln -s "$f" "$dst/tests/"
done
ln -s "$kdir/include" "$dst/include"

grep -q 'drivers/misc/smpusb/Kconfig' "$src/drivers/misc/Kconfig" ||
	sed -i '$i source "drivers/misc/smpusb/Kconfig"' "$src/drivers/misc/Kconfig"
grep -q '^obj-y += smpusb/' "$src/drivers/misc/Makefile" ||
	echo 'obj-y += smpusb/' >>"$src/drivers/misc/Makefile"

log=$cache/kunit.log
set +e
(cd "$src" && "$python" tools/testing/kunit/kunit.py run --arch=um \
	--build_dir="$build" --jobs="$jobs" \
	--kunitconfig="$here/.kunitconfig") 2>&1 | tee "$log"
set -e

# Every case and every parameter the source defines must be reported as
# passed: a case that was skipped, not built or not run fails the run.
fail=0
total=0
cases=$(sed -n 's/^[[:space:]]*KUNIT_CASE\(_PARAM\)\{0,1\}(\([a-z0-9_]*\).*/\2/p' \
	"$here/smpusb_kunit.c")
params=$(sed -n 's/^[[:space:]]*{ "\([^"]*\)",.*/\1/p' "$here/smpusb_kunit.c")
[ -n "$cases" ] || die "no test cases found in smpusb_kunit.c"
[ -n "$params" ] || die "no parameterized cases found in smpusb_kunit.c"
check_passed() {
	total=$((total + 1))
	if ! grep -Eq "\[PASSED\] $1( =+)?\$" "$log"; then
		echo "run-kunit: FAIL: '$1' not reported as passed" >&2
		fail=1
	fi
}
for c in $cases; do
	check_passed "$c"
done
nl='
'
oldifs=$IFS
IFS=$nl
for p in $params; do
	check_passed "$p"
done
IFS=$oldifs
if grep -Eq '\[SKIPPED\]|skipped:' "$log"; then
	echo "run-kunit: FAIL: skipped cases" >&2
	fail=1
fi
if ! grep -Eq 'Testing complete\. Ran [0-9]+ tests: passed: [0-9]+$' "$log"; then
	echo "run-kunit: FAIL: kunit.py did not report every test passed" >&2
	fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "run-kunit: PASS: $total cases and parameters reported passed, none skipped"
