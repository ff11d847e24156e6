#!/bin/bash
# The counting in 02 can fail: a telemetry stall injected in the device is
# seen by the host as exactly the records the device says it dropped, and
# --expect-no-drops then fails.  An unplug (UDC unbind) ends an open link
# with ENODEV, the device re-enumerates on replug and answers again.
. "$SMP_SRC/tests/vm/lib.sh"
plan 11
probe="$SMP_BUILD/tools/smp-probe/smp-probe"
ctl=/run/smp-vm-test/ctl.sock
mkdir -p /run/smp-vm-test

start_sim --control="$ctl" --event-log="$SMP_OUT/events.log"

# ---- Injected drops are counted, exactly. ----
"$probe" stream --seconds 10 --expect-no-drops > "$SMP_OUT/stall.txt" 2> "$SMP_OUT/stall.err" &
ppid=$!
# The first live line comes 1 s into the counted window; the control
# client (python under TCG) may take seconds to start, hence 10 s.
wait_for 30 grep -q '^seq ' "$SMP_OUT/stall.txt" || diag "stream never printed a live line"
sim_ctl "$ctl" telemetry-stall 50 >&2
check "telemetry-stall 50 accepted by the control socket" test $? -eq 0
wait "$ppid"
rc=$?
sed 's/^/# stall: /' "$SMP_OUT/stall.txt" "$SMP_OUT/stall.err" >&2
is "$rc" 1 "smp-probe --expect-no-drops fails when records were dropped"
summary=$(grep '^gaps ' "$SMP_OUT/stall.txt")
gaps=$(echo "$summary" | sed -n 's/^gaps \([0-9]*\),.*/\1/p')
devdrops=$(echo "$summary" | sed -n 's/.*device-counted drops \([0-9]*\)$/\1/p')
check "host saw the stall as a gap of at least 50 records (got '${gaps}')" test "${gaps:-0}" -ge 50
is "$gaps" "$devdrops" "host-counted gaps equal the device's telemetry_dropped"
check "no bad frames during the stall" grep -q "bad frames 0," "$SMP_OUT/stall.txt"

# ---- Unplug while streaming. ----
"$probe" stream --seconds 30 > "$SMP_OUT/unplug.txt" 2> "$SMP_OUT/unplug.err" &
ppid=$!
wait_for 30 grep -q '^seq ' "$SMP_OUT/unplug.txt" || diag "stream never printed a live line"
sim_ctl "$ctl" disconnect 2000 >&2
check "disconnect 2000 accepted" test $? -eq 0
gone() { ! usb_dev_present 1209 0001; }
check "device left the bus (UDC unbound)" wait_for 5 gone
t0=$SECONDS
wait "$ppid"
rc=$?
sed 's/^/# unplug: /' "$SMP_OUT/unplug.txt" "$SMP_OUT/unplug.err" >&2
check "open stream ended with an error at the unplug (rc $rc, $((SECONDS - t0)) s)" \
	eval '[ "$rc" = 1 ] && grep -q "No such device" "$SMP_OUT/unplug.err"'
check "device re-enumerated after the replug" wait_for 30 usb_dev_present 1209 0001
"$probe" info > "$SMP_OUT/info.txt" 2>&1
ok $? "GET_INFO works again after the replug"
sed 's/^/# info: /' "$SMP_OUT/info.txt" >&2

stop_sim
ok $? "smp-sim exits cleanly on SIGTERM"
