#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Static analysis of the userspace C sources (issue 8 part 5), not kernel/
# (the kernel has checkpatch and sparse):
#   scan-build  clang's static analyzer over the whole meson build
#               ($BUILD_ANALYZE, default build-analyze, fully re-analysed);
#               zero findings: a false positive is fixed in the code (see
#               tests/cmocka-analyzer.h), there is no suppression list;
#   cppcheck    over every file of that build's compile_commands.json, with
#               build-aux/cppcheck-suppressions.txt (a reason per entry);
#               zero findings, and no stale suppression.
# Usage: build-aux/analyze.sh [scan-build] [cppcheck]   (default: both)
# Output: "ok - analyze: TOOL" lines, findings, then "safety-counts: P F".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

DIR=${BUILD_ANALYZE:-build-analyze}
SCAN_BUILD=${SCAN_BUILD:-$(command -v scan-build-14 || command -v scan-build || true)}
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(scan-build cppcheck)
pass=0 fail=0

ok() { echo "ok - analyze: $1"; pass=$((pass + 1)); }
notok() { echo "not ok - analyze: $1"; fail=$((fail + 1)); }

# The analysis build: configured under scan-build so that CC is its
# compiler wrapper (ccc-analyzer), which analyses each file it compiles.
setup() {
	[ -f "$DIR/build.ninja" ] && return 0
	if [ -z "$SCAN_BUILD" ]; then
		echo "scan-build not found (Debian package clang-tools)"
		return 1
	fi
	mkdir -p "$DIR" && "$SCAN_BUILD" -o "$DIR/report" meson setup "$DIR" --buildtype=debug >"$DIR/setup.log" 2>&1 ||
		{ tail -n 30 "$DIR/setup.log"; return 1; }
}

run_scan_build() {
	local log="$DIR/scan-build.log" n
	if [ -z "$SCAN_BUILD" ]; then
		notok "scan-build: not installed (Debian package clang-tools)"
		return
	fi
	# Every file is analysed only when it is compiled: start from clean.
	ninja -C "$DIR" -t clean >/dev/null
	rm -rf "$DIR/report"
	"$SCAN_BUILD" -o "$DIR/report" --status-bugs ninja -C "$DIR" >"$log" 2>&1
	local rc=$?
	if grep -q 'scan-build: No bugs found' "$log" && [ "$rc" -eq 0 ]; then
		ok "scan-build: no findings"
		return
	fi
	n=$(sed -n 's/^scan-build: \([0-9]*\) bugs\? found.*/\1/p' "$log")
	grep -E '^[^ ].*: (warning|error): ' "$log" | sort -u | sed 's/^/    /'
	if [ -n "$n" ]; then
		notok "scan-build: $n finding(s) (report: $DIR/report, log: $log)"
	else
		tail -n 30 "$log" | sed 's/^/    /'
		notok "scan-build: the analysis build failed (log: $log)"
	fi
}

run_cppcheck() {
	local log="$DIR/cppcheck.log"
	if ! command -v cppcheck >/dev/null; then
		notok "cppcheck: not installed (Debian package cppcheck)"
		return
	fi
	if [ ! -f "$DIR/compile_commands.json" ]; then
		notok "cppcheck: no $DIR/compile_commands.json"
		return
	fi
	# information: reports unmatchedSuppression (a stale suppression).
	cppcheck --project="$DIR/compile_commands.json" \
		--enable=warning,style,performance,portability,information \
		--std=c11 --error-exitcode=1 --quiet -j 2 \
		--suppressions-list=build-aux/cppcheck-suppressions.txt \
		--template='{file}:{line}: {severity} {id}: {message}' \
		-i kernel/ >"$log" 2>&1
	local rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s "$log" ]; then
		ok "cppcheck: no findings"
		return
	fi
	sed 's/^/    /' "$log"
	notok "cppcheck: $(grep -c . "$log") finding(s); fix them or answer each in build-aux/cppcheck-suppressions.txt with a reason"
}

if ! setup; then
	echo "not ok - analyze: cannot configure $DIR"
	echo "safety-counts: 0 ${#tools[@]}"
	exit 1
fi
for t in "${tools[@]}"; do
	case $t in
	scan-build) run_scan_build ;;
	cppcheck) run_cppcheck ;;
	*) notok "unknown tool '$t' (scan-build, cppcheck)" ;;
	esac
done
echo "safety-counts: $pass $fail"
[ "$fail" -eq 0 ]
