#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# smp-audit command line: exit codes, reports and exports.
# usage: test-cli.sh SMP_AUDIT AUDIT_GEN CATALOG
set -u
# SMP_TEST_WRAPPER (e.g. valgrind) runs in front of smp-audit when set.
read -r -a AUDIT <<<"${SMP_TEST_WRAPPER:-}"
AUDIT+=("$1")
SMP_AUDIT=$1	# unwrapped, for the terminal test under script(1)
GEN=$2
CATALOG=$3
T=$(mktemp -d "${TMPDIR:-/tmp}/smp-audit-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0

expect() { # expect CODE DESCRIPTION -- command...
	want=$1; what=$2; shift 3
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" != "$want" ]; then
		echo "FAIL: $what: exit $got, expected $want"; cat "$T/out" "$T/err"
		fails=$((fails + 1))
	else
		echo "ok: $what"
	fi
}
contains() { # contains FILE TEXT DESCRIPTION
	if grep -q -- "$2" "$1"; then echo "ok: $3"; else echo "FAIL: $3: '$2' not in output"; cat "$1"; fails=$((fails + 1)); fi
}

KEY=$("$GEN" "$T/log" 1000) || { echo "FAIL: cannot generate a log"; exit 1; }
OTHER=$("$GEN" "$T/other" 10) || exit 1
printf '%s\n' "$KEY" > "$T/key.txt"

expect 0 "verify intact" -- "${AUDIT[@]}" verify "$T/log" --key "$KEY"
contains "$T/out" "INTACT" "intact is reported"
contains "$T/out" "clean shutdown" "clean shutdown is reported"
if ! grep -q "verifying \[" "$T/err"; then echo "ok: no progress bar without a terminal"; else echo "FAIL: progress bar on a pipe"; fails=$((fails + 1)); fi
if command -v script >/dev/null; then
	script -qec "'$SMP_AUDIT' verify '$T/log' --key '$KEY'" /dev/null > "$T/tty" 2>&1
	if grep -q "verifying \[#*\] 100%" "$T/tty" && grep -q INTACT "$T/tty"; then
		echo "ok: progress bar on a terminal"
	else
		echo "FAIL: no progress bar on a terminal"; cat "$T/tty"; fails=$((fails + 1))
	fi
else
	echo "FAIL: script(1) missing: progress bar untested"; fails=$((fails + 1))
fi
expect 0 "verify with --key-file" -- "${AUDIT[@]}" verify "$T/log" --key-file "$T/key.txt"
expect 5 "verify without key is unverifiable" -- "${AUDIT[@]}" verify "$T/log" --no-key
expect 5 "another log's key is unverifiable" -- "${AUDIT[@]}" verify "$T/log" --key "$OTHER"
expect 5 "malformed key is unverifiable" -- "${AUDIT[@]}" verify "$T/log" --key smpk1-1234
expect 5 "empty directory is unverifiable" -- "${AUDIT[@]}" verify "$T" --key "$KEY"
expect 1 "missing directory is an error" -- "${AUDIT[@]}" verify "$T/nope" --key "$KEY"
expect 2 "no command" -- "${AUDIT[@]}"
expect 2 "unknown command" -- "${AUDIT[@]}" frobnicate
expect 2 "verify needs a key option" -- "${AUDIT[@]}" verify "$T/log"
expect 2 "verify with two key options" -- "${AUDIT[@]}" verify "$T/log" --key "$KEY" --no-key
expect 1 "setup refuses an existing log" -- "${AUDIT[@]}" setup "$T/log"
expect 0 "setup" -- "${AUDIT[@]}" setup "$T/new"
contains "$T/out" "^smpk1-" "setup prints the key"
contains "$T/err" "offline" "setup explains the key"
[ "$(stat -c %a "$T/new/audit.key")" = 600 ] && echo "ok: key file mode 0600" || { echo "FAIL: key file mode"; fails=$((fails + 1)); }

# Tampering: one byte in the middle of the first file.
cp -r "$T/log" "$T/tampered"
F=$(ls "$T/tampered"/audit-*.smplog | head -n 1)
# Flip every bit of the byte: writing a fixed 'X' left the file unchanged
# whenever the byte there (hash or key material) already was 'X'.
b=$(od -An -tu1 -j 3000 -N 1 "$F" | tr -d ' ')
printf "\\$(printf %03o $((b ^ 255)))" | dd of="$F" bs=1 seek=3000 conv=notrunc 2>/dev/null
[ "$(od -An -tu1 -j 3000 -N 1 "$F" | tr -d ' ')" = $((b ^ 255)) ] || { echo "FAIL: the tamper changed nothing"; fails=$((fails + 1)); }
expect 3 "tampered" -- "${AUDIT[@]}" verify "$T/tampered" --key "$KEY"
contains "$T/out" "first bad record: file audit-0000000000000000.smplog, offset" "first bad record is located"

# Truncation: the end of the last file.
cp -r "$T/log" "$T/cut"
L=$(ls "$T/cut"/audit-*.smplog | tail -n 1)
truncate -s -100 "$L"
expect 4 "truncated" -- "${AUDIT[@]}" verify "$T/cut" --key "$KEY"

# Machine-readable report, same exit code.
expect 3 "tampered, --json" -- "${AUDIT[@]}" verify "$T/tampered" --key "$KEY" --json
if /usr/bin/python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "TAMPERED" and r["exit_code"] == 3, r
assert r["file"] == "audit-0000000000000000.smplog" and r["offset"] > 0 and r["reason"], r' "$T/out"; then
	echo "ok: --json report names the first bad record"
else
	echo "FAIL: --json report"; cat "$T/out"; fails=$((fails + 1))
fi
expect 0 "intact, --json" -- "${AUDIT[@]}" verify "$T/log" --key "$KEY" --json
contains "$T/out" '"status":"INTACT"' "--json intact status"

# Export.
expect 0 "export json" -- "${AUDIT[@]}" export "$T/log" --format json --session s-0003
[ "$(wc -l < "$T/out")" = 100 ] && echo "ok: session filter" || { echo "FAIL: session filter: $(wc -l < "$T/out") lines"; fails=$((fails + 1)); }
if /usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l); assert r["fields"]["session"] == "s-0003"' "$T/out"; then
	echo "ok: every JSON line parses"
else
	echo "FAIL: JSON lines do not parse"; fails=$((fails + 1))
fi
expect 0 "export csv" -- "${AUDIT[@]}" export "$T/log" --format csv --client c-7f3a
contains "$T/out" "^seq,time,realtime_usec" "csv header"
if /usr/bin/python3 -c 'import csv,sys,json
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert len(rows) == 500, len(rows)
for r in rows:
    assert r["client"] == "c-7f3a"; json.loads(r["fields"])' "$T/out"; then
	echo "ok: csv parses, 500 rows for the client"
else
	echo "FAIL: csv"; fails=$((fails + 1))
fi
expect 0 "export with a date range" -- "${AUDIT[@]}" export "$T/log" --format json --since 2000-01-01 --until 2000-01-02
[ ! -s "$T/out" ] && echo "ok: empty range exports nothing" || { echo "FAIL: date range"; fails=$((fails + 1)); }
expect 2 "bad date" -- "${AUDIT[@]}" export "$T/log" --format json --since yesterday
expect 2 "bad format" -- "${AUDIT[@]}" export "$T/log" --format xml
expect 2 "export needs a format" -- "${AUDIT[@]}" export "$T/log"

# The journal catalog compiles with journalctl and keeps every entry.
mkdir -p "$T/root/usr/lib/systemd/catalog"
cp "$CATALOG" "$T/root/usr/lib/systemd/catalog/"
if journalctl --root="$T/root" --update-catalog 2>"$T/err"; then
	want=$(grep -c '^-- ' "$CATALOG")
	got=$(journalctl --root="$T/root" --list-catalog | grep -c 'SMP audit')
	[ "$want" = "$got" ] && echo "ok: catalog compiles ($got entries)" || { echo "FAIL: catalog: $got of $want entries"; fails=$((fails + 1)); }
else
	echo "FAIL: journalctl --update-catalog failed (or journalctl missing)"; cat "$T/err"; fails=$((fails + 1))
fi

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all smp-audit CLI checks passed"
