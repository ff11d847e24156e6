#!/bin/bash
# Run every libFuzzer target for N seconds (default 60) with clang, ASan and
# UBSan.  Crashes land in the target's regression directory, which
# `make check` replays from then on, and make this script fail.
# Usage: build-aux/fuzz.sh [SECONDS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
secs=${1:-60}
B=${BUILD_FUZZ:-build-fuzz}
case "$B" in /*) ;; *) B="$top/$B" ;; esac

# Targets with tests/fuzz/{corpus,regress}/NAME and tests/fuzz/NAME.dict.
TARGETS=(frame)

rc=0
for t in "${TARGETS[@]}"; do
	echo "== fuzz $t for ${secs}s"
	if ! tests/fuzz/run-fuzz.sh "$t" "$secs" "$B"; then
		echo "fuzz $t: FAILED (inputs saved under tests/fuzz/regress/$t)"
		rc=1
	fi
done
exit $rc
