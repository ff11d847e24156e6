#!/bin/bash
# make faults: the whole fault-injection matrix on both paths, then
# docs/reliability.md regenerated from the results (tests/faults/faults.py).
#   socket path: on the host, every scenario
#   kernel path: in the VM (tests/vm/tests/70-faults-kernel.sh), every
#                scenario ($BUILD/faults-vm-full tells the guest so)
# Results: $BUILD/faults-socket.json, $BUILD/faults-kernel.json.
# Exit status: 0 only when every scenario passed or is n/a on its path; the
# page is rewritten either way, failures included.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
py=/usr/bin/python3
rc=0

meson compile -C "$BUILD" || exit 1
[ -f kernel/Makefile ] && { make -C kernel || exit 1; }

echo "== faults: socket path (host)"
SMPD_SOURCE_DIR="$top" SMPD_BUILD_DIR="$top/$BUILD" \
	$py tests/faults/faults.py run --path socket --build "$BUILD" \
	--json "$BUILD/faults-socket.json" || rc=1

echo "== faults: kernel path (VM)"
out="$BUILD/faults-vm"
rm -f "$BUILD/faults-kernel.json"
touch "$BUILD/faults-vm-full"
if [ -e "$BUILD/faults-vm-only" ]; then
	echo "faults: removing $BUILD/faults-vm-only: make faults runs every scenario"
	rm -f "$BUILD/faults-vm-only"
fi
tests/vm/run --build "$BUILD" --out "$out" --timeout "${SMP_VM_TIMEOUT:-3600}" 70-faults-kernel || rc=1
rm -f "$BUILD/faults-vm-full"
kjson="$out/tests/70-faults-kernel/faults-kernel.json"
kargs=()
if [ -f "$kjson" ]; then
	cp "$kjson" "$BUILD/faults-kernel.json"
	kargs=(--kernel "$BUILD/faults-kernel.json")
else
	echo "faults: the kernel path produced no results (see $out)"
	rc=1
fi

$py tests/faults/faults.py report --socket "$BUILD/faults-socket.json" "${kargs[@]}" \
	--out docs/reliability.md || rc=1
echo "faults: docs/reliability.md regenerated; exit $rc"
exit $rc
