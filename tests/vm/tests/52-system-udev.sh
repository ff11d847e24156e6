# Plug the simulated machine into the installed system (51-system-install)
# with the DKMS-built smpusb driver: udev loads the driver, gives both
# nodes (/dev/smpusbN and the usbfs node) to root:smp 0660, never to the
# seat, imports the model from the hwdb, and the plug starts smpd.  A user
# outside smp cannot open either node (H13).
# vm-timeout: 600
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-system.sh"
plan 18

need_installed
id alice > /dev/null 2>&1 || useradd -M -s /bin/sh -G smp alice
id bob > /dev/null 2>&1 || useradd -M -s /bin/sh bob
id carol > /dev/null 2>&1 || useradd -M -s /bin/sh -G smp,smp-admin carol

cleanup() {
	stop_sim
	systemctl stop smpd.service 2> /dev/null
	grep -q '^smpusb ' /proc/modules && rmmod smpusb
}
trap cleanup EXIT

systemctl stop smpd.service
is "$(systemctl is-active smpd.service)" inactive "smpd is stopped before the plug"

start_sim --model=2 --serial=SIM-X2-000042
dev=$(find_usb_dev 1209 0001)
usbfs=$(printf '/dev/bus/usb/%03d/%03d' "$(cat "$dev/busnum")" "$(cat "$dev/devnum")")
diag "device $dev, usbfs node $usbfs"

check "udev loads smpusb for the machine" wait_secs 30 grep -q '^smpusb ' /proc/modules
check "smpusb binds it and /dev/smpusb0 appears" wait_secs 30 test -c /dev/smpusb0
udevadm settle -t 30
is "$(stat -c '%U:%G %a' /dev/smpusb0 2>&1)" "root:smp 660" "/dev/smpusb0 is root:smp 0660"
is "$(stat -c '%U:%G %a' "$usbfs" 2>&1)" "root:smp 660" "the usbfs node is root:smp 0660"

props=$(udevadm info -q property -n /dev/smpusb0 2>&1)
check "/dev/smpusb0 has ID_SMP_MODEL=2 from the hwdb" grep -qx 'ID_SMP_MODEL=2' <<< "$props"
check "/dev/smpusb0 has ID_SMP_MODEL_NAME=SMP-X2" grep -qx 'ID_SMP_MODEL_NAME=SMP-X2' <<< "$props"
uprops=$(udevadm info -q property -n "$usbfs" 2>&1)
check "the usbfs node has ID_SMP_MODEL=2 from bcdDevice" grep -qx 'ID_SMP_MODEL=2' <<< "$uprops"
# CURRENT_TAGS: the tags of the last event (TAGS keeps every tag any
# earlier rule or event ever set).
tags=$(udevadm info -q property -n "$usbfs" | sed -n 's/^CURRENT_TAGS=//p')$(udevadm info -q property -n /dev/smpusb0 | sed -n 's/^CURRENT_TAGS=//p')
diag "current tags: $tags; all tags: $(udevadm info -q property -n "$usbfs" | sed -n 's/^TAGS=//p')"
check "both nodes are tagged for systemd" sh -c 'case "$1" in *:systemd:*:systemd:*) ;; *) exit 1 ;; esac' sh "$tags"
check "neither node is tagged uaccess or seat" sh -c 'case "$1" in *uaccess*|*:seat:*) exit 1 ;; esac' sh "$tags"
check "no ACL on either node (no seat user gets access)" sh -c \
	'! ls -l /dev/smpusb0 "$1" | cut -c1-11 | grep -q +' sh "$usbfs"

check "a user outside smp cannot open /dev/smpusb0" \
	sh -c '! runuser -u bob -- sh -c "exec 3<> /dev/smpusb0" 2> /dev/null'
check "a user outside smp cannot open the usbfs node" \
	sh -c '! runuser -u bob -- sh -c "exec 3< $1" 2> /dev/null' sh "$usbfs"
check "a user in smp can open the usbfs node" runuser -u alice -- sh -c "exec 3< $usbfs"

check "the plug started smpd (SYSTEMD_WANTS)" wait_secs 30 systemctl is-active -q smpd.service
is "$(ps -o user= -p "$(systemctl show -p MainPID --value smpd.service)" 2>&1 | tr -d ' ')" smpd \
	"smpd runs as the user smpd"
# Under the packaged unit (DevicePolicy=closed) smpd must still reach the
# node of the driver.
wait_secs 30 sh -c 'smpctl devices 2>&1 | grep -q "SIM-X2-000042"' || true
smpctl devices > "$SMP_OUT/devices.txt" 2>&1
sed 's/^/# /' "$SMP_OUT/devices.txt" >&2
check "smpd drives the machine through /dev/smpusb0 (chardev backend)" grep -q chardev "$SMP_OUT/devices.txt"
journalctl -u smpd.service -b --no-pager > "$SMP_OUT/smpd-journal.log" 2>&1

stop_sim
ok $? "the simulator stops cleanly"
trap - EXIT
systemctl stop smpd.service
wait_secs 10 sh -c '! grep -q "^smpusb " /proc/modules || rmmod smpusb'
