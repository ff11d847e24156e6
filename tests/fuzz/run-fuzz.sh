#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-fuzz.sh TARGET SECONDS [BUILD_DIR]
#
# Builds (configuring if needed) and runs the libFuzzer binary fuzz-TARGET
# for SECONDS with tests/fuzz/TARGET.dict, on a temporary copy of
# corpus/TARGET + regress/TARGET (the committed seeds are never modified).
# Any crash, leak, sanitizer report or timeout input is copied into
# regress/TARGET/ (replayed by `meson test --suite fuzz-replay` from then
# on) and the script exits nonzero.
#
# BUILD_DIR defaults to $FUZZ_BUILD_DIR, else build-fuzz in the source tree;
# a new one is configured with
#   CC=clang meson setup BUILD_DIR -Dfuzzing=true \
#       -Db_sanitize=address,undefined -Db_lundef=false
# Set FUZZ_JOBS to run that many fuzzing processes (default 1: the build
# machines are shared).
set -euo pipefail

usage() {
	echo "usage: $0 TARGET SECONDS [BUILD_DIR]" >&2
	exit 2
}

[ $# -ge 2 ] && [ $# -le 3 ] || usage
target=$1
seconds=$2
[[ $target =~ ^[a-z0-9_-]+$ ]] || usage
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || usage

fuzzdir=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$fuzzdir/../.." && pwd)
build=${3:-${FUZZ_BUILD_DIR:-$srcdir/build-fuzz}}
jobs=${FUZZ_JOBS:-1}

corpus=$fuzzdir/corpus/$target
regress=$fuzzdir/regress/$target
dict=$fuzzdir/$target.dict
for d in "$corpus" "$regress"; do
	[ -d "$d" ] || { echo "run-fuzz: $d missing" >&2; exit 1; }
done
[ -f "$dict" ] || { echo "run-fuzz: $dict missing" >&2; exit 1; }

if [ ! -f "$build/build.ninja" ]; then
	CC=${CC:-clang} meson setup "$build" "$srcdir" -Dfuzzing=true \
		-Db_sanitize=address,undefined -Db_lundef=false
fi
if ! meson introspect --buildoptions "$build" | grep -q '"name": "fuzzing", "value": true'; then
	echo "run-fuzz: $build is not configured with -Dfuzzing=true" >&2
	exit 1
fi
ninja -C "$build" "tests/fuzz/fuzz-$target"
bin=$build/tests/fuzz/fuzz-$target

work=$(mktemp -d "${TMPDIR:-/tmp}/run-fuzz-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/artifacts"
cp -- "$corpus"/* "$work/corpus/"
cp -- "$regress"/* "$work/corpus/" 2>/dev/null || true

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

jobargs=()
if [ "$jobs" -gt 1 ]; then
	jobargs=(-jobs="$jobs" -workers="$jobs")
fi
rc=0
# In $work: with -jobs, libFuzzer writes each worker's output to ./fuzz-N.log.
(cd "$work" && "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-dict="$dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
	"${jobargs[@]}" "$work/corpus") > "$work/log" 2>&1 || rc=$?
cat "$work"/fuzz-*.log >> "$work/log" 2>/dev/null || true
# The sanitizer or check report, the reproducer, the final stats.
grep -E '==ERROR|^SUMMARY|check failed|Test unit written|^Done' "$work/log" || true
grep '^stat::' "$work/log" || true

saved=0
for f in "$work"/artifacts/*; do
	[ -f "$f" ] || continue
	dest=$regress/$(basename "$f")
	cp -- "$f" "$dest"
	echo "run-fuzz: saved $dest" >&2
	saved=$((saved + 1))
done

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | awk '{s += $1} END {print s + 0}')
echo "run-fuzz: $target: $execs executions in ${seconds}s, exit status $rc, $saved new regression input(s)"

if [ "$rc" -ne 0 ] || [ "$saved" -ne 0 ]; then
	echo "run-fuzz: FAILED; reproduce with: $bin $regress/<file>" >&2
	exit 1
fi
