#!/bin/bash
# Telemetry at 1 kHz through read() for 10 s: a reader that keeps up sees
# every record (no sequence gaps, nothing dropped by the driver or the
# device), and poll() wakes it.
. "$SMP_SRC/tests/vm/lib.sh"
plan 8
ko="$SMP_VM_KO"
tool="$SMP_SRC/kernel/tests/smpusb-tool"
[ -x "$tool" ] || bail "$tool not built (make -C kernel)"

vm_insmod "$ko" timeout_ms=2000	# TCG is slow; the default is 500
# A test that bails must not leave the simulator or the module behind.
trap 'stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
start_sim --model=2 --event-log="$SMP_OUT/events.log"
wait_for 20 test -c /dev/smpusb0 || bail "/dev/smpusb0 did not appear"
intf=$(ls -d /sys/bus/usb/drivers/smpusb/*:1.0 | head -n1)

lost0=$(cat "$intf/counters/telemetry_lost")
o=$("$tool" -r /dev/smpusb0 stream 10 stats)
echo "$o" | sed 's/^/# /' >&2
n=$(echo "$o" | sed -n 's/^stream ok .* telemetry=\([0-9]*\) .*/\1/p')
check "10 s of telemetry through read()/poll(): ${n:-0} records (>= 9000)" \
	test "${n:-0}" -ge 9000
check "no sequence gaps seen by the reader" eval 'echo "$o" | grep -q "^stream ok .* gaps=0 "'
check "no record dropped for this reader" eval 'echo "$o" | grep -q "^stream ok .* dropped=0 "'
is "$(($(cat "$intf/counters/telemetry_lost") - lost0))" 0 \
	"driver counted no telemetry lost by the device meanwhile"
# A reader that sleeps 2.5 s overflows its queue (1008 telemetry records):
# drops are counted, and an ESTOP's STATE record still gets through.
drop0=$(cat "$intf/counters/records_dropped")
"$tool" -r /dev/smpusb0 sleep 2500 until 2 10 > "$SMP_OUT/slow.txt" 2>&1 &
slow=$!
sleep 2
"$tool" /dev/smpusb0 estop > /dev/null
wait $slow
sed 's/^/# slow reader: /' "$SMP_OUT/slow.txt" >&2
check "slow reader: its records carry the drop count" \
	grep -Eq '^until ok .* dropped=[1-9][0-9]* ' "$SMP_OUT/slow.txt"
check "slow reader: the STATE record of the ESTOP arrived despite the full queue" \
	grep -Eq '^until ok .* state_ev=1 .* state=3 ' "$SMP_OUT/slow.txt"
check "records_dropped counts the slow reader's losses" \
	test "$(cat "$intf/counters/records_dropped")" -gt "$drop0"
"$tool" /dev/smpusb0 claim clear > /dev/null

stop_sim
ok $? "simulator stops cleanly"
wait_for 10 test ! -e /dev/smpusb0
rmmod smpusb || bail "rmmod smpusb failed"
