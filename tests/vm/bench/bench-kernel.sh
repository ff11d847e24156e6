#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The kernel-path figures of make bench (build-aux/bench.sh writes the
# wrapper that sets the BENCH_* variables and runs this in the guest; not
# part of make check's VM suite).  smp-sim is a FunctionFS gadget on
# dummy_hcd, smpusb.ko binds it, smpd finds /dev/smpusbN through libudev:
# tests/evidence/bench-safety.py measures there what it measures on the
# host, with the raw SMPUSB_IOC_SET_PARAMS ioctl round trip as baseline.
# Result: $SMP_OUT/bench-kernel.json.
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-smpd.sh"
plan 1

vm_insmod "$SMP_VM_KO" timeout_ms=2000	# TCG is slow
trap 'smpd_udevd_stop; rmmod smpusb 2> /dev/null' EXIT
smpd_udevd_start
SMPD_SOURCE_DIR="$SMP_SRC" SMPD_BUILD_DIR="$SMP_BUILD" SMP_TEST_BACKEND=chardev \
	SMPD_TEST_SLOWDOWN="${SMPD_TEST_SLOWDOWN:-10}" SMPD_TEST_LEASE_MS="${SMPD_TEST_LEASE_MS:-500}" \
	PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "$SMP_SRC/tests/evidence/bench-safety.py" \
	> "$SMP_OUT/bench-kernel.json" 2> "$SMP_OUT/bench-kernel.err"
rc=$?
sed 's/^/# /' "$SMP_OUT/bench-kernel.err" >&2
ok $rc "kernel-path figures measured ($SMP_OUT/bench-kernel.json)"
