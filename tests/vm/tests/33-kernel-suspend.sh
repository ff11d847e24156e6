#!/bin/bash
# System suspend while the needle runs (H6, H17): the driver stops it
# before user space is frozen (nobody could renew the lease, and the owner
# cannot react while frozen), readers get a DEADMAN record with aux 3, the
# driver's lease ends, and after resume nothing restarts on its own while
# the device works again.
#
# The guest suspends to idle with /sys/power/pm_test=freezer: the kernel
# runs the whole suspend entry (PM notifiers, freezing every task) and
# resumes.  The device-level stages cannot run in this VM: resuming the
# virtio devices loses the 9p root file system (the guest hangs), and an
# RTC alarm does not wake qemu's s2idle.  The driver acts in its PM
# notifier, before all of those; see docs/kernel.md.
. "$SMP_SRC/tests/vm/lib.sh"
plan 14
ko="$SMP_VM_KO"
tool="$SMP_SRC/kernel/tests/smpusb-tool"
[ -x "$tool" ] || bail "$tool not built (make -C kernel)"
ctl=/tmp/smp-ctl.sock
dev=/dev/smpusb0
ev="$SMP_OUT/events.log"
[ -w /sys/power/pm_test ] || bail "no /sys/power/pm_test (CONFIG_PM_DEBUG)"
grep -qw freeze /sys/power/state || bail "suspend to idle not offered: $(cat /sys/power/state)"

vm_insmod "$ko" timeout_ms=2000	# TCG is slow; the default is 500
# A test that bails must not leave the simulator, the module or a PM test
# mode behind.
delay0=$(cat /sys/module/suspend/parameters/pm_test_delay)
trap 'echo none > /sys/power/pm_test; echo $delay0 > /sys/module/suspend/parameters/pm_test_delay
	stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
start_sim --model=2 --event-log="$ev" --control="$ctl"
wait_for 20 test -c $dev || bail "/dev/smpusb0 did not appear"
intf=$(ls -d /sys/bus/usb/drivers/smpusb/*:1.0 | head -n1)
mark() { wc -l < "$ev"; }
since() { tail -n +$(($1 + 1)) "$ev"; }

# The needle must run, the owner renewing, when the suspend begins.  On a
# loaded host the owner can stall past the 500 ms lease and the needle
# stops without the suspend (the leases work); then the kernel log lacks
# "needle stopped for system suspend" and the attempt is repeated (at
# most 3 times).
for attempt in 1 2 3; do
	"$tool" $dev claim clear set 9000 700 12000 1000 start 500 renewloop 500 50 \
		> "$SMP_OUT/owner.txt" 2>&1 &
	owner=$!
	wait_for 20 grep -q '^renewloop running' "$SMP_OUT/owner.txt" || bail "owner did not start"
	"$tool" -r $dev until 5 60 > "$SMP_OUT/reader.txt" 2>&1 &
	reader=$!
	stops0=$(cat "$intf/counters/deadman_stops")
	m=$(mark)
	echo freezer > /sys/power/pm_test || bail "cannot set pm_test"
	echo 1 > /sys/module/suspend/parameters/pm_test_delay
	k0=$(dmesg | wc -l)
	sleep 1
	echo freeze > /sys/power/state
	rc=$?
	echo none > /sys/power/pm_test
	klog=$(dmesg | tail -n +$((k0 + 1)))
	echo "$klog" | grep -q "needle stopped for system suspend" && break
	diag "attempt $attempt: the needle had stopped before the suspend (owner stalled?): $(tr '\n' '|' < "$SMP_OUT/owner.txt")"
	kill $owner $reader
	wait $owner $reader 2> /dev/null
done
echo "$klog" | sed 's/^/# kernel: /' >&2
check "the needle ran when the suspend began (attempt $attempt)" \
	eval 'echo "$klog" | grep -q "needle stopped for system suspend"'
ok $rc "suspend to idle (up to the freezer) and resume"
check "the kernel froze user space" eval 'echo "$klog" | grep -q "Freezing user space processes completed"'
n_stop=$(echo "$klog" | grep -n "needle stopped for system suspend" | cut -d: -f1 | head -n1)
n_frz=$(echo "$klog" | grep -n "Freezing user space processes" | cut -d: -f1 | head -n1)
check "the driver stopped the needle before the freezer ran (log lines ${n_stop:-none} < ${n_frz:-none})" \
	test -n "$n_stop" -a -n "$n_frz" -a "${n_stop:-0}" -lt "${n_frz:-0}"

wait $reader
sed 's/^/# reader: /' "$SMP_OUT/reader.txt" >&2
check "readers got a DEADMAN record, reason system suspend (aux=3)" \
	grep -q '^until ok .* deadman_ev=1 aux=3 ' "$SMP_OUT/reader.txt"
seg=$(since "$m")
check "the simulator saw STOP end the run (not its lease)" \
	eval 'echo "$seg" | grep -q "event=STATE from=RUNNING to=IDLE reason=STOP" &&
		! echo "$seg" | grep -q "event=LEASE_EXPIRED"'
is "$(($(cat "$intf/counters/deadman_stops") - stops0))" 1 "deadman_stops counts it"
wait_for 10 grep -Eq '^renewloop (ETIME|EBUSY)' "$SMP_OUT/owner.txt"
check "after resume the owner's RENEW is refused: the lease ended" \
	grep -Eq '^renewloop ETIME' "$SMP_OUT/owner.txt"
is "$(cat "$intf/control")" "claimed=1 lease=0 estop_latched=0" \
	"the owner keeps its claim, the driver's lease is over"
sleep 1
o=$("$tool" -r $dev status)
check "nothing restarted on its own (device IDLE 1 s after resume)" \
	eval 'echo "$o" | grep -q "^status ok state=0 "'
is "$(since "$m" | grep -c 'event=CMD type=START')" 0 "no START reached the device since the suspend"
kill $owner
wait $owner 2> /dev/null

o=$("$tool" $dev claim clear start 500 stop)
echo "$o" | sed 's/^/# after resume: /' >&2
check "after resume a new START works" eval 'echo "$o" | grep -q "^start ok state=1 "'
check "and STOP" eval 'echo "$o" | grep -q "^stop ok "'
o=$("$tool" -r $dev stream 1)
check "telemetry flows after resume" eval 'echo "$o" | grep -Eq "^stream ok records=[0-9]{3,} .* gaps=0 "'

stop_sim || diag "simulator did not stop cleanly"
wait_for 10 test ! -e $dev
rmmod smpusb || bail "rmmod smpusb failed"
