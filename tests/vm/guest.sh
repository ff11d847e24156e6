#!/bin/bash
# Runs inside the VM (chrooted into the host root, see init.sh): prepares
# the USB gadget stack, runs each test with its own time limit and output
# files, then saves the kernel log.  The host (tests/vm/run) judges it all.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
. "$1/.vm/config"
V="$SMP_VM_OUT/.vm"

echo "smp-vm: guest up at $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r)"

fatal() {
	echo "smp-vm: FATAL: $*"
	echo "$*" > "$V/fatal"
	dmesg > "$SMP_VM_OUT/dmesg.txt" 2>&1
	sync
	exit 1
}

# The stock kernel's module tree (depmod'ed in the cache) as the guest's;
# under --systemd, init-systemd.sh has already merged it into /lib/modules.
SMP_VM_SYSTEMD=${SMP_VM_SYSTEMD:-0}
if [ "$SMP_VM_SYSTEMD" = 1 ]; then
	[ -d "/lib/modules/$SMP_VM_KVER/kernel" ] || fatal "no stock modules in /lib/modules/$SMP_VM_KVER"
	[ "$(cat /proc/1/comm)" = systemd ] || fatal "PID 1 is $(cat /proc/1/comm), not systemd"
else
	mount --bind "$SMP_VM_MODROOT" /lib/modules || fatal "bind mount of $SMP_VM_MODROOT"
fi
[ "$(uname -r)" = "$SMP_VM_KVER" ] || fatal "booted $(uname -r), expected $SMP_VM_KVER"
modprobe configfs || fatal "modprobe configfs"
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config ||
	fatal "mount configfs"
for m in dummy_hcd libcomposite usb_f_fs; do
	modprobe "$m" || fatal "modprobe $m"
done
# dummy_hcd registers its UDC asynchronously.
for _ in $(seq 50); do
	[ -n "$(ls /sys/class/udc 2> /dev/null)" ] && break
	sleep 0.1
done
[ -n "$(ls /sys/class/udc 2> /dev/null)" ] || fatal "no UDC after loading dummy_hcd"

cut -d' ' -f1 /proc/uptime > "$V/boot-seconds"
# The checkers of a debug kernel, as they are before the first test and
# after the last (tests/vm/run judges them): lockdep turns itself off
# after its first report, and a checker that is off reports nothing.
checkers() {	# checkers WHEN
	local v
	v=$(awk '$1 == "debug_locks:" { print $2 }' /proc/lockdep_stats 2> /dev/null)
	echo "lockdep_$1=${v:-none}"
	echo "hung_task_timeout_$1=$(cat /proc/sys/kernel/hung_task_timeout_secs 2> /dev/null || echo none)"
}
{
	checkers start
	dmesg | grep -q 'KernelAddressSanitizer initialized' && echo kasan=1 || echo kasan=0
} > "$V/checkers"
echo "smp-vm: ready at $(cat "$V/boot-seconds")s, UDC $(ls /sys/class/udc)"

# Run one test in its own session so whatever it leaves running can be
# stopped by process group, never by name.
run_one() {
	local t="$1" name limit rc pgid
	name=$(basename "$t" .sh)
	limit=$(sed -n 's/^# vm-timeout: *\([0-9][0-9]*\).*/\1/p' "$t" | head -n1)
	limit=$((${limit:-120} * ${SMP_VM_TIMEOUT_SCALE:-1}))
	mkdir -p "$SMP_VM_OUT/tests/$name"
	echo "smp-vm: running $name (limit ${limit}s)"
	local t0 t1
	# Mark the kernel log so the host can say which test a splat came from.
	echo "smp-vm: begin test $name" > /dev/kmsg
	t0=$(cut -d' ' -f1 /proc/uptime)
	(
		cd "$SMP_VM_OUT/tests/$name" || exit 125
		export SMP_SRC SMP_BUILD SMP_VM_KVER SMP_VM_KO SMP_VM_SYSTEMD SMP_DEBS
		export SMP_OUT="$SMP_VM_OUT/tests/$name"
		exec setsid -w bash -c 'echo $$ > "$0"; exec timeout -k 5 "$1" bash "$2"' \
			"$V/$name.pgid" "$limit" "$t"
	) > "$SMP_VM_OUT/tests/$name.tap" 2> "$SMP_VM_OUT/tests/$name.log" < /dev/null
	rc=$?
	t1=$(cut -d' ' -f1 /proc/uptime)
	pgid=$(cat "$V/$name.pgid" 2> /dev/null)
	if [ -n "$pgid" ] && kill -0 -- "-$pgid" 2> /dev/null; then
		echo "left processes running; killed" >> "$V/$name.leftover"
		kill -TERM -- "-$pgid" 2> /dev/null
		sleep 1
		kill -KILL -- "-$pgid" 2> /dev/null
	fi
	echo "smp-vm: end test $name" > /dev/kmsg
	# Out-of-tree modules (taint O) must not outlive the test that loaded
	# them: the next test expects the stock stack only.
	local m
	for m in $(awk '$0 ~ /\(O/ { print $1 }' /proc/modules); do
		echo "left out-of-tree module $m loaded" >> "$V/$name.leftover"
		rmmod "$m" 2>> "$V/$name.leftover"
	done
	echo "$rc" > "$V/$name.rc"
	echo "$t0 $t1" | awk '{ printf "%.1f\n", $2 - $1 }' > "$V/$name.seconds"
	# A test must leave a bare bus behind.
	local g
	for g in /sys/kernel/config/usb_gadget/*; do
		[ -e "$g" ] || continue
		echo "left gadget $(basename "$g") in configfs" >> "$V/$name.leftover"
		cleanup_gadget "$g"
	done
	echo "smp-vm: $name exit $rc after $(cat "$V/$name.seconds")s"
}

# Best-effort removal of a gadget a failed test left behind.
cleanup_gadget() {
	local g="$1" c f w
	# Bounded: after a driver deadlock the unbind blocks for good, and
	# the guest must still finish the run.
	(echo "" > "$g/UDC") 2> /dev/null &
	w=$!
	for _ in $(seq 20); do
		kill -0 $w 2> /dev/null || break
		sleep 0.5
	done
	if kill -0 $w 2> /dev/null; then
		echo "unbinding gadget $(basename "$g") from its UDC hangs; left as is" >> "$V/$name.leftover"
		return
	fi
	for c in "$g"/configs/*; do
		[ -d "$c" ] || continue
		for f in "$c"/*; do [ -L "$f" ] && rm -f "$f"; done
		rmdir "$c"/strings/* 2> /dev/null
		rmdir "$c" 2> /dev/null
	done
	for f in "$g"/functions/*; do
		[ -d "$f" ] || continue
		grep -q " $(basename "$f" | sed 's/^ffs\.//') " /proc/mounts &&
			umount "$(awk -v s="$(basename "$f" | sed 's/^ffs\.//')" '$1 == s { print $2 }' /proc/mounts)" 2> /dev/null
		rmdir "$f" 2> /dev/null
	done
	rmdir "$g"/strings/* 2> /dev/null
	rmdir "$g" 2> /dev/null
}

while read -r t; do
	[ -n "$t" ] && run_one "$t"
done < "$V/tests.list"

sync
checkers end >> "$V/checkers"
dmesg > "$SMP_VM_OUT/dmesg.txt" 2>&1
cat /proc/sys/kernel/tainted > "$SMP_VM_OUT/tainted"
touch "$V/done"
sync
echo "smp-vm: done at $(cut -d' ' -f1 /proc/uptime)s"
