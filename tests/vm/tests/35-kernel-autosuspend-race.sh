#!/bin/bash
# vm-timeout: 150
# open() racing runtime autosuspend (issue 20): with power/control=auto and
# autosuspend_delay_ms=0 the device suspends at every last close and
# resumes at every first open, so two processes opening and closing
# /dev/smpusb0 keep an open racing a suspend in progress.  The driver once
# took io_mutex in open() and then waited in usb_autopm_get_interface() for
# that suspend, whose smpusb_suspend() waited for io_mutex: both processes
# and the PM worker hung for good within 15-160 cycles.  open() now takes
# the PM reference before any driver lock (see "Locking" in
# smpusb_main.c).
#
# Bounded: the loops run LOOP_S seconds; a watchdog gives them GRACE_S
# more to finish, and the hung-task detector (10 s) names any task stuck
# in the kernel.  A deadlock fails the test (and, being permanent, leaves
# the module loaded and the log dirty, which fails the run) instead of
# hanging it.
. "$SMP_SRC/tests/vm/lib.sh"
plan 8
ko="$SMP_VM_KO"
dev=/dev/smpusb0
hung=/proc/sys/kernel/hung_task_timeout_secs
LOOP_S=${SMP_RACE_SECONDS:-30}
GRACE_S=20
[ -w "$hung" ] || bail "no $hung: the kernel lacks CONFIG_DETECT_HUNG_TASK"
hung0=$(cat "$hung")
stuck=0

vm_insmod "$ko" timeout_ms=2000	# TCG is slow; the default is 500
# A deadlocked run must not block in its own cleanup: the simulator's
# unbind and rmmod would wait for the stuck open forever.
trap 'echo "$hung0" > "$hung"
	if [ "$stuck" = 0 ]; then stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null; fi' EXIT
start_sim --model=2 --event-log="$SMP_OUT/events.log"
wait_for 20 test -c $dev || bail "/dev/smpusb0 did not appear"
udev=$(find_usb_dev 1209 0001)
pm="$udev/power"
status() { cat "$pm/runtime_status"; }

echo 10 > "$hung" || bail "cannot set $hung"
echo 0 > "$pm/autosuspend_delay_ms"
echo auto > "$pm/control"
wait_for 10 eval 'test "$(status)" = suspended'
is "$(status)" suspended "no file open: the device autosuspends at once"

# loop SECONDS NAME: open and close the node until SECONDS have passed;
# writes "CYCLES FAILURES" to NAME.count.
loop() {
	local end=$((SECONDS + $1)) n=0 bad=0
	while [ $SECONDS -lt "$end" ]; do
		if exec 3< $dev; then
			exec 3<&-
		else
			bad=$((bad + 1))
		fi
		n=$((n + 1))
	done 2> "$SMP_OUT/$2.err"
	echo "$n $bad" > "$SMP_OUT/$2.count"
}
suspended0=$(cat "$pm/runtime_suspended_time")
dmesg_mark=$(dmesg | wc -l)
loop "$LOOP_S" a &
la=$!
loop "$LOOP_S" b &
lb=$!
# Watchdog: the loops end by themselves after LOOP_S; a hung open does not.
# Counted in SECONDS: under TCG a "sleep 0.1" round costs far more.
wd_end=$((SECONDS + LOOP_S + GRACE_S))
while [ $SECONDS -lt $wd_end ]; do
	kill -0 $la 2> /dev/null || kill -0 $lb 2> /dev/null || break
	sleep 0.5
done
if kill -0 $la 2> /dev/null || kill -0 $lb 2> /dev/null; then
	stuck=1
	ok 1 "both open/close loops finished within $((LOOP_S + GRACE_S)) s"
	for p in $la $lb $(pgrep -f smp-sim) $(pgrep kworker); do
		[ "$(awk '{ print $3 }' "/proc/$p/stat" 2> /dev/null)" = D ] || continue
		diag "blocked: $p $(cat "/proc/$p/comm"): $(tr '\n' ' ' < "/proc/$p/stack" 2> /dev/null)"
	done
	echo w > /proc/sysrq-trigger	# blocked tasks into the kernel log
	for d in "opens never failed" "suspends happened" "no hung task" \
		"device resumes" "telemetry" "the module unloads"; do
		ok 1 "$d (not reached: deadlock)"
	done
	exit 1
fi
wait $la
wait $lb
ok 0 "both open/close loops finished within $((LOOP_S + GRACE_S)) s"
read -r na ba < "$SMP_OUT/a.count"
read -r nb bb < "$SMP_OUT/b.count"
diag "cycles: $na + $nb in $LOOP_S s; failed opens: $ba + $bb"
sed 's/^/# loop a: /' "$SMP_OUT/a.err" >&2
sed 's/^/# loop b: /' "$SMP_OUT/b.err" >&2
check "every open succeeded ($na + $nb cycles)" test "$((ba + bb))" = 0 -a "$((na + nb))" -gt 0
suspended1=$(cat "$pm/runtime_suspended_time")
diag "runtime_suspended_time grew by $((suspended1 - suspended0)) ms during the loops"
check "the device autosuspended while the loops ran" test "$suspended1" -gt "$suspended0"
dmesg | tail -n +$((dmesg_mark + 1)) > "$SMP_OUT/dmesg-loops.txt"
check "no task blocked (hung-task detector at 10 s)" \
	eval '! grep -q "blocked for more than" "$SMP_OUT/dmesg-loops.txt"'

# The device still works: open resumes it and telemetry flows.
echo on > "$pm/control"
wait_for 10 eval 'test "$(status)" = active'
is "$(status)" active "power/control=on resumes the device"
o=$(timeout 20 "$SMP_SRC/kernel/tests/smpusb-tool" -r $dev stream 1 2>&1)
check "telemetry flows after the race" \
	eval 'echo "$o" | grep -Eq "^stream ok records=[0-9]{3,} "' ||
	{ echo "$o" | sed 's/^/# smpusb-tool stream 1: /' >&2; dmesg | tail -n 20 | sed 's/^/# dmesg: /' >&2; }

stop_sim > /dev/null
wait_for 10 test ! -e $dev
rmmod smpusb
ok $? "the module unloads"
