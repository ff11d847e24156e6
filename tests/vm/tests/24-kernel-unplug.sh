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
ko="$SMP_VM_KO"
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
# The loop forks only the three tools per cycle: under TCG every fork and
# exec costs tens of ms, so it waits without polling where it can (tool
# output through FIFOs read with `read -t`; the guest has no /dev/fd for
# process substitution) and naps without sleep(1).
fifos=$(mktemp -d /tmp/smpusb-unplug.XXXXXX) || bail "mktemp failed"
trap 'stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null; rm -rf "$fifos"' EXIT
mkfifo "$fifos/nap" "$fifos/owner" "$fifos/reader" "$fifos/poller" || bail "mkfifo failed"
exec {nap_fd}<> "$fifos/nap"	# nobody writes to it: read -t on it naps
nap() { read -r -t "$1" -u "$nap_fd" _; }
# wait_until SECS CMD...: CMD every 50 ms until it succeeds or SECS pass.
wait_until() {
	local i
	for ((i = 0; i < $1 * 20; i++)); do
		"${@:2}" && return 0
		nap 0.05
	done
	"${@:2}"
}
# smpdev: sets $dev to the first /dev/smpusbN; fails if there is none.
smpdev() {
	local d
	dev=
	for d in /dev/smpusb*; do
		[ -c "$d" ] && dev=$d && return 0
	done
	return 1
}
nodev() { ! smpdev; }
# collect FD SECS: appends FD's lines to $out ("line|"), until EOF (0) or
# no line for SECS (1: the writer hangs); with STOP, until that line (0).
collect() {
	local l r
	while :; do
		read -r -t "$2" -u "$1" l
		r=$?
		[ -n "$l" ] && out+="$l|"
		[ $r -eq 0 ] || { [ $r -gt 128 ] && return 1; return 0; }
		[ -n "${3:-}" ] && [ "$l" = "$3" ] && return 0
	done
}
# finish NAME PID FD: collects the rest of a tool's output until it exits;
# kills it if it hangs.  Leaves the output in $out.
finish() {
	local fd=$3
	out=${outs[$1]}
	if ! collect "$3" 15; then
		fail_hang=$((fail_hang + 1))
		diag "cycle $i: $1 (pid $2) still running 15 s after unplug"
		kill -KILL "$2" 2> /dev/null
	fi
	wait "$2" 2> /dev/null
	exec {fd}<&-
}

declare -A outs
fail_owner=0 fail_reader=0 fail_poller=0 fail_hang=0 fail_bind=0 done=0
t_start=$EPOCHREALTIME
for ((i = 1; i <= cycles; i++)); do
	if ! wait_until 30 smpdev; then
		fail_bind=$((fail_bind + 1))
		diag "cycle $i: device did not come back"
		break
	fi
	"$tool" $dev claim clear set 9000 700 12000 1000 start 500 \
		renewloop 500 50 > "$fifos/owner" 2>&1 &
	p_owner=$!
	exec {fo}< "$fifos/owner"
	"$tool" -r $dev blockread > "$fifos/reader" 2>&1 &
	p_reader=$!
	exec {fr}< "$fifos/reader"
	"$tool" -r $dev pollhup 60 > "$fifos/poller" 2>&1 &
	p_poller=$!
	exec {fp}< "$fifos/poller"
	# Running, the reader about to sleep in read(), the poller in poll().
	out=; collect $fo 20 "renewloop running"; outs[owner]=$out
	out=; collect $fr 10 "blockread waiting"; outs[reader]=$out
	out=; collect $fp 10 "pollhup waiting"; outs[poller]=$out
	nap 0.2
	echo "" > "$gadget/UDC"
	finish owner $p_owner $fo; o_owner=$out
	finish reader $p_reader $fr; o_reader=$out
	finish poller $p_poller $fp; o_poller=$out
	[[ $o_owner == *"|renewloop ENODEV|" ]] ||
		{ fail_owner=$((fail_owner + 1)); diag "cycle $i owner: $o_owner"; }
	[[ $o_reader =~ \|blockread\ ENODEV\ records=[0-9]+\ disconnect_ev=1\|$ ]] ||
		{ fail_reader=$((fail_reader + 1)); diag "cycle $i reader: $o_reader"; }
	[[ $o_poller == "pollhup waiting|pollhup ok"* ]] ||
		{ fail_poller=$((fail_poller + 1)); diag "cycle $i poller: $o_poller"; }
	[ "$i" = 1 ] && diag "cycle 1: owner: $o_owner reader: $o_reader poller: $o_poller"
	wait_until 10 nodev
	echo "$udc" > "$gadget/UDC"
	done=$i
done
t_end=$EPOCHREALTIME
diag "unplug: $done cycles in $(awk -v a="$t_start" -v b="$t_end" -v n="$done" \
	'BEGIN { printf "%.1f s, %.2f s per cycle", b - a, (b - a) / (n ? n : 1) }')"
is "$done" "$cycles" "$cycles unplug cycles while running completed"
is "$fail_bind" 0 "the device came back after every replug"
is "$fail_hang" 0 "no process hung after an unplug"
is "$fail_owner" 0 "the owner's RENEW ended in ENODEV every time"
is "$fail_reader" 0 "the blocked reader got DISCONNECT then ENODEV every time"
is "$fail_poller" 0 "the poller got POLLHUP every time"

# rmmod while a file is open is refused, then works.
wait_until 30 smpdev || bail "device did not come back"
"$tool" -r "$dev" hold > /dev/null 2>&1 &
holder=$!
sleep 0.5
rmmod smpusb 2> /dev/null
check "rmmod refused while /dev/smpusbN is open" test $? -ne 0 -a -d /sys/module/smpusb
kill $holder
wait $holder 2> /dev/null
rmmod smpusb
ok $? "rmmod works once it is closed (device still plugged in)"
stop_sim || diag "simulator did not stop cleanly"
