# SPDX-License-Identifier: LGPL-2.1-or-later
"""Harness for the smpd integration tests: a private dbus-daemon, polkit
mocked by python-dbusmock's polkitd template, the real smp-sim (with its
control socket and event log) and the real smpd.

Nothing here skips: a missing prerequisite raises, and the test fails.

Environment (the interface other suites use; tests/vm/lib-smpd.sh sets it
inside the VM):

  SMPD_SOURCE_DIR, SMPD_BUILD_DIR   required (meson test sets them)
  SMP_TEST_BACKEND   how smpd reaches the simulated device:
      socket   (default, host) smp-sim --socket, smpd --sim-socket
      chardev  (VM) smp-sim --gadget on dummy_hcd, bound by smpusb.ko
               (loaded by the caller); smpd finds /dev/smpusbN with libudev
      libusb   (VM) the same gadget with no kernel driver bound; smpd
               finds it with libudev and speaks protocol v1 over usbfs
      In both USB modes smpd runs without --sim-socket, libudev needs a
      running systemd-udevd (hotplug), and one device at a time is assumed.
  SMPD_TEST_SLOWDOWN  one factor for every wait (valgrind: 4, TCG: 10-20)
  SMPD_TEST_WRAPPER   command prefix for smpd (valgrind ...)
  SMPD_TEST_LEASE_MS  lease for the test policy (conftest.py)

Sim(tmp, *args) starts smp-sim in the selected mode and returns once smpd
could find the device (socket listening / USB enumerated, driver state as
the mode wants); .ctl(cmd), .status(), .events(), .stop() work the same in
every mode.  Smpd(bus, tmp, sim) starts smpd for it and waits until the
device is attached through the backend of the mode (BACKEND_KIND).
"""

import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import dbus
import dbus.lowlevel
import dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)

SRC = os.environ.get('SMPD_SOURCE_DIR')
BUILD = os.environ.get('SMPD_BUILD_DIR')
if not SRC or not BUILD:
    raise RuntimeError('SMPD_SOURCE_DIR and SMPD_BUILD_DIR must be set (run through meson test)')
SMPD = os.path.join(BUILD, 'daemon', 'smpd')
SIM = os.path.join(BUILD, 'tools', 'smp-sim', 'smp-sim')
DATA = os.path.join(SRC, 'daemon', 'data')
for exe in (SMPD, SIM):
    if not os.access(exe, os.X_OK):
        raise RuntimeError(f'{exe} is missing: build it first')
if not shutil.which('dbus-daemon'):
    raise RuntimeError('dbus-daemon is missing (apt-get install dbus-daemon)')

BUS = 'org.libsmp.Smp1'
ROOT = '/org/libsmp/Smp1'
IMGR = 'org.libsmp.Smp1.Manager'
IDEV = 'org.libsmp.Smp1.Device'
ISES = 'org.libsmp.Smp1.Session'
ERR = 'org.libsmp.Smp1.Error.'
ACTIONS = ['org.libsmp.Smp1.operate', 'org.libsmp.Smp1.configure',
           'org.libsmp.Smp1.override', 'org.libsmp.Smp1.audit']

# Valgrind, sanitizers or TCG slow everything down; scale waits.
SLOW = float(os.environ.get('SMPD_TEST_SLOWDOWN', '1'))

BACKEND = os.environ.get('SMP_TEST_BACKEND', 'socket')
# the Backend property of smpd's device object in each mode
BACKEND_KIND = {'socket': 'socket', 'chardev': 'chardev', 'libusb': 'usb'}.get(BACKEND)
if BACKEND_KIND is None:
    raise RuntimeError(f'SMP_TEST_BACKEND={BACKEND!r}: want socket, chardev or libusb')
USB = BACKEND != 'socket'
SMP_VID, SMP_PID = '1209', '0001'


_libc = ctypes.CDLL(None, use_errno=True)

# While its needle runs a claimant must call Heartbeat() from its main loop
# at least every ClientTimeoutMs (500 ms; docs/dbus.md "When the needle
# runs"); Client below does so every HEARTBEAT_MS while pump() runs the
# GLib main loop, as an application does.  The claimant of most tests is
# this process, and the claimant processes the
# tests start inherit its scheduling: real-time, below smpd (10) and
# smp-sim (20), as on a test machine loaded with VMs a normal process can
# wait longer than that for a CPU (measured: 260 ms at load 16 on 2 cores,
# 1 ms with this).  Tests run as root; a refusal fails them.
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(5))
except PermissionError:
    raise RuntimeError('these tests drive smpd in real time and need SCHED_FIFO: run them '
                       'as root (or with CAP_SYS_NICE); the pure unit tests need neither: '
                       'meson test --suite unit (docs/hacking.md)') from None


def shipped_setting(name):
    """A setting of the shipped daemon/data/smpd.conf (its value, an int)."""
    with open(os.path.join(DATA, 'smpd.conf')) as f:
        for line in f:
            if line.startswith(name + '='):
                return int(line.split('=', 1)[1])
    raise AssertionError(f'{name} is not in daemon/data/smpd.conf')


# ClientTimeoutMs of the test policy (conftest.py): the shipped one, or
# the lease of the valgrind run; a heartbeat every quarter of it (dbus.md).
CLIENT_TIMEOUT_MS = int(os.environ.get('SMPD_TEST_LEASE_MS') or shipped_setting('ClientTimeoutMs'))
HEARTBEAT_MS = CLIENT_TIMEOUT_MS // 4


def send_heartbeat(conn, path):
    """One Heartbeat() to the device at path, expecting no reply (no
    NotClaimed comes back for a device this connection has not claimed)."""
    msg = dbus.lowlevel.MethodCallMessage(BUS, path, IDEV, 'Heartbeat')
    msg.set_no_reply(True)
    conn.send_message(msg)


def heartbeat(conn, paths, period_ms=None):
    """Send a Heartbeat to every device of paths (a list, may grow) every
    period_ms from the GLib main loop, for as long as the loop runs: a
    claimant whose main loop stops stops sending.  Returns the source id."""
    def tick():
        try:
            for p in list(paths):
                send_heartbeat(conn, p)
        except dbus.exceptions.DBusException:
            pass            # the connection is closed: nothing to prove
        return True
    return GLib.timeout_add(period_ms or HEARTBEAT_MS, tick)


def _die_with_parent():
    """preexec_fn: nothing we start outlives the test run (PR_SET_PDEATHSIG)."""
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def wait_for(pred, timeout=5.0, what='condition'):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        pump(0.02 * SLOW)


def pump(seconds):
    """Run the GLib main loop (signal delivery, and the Heartbeat calls that
    a claimant owes while its needle runs) for a while.
    Blocks in poll() until something arrives: a process that wakes every
    few ms to look counts as CPU-bound to the scheduler and, on a loaded
    machine, can wait hundreds of ms for its turn (where smpd would take
    the claimant for hung)."""
    ctx = GLib.MainContext.default()
    done = []
    src = GLib.timeout_add(max(0, int(seconds * 1000)), lambda: done.append(1) and False)
    try:
        while not done:
            ctx.iteration(True)
    finally:
        if not done:
            GLib.source_remove(src)
    while ctx.pending():
        ctx.iteration(False)


class PrivateBus:
    def __init__(self, tmp, strict=False, smpd_conf=None):
        """strict: method calls are denied unless a policy allows them, as
        on Debian's system bus (system.conf), with the holes polkit's own
        file punches; smpd_conf: the smpd policy file to install (default:
        the shipped one)."""
        conf = os.path.join(tmp, 'bus.conf')
        with open(os.path.join(SRC, 'build-aux', 'private-system-bus.conf')) as f:
            text = f.read()
        if strict:
            text, n = re.subn(r'<allow send_type="method_call"/>',
                              '<deny send_type="method_call"/>\n'
                              '    <allow send_destination="org.freedesktop.PolicyKit1"/>', text)
            assert n == 1, 'the private bus allows every method call by default'
        with open(conf, 'w') as f:
            f.write(text)
        os.makedirs(os.path.join(tmp, 'system.d'), exist_ok=True)
        # smpd's own deny-by-default policy file, as installed
        shutil.copy(smpd_conf or os.path.join(DATA, 'org.libsmp.Smp1.conf'),
                    os.path.join(tmp, 'system.d', 'org.libsmp.Smp1.conf'))
        r, w = os.pipe()
        self.proc = subprocess.Popen(['dbus-daemon', '--config-file=' + conf,
                                      '--address=unix:dir=' + tmp, '--nofork',
                                      '--print-address=%d' % w], pass_fds=(w,),
                                     stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        os.close(w)
        with os.fdopen(r) as f:
            self.address = f.readline().strip()
        if not self.address:
            raise RuntimeError('dbus-daemon did not start')
        os.environ['DBUS_SYSTEM_BUS_ADDRESS'] = self.address

    def connect(self):
        return dbus.bus.BusConnection(self.address)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Polkit:
    """python-dbusmock's polkitd template on the private bus."""

    def __init__(self, bus):
        self.bus = bus
        self.proc = None
        self.start()

    def start(self):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address)
        self.proc = subprocess.Popen(['/usr/bin/python3', '-m', 'dbusmock', '--system',
                                      '--template', 'polkitd'], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        c = self.bus.connect()
        wait_for(lambda: c.name_has_owner('org.freedesktop.PolicyKit1'), 10, 'polkit mock')
        self.mock = dbus.Interface(c.get_object('org.freedesktop.PolicyKit1',
                                                '/org/freedesktop/PolicyKit1/Authority'),
                                   'org.freedesktop.DBus.Mock')

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def allow(self, actions):
        self.mock.SimulateHang(False)
        self.mock.SimulateHangActions(dbus.Array([], signature='s'))
        self.mock.ReleaseHangingCalls()
        self.mock.AllowUnknown(False)
        self.mock.SetAllowed(dbus.Array(actions, signature='s'))

    def allow_all(self):
        self.allow(ACTIONS)

    def hang(self, actions):
        self.mock.SimulateHangActions(dbus.Array(actions, signature='s'))


class Sim:
    def __init__(self, tmp, *args, socket=False):
        """socket: the socket transport even in a USB mode (a second device
        beside the gadget: the guest has one UDC)."""
        self.usb = USB and not socket
        self.sock = None if self.usb else self.socket_path(tmp)
        self.ctl_path = os.path.join(tmp, 'ctl.sock')
        self.log = os.path.join(tmp, 'sim.log')
        self.stderr_path = os.path.join(tmp, 'sim.stderr')
        transport = ['--gadget'] if self.usb else ['--socket=' + self.sock]
        # The simulated firmware keeps real time like a device's MCU; on a
        # loaded test machine that takes real-time scheduling (tests run as root).
        with open(self.stderr_path, 'a') as err:
            self.proc = subprocess.Popen(['chrt', '-f', '20', SIM, *transport,
                                          '--control=' + self.ctl_path, '--event-log=' + self.log, *args],
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         preexec_fn=_die_with_parent)
        try:
            if self.usb:
                wait_for(lambda: self.proc.poll() is not None or
                         (os.path.exists(self.ctl_path) and usb_ready()), 15, 'smp-sim gadget enumerated')
            else:
                wait_for(lambda: self.proc.poll() is not None or
                         (os.path.exists(self.ctl_path) and os.path.exists(self.sock)), 5, 'smp-sim')
            if self.proc.poll() is not None:
                raise AssertionError(f'smp-sim exited with {self.proc.returncode}: ' + self.read_stderr())
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def socket_path(tmp):
        """Where Sim(tmp) serves the socket transport (socket mode)."""
        return os.path.join(tmp, 'sim.sock')

    def read_stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def ctl(self, line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10 * SLOW)
            s.connect(self.ctl_path)
            s.sendall((line + '\n').encode())
            buf = b''
            while not buf.endswith(b'\n'):
                d = s.recv(4096)
                if not d:
                    break
                buf += d
        reply = buf.decode().strip()
        if not reply.startswith('ok'):
            raise AssertionError(f'smp-sim control "{line}": {reply}')
        return reply

    def status(self):
        fields = {}
        for kv in self.ctl('status').split()[1:]:
            k, _, v = kv.partition('=')
            fields[k] = v
        return fields

    def events(self):
        with open(self.log) as f:
            return [line.strip() for line in f]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError('smp-sim did not stop on SIGTERM')
        if self.usb:
            # the gadget is gone: the next test starts on a bare bus
            wait_for(lambda: usb_device() is None, 15, 'the simulated USB device gone')


def usb_device():
    """sysfs directory of the simulated 1209:0001 device, None if absent."""
    base = '/sys/bus/usb/devices'
    for name in os.listdir(base):
        d = os.path.join(base, name)
        try:
            with open(os.path.join(d, 'idVendor')) as f:
                vid = f.read().strip()
            with open(os.path.join(d, 'idProduct')) as f:
                pid = f.read().strip()
        except OSError:
            continue
        if (vid, pid) == (SMP_VID, SMP_PID):
            return d
    return None


def usb_interface_driver(dev):
    """Driver bound to interface 0 of the device ('' if none, None if the
    interface does not exist yet)."""
    intf = os.path.join(dev, os.path.basename(dev) + ':1.0')
    if not os.path.isdir(intf):
        return None
    try:
        return os.path.basename(os.readlink(os.path.join(intf, 'driver')))
    except OSError:
        return ''


def smpusb_loaded():
    with open('/proc/modules') as f:
        return any(line.split()[0] == 'smpusb' for line in f)


def usb_ready():
    """The simulated device is where the selected backend needs it: bound to
    smpusb with its /dev/smpusbN (chardev) or enumerated with no driver on
    its interface (libusb)."""
    dev = usb_device()
    if dev is None:
        return False
    drv = usb_interface_driver(dev)
    if BACKEND == 'chardev':
        if not smpusb_loaded():
            raise AssertionError('SMP_TEST_BACKEND=chardev: smpusb.ko is not loaded')
        if drv != 'smpusb':
            return False
        usbmisc = os.path.join(dev, os.path.basename(dev) + ':1.0', 'usbmisc')
        return any(os.path.exists('/dev/' + n) for n in (os.listdir(usbmisc) if os.path.isdir(usbmisc) else []))
    # "usbfs" is a program's libusb claim: a running smpd that has already
    # taken the device (hotplug) is where the libusb backend wants it.
    if drv and drv != 'usbfs':
        raise AssertionError(f'SMP_TEST_BACKEND=libusb: interface bound to {drv} (unload smpusb)')
    return drv in ('', 'usbfs')



def start_through_relatch(d, clear, timeout=5.0):
    """Device.Start, clearing again while smpd answers FaultLatched: through
    the kernel path under TCG, telemetry queued before a ClearFault can
    latch the old fault again (fail-safe: nothing runs).  clear() clears
    it; returns how many times that happened, so callers report it."""
    relatched = 0
    deadline = time.monotonic() + timeout * SLOW
    while True:
        try:
            d.Start()
            return relatched
        except dbus.exceptions.DBusException as e:
            if e.get_dbus_name() != ERR + 'FaultLatched' or time.monotonic() > deadline:
                raise
            relatched += 1
            pump(0.1)
            clear()

class Smpd:
    def __init__(self, bus, tmp, sim=None, config_dir=None, check=True, sim_socket=None,
                 more_sims=()):
        """sim: wait for its device (check=True); sim_socket: the socket to
        attach (default: the sim's, socket mode); more_sims: further Sims
        (socket mode) attached too and waited for; USB devices are found
        through libudev in every mode."""
        self.bus = bus
        self.tmp = tmp
        self.config_dir = config_dir or os.path.join(tmp, 'conf')
        self.state_dir = os.path.join(tmp, 'state')
        self.stderr_path = os.path.join(tmp, 'smpd.stderr')
        args = [SMPD, '--bus-address=' + bus.address, '--config-dir=' + self.config_dir,
                '--state-dir=' + self.state_dir,
                '--audit-key-file=' + os.path.join(tmp, 'audit.key')]
        sim_socket = sim_socket or (sim.sock if sim else None)
        if sim_socket:
            args.append('--sim-socket=' + sim_socket)
        for other in more_sims:
            args.append('--sim-socket=' + other.sock)
        wrapper = os.environ.get('SMPD_TEST_WRAPPER')
        if wrapper:
            args = wrapper.split() + args
        # as smpd.service does (CPUSchedulingPolicy=fifo): the lease
        # renewal is a real-time duty (H6)
        args = ['chrt', '-f', '10'] + args
        self.stderr = open(self.stderr_path, 'a')
        self.proc = subprocess.Popen(args, stderr=self.stderr, preexec_fn=_die_with_parent)
        self.conn = bus.connect()
        if check:
            try:
                wait_for(lambda: self.conn.name_has_owner(BUS) or self.proc.poll() is not None,
                         15, 'smpd on the bus')
            except AssertionError:
                self.kill()
                raise
            if self.proc.poll() is not None:
                raise AssertionError('smpd exited: ' + self.read_stderr())
            if not self.conn.name_has_owner(BUS):
                self.kill()
                raise AssertionError('smpd did not take its bus name: ' + self.read_stderr())
            if sim:
                try:
                    wait_for(lambda: len(self.manager().ListDevices()) == 1 + len(more_sims), 10,
                             'devices attached')
                    # sim through the mode's backend, more_sims through the socket
                    kinds = sorted(str(self.device_prop('Backend', str(p)))
                                   for p in self.manager().ListDevices())
                    want = sorted([BACKEND_KIND] + ['socket'] * len(more_sims))
                    if kinds != want:
                        raise AssertionError(f'devices attached through the {kinds} backends, '
                                             f'SMP_TEST_BACKEND={BACKEND} wants {want}')
                except AssertionError:
                    self.kill()
                    raise

    def read_stderr(self):
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def manager(self, conn=None):
        return dbus.Interface((conn or self.conn).get_object(BUS, ROOT), IMGR)

    def device_path(self):
        return str(self.manager().ListDevices()[0])

    def device_prop(self, name, path=None):
        obj = self.conn.get_object(BUS, path or self.device_path())
        return dbus.Interface(obj, 'org.freedesktop.DBus.Properties').Get(IDEV, name)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError('smpd did not stop on SIGTERM')
        self.stderr.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


class Client:
    """One D-Bus connection acting as one application."""

    def __init__(self, bus, heartbeats=True):
        """heartbeats: send Heartbeat() to every device it used, as a
        claimant owes while its needle runs, from the main loop (pump())."""
        self.conn = bus.connect()
        self.mgr = dbus.Interface(self.conn.get_object(BUS, ROOT), IMGR)
        self.paths = []
        self.hb_source = heartbeat(self.conn, self.paths) if heartbeats else None

    def dev(self, path):
        if str(path) not in self.paths:
            self.paths.append(str(path))
        return dbus.Interface(self.conn.get_object(BUS, path), IDEV)

    def ses(self, path):
        return dbus.Interface(self.conn.get_object(BUS, path), ISES)

    def prop(self, path, iface, name):
        p = dbus.Interface(self.conn.get_object(BUS, path), 'org.freedesktop.DBus.Properties')
        return p.Get(iface, name)

    def close(self):
        if self.hb_source is not None:
            GLib.source_remove(self.hb_source)
            self.hb_source = None
        self.conn.close()


def metadata(client='client-1', zone='temples', lot='PIG-LOT-1', **extra):
    md = {
        'ClientPseudonym': dbus.String(client),
        'Operator': dbus.String('op-1'),
        'Zone': dbus.String(zone),
        'PatchTestTime': dbus.Int64(int(time.time()) - 48 * 3600),
    }
    if lot is not None:
        md['PigmentLot'] = dbus.String(lot)
    md.update(extra)
    return dbus.Dictionary(md, signature='sv')


def params(voltage=8000, current=1000, rate=12000, depth=800):
    d = {}
    for k, v in (('Voltage', voltage), ('Current', current), ('StrokeRate', rate), ('Depth', depth)):
        if v is not None:
            d[k] = dbus.UInt32(v)
    return dbus.Dictionary(d, signature='sv')


def expect_error(name, fn, *args, contains=None, **kw):
    try:
        fn(*args, **kw)
    except dbus.exceptions.DBusException as e:
        if e.get_dbus_name() != name:
            raise AssertionError(f'expected {name}, got {e.get_dbus_name()}: {e.get_dbus_message()}')
        if contains and contains not in e.get_dbus_message():
            raise AssertionError(f'"{e.get_dbus_message()}" does not contain "{contains}"')
        return e.get_dbus_message()
    raise AssertionError(f'expected {name}, the call succeeded')


def write_config(dirpath, dropins=None, main=None):
    os.makedirs(os.path.join(dirpath, 'limits.d'), exist_ok=True)
    if main is None:
        shutil.copy(os.path.join(DATA, 'smpd.conf'), os.path.join(dirpath, 'smpd.conf'))
    else:
        with open(os.path.join(dirpath, 'smpd.conf'), 'w') as f:
            f.write(main)
    for name, text in (dropins or {}).items():
        with open(os.path.join(dirpath, 'limits.d', name), 'w') as f:
            f.write(text)


def new_tmp():
    return tempfile.mkdtemp(prefix='smpd-test-')
