#!/bin/bash
# vm-timeout: 900
# smpd's core scenarios (tests/daemon/test_smpd.py, pytest marker `core`)
# through the smpusb kernel driver: smp-sim is a USB gadget on dummy_hcd,
# smpusb.ko binds it, smpd finds /dev/smpusbN with libudev (systemd-udevd
# runs in the guest) and drives it through the driver's ioctls.  The same
# test code as on the host (socket); one TAP line per pytest case.
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-smpd.sh"

# TCG is slow: the driver's command timeout as in the kernel tests.
vm_insmod "$SMP_VM_KO" timeout_ms=2000
trap 'smpd_udevd_stop; rmmod smpusb 2> /dev/null' EXIT
smpd_udevd_start
smpd_pytest chardev -m core
