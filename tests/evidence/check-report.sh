#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The HTML session report renders in headless Chromium: the demo
# session (examples/demo/run.sh: a treatment with a brown-out fault, the
# log verified) writes its report; Chromium takes a 1200x2000 screenshot
# (a real rendering: many colours, not blank), dumps the DOM it built (the
# five SVG plots, the event timeline with start, stop and the brown-out,
# the INTACT verification status; dates as ISO 8601 dates with the UTC
# offset, a marker on every plot where each fault, stop and zone change
# falls; the print style sheet's fixed plot width) and prints it to PDF.
# The report is written in a time zone that is not UTC, so that an offset
# left out or taken from the wrong zone shows.
# Needs Debian's chromium package; without it the test fails.
# usage: check-report.sh SOURCE_ROOT BUILD_ROOT
set -uo pipefail
src=$1 build=$2
fail() { echo "FAIL: $*"; exit 1; }
chromium=$(command -v chromium) || fail "chromium is missing (apt-get install chromium)"
[ -x /usr/bin/python3 ] || fail "/usr/bin/python3 is missing"

# central Europe, POSIX rule: needs no tzdata; +01:00 in winter, +02:00 in summer
export TZ='CET-1CEST,M3.5.0,M10.5.0/3'
work=$(mktemp -d /tmp/smp-report-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The demo writes under BUILD/demo; give it a private "build" of links to
# the real programs so that it never races `make demo` or check-demo.sh.
for x in tools/smp-sim/smp-sim daemon/smpd tools/smpctl/smpctl; do
	[ -x "$build/$x" ] || fail "$build/$x is missing: build first"
	mkdir -p "$work/b/$(dirname "$x")"
	ln -s "$(realpath "$build/$x")" "$work/b/$x"
done
timeout 120 "$src/examples/demo/run.sh" "$work/b" >"$work/demo.out" 2>&1
rc=$?
[ $rc = 0 ] || { tail -n 30 "$work/demo.out"; fail "the demo exited with $rc"; }
report=$(sed -n 's/^report: //p' "$work/demo.out")
[ -s "$report" ] || fail "the demo named no report ('$report')"
echo "report: $report"

# One fresh profile per run; nothing from the network, no GPU, no sandbox
# (we run as root in a container).
chrome() {
	local profile
	profile=$(mktemp -d "$work/profile.XXXXXX")
	timeout 90 "$chromium" --headless --no-sandbox --disable-gpu \
		--disable-background-networking --disable-component-update --disable-sync \
		--no-first-run --user-data-dir="$profile" "$@" "file://$report"
}

chrome --window-size=1200,2000 --screenshot="$work/report.png" >"$work/shot.log" 2>&1 ||
	{ cat "$work/shot.log"; fail "chromium --screenshot failed"; }
[ -s "$work/report.png" ] || { cat "$work/shot.log"; fail "no screenshot"; }
size=$(stat -c %s "$work/report.png")
[ "$size" -gt 20000 ] || fail "the screenshot is only $size bytes"
/usr/bin/python3 "$src/tests/evidence/check-report.py" png "$work/report.png" || exit 1

chrome --dump-dom >"$work/dom.html" 2>"$work/dom.log" ||
	{ cat "$work/dom.log"; fail "chromium --dump-dom failed"; }
/usr/bin/python3 "$src/tests/evidence/check-report.py" dom "$work/dom.html" || exit 1

chrome --no-pdf-header-footer --print-to-pdf="$work/report.pdf" >"$work/pdf.log" 2>&1 ||
	{ cat "$work/pdf.log"; fail "chromium --print-to-pdf failed"; }
/usr/bin/python3 "$src/tests/evidence/check-report.py" pdf "$work/report.pdf" || exit 1
echo "ok: the session report renders, holds its plots, events and verification, and prints"
