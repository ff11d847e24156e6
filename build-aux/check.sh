#!/bin/bash
# Run every test suite of libsmp and print one summary line:
#   check: N passed, N failed, N skipped
# Usage: build-aux/check.sh [SUITE...]   (default: all suites)
# Exit status: 0 only when nothing failed and nothing was skipped.
#
# Work that only compiles or analyses runs in the background at idle
# priority while the host suite runs (see "work in the background" below;
# SMP_CHECK_BACKGROUND=0 turns that off).
#
# SMP_CHECK_LANES=2 runs the suites in two lanes at once: the VM lane
# (kernel, vm, system: qemu under TCG, on the last CPU) beside the host
# lane (host, asan, valgrind, install, mutations, analyze, on the other
# CPUs), then safety, which reads what both produced.  The default is one
# lane, one suite after the other: on a 2-core machine the guest then has
# both cores to itself, and the VM tests measure real-time deadlines
# (1 kHz telemetry, dead-man stops) that a guest sharing its core with
# the host lane's SCHED_FIFO test programs can miss.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

BUILD=${BUILD:-build}
BUILD_ASAN=${BUILD_ASAN:-build-asan}
LOGDIR=${LOGDIR:-$BUILD/check-logs}
LANES=${SMP_CHECK_LANES:-1}
# safety runs last: it checks that the tests each hazard claims passed in
# this run, including the kernel, VM and system ones.  'system' builds the
# Debian packages and installs them in a systemd-booted VM (issue 7; alone:
# `make check-system`).
ALL_SUITES=(format host workstation asan valgrind install mutations analyze proofs kernel vm system safety)
VM_LANE=(kernel vm system)
# Long repetitions run bounded in make check and in full with
# SMP_CHECK_FULL=1 (make check-full): 60 SIGKILLs of smpd instead of 200
# (crash-smpd; each kill checks every acknowledged record), 30 unplug
# cycles instead of 100 (24-kernel-unplug; each cycle checks every
# property of the test), the VM subset on 6.12 only instead of 6.12 and
# 6.12-rt (check-full runs every VM test on every series).  Every
# property is checked in the bounded form too; only the number of tries
# at a rare interleaving differs.
if [ "${SMP_CHECK_FULL:-0}" != 1 ]; then
	export CRASH_RUNS=${CRASH_RUNS:-60}
	export SMPUSB_UNPLUG_CYCLES=${SMPUSB_UNPLUG_CYCLES:-30}
fi
lane_only=0
if [ "${1:-}" = --lane ]; then	# internal: one lane of a parallel run
	lane_only=1
	shift
fi
background_only=0
if [ "${1:-}" = --background ]; then	# internal: the background chain
	background_only=1
	shift
fi
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=("${ALL_SUITES[@]}")

mkdir -p "$LOGDIR"
# One line "SUITE PASS FAIL SKIP [NOTE]" per suite run, written by both
# lanes.  The VM and system suites add one line per kernel series and per
# Debian release (vm-6.1, vm-6.12-rt, system-bookworm, system-trixie),
# their NOTE saying which kernel ran which tests.
RESULTS="$LOGDIR/results.txt"
# When this run started: the safety suite takes KUnit, VM and system logs
# older than that for another run's.
RUN_START="$LOGDIR/run-start"
[ "$lane_only" = 1 ] || [ "$background_only" = 1 ] || { : > "$RESULTS"; date +%s > "$RUN_START"; }

# add SUITE PASS FAIL SKIP [NOTE]
add() {
	echo "$1 $2 $3 $4${5:+ $5}" >> "$RESULTS"
	printf '== %s: %d passed, %d failed, %d skipped%s\n' "$1" "$2" "$3" "$4" "${5:+ $5}"
}

# ran SUITE: did SUITE report in this run (either lane)?
ran() {
	grep -q "^$1 " "$RESULTS"
}

# ran_any SUITE: did SUITE or one of its lines per kernel or release
# (SUITE-6.12, SUITE-trixie) report in this run?
ran_any() {
	grep -Eq "^$1(-[^ ]+)? " "$RESULTS"
}

# One step that is pass/fail as a whole (a build, a lint run).
step() {
	local suite=$1 name=$2
	shift 2
	local log="$LOGDIR/$suite-$name.log"
	echo "-- $suite: $name"
	if "$@" >"$log" 2>&1; then
		echo "ok - $suite: $name"
		return 0
	fi
	echo "not ok - $suite: $name (log: $log)"
	tail -n 40 "$log" | sed 's/^/    /'
	return 1
}

# Count a meson test run from its summary block.
meson_counts() {
	local log=$1 ok fail skip
	ok=$(awk '/^Ok:/{a+=$2} /^Expected Fail:/{a+=$3} END{print a+0}' "$log")
	fail=$(awk '/^Fail:/{a+=$2} /^Unexpected Pass:/{a+=$3} /^Timeout:/{a+=$2} END{print a+0}' "$log")
	skip=$(awk '/^Skipped:/{a+=$2} END{print a+0}' "$log")
	echo "$ok $fail $skip"
}

run_meson() {
	local suite=$1 dir=$2
	shift 2
	local log="$LOGDIR/$suite.log"
	echo "-- $suite: meson test -C $dir $*"
	# Each suite keeps its own testlog-SUITE.json (the safety check reads
	# the host suite's).
	meson test -C "$dir" --print-errorlogs --num-processes 2 \
		--logbase "testlog-$suite" "$@" >"$log" 2>&1
	local rc=$?
	read -r ok fail skip < <(meson_counts "$log")
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1	# meson itself failed (build error, no summary)
	fi
	if [ "$rc" -ne 0 ] || [ "$skip" -ne 0 ]; then
		grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|SKIP|TIMEOUT|ERROR)' "$log" | sed 's/^/    /'
		tail -n 60 "$log" | sed 's/^/    /'
	fi
	add "$suite" "$ok" "$fail" "$skip"
}

setup_build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" || return 1
	fi
	meson compile -C "$dir"
}

# The host suite, in two streams at once: smpd's integration tests under
# valgrind (suite daemon-valgrind, counted as valgrind-smpd) beside every
# other host test.  Both mostly wait on sockets and timers (load ~0.6
# each on 2 cores; their timed programs run SCHED_FIFO), and the valgrind
# stream alone takes as long as the rest of the suite, so side by side
# they take half the time one after the other did.
suite_host() {
	if ! step host build setup_build "$BUILD"; then
		add host 0 1 0
		return
	fi
	local vg_out="$LOGDIR/valgrind-smpd.out" vg_pid
	if [ "${SMP_CHECK_STREAMS:-2}" -ge 2 ]; then
		run_meson valgrind-smpd "$BUILD" --no-rebuild --suite daemon-valgrind \
			> "$vg_out" 2>&1 &
		vg_pid=$!
		run_meson host "$BUILD" --no-rebuild --no-suite daemon-valgrind --no-suite workstation
		wait "$vg_pid" || true
		cat "$vg_out"
		ran valgrind-smpd || add valgrind-smpd 0 1 0
	else
		run_meson host "$BUILD" --no-rebuild --no-suite daemon-valgrind --no-suite workstation
		run_meson valgrind-smpd "$BUILD" --no-rebuild --suite daemon-valgrind
	fi
}

build_asan() {
	step asan build setup_build "$BUILD_ASAN" -Dbuildtype=debug \
		-Db_sanitize=address,undefined -Db_lundef=false -Dworkstation=enabled
}

suite_asan() {
	if ! bg_join asan-build build_asan; then
		add asan 0 1 0
		return
	fi
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		run_meson asan "$BUILD_ASAN" --no-suite workstation
	# smp-workstation's UI test with the app (and smpd, smp-sim) under
	# ASan+UBSan, through to its exit.  Without leak checking: GTK and
	# fontconfig keep their caches to the end, and LSan suppressions by
	# library would hide the app's own leaks too (every g_malloc is in
	# libglib).
	ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		run_meson asan-workstation "$BUILD_ASAN" --no-rebuild --suite workstation --no-suite loaded
}

# smp-workstation (app/, issue 16): make check builds and tests it.  The
# feature is switched on here, so a machine without GTK 4 or libadwaita
# fails this suite at configure time instead of leaving the app out.
suite_workstation() {
	if ! step workstation build setup_build "$BUILD"; then
		add workstation 0 1 0
		return
	fi
	if ! step workstation enable meson configure "$BUILD" -Dworkstation=enabled ||
	   ! step workstation build-app meson compile -C "$BUILD"; then
		add workstation 0 1 0
		return
	fi
	rm -rf "$BUILD/app/screenshots"
	run_meson workstation "$BUILD" --no-rebuild --suite workstation
	# docs/workstation.md shows the screens as the last passing run drew
	# them (git status shows when they changed: commit them with the change)
	if grep -Eq '^ *[0-9]+/[0-9]+ .*workstation-ui +OK' "$LOGDIR/workstation.log"; then
		cp "$BUILD"/app/screenshots/*.png docs/workstation/
	fi
}

VALGRIND="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --track-fds=no"

suite_valgrind() {
	if ! step valgrind build setup_build "$BUILD"; then
		add valgrind 0 1 0
		return
	fi
	# C test programs run under valgrind directly.  Tests in suite
	# 'script' are shell or Python drivers: valgrind goes in front of the
	# project binaries they run, through SMP_TEST_WRAPPER.  Tests in
	# 'no-valgrind' say in their meson.build why they cannot run under it.
	run_meson valgrind "$BUILD" --no-suite no-valgrind --no-suite script \
		--timeout-multiplier 10 --wrap="$VALGRIND"
	SMP_TEST_WRAPPER="$VALGRIND" \
		run_meson valgrind-scripts "$BUILD" --suite script --no-suite no-valgrind \
		--timeout-multiplier 10
}

# make install / make uninstall into a temporary DESTDIR (issue 7).
# It only builds (its own build dir) and copies: with the background chain
# it runs there.
suite_install() {
	local log="$LOGDIR/install.tap" ok fail
	echo "-- install: build-aux/install-test.sh"
	bg_join install install_run
	local rc=$?
	ok=$(grep -Ec '^ok ' "$log" | tr -d '\n')
	fail=$(grep -Ec '^not ok ' "$log" | tr -d '\n')
	grep -E '^(not ok|#)' "$log" | sed 's/^/    /'
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		tail -n 20 "$log" | sed 's/^/    /'
	fi
	add install "$ok" "$fail" 0
}

install_run() {
	build-aux/install-test.sh > "$LOGDIR/install.tap" 2>&1
}

# --- safety: traceability, mutations, static analysis (issue 8) ---------
# Each script ends with "safety-counts: PASS FAIL"; its ok / not ok and
# WARNING lines are shown.
safety_counted() {
	local suite=$1 log="$LOGDIR/$1.log"
	shift
	echo "-- $suite: $*"
	"$@" >"$log" 2>&1
	safety_report "$suite"
}

# safety_report SUITE: count the log \$LOGDIR/SUITE.log of a script that
# already ran (safety_counted, or the background chain).
safety_report() {
	local suite=$1 log="$LOGDIR/$1.log" p='' f=''
	grep -E '^(ok |not ok |    |  WARNING|WARNING|safety:|mutations:)' "$log" | sed 's/^/    /'
	read -r p f < <(sed -n 's/^safety-counts: \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$log" | tail -n 1)
	if [ -z "$p" ] || [ -z "$f" ]; then
		tail -n 30 "$log" | sed 's/^/    /'
		p=0 f=1
	fi
	add "$suite" "$p" "$f" 0
}

# Every hazard of docs/hazards.md traced to controls and to tests that
# passed in this run (the host or valgrind suite's testlog; run alone, the
# claimed tests run here); docs/safety.md current.
suite_safety() {
	local args=(check --logdir "$LOGDIR" --run-missing "$BUILD")
	step safety build setup_build "$BUILD" || { add safety 0 1 0; return; }
	if ran host; then
		args+=(--testlog "$BUILD/meson-logs/testlog-host.json")
	fi
	if ran valgrind-smpd; then
		args+=(--testlog "$BUILD/meson-logs/testlog-valgrind-smpd.json")
	fi
	if ran kernel || ran_any vm || ran_any system || ran proofs; then
		# their logs are this run's when newer than its start (the
		# kernel suite runs beside the host suite: older than its testlog)
		args+=(--since "$(cat "$RUN_START")")
	fi
	if ran kernel || ran_any vm; then
		args+=(--strict-late)	# KUnit and VM results of this run exist
	fi
	if ran_any system; then
		args+=(--strict-system)	# the system VM's results of this run exist
	fi
	if ran proofs; then
		args+=(--strict-proofs)	# the proofs and model checks of this run exist
	fi
	safety_counted safety /usr/bin/python3 build-aux/safety-trace.py "${args[@]}"
}

# Each mutant (one control disabled) must fail the tests claimed for it.
# With the background chain, the mutants whose tests are all pure (suite
# 'unit') run there (mutations-unit, own build dir, timeouts x2 so that
# idle priority cannot pass for a kill) and only the timed ones here.
suite_mutations() {
	if bg_has mutations-unit; then
		safety_counted mutations build-aux/safety-mutations.sh --kind timed
		bg_join mutations-unit false || ran mutations-unit || add mutations-unit 0 1 0
		return
	fi
	safety_counted mutations build-aux/safety-mutations.sh
}

mutations_unit_run() {
	BUILD_MUTATION=build-mutation-unit MUTATION_TIMEOUT_MULTIPLIER=2 \
		safety_counted mutations-unit build-aux/safety-mutations.sh --kind unit
}

# One C style: every userspace C file as .clang-format formats it.
suite_format() {
	if step format check build-aux/format.sh --check; then
		add format 1 0 0
	else
		add format 0 1 0
	fi
}

# scan-build and cppcheck: zero findings or a reason per suppression.
suite_analyze() {
	# a background chain that died before reporting counts as a failure
	bg_join analyze analyze_run || ran analyze || add analyze 0 1 0
}

analyze_run() {
	safety_counted analyze build-aux/analyze.sh
}

# Frama-C's Eva on the codecs, WP on the limit rules and on the
# controller's start and setpoint gates, Spin on the stop protocol, each
# mutant of the gates and of the model caught (proofs/run.sh,
# proofs/README.md; issue 18).  A few minutes, on one core.
# With the background chain, both parts run there, as the host suite
# waits on its sockets and timers: WP (proofs-wp, first after the ASan
# build) and Eva and Spin (proofs-model, no time limit of their own but
# a coarse 900 s cap).  WP's provers have a wall-clock limit per goal
# (60 s; the real goals take seconds): when idle priority still starved
# one into a timeout, so that the background run did not pass, WP runs
# again here at normal priority and that run counts.  A mutant counts as
# caught in the background only by a prover's verdict on its goal
# (Failed or Unknown; every mutant's is Failed), never by a timeout.
# Both write their logs to $BUILD/proofs; the safety suite reads the
# proofs log, which then holds both parts' lines.
suite_proofs() {
	# the chain runs both parts or neither (the same "proofs" in the suites)
	if ! bg_has proofs-wp; then
		safety_counted proofs proofs/run.sh -o "$BUILD/proofs"
		return
	fi
	echo "-- proofs: proofs/run.sh -o $BUILD/proofs wp gates (in the background)"
	if ! bg_join proofs-wp false > /dev/null; then
		echo "    the background run did not pass: WP again, in the foreground"
		cp "$LOGDIR/proofs.log" "$LOGDIR/proofs-wp-background.log" 2> /dev/null
		proofs_wp_run
	fi
	safety_report proofs
	bg_join proofs-model false || ran proofs-model || add proofs-model 0 1 0
	cat "$LOGDIR/proofs-model.log" >> "$LOGDIR/proofs.log" 2> /dev/null
}

# WP alone, its log where safety_report reads it (counted by suite_proofs).
# In the background (PROOFS_MUTANT_VERDICT=1) a mutant counts as caught
# only by a prover's verdict on its goal (Failed, Unknown), never by a
# timeout, which starvation alone could cause.
proofs_wp_run() {
	PROOFS_MUTANT_VERDICT=${1:-0} proofs/run.sh -o "$BUILD/proofs" wp gates \
		> "$LOGDIR/proofs.log" 2>&1
}
proofs_wp_background() {
	proofs_wp_run 1
}

proofs_model_run() {
	safety_counted proofs-model proofs/run.sh -o "$BUILD/proofs" eva spin
}

suite_kernel() {
	bg_join kernel kernel_run || ran kernel || add kernel 0 1 0
}

kernel_run() {
	local p=0 f=0
	if [ ! -f kernel/Makefile ] && [ ! -f kernel/Kbuild ]; then
		echo "kernel: no driver in kernel/ yet"
		add kernel 0 1 0
		return
	fi
	if step kernel build make -C kernel; then p=$((p + 1)); else f=$((f + 1)); fi
	if [ -x kernel/check.sh ]; then
		if step kernel lint kernel/check.sh; then p=$((p + 1)); else f=$((f + 1)); fi
	fi
	if [ -x kernel/tests/run-kunit.sh ]; then
		local log="$LOGDIR/kernel-kunit.log"
		echo "-- kernel: kunit"
		if kernel/tests/run-kunit.sh >"$log" 2>&1; then
			p=$((p + 1))
		else
			f=$((f + 1))
			tail -n 40 "$log" | sed 's/^/    /'
		fi
	fi
	add kernel "$p" "$f" 0
}

# The VM tests on the kernels of build-aux/kernels.sh.  Default: every
# test on the default series (6.1; its TAP is vm.tap, which the safety
# suite reads) and VM_SUBSET, the kernel path's stop guarantees (dead-man,
# the driver's own lease, unplug), on each other series (vm-SERIES.tap).
# SMP_VM_KERNELS="6.1 6.12 6.12-rt" (make vm KERNELS=..., make check-full)
# runs every test on each series listed instead.  Each series has its own
# result line, vm-SERIES, with the kernel release and the tests it ran.
VM_SUBSET=(23-kernel-deadman 34-kernel-lease-only 24-kernel-unplug)
VM_SUBSET_KERNELS=(6.12)	# 6.12-rt: make check-full, make vm KERNELS=...

suite_vm() {
	if [ ! -x tests/vm/run ]; then
		echo "vm: tests/vm/run missing"
		add vm 0 1 0
		return
	fi
	step vm build setup_build "$BUILD" || { add vm 0 1 0; return; }
	if [ -f kernel/Makefile ] || [ -f kernel/Kbuild ]; then
		step vm kmod make -C kernel || { add vm 0 1 0; return; }
	fi
	local default k
	default=$(build-aux/kernels.sh list | head -n1)
	if [ -n "${SMP_VM_KERNELS:-}" ]; then
		for k in $SMP_VM_KERNELS; do
			vm_one "$k" "$default"
		done
	else
		vm_one "$default" "$default"
		for k in "${VM_SUBSET_KERNELS[@]}"; do
			vm_one "$k" "$default" "${VM_SUBSET[@]}"
		done
	fi
}

# vm_one SERIES DEFAULT [TEST...]: one VM boot, result line vm-SERIES.
vm_one() {
	local k=$1 default=$2 name=vm
	shift 2
	[ "$k" = "$default" ] || name=vm-$k
	local log="$LOGDIR/$name.tap"
	echo "-- vm: tests/vm/run --kver $k --build $BUILD${*:+ $*}"
	tests/vm/run --kver "$k" --build "$BUILD" --out "$LOGDIR/$name" \
		--timeout "${SMP_VM_TIMEOUT:-2400}" "$@" >"$log" 2>"$LOGDIR/$name.stderr"
	local rc=$?
	local ok fail skip
	ok=$(grep -Ec '^ok ' "$log" | tr -d '\n')
	skip=$(grep -Eic '^ok .*# *skip' "$log" | tr -d '\n')
	ok=$((ok - skip))
	fail=$(grep -Ec '^not ok ' "$log" | tr -d '\n')
	grep -E '^(not ok|ok|#)' "$log" | sed 's/^/    /'
	# Measured stop latencies (device clock) from the tests' own results.
	echo "    measured in this run ($k):"
	grep -E '^ +ok .*\([0-9]+ ms( after the lease deadline)?\)' "$log" | sed 's/^ */      /'
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		tail -n 40 "$LOGDIR/$name.stderr" | sed 's/^/    /'
	fi
	add "vm-$k" "$ok" "$fail" "$skip" \
		"($(tap_kernel "$log"), ${*:+$# tests: }${*:-every test})"
}

# tap_kernel TAP: the kernel release a tests/vm/run TAP stream says its
# guest booted ("kernel ?" when it never booted).
tap_kernel() {
	local r
	r=$(sed -n 's/^ok 1 - vm: guest booted.*(kernel \([^ ,]*\).*$/\1/p' "$1" | head -n1)
	echo "kernel ${r:-?}"
}

# The Debian release this machine runs (the system suite's own guest
# boots its root): its codename, e.g. bookworm.
host_dist() {
	local c
	c=$(. /etc/os-release 2> /dev/null && echo "${VERSION_CODENAME:-}")
	echo "${c:-host}"
}

build_debs() {
	step system debs build-aux/build-debs.sh "$BUILD/debs"
}

# The Debian packages, then the full-system VM test that installs them
# into a systemd-booted guest (issue 7, tests/vm/README.md).
suite_system() {
	local log="$LOGDIR/system.tap" debs="$BUILD/debs" name
	name=system-$(host_dist)
	step system build setup_build "$BUILD" || { add "$name" 0 1 0; return; }
	if ! bg_join debs build_debs; then
		add "$name" 0 1 0
		return
	fi
	echo "-- system: tests/vm/run --systemd --build $BUILD --debs $debs"
	tests/vm/run --systemd --build "$BUILD" --debs "$debs" --out "$LOGDIR/vm-system" \
		> "$log" 2> "$LOGDIR/system.stderr"
	local rc=$? ok fail skip
	ok=$(grep -Ec '^ok ' "$log" | tr -d '\n')
	skip=$(grep -Eic '^ok .*# *skip' "$log" | tr -d '\n')
	ok=$((ok - skip + 1))	# + the package build
	fail=$(grep -Ec '^not ok ' "$log" | tr -d '\n')
	grep -E '^(not ok|ok|#)' "$log" | sed 's/^/    /'
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		tail -n 40 "$LOGDIR/system.stderr" | sed 's/^/    /'
	fi
	add "$name" "$ok" "$fail" "$skip" "($(tap_kernel "$log"), packages built, the *-system-* tests)"
	local d
	for d in ${SMP_SYSTEM_DISTS:-}; do
		system_dist "$d"
	done
}

# system_dist DIST: the same on another Debian release (make check-full,
# make check-system DISTS=trixie): its root (tests/vm/build-dist-root,
# cached), the packages built in it, the VM booting it with its kernel.
system_dist() {
	local d=$1 name=system-$1 debs="$BUILD/debs-$1"
	local log="$LOGDIR/$name.tap"
	if ! step "$name" root tests/vm/build-dist-root "$d" ||
		! step "$name" debs build-aux/build-debs.sh --dist "$d" "$debs"; then
		add "$name" 0 1 0
		return
	fi
	echo "-- $name: tests/vm/run --systemd --dist $d --build $BUILD --debs $debs"
	tests/vm/run --systemd --dist "$d" --build "$BUILD" --debs "$debs" \
		--out "$LOGDIR/vm-$name" > "$log" 2> "$LOGDIR/$name.stderr"
	local rc=$? ok fail skip
	ok=$(grep -Ec '^ok ' "$log" | tr -d '\n')
	skip=$(grep -Eic '^ok .*# *skip' "$log" | tr -d '\n')
	ok=$((ok - skip + 2))	# + the root and the package build
	fail=$(grep -Ec '^not ok ' "$log" | tr -d '\n')
	grep -E '^(not ok|ok|#)' "$log" | sed 's/^/    /'
	if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		tail -n 40 "$LOGDIR/$name.stderr" | sed 's/^/    /'
	fi
	add "$name" "$ok" "$fail" "$skip" "($(tap_kernel "$log"), its root, packages built, the *-system-* tests)"
}

# --- work in the background ----------------------------------------------
# Some work only compiles or analyses: the ASan build, scan-build and
# cppcheck (analyze), the proofs (proofs-wp, proofs-model), the mutants
# whose tests are pure (mutations-unit), the kernel suite (W=1 build,
# sparse, checkpatch, KUnit under UML), the install test and the Debian
# packages.  Nothing in it measures time; only WP's provers have a time
# limit per goal, and a WP run that did not pass there runs again in the
# foreground.
# The host suite, on the other hand, mostly waits (its timed programs
# sleep on sockets and timers; load ~0.5 on 2 cores).  So in a serial run
# that includes the host suite, that work runs as one chain in the
# background at SCHED_IDLE (it gets only CPU time nobody else wants, and
# the host tests' timed programs are SCHED_FIFO besides), and each suite
# picks up its part when its turn comes, printed in the usual order.
# SMP_CHECK_BACKGROUND=0 does everything in the foreground.
BG_DIR="$LOGDIR/background"
bg_items=()	# parts the chain runs, in its order

# bg_has NAME: whether the background chain runs NAME.
bg_has() {
	local i
	for i in "${bg_items[@]}"; do
		[ "$i" = "$1" ] && return 0
	done
	return 1
}

# bg_join NAME FUNC: NAME's result from the background chain (its output
# printed here), or FUNC run now when the chain does not do NAME.
bg_join() {
	local name=$1 func=$2
	if bg_has "$name"; then
		while [ ! -f "$BG_DIR/$name.rc" ]; do
			if ! kill -0 "$bg_pid" 2>/dev/null && [ ! -f "$BG_DIR/$name.rc" ]; then
				echo "not ok - background $name: the background chain died (log: $BG_DIR)"
				cat "$BG_DIR/$name.out" 2>/dev/null
				return 1
			fi
			sleep 2
		done
		cat "$BG_DIR/$name.out"
		return "$(cat "$BG_DIR/$name.rc")"
	fi
	"$func"
}

if [ "$background_only" = 1 ]; then
	for name in "$@"; do
		case "$name" in
		asan-build) func=build_asan ;;
		analyze) func=analyze_run ;;
		mutations-unit) func=mutations_unit_run ;;
		proofs-wp) func=proofs_wp_background ;;
		install) func=install_run ;;
		proofs-model) func=proofs_model_run ;;
		kernel) func=kernel_run ;;
		debs) func=build_debs ;;
		*) echo "check: unknown background part $name" >&2; exit 2 ;;
		esac
		"$func" > "$BG_DIR/$name.out" 2>&1
		echo $? > "$BG_DIR/$name.rc"
	done
	exit 0
fi

for s in "${suites[@]}"; do
	if ! declare -F "suite_$s" >/dev/null; then
		echo "check: unknown suite '$s' (known: ${ALL_SUITES[*]} system)" >&2
		exit 2
	fi
done

# Suites that run beside another one (SMP_CHECK_STREAMS=1: one after the
# other): the valgrind suite (C programs and the client programs of the
# script tests under memcheck; no tight bound: the scripts' waits are
# scaled ×5 for memcheck) beside the ASan suite, whose timed programs run
# SCHED_FIFO and so pre-empt memcheck's.
declare -A BESIDE=([asan]=valgrind)

run_suites() {
	local s b pid out beside_done=" "
	for s in "$@"; do
		[[ "$beside_done" == *" $s "* ]] && continue	# ran beside an earlier one
		echo "== suite $s ($(date -u +%H:%M:%S))"
		b=${BESIDE[$s]:-}
		if [ -n "$b" ] && [ "${SMP_CHECK_STREAMS:-2}" -ge 2 ] && [[ " $* " == *" $b "* ]]; then
			out="$LOGDIR/beside-$b.out"
			{
				echo "== suite $b (beside $s, $(date -u +%H:%M:%S))"
				"suite_$b"
			} > "$out" 2>&1 &
			pid=$!
			"suite_$s"
			wait "$pid"
			cat "$out"
			ran "$b" || add "$b" 0 1 0
			beside_done+="$b "
		else
			"suite_$s"
		fi
	done
}

if [ "$lane_only" = 1 ]; then
	run_suites "${suites[@]}"
	exit 0
fi

# Split the requested suites into the VM lane, the host lane and the ones
# that must come last (safety), keeping their order.
vm_lane=() host_lane=() last=()
for s in "${suites[@]}"; do
	case " ${VM_LANE[*]} " in
	*" $s "*) vm_lane+=("$s") ;;
	*) if [ "$s" = safety ]; then last+=("$s"); else host_lane+=("$s"); fi ;;
	esac
done

start=$(date +%s)
lanes=1
if [ "$LANES" -ge 2 ] && [ "$(nproc)" -ge 2 ] && [ ${#vm_lane[@]} -gt 0 ] &&
   [ ${#host_lane[@]} -gt 0 ]; then
	lanes=2
fi
if [ "${SMP_CHECK_BACKGROUND:-1}" = 1 ] && [[ " ${suites[*]} " == *" host "* ]]; then
	# first what the next suites wait for (the ASan build) and WP,
	# whose provers have a time limit: the host suite mostly waits,
	# the ASan and valgrind suites after it keep the CPUs busy.
	case " ${suites[*]} " in *" asan "*) bg_items+=(asan-build) ;; esac
	case " ${suites[*]} " in *" proofs "*) bg_items+=(proofs-wp) ;; esac
	for s in "${suites[@]}"; do
		case "$s" in
		analyze|install) bg_items+=("$s") ;;
		mutations) bg_items+=(mutations-unit) ;;
		proofs) bg_items+=(proofs-model) ;;
		# the VM lane builds its own when it runs beside
		kernel) [ "$lanes" = 2 ] || bg_items+=(kernel) ;;
		system) [ "$lanes" = 2 ] || bg_items+=(debs) ;;
		esac
	done
fi
if [ ${#bg_items[@]} -gt 0 ]; then
	rm -rf "$BG_DIR"
	mkdir -p "$BG_DIR"
	echo "== in the background at idle priority: ${bg_items[*]}"
	chrt --idle 0 bash "$0" --background "${bg_items[@]}" > "$BG_DIR/chain.log" 2>&1 &
	bg_pid=$!
	trap 'kill "$bg_pid" 2>/dev/null' EXIT
fi
if [ "$lanes" = 2 ]; then
	# Both lanes use the main build and the module: build them once, first,
	# so two ninja/make runs never share a directory.
	prep_ok=1
	step prep build setup_build "$BUILD" || prep_ok=0
	if [ -f kernel/Makefile ]; then
		step prep kmod make -C kernel || prep_ok=0
	fi
	if [ "$prep_ok" = 0 ]; then
		add prep 0 1 0
	fi
	echo "== the VM lane (${vm_lane[*]}) runs beside the host lane; its output follows the host lane's"
	# The guest's clock runs in real time while qemu emulates it: a guest
	# starved of CPU misses its own 1 kHz deadlines (the telemetry and
	# dead-man tests measure those), and the host tests run their timed
	# programs SCHED_FIFO, which pre-empts any nice level.  So each lane
	# gets its own CPUs: the VM lane the last one, the host lane the rest.
	# SMP_CHECK_LANE_PIN=0 (an experiment, issue 21): no CPUs of its own
	# for either lane; the VM lane at nice -5, so that the host lane's
	# normal-priority work (builds, memcheck) yields to qemu while its
	# SCHED_FIFO programs still pre-empt it.  time(1) over a VM suite
	# alone: 788 s wall for 662 s of CPU, less than one of the two cores.
	local_cpus=$(nproc)
	vm_cpu=$((local_cpus - 1))
	host_cpus=0
	[ "$vm_cpu" -gt 1 ] && host_cpus="0-$((vm_cpu - 1))"
	if [ "${SMP_CHECK_LANE_PIN:-1}" = 0 ]; then
		echo "== CPUs: both lanes on every CPU, the VM lane at nice -5"
		nice -n -5 bash "$0" --lane "${vm_lane[@]}" > "$LOGDIR/vm-lane.out" 2>&1 &
		vm_pid=$!
	else
		echo "== CPUs: host lane $host_cpus, VM lane $vm_cpu"
		taskset -c "$vm_cpu" bash "$0" --lane "${vm_lane[@]}" > "$LOGDIR/vm-lane.out" 2>&1 &
		vm_pid=$!
		taskset -pc "$host_cpus" $$ > /dev/null
	fi
	run_suites "${host_lane[@]}"
	echo "== host lane done after $(( $(date +%s) - start )) s; waiting for the VM lane"
	wait "$vm_pid"
	[ "${SMP_CHECK_LANE_PIN:-1}" = 0 ] || taskset -pc "0-$vm_cpu" $$ > /dev/null
	cat "$LOGDIR/vm-lane.out"
	echo "== VM lane done after $(( $(date +%s) - start )) s"
else
	run_suites "${host_lane[@]}" "${vm_lane[@]}"
fi
run_suites "${last[@]}"

total_pass=0 total_fail=0 total_skip=0
results=()
while read -r name p f k note; do
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	total_skip=$((total_skip + k))
	results+=("$(printf '%-15s %4d passed, %4d failed, %4d skipped%s' "$name" "$p" "$f" "$k" "${note:+  $note}")")
done < "$RESULTS"

echo
echo "Per suite ($(( $(date +%s) - start )) s in all):"
printf '  %s\n' "${results[@]}"
if [ "$total_skip" -ne 0 ]; then
	echo "Skipped tests count as a failure of make check: every test must run here."
fi
echo
echo "check: $total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ] && [ "$total_skip" -eq 0 ]
