#!/bin/busybox sh
# /init of the libsmp VM initramfs (tests/vm/run builds it; see README.md).
# Loads the modules needed to reach the host over virtio-9p, mounts the host
# root read-only plus tmpfs/devtmpfs/proc/sys on top, chroots into it to run
# tests/vm/guest.sh, then powers off.  Runs as PID 1: it must never exit.
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

say() { echo "smp-vm-init: $*" > /dev/console; }
die() {
	say "FATAL: $*"
	poweroff -f
	while :; do sleep 1; done
}

while read -r m; do
	insmod "/modules/$m" || die "insmod $m failed"
done < /modules.list

mkdir -p /out /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 smpout /out ||
	die "cannot mount the out share"
[ -r /out/.vm/config ] || die "no /out/.vm/config"
. /out/.vm/config

mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /newroot ||
	die "cannot mount the host root"
# Writable tmpfs over /tmp, /run, /var/tmp; the host's copies stay reachable
# under /host so a source or build dir living there can be bound back.
for d in tmp run var/tmp; do
	mkdir -p "/host/$d"
	mount --bind "/newroot/$d" "/host/$d" || die "bind /$d"
	mount -t tmpfs -o mode=1777 tmpfs "/newroot/$d" || die "tmpfs /$d"
done
for p in "$SMP_SRC" "$SMP_BUILD" "$SMP_VM_MODROOT"; do
	case "$p" in
	/tmp/*|/run/*|/var/tmp/*)
		mkdir -p "/newroot$p"
		mount --bind "/host$p" "/newroot$p" || die "cannot bind $p"
		;;
	esac
done
mkdir -p "/newroot$SMP_VM_OUT"
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
mount --move /out "/newroot$SMP_VM_OUT" || die "cannot move the out share to $SMP_VM_OUT"

chroot /newroot /bin/bash "$SMP_SRC/tests/vm/guest.sh" "$SMP_VM_OUT" > /dev/console 2>&1
say "guest.sh exited with $?"

sync
umount "/newroot$SMP_VM_OUT" 2> /dev/null
sync
# A kernel deadlock (a test failed on it) can block the devices' shutdown
# for good: then reboot at once, without it (qemu runs with -no-reboot).
(sleep 30; echo b > /newroot/proc/sysrq-trigger) &
poweroff -f
while :; do sleep 1; done
