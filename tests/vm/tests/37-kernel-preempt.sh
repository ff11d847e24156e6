#!/bin/bash
# A stop never queues behind an unrelated command (H7, H6, H17): while a
# command waits for a reply the device swallowed (smp-sim "stall 1"; the
# driver would wait timeout_ms = 5000 ms for it), an ESTOP or the owner's
# STOP from another file, the driver's lease STOP and the owner-closed
# STOP all go out at once.  The waiting command fails ECANCELED (the
# stop pre-empted its reply wait; it may have taken effect) and a reply
# that comes late is discarded as a foreign seq.  Latencies come from
# smp-sim's event log (device clock), from the simulator's "status"
# control line written just before the stop's ioctl or kill.
#
# Bound: every stop here is held to STOP_BOUND_MS = 250 ms, the bound the
# driver's other stops meet in this TCG guest (tests 23, 34): the claim
# is that a stop does not wait for the stalled reply (timeout_ms, 5000
# ms).  What the ESTOP and the owner's STOP took is printed
# (preempt-latency); on a quiet machine it is 10-20 ms, on a loaded one
# up to 165 ms was seen (dummy_hcd steps of 4 ms at HZ=250, the guest
# sharing two cores).  Issue 14's 20 ms is for make bench to show.
. "$SMP_SRC/tests/vm/lib.sh"
plan 24
STOP_BOUND_MS=250
kernel_test_start

mark() { wc -l < "$ev"; }
since() { tail -n +$(($1 + 1)) "$ev"; }
t_of() { sed -n 's/^t_us=\([0-9]*\) .*/\1/p' | head -n1; }
cnt() { cat "$intf/counters/$1"; }
# Polling every 50 ms: faster polling loads the TCG guest enough to slow
# the very processes it waits for.
# wait_ev MARK PATTERN: until the event log has PATTERN after MARK (5 s).
wait_ev() {
	local i
	for ((i = 0; i < 100; i++)); do
		since "$1" | grep -q "$2" && return 0
		sleep 0.05
	done
	return 1
}
# wait_line FILE PATTERN: until FILE has a line matching PATTERN (10 s).
wait_line() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q "$2" "$1" 2> /dev/null && return 0
		sleep 0.05
	done
	return 1
}
# lat SEG FROM TO: ms from the first event matching FROM to the first
# matching TO after it, in SEG; empty when either is missing.
lat() {
	local t0 t1
	t0=$(echo "$1" | grep -m1 "$2" | t_of)
	t1=$(echo "$1" | sed -n "/$2/,\$p" | grep -m1 "$3" | t_of)
	[ -n "$t0" ] && [ -n "$t1" ] && echo $(((t1 - t0) / 1000))
}
params="set 9000 700 12000 1000"

# The longest reply wait the driver allows: on the old driver every stop
# below would come seconds late, however slow the guest sets up.
echo 5000 > /sys/module/smpusb/parameters/timeout_ms
is "$(cat /sys/module/smpusb/parameters/timeout_ms)" 5000 \
	"the driver waits up to 5000 ms for a reply"

# For comparison only (no assertion): the same path with no command
# waiting, from the "status" line to the owner's STOP at the device.
m=$(mark)
"$tool" $dev claim ctl $ctl status stop release > /dev/null
ms=$(lat "$(since "$m")" 'event=CONTROL cmd="status"' 'event=CMD type=STOP')
diag "preempt-latency: baseline stop, nothing waiting = ${ms:-none} ms (device clock)"

# A. The owner's SET_PARAMS waits for a swallowed reply; an ESTOP from a
#    second file reaches the device at once (STOP_BOUND_MS).
go="$SMP_OUT/a-go"
rm -f "$go"
m=$(mark)
"$tool" $dev waitfor "$go" ctl $ctl status estop > "$SMP_OUT/a-estop.txt" 2>&1 &
stopper=$!
"$tool" $dev claim ctl $ctl "stall 1" $params > "$SMP_OUT/a-owner.txt" 2>&1 &
owner=$!
wait_ev "$m" "event=INJECTED action=stall" || bail "the simulator did not stall SET_PARAMS"
# Opening and closing another file does not wait for the command in
# progress either.
o=$("$tool" -r $dev api)
check "a file opens and closes while SET_PARAMS waits" \
	eval 'echo "$o" | grep -q "^api ok" && ! grep -q "^set " "$SMP_OUT/a-owner.txt"'
touch "$go"
wait $stopper
wait $owner
o=$(cat "$SMP_OUT/a-estop.txt")
seg=$(since "$m")
ms=$(lat "$seg" 'event=CONTROL cmd="status"' 'event=CMD type=ESTOP')
diag "preempt-latency: estop = ${ms:-none} ms (device clock)"
check "ESTOP from a second file reaches the device within $STOP_BOUND_MS ms of its ioctl, not after the stalled reply (${ms:-none} ms)" \
	test -n "$ms" -a "${ms:-99999}" -lt "$STOP_BOUND_MS"
check "the ESTOP succeeds" eval 'echo "$o" | grep -q "^estop ok "'
check "the stalled SET_PARAMS fails ECANCELED" grep -q "^set ECANCELED" "$SMP_OUT/a-owner.txt"
check "the device got the SET_PARAMS before the ESTOP (it may have taken effect)" \
	eval 'echo "$seg" | grep -m1 -E "event=CMD type=(SET_PARAMS|ESTOP)" | grep -q SET_PARAMS'
is "$(cnt timeouts)" 0 "a pre-empted wait is not counted as a timeout"
is "$(cnt usb_errors)" 0 "nor as a USB error"
o=$("$tool" -r $dev status)
check "the next command works" eval 'echo "$o" | grep -q "^status ok state=3 "'

# B. The driver's lease expires while the owner's GET_STATUS waits for a
#    swallowed reply: its STOP goes out within the bound of test 34
#    (the firmware ignores its lease, so only the driver's lease acts).
is "$(sim_ctl $ctl "lease-ignore on")" "ok lease-ignore on=1" "the simulated firmware ignores its lease"
lstops0=$(cnt lease_stops)
m=$(mark)
"$tool" $dev claim clear $params start 300 ctl $ctl "stall 1" status hold \
	> "$SMP_OUT/b-owner.txt" 2>&1 &
owner=$!
wait_line "$SMP_OUT/b-owner.txt" '^hold' || bail "owner B did not finish its commands: $(cat "$SMP_OUT/b-owner.txt")"
grep -q '^start ok state=1 ' "$SMP_OUT/b-owner.txt" || bail "START failed: $(cat "$SMP_OUT/b-owner.txt")"
seg=$(since "$m")
dl=$(echo "$seg" | grep 'event=LEASE_ARM' | sed -n 's/.*deadline_us=\([0-9]*\).*/\1/p' | head -n1)
t1=$(echo "$seg" | grep 'event=CMD type=STOP' | t_of)
ms=$(( (${t1:-0} - ${dl:-0}) / 1000 ))
diag "preempt-latency: lease = $ms ms after the lease deadline (device clock)"
check "the driver's lease STOP reaches the device ($ms ms after the lease deadline)" \
	test -n "$dl" -a -n "$t1" -a "$ms" -ge -5 -a "$ms" -lt 250
check "the stalled GET_STATUS fails ECANCELED" grep -q "^status ECANCELED" "$SMP_OUT/b-owner.txt"
check "the needle stopped by STOP" eval 'echo "$seg" | grep -q "event=STATE from=RUNNING to=IDLE reason=STOP"'
is "$(($(cnt lease_stops) - lstops0))" 1 "lease_stops counts the driver's lease STOP"
kill $owner
wait $owner 2> /dev/null

# C. The owner is killed (its file closes) while a reader's GET_STATUS
#    waits for a swallowed reply: the owner-closed STOP goes out within the
#    dead-man bound of test 23.  The owner claims but does not START: the
#    driver sends that STOP all the same, and the run needs no lease that a
#    slow guest could outlast while the test sets up.
m=$(mark)
"$tool" $dev claim hold > "$SMP_OUT/c-owner.txt" 2>&1 &
owner=$!
wait_line "$SMP_OUT/c-owner.txt" '^hold' || bail "owner C did not claim"
"$tool" -r $dev ctl $ctl "stall 1" status > "$SMP_OUT/c-reader.txt" 2>&1 &
reader=$!
wait_ev "$m" "event=INJECTED action=stall" || bail "the simulator did not stall GET_STATUS"
"$tool" - ctl $ctl status > /dev/null
kill -KILL $owner
wait $owner 2> /dev/null
wait $reader
seg=$(since "$m")
ms=$(lat "$seg" 'event=CONTROL cmd="status"' 'event=CMD type=STOP')
diag "preempt-latency: close = ${ms:-none} ms (device clock)"
check "owner killed: its STOP reaches the device within 250 ms (${ms:-none} ms)" \
	test -n "$ms" -a "${ms:-99999}" -lt 250
check "the reader's stalled GET_STATUS fails ECANCELED" grep -q "^status ECANCELED" "$SMP_OUT/c-reader.txt"
is "$(cat "$intf/control")" "claimed=0 lease=0 estop_latched=0" "the claim is gone"

# D. The owner's STOP pre-empts a reader's GET_CARTRIDGE whose reply comes
#    late (4.5 s) and reaches the device at once (STOP_BOUND_MS); the
#    late reply, when it comes, is discarded as a foreign seq.  A reader's
#    STOP is refused (it may not stop, so it pre-empts nothing).
f0=$(($(cnt bad_seq) + $(cnt bad_type)))
go="$SMP_OUT/d-go"
rm -f "$go"
m=$(mark)
"$tool" $dev claim waitfor "$go" ctl $ctl status stop \
	> "$SMP_OUT/d-owner.txt" 2>&1 &
owner=$!
wait_line "$SMP_OUT/d-owner.txt" '^claim ok' || bail "owner D did not claim"
"$tool" -r $dev stop waitfor "$go" > "$SMP_OUT/d-other.txt" 2>&1 &
other=$!
wait_line "$SMP_OUT/d-other.txt" '^stop ' || bail "the reader's STOP did not return"
check "a reader's STOP is refused (EPERM: not the owner)" grep -q "^stop EPERM" "$SMP_OUT/d-other.txt"
"$tool" -r $dev ctl $ctl "delay 4500 1" cart > "$SMP_OUT/d-reader.txt" 2>&1 &
reader=$!
wait_ev "$m" "event=INJECTED action=delay" || bail "the simulator did not delay GET_CARTRIDGE"
touch "$go"
wait $owner
wait $reader
wait $other
seg=$(since "$m")
ms=$(lat "$seg" 'event=CONTROL cmd="status"' 'event=CMD type=STOP')
diag "preempt-latency: stop = ${ms:-none} ms (device clock)"
check "the owner's STOP reaches the device within $STOP_BOUND_MS ms of its ioctl, not after the late reply (${ms:-none} ms)" \
	test -n "$ms" -a "${ms:-99999}" -lt "$STOP_BOUND_MS"
check "the owner's STOP succeeds" grep -q "^stop ok state=0 " "$SMP_OUT/d-owner.txt"
check "the reader's late GET_CARTRIDGE fails ECANCELED" grep -q "^cart ECANCELED" "$SMP_OUT/d-reader.txt"
due=$(echo "$seg" | sed -n 's/.*event=INJECTED action=delay .*due_us=\([0-9]*\).*/\1/p' | head -n1)
for ((i = 0; i < 100; i++)); do
	now=$(sim_ctl $ctl status | sed -n 's/.* t_us=\([0-9]*\) .*/\1/p')
	[ "${now:-0}" -gt $((${due:-0} + 100000)) ] && break
	sleep 0.1
done
o=$("$tool" -r $dev status)
check "the command after the late reply gets its own reply" \
	eval 'echo "$o" | grep -q "^status ok state=0 "'
check "the late reply was discarded as a foreign reply" \
	test "$(($(cnt bad_seq) + $(cnt bad_type) - f0))" -ge 1

stop_sim
ok $? "simulator stops cleanly"
wait_for 10 test ! -e $dev
rmmod smpusb || bail "rmmod smpusb failed"
