#!/bin/busybox sh
# /init of the libsmp VM initramfs for `tests/vm/run --systemd` (README.md).
# Like init.sh it reaches the host over virtio-9p, but instead of chrooting
# into a read-only root it builds a writable system: an overlayfs with the
# host root (9p, read-only) as lower layer and a tmpfs as upper layer, the
# stock kernel's module tree merged with the host's headers link under
# /lib/modules, the test units of tests/vm/systemd/ added, and then hands
# over to systemd as PID 1.  smp-vm-tests.service runs guest.sh and powers
# off.  Runs as PID 1: it must never exit except into switch_root.
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

say() { echo "smp-vm-init: $*" > /dev/console; }
die() {
	say "FATAL: $*"
	[ -d /out/.vm ] && echo "$*" > /out/.vm/fatal
	poweroff -f
	while :; do sleep 1; done
}

while read -r m; do
	insmod "/modules/$m" || die "insmod $m failed"
done < /modules.list

mkdir -p /out /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 smpout /out ||
	die "cannot mount the out share"
[ -r /out/.vm/config ] || die "no /out/.vm/config"
. /out/.vm/config

for _ in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
if [ -n "${SMP_VM_DIST:-}" ]; then
	# Another Debian release (tests/vm/run --dist): its root, made by
	# tests/vm/build-dist-root, is the read-only image /dev/vda, with its
	# own kernel's modules and headers.  The host root is only where the
	# source, build and package directories come from (below).
	mount -t ext4 -o ro /dev/vda /lower || die "cannot mount the $SMP_VM_DIST root image /dev/vda"
else
	mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower ||
		die "cannot mount the host root"
fi
mount -t tmpfs -o mode=0755,size=${SMP_VM_OVERLAY_MB:-1536}m tmpfs /rw || die "tmpfs for the overlay"
mkdir -p /rw/root /rw/work /rw/mod /rw/modwork /modimg
mount -t overlay -o lowerdir=/lower,upperdir=/rw/root,workdir=/rw/work overlay /newroot ||
	die "cannot mount the overlay root"
if [ -n "${SMP_VM_DIST:-}" ]; then
	mkdir -p /newroot/mnt/smp-host
	mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot \
		/newroot/mnt/smp-host || die "cannot mount the host root"
	for p in "$SMP_SRC" "$SMP_BUILD" "$SMP_DEBS"; do
		[ -n "$p" ] && [ ! -d "/newroot$p" ] || continue
		mkdir -p "/newroot$p" && mount -o bind "/newroot/mnt/smp-host$p" "/newroot$p" ||
			die "cannot bind the host's $p"
	done
	[ -e "/newroot/lib/modules/$SMP_VM_KVER/kernel" ] || die "no modules for $SMP_VM_KVER in the $SMP_VM_DIST root"
else
	# /lib/modules: the stock kernel's modules over the host's /lib/modules
	# (its KVER/build link to the installed linux-headers, which DKMS needs),
	# writable for DKMS and depmod.  The stock modules come from the read-only
	# ext4 image tests/vm/run attaches (the same tree as SMP_VM_MODROOT): a
	# depmod over 9p reads thousands of files one round trip at a time.
	mount -t ext4 -o ro /dev/vda /modimg || die "cannot mount the module image /dev/vda"
	mount -t overlay -o "lowerdir=/modimg:/lower/lib/modules,upperdir=/rw/mod,workdir=/rw/modwork" \
		overlay /newroot/lib/modules || die "cannot mount the /lib/modules overlay"
	[ -e "/newroot/lib/modules/$SMP_VM_KVER/kernel" ] || die "no stock modules for $SMP_VM_KVER"
fi

# The guest's own units: the test runner and masks for what a test VM
# must not run (timers, gettys, the host's own services).
E=/newroot/etc/systemd/system
cp "/newroot$SMP_SRC"/tests/vm/systemd/*.service "$E/" || die "cannot install the test units"
mkdir -p "$E/multi-user.target.wants"
ln -sf ../smp-vm-tests.service "$E/multi-user.target.wants/smp-vm-tests.service"
while read -r u; do
	case "$u" in ''|'#'*) continue ;; esac
	rm -f "$E/$u"
	ln -s /dev/null "$E/$u"
done < "/newroot$SMP_SRC/tests/vm/systemd/masked"
{
	echo "SMP_SRC=$SMP_SRC"
	echo "SMP_VM_OUT=$SMP_VM_OUT"
} > /newroot/etc/smp-vm.env
# The host's /tmp and /var/tmp stay visible (the source, build or package
# dirs may be there): no boot-time cleaning of them by systemd-tmpfiles.
mkdir -p /newroot/etc/tmpfiles.d
ln -sf /dev/null /newroot/etc/tmpfiles.d/tmp.conf
# Nothing of the host's identity or container setup: no container marker
# (systemd would believe it runs in docker and skip udev), a fresh machine
# id, a hostname.
rm -f /newroot/.dockerenv /newroot/run/.containerenv
# Docker's policy-rc.d forbids maintainer scripts to start services; the
# guest is a real system whose packages must start theirs.
rm -f /newroot/usr/sbin/policy-rc.d
rm -f /newroot/etc/machine-id
: > /newroot/etc/machine-id
echo smp-vm > /newroot/etc/hostname
# The host's /etc and /var are up to date with its /usr (dpkg's triggers
# keep hwdb.bin, ld.so.cache and the journal catalog current), but a
# container has no /etc/.updated or /var/.updated: without them every boot
# would rebuild the whole hwdb, the linker cache and the catalog
# (ConditionNeedsUpdate=, systemd-update-done.service), a minute or more
# of TCG time before the first test.  The packages the tests install
# still run their own triggers.
[ -e /newroot/etc/.updated ] || : > /newroot/etc/.updated
[ -e /newroot/var/.updated ] || : > /newroot/var/.updated

mkdir -p "/newroot$SMP_VM_OUT"
mount --move /out "/newroot$SMP_VM_OUT" || die "cannot move the out share to $SMP_VM_OUT"
umount /proc /sys 2> /dev/null
mount --move /dev /newroot/dev
say "switching to systemd on the overlay root"
exec switch_root /newroot /lib/systemd/systemd
die "switch_root failed"
