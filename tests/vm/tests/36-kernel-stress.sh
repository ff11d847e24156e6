#!/bin/bash
# vm-timeout: 420
# Concurrency stress of smpusb.ko (issue 20): two processes of
# kernel/tests/smpusb-stress (five threads each: every ioctl with valid,
# boundary and invalid arguments, bad pointers, reads of odd sizes, poll,
# open/close and dup2 over a descriptor in use) for STRESS_S seconds, while
# this script unplugs and replugs the device, resets it (USBDEVFS_RESET),
# injects reply faults, and flips runtime PM (autosuspend_delay_ms=0).
#
# Two phases.  First the simulated firmware keeps its own lease and the
# device is unplugged too.  Then it ignores its lease (a broken device,
# "lease-ignore on"), so only the driver stops the needle: its lease timer,
# the dead-man on the owner's close, pre_reset; no unplugs then (nothing
# on the host can stop a device it cannot reach) and no reply faults (a
# command waiting timeout_ms for a swallowed reply delays the lease STOP).
#
# Passes when: no call gives an errno docs/kernel.md does not allow for it
# (in particular never EPROTO or ESHUTDOWN from a transport error, issue
# item 4) and none takes more than 15 s; no task blocks (hung-task
# detector at 20 s) and the kernel log is clean; the needle never runs
# longer than 1 s beyond its last lease (the simulator's event log, device
# clock); the module unloads and reloads and the device works afterwards.
. "$SMP_SRC/tests/vm/lib.sh"
plan 12
STRESS_S=${SMP_STRESS_SECONDS:-60}
PHASE1_S=$((STRESS_S * 3 / 5))
SLACK_MS=1000
stress="$SMP_SRC/kernel/tests/smpusb-stress"
[ -x "$stress" ] || bail "$stress not built (make -C kernel)"
hung=/proc/sys/kernel/hung_task_timeout_secs
[ -w "$hung" ] || bail "no $hung: the kernel lacks CONFIG_DETECT_HUNG_TASK"
hung0=$(cat "$hung")
kernel_test_start
trap 'echo "$hung0" > "$hung"; kill $p1 $p2 2> /dev/null
	stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
echo 20 > "$hung"
dmesg_mark=$(dmesg | wc -l)

# Runtime PM on the device as it is now (a replug makes a new one).
autosuspend() {
	local u
	u=$(find_usb_dev 1209 0001) || return 0
	echo 0 > "$u/power/autosuspend_delay_ms" 2> /dev/null
	echo "$1" > "$u/power/control" 2> /dev/null
}
usb_reset() {
	local u node
	u=$(find_usb_dev 1209 0001) || return 1
	node=/dev/bus/usb/$(printf %03d "$(cat "$u/busnum")")/$(printf %03d "$(cat "$u/devnum")")
	timeout 30 "$stress" --usbreset "$node" >> "$SMP_OUT/reset.txt" 2>&1
}
# ctl LINE: one line to the simulator (C, not python: the guest is busy).
ctl() { "$tool" - ctl $ctl "$*" 2>&1 | grep -q '^ctl ok'; }
autosuspend auto

t0=$SECONDS
"$stress" $dev "$STRESS_S" 1 > "$SMP_OUT/stress1.txt" 2>&1 &
p1=$!
"$stress" $dev "$STRESS_S" 2 > "$SMP_OUT/stress2.txt" 2>&1 &
p2=$!
unplugs=0 resets=0 faults=0 pmflips=0 phase=1 i=0
while kill -0 $p1 2> /dev/null || kill -0 $p2 2> /dev/null; do
	if [ $((SECONDS - t0)) -gt $((STRESS_S + 120)) ]; then
		diag "stress processes still running $((SECONDS - t0)) s after start"
		break
	fi
	if [ $phase = 1 ] && [ $((SECONDS - t0)) -ge $PHASE1_S ]; then
		wait_for 30 test -c $dev
		ctl clear-injections
		ctl lease-ignore on || diag "lease-ignore on failed"
		phase=2
	fi
	[ $((SECONDS - t0)) -ge "$STRESS_S" ] && { sleep 1; continue; }
	i=$((i + 1))
	if [ $phase = 1 ]; then
		step=$(( (i % 5) == 2 ? 0 : (i % 5) - ((i % 5) > 2) ))	# 0 1 0 2 3
	else
		step=$((1 + 2 * (i % 2)))	# reset or PM only
	fi
	case $step in
	0)	# unplug for 300 ms; the device comes back as a new one
		ctl disconnect 300 && unplugs=$((unplugs + 1))
		wait_for 30 test -c $dev && autosuspend auto ;;
	1)
		usb_reset && resets=$((resets + 1)) ;;
	2)
		case $((i / 5 % 3)) in
		0) ctl corrupt crc 2 ;;
		1) ctl stall 1 ;;
		*) ctl duplicate 2 ;;
		esac && faults=$((faults + 1)) ;;
	*)
		pmflips=$((pmflips + 1))
		if [ $((pmflips % 2)) = 0 ]; then autosuspend on; else autosuspend auto; fi ;;
	esac
	sleep 0.5
done
wait $p1
r1=$?
wait $p2
r2=$?
diag "stress: ${STRESS_S} s, $unplugs unplugs, $resets resets, $faults reply faults, $pmflips PM flips"
for f in stress1 stress2; do
	grep -E '^stress (unexpected|ok|FAIL)' "$SMP_OUT/$f.txt" | sed "s/^/# $f: /" >&2
done
check "process 1: every call gave a documented result, none took 15 s" \
	eval 'test $r1 = 0 && grep -q "^stress ok " "$SMP_OUT/stress1.txt"'
check "process 2: every call gave a documented result, none took 15 s" \
	eval 'test $r2 = 0 && grep -q "^stress ok " "$SMP_OUT/stress2.txt"'
check "no EPROTO or ESHUTDOWN from queries, STOP, ESTOP or CLEAR_FAULT" \
	eval '! cat "$SMP_OUT"/stress[12].txt | grep -Eq "^stress (result|unexpected) (GET_STATUS|GET_STATS|GET_CARTRIDGE|STOP|ESTOP|CLEAR_FAULT) (EPROTO|ESHUTDOWN) "'
n_enodev=$(cat "$SMP_OUT"/stress[12].txt | awk '$1 == "stress" && $4 == "ENODEV" { n += $5 } END { print n + 0 }')
n_eio=$(cat "$SMP_OUT"/stress[12].txt | awk '$1 == "stress" && $4 == "EIO" { n += $5 } END { print n + 0 }')
diag "calls ending ENODEV: $n_enodev, EIO (transport error, device not known gone): $n_eio"
check "the stress really unplugged ($unplugs) and reset ($resets) the device" \
	test "$unplugs" -ge 3 -a "$resets" -ge 3

# The needle, on the device's clock: every run ends within SLACK_MS of its
# last lease deadline, in both phases.
awk -v slack=$((SLACK_MS * 1000)) '
	{ t = substr($1, 6) + 0 }
	/event=LEASE_(ARM|RENEW)/ { for (i = 2; i <= NF; i++) if ($i ~ /^deadline_us=/) dl = substr($i, 13) + 0 }
	/event=STATE .*to=RUNNING/ { run = 1; dl = 0 }
	/event=STATE from=RUNNING/ {
		runs++; late = t - dl
		if (late > max) max = late
		if (late > slack / 2) print "# stop " int(late / 1000) " ms after the lease deadline: " $0 > "/dev/stderr"
		if (late > slack) bad++
		run = 0
	}
	END {
		if (run && t - dl > slack) { bad++; print "still running at the end" > "/dev/stderr" }
		printf "%d %d %d\n", runs, bad, max / 1000
	}' "$ev" > "$SMP_OUT/needle.txt"
read -r runs late maxlate < "$SMP_OUT/needle.txt"
diag "needle: $runs runs, $late ended more than $SLACK_MS ms after their lease, latest stop $maxlate ms after the deadline"
check "the needle never ran more than $SLACK_MS ms beyond its lease ($runs runs)" \
	test "$runs" -gt 0 -a "$late" = 0
check "the driver alone stopped it in the lease-ignore phase (STOPs seen)" \
	eval 'awk "/what=lease-ignore on=1/ { f = 1 } f && /event=CMD type=STOP/ { n++ } END { exit !(n > 0) }" "$ev"'

dmesg | tail -n +$((dmesg_mark + 1)) > "$SMP_OUT/dmesg-stress.txt"
check "no task blocked, no WARNING/BUG in the kernel log" \
	eval '! grep -Eq "blocked for more than|WARNING:|BUG:|Call Trace|refcount_t:" "$SMP_OUT/dmesg-stress.txt"'
check "no task left in uninterruptible sleep" \
	eval '! ps -eo stat=,comm= | grep -q "^D"'

# The device works; the module unloads and reloads.
ctl lease-ignore off
wait_for 30 test -c $dev
autosuspend on
o=$(timeout 30 "$tool" -r $dev stream 1 status 2>&1)
check "telemetry flows and GET_STATUS works after the stress" \
	eval 'echo "$o" | grep -Eq "^stream ok records=[0-9]{3,} " && echo "$o" | grep -q "^status ok "'
rmmod smpusb
ok $? "the module unloads with the device plugged in"
vm_insmod "$ko" timeout_ms=2000
wait_for 30 test -c $dev
o=$(timeout 30 "$tool" $dev claim clear set 9000 700 12000 1000 start 300 stop 2>&1)
check "after reloading, the device binds and runs START/STOP" \
	eval 'echo "$o" | grep -q "^start ok state=1 " && echo "$o" | grep -q "^stop ok "'
stop_sim > /dev/null
wait_for 10 test ! -e $dev
rmmod smpusb
ok $? "the module unloads at the end"
