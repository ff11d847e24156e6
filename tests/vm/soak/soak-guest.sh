#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The VM variant of make soak (build-aux/soak.sh writes the wrapper that
# sets SOAK_SECONDS, SOAK_SEED and the time limit, then runs this in the
# guest): tests/soak/soak.py through the smpusb kernel driver.  smp-sim is
# a FunctionFS gadget on dummy_hcd, smpusb.ko binds it, smpd finds
# /dev/smpusbN with libudev; the soak's hotplug is the simulator's
# `disconnect`, which unbinds the gadget from its UDC and binds it again.
# The harness adds its kernel-log and taint rules (tests/vm/README.md).
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-smpd.sh"
plan 2
[ -n "${SOAK_SECONDS:-}" ] || bail "SOAK_SECONDS is not set (run through build-aux/soak.sh)"

vm_insmod "$SMP_VM_KO" timeout_ms=2000	# TCG is slow
trap 'smpd_udevd_stop; rmmod smpusb 2> /dev/null' EXIT
smpd_udevd_start
SMPD_SOURCE_DIR="$SMP_SRC" SMPD_BUILD_DIR="$SMP_BUILD" SMP_TEST_BACKEND=chardev \
	SMPD_TEST_SLOWDOWN="${SMPD_TEST_SLOWDOWN:-10}" SMPD_TEST_LEASE_MS="${SMPD_TEST_LEASE_MS:-500}" \
	SOAK_OUT="$SMP_OUT" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "$SMP_SRC/tests/soak/soak.py" > "$SMP_OUT/soak.txt" 2>&1
rc=$?
sed 's/^/# /' "$SMP_OUT/soak.txt" >&2
grep '^soak: PASS' "$SMP_OUT/soak.txt" | sed 's/^/# /'
ok $rc "soak: ${SOAK_SECONDS} s of sessions, faults and hotplug through smpusb (seed ${SOAK_SEED:-?})"
smpd_udevd_stop
ok $? "systemd-udevd exits cleanly after the soak"
