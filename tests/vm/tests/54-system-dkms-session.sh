# A treatment session through the driver DKMS built on the installed
# system (51-system-install, users from 52-system-udev): udev loads the
# DKMS-built smpusb for the machine, smpd drives it through /dev/smpusb0
# (chardev backend) under the packaged unit, and the session is in the
# audit log, verifies with the administrator's key, is in the journal, and
# the journal's mirror of the whole log verifies against the log itself
# (smp-audit verify --journal ... --local).  53-system-session runs its
# sessions over libusb with smpusb blacklisted; this is the kernel path of
# the same installation (on Debian 13: its 6.12 kernel, DKMS 3).
# vm-timeout: 600
. "$SMP_SRC/tests/vm/lib.sh"
. "$SMP_SRC/tests/vm/lib-system.sh"
plan 12

need_installed alice bob carol

EV=/run/smp-sim.events
# 53-system-session blacklists smpusb and takes the blacklist away again.
rm -f /etc/modprobe.d/smp-vm-no-smpusb.conf
udevadm control --reload
systemctl stop smpd.service
wait_secs 10 sh -c '! grep -q "^smpusb " /proc/modules || rmmod smpusb'

cleanup() {
	stop_sim
	systemctl stop smpd.service 2> /dev/null
	grep -q '^smpusb ' /proc/modules && rmmod smpusb
}
trap cleanup EXIT

# A cartridge no earlier test used (the registry refuses a used one, H8).
rm -f "$EV"
start_sim --model=2 --serial=SIM-X2-000042 --event-log=$EV \
	--cartridge="id=SIM-CART-0540 lot=CL-VM-1 needle=3RL diameter=250 expiry=$(date -u -d '+1 year' +%F) used=0"

check "udev loads smpusb for the machine" wait_secs 30 grep -q '^smpusb ' /proc/modules
# The module loaded is the one DKMS built and installed: modprobe (which
# udev runs) resolves smpusb to DKMS's file and to no other, and the
# running module's GNU build ID (sysfs notes) is that file's.
ko=$(modinfo -n -k "$SMP_VM_KVER" smpusb 2> /dev/null)
dep=$(modprobe -S "$SMP_VM_KVER" --show-depends smpusb 2> /dev/null | sed -n 's/^insmod \([^ ]*smpusb\.ko[^ ]*\).*/\1/p')
all=$(find "/lib/modules/$SMP_VM_KVER" -name 'smpusb.ko*' 2> /dev/null | wc -l)
case "$ko" in *.xz) xz -dc "$ko" ;; *.zst) zstd -dcq "$ko" ;; *.gz) zcat "$ko" ;; *) cat "$ko" ;; esac \
	> "$SMP_OUT/smpusb.ko" 2> /dev/null
want=$(readelf -n "$SMP_OUT/smpusb.ko" 2> /dev/null | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
have=$(od -An -tx1 -v /sys/module/smpusb/notes/.note.gnu.build-id 2> /dev/null | tr -d ' \n')
diag "smpusb: modinfo $ko, modprobe ${dep:-none}, $all file(s); build ID ${want:-none}; loaded notes ${have:-none}"
case "$ko" in */updates/dkms/smpusb.ko*) [ "$dep" = "$ko" ] && [ "$all" = 1 ] &&
	[ -n "$want" ] && [ "${have%"$want"}" != "$have" ] ;; *) false ;; esac
ok $? "the loaded smpusb is the one DKMS built for $SMP_VM_KVER"
check "smpd attaches the machine through /dev/smpusb0" wait_secs 30 sh -c \
	'smpctl devices 2>&1 | grep SIM-X2-000042 | grep -q "via chardev$"'

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

cat > "$SMP_OUT/session.smp" <<'SMP'
claim
session begin client=C-VM-0540 operator=alice zone=hairline lot=PIG-VM-1 manufacturer=Acme patch-test=-48h
set voltage=8V current=1A rate=120Hz depth=0.8mm
start
wait-state running 10
watch --seconds 1
! set depth=3mm
stop
session end
release
SMP
chmod 644 "$SMP_OUT/session.smp"
as alice run - < "$SMP_OUT/session.smp"
ok $? "a scripted treatment session through smpctl and smpusb runs"
sed 's/^/# /' "$SMP_OUT/smpctl-$n.log" >&2
sid=$(grep -Eo '\b[0-9a-f]{32}\b' "$SMP_OUT/smpctl-$n.log" | head -n1)
diag "session id: ${sid:-none}"
check "the machine really ran the needle" grep -qi 'event=STATE from=idle to=running' "$EV"
check "the request outside the limits was refused" \
	grep -q 'refused as expected' "$SMP_OUT/smpctl-$n.log"
check "the session is in the audit log" sh -c "smpctl --json session list | grep -q C-VM-0540"

key=$(cat /var/lib/smpd/audit-verification.key 2> /dev/null)
[ -n "$key" ] || diag "no verification key in /var/lib/smpd/audit-verification.key"
check "the audit log verifies with its key" eval 'smpctl log verify --key="$key" >&2'
jl=$(journalctl -b --no-pager -o cat "SMP_SESSION=$sid" 2> /dev/null | wc -l)
diag "journalctl SMP_SESSION=$sid: $jl entries"
[ -n "$sid" ] && [ "$jl" -gt 0 ]
ok $? "the session is in the journal (journalctl SMP_SESSION=...)"

# Stop smpd so that the log's tail is sealed and everything is written,
# then check the journal's copy of every record against the log: a
# journal that dropped or altered a record is named (docs/audit-log.md).
stop_sim
systemctl stop smpd.service
journalctl --sync 2> /dev/null
mid=$(cat /etc/machine-id)
jdir=/run/log/journal
[ -d "/var/log/journal/$mid" ] && jdir=/var/log/journal
smp-audit verify --journal "$jdir" --machine "$mid" --local /var/lib/smpd/audit \
	--key "$key" > "$SMP_OUT/verify-journal.txt" 2>&1
rc=$?
sed 's/^/# smp-audit: /' "$SMP_OUT/verify-journal.txt" >&2
is "$rc" 0 "smp-audit verify --journal $jdir --local: the journal's mirror is INTACT"
# smpd's journal is this machine's: it holds every record of the log
# since smpd created it in 51-system-install, up to the last one.
span=$(sed -n 's/^records [0-9]* (seq \([0-9]*\)\.\.\([0-9]*\)).*/\1..\2/p' "$SMP_OUT/verify-journal.txt")
end=$(sed -n "s/^the workstation's log ends at record \([0-9]*\)$/\1/p" "$SMP_OUT/verify-journal.txt")
is "${span:-none}" "0..${end:-?}" "the journal holds every record of the log (0..${end:-?})"
journalctl -u smpd.service -b --no-pager > "$SMP_OUT/smpd-journal.log" 2>&1

check "the verification key is nowhere in the journal" sh -c \
	'[ -n "$1" ] && ! journalctl -b -o export --no-pager | grep -qF -e "$1" -e smpk1-' sh "$key"
trap - EXIT
wait_secs 10 sh -c '! grep -q "^smpusb " /proc/modules || rmmod smpusb'
