#!/bin/bash
# Run libsmp's proofs and model checks (issue 18; proofs/README.md says
# what each one shows and assumes).
#
# Usage: proofs/run.sh [-o OUTDIR] [PART...]   PART: eva wp spin (default: all)
#
# One line per analysis, "ok - proofs: NAME" or "not ok - proofs: NAME
# (log: FILE)", then "safety-counts: PASSED FAILED" (what check.sh's
# proofs suite and build-aux/safety-trace.py read).  Exit status 0 only
# when every analysis ran and passed; a missing tool is a failure, never a
# skip.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

out=build/proofs
if [ "${1:-}" = -o ]; then
	out=$2
	shift 2
fi
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(eva wp spin)
mkdir -p "$out"
out=$(cd "$out" && pwd)

pass=0 fail=0

# result NAME LOG STATUS
result() {
	if [ "$3" -eq 0 ]; then
		echo "ok - proofs: $1"
		pass=$((pass + 1))
	else
		echo "not ok - proofs: $1 (log: $2)"
		tail -n 25 "$2" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
}

need() {
	local t
	for t in "$@"; do
		if ! command -v "$t" > /dev/null; then
			echo "not ok - proofs: $t is not installed (build-aux/deps.sh proofs)"
			fail=$((fail + 1))
			return 1
		fi
	done
}

# ---- Spin: the stop protocol ----------------------------------------------
# spin_check NAME PROPERTY EXPECT [-DMACRO...]: verify one LTL property of
# proofs/spin/stop.pml exhaustively; EXPECT is "holds" or "fails" (a
# mutant, which the search must catch).
spin_check() {
	local name=$1 prop=$2 expect=$3
	shift 3
	local dir="$out/spin/$name" log="$out/spin/$name.log" rc=1
	rm -rf "$dir"
	mkdir -p "$dir"
	cp proofs/spin/stop.pml "$dir/"
	(
		cd "$dir" || exit 1
		spin "$@" -a stop.pml || exit 1
		gcc -O2 -DSAFETY -DMEMLIM=2048 -o pan pan.c || exit 1
		./pan -m200000 -N "$prop"
	) > "$log" 2>&1
	# The search must be complete: no depth cut, no memory cut.
	if grep -qE 'max search depth too small|out of memory|error: max search depth' "$log"; then
		echo "proofs: the search of $name was cut short" >> "$log"
	elif ! grep -q 'State-vector' "$log"; then
		echo "proofs: pan did not run" >> "$log"
	elif [ "$expect" = holds ]; then
		grep -q 'errors: 0$' "$log" && rc=0
	else
		grep -q 'errors: [1-9]' "$log" && grep -q 'assertion violated' "$log" && rc=0
		[ "$rc" = 0 ] || echo "proofs: the mutant was NOT caught" >> "$log"
	fi
	result "spin $name" "$log" "$rc"
}

run_spin() {
	need spin gcc || return
	spin_check lease_bound lease_bound holds -DONLY_LEASE
	spin_check estop_bound estop_bound holds -DONLY_ESTOP
	spin_check latch_kept latch_kept holds -DONLY_LATCH
	spin_check mutant-no-claimant-check lease_bound fails -DONLY_LEASE -DMUT_NO_CLAIMANT_CHECK
	spin_check mutant-no-fw-lease lease_bound fails -DONLY_LEASE -DMUT_NO_FW_LEASE
	spin_check mutant-estop-renews estop_bound fails -DONLY_ESTOP -DMUT_ESTOP_RENEWS
	spin_check mutant-start-clears-latch latch_kept fails -DONLY_LATCH -DMUT_START_CLEARS_LATCH
}

for p in "${parts[@]}"; do
	case "$p" in
	eva) run_eva ;;
	wp) run_wp ;;
	spin) run_spin ;;
	*) echo "proofs: unknown part '$p' (eva wp spin)" >&2; exit 2 ;;
	esac
done

echo "safety-counts: $pass $fail"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
