#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Mutation checks (docs/safety.md): for every [[mutation]] in
# docs/safety/hazards.toml, build the mutant (-Dmutation=NAME compiles in the
# SMP_MUTATION_<NAME> hook that disables one safety control) and run the
# tests that claim to prove the control.  A mutation passes only if every one
# of them FAILS (the mutant is killed); a survivor means the test does not
# prove what the table says.
#
# Usage: build-aux/safety-mutations.sh [--kind unit|timed] [NAME...]
#   (default: all).  --kind unit: only the mutants whose every claimed test
#   is in meson suite 'unit' (pure, no clock, no process of its own: make
#   check runs them in the background at idle priority, with a longer
#   timeout so that waiting for the CPU cannot pass for a kill); --kind
#   timed: the others (smpd, the simulator's socket, the link).
# One build dir ($BUILD_MUTATION, default build-mutation) is reconfigured per
# mutant and only the targets the tests need are rebuilt.  First a baseline
# (mutation=none) must pass every listed test, so that a test failing for
# another reason cannot pass for a kill.
# Output: TAP-like "ok - mutation NAME" lines, then "safety-counts: P F".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

MBUILD=${BUILD_MUTATION:-build-mutation}
PY=/usr/bin/python3
trace=(build-aux/safety-trace.py)
# A hung mutant counts as killed only in its claimed case; do not wait the
# full 120 s meson timeouts for it.
TIMEOUT_MULT=${MUTATION_TIMEOUT_MULTIPLIER:-0.5}
pass=0 fail=0
kind=all
if [ "${1:-}" = --kind ]; then
	kind=${2:-}
	shift 2
	case "$kind" in
	unit | timed) ;;
	*)
		echo "not ok - mutations: --kind must be unit or timed" >&2
		echo "safety-counts: 0 1"
		exit 2
		;;
	esac
fi

rows=()
if ! out=$($PY "${trace[@]}" mutations); then
	echo "not ok - mutations: cannot read the table"
	echo "safety-counts: 0 1"
	exit 1
fi
while IFS= read -r line; do
	[ -n "$line" ] && rows+=("$line")
done <<<"$out"

if [ $# -gt 0 ]; then
	sel=()
	for want in "$@"; do
		found=0
		for r in "${rows[@]}"; do
			if [ "${r%%$'\t'*}" = "$want" ]; then
				sel+=("$r")
				found=1
			fi
		done
		if [ "$found" -eq 0 ]; then
			echo "not ok - mutation $want: not in docs/safety/hazards.toml"
			fail=$((fail + 1))
		fi
	done
	rows=("${sel[@]}")
fi
if [ ${#rows[@]} -eq 0 ]; then
	echo "not ok - mutations: none to run"
	echo "safety-counts: $pass $((fail + 1))"
	exit 1
fi

# only_kind: keep the rows whose claimed tests are all in suite 'unit'
# (kind unit) or not all (kind timed), per the mutation build's own
# introspection.
only_kind() {
	local r intro keep=()
	configure none || return 1
	intro=$(meson introspect --tests "$MBUILD") || return 1
	for r in "${rows[@]}"; do
		IFS=$'\t' read -r _name _control tests <<<"$r"
		# shellcheck disable=SC2086
		if $PY -c '
import json, sys
tests = json.loads(sys.stdin.read())
for spec in sys.argv[1:]:
    suite, name = spec.split("/", 1)
    t = [t for t in tests if t["name"] == name and
         any(s == suite or s.endswith(":" + suite) for s in t["suite"])]
    if not t or not any(s == "unit" or s.endswith(":unit") for s in t[0]["suite"]):
        sys.exit(1)
' $tests <<<"$intro"; then
			[ "$kind" = unit ] && keep+=("$r")
		else
			[ "$kind" = timed ] && keep+=("$r")
		fi
	done
	rows=("${keep[@]}")
}

# configure NAME: point the one build dir at mutation NAME.
configure() {
	if [ ! -f "$MBUILD/build.ninja" ]; then
		# No optimisation, no debug info: mutants only need to build fast.
		mkdir -p "$MBUILD" || return 1
		if ! meson setup "$MBUILD" --buildtype=plain -Dmutation="$1" >"$MBUILD/setup.log" 2>&1; then
			cat "$MBUILD/setup.log"
			return 1
		fi
	else
		meson configure "$MBUILD" -Dmutation="$1" >/dev/null || return 1
	fi
	# Regenerate now if any meson.build changed, so that the introspection
	# data (the tests and their targets) is current.
	ninja -C "$MBUILD" build.ninja >/dev/null || return 1
}

# build_and_test LOGBASE MUTATION... -- TESTSPEC...: build only what the
# tests need, run them; pytest-driven tests run only the cases the named
# mutations claim (a -k filter through $PYTEST_ADDOPTS).
build_and_test() {
	local logbase=$1 muts=() kexpr
	shift
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		muts+=("$1")
		shift
	done
	shift
	local targets names=() spec
	kexpr=$($PY "${trace[@]}" pytest-k "$MBUILD" "${muts[@]}") || return 2
	targets=$($PY "${trace[@]}" targets "$MBUILD" "$@") || return 2
	# shellcheck disable=SC2086 # one target per line
	ninja -C "$MBUILD" $targets >"$MBUILD/$logbase.build.log" 2>&1 || {
		tail -n 30 "$MBUILD/$logbase.build.log" | sed 's/^/    /'
		return 2
	}
	for spec in "$@"; do
		names+=("${spec#*/}")
	done
	PYTEST_ADDOPTS=${kexpr:+-k \'$kexpr\'} \
	meson test -C "$MBUILD" --no-rebuild --num-processes 2 --logbase "$logbase" \
		--timeout-multiplier "$TIMEOUT_MULT" "${names[@]}" >"$MBUILD/$logbase.test.log" 2>&1
	return 0
}

# The mutant really carries its define (the hooks include smp-mutation.h).
has_define() {
	grep -q "^#define SMP_MUTATION_${1^^} " "$MBUILD/smp-mutation.h"
}

if [ "$kind" != all ]; then
	if ! only_kind; then
		echo "not ok - mutations: cannot tell unit from timed mutants"
		echo "safety-counts: 0 1"
		exit 1
	fi
	if [ ${#rows[@]} -eq 0 ]; then
		echo "not ok - mutations: no $kind mutant"
		echo "safety-counts: 0 1"
		exit 1
	fi
	echo "-- mutations: the ${#rows[@]} $kind mutants"
fi

# Baseline: every test of the selected mutations passes unmutated.
all_tests=() names=()
for r in "${rows[@]}"; do
	IFS=$'\t' read -r _name _control tests <<<"$r"
	names+=("$_name")
	for t in $tests; do
		case " ${all_tests[*]} " in *" $t "*) ;; *) all_tests+=("$t") ;; esac
	done
done
echo "-- mutations: baseline (mutation=none): ${all_tests[*]}"
if configure none && build_and_test mutant-none "${names[@]}" -- "${all_tests[@]}" &&
		$PY "${trace[@]}" baseline "$MBUILD/meson-logs/mutant-none.json" "${names[@]}"; then
	echo "ok - mutations: baseline, every listed test passes without a mutation"
	pass=$((pass + 1))
else
	echo "not ok - mutations: baseline failed; no kill would mean anything"
	echo "safety-counts: $pass $((fail + 1))"
	exit 1
fi

for r in "${rows[@]}"; do
	IFS=$'\t' read -r name control tests <<<"$r"
	# shellcheck disable=SC2086
	set -- $tests
	if ! configure "$name"; then
		echo "not ok - mutation $name ($control): meson configure failed"
		fail=$((fail + 1))
		continue
	fi
	if ! build_and_test "mutant-$name" "$name" -- "$@"; then
		echo "not ok - mutation $name ($control): the mutant does not build"
		fail=$((fail + 1))
		continue
	fi
	if ! has_define "$name"; then
		echo "not ok - mutation $name ($control): -DSMP_MUTATION_${name^^} not in the build"
		fail=$((fail + 1))
		continue
	fi
	if verdict=$($PY "${trace[@]}" verdict "$name" "$MBUILD/meson-logs/mutant-$name.json"); then
		echo "ok - mutation $name ($control) killed"
		pass=$((pass + 1))
	else
		echo "not ok - mutation $name ($control) SURVIVED"
		fail=$((fail + 1))
	fi
	echo "$verdict"
done

# Leave the build dir unmutated: nobody should pick up a mutant by accident.
configure none >/dev/null 2>&1 || true

echo "mutations: $((pass - 1)) killed, $fail not killed or failed"
echo "safety-counts: $pass $fail"
[ "$fail" -eq 0 ]
