#!/bin/bash
# vm-timeout: 3300
# The fault-injection matrix (tests/faults/faults.py, docs/reliability.md)
# on the kernel path: smp-sim is a USB gadget on dummy_hcd, smpusb.ko binds
# it, smpd drives /dev/smpusbN (SMP_TEST_BACKEND=chardev, systemd-udevd in
# the guest).  The bounded subset below by default (make check); every
# scenario when the host created $SMP_BUILD/faults-vm-full (make faults), the
# scenarios listed in $SMP_BUILD/faults-vm-only when that exists.  One TAP
# line per scenario; a scenario that does not apply says so with a reason
# (`# SKIP n/a: ...` is never printed: n/a is an ok line with its reason).
# Results: $SMP_OUT/faults-kernel.json.  The policy runs the VM lease of
# every smpd test in the guest (500 ms, tests/vm/lib-smpd.sh; the bounds
# follow it, see lease_policy() in faults.py).
. "$SMP_SRC/tests/vm/lib.sh"
[ -f "$SMP_SRC/tests/vm/lib-smpd.sh" ] ||
	bail "tests/vm/lib-smpd.sh missing: the kernel path needs smpd's USB test mode (branch s2-vmd)"
. "$SMP_SRC/tests/vm/lib-smpd.sh"

[ -f "$SMP_VM_KO" ] || bail "no smpusb.ko for $SMP_VM_KVER (tests/vm/run builds it)"
vm_insmod "$SMP_VM_KO" timeout_ms=2000	# TCG is slow
trap 'smpd_udevd_stop; rmmod smpusb 2> /dev/null' EXIT
smpd_udevd_start

# The bounded subset (make check, < 4 min of TCG): what the kernel path
# adds to the socket path's subset (meson faults-subset): the driver stops
# the needle when its owner (smpd) dies (smpd-sigkill) and when the device
# is unplugged (device-unplug) or reset (usb-reset); a firmware trip and a
# client's death reach smpd through the driver (over-current, client-crash).
# The TAP name of each line is the scenario id (vm:ID in
# docs/safety/hazards.toml).
subset=(client-crash smpd-sigkill device-unplug usb-reset over-current)
only=$(IFS=,; echo "${subset[*]}")
sel=(--only "$only")
[ -f "$SMP_BUILD/faults-vm-full" ] && sel=()
# One scenario or a few while working on them: their ids, comma-separated,
# in $SMP_BUILD/faults-vm-only (what faults.py --only takes).
if [ -s "$SMP_BUILD/faults-vm-only" ]; then
	only=$(tr -d ' \n' < "$SMP_BUILD/faults-vm-only")
	sel=(--only "$only")
	diag "faults-vm-only: $only"
fi
SMPD_SOURCE_DIR="$SMP_SRC" SMPD_BUILD_DIR="$SMP_BUILD" SMP_TEST_BACKEND=chardev \
	SMPD_TEST_SLOWDOWN="${SMPD_TEST_SLOWDOWN:-10}" PYTHONDONTWRITEBYTECODE=1 \
	SMPD_TEST_LEASE_MS="${SMPD_TEST_LEASE_MS:-500}" \
	/usr/bin/python3 "$SMP_SRC/tests/faults/faults.py" run --path kernel "${sel[@]}" \
	--build "$SMP_BUILD" --json "$SMP_OUT/faults-kernel.json" > "$SMP_OUT/faults.out"
rc=$?
# A file, not < <(...): the plain guest has no /dev/fd.
grep '^fault: ' "$SMP_OUT/faults.out" > "$SMP_OUT/faults.lines" ||
	bail "the runner printed no result (exit $rc)"
n=0
while read -r line; do
	n=$((n + 1))
	id=$(sed -n 's/.* id=\([^ ]*\).*/\1/p' <<< "$line")
	res=$(sed -n 's/.* result=\([^ ]*\).*/\1/p' <<< "$line")
	case "$res" in
	pass|n/a) echo "ok $n - $id ${line#fault: }" ;;
	*) echo "not ok $n - $id ${line#fault: }" ;;
	esac
done < "$SMP_OUT/faults.lines"
n=$((n + 1))
if [ "$rc" -eq 0 ]; then echo "ok $n - runner exit 0"; else echo "not ok $n - runner exit $rc"; fi
echo "1..$n"
