#!/bin/bash
# smp-link's USB reply path: a corrupt reply is counted and never trusted
# (EPROTO), a swallowed reply times out, a duplicated reply is discarded as
# a stray while the next command still gets its own; the link recovers
# after each.
. "$SMP_SRC/tests/vm/lib.sh"
plan 9
probe="$SMP_BUILD/tools/smp-probe/smp-probe"
ctl=/run/smp-vm-test/ctl.sock
mkdir -p /run/smp-vm-test

start_sim --control="$ctl" --event-log="$SMP_OUT/events.log"

sim_ctl "$ctl" corrupt crc 1 >&2
"$probe" info > "$SMP_OUT/corrupt.txt" 2>&1
rc=$?
sed 's/^/# corrupt: /' "$SMP_OUT/corrupt.txt" >&2
is "$rc" 1 "GET_INFO with a corrupt (bad CRC) reply fails"
check "... as a protocol error, not a result" grep -q "GET_INFO: Protocol error" "$SMP_OUT/corrupt.txt"
"$probe" info > /dev/null 2>&1
ok $? "the next GET_INFO succeeds"

sim_ctl "$ctl" stall 1 >&2
"$probe" info > "$SMP_OUT/stall.txt" 2>&1
rc=$?
sed 's/^/# stall: /' "$SMP_OUT/stall.txt" >&2
is "$rc" 1 "GET_INFO whose reply the device swallows fails"
check "... with a timeout" grep -q "GET_INFO: Connection timed out" "$SMP_OUT/stall.txt"

sim_ctl "$ctl" duplicate 1 >&2
"$probe" --json info > "$SMP_OUT/dup.json" 2> "$SMP_OUT/dup.err"
ok $? "info succeeds when the device sends a reply twice"
sed 's/^/# dup: /' "$SMP_OUT/dup.err" >&2
stray=$(sed -n 's/^ *"stray_replies": *\([0-9]*\).*/\1/p' "$SMP_OUT/dup.json")
bad=$(sed -n 's/^ *"bad_frames": *\([0-9]*\).*/\1/p' "$SMP_OUT/dup.json")
is "$stray" 1 "the duplicate was discarded as a stray reply"
is "$bad" 0 "and no frame was counted bad"

stop_sim
ok $? "smp-sim exits cleanly on SIGTERM"
