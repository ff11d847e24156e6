#!/bin/bash
# vm-timeout: 900
# smpd's core scenarios (tests/daemon/test_smpd.py, pytest marker `core`)
# through libusb: smp-sim is a USB gadget on dummy_hcd with no kernel
# driver bound (smpusb is not loaded), smpd finds it with libudev
# (systemd-udevd runs in the guest) and speaks protocol v1 over usbfs.
# The same test code as on the host (socket); one TAP line per pytest case.
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-smpd.sh"

grep -q '^smpusb ' /proc/modules && bail "smpusb is loaded: the libusb backend needs the interface unbound"
trap 'smpd_udevd_stop' EXIT
smpd_udevd_start
smpd_pytest libusb -m core
