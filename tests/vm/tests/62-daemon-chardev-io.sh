#!/bin/bash
# vm-timeout: 900
# Nothing waits for a device in smpd's event loop, through the smpusb
# kernel driver (tests/daemon/test_device_io.py, pytest marker
# `device_io`): with the device's reply to SetParameters swallowed
# (smp-sim `stall`), an EmergencyStop from another connection reaches the
# device at once (the driver pre-empts the reply wait for the ESTOP that
# smpd's ESTOP thread sends beside it), smpd answers D-Bus meanwhile, its
# loop waits without spinning while a STOP's reply is held back, and a
# second device (a simulator on the socket: the guest has one UDC) runs
# on with no missed renewal while the gadget stops answering.
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-smpd.sh"

# As 60-daemon-chardev: the driver's command timeout for TCG.
vm_insmod "$SMP_VM_KO" timeout_ms=2000
trap 'smpd_udevd_stop; rmmod smpusb 2> /dev/null' EXIT
smpd_udevd_start
smpd_pytest chardev -s -m device_io
