#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make soak: SOAK_SECONDS (default 1800) of randomized sessions, faults,
# hotplug and killed clients against one smpd, in each variant of
# SOAK_VARIANTS (default "host host-valgrind vm workstation"), one after
# the other:
#   host           tests/soak/soak.py on the host (socket path): leaks by
#                  RSS and fd count, lost records, stop bounds (docs/soak.md)
#   host-valgrind  the same with smpd under valgrind memcheck (definite
#                  leaks and memory errors fail; 500 ms lease, waits x4)
#   vm             the same in the VM through the smpusb kernel driver
#                  (smp-sim a USB gadget, hotplug = UDC unbind/bind), and
#                  the VM harness's kernel-log rules (tests/vm/README.md)
#   workstation    smp-workstation through one session of
#                  SOAK_WORKSTATION_SECONDS (default 600) with the needle
#                  running and an operator at work, a parallel build
#                  beside it: no spurious stop, heartbeat gaps printed
#                  (app/tests/test_workstation_loaded.py; 30 s in make
#                  check); needs a build with -Dworkstation=enabled
# Every variant that cannot run fails; none is skipped.
# usage: build-aux/soak.sh   (BUILD, SOAK_SECONDS, SOAK_SEED, SOAK_VARIANTS)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
export SOAK_SECONDS=${SOAK_SECONDS:-1800}
export SOAK_SEED=${SOAK_SEED:-$(date +%s)}
variants=${SOAK_VARIANTS:-host host-valgrind vm workstation}
VALGRIND="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite"

for x in daemon/smpd tools/smp-sim/smp-sim audit/smp-audit; do
	[ -x "$BUILD/$x" ] || { echo "soak: $BUILD/$x is missing: build first" >&2; exit 1; }
done
[ -x /usr/bin/python3 ] || { echo "soak: /usr/bin/python3 is missing" >&2; exit 1; }

host() {
	SMPD_SOURCE_DIR=$top SMPD_BUILD_DIR=$BUILD PYTHONDONTWRITEBYTECODE=1 \
		/usr/bin/python3 tests/soak/soak.py
}

results=()
rc=0
for v in $variants; do
	echo "soak: == $v: ${SOAK_SECONDS} s, seed $SOAK_SEED ==" >&2
	case "$v" in
	host)
		host ;;
	host-valgrind)
		command -v valgrind >/dev/null || { echo "soak: valgrind is missing" >&2; false; } &&
		SMPD_TEST_WRAPPER=$VALGRIND SMPD_TEST_LEASE_MS=500 SMPD_TEST_SLOWDOWN=4 host ;;
	vm)
		if [ ! -f tests/vm/lib-smpd.sh ]; then
			echo "soak: vm: tests/vm/lib-smpd.sh (smpd in the VM) is not in this tree" >&2
			false
		else
			[ -f kernel/smpusb.ko ] || make -C kernel >/dev/null || false
			# the guest sees the host's files: a wrapper with this run's
			# settings and time limit runs tests/vm/soak/soak-guest.sh
			out="$BUILD/soak-vm"
			wrap="$BUILD/soak-vm.sh"
			rm -rf "$out"
			cat >"$wrap" <<WRAP
#!/bin/bash
# vm-timeout: $((SOAK_SECONDS * 2 + 600))
export SOAK_SECONDS=$SOAK_SECONDS SOAK_SEED=$SOAK_SEED
exec bash "\$SMP_SRC/tests/vm/soak/soak-guest.sh"
WRAP
			chmod +x "$wrap"
			SMP_VM_TIMEOUT=$((SOAK_SECONDS * 2 + 1200)) \
				tests/vm/run --build "$BUILD" --out "$out" "$wrap"
		fi ;;
	workstation)
		if [ ! -x "$BUILD/app/smp-workstation" ]; then
			echo "soak: workstation: $BUILD/app/smp-workstation is missing (meson configure -Dworkstation=enabled)" >&2
			false
		else
			SMP_WORKSTATION_LOADED_SECONDS=${SOAK_WORKSTATION_SECONDS:-600} \
				meson test -C "$BUILD" --no-rebuild --print-errorlogs -v \
				--timeout-multiplier $(( ${SOAK_WORKSTATION_SECONDS:-600} / 120 + 2 )) \
				workstation-loaded
		fi ;;
	*)
		echo "soak: unknown variant '$v' (host, host-valgrind, vm, workstation)" >&2
		false ;;
	esac
	r=$?
	if [ $r -eq 0 ]; then results+=("$v: PASS"); else results+=("$v: FAIL ($r)"); rc=1; fi
done
echo "soak: seed $SOAK_SEED, ${SOAK_SECONDS} s each: ${results[*]}"
exit $rc
