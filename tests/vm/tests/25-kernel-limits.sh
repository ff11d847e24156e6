#!/bin/bash
# Limits (H1, H2): module parameters lower the device's hard limits and can
# never raise them; SET_PARAMS and START outside the effective limits are
# refused with the field and the bound, before anything reaches the device.
. "$SMP_SRC/tests/vm/lib.sh"
plan 14
ko="$SMP_VM_KO"
tool="$SMP_SRC/kernel/tests/smpusb-tool"
[ -x "$tool" ] || bail "$tool not built (make -C kernel)"

# Depth, voltage and lease lowered (voltage rounded down to its step);
# current "raised" to 9999 mA, above the SMP-X2's 3000.
vm_insmod "$ko" timeout_ms=2000 max_depth_um=1200 max_voltage_mv=12050 \
	max_lease_ms=200 max_current_ma=9999
# A test that bails must not leave the simulator or the module behind.
trap 'stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
start_sim --model=2 --event-log="$SMP_OUT/events.log"
wait_for 20 test -c /dev/smpusb0 || bail "/dev/smpusb0 did not appear"
intf=$(ls -d /sys/bus/usb/drivers/smpusb/*:1.0 | head -n1)

is "$(cat "$intf/limits/depth_max_um")" 1200 "effective depth lowered to 1200 um"
is "$(cat "$intf/limits/voltage_max_mv")" 12000 "effective voltage lowered to 12000 mV (step)"
is "$(cat "$intf/limits/lease_max_ms")" 200 "effective lease lowered to 200 ms"
is "$(cat "$intf/limits/current_max_ma")" 3000 "a cap above the hard limit does not raise it"
is "$(cat "$intf/hard_limits/depth_max_um")" 2000 "hard depth limit unchanged"

o=$("$tool" /dev/smpusb0 info claim set 12000 700 12000 1250 \
	set 12100 700 12000 1000 set 9000 3001 12000 1000 \
	set 12000 700 12000 1200 start 201 start 200 stop status release)
echo "$o" | sed 's/^/# /' >&2
has() { echo "$o" | grep -Eq "$1"; ok $? "$2"; }
has '^info ok .* eff=3000-12000mV,3000mA,5000-15000chz,300-1200um,6500cdeg,200ms' \
	"GET_INFO reports the effective limits"
has '^set ERANGE field=4 limit=1200 ' "depth 1250 (inside the hard limit): ERANGE field 4, limit 1200"
has '^set ERANGE field=1 limit=12000 ' "voltage 12100: ERANGE field 1, limit 12000"
has '^set ERANGE field=2 limit=3000 ' "current 3001: ERANGE field 2, limit 3000"
has '^set ok .* applied=12000,700,12000,1200$' "values at the effective limits are applied"
has '^start ERANGE' "lease 201 ms above the 200 ms cap: ERANGE"
has '^start ok state=1 ' "lease 200 ms: START"
check "no refused value reached the device" \
	eval '! grep -Eq "depth_um=1250|voltage_mv=12100|current_ma=3001|lease_ms=201" "$SMP_OUT/events.log"'

stop_sim
ok $? "simulator stops cleanly"
wait_for 10 test ! -e /dev/smpusb0
rmmod smpusb || bail "rmmod smpusb failed"
