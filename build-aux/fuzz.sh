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
# The audit-log reader/verifier keeps its seeds next to its tests.
echo "== fuzz audit for ${secs}s"
if [ ! -f "$B/build.ninja" ]; then
	CC=clang meson setup "$B" -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C "$B" tests/audit/fuzz-audit
work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-audit.XXXXXX")
cp tests/audit/corpus/* "$work/"
mkdir "$work/artifacts"
if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$B/tests/audit/fuzz-audit" \
		-max_len=8192 -max_total_time="$secs" -artifact_prefix="$work/artifacts/" \
		-print_final_stats=1 "$work" 2>&1 | tail -n 20; then
	mkdir -p tests/audit/regress
	cp "$work"/artifacts/* tests/audit/regress/ 2>/dev/null || true
	echo "fuzz audit: FAILED (inputs saved under tests/audit/regress)"
	rc=1
fi
rm -rf "$work"
exit $rc
