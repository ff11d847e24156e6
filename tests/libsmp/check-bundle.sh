#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# smpctl log bundle (issue 15, item 6): on a log of four sessions on four
# dates of 2026 (test-libsmp-log --generate), the bundle of a date range
# holds exactly the copy of the log, the sessions of the range as CSV (the
# same as `smp-audit sessions` of the copy), one report per session, the
# verification result with the key's fingerprint (the one of the file
# headers and of the README's recipe) and a README; the copy verifies
# again with smp-audit.  It refuses, by name and leaving nothing behind, a
# tampered, truncated or unverifiable log, a malformed key, a bad date
# range and a directory that is not empty.
# usage: check-bundle.sh SMPCTL TEST_LIBSMP_LOG SMP_AUDIT
set -uo pipefail
smpctl=$1 gen=$2 audit=$3
read -ra wrap <<< "${SMP_TEST_WRAPPER-}"
fail() { echo "FAIL: $*"; exit 1; }
for x in "$smpctl" "$gen" "$audit"; do [ -x "$x" ] || fail "$x is missing: build first"; done
command -v xxd >/dev/null || fail "xxd is missing (apt-get install xxd)"
work=$(mktemp -d /tmp/smp-bundle-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
key=$("$gen" --generate "$work/log") || fail "cannot generate the log"
"$gen" --generate "$work/other" > "$work/other.key" || fail "cannot generate the second log"
printf '%s\n' "$key" > "$work/key"

# run EXPECTED_RC ARGS...: smpctl on the log, stdout in $work/out.txt, stderr in $work/err.txt
run() {
	local want=$1 rc
	shift
	"${wrap[@]}" "$smpctl" "$@" >"$work/out.txt" 2>"$work/err.txt"
	rc=$?
	[ "$rc" = "$want" ] || { cat "$work/err.txt"; fail "smpctl $* exited $rc, not $want"; }
}
nothing_left() {        # nothing_left DIR: no DIR, no DIR.partial-*
	[ ! -e "$1" ] || fail "$1 was created by a refused bundle"
	compgen -G "$1.partial-*" >/dev/null && fail "a refused bundle left $(compgen -G "$1.partial-*")"
	return 0
}

# ---- a bundle of Feb 1 .. Mar 31 (the --to day included): sessions 2 and 3
b=$work/bundle
run 0 --log-dir="$work/log" log bundle --from=2026-02-01 --to=2026-03-31 --key-file="$work/key" "$b"
[ "$(cat "$work/out.txt")" = "$(realpath "$b")" ] || fail "printed $(cat "$work/out.txt"), not the bundle's path"
s2=22222222222222222222222222222222 s3=33333333333333333333333333333333
want="README.txt
log
$(cd "$work/log" && ls audit-*.smplog | sed 's|^|log/|')
reports
reports/session-$s2.html
reports/session-$s3.html
sessions.csv
verification.txt"
got=$(cd "$b" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort)
[ "$got" = "$(LC_ALL=C sort <<< "$want")" ] || fail "the bundle holds
$got
not
$want"
[ -e "$b/log/audit.key" ] && fail "the sealing key left the workstation"
for f in "$work"/log/audit-*.smplog; do
	cmp -s "$f" "$b/log/$(basename "$f")" || fail "log/$(basename "$f") is not a copy of the log's file"
done
echo "ok: the bundle holds the log's files, sessions.csv, 2 reports, verification.txt, README.txt"

# the sessions: exactly those begun in the range, as smp-audit reads the copy
[ "$(sed -n '2,$p' "$b/sessions.csv" | cut -c1-32 | tr '\n' ' ')" = "$s2 $s3 " ] ||
	fail "sessions.csv: $(cat "$b/sessions.csv")"
head -1 "$b/sessions.csv" | grep -q '^session,state,begin,end,client,' || fail "sessions.csv has no header line"
# the README's own command
cmd=$(grep -o 'smp-audit sessions log --format csv --since @[0-9]* --until @[0-9]*' "$b/README.txt") ||
	fail "the README has no smp-audit sessions command"
[ "$cmd" = "smp-audit sessions log --format csv --since @1769904000 --until @1775001600" ] ||
	fail "the README's range is $cmd"
"$audit" sessions "$b/log" --format csv --since @1769904000 --until @1775001600 > "$work/re.csv" ||
	fail "smp-audit sessions of the copy failed"
cmp -s "$work/re.csv" "$b/sessions.csv" || { diff "$work/re.csv" "$b/sessions.csv"; fail "sessions.csv is not what smp-audit reads"; }
echo "ok: sessions.csv == smp-audit sessions of the copy"

# the verification result and the fingerprint, three ways: the header,
# the README's recipe, verification.txt
grep -qx 'status: intact' "$b/verification.txt" || fail "verification.txt: $(cat "$b/verification.txt")"
fp_file=$(sed -n 's/^key fingerprint: //p' "$b/verification.txt")
fp_hdr=$(xxd -s 32 -l 8 -p "$b/log/audit-0000000000000000.smplog")
fp_key=$( { printf 'smp-audit-fingerprint-v1'; echo "$key" | sed 's/^smpk1-//; s/-//g' | cut -c1-64 | xxd -r -p; } |
	sha256sum | cut -c1-16)
[[ $fp_file =~ ^[0-9a-f]{16}$ ]] || fail "verification.txt has no 16-hex-digit fingerprint: '$fp_file'"
[ "$fp_file" = "$fp_hdr" ] && [ "$fp_file" = "$fp_key" ] ||
	fail "fingerprints differ: verification.txt $fp_file, header $fp_hdr, SHA-256 recipe $fp_key"
other_fp=$( { printf 'smp-audit-fingerprint-v1'; sed 's/^smpk1-//; s/-//g' "$work/other.key" | cut -c1-64 | xxd -r -p; } |
	sha256sum | cut -c1-16)
[ "$other_fp" != "$fp_file" ] || fail "two keys have one fingerprint"
grep -q "$fp_file" "$b/README.txt" || fail "the README does not quote the fingerprint"
grep -q 'smp-audit verify log --key' "$b/README.txt" && grep -q 'docs/audit-log.md' "$b/README.txt" ||
	fail "the README does not say how to verify again"
"$audit" verify "$b/log" --key "$key" --quiet || fail "smp-audit verify of the bundle's copy exited $?"
echo "ok: intact, fingerprint $fp_file (header == recipe == verification.txt), the copy verifies again"

# the reports: one per session, verified, dates as dates
for s in $s2 $s3; do
	r=$b/reports/session-$s.html
	grep -q "<h1>Treatment session $s</h1>" "$r" || fail "$r is not the report of $s"
	grep -q 'class="ok">INTACT' "$r" || fail "$r does not say the log is intact"
	grep -q 'Unix time' "$r" && fail "$r shows a Unix time"
	grep -q 'zone_change' "$r" && grep -q 'brownout' "$r" || fail "$r lacks the session's events"
done
echo "ok: a verified report per session"

# an empty directory is taken; a range without sessions gives an empty list
mkdir "$work/empty"
run 0 --log-dir="$work/log" log bundle --from=2025-01-01 --to=2025-12-31 --key="$key" "$work/empty"
[ "$(wc -l < "$work/empty/sessions.csv")" = 1 ] && [ -z "$(ls "$work/empty/reports")" ] ||
	fail "a range without sessions: $(cat "$work/empty/sessions.csv")"
grep -qx 'sessions: 0' "$work/empty/verification.txt" || fail "verification.txt does not say 0 sessions"
echo "ok: an empty directory, a range without sessions"

# the recall of the same log (its verification runs in a thread of its
# own: under valgrind, that thread must leave nothing behind)
run 0 --log-dir="$work/log" log recall --pigment-lot=LOT-A --key-file="$work/key" --format=csv
[ "$(sed -n '2,$p' "$work/out.txt" | tr -d '\r' | awk -F, '{print $2 "," $NF}' | tr '\n' ' ')" = \
  "client-1,11111111111111111111111111111111 client-3,$s3 " ] || fail "recall LOT-A: $(cat "$work/out.txt")"
echo "ok: recall of LOT-A from the same log"

# ---- refusals, each by name, nothing left behind
run 1 --log-dir="$work/log" log bundle --from=2026-01-01 --to=2026-12-31 --key="$key" "$b"
grep -q 'refused: .* is not empty' "$work/err.txt" || fail "non-empty directory: $(cat "$work/err.txt")"
[ -z "$(sed -n '4,$p' "$b/sessions.csv")" ] || fail "the refused bundle wrote into $b"
compgen -G "$b.partial-*" >/dev/null && fail "a refused bundle left a partial directory"
touch "$work/afile"
run 1 --log-dir="$work/log" log bundle --from=2026-01-01 --to=2026-12-31 --key="$key" "$work/afile"
grep -q 'is not a directory' "$work/err.txt" || fail "a file as OUTDIR: $(cat "$work/err.txt")"
echo "ok: refuses a non-empty directory and a file"

for range in "--from=2026-02-30x --to=2026-03-01" "--from=2026-03-01 --to=yesterday" \
	     "--from=2026-04-01 --to=2026-03-01" "--from=2026-04-01T10:00:00Z --to=2026-04-01T10:00:00Z"; do
	# shellcheck disable=SC2086
	run 2 --log-dir="$work/log" log bundle $range --key="$key" "$work/nob"
	grep -q 'bad date range' "$work/err.txt" || fail "$range: $(cat "$work/err.txt")"
	nothing_left "$work/nob"
done
run 2 --log-dir="$work/log" log bundle --from=2026-01-01 --key="$key" "$work/nob"
grep -q usage "$work/err.txt" || fail "no --to: $(cat "$work/err.txt")"
run 2 --log-dir="$work/log" log bundle --from=2026-01-01 --to=2026-02-01 "$work/nob"
nothing_left "$work/nob"
echo "ok: refuses bad date ranges and a missing key (usage, exit 2)"

run 5 --log-dir="$work/log" log bundle --from=2026-01-01 --to=2026-12-31 --key=smpk1-garbage "$work/nob"
grep -q 'malformed' "$work/err.txt" || fail "malformed key: $(cat "$work/err.txt")"
nothing_left "$work/nob"
run 5 --log-dir="$work/log" log bundle --from=2026-01-01 --to=2026-12-31 --key-file="$work/other.key" "$work/nob"
grep -q 'does not verify (unverifiable)' "$work/err.txt" || fail "another log's key: $(cat "$work/err.txt")"
nothing_left "$work/nob"
cp -r "$work/log" "$work/tampered"
f=$(ls "$work"/tampered/audit-*.smplog | sed -n 2p)
off=$(grep -boa 'client-2' "$f" | head -1 | cut -d: -f1)
[ -n "$off" ] || fail "no client-2 record in $f"
printf 'X' | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
run 3 --log-dir="$work/tampered" log bundle --from=2026-01-01 --to=2026-12-31 --key="$key" "$work/nob"
grep -q 'refused: the audit log in .* does not verify (tampered)' "$work/err.txt" ||
	fail "tampered log: $(cat "$work/err.txt")"
nothing_left "$work/nob"
cp -r "$work/log" "$work/truncated"
f=$(ls "$work"/truncated/audit-*.smplog | tail -1)
truncate -s -10 "$f"
run 4 --log-dir="$work/truncated" log bundle --from=2026-01-01 --to=2026-12-31 --key="$key" "$work/nob"
grep -q 'does not verify (truncated)' "$work/err.txt" || fail "truncated log: $(cat "$work/err.txt")"
nothing_left "$work/nob"
run 5 --log-dir="$work/nolog" log bundle --from=2026-01-01 --to=2026-12-31 --key="$key" "$work/nob"
grep -q 'refused: there is no audit log in' "$work/err.txt" || fail "no log: $(cat "$work/err.txt")"
nothing_left "$work/nob"
echo "ok: refuses a malformed key, another log's key, a tampered, a truncated and a missing log"
