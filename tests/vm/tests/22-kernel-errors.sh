#!/bin/bash
# Every refusal of the smpusb UAPI: argument validation (reserved fields,
# ranges, steps, unknown ioctls), ownership (CLAIM exclusivity, read-only
# files), ESTOP from a non-owner latching until the owner clears it, and
# device refusals mapped to errno with the device status.
. "$SMP_SRC/tests/vm/lib.sh"
plan 36
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

run() { "$tool" "$@" 2>> "$SMP_OUT/tool.err" | tee -a "$SMP_OUT/tool.txt"; }
# has OUTPUT PATTERN DESC
has() {
	if echo "$1" | grep -Eq "$2"; then
		ok 0 "$3"
	else
		diag "$3: got: $1"
		ok 1 "$3"
	fi
}

# Without a claim nothing controls the device.
o=$(run $dev set 9000 700 12000 1000 start 300 stop clear mark SIM-CART-0001 release)
has "$o" '^set EPERM' "SET_PARAMS without CLAIM: EPERM"
has "$o" '^start EPERM' "START without CLAIM: EPERM"
has "$o" '^stop EPERM' "STOP without CLAIM: EPERM"
has "$o" '^clear EPERM' "CLEAR_FAULT without CLAIM: EPERM"
has "$o" '^mark EPERM' "MARK_CARTRIDGE_USED without CLAIM: EPERM"
has "$o" '^release EPERM' "RELEASE without CLAIM: EPERM"

# Argument validation, as the owner.
o=$(run $dev claim set 18100 700 12000 1000 set 2900 700 12000 1000 \
	set 9000 0 12000 1000 set 9000 3001 12000 1000 set 9000 700 4999 1000 \
	set 9000 700 12000 2050 set 9050 700 12000 1000 set 9000 700 12000 1025 \
	setr 9000 700 12000 1000 start 0 start 501 startr 300 renew 300 \
	markr SIM-CART-0001 mark "" badioctl readsmall status)
has "$o" '^set ERANGE field=1 limit=18000 ' "voltage above the limit: ERANGE, field 1, limit 18000"
has "$o" '^set ERANGE field=1 limit=3000 ' "voltage below the limit: ERANGE, field 1, limit 3000"
has "$o" '^set ERANGE field=2 limit=1 ' "current 0: ERANGE, field 2"
has "$o" '^set ERANGE field=2 limit=3000 ' "current above: ERANGE, field 2, limit 3000"
has "$o" '^set ERANGE field=3 limit=5000 ' "rate below: ERANGE, field 3"
has "$o" '^set ERANGE field=4 limit=2000 ' "depth above the hard limit: ERANGE, field 4, limit 2000"
has "$o" '^set EINVAL field=1 limit=100 ' "voltage off its 100 mV step: EINVAL, field 1"
has "$o" '^set EINVAL field=4 limit=50 ' "depth off its 50 um step: EINVAL, field 4"
has "$o" '^setr EINVAL' "non-zero reserved field in SET_PARAMS: EINVAL"
is "$(echo "$o" | grep -c '^start ERANGE')" 2 "lease 0 and lease 501 ms: ERANGE"
has "$o" '^startr EINVAL' "non-zero reserved field in START: EINVAL"
has "$o" '^renew ETIME' "RENEW without a running lease: ETIME"
has "$o" '^markr EINVAL' "non-zero reserved field in MARK_CARTRIDGE_USED: EINVAL"
has "$o" '^mark EINVAL' "empty cartridge id: EINVAL"
has "$o" '^badioctl ENOTTY' "unknown ioctl: ENOTTY"
has "$o" '^readsmall EINVAL' "read() buffer smaller than a record: EINVAL"
has "$o" '^status ok state=0 .* set=0,0,0,0$' "nothing refused reached the device (setpoints unset)"

# Device refusals come back as errno plus the device status.
o=$(run $dev claim set 9000 700 12000 1000 ctl $ctl "pedal up" start 300 \
	ctl $ctl "pedal down" ctl $ctl "cartridge pull" start 300 \
	mark SIM-CART-0001 ctl $ctl "cartridge insert id=CART-B" \
	mark SIM-CART-0001)
has "$o" '^start EAGAIN .* dev_status=16 ' "pedal up: EAGAIN, device status PEDAL_UP"
has "$o" '^start ENOMEDIUM .* dev_status=12 ' "no cartridge: ENOMEDIUM, device status NO_CARTRIDGE"
has "$o" '^mark ENOMEDIUM' "mark without cartridge: ENOMEDIUM"
has "$o" '^mark EMEDIUMTYPE .*dev_status=15 ' "mark another cartridge: EMEDIUMTYPE, CARTRIDGE_MISMATCH"

# CLAIM exclusivity and ESTOP from a non-owner.
rm -f "$SMP_OUT/owner.txt"
"$tool" $dev claim set 9000 700 12000 1000 hold > "$SMP_OUT/owner.txt" 2>&1 &
owner=$!
wait_for 10 grep -q '^hold' "$SMP_OUT/owner.txt"
o=$(run $dev claim start 300 estop)
has "$o" '^claim EBUSY' "second CLAIM while owned: EBUSY"
has "$o" '^start EPERM' "non-owner START: EPERM"
has "$o" '^estop ok state=3 ' "non-owner ESTOP works (device in ESTOP)"
o=$(run -r $dev claim estop status)
has "$o" '^claim EBADF' "read-only file cannot CLAIM: EBADF"
has "$o" '^estop EBADF' "read-only file cannot ESTOP: EBADF"
kill $owner; wait $owner 2> /dev/null
o=$(run $dev claim start 300 clear start 300 stop release)
has "$o" '^start ESHUTDOWN' "ESTOP latch outlives the owner: new owner's START refused"
has "$o" '^clear ok state=0 ' "owner clears the latch"
has "$o" '^start ok state=1 ' "START works after CLEAR_FAULT"

stop_sim
ok $? "simulator stops cleanly"
wait_for 10 test ! -e $dev
rmmod smpusb || bail "rmmod smpusb failed"
