#!/bin/bash
# vm-timeout: 900
# Unplug (H17): the gadget is unbound from its UDC while the needle runs,
# a reader sleeps in read() and a poller in poll().  Every cycle the owner
# gets ENODEV, the reader gets its DISCONNECT record then ENODEV, the
# poller POLLHUP; nothing hangs, nothing leaks (the harness fails the run
# on any WARNING/BUG/Oops).  Then rmmod is refused while a file is open
# and works once it is closed.
. "$SMP_SRC/tests/vm/lib.sh"
cycles=${SMPUSB_UNPLUG_CYCLES:-100}
plan 8
ko="$SMP_SRC/kernel/smpusb.ko"
tool="$SMP_SRC/kernel/tests/smpusb-tool"
[ -x "$tool" ] || bail "$tool not built (make -C kernel)"

vm_insmod "$ko" timeout_ms=2000	# TCG is slow; the default is 500
# A test that bails must not leave the simulator or the module behind.
trap 'stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
start_sim --model=2 --event-log="$SMP_OUT/events.log"

gadget=
for g in /sys/kernel/config/usb_gadget/*; do
	[ "$(cat "$g/idVendor" 2> /dev/null)" = 0x1209 ] && gadget=$g
done
[ -n "$gadget" ] || bail "no 1209 gadget in configfs"
udc=$(cat "$gadget/UDC")
[ -n "$gadget" ] && [ -n "$udc" ] || bail "gadget not bound to a UDC"
smpdev() { ls /dev/smpusb* 2> /dev/null | head -n1; }

fail_owner=0 fail_reader=0 fail_poller=0 fail_hang=0 fail_bind=0 done=0
t_start=$(date +%s)
for ((i = 1; i <= cycles; i++)); do
	if ! wait_for 30 eval 'test -n "$(smpdev)"'; then
		fail_bind=$((fail_bind + 1))
		diag "cycle $i: device did not come back"
		break
	fi
	dev=$(smpdev)
	d="$SMP_OUT/cycle"
	"$tool" $dev claim clear set 9000 700 12000 1000 start 500 \
		renewloop 500 50 > "$d.owner" 2>&1 &
	p_owner=$!
	"$tool" -r $dev blockread > "$d.reader" 2>&1 &
	p_reader=$!
	"$tool" -r $dev pollhup 60 > "$d.poller" 2>&1 &
	p_poller=$!
	wait_for 20 grep -q '^renewloop running' "$d.owner"
	wait_for 10 grep -q '^blockread waiting' "$d.reader"
	sleep 0.2
	echo "" > "$gadget/UDC"
	for p in $p_owner $p_reader $p_poller; do
		if ! wait_for 15 eval '! kill -0 $p 2> /dev/null'; then
			fail_hang=$((fail_hang + 1))
			diag "cycle $i: pid $p still running 15 s after unplug"
			kill -KILL $p 2> /dev/null
		fi
		wait $p 2> /dev/null
	done
	tail -n1 "$d.owner" | grep -q '^renewloop ENODEV' ||
		{ fail_owner=$((fail_owner + 1)); diag "cycle $i owner: $(tr '\n' '|' < "$d.owner")"; }
	grep -q '^blockread ENODEV records=[0-9]* disconnect_ev=1$' "$d.reader" ||
		{ fail_reader=$((fail_reader + 1)); diag "cycle $i reader: $(tr '\n' '|' < "$d.reader")"; }
	grep -q '^pollhup ok' "$d.poller" ||
		{ fail_poller=$((fail_poller + 1)); diag "cycle $i poller: $(tr '\n' '|' < "$d.poller")"; }
	wait_for 10 eval 'test -z "$(smpdev)"'
	echo "$udc" > "$gadget/UDC"
	done=$i
done
diag "unplug: $done cycles in $(($(date +%s) - t_start)) s"
is "$done" "$cycles" "$cycles unplug cycles while running completed"
is "$fail_bind" 0 "the device came back after every replug"
is "$fail_hang" 0 "no process hung after an unplug"
is "$fail_owner" 0 "the owner's RENEW ended in ENODEV every time"
is "$fail_reader" 0 "the blocked reader got DISCONNECT then ENODEV every time"
is "$fail_poller" 0 "the poller got POLLHUP every time"

# rmmod while a file is open is refused, then works.
wait_for 30 eval 'test -n "$(smpdev)"' || bail "device did not come back"
"$tool" -r "$(smpdev)" hold > /dev/null 2>&1 &
holder=$!
sleep 0.5
rmmod smpusb 2> /dev/null
check "rmmod refused while /dev/smpusbN is open" test $? -ne 0 -a -d /sys/module/smpusb
kill $holder
wait $holder 2> /dev/null
rmmod smpusb
ok $? "rmmod works once it is closed (device still plugged in)"
stop_sim || diag "simulator did not stop cleanly"
