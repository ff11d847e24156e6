#!/bin/bash
# The guest environment the other VM tests rely on: the stock kernel, a
# dummy_hcd UDC, configfs, FunctionFS, usbfs nodes, writable SMP_OUT.
. "$SMP_SRC/tests/vm/lib.sh"
plan 7
is "$(uname -r)" "$SMP_VM_KVER" "booted the kernel the modules are built for"
check "dummy_hcd provides a UDC" test -e /sys/class/udc/dummy_udc.0
check "configfs usb_gadget is available" test -d /sys/kernel/config/usb_gadget
check "usb_f_fs (FunctionFS) is loaded" grep -q "^usb_f_fs " /proc/modules
check "usbfs nodes exist for the dummy root hub" test -c /dev/bus/usb/001/001
check "SMP_OUT is writable" touch "$SMP_OUT/probe"
check "root file system is read-only" eval '! touch /smp-vm-ro-probe 2> /dev/null'
