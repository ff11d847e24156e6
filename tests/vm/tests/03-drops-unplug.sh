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
# Every hole the host saw must be exactly one run of records the device
# reports (event log) as dropped, and vice versa, inside the window.
window=$(sed -n 's/.*; seq \([0-9]*\)\.\.\([0-9]*\) (span.*/\1 \2/p' "$SMP_OUT/stall.txt")
read -r first last <<< "$window"
sed -n 's/^gap after seq \([0-9]*\): \([0-9]*\) missing$/\1 \2/p' "$SMP_OUT/stall.txt" |
	awk '{ print $1 + 1, $2 }' > "$SMP_OUT/host-gaps"
awk -v a="${first:-0}" -v b="${last:-0}" '
	/event=TELEMETRY_DROP_BEGIN/ { match($0, /seq=[0-9]+/); s = substr($0, RSTART + 4, RLENGTH - 4) + 0 }
	/event=TELEMETRY_DROP_END/ { match($0, /dropped=[0-9]+/); n = substr($0, RSTART + 8, RLENGTH - 8) + 0
		if (s > a && s <= b) print s, n }
' "$SMP_OUT/events.log" > "$SMP_OUT/device-drops"
stall=$(sed -n 's/.*event=TELEMETRY_DROP_BEGIN seq=\([0-9]*\) reason=telemetry-stall.*/\1/p' "$SMP_OUT/events.log" | head -n1)
diag "window seq $first..$last; stall run starts at seq $stall"
diag "host gaps (first missing, count): $(tr '\n' ';' < "$SMP_OUT/host-gaps")"
diag "device drop runs: $(tr '\n' ';' < "$SMP_OUT/device-drops")"
check "the host saw the injected stall as a hole of at least 50 records at seq $stall" \
	awk -v s="$stall" '$1 == s && $2 >= 50 { f = 1 } END { exit !f }' "$SMP_OUT/host-gaps"
check "host-seen holes are exactly the device's drop runs" \
	eval '[ -s "$SMP_OUT/host-gaps" ] && cmp -s "$SMP_OUT/host-gaps" "$SMP_OUT/device-drops"'
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
