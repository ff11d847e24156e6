#!/bin/bash
# Telemetry at 1 kHz through read() for 10 s: a reader that keeps up sees
# every record (no sequence gaps, nothing dropped by the driver or the
# device), and poll() wakes it.
. "$SMP_SRC/tests/vm/lib.sh"
plan 5
ko="$SMP_SRC/kernel/smpusb.ko"
tool="$SMP_SRC/kernel/tests/smpusb-tool"
[ -x "$tool" ] || bail "$tool not built (make -C kernel)"

vm_insmod "$ko" timeout_ms=2000	# TCG is slow; the default is 500
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
stop_sim
ok $? "simulator stops cleanly"
wait_for 10 test ! -e /dev/smpusb0
rmmod smpusb || bail "rmmod smpusb failed"
