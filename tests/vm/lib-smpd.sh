# tests/vm/lib-smpd.sh - run smpd's integration tests in the plain VM (source
# it after lib.sh; see README.md, "smpd in the VM").
#
#   smpd_udevd_start      systemd-udevd in the guest (libudev enumeration
#                         and the netlink monitor work), USB devices
#                         triggered and settled; bails if it cannot start
#   smpd_udevd_stop       udevadm control --exit, waits; non-zero if it
#                         had to be killed.  Safe to call twice.
#   smpd_pytest BACKEND [PYTEST ARGS...]
#                         runs tests/daemon (test_smpd.py and any other
#                         test file there, through smpdtest.py) with
#                         SMP_TEST_BACKEND=BACKEND (chardev or libusb), under
#                         Debian's python3 and pytest; prints one TAP line
#                         per pytest case and the plan; the pytest output
#                         goes to stderr (the test's .log).  Returns non-zero
#                         if pytest failed or ran nothing.
#
# The caller loads (chardev) or does not load (libusb) smpusb.ko; the
# smpdtest.py harness checks that the device is bound as the mode wants.
# Variables (set before calling smpd_pytest to override):
#   SMPD_TEST_SLOWDOWN  wait factor for TCG (default 10)
#   SMPD_TEST_LEASE_MS  lease of the test policy (default 500, the longest
#                       the protocol allows: under TCG on a loaded 2-core
#                       host smpd's 40 ms renewals arrive up to ~150 ms
#                       late even at SCHED_FIFO; the shipped 200 ms lease
#                       is what the host suite tests)

_udevd_pid=

smpd_udevd_start() {
	local udevd=/lib/systemd/systemd-udevd
	[ -x "$udevd" ] || bail "$udevd missing (apt-get install udev)"
	# The guest runs chrooted into the host root (init.sh): udevadm and
	# udevd would otherwise ignore every request "in a chroot".
	export SYSTEMD_IGNORE_CHROOT=1
	mkdir -p /run/udev
	# Logs to stderr (the test's .log), not the kernel log.
	SYSTEMD_LOG_TARGET=console SYSTEMD_LOG_LEVEL=notice "$udevd" \
		> /dev/null 2> "$SMP_OUT/udevd.log" &
	_udevd_pid=$!
	if ! wait_for 30 test -S /run/udev/control; then
		sed 's/^/#   udevd: /' "$SMP_OUT/udevd.log" >&2
		smpd_udevd_stop
		bail "systemd-udevd did not start"
	fi
	# USB devices that exist already (the root hub) get their database
	# entries; devices plugged later come through udevd's own events.
	udevadm trigger --subsystem-match=usb --subsystem-match=usbmisc --action=add ||
		bail "udevadm trigger failed"
	udevadm settle -t 60 || bail "udevadm settle timed out"
}

smpd_udevd_stop() {
	local rc=0
	[ -n "$_udevd_pid" ] || return 0
	udevadm control --exit 2> /dev/null
	if ! wait_for 15 eval '! kill -0 "$_udevd_pid" 2> /dev/null'; then
		diag "systemd-udevd did not exit; killing it"
		kill -KILL "$_udevd_pid" 2> /dev/null
		rc=1
	fi
	wait "$_udevd_pid" 2> /dev/null
	_udevd_pid=
	return "$rc"
}

smpd_pytest() {
	local backend="$1" rc xml="$SMP_OUT/pytest.xml"
	shift
	rm -f "$xml"
	SMPD_SOURCE_DIR="$SMP_SRC" SMPD_BUILD_DIR="$SMP_BUILD" SMP_TEST_BACKEND="$backend" \
		SMPD_TEST_SLOWDOWN="${SMPD_TEST_SLOWDOWN:-10}" PYTHONDONTWRITEBYTECODE=1 \
		SMPD_TEST_LEASE_MS="${SMPD_TEST_LEASE_MS:-500}" \
		/usr/bin/python3 -m pytest -v -p no:cacheprovider --junitxml="$xml" \
		"$SMP_SRC/tests/daemon" "$@" >&2
	rc=$?
	[ -s "$xml" ] || bail "pytest wrote no result file (exit $rc)"
	# One TAP line per case; a skip is a failure here too.
	/usr/bin/python3 - "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

cases = list(ET.parse(sys.argv[1]).getroot().iter('testcase'))
bad = 0
for n, tc in enumerate(cases, 1):
    name = tc.get('name')
    why = [el for el in tc if el.tag in ('failure', 'error', 'skipped')]
    if why:
        bad += 1
        msg = (why[0].get('message') or why[0].tag).splitlines()[0][:200]
        print(f'not ok {n} - {name} ({why[0].tag}: {msg})')
    else:
        print(f'ok {n} - {name} ({float(tc.get("time", 0)):.1f}s)')
print(f'1..{len(cases)}')
sys.exit(1 if bad or not cases else 0)
PY
	[ $? -eq 0 ] && [ "$rc" -eq 0 ]
}
