#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A complete treatment session with no hardware and no installation:
# smp-sim on its socket, smpd on a private bus (polkit mocked by
# python-dbusmock) with its state under the build tree, and smpctl driving
# treatment.smp with live gauges; then the log is verified and the HTML
# session report written.  Ends by itself in well under a minute.
# usage: examples/demo/run.sh [BUILD_DIR]       (make demo calls it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
B=${1:-${BUILD:-build}}
case "$B" in /*) ;; *) B="$top/$B" ;; esac
sim=$B/tools/smp-sim/smp-sim
smpd=$B/daemon/smpd
smpctl=$B/tools/smpctl/smpctl
# the valgrind suite of make check runs smpctl under valgrind
read -ra wrap <<< "${SMP_TEST_WRAPPER-}"
for x in "$sim" "$smpd" "$smpctl"; do
	[ -x "$x" ] || { echo "demo: $x is missing: build first" >&2; exit 1; }
done
command -v dbus-daemon >/dev/null || { echo "demo: dbus-daemon missing" >&2; exit 1; }
/usr/bin/python3 -c 'import dbusmock' 2>/dev/null ||
	{ echo "demo: python3-dbusmock missing" >&2; exit 1; }

out=$B/demo
rm -rf "$out"
mkdir -p "$out/conf/limits.d" "$out/bus/system.d"
rt=$out/run
mkdir -p "$rt"
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
	echo "demo: $what did not come up" >&2
	exit 1
}

# the site policy: shipped defaults and a drop-in that tightens the hairline
cp "$top/daemon/data/smpd.conf" "$out/conf/smpd.conf"
cat > "$out/conf/limits.d/10-site.conf" <<'CONF'
# this clinic: shallower on the hairline than the shipped default
[Zone hairline]
MaxDepthUm=900
CONF

cp "$top/build-aux/private-system-bus.conf" "$out/bus/bus.conf"
cp "$top/daemon/data/org.libsmp.Smp1.conf" "$out/bus/system.d/"

# The simulated firmware keeps real time like a device's MCU, and smpd's
# lease renewal is a real-time duty (smpd.service: CPUSchedulingPolicy=fifo);
# take real-time priority where allowed so a loaded machine does not trip
# the safety monitors.  So do smpctl, the claimant, and the bus between
# them: smpd stops a needle whose claimant sends no Heartbeat for
# ClientTimeoutMs (H6), and on a busy machine a normal process can wait
# longer than that for a CPU.
rt_sim=() rt_smpd=() rt_client=()
if chrt -f 20 true 2>/dev/null; then
	rt_sim=(chrt -f 20) rt_smpd=(chrt -f 10) rt_client=(chrt -f 5)
fi

echo "== private system bus, polkit (mocked: every action allowed), simulator, smpd"
exec 3< <("${rt_client[@]}" dbus-daemon --config-file="$out/bus/bus.conf" --address="unix:dir=$rt" --nofork --print-address=1 2>"$rt/dbus.log")
pids+=($!)
read -r addr <&3
export DBUS_SYSTEM_BUS_ADDRESS=$addr
"${rt_client[@]}" /usr/bin/python3 -m dbusmock --system --template polkitd >"$rt/polkit.log" 2>&1 &
pids+=($!)
wait_for 10 "the polkit mock" busctl --address="$addr" status org.freedesktop.PolicyKit1
busctl --address="$addr" call org.freedesktop.PolicyKit1 /org/freedesktop/PolicyKit1/Authority \
	org.freedesktop.DBus.Mock SetAllowed as 4 org.libsmp.Smp1.operate \
	org.libsmp.Smp1.configure org.libsmp.Smp1.override org.libsmp.Smp1.audit

"${rt_sim[@]}" "$sim" --socket="$rt/device.sock" --control="$rt/control.sock" \
	--event-log="$out/device-events.log" --duration=120 &
pids+=($!)
wait_for 5 "smp-sim" test -S "$rt/control.sock"

"${rt_smpd[@]}" "$smpd" --bus-address="$addr" --config-dir="$out/conf" --state-dir="$out/state" \
	--audit-key-file="$out/audit-verification.key" --sim-socket="$rt/device.sock" \
	2>"$out/smpd.log" &
smpd_pid=$!
pids+=($smpd_pid)
wait_for 10 "smpd" busctl --address="$addr" status org.libsmp.Smp1
wait_for 10 "the device" sh -c "'$smpctl' --bus-address='$addr' devices | grep -q SIM-"
echo

export SMP_DEMO_INJECT="$here/sim-inject $rt/control.sock"
"${rt_client[@]}" "${wrap[@]}" "$smpctl" --bus-address="$addr" run "$here/treatment.smp"
echo

sid=$("$smpctl" --bus-address="$addr" --log-dir="$out/state/audit" --json session list |
	/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)[-1]["id"])')
echo "== smpd stops; its audit log is sealed on the way out"
kill -TERM "$smpd_pid"
wait "$smpd_pid" || true
echo
echo "== the session from the audit log"
"${wrap[@]}" "$smpctl" --log-dir="$out/state/audit" session show "$sid"
echo
echo "== verify the log with the verification key (kept offline in a clinic)"
"${wrap[@]}" "$smpctl" --log-dir="$out/state/audit" log verify --key-file="$out/audit-verification.key"
echo
echo "== the session report"
report=$("${wrap[@]}" "$smpctl" --log-dir="$out/state/audit" session report "$sid" \
	--key-file="$out/audit-verification.key" --output="$out/session-$sid.html")
echo "report: $report"
