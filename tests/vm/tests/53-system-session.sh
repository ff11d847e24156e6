# A treatment on the installed system (51-system-install, users from
# 52-system-udev), through the usbfs path (smpusb blacklisted: smpd drives
# the machine with libusb; a machine bound to smpusb belongs to the
# character-device backend).  The plug starts smpd under its real hardened
# unit; the real polkitd applies the shipped rules (smp operates, others
# may not, smp-admin overrides); a scripted smpctl session runs, is in the
# audit log, verifies and is in the journal under SMP_SESSION; unplugging
# mid-run ends the session cleanly; `systemctl stop smpd` stops a running
# needle.
# vm-timeout: 900
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-system.sh"
plan 21

need_installed alice bob carol

CTL=/run/smp-sim.ctl
EV=/run/smp-sim.events
echo 'blacklist smpusb' > /etc/modprobe.d/smp-vm-no-smpusb.conf
# udevd loads drivers through libkmod, whose configuration (the blacklist
# above) it read at start: make it read it again.
udevadm control --reload
systemctl stop smpd.service
wait_secs 10 sh -c '! grep -q "^smpusb " /proc/modules || rmmod smpusb'
grep -q '^smpusb ' /proc/modules && bail "smpusb cannot be unloaded"

cleanup() {
	stop_sim
	systemctl stop smpd.service 2> /dev/null
	rm -f /etc/modprobe.d/smp-vm-no-smpusb.conf
	[ -n "${bg:-}" ] && kill "$bg" 2> /dev/null
}
trap cleanup EXIT

# smpctl as USER; its exit status, output in $SMP_OUT/smpctl-N.log
n=0
as() {
	local u=$1
	shift
	n=$((n + 1))
	echo "+ [$u] smpctl $*" > "$SMP_OUT/smpctl-$n.log"
	runuser -u "$u" -- smpctl "$@" >> "$SMP_OUT/smpctl-$n.log" 2>&1
	local rc=$?
	echo "(exit $rc)" >> "$SMP_OUT/smpctl-$n.log"
	return $rc
}
last_log() { cat "$SMP_OUT/smpctl-$n.log"; }

# Every session needs an unused cartridge (H8): each plug and each
# `fresh_cartridge` brings a new one.
cart=0
# (Increment in the caller: cartridge_spec runs in a $(...) subshell.)
cartridge_spec() {
	printf 'id=SIM-CART-%04d lot=CL-VM-1 needle=3RL diameter=250 expiry=%s used=0' \
		"$cart" "$(date -u -d '+1 year' +%F)"
}
# A new cartridge by replugging: smpd keeps reporting the cartridge it
# read at attach after a `cartridge insert` on the control socket.
fresh_cartridge() {
	stop_sim || return 1
	wait_secs 20 sh -c '! smpctl devices 2>&1 | grep -q SIM-X2-000042'
	plug
	wait_secs 30 sh -c 'smpctl devices 2>&1 | grep -q SIM-X2-000042'
}
plug() {
	rm -f "$EV"
	cart=$((cart + 1))
	start_sim --model=2 --serial=SIM-X2-000042 --control=$CTL --event-log=$EV \
		--cartridge="$(cartridge_spec)"
}
# last_state: the device state after its last change (lower case)
last_state() { grep -i 'event=STATE' "$EV" | tail -n1 | sed -n 's/.* to=\([A-Za-z_]*\).*/\1/p' | tr A-Z a-z; }
# count PATTERN: how many device state changes matched so far
count() { grep -ci "$1" "$EV" 2> /dev/null; }
# wait_more SECS PATTERN N: until more than N changes match
wait_more() { wait_secs "$1" sh -c '[ "$(grep -ci "$1" "$2" 2> /dev/null)" -gt "$3" ]' sh "$2" "$EV" "$3"; }

plug
check "no driver took the interface" sh -c '! test -e /dev/smpusb0'
check "the plug started smpd" wait_secs 30 systemctl is-active -q smpd.service
check "smpd attached the machine over libusb" wait_secs 30 sh -c 'runuser -u bob -- smpctl devices 2>&1 | grep SIM-X2-000042 | grep -q "via usb$"'
# The file smpd's package installed (Debian 12 loads it as /lib/..., a
# merged-/usr systemd such as Debian 13's as /usr/lib/...: one file).
frag=$(systemctl show -p FragmentPath --value smpd.service)
pkgunit=$(dpkg -L smpd | grep '/systemd/system/smpd\.service$')
[ -n "$frag" ] && [ -n "$pkgunit" ] && [ "$(readlink -f "$frag")" = "$(readlink -f "$pkgunit")" ]
ok $? "smpd runs from the packaged unit, no drop-in (${frag:-no unit file})"
is "$(systemctl show -p DropInPaths --value smpd.service)" "" "no drop-in weakens the packaged unit"

# Exit 10 alone is not enough: smpd also refuses when polkit cannot answer
# (e.g. it refuses smpd, not being root, unless smpd owns the actions).
as bob claim
rc=$?
! grep -qi 'polkit did not answer\|polkit.*fail' "$SMP_OUT/smpctl-$n.log" && [ "$rc" = 10 ]
ok $? "polkit: a user outside smp may not claim (polkit answered no; exit $rc)"
[ "$rc" = 10 ] && sed 's/^/# /' "$SMP_OUT/smpctl-$n.log" >&2
as alice claim
is $? 0 "polkit: a user in smp may claim"

cat > "$SMP_OUT/session.smp" <<'SMP'
claim
session begin client=C-VM-0001 operator=alice zone=hairline lot=PIG-VM-1 manufacturer=Acme patch-test=-48h
set voltage=8V current=1A rate=120Hz depth=0.8mm
start
wait-state running 10
watch --seconds 1
! set depth=3mm
session zone crown
session note "vm full-system test"
stop
session end
release
SMP
chmod 644 "$SMP_OUT/session.smp"
as alice run - < "$SMP_OUT/session.smp"
ok $? "a scripted treatment session through smpctl runs"
sid=$(grep -Eo '\b[0-9a-f]{32}\b' "$SMP_OUT/smpctl-$n.log" | head -n1)
diag "session id: ${sid:-none}"
check "the machine really ran the needle" grep -qi 'event=STATE from=idle to=running' "$EV"
check "the request outside the limits was refused" grep -q 'refused as expected' "$SMP_OUT/smpctl-$n.log"

check "the session is in the audit log" sh -c "smpctl --json session list | grep -q C-VM-0001"
# smpd created the log at its first start and wrote its key to a file
# for the administrator (51-system-install).
key=$(cat /var/lib/smpd/audit-verification.key 2> /dev/null)
[ -n "$key" ] || diag "no verification key in /var/lib/smpd/audit-verification.key"
check "the audit log verifies with its key" eval 'smpctl log verify --key="$key" >&2'
jl=$(journalctl -b --no-pager -o cat "SMP_SESSION=$sid" 2> /dev/null | wc -l)
diag "journalctl SMP_SESSION=$sid: $jl entries"
[ -n "$sid" ] && [ "$jl" -gt 0 ]
ok $? "the session is in the journal (journalctl SMP_SESSION=...)"

# The healing interval refuses the same client again; only smp-admin may
# override it.
cat > "$SMP_OUT/again.smp" <<'SMP'
claim
session begin client=C-VM-0001 operator=x zone=crown lot=PIG-VM-1 manufacturer=Acme patch-test=-48h override="follow-up approved by the clinic lead"
session end
release
SMP
chmod 644 "$SMP_OUT/again.smp"
fresh_cartridge || diag "could not insert a fresh cartridge"
as alice run - < "$SMP_OUT/again.smp"
is $? 10 "polkit: a user in smp alone may not override the healing interval"
as carol run - < "$SMP_OUT/again.smp"
ok $? "polkit: a user in smp-admin may override it"

# Unplug in the middle of a run: the session ends, smpd stays up.  The
# script keeps the needle running until the device stops it (a fault) or
# goes away; either ends smpctl, no need to sit out a fixed sleep.
cat > "$SMP_OUT/long.smp" <<'SMP'
claim
session begin client=C-VM-0002 operator=alice zone=hairline lot=PIG-VM-1 manufacturer=Acme patch-test=-48h
set voltage=8V current=1A rate=120Hz depth=0.8mm
start
wait-state running 10
echo running
wait-state fault 60
SMP
chmod 644 "$SMP_OUT/long.smp"
fresh_cartridge || diag "could not insert a fresh cartridge"
runs=$(count 'event=STATE from=idle to=running')
( as alice run - < "$SMP_OUT/long.smp" ) &
bg=$!
n=$((n + 1))	# the log the background run writes (its own copy of n)
long_log=$SMP_OUT/smpctl-$n.log
wait_more 30 'event=STATE from=idle to=running' "$runs" || diag "the long run did not start"
stop_sim
ok $? "unplugged mid-run (simulator stopped cleanly)"
check "smpd drops the machine and stays active" wait_secs 20 sh -c \
	'systemctl is-active -q smpd.service && ! smpctl devices 2>&1 | grep -q SIM-X2-000042'
wait "$bg"
sed 's/^/# long run: /' "$long_log" >&2
journalctl -u smpd.service -b --no-pager > "$SMP_OUT/smpd-journal.log" 2>&1

# systemctl stop smpd while the needle runs: the needle stops.
plug
check "smpd picks up a machine plugged in while it runs (udev monitor)" \
	wait_secs 30 sh -c 'smpctl devices 2>&1 | grep -q SIM-X2-000042'
# Another client: C-VM-0002 is inside its healing interval now (H9).
sed 's/C-VM-0002/C-VM-0003/' "$SMP_OUT/long.smp" > "$SMP_OUT/long3.smp"
chmod 644 "$SMP_OUT/long3.smp"
( as alice run - < "$SMP_OUT/long3.smp" ) &
bg=$!
n=$((n + 1))
wait_more 30 'event=STATE from=idle to=running' 0
sleep 1
[ "$(last_state)" = running ]
ok $? "the needle runs again after a replug (and still runs a second later)"
was=$(last_state)
systemctl stop smpd.service
stopped() { [ "$(last_state)" != running ]; }
[ "$was" = running ] && wait_secs 2 stopped
ok $? "systemctl stop smpd stops the running needle within 2 s (before: ${was:-none}, after: $(last_state))"
grep -i 'event=STATE' "$EV" | tail -n 3 | sed 's/^/# /' >&2
wait "$bg"
journalctl -u smpd.service -b --no-pager > "$SMP_OUT/smpd-journal.log" 2>&1
# After every start, session, fault and stop of this boot: nothing in the
# journal (any field, any unit) gives the key away.
check "the verification key is nowhere in the journal" sh -c \
	'[ -n "$1" ] && ! journalctl -b -o export --no-pager | grep -qF -e "$1" -e smpk1-' sh "$key"
stop_sim
trap - EXIT
rm -f /etc/modprobe.d/smp-vm-no-smpusb.conf
