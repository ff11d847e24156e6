#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""How late a normal-priority GUI-class claimant's Heartbeat comes on a
loaded workstation (issue 14 item 6; docs/safety.md "ClientTimeoutMs").

smp-sim and smpd at real-time priority as installed (smp-sim FIFO 20,
smpd FIFO 10); everything else at normal priority: the bus daemon, and a
PyGObject (GDBus) claimant like a GTK application, with a 60 Hz "frame"
callback doing ~3 ms of work and the Telemetry signal subscribed, sending
Heartbeat every ClientTimeoutMs/4 from its GLib main loop.  The load:
two CPU hogs per core and three bursty processes (20 ms of work, 10 ms
of sleep), all at nice 0.

Phase 1 (measure): ClientTimeoutMs=1000 (the most the policy allows), so
that nothing stops the run; every Heartbeat is sent asynchronously with
a reply expected.  The gap between two heartbeats as the bus routes them
to smpd (a dbus-monitor at smpd's priority stamps them) is the figure the
timeout must cover; smpd received heartbeat i between its send s_i and
its reply r_i, so r_{i+1} - s_i is an upper bound of that gap that needs
no monitor.  Also the interval of the main loop's timer (s_{i+1} - s_i).

Phase 2 (check): the shipped ClientTimeoutMs, the same claimant and
load: spurious client-unresponsive stops are counted; then the
claimant's main loop hangs (GDBus's thread still serving the bus) and the
time to the stop is measured on the device clock against the documented
bound RenewMs + ClientTimeoutMs.

Prints JSON.  Environment: BENCH_HEARTBEAT_SECONDS (per phase, default
60), BENCH_HEARTBEAT_LOAD (0: no load, for a baseline),
BENCH_HEARTBEAT_TIMEOUT_MS (phase 2's ClientTimeoutMs instead of the
shipped one).
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ['SMPD_SOURCE_DIR'], 'tests', 'daemon'))

import smpdtest as T  # noqa: E402

SECONDS = float(os.environ.get('BENCH_HEARTBEAT_SECONDS', '60'))
LOAD = os.environ.get('BENCH_HEARTBEAT_LOAD', '1') != '0'
SHIPPED_TIMEOUT_MS = None     # read from daemon/data/smpd.conf below
RENEW_MS = 50

# smpdtest makes its importer real-time (the tests' claimant); a
# workstation's bus daemon and applications are not: everything this
# starts, except smp-sim and smpd (chrt), runs at normal priority.
os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


CLAIMANT = r'''
import json, os, signal, sys, time
from gi.repository import Gio, GLib
address, dev, hb_ms, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
conn = Gio.DBusConnection.new_for_address_sync(
    address,
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
    None, None)
def call(path, iface, method, args=None):
    return conn.call_sync('org.libsmp.Smp1', path, iface, method, args, None,
                          Gio.DBusCallFlags.NONE, 10000, None)
D = 'org.libsmp.Smp1.Device'
call(dev, D, 'Claim')
md = {'ClientPseudonym': GLib.Variant('s', 'bench-hb'), 'Operator': GLib.Variant('s', 'op-1'),
      'Zone': GLib.Variant('s', 'temples'), 'PigmentLot': GLib.Variant('s', 'PIG-LOT-1'),
      'PatchTestTime': GLib.Variant('x', int(time.time()) - 48 * 3600)}
ses = call('/org/libsmp/Smp1', 'org.libsmp.Smp1.Manager', 'BeginSession',
           GLib.Variant('(oa{sv})', (dev, md))).unpack()[0]
p = {'Voltage': GLib.Variant('u', 8000), 'Current': GLib.Variant('u', 1000),
     'StrokeRate': GLib.Variant('u', 12000), 'Depth': GLib.Variant('u', 800)}
call(dev, D, 'SetParameters', GLib.Variant('(a{sv})', (p,)))
sent, replied, faults, frames = [], {}, [], []
def on_fault(c, sender, path, iface, member, params):
    faults.append(list(params.unpack()))
def on_telemetry(c, sender, path, iface, member, params):
    s = params.unpack()[0]
    _ = sum(range(2000))            # "draw" the values
conn.signal_subscribe(None, D, 'Fault', dev, None, Gio.DBusSignalFlags.NONE, on_fault)
conn.signal_subscribe(None, D, 'Telemetry', dev, None, Gio.DBusSignalFlags.NONE, on_telemetry)
def frame():
    t = time.monotonic()
    frames.append(t)
    while time.monotonic() - t < 0.003:   # a frame's layout and paint
        pass
    return True
def heartbeat():
    i = len(sent)
    sent.append(time.monotonic())
    def done(c, res):
        try:
            c.call_finish(res)
        except GLib.Error:
            pass
        replied[i] = time.monotonic()
    conn.call('org.libsmp.Smp1', dev, D, 'Heartbeat', None, None, Gio.DBusCallFlags.NONE,
              10000, None, done)
    return True
GLib.timeout_add(16, frame)
GLib.timeout_add(hb_ms, heartbeat)
hung = []
def hang():
    hung.append(time.monotonic())
    print('hung', flush=True)
    time.sleep(3)                   # the main loop hangs; GDBus's thread does not
    return False
GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR1, hang)
loop = GLib.MainLoop()
def end():
    loop.quit()
    return False
call(dev, D, 'Start')
print('running', flush=True)
GLib.timeout_add(int(seconds * 1000), end)
loop.run()
state = call(dev, 'org.freedesktop.DBus.Properties', 'Get', GLib.Variant('(ss)', (D, 'State'))).unpack()[0]
try:
    call(dev, D, 'Stop')
except GLib.Error:
    pass
call(ses, 'org.libsmp.Smp1.Session', 'EndSession')
call(dev, D, 'Release')
print(json.dumps({'sent': sent, 'replied': [replied.get(i) for i in range(len(sent))],
                  'frames': frames, 'faults': faults, 'state': state}), flush=True)
'''

HOG = 'while True: pass'
BURSTY = '''
import time
while True:
    t = time.monotonic()
    while time.monotonic() - t < 0.020:
        pass
    time.sleep(0.010)
'''


def start_load():
    procs = []
    if not LOAD:
        return procs
    for _ in range(2 * os.cpu_count()):
        procs.append(subprocess.Popen([sys.executable, '-c', HOG], preexec_fn=T._die_with_parent))
    for _ in range(3):
        procs.append(subprocess.Popen([sys.executable, '-c', BURSTY], preexec_fn=T._die_with_parent))
    time.sleep(1.0)
    return procs


def stop_load(procs):
    for p in procs:
        p.kill()
        p.wait()


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def dist(values_s):
    ms = [v * 1000 for v in values_s]
    return {'n': len(ms), 'p50_ms': round(pct(ms, 50), 2), 'p99_ms': round(pct(ms, 99), 2),
            'p99.9_ms': round(pct(ms, 99.9), 2), 'max_ms': round(max(ms), 2)}


class Rig:
    def __init__(self, client_timeout_ms):
        self.tmp = T.new_tmp()
        self.bus = T.PrivateBus(self.tmp)
        self.polkit = T.Polkit(self.bus)
        self.polkit.allow_all()
        T.write_config(os.path.join(self.tmp, 'conf'),
                       {'00-bench.conf': f'[Daemon]\nTelemetryHz=10\nClientTimeoutMs={client_timeout_ms}\n'})
        self.sim = T.Sim(self.tmp)
        self.smpd = T.Smpd(self.bus, self.tmp, self.sim)
        self.dev = self.smpd.device_path()

    def claimant(self, hb_ms, seconds):
        p = subprocess.Popen([sys.executable, '-c', CLAIMANT, self.bus.address, self.dev, str(hb_ms),
                              str(seconds)], stdout=subprocess.PIPE, text=True,
                             preexec_fn=T._die_with_parent)
        line = p.stdout.readline().strip()
        if line != 'running':
            p.kill()
            raise RuntimeError(f'the claimant did not start: {line!r}')
        return p

    def close(self):
        self.smpd.kill()
        self.sim.stop()
        self.polkit.stop()
        self.bus.stop()
        subprocess.run(['rm', '-rf', self.tmp])


def phase_measure():
    rig = Rig(1000)
    try:
        # smpd's view: a bus monitor at smpd's priority stamps each
        # Heartbeat when the bus daemon routes it to smpd
        mon_log = open(os.path.join(rig.tmp, 'monitor.log'), 'w+')
        mon = subprocess.Popen(['chrt', '-f', '10', 'dbus-monitor', '--address', rig.bus.address,
                                "type='method_call',member='Heartbeat'"],
                               stdout=mon_log, stderr=subprocess.DEVNULL, text=True,
                               preexec_fn=T._die_with_parent)
        load = start_load()
        try:
            p = rig.claimant(SHIPPED_TIMEOUT_MS // 4, SECONDS)
            out = json.loads(p.stdout.readline())
            p.wait()
        finally:
            stop_load(load)
            time.sleep(0.5)
            mon.terminate()
            mon.wait()
            mon_log.seek(0)
            arrived = [float(line.split('time=')[1].split()[0]) for line in mon_log
                       if line.startswith('method call time=') and 'member=Heartbeat' in line]
            mon_log.close()
    finally:
        rig.close()
    sent, replied = out['sent'], out['replied']
    while replied and replied[-1] is None:     # sent as the loop ended
        sent.pop()
        replied.pop()
    if None in replied:
        raise RuntimeError(f'{replied.count(None)} heartbeats never answered')
    timer = [b - a for a, b in zip(sent, sent[1:])]
    seen = [replied[i + 1] - sent[i] for i in range(len(sent) - 1)]
    rtt = [r - s for s, r in zip(sent, replied)]
    frames = [b - a for a, b in zip(out['frames'], out['frames'][1:])]
    if len(arrived) < len(sent) - 1:
        raise RuntimeError(f'the bus monitor saw {len(arrived)} of {len(sent)} heartbeats')
    at_bus = [b - a for a, b in zip(arrived, arrived[1:])]
    return {'heartbeat_period_ms': SHIPPED_TIMEOUT_MS // 4,
            'timer_interval': dist(timer), 'gap_routed_to_smpd': dist(at_bus),
            'gap_at_smpd_upper_bound': dist(seen),
            'heartbeat_round_trip': dist(rtt), 'frame_interval': dist(frames),
            'faults': out['faults'], 'state_at_end': out['state']}


def phase_check():
    timeout_ms = int(os.environ.get('BENCH_HEARTBEAT_TIMEOUT_MS') or SHIPPED_TIMEOUT_MS)
    rig = Rig(timeout_ms)
    try:
        load = start_load()
        try:
            p = rig.claimant(timeout_ms // 4, SECONDS + 30)
            time.sleep(SECONDS)
            state = rig.smpd.device_prop('State', rig.dev)
            fault = [str(x) for x in rig.smpd.device_prop('Fault', rig.dev)]
            n = len(rig.sim.events())
            t0 = int(rig.sim.status()['t_us'])
            p.send_signal(signal.SIGUSR1)
            stop_ms = None
            if p.stdout.readline().strip() == 'hung' and state == 'running':
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and stop_ms is None:
                    stops = [e for e in rig.sim.events()[n:] if 'event=STATE from=RUNNING' in e]
                    if stops:
                        stop_ms = (int(stops[0].split()[0].partition('=')[2]) - t0) / 1000
                    time.sleep(0.01)
            hang_fault = [str(x) for x in rig.smpd.device_prop('Fault', rig.dev)]
            p.kill()
            p.wait()
        finally:
            stop_load(load)
    finally:
        rig.close()
    return {'client_timeout_ms': timeout_ms, 'seconds': SECONDS,
            'spurious_stop': state != 'running', 'state_before_hang': state, 'fault_before_hang': fault,
            'hang_stop_ms': stop_ms, 'hang_fault': hang_fault[0],
            'bound_ms': RENEW_MS + timeout_ms + 1}


def main():
    global SHIPPED_TIMEOUT_MS, RENEW_MS
    SHIPPED_TIMEOUT_MS = T.shipped_setting('ClientTimeoutMs')
    RENEW_MS = T.shipped_setting('RenewMs')
    with open('/proc/loadavg') as f:
        load_before = f.read().split()[0]
    res = {'load': LOAD, 'cpus': os.cpu_count(), 'loadavg_before': load_before,
           'measure': phase_measure(), 'check': phase_check()}
    print(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
