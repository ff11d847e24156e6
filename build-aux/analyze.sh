#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Static analysis of the userspace C sources, not kernel/
# (the kernel has checkpatch and sparse):
#   scan-build  clang's static analyzer over the whole meson build
#               ($BUILD_ANALYZE, default build-analyze, fully re-analysed);
#               zero findings, or each answered with a reason in
#               build-aux/scan-build-suppressions.txt (matched by file,
#               checker and source line text; a stale entry fails); a
#               "Potential leak" of a pointer declared with _cleanup_
#               (common/smp-cleanup.h) in the same function is answered
#               by that declaration (clang 14 does not model cleanup);
#   cppcheck    over every file of that build's compile_commands.json, with
#               build-aux/cppcheck-suppressions.txt (a reason per entry);
#               zero findings, and no stale suppression.
# Usage: build-aux/analyze.sh [scan-build] [cppcheck]   (default: both)
# Output: "ok - analyze: TOOL" lines, findings, then "safety-counts: P F".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

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
	mkdir -p "$DIR" || return 1
	if ! "$SCAN_BUILD" -o "$DIR/report" meson setup "$DIR" --buildtype=debug >"$DIR/setup.log" 2>&1; then
		tail -n 30 "$DIR/setup.log"
		return 1
	fi
}

run_scan_build() {
	local log="$DIR/scan-build.log"
	if [ -z "$SCAN_BUILD" ]; then
		notok "scan-build: not installed (Debian package clang-tools)"
		return
	fi
	# Every file is analysed only when it is compiled: start from clean.
	ninja -C "$DIR" -t clean >/dev/null
	rm -rf "$DIR/report"
	"$SCAN_BUILD" -o "$DIR/report" --status-bugs ninja -C "$DIR" >"$log" 2>&1
	local rc=$?
	if grep -q 'scan-build: No bugs found' "$log" && [ "$rc" -eq 0 ] &&
			! grep -v '^#' build-aux/scan-build-suppressions.txt | grep -q .; then
		ok "scan-build: no findings"
		return
	fi
	if ! grep -Eq 'scan-build: ([0-9]+ bugs? found|No bugs found)' "$log"; then
		tail -n 30 "$log" | sed 's/^/    /'
		notok "scan-build: the analysis build failed (log: $log)"
		return
	fi
	# Findings: each must be answered in the suppressions file.
	if /usr/bin/python3 - "$log" build-aux/scan-build-suppressions.txt "$DIR" <<'PY'
import os, re, sys
log, supp, build = sys.argv[1:4]
entries = []
for ln in open(supp, encoding="utf-8"):
    ln = ln.rstrip("\n")
    if not ln.strip() or ln.startswith("#"):
        continue
    parts = ln.split("\t")
    if len(parts) != 3:
        print(f"    {supp}: bad entry (FILE<TAB>CHECKER<TAB>LINE): {ln}")
        sys.exit(1)
    entries.append([parts[0], parts[1], parts[2].strip(), 0])
# clang 14's analyzer does not model __attribute__((cleanup)): it reports
# a leak of every pointer that common/smp-cleanup.h's _cleanup_* frees at
# scope exit.  Such a report is answered when the pointer it names is
# declared with _cleanup_ in the same function (from the reported line
# back to the function's opening brace); any other leak still counts.
# So is a "never read" store of NULL or -1 into such a variable: that is
# how ownership leaves it (the cleanup reads it at scope exit).
def cleanup_owned(rel, line, msg, checker):
    m = re.match(r"Potential leak of memory pointed to by '(\w+)(\.\w+)*'", msg)
    d = re.match(r"Value stored to '(\w+)' is never read", msg)
    if not ((checker == "unix.Malloc" and m) or (checker == "deadcode.DeadStores" and d)):
        return False
    name = (m or d).group(1)
    try:
        src = open(rel, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        return False
    if d and not re.match(r"\s*" + re.escape(name) + r"\s*=\s*(NULL|-1)\s*;", src[line - 1]):
        return False
    decl = re.compile(r"\b_cleanup_\w*(\([^)]*\))?\s+[^;]*[\s*,]" + re.escape(name) + r"\s*(=|,|;|\[)")
    for i in range(min(line, len(src)) - 1, -1, -1):
        if decl.search(src[i]):
            return True
        if src[i].startswith("{"):
            return False
    return False

bad = 0
seen = set()
for m in re.finditer(r"^(\S+?):(\d+):\d+: warning: (.*) \[([\w.]+)\]$", open(log, encoding="utf-8", errors="replace").read(), re.M):
    path, line, msg, checker = m.group(1), int(m.group(2)), m.group(3), m.group(4)
    rel = os.path.relpath(os.path.normpath(os.path.join(build, path)))
    if (rel, line, checker) in seen:
        continue
    seen.add((rel, line, checker))
    try:
        text = open(rel, encoding="utf-8", errors="replace").read().splitlines()[line - 1].strip()
    except (OSError, IndexError):
        text = ""
    hit = [e for e in entries if e[0] == rel and e[1] == checker and e[2] == text]
    if not hit and cleanup_owned(rel, line, msg, checker):
        print(f"    answered (scope cleanup): {rel}:{line}: {msg} [{checker}]")
        continue
    if hit:
        hit[0][3] += 1
        print(f"    answered: {rel}:{line}: {msg} [{checker}]")
    else:
        print(f"    {rel}:{line}: warning: {msg} [{checker}]")
        bad += 1
for e in entries:
    if not e[3]:
        print(f"    stale suppression (matches no finding): {e[0]} {e[1]} {e[2]}")
        bad += 1
sys.exit(1 if bad else 0)
PY
	then
		ok "scan-build: every finding answered in build-aux/scan-build-suppressions.txt"
	else
		notok "scan-build: unanswered finding(s) (report: $DIR/report, log: $log)"
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
