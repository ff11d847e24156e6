#!/bin/bash
# make demo: a complete treatment session on the simulated device, with no
# hardware and no installation: smp-sim on its socket, smpd on a private
# bus with a state directory under the build tree, and smpctl driving a
# scripted session (examples/demo/).  Ends by itself and prints the path of
# the HTML session report.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-build}
case "$B" in /*) ;; *) B="$top/$B" ;; esac
exec "$top/examples/demo/run.sh" "$B"
