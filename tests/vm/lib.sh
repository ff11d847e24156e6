# tests/vm/lib.sh - helpers for VM tests (source it; see README.md).
# TAP on stdout, diagnostics on stderr.

_tap_n=0
_sim_pid=

plan() { echo "1..$1"; }
diag() { echo "# $*" >&2; }
bail() {
	echo "Bail out! $*"
	echo "bail: $*" >&2
	exit 1
}

# ok STATUS DESC: ok when STATUS is 0.
ok() {
	_tap_n=$((_tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_tap_n - $2"
	else
		echo "not ok $_tap_n - $2"
	fi
	return "$1"
}

# check DESC CMD...: ok when CMD succeeds.
check() {
	local desc="$1"
	shift
	"$@"
	ok $? "$desc"
}

# is GOT WANT DESC
is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		diag "$3: got '$1', want '$2'"
		ok 1 "$3"
	fi
}

# wait_for SECS CMD...: poll CMD every 0.1 s until it succeeds or SECS pass.
wait_for() {
	local secs="$1" i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

# find_usb_dev VID PID: prints the sysfs dir of the first matching device.
find_usb_dev() {
	local d
	for d in /sys/bus/usb/devices/*; do
		[ -f "$d/idVendor" ] || continue
		if [ "$(cat "$d/idVendor")" = "$1" ] && [ "$(cat "$d/idProduct")" = "$2" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# usb_dev_present VID PID: quiet find_usb_dev, for wait_for/check.
usb_dev_present() { find_usb_dev "$@" > /dev/null; }

# vm_insmod KO [PARAMS...]: load an out-of-tree module after its stock deps.
vm_insmod() {
	local ko="$1" dep
	shift
	[ -f "$ko" ] || bail "module $ko not found (not built?)"
	for dep in $(modinfo -F depends "$ko" | tr ',' ' '); do
		modprobe "$dep" || bail "modprobe $dep (needed by $ko) failed"
	done
	insmod "$ko" "$@" || bail "insmod $ko failed"
}

# start_sim ARGS...: smp-sim on the FunctionFS transport in the background,
# waits until the host side has enumerated it (1209:0001 in sysfs).  Its
# output goes to $SMP_OUT/smp-sim.log.  SMP_SIM_CHRT=PRIO runs it SCHED_FIFO.
# SMP_SIM names another simulator binary (tests/vm/run --dist: the one
# the release's packages installed).
start_sim() {
	local sim="${SMP_SIM:-$SMP_BUILD/tools/smp-sim/smp-sim}"
	[ -x "$sim" ] || bail "$sim not built"
	${SMP_SIM_CHRT:+chrt -f "$SMP_SIM_CHRT"} "$sim" --gadget "$@" > "$SMP_OUT/smp-sim.log" 2>&1 &
	_sim_pid=$!
	if ! wait_for 30 usb_dev_present 1209 0001; then
		diag "smp-sim did not enumerate within 30 s; its log:"
		sed 's/^/#   /' "$SMP_OUT/smp-sim.log" >&2
		stop_sim
		bail "simulated device did not enumerate"
	fi
}

# stop_sim: SIGTERM, wait for a clean teardown (gadget removed).  Returns
# non-zero if the simulator had to be killed or exited with an error.
stop_sim() {
	local rc=0
	[ -n "$_sim_pid" ] || return 0
	kill -TERM "$_sim_pid" 2> /dev/null
	if ! wait_for 10 eval '! kill -0 "$_sim_pid" 2> /dev/null'; then
		diag "smp-sim ignored SIGTERM for 10 s; killing it"
		kill -KILL "$_sim_pid" 2> /dev/null
		rc=1
	fi
	wait "$_sim_pid" 2> /dev/null || rc=$?
	_sim_pid=
	return "$rc"
}

# sim_ctl SOCKET COMMAND...: one line to smp-sim's --control socket; prints
# the reply line and succeeds when it starts with "ok".
sim_ctl() {
	local sock="$1"
	shift
	/usr/bin/python3 - "$sock" "$*" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
line = buf.decode(errors="replace").strip()
print(line)
sys.exit(0 if line.startswith("ok") else 1)
PY
}

# kernel_test_start: the common start of a test of smpusb.ko.  Sets ko,
# tool (kernel/tests/smpusb-tool), ctl (the simulator's control socket),
# dev (/dev/smpusb0), ev (the simulator's event log) and intf (the bound
# interface in sysfs); loads the module with a TCG-sized command timeout,
# starts the simulator as model 2 and waits for the node.  The simulator
# and the module go away when the test exits, even when it bails.
kernel_test_start() {
	ko="$SMP_VM_KO"
	tool="$SMP_SRC/kernel/tests/smpusb-tool"
	[ -x "$tool" ] || bail "$tool not built (make -C kernel)"
	ctl=/tmp/smp-ctl.sock
	dev=/dev/smpusb0
	ev="$SMP_OUT/events.log"
	vm_insmod "$ko" timeout_ms=2000	# TCG is slow; the default is 500
	trap 'stop_sim > /dev/null 2>&1; rmmod smpusb 2> /dev/null' EXIT
	start_sim --model=2 --event-log="$ev" --control="$ctl"
	wait_for 20 test -c "$dev" || bail "$dev did not appear"
	intf=$(ls -d /sys/bus/usb/drivers/smpusb/*:1.0 | head -n1)
}
