#!/bin/bash
# A signal while a command waits for the device's reply (H6, H14): the
# ioctl fails with EINTR at once (never restarted, even with SA_RESTART:
# the command may have taken effect), the driver stays consistent (the
# next command works and gets its own reply; the late reply is discarded
# as a foreign seq), an interrupted START leaves the needle stopped, and
# STOP is never cut short by a signal.
. "$SMP_SRC/tests/vm/lib.sh"
plan 17
kernel_test_start
cnt() { cat "$intf/counters/$1"; }
foreign() { echo $(($(cnt bad_seq) + $(cnt bad_type))); }

run() { "$tool" "$@" 2>> "$SMP_OUT/tool.err" | tee -a "$SMP_OUT/tool.txt"; }
has() {
	if echo "$1" | grep -Eq "$2"; then
		ok 0 "$3"
	else
		diag "$3: got: $1"
		ok 1 "$3"
	fi
}
mark() { wc -l < "$ev"; }
since() { tail -n +$(($1 + 1)) "$ev"; }

# A. The reply is late (1.5 s; the driver waits up to 2 s): SIGALRM after
#    300 ms ends the wait.  The next command works; the late reply, when it
#    comes, is discarded and the command waiting then gets its own.
t0=$(cnt timeouts)
f0=$(foreign)
o=$(run $dev ctl $ctl "delay 1500 1" alarm 300 status alarms status \
	sleep 1500 cart)
has "$o" '^status EINTR' "late reply: SIGALRM interrupts the wait: EINTR"
has "$o" '^alarms 1$' "the signal handler ran"
has "$(echo "$o" | sed -n '/^alarms/,$p' | sed -n 2p)" '^status ok state=0 ' \
	"the next command works"
has "$o" '^cart ok flags=0x1 ' "the command waiting when the late reply came gets its own reply"
check "the late reply was discarded as a foreign reply ($(($(foreign) - f0)))" \
	test "$(($(foreign) - f0))" -ge 1
is "$(($(cnt timeouts) - t0))" 0 "an interrupted wait is not counted as a timeout"

# B. The reply never comes (swallowed).
o=$(run $dev ctl $ctl "stall 1" alarm 300 cart cart)
has "$(echo "$o" | sed -n 2p)" '^cart EINTR' "swallowed reply: EINTR"
has "$(echo "$o" | sed -n 3p)" '^cart ok flags=0x1 ' "the next command works"

# C. With SA_RESTART the command is still not sent again.
m=$(mark)
o=$(run $dev ctl $ctl "delay 1500 1" alarmr 300 status sleep 1600 status)
has "$(echo "$o" | sed -n 2p)" '^status EINTR' "SA_RESTART: still EINTR (a sent command is never restarted)"
is "$(since "$m" | grep -c 'event=CMD type=GET_STATUS')" 2 \
	"the device got one GET_STATUS per call, none repeated"

# D. An interrupted START: the driver cannot know whether the device
#    started, so it sends STOP before the ioctl returns.
m=$(mark)
o=$(run $dev claim clear set 9000 700 12000 1000 ctl $ctl "delay 1500 1" \
	alarm 300 start 500 status)
has "$o" '^start EINTR' "START interrupted: EINTR"
has "$o" '^status ok state=0 ' "the needle is stopped after the ioctl returns"
seg=$(since "$m")
check "the simulator saw START then the driver's STOP (not its lease)" \
	eval 'echo "$seg" | grep -q "event=STATE from=RUNNING to=IDLE reason=STOP" &&
		! echo "$seg" | grep -q "event=LEASE_EXPIRED"'
is "$(cat "$intf/control")" "claimed=0 lease=0 estop_latched=0" "the driver's lease ended"

# E. STOP is not interruptible: a signal while it waits (for its late
#    reply, or for the driver's own lease STOP should that hold the device
#    on a loaded host) does not cut it short.  On such a host the lease may
#    also have ended the run first: stopped is IDLE or FAULT.
o=$(run $dev claim clear set 9000 700 12000 1000 start 500 \
	ctl $ctl "delay 1000 1" alarm 200 stop alarms status)
has "$o" '^stop ok state=[02] ' "STOP waits out a signal and succeeds"
has "$o" '^alarms 1$' "the signal arrived while STOP waited"
has "$o" '^status ok state=[02] ' "the needle is stopped"

stop_sim || diag "simulator did not stop cleanly"
wait_for 10 test ! -e $dev
rmmod smpusb || bail "rmmod smpusb failed"
