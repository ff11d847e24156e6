#!/bin/bash
# The driver's own lease (H6), alone: the simulated firmware ignores its
# lease (smp-sim "lease-ignore on", a broken device), the owner stays but
# never renews, and the driver's lease timer sends STOP.  The simulator's
# log shows STOP arriving from the host and no LEASE_EXPIRED; the latency
# from the lease deadline to that STOP (device clock) is reported as
# "# deadman-latency: driver-lease-only = N ms" and in deadman-latency.txt.
. "$SMP_SRC/tests/vm/lib.sh"
plan 10
kernel_test_start
t_of() { sed -n 's/^t_us=\([0-9]*\) .*/\1/p' | head -n1; }

r=$(sim_ctl $ctl "lease-ignore on")
is "$r" "ok lease-ignore on=1" "the simulated firmware now ignores its lease"
"$tool" -r $dev until 5 10 > "$SMP_OUT/reader.txt" 2>&1 &
reader=$!
sleep 0.5
"$tool" $dev claim set 9000 700 12000 1000 start 300 hold \
	> "$SMP_OUT/owner.txt" 2>&1 &
owner=$!
wait_for 10 grep -q '^hold' "$SMP_OUT/owner.txt" || bail "owner did not start"
grep -q '^start ok state=1 ' "$SMP_OUT/owner.txt" || bail "START failed: $(cat "$SMP_OUT/owner.txt")"
wait_for 5 grep -q 'event=CMD type=STOP' "$ev"
dl=$(grep 'event=LEASE_ARM' "$ev" | sed -n 's/.*deadline_us=\([0-9]*\).*/\1/p' | head -n1)
t1=$(grep 'event=CMD type=STOP' "$ev" | t_of)
ms=$(( (${t1:-0} - ${dl:-0}) / 1000 ))
echo "driver-lease-only $ms" > "$SMP_OUT/deadman-latency.txt"
diag "deadman-latency: driver-lease-only = $ms ms (device clock)"
check "the driver's STOP reaches the device ($ms ms after the lease deadline)" \
	test -n "$dl" -a -n "$t1" -a "$ms" -ge -5 -a "$ms" -lt 250
check "the device never expired its own lease" eval '! grep -q "event=LEASE_EXPIRED" "$ev"'
check "the needle stopped by STOP" grep -q "event=STATE from=RUNNING to=IDLE reason=STOP" "$ev"
is "$(cat "$intf/counters/lease_stops")" 1 "lease_stops counts the driver's lease STOP"
wait $reader
check "a reader got the DEADMAN record, reason lease expired (aux=2)" \
	grep -q '^until ok .* deadman_ev=1 aux=2 ' "$SMP_OUT/reader.txt"
s=$(sim_ctl $ctl status)
check "the device is IDLE with no fault (it did not stop itself)" \
	eval 'echo "$s" | grep -q " state=IDLE faults=0x0 "'
o=$("$tool" -r $dev stats)
check "the device counted no lease expiry" eval 'echo "$o" | grep -q " dev.lease_expiries=0 "'
is "$(cat "$intf/control")" "claimed=1 lease=0 estop_latched=0" \
	"the owner still holds the claim; the driver's lease is over"
first=$(awk '/event=CMD type=START/ { f = 1; next } f && /event=CMD/ { print; exit }' "$ev")
check "the first command after START was that STOP (the owner sent nothing)" \
	eval 'echo "$first" | grep -q "event=CMD type=STOP"'
kill $owner
wait $owner 2> /dev/null

stop_sim || diag "simulator did not stop cleanly"
wait_for 10 test ! -e $dev
rmmod smpusb || bail "rmmod smpusb failed"
