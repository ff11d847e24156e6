#!/bin/bash
# Kernel mutation checks: smpusb.ko built with one safety control disabled
# (-DSMPUSB_MUTATION_<NAME>, a hook in kernel/*.c) must fail the VM tests
# that claim to prove that control.  build-aux/safety-mutations.sh covers
# the meson-built (userspace) mutants; this covers the driver, whose tests
# need the qemu guest (tests/vm), so it runs apart from `make check`.
#
# Usage: build-aux/kernel-mutations.sh --build BUILDDIR [NAME...]
#   BUILDDIR: the meson build dir tests/vm/run takes (smp-sim comes from it).
#   NAME: mutations to run (default: all in the table below).
# Each mutant gets a copy of kernel/ and tests/vm/ under /tmp (where the
# guest can see it), built with the define, and one VM boot running the
# claimed tests; it passes ("killed") only if the module carries the
# mutation (modinfo) and every claimed test is reported "not ok" while the
# harness itself ran (exit 1, not 2).  The unmutated tests must pass in the
# normal VM run for a kill to mean anything (tests/vm/run, make check).
# Output: "ok - kernel mutation NAME killed" / "not ok - ..." lines; exit 0
# only if every mutant was killed.
set -u

# name | what it disables | the VM tests that must fail
MUTATIONS=(
	"kd_driver_lease|the driver's lease timer is never armed (KD-DRIVER-LEASE)|34-kernel-lease-only"
)

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=
WANT=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=${2:-}; shift 2 || exit 2 ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) WANT+=("$1"); shift ;;
	esac
done
[ -n "$BUILD" ] || { echo "kernel-mutations: --build BUILDDIR is required" >&2; exit 2; }
BUILD=$(readlink -f "$BUILD")
# The kernel of the mutants and of their VM (build-aux/kernels.sh; the
# copy under /tmp has no build-aux/, so it is resolved here).
KVER=$("$SRC/build-aux/kernels.sh" kver "${SMP_VM_KVER:-}") || exit 2

fail=0
ran=0
for m in "${MUTATIONS[@]}"; do
	IFS='|' read -r name what tests <<< "$m"
	if [ ${#WANT[@]} -gt 0 ] && ! printf '%s\n' "${WANT[@]}" | grep -qx "$name"; then
		continue
	fi
	ran=$((ran + 1))
	tmp=$(mktemp -d /tmp/smpusb-mutant.XXXXXX) || exit 2
	mkdir -p "$tmp/tests"
	cp -a "$SRC/kernel" "$tmp/kernel" && cp -a "$SRC/tests/vm" "$tmp/tests/vm" || {
		echo "not ok - kernel mutation $name: cannot copy the sources"
		fail=1
		continue
	}
	make -s -C "$tmp/kernel" KVER="$KVER" clean > /dev/null 2>&1
	if ! make -C "$tmp/kernel" KVER="$KVER" KCFLAGS="-DSMPUSB_MUTATION_${name^^}" \
		> "$tmp/build.log" 2>&1; then
		tail -n 20 "$tmp/build.log" | sed 's/^/    /'
		echo "not ok - kernel mutation $name ($what): the mutant does not build"
		fail=1
		continue
	fi
	if [ "$(modinfo -F mutation "$tmp/kernel/smpusb.ko")" != "$name" ]; then
		echo "not ok - kernel mutation $name ($what): the module does not carry the mutation"
		fail=1
		continue
	fi
	# shellcheck disable=SC2086 # tests: space-separated names
	"$SRC/tests/vm/run" --src "$tmp" --build "$BUILD" --out "$tmp/vm-out" \
		--kver "$KVER" --ko "$tmp/kernel/smpusb.ko" $tests \
		> "$tmp/vm.tap" 2>&1
	rc=$?
	survived=
	for t in $tests; do
		grep -Eq "^not ok [0-9]+ - $t " "$tmp/vm.tap" || survived+=" $t"
	done
	if [ "$rc" = 1 ] && [ -z "$survived" ]; then
		echo "ok - kernel mutation $name ($what) killed by $tests"
		grep -E '^    not ok' "$tmp/vm.tap" | sed 's/^/    # /'
		rm -rf "$tmp"
	else
		echo "not ok - kernel mutation $name ($what): vm exit $rc; survived:${survived:- none} (see $tmp/vm.tap)"
		fail=1
	fi
done
[ "$ran" -gt 0 ] || { echo "not ok - kernel mutations: none selected"; exit 1; }
exit "$fail"
