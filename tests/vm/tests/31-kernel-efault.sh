#!/bin/bash
# Bad user pointers (H14): every ioctl given an unmapped argument fails
# with EFAULT.  An ioctl whose input cannot be read sends nothing to the
# device and changes nothing; STOP, ESTOP and CLEAR_FAULT still act when
# only their status cannot be written back (a bad pointer never prevents a
# stop); a START whose result cannot be written back is stopped again.
# read() into a bad buffer fails with EFAULT and loses no record.
. "$SMP_SRC/tests/vm/lib.sh"
plan 27
kernel_test_start

run() { "$tool" "$@" 2>> "$SMP_OUT/tool.err" | tee -a "$SMP_OUT/tool.txt"; }
has() {
	if echo "$1" | grep -Eq "$2"; then
		ok 0 "$3"
	else
		diag "$3: got: $1"
		ok 1 "$3"
	fi
}
rx() { sim_ctl $ctl stats | sed -n 's/.* frames_rx=\([0-9]*\) .*/\1/p'; }
mark() { wc -l < "$ev"; }
since() { tail -n +$(($1 + 1)) "$ev"; }

# Inputs that cannot be read: EFAULT before any I/O.  The file owns the
# device and the needle is stopped; the device may see only the final
# GET_STATUS and the STOP the driver sends when the owner's file closes.
run $dev claim set 9000 700 12000 1000 > /dev/null
m=$(mark)
rx0=$(rx)
cmds0=$(cat "$intf/counters/cmds_sent")
o=$(run $dev claim efault set efault start efault renew efault mark \
	efault api efault info status)
has "$o" '^efault set EFAULT$' "SET_PARAMS, unmapped argument: EFAULT"
has "$o" '^efault start EFAULT$' "START, unmapped argument: EFAULT"
has "$o" '^efault renew EFAULT$' "RENEW, unmapped argument: EFAULT"
has "$o" '^efault mark EFAULT$' "MARK_CARTRIDGE_USED, unmapped argument: EFAULT"
has "$o" '^efault api EFAULT$' "API_VERSION, unmapped argument: EFAULT"
has "$o" '^efault info EFAULT$' "GET_INFO, unmapped argument: EFAULT"
has "$o" '^status ok state=0 .* set=9000,700,12000,1000$' \
	"the device is still IDLE with the setpoints it had"
is "$(since "$m" | sed -n 's/.*event=CMD type=\([A-Z_]*\) .*/\1/p' | tr '\n' ' ')" \
	"GET_STATUS STOP " "the device saw only GET_STATUS and the close's STOP"
is "$(($(rx) - rx0))/$(($(cat "$intf/counters/cmds_sent") - cmds0))" 2/2 \
	"two frames received by the device, two commands sent by the driver"
is "$(cat "$intf/control")" "claimed=0 lease=0 estop_latched=0" \
	"driver state unchanged (no lease, no latch; claim ended with the file)"

# Queries whose answer cannot be written back: EFAULT, nothing changes.
o=$(run $dev efault status efault cart efault stats status)
has "$o" '^efault status EFAULT$' "GET_STATUS, unmapped argument: EFAULT"
has "$o" '^efault cart EFAULT$' "GET_CARTRIDGE, unmapped argument: EFAULT"
has "$o" '^efault stats EFAULT$' "GET_STATS, unmapped argument: EFAULT"
has "$o" '^status ok state=0 ' "the device still answers"

# STOP, ESTOP, CLEAR_FAULT act even when their status cannot be written.
m=$(mark)
o=$(run $dev claim set 9000 700 12000 1000 start 500 efault stop status \
	efault estop status efault clear status)
has "$o" '^start ok state=1 ' "running before the bad STOP"
has "$o" '^efault stop EFAULT$' "STOP, unmapped argument: EFAULT"
o2=$(echo "$o" | sed -n '/^efault stop/,$p')
has "$(echo "$o2" | sed -n 2p)" '^status ok state=0 ' "the needle stopped all the same"
check "the simulator saw STOP end the run, not its lease" \
	eval 'since $m | grep -q "event=STATE from=RUNNING to=IDLE reason=STOP"'
has "$o" '^efault estop EFAULT$' "ESTOP, unmapped argument: EFAULT"
has "$(echo "$o" | sed -n '/^efault estop/,$p' | sed -n 2p)" '^status ok state=3 ' \
	"the device is in ESTOP all the same"
has "$o" '^efault clear EFAULT$' "CLEAR_FAULT, unmapped argument: EFAULT"
has "$(echo "$o" | sed -n '/^efault clear/,$p' | sed -n 2p)" '^status ok state=0 ' \
	"the latch was cleared all the same"

# START whose result cannot be written back (argument in a read-only
# page): the caller cannot know the needle runs, so the driver stops it.
m=$(mark)
o=$(run $dev claim set 9000 700 12000 1000 rostart 300 status)
has "$o" '^rostart EFAULT$' "START into a read-only page: EFAULT"
has "$o" '^status ok state=0 ' "the needle is not left running"
check "the simulator saw START then the driver's STOP" \
	eval 'since $m | grep -q "event=STATE from=RUNNING to=IDLE reason=STOP" &&
		! since $m | grep -q "event=LEASE_EXPIRED"'

# read(): a record leaves the queue only once copied out.
o=$(run -r $dev readfault)
has "$o" '^readfault EFAULT first=72 partial=72 next=72 kinds=1,1,1 ' \
	"read() into an unmapped buffer: EFAULT; a half-mapped one: one record"
s=$(echo "$o" | sed -n 's/.* seqs=\([0-9]*\),\([0-9]*\),\([0-9]*\) dropped=0$/\1 \2 \3/p')
read -r s1 s2 s3 <<< "$s"
check "no record lost to the bad buffers (telemetry seqs ${s1:-?},${s2:-?},${s3:-?} follow on)" \
	test -n "$s1" -a "$((s1 + 1))" = "${s2:-x}" -a "$((s1 + 2))" = "${s3:-x}"

stop_sim || diag "simulator did not stop cleanly"
wait_for 10 test ! -e $dev
rmmod smpusb || bail "rmmod smpusb failed"
