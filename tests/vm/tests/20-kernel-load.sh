#!/bin/bash
# smpusb.ko loads into Debian's stock kernel, declares the right USB match
# and parameters, and unloads cleanly with no device present.
. "$SMP_SRC/tests/vm/lib.sh"
plan 6
ko="$SMP_VM_KO"
[ -f "$ko" ] || bail "$ko not built (make -C kernel)"

# (6.12 modules carry vermagic twice: the module's and module-common.o's.)
is "$(modinfo -F vermagic "$ko" | cut -d' ' -f1 | sort -u)" "$SMP_VM_KVER" \
	"smpusb.ko is built for the guest kernel"
is "$(modinfo -F alias "$ko")" 'usb:v1209p0001d*dc*dsc*dp*icFFisc53ip01in*' \
	"alias matches 1209:0001 interface ff/53/01"
check "module parameters are declared" \
	test "$(modinfo -F parm "$ko" | grep -cE '^(max_voltage_mv|max_current_ma|max_rate_chz|max_depth_um|max_lease_ms|timeout_ms):')" = 6
vm_insmod "$ko"
trap 'rmmod smpusb 2> /dev/null' EXIT
check "module is live" grep -q '^smpusb .* Live' /proc/modules
check "driver registered on the USB bus" test -d /sys/bus/usb/drivers/smpusb
rmmod smpusb
ok $? "rmmod smpusb"
