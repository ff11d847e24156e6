#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# smp-workstation on the simulated device, with no hardware and no
# installation: smp-sim on its socket, smpd on a private system bus
# (polkit mocked by python-dbusmock: every action allowed), state under
# BUILD/workstation/; the application on the display you run it from.
# Everything stops when the window closes.
# usage: app/run-on-sim.sh [BUILD_DIR]     (make workstation calls it)
#   Inject a fault while the needle runs, from another shell:
#   examples/demo/sim-inject BUILD/workstation/run/control.sock brownout 7500
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
B=${1:-${BUILD:-build}}
case "$B" in /*) ;; *) B="$top/$B" ;; esac
sim=$B/tools/smp-sim/smp-sim
smpd=$B/daemon/smpd
app=$B/app/smp-workstation
for x in "$sim" "$smpd" "$app"; do
	[ -x "$x" ] || { echo "workstation: $x is missing: build first (meson configure $B -Dworkstation=enabled)" >&2; exit 1; }
done
[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || { echo "workstation: no display (DISPLAY, WAYLAND_DISPLAY)" >&2; exit 1; }
command -v dbus-daemon >/dev/null || { echo "workstation: dbus-daemon missing" >&2; exit 1; }
/usr/bin/python3 -c 'import dbusmock' 2>/dev/null ||
	{ echo "workstation: python3-dbusmock missing" >&2; exit 1; }

out=$B/workstation
rt=$out/run
rm -rf "$out"
mkdir -p "$out/conf/limits.d" "$out/bus/system.d" "$rt"
pids=()
cleanup() {
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap cleanup EXIT
wait_for() {    # wait_for SECONDS DESCRIPTION COMMAND...
	local t=$1 what=$2
	shift 2
	for _ in $(seq $((t * 20))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
	echo "workstation: $what did not come up (logs in $out)" >&2
	exit 1
}

cp "$top/daemon/data/smpd.conf" "$out/conf/smpd.conf"
cp "$top/build-aux/private-system-bus.conf" "$out/bus/bus.conf"
cp "$top/daemon/data/org.libsmp.Smp1.conf" "$out/bus/system.d/"

# smp-sim and smpd take real-time priority where allowed, as the device's
# MCU and smpd.service do; the bus and the application stay at normal
# priority, as on a clinic's workstation.
rt_sim=() rt_smpd=()
if chrt -f 20 true 2>/dev/null; then
	rt_sim=(chrt -f 20) rt_smpd=(chrt -f 10)
fi
exec 3< <(dbus-daemon --config-file="$out/bus/bus.conf" --address="unix:dir=$rt" --nofork --print-address=1 2>"$rt/dbus.log")
pids+=($!)
read -r addr <&3
export DBUS_SYSTEM_BUS_ADDRESS=$addr
/usr/bin/python3 -m dbusmock --system --template polkitd \
	> "$rt/polkit.log" 2>&1 < /dev/null &
pids+=($!)
wait_for 10 "the polkit mock" busctl --address="$addr" status org.freedesktop.PolicyKit1
busctl --address="$addr" call org.freedesktop.PolicyKit1 /org/freedesktop/PolicyKit1/Authority \
	org.freedesktop.DBus.Mock SetAllowed as 4 org.libsmp.Smp1.operate \
	org.libsmp.Smp1.configure org.libsmp.Smp1.override org.libsmp.Smp1.audit
"${rt_sim[@]}" "$sim" --socket="$rt/device.sock" --control="$rt/control.sock" \
	--event-log="$out/device-events.log" &
pids+=($!)
wait_for 5 "smp-sim" test -S "$rt/control.sock"
"${rt_smpd[@]}" "$smpd" --bus-address="$addr" --config-dir="$out/conf" --state-dir="$out/state" \
	--audit-key-file="$out/audit-verification.key" --sim-socket="$rt/device.sock" \
	2>"$out/smpd.log" &
pids+=($!)
wait_for 10 "smpd" busctl --address="$addr" status org.libsmp.Smp1
echo "workstation: smpd on $addr; simulator control socket $rt/control.sock"
echo "workstation: audit log $out/state/audit, its verification key $out/audit-verification.key"
SMP_WORKSTATION_SMPCTL=$B/tools/smpctl/smpctl "$app" --bus-address="$addr" \
	--log-dir="$out/state/audit"
