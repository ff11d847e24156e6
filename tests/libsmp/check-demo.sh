#!/bin/bash
# make demo works: the scripted session runs to its end, the refused request
# and the brown-out are shown with their reasons, the log verifies, and the
# report it names exists and holds the session.
# usage: check-demo.sh SOURCE_ROOT BUILD_ROOT
set -uo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
timeout 120 "$1/examples/demo/run.sh" "$2" >"$out" 2>&1
rc=$?
cat "$out"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc = 0 ] || fail "the demo exited with $rc"
grep -Eq 'set: depth 1\.10 mm exceeds the hairline limit 0\.90 mm set in .*/limits\.d/10-site\.conf:[0-9]+' "$out" ||
	fail "no refusal sentence"
grep -q '(refused as expected)' "$out" || fail "the refusal was not expected"
grep -q 'fault on SIM-X2-000001: brownout' "$out" || fail "no brown-out fault"
grep -q '^state fault' "$out" || fail "the needle did not stop on the brown-out"
grep -q '^intact: .*closed cleanly' "$out" || fail "the log did not verify"
report=$(sed -n 's/^report: //p' "$out")
[ -s "$report" ] || fail "no report at '$report'"
grep -q 'CLIENT-7F3A' "$report" && grep -q 'class="ok">INTACT' "$report" &&
	grep -q 'brownout' "$report" || fail "the report lacks the session"
echo "ok: demo ran, report $report"
