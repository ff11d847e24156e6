# Install the built Debian packages into the systemd-booted guest (its
# root is a throw-away overlay) and check what the maintainer scripts and
# DKMS did: the module built for the guest kernel, users and groups, the
# state directory, the enabled and hardened unit, udev and polkit data in
# place.  Later *-system-* tests of the same boot use this installation.
# vm-timeout: 1500
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-system.sh"
plan 17

[ "${SMP_VM_SYSTEMD:-0}" = 1 ] || bail "needs tests/vm/run --systemd"
[ -n "${SMP_DEBS:-}" ] && [ -d "$SMP_DEBS" ] || bail "no packages: tests/vm/run --systemd --debs DIR"
debs=()
for p in smpusb-dkms libsmp1 smpd smpctl libsmp-dev; do
	f=$(ls "$SMP_DEBS"/${p}_*.deb 2> /dev/null | head -n1)
	[ -n "$f" ] || bail "no ${p}_*.deb in $SMP_DEBS"
	debs+=("$f")
done

# Rebuilding the whole man-db index under TCG takes minutes (guest only).
rm -f /var/lib/man-db/auto-update
# DKMS's postinst builds for the running kernel and for the newest one
# whose headers are installed.  This guest's root is the host's, which has
# the headers of every series the VM tests boot: the extra build for
# 6.12-rt, its xz and its depmod took 135 of the 245 s of dpkg -i under
# TCG.  What these tests check is the module DKMS builds for the kernel
# the guest runs, so the other kernels' headers are hidden here (in the
# throw-away overlay, never on the host), as on a machine with one kernel.
for b in /lib/modules/*/build; do
	[ "$b" = "/lib/modules/$SMP_VM_KVER/build" ] || rm -f "$b"
done
t0=$(cut -d' ' -f1 /proc/uptime)
# Each output line with the guest uptime, to see where the time goes.
DEBIAN_FRONTEND=noninteractive stdbuf -oL -eL dpkg -i "${debs[@]}" 2>&1 |
	while IFS= read -r l; do echo "$(cut -d' ' -f1 /proc/uptime) $l"; done > "$SMP_OUT/dpkg.log"
rc=${PIPESTATUS[0]}
t1=$(cut -d' ' -f1 /proc/uptime)
diag "dpkg -i took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s"
[ "$rc" = 0 ] || tail -n 40 "$SMP_OUT/dpkg.log" | sed 's/^/# dpkg: /' >&2
ok "$rc" "dpkg -i installs smpusb-dkms, libsmp1, smpd, smpctl, libsmp-dev"

st=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' smpusb-dkms libsmp1 smpd smpctl libsmp-dev 2>&1 | awk '$2 != "ii"')
is "$st" "" "every package is installed and configured (ii)"

ko=$(modinfo -n -k "$SMP_VM_KVER" smpusb 2> /dev/null)
diag "dkms status: $(dkms status smpusb 2>&1 | tr '\n' ' ')"
# (DKMS 2, Debian 12: in the build tree; DKMS 3, Debian 13: KVER/ARCH/log/.)
cp /var/lib/dkms/smpusb/*/build/make.log "$SMP_OUT/dkms-make.log" 2> /dev/null ||
	cp /var/lib/dkms/smpusb/*/"$SMP_VM_KVER"/*/log/make.log "$SMP_OUT/dkms-make.log" 2> /dev/null
case "$ko" in
*/updates/dkms/smpusb.ko*) ok 0 "DKMS built and installed smpusb for $SMP_VM_KVER ($ko)" ;;
*) ok 1 "DKMS built and installed smpusb for $SMP_VM_KVER (modinfo: '$ko')"; tail -n 30 "$SMP_OUT/dpkg.log" >&2 ;;
esac
is "$(modinfo -F alias -k "$SMP_VM_KVER" smpusb 2> /dev/null | grep -c '^usb:v1209p0001')" 1 \
	"the module's alias binds 1209:0001 (udev autoloads it)"

check "groups smp and smp-admin exist" eval "getent group smp smp-admin >&2"
check "system user smpd exists, in group smp" sh -c 'id -nG smpd | grep -qw smp && [ "$(getent passwd smpd | cut -d: -f7)" != /bin/bash ]'
is "$(stat -c '%U:%G %a' /var/lib/smpd 2>&1)" "smpd:smp 700" "state directory /var/lib/smpd is smpd:smp 0700"
is "$(systemctl is-enabled smpd.service 2>&1)" enabled "smpd.service is enabled"
check "the D-Bus policy, activation file and polkit action are in place" test -f \
	/usr/share/dbus-1/system.d/org.libsmp.Smp1.conf -a -f \
	/usr/share/dbus-1/system-services/org.libsmp.Smp1.service -a -f \
	/usr/share/polkit-1/actions/org.libsmp.Smp1.policy -a -f \
	/usr/share/polkit-1/rules.d/60-libsmp.rules
check "udev rules and hwdb are installed" test -f /lib/udev/rules.d/72-smp.rules -a -f /lib/udev/hwdb.d/70-smp.hwdb
is "$(systemd-hwdb query usb:v1209p0001d0210dcFFdsc00dp00icFFisc53ip01in00 2> /dev/null | grep ID_SMP_MODEL_NAME)" \
	"ID_SMP_MODEL_NAME=SMP-X2" "the system hwdb knows the models after the install"

# The unit as installed, online (this systemd) and offline.
score=$(systemd-analyze security --no-pager smpd.service 2> /dev/null |
	sed -n 's/.*exposure level.*: *\([0-9.]*\) .*/\1/p' | tail -n1)
diag "systemd-analyze security smpd.service: ${score:-none}"
awk -v s="${score:-99}" 'BEGIN { exit !(s <= 1.0) }'
ok $? "systemd-analyze security rates the installed unit ${score:-?} (<= 1.0)"
score=$(systemd-analyze security --offline=yes --no-pager /lib/systemd/system/smpd.service 2> /dev/null |
	sed -n 's/.*exposure level.*: *\([0-9.]*\) .*/\1/p' | tail -n1)
awk -v s="${score:-99}" 'BEGIN { exit !(s <= 1.0) }'
ok $? "systemd-analyze security --offline=yes rates it ${score:-?} (<= 1.0)"

# The postinst started it; the plug test starts it again from udev.
wait_secs 20 systemctl is-active -q smpd.service
ok $? "smpd.service is active after the install"
journalctl -u smpd.service --no-pager -b > "$SMP_OUT/smpd-journal.log" 2>&1

# Its first start created the audit log; the verification key went to a
# file that is root's alone, never to the journal (docs/install.md).
kf=/var/lib/smpd/audit-verification.key
is "$(stat -c '%U:%G %a %F' "$kf" 2>&1)" "root:root 400 regular file" \
	"the audit verification key is in $kf, root:root 0400"
key=$(cat "$kf" 2> /dev/null)
check "the key file holds a verification key" grep -Eqx 'smpk1(-[0-9a-f]{8}){9}' <<< "$key"
check "the journal says where the key is and does not hold it" sh -c \
	'grep -qF "$1" "$3" && ! journalctl -b -o export --no-pager | grep -qF -e "$2" -e smpk1-' \
	sh "$kf" "${key:-no key read}" "$SMP_OUT/smpd-journal.log"
systemctl stop smpd.service
