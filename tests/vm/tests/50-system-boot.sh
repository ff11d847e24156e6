# The systemd-booted guest itself (tests/vm/run --systemd): systemd is PID 1
# on a writable overlay, the system came up without failed units, and the
# services the full-system tests rely on work: udevd, the system bus,
# polkitd, journald.
# vm-timeout: 180
. "$SMP_SRC/tests/vm/lib.sh"
plan 7

is "$(cat /proc/1/comm)" systemd "PID 1 is systemd"
state=$(systemctl is-system-running --wait 2> /dev/null)
failed=$(systemctl list-units --state=failed --no-legend --plain 2> /dev/null | awk '{print $1}' | tr '\n' ' ')
[ -n "$failed" ] && diag "failed units: $failed" && systemctl status --no-pager $failed >&2
is "$state/${failed:-none}" "running/none" "system is running with no failed unit"
# Where the boot time went (tests/vm/README.md, timing).
systemd-analyze --no-pager blame 2> /dev/null | head -n 12 | sed 's/^/# boot: /' >&2
check "/ is a writable overlay" sh -c 'findmnt -n -o FSTYPE / | grep -qx overlay && touch /etc/.smp-vm-rw && rm /etc/.smp-vm-rw'
check "systemd-udevd is active" systemctl is-active -q systemd-udevd.service
check "the system bus answers" eval "busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus GetId >&2"
backend=$(busctl --system call org.freedesktop.PolicyKit1 \
	/org/freedesktop/PolicyKit1/Authority org.freedesktop.DBus.Properties Get ss \
	org.freedesktop.PolicyKit1.Authority BackendName 2>&1)
diag "polkit backend: $backend"
is "$backend" 'v s "js"' "polkitd starts on demand and runs its JavaScript rules backend"
tag="smp-vm-$$-$RANDOM"
logger -t smp-vm "$tag"
check "journald stores and finds a message" wait_for 10 sh -c "journalctl -q -t smp-vm --no-pager | grep -q $tag"
