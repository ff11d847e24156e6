#!/bin/bash
# smpusb binds the simulated device; every ioctl's happy path through the
# real USB stack; sysfs and hwmon attributes.
. "$SMP_SRC/tests/vm/lib.sh"
plan 31
ko="$SMP_VM_KO"
tool="$SMP_SRC/kernel/tests/smpusb-tool"
[ -x "$tool" ] || bail "$tool not built (make -C kernel)"
ctl=/tmp/smp-ctl.sock

vm_insmod "$ko" timeout_ms=2000	# TCG is slow; the default is 500
# A test that bails must not leave the simulator or the module behind.
trap 'stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
start_sim --model=2 --event-log="$SMP_OUT/events.log" --control="$ctl"
wait_for 20 test -c /dev/smpusb0
ok $? "driver binds the simulated device: /dev/smpusb0"
intf=$(ls -d /sys/bus/usb/drivers/smpusb/*:1.0 2> /dev/null | head -n1)
check "interface bound to smpusb" test -n "$intf"

is "$(cat "$intf/serial")" "SIM-X2-000001" "sysfs serial"
is "$(cat "$intf/firmware_version")" "1.0" "sysfs firmware_version"
is "$(cat "$intf/hard_limits/depth_max_um")" 2000 "sysfs hard depth limit"
is "$(cat "$intf/limits/voltage_max_mv")" 18000 "sysfs effective voltage limit (no caps)"
hw=
for h in /sys/class/hwmon/hwmon*; do
	[ "$(cat "$h/name" 2> /dev/null)" = smpusb ] && hw=$h
done
check "hwmon device named smpusb" test -n "$hw"
t=$(cat "$hw/temp1_input" 2> /dev/null)
check "hwmon temp1_input is the motor temperature (~25 degC): $t" \
	test "${t:-0}" -gt 15000 -a "${t:-0}" -lt 40000
is "$(cat "$hw/temp1_max")" 65000 "hwmon temp1_max is the trip temperature"
check "hwmon in0_input and curr1_input readable" eval 'cat "$hw/in0_input" "$hw/curr1_input" > /dev/null'

out="$SMP_OUT/ioctl.txt"
"$tool" /dev/smpusb0 api info stream 1 claim set 9000 700 12000 1000 \
	start 300 renew 300 status stop estop start 300 clear start 300 stop \
	cart mark SIM-CART-0001 stats release > "$out" 2> "$SMP_OUT/tool.err"
sed 's/^/# /' "$out" >&2
line() { sed -n "$1p" "$out"; }
check "API_VERSION is 1" grep -q '^api ok version=1$' "$out"
check "GET_INFO: model 2, serial, hard limits" \
	grep -q '^info ok api=1 model=2 fw=0x0100 proto=1 serial=SIM-X2-000001 name=SMP-X2 hard=3000-18000mV,3000mA,5000-15000chz,300-2000um,6500cdeg,500ms' "$out"
st=$(line 3)
tm=$(echo "$st" | sed -n 's/.* telemetry=\([0-9]*\).*/\1/p')
check "telemetry through read(): $tm records in 1 s" test "${tm:-0}" -ge 500
check "no telemetry gaps, no drops" eval 'echo "$st" | grep -q " gaps=0 dropped=0 "'
check "CLAIM" grep -q '^claim ok$' "$out"
check "SET_PARAMS applies the setpoints" \
	grep -q '^set ok field=0 limit=0 dev_status=0 applied=9000,700,12000,1000$' "$out"
check "START runs the needle" test "$(line 6 | cut -d' ' -f1-3)" = "start ok state=1"
check "RENEW keeps it running" test "$(line 7 | cut -d' ' -f1-3)" = "renew ok state=1"
check "GET_STATUS shows RUNNING" test "$(line 8 | cut -d' ' -f1-3)" = "status ok state=1"
check "STOP" test "$(line 9 | cut -d' ' -f1-3)" = "stop ok state=0"
check "ESTOP latches the device" test "$(line 10 | cut -d' ' -f1-3)" = "estop ok state=3"
check "START refused while ESTOP is latched" \
	test "$(line 11 | cut -d' ' -f1-2)" = "start ESHUTDOWN"
check "CLEAR_FAULT clears the latch" test "$(line 12 | cut -d' ' -f1-3)" = "clear ok state=0"
check "START works again after CLEAR_FAULT" \
	test "$(line 13 | cut -d' ' -f1-3)" = "start ok state=1"
check "GET_CARTRIDGE" grep -q '^cart ok flags=0x1 needles=3 type=1 diameter_um=250 .* id=SIM-CART-0001 lot=SIM-LOT-0001$' "$out"
check "MARK_CARTRIDGE_USED sets used + marked here" \
	grep -q '^mark ok flags=0xb .* id=SIM-CART-0001 ' "$out"
check "GET_STATS: driver and device counters" \
	grep -q '^stats ok drv.cmds_sent=[1-9].* drv.bad_crc=0 .* drv.lease_stops=0 drv.estops=1 .* dev.starts=2 ' "$out"
check "RELEASE" grep -q '^release ok$' "$out"
check "simulator saw the commands (STOP from the driver)" \
	grep -q 'event=CMD type=STOP' "$SMP_OUT/events.log"

stop_sim
ok $? "simulator stops cleanly"
wait_for 10 test ! -e /dev/smpusb0
rmmod smpusb
ok $? "rmmod smpusb after unplug"
