#!/bin/bash
# Malformed device replies (H14), from smp-sim's injections: corrupted CRC,
# magic, version and length, truncated replies, swallowed (stalled),
# duplicated and late replies.  Each is counted by kind, never trusted, the
# ioctl fails with a named error, and the next command works.
. "$SMP_SRC/tests/vm/lib.sh"
plan 18
ko="$SMP_VM_KO"
tool="$SMP_SRC/kernel/tests/smpusb-tool"
[ -x "$tool" ] || bail "$tool not built (make -C kernel)"
ctl=/tmp/smp-ctl.sock

vm_insmod "$ko" timeout_ms=1500
# A test that bails must not leave the simulator or the module behind.
trap 'stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
start_sim --model=2 --event-log="$SMP_OUT/events.log" --control="$ctl"
wait_for 20 test -c /dev/smpusb0 || bail "/dev/smpusb0 did not appear"
intf=$(ls -d /sys/bus/usb/drivers/smpusb/*:1.0 | head -n1)
cnt() { cat "$intf/counters/$1"; }

# inject WHAT COUNTER: one corrupted reply -> ETIMEDOUT, counter +1, then OK.
inject() {
	local before after o
	before=$(cnt "$2")
	o=$("$tool" /dev/smpusb0 ctl $ctl "corrupt $1" status status)
	after=$(cnt "$2")
	echo "$o" | sed "s/^/# $1: /" >&2
	echo "$o" | sed -n 2p | grep -q '^status ETIMEDOUT' &&
		echo "$o" | sed -n 3p | grep -q '^status ok state=0 '
	ok $? "corrupt $1: the command times out, the next one works"
	is "$((after - before))" 1 "corrupt $1: counted in $2"
}
inject crc bad_crc
inject magic bad_magic
inject version bad_version
inject length bad_length
inject short bad_short

before=$(cnt timeouts)
o=$("$tool" /dev/smpusb0 ctl $ctl "stall 1" status status)
echo "$o" | sed 's/^/# stall: /' >&2
echo "$o" | sed -n 2p | grep -q '^status ETIMEDOUT' &&
	echo "$o" | sed -n 3p | grep -q '^status ok '
ok $? "stalled reply: ETIMEDOUT, then the next command works"
is "$(($(cnt timeouts) - before))" 1 "stalled reply counted in timeouts"

before=$(cnt bad_seq)
o=$("$tool" /dev/smpusb0 ctl $ctl "duplicate 1" status status cart)
echo "$o" | sed 's/^/# duplicate: /' >&2
test "$(echo "$o" | grep -c '^status ok ')" = 2 && echo "$o" | grep -q '^cart ok '
ok $? "duplicated reply: every command still gets its own answer"
check "the duplicate was discarded as a foreign seq" test "$(($(cnt bad_seq) - before))" -ge 1

before=$(($(cnt bad_seq) + $(cnt bad_type)))
o=$("$tool" /dev/smpusb0 ctl $ctl "delay 2500 1" status sleep 1500 cart)
echo "$o" | sed 's/^/# delay: /' >&2
echo "$o" | grep -q '^status ETIMEDOUT' && echo "$o" | grep -q '^cart ok flags=0x1 '
ok $? "late reply: ETIMEDOUT, then the next command gets its own reply"
check "the late reply was discarded (a GET_STATUS reply while GET_CARTRIDGE waits)" \
	test "$(($(cnt bad_seq) + $(cnt bad_type) - before))" -ge 1

o=$("$tool" /dev/smpusb0 stats)
check "GET_STATS reports the same driver counters" \
	eval 'echo "$o" | grep -q " drv.bad_short=1 drv.bad_magic=1 drv.bad_version=1 drv.bad_length=1 drv.bad_crc=1 "'
stop_sim
ok $? "simulator stops cleanly"
wait_for 10 test ! -e /dev/smpusb0
rmmod smpusb || bail "rmmod smpusb failed"
