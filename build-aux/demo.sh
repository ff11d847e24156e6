#!/bin/bash
# make demo: the simulated device on its socket, read by smp-probe.
# Ends by itself.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-build}
case "$B" in /*) ;; *) B="$top/$B" ;; esac
sim=$B/tools/smp-sim/smp-sim
probe=$B/tools/smp-probe/smp-probe

rt=$(mktemp -d "${TMPDIR:-/tmp}/smp-demo.XXXXXX")
sim_pid=
cleanup() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	rm -rf "$rt"
}
trap cleanup EXIT

echo "== starting the simulated device (smp-sim, socket transport)"
"$sim" --socket="$rt/device.sock" --control="$rt/control.sock" \
	--event-log="$rt/events.log" --duration=30 &
sim_pid=$!
for _ in $(seq 100); do [ -S "$rt/device.sock" ] && break; sleep 0.05; done
[ -S "$rt/device.sock" ] || { echo "demo: smp-sim did not come up" >&2; exit 1; }

echo "== device information (smp-probe info)"
"$probe" --socket "$rt/device.sock" info
echo
echo "== live telemetry for 4 s (smp-probe stream)"
"$probe" --socket "$rt/device.sock" stream --seconds 4 --expect-no-drops
echo
echo "demo: done"
