# SPDX-License-Identifier: LGPL-2.1-or-later
"""Harness for the smpd integration tests: a private dbus-daemon, polkit
mocked by python-dbusmock's polkitd template, the real smp-sim on its
socket (with its control socket and event log) and the real smpd.

Nothing here skips: a missing prerequisite raises, and the test fails.
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import dbus
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

# Valgrind or sanitizers slow everything down; scale waits.
SLOW = float(os.environ.get('SMPD_TEST_SLOWDOWN', '1'))


_libc = ctypes.CDLL(None, use_errno=True)


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
        pump(0.02)


def pump(seconds):
    """Run the GLib main loop (signal delivery) for a while."""
    ctx = GLib.MainContext.default()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while ctx.pending():
            ctx.iteration(False)
        time.sleep(0.005)
    while ctx.pending():
        ctx.iteration(False)


class PrivateBus:
    def __init__(self, tmp):
        conf = os.path.join(tmp, 'bus.conf')
        with open(conf, 'w') as f:
            f.write(f'''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:dir={tmp}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
  </policy>
  <includedir>{tmp}/system.d</includedir>
</busconfig>
''')
        os.makedirs(os.path.join(tmp, 'system.d'), exist_ok=True)
        # smpd's own deny-by-default policy file, as installed
        shutil.copy(os.path.join(DATA, 'org.libsmp.Smp1.conf'), os.path.join(tmp, 'system.d'))
        r, w = os.pipe()
        self.proc = subprocess.Popen(['dbus-daemon', '--config-file=' + conf, '--nofork',
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
    def __init__(self, tmp, *args):
        self.sock = os.path.join(tmp, 'sim.sock')
        self.ctl_path = os.path.join(tmp, 'ctl.sock')
        self.log = os.path.join(tmp, 'sim.log')
        # The simulated firmware keeps real time like a device's MCU; on a
        # loaded test machine that takes real-time scheduling (tests run as root).
        self.proc = subprocess.Popen(['chrt', '-f', '20', SIM, '--socket=' + self.sock,
                                      '--control=' + self.ctl_path, '--event-log=' + self.log, *args],
                                     stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        wait_for(lambda: os.path.exists(self.ctl_path) and os.path.exists(self.sock), 5, 'smp-sim')

    def ctl(self, line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
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
            self.proc.wait()


class Smpd:
    def __init__(self, bus, tmp, sim=None, config_dir=None, check=True):
        self.bus = bus
        self.tmp = tmp
        self.config_dir = config_dir or os.path.join(tmp, 'conf')
        self.state_dir = os.path.join(tmp, 'state')
        self.stderr_path = os.path.join(tmp, 'smpd.stderr')
        args = [SMPD, '--bus-address=' + bus.address, '--config-dir=' + self.config_dir,
                '--state-dir=' + self.state_dir,
                '--audit-key-file=' + os.path.join(tmp, 'audit.key')]
        if sim:
            args.append('--sim-socket=' + sim.sock)
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
                    wait_for(lambda: len(self.manager().ListDevices()) == 1, 10, 'device attached')
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

    def __init__(self, bus):
        self.conn = bus.connect()
        self.mgr = dbus.Interface(self.conn.get_object(BUS, ROOT), IMGR)

    def dev(self, path):
        return dbus.Interface(self.conn.get_object(BUS, path), IDEV)

    def ses(self, path):
        return dbus.Interface(self.conn.get_object(BUS, path), ISES)

    def prop(self, path, iface, name):
        p = dbus.Interface(self.conn.get_object(BUS, path), 'org.freedesktop.DBus.Properties')
        return p.Get(iface, name)

    def close(self):
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
