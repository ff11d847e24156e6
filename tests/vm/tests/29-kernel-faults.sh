#!/bin/bash
# Device faults reach userspace: a FAULT record (with the new fault bits)
# and a STATE record for readers, and the hwmon alarms follow the fault
# bits: over-current (curr1_alarm), under-voltage (in0_alarm),
# over-temperature (temp1_alarm).  CLEAR_FAULT clears them.
. "$SMP_SRC/tests/vm/lib.sh"
plan 10
ko="$SMP_VM_KO"
tool="$SMP_SRC/kernel/tests/smpusb-tool"
[ -x "$tool" ] || bail "$tool not built (make -C kernel)"
ctl=/tmp/smp-ctl.sock
dev=/dev/smpusb0

vm_insmod "$ko" timeout_ms=2000	# TCG is slow; the default is 500
# A test that bails must not leave the simulator or the module behind.
trap 'stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
start_sim --model=2 --event-log="$SMP_OUT/events.log" --control="$ctl"
wait_for 20 test -c $dev || bail "/dev/smpusb0 did not appear"
hw=
for h in /sys/class/hwmon/hwmon*; do
	[ "$(cat "$h/name" 2> /dev/null)" = smpusb ] && hw=$h
done
[ -n "$hw" ] || bail "no smpusb hwmon device"

# fault INJECTION BIT ALARM: run, inject, expect the record and the alarm.
fault() {
	local inj="$1" bit="$2" alarm="$3" r o
	"$tool" -r $dev until 3 20 > "$SMP_OUT/reader-$alarm.txt" 2>&1 &
	r=$!
	sleep 0.3
	o=$("$tool" $dev claim clear set 9000 700 12000 1000 start 500 \
		ctl $ctl "$inj" sleep 300 status)
	echo "$o" | sed "s/^/# $inj: /" >&2
	wait $r
	sed "s/^/# $inj reader: /" "$SMP_OUT/reader-$alarm.txt" >&2
	check "$inj: readers get a FAULT record with bit $bit and a STATE record" \
		grep -Eq "^until ok .* state_ev=[1-9][0-9]* fault_ev=1 .* aux=$bit " \
		"$SMP_OUT/reader-$alarm.txt"
	is "$(cat "$hw/$alarm")" 1 "$inj: hwmon $alarm set"
}
fault overcurrent 1 curr1_alarm
fault "brownout 5000" 2 in0_alarm
"$tool" - ctl $ctl "brownout off" > /dev/null
fault "overtemp" 4 temp1_alarm
t=$(cat "$hw/temp1_input")
check "temp1_input shows the hot motor ($t m degC, above 90% of the trip)" \
	test "$t" -gt $(($(cat "$hw/temp1_max") * 9 / 10))

# Cool down, clear, and every alarm goes back to 0.
o=$("$tool" $dev ctl $ctl "temp 2500" claim clear sleep 300 status)
echo "$o" | sed 's/^/# clear: /' >&2
check "CLEAR_FAULT returns the device to IDLE" \
	eval 'echo "$o" | grep -q "^status ok state=0 faults=0x0 "'
is "$(cat "$hw/curr1_alarm")$(cat "$hw/in0_alarm")$(cat "$hw/temp1_alarm")" 000 \
	"hwmon alarms cleared with the fault bits"

stop_sim
ok $? "simulator stops cleanly"
wait_for 10 test ! -e $dev
rmmod smpusb || bail "rmmod smpusb failed"
