#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Safety timing and telemetry figures for `make bench` (build-aux/bench.sh),
host (socket) path, each next to a baseline measured in the same run;
prints one JSON object.  Not a test: nothing here asserts a timing, but
every repetition is checked to have happened the way it is counted (the
stop came from smpd, through the path named), or the run fails.

All latencies are on the device's clock: the simulator's event log stamps
every line with t_us, its firmware time.

  reaction: a fault appears in the device's telemetry -> STOP arrives at
      the device, through smpd.  The fault is an over-temperature the
      device itself tolerates (56 degC: above the policy's
      MaxTemperatureC=55, below the firmware's 65 degC trip), set through
      the control socket at device time t0 (its CONTROL event); the
      telemetry record of the next 1 ms tick carries it.  Measured: t0 ->
      the STOP command's CMD event.  Baseline: the raw command round trip
      over the same socket (bench-rtt, SET_PARAMS), same run.
  dead-man, owner killed: a client process that claimed the device and
      started the needle is SIGKILLed at device time t0 (the control
      socket's status read just before the kill, an upper bound by one
      control round trip) -> STOP at the device (smpd sees the owner leave
      the bus).  Baseline: the raw command round trip.
  dead-man, lease missed: smpd is SIGSTOPped while the needle runs -> the
      firmware's lease runs out and it stops itself (through smpusb the
      driver's own lease timer may send STOP first on a slow guest;
      counted as stopped_by_driver).  Measured: the last LEASE_RENEW ->
      the STATE change leaving RUNNING.  Baseline: the lease (LeaseMs);
      late_us (deadline -> the firmware's stop) is kept in the raw figures.
  control round trip: libsmp's smp_device_set_parameters() -> D-Bus ->
      smpd -> the device, BENCH_COUNT times (bench-libsmp), every call
      found applied in the event log.  Baseline: the raw round trip.
  telemetry: the needle runs for BENCH_TELEMETRY_SECONDS (default 60) at
      1 kHz through smpd; records the device sent, dropped by the device
      (host behind) and missed by smpd (sequence gaps, the Telemetry
      signals' Dropped); smpd's VmRSS/VmHWM after the run against VmRSS of
      the same smpd idle, just started.

Environment: SMPD_SOURCE_DIR, SMPD_BUILD_DIR, BENCH_REACTION_COUNT (50),
BENCH_DEADMAN_COUNT (15), BENCH_TELEMETRY_SECONDS (60).
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

SRC = os.environ.get('SMPD_SOURCE_DIR')
if not SRC:
    raise RuntimeError('SMPD_SOURCE_DIR and SMPD_BUILD_DIR must be set')
sys.path.insert(0, os.path.join(SRC, 'tests', 'daemon'))

import dbus  # noqa: E402

import smpdtest as T  # noqa: E402

# smpdtest's USB modes (SMP_TEST_BACKEND=chardev|libusb, in the VM)
BACKEND = getattr(T, 'BACKEND', 'socket')
USB = BACKEND != 'socket'

N_REACT = int(os.environ.get('BENCH_REACTION_COUNT', '50'))
N_DEADMAN = int(os.environ.get('BENCH_DEADMAN_COUNT', '15'))
TELEMETRY_S = float(os.environ.get('BENCH_TELEMETRY_SECONDS', '60'))
RTT = os.path.join(T.BUILD, 'tests', 'evidence', 'bench-rtt')
LIBSMP = os.path.join(T.BUILD, 'tests', 'evidence', 'bench-libsmp')
# the shipped LeaseMs (daemon/data/smpd.conf); the VM (TCG) needs the
# protocol's longest, as its tests do (SMPD_TEST_LEASE_MS)
LEASE_MS = int(os.environ.get('SMPD_TEST_LEASE_MS', '200'))
N_CONTROL = int(os.environ.get('BENCH_COUNT', '300'))
T_RE = re.compile(r'^t_us=(\d+) ')


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def stats_ms(values):
    return {'n': len(values), 'p50_ms': round(pct(values, 50) / 1000, 3),
            'p99_ms': round(pct(values, 99) / 1000, 3), 'max_ms': round(max(values) / 1000, 3),
            'min_ms': round(min(values) / 1000, 3)}


def t_us(line):
    return int(T_RE.match(line)[1])


def proc_kb(pid, key):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{key} missing from /proc/{pid}/status')


class Bench:
    def __init__(self):
        self.tmp = T.new_tmp()
        self.bus = T.PrivateBus(self.tmp)
        self.polkit = T.Polkit(self.bus)
        self.polkit.allow_all()
        conf = '[Daemon]\nTelemetryHz=10\n'
        if os.environ.get('SMPD_TEST_LEASE_MS'):
            # as the tests do (conftest.py): the claimant's Heartbeat deadline gets
            # the lease's time too, so a TCG guest's slow claimant does not
            # stop the 60 s telemetry run as unresponsive
            conf += (f'LeaseMs={LEASE_MS}\nRenewMs={LEASE_MS // 5}\n'
                     f'ClientTimeoutMs={LEASE_MS}\n')
        T.write_config(os.path.join(self.tmp, 'conf'), {'00-bench.conf': conf})
        self.sim = T.Sim(self.tmp)
        self.smpd = None
        self.cart = 0
        self.serial = 'SIM-X2-000001'
        self.relatched = 0
        self.discarded = 0
        self.driver_stops = 0   # lease missed: stopped by smpusb's own timer

    def close(self):
        if self.smpd:
            if self.smpd.alive():
                os.kill(self.smpd.proc.pid, signal.SIGCONT)
            self.smpd.kill()
        self.sim.stop()
        self.polkit.stop()
        self.bus.stop()

    def fresh_cartridge(self):
        """Single use (H10): every session needs its own."""
        self.cart += 1
        self.sim.ctl(f'cartridge insert id=BENCH-CART-{self.cart:04d} lot=BENCH-LOT')

    def events_after(self, n):
        ev = self.sim.events()
        return ev[n:], len(ev)

    def raw_target(self):
        """What bench-rtt talks to: the socket, the smpusb node, or libusb."""
        if BACKEND == 'socket':
            return self.sim.sock, 'SET_PARAMS round trip, socket'
        if BACKEND == 'chardev':
            nodes = sorted(glob.glob('/dev/smpusb[0-9]*'))
            if len(nodes) != 1:
                raise RuntimeError(f'want one /dev/smpusbN, found {nodes}')
            return nodes[0], 'SMPUSB_IOC_SET_PARAMS ioctl round trip'
        return 'usb:' + self.serial, 'SET_PARAMS round trip, libusb'

    def raw_rtt(self):
        target, what = self.raw_target()
        r = subprocess.run([RTT, target, '300'], capture_output=True, text=True,
                           timeout=120 * T.SLOW)
        if r.returncode != 0:
            raise RuntimeError('bench-rtt: ' + r.stderr)
        out = json.loads(r.stdout)
        out['what'] = what
        return out

    def control(self):
        """libsmp's set_parameters through smpd until applied on the device
        (bench-libsmp; every call checked in the device's event log)."""
        self.fresh_cartridge()
        before = sum(1 for e in self.sim.events() if 'event=PARAMS' in e)
        r = subprocess.run([LIBSMP, self.bus.address, str(N_CONTROL), 'bench-libsmp'],
                           capture_output=True, text=True, timeout=300 * T.SLOW)
        if r.returncode != 0:
            raise RuntimeError('bench-libsmp: ' + r.stderr)
        ev = [e for e in self.sim.events() if 'event=PARAMS' in e][before:]
        if len(ev) != N_CONTROL or 'depth_um=700' not in ev[-1]:
            raise RuntimeError(f'{len(ev)} PARAMS events on the device for {N_CONTROL} calls')
        return json.loads(r.stdout)

    def start(self, d):
        # After a lease expiry smpd may latch the fault again (fail-safe):
        # clear once more and count it.  A host stall (TCG on a busy
        # machine) can also let the lease expire between Start and the
        # first look: the needle stopped safely before anything was
        # measured, so that start is counted as discarded and made again.
        for _ in range(5):
            self.relatched += T.start_through_relatch(d, lambda: self._clear(d))
            # Start returns once the device acknowledged START: RUNNING
            # now, unless something stopped it already
            if self.sim.status()['state'] == 'RUNNING':
                return
            self.discarded += 1
            T.wait_for(lambda: self._clear(d), 3 * T.SLOW, 'fault cleared')
        raise RuntimeError(f'the needle did not stay running after 5 starts '
                           f'({self.discarded} repetitions lost to lease expiries): '
                           'the host is too slow to measure')

    def _repetitions(self, n, lat):
        """One pass per attempt until lat holds n measurements; a repetition a
        host stall spoiled is discarded by the caller, and 2n attempts at most."""
        attempts = 0
        while len(lat) < n:
            attempts += 1
            if attempts > 2 * n:
                raise RuntimeError(f'{self.discarded} of {attempts - 1} repetitions lost to '
                                   'lease expiries: the host is too slow to measure')
            yield

    def reaction(self, c, dev):
        d = c.dev(dev)
        lat = []
        for _ in self._repetitions(N_REACT, lat):
            self.start(d)
            T.pump(0.05)
            mark = len(self.sim.events())
            self.sim.ctl('temp 5600')
            T.wait_for(lambda: self.sim.status()['state'] != 'RUNNING', 3, 'stop on overtemperature')
            self.sim.ctl('temp 3000')
            ev, _ = self.events_after(mark)
            t0 = next(t_us(e) for e in ev if 'event=CONTROL cmd="temp 5600"' in e)
            stop = next((e for e in ev if re.search(r'event=CMD type=(E?STOP) ', e)), None)
            T.wait_for(lambda: str(c.prop(dev, T.IDEV, 'Fault')[0]), 3, 'fault latched')
            kind = str(c.prop(dev, T.IDEV, 'Fault')[0])
            if any('event=LEASE_EXPIRED' in e for e in ev) or stop is None or kind != 'overtemperature':
                # smpd (or the VM under TCG) stalled: the firmware's lease or
                # smpd's telemetry-lost monitor stopped the needle, safely,
                # but this repetition does not measure the reaction to the
                # over-temperature; counted, not used
                self.discarded += 1
                T.wait_for(lambda: self._clear(d), 3 * T.SLOW, 'fault cleared')
                continue
            if not any('event=STATE from=RUNNING to=IDLE reason=' in e for e in ev) or \
                    any('event=FAULT' in e for e in ev):
                raise RuntimeError('the device stopped by itself, not through smpd:\n' + '\n'.join(ev))
            lat.append(t_us(stop) - t0)
            T.wait_for(lambda: str(c.prop(dev, T.IDEV, 'State')) == 'fault', 3, 'fault latched')
            T.wait_for(lambda: self._clear(d), 3, 'fault cleared once cool')
        return lat

    @staticmethod
    def _clear(d):
        try:
            d.ClearFault()
            return True
        except Exception:   # FaultPersists until the motor has cooled
            return False

    def owner_killed(self, dev):
        code = f'''
import sys, time, dbus
sys.path.insert(0, {os.path.join(SRC, 'tests', 'daemon')!r})
import smpdtest as T
conn = dbus.bus.BusConnection({self.bus.address!r})
mgr = dbus.Interface(conn.get_object(T.BUS, T.ROOT), T.IMGR)
d = dbus.Interface(conn.get_object(T.BUS, {dev!r}), T.IDEV)
d.Claim()
mgr.BeginSession({dev!r}, T.metadata(client=sys.argv[1]))
d.SetParameters(T.params())
d.Start()
print('running', flush=True)
time.sleep(600)
'''
        lat = []
        i = 0
        while len(lat) < N_DEADMAN:
            i += 1
            self.fresh_cartridge()
            p = subprocess.Popen(['/usr/bin/python3', '-c', code, f'bench-owner-{i}'],
                                 stdout=subprocess.PIPE, text=True)
            try:
                if p.stdout.readline().strip() != 'running':
                    raise RuntimeError('the owner client did not start the needle')
                T.wait_for(lambda: self.sim.status()['state'] == 'RUNNING', 3, 'running')
                T.pump(0.05)
                mark = len(self.sim.events())
                t0 = int(self.sim.status()['t_us'])
                p.kill()
            finally:
                p.kill()
                p.wait()
                p.stdout.close()
            T.wait_for(lambda: self.sim.status()['state'] == 'IDLE', 3, 'stopped after the owner died')
            ev, _ = self.events_after(mark)
            stop = next(e for e in ev if re.search(r'event=CMD type=(E?STOP) ', e))
            if any('LEASE_EXPIRED' in e for e in ev):
                self.discarded += 1     # a stall before the kill, as above
                if self.discarded > N_DEADMAN + N_REACT:
                    raise RuntimeError('too many repetitions lost to lease expiries')
            else:
                lat.append(t_us(stop) - t0)
            c = T.Client(self.bus)
            T.wait_for(lambda: not c.prop(dev, T.IDEV, 'Claimed'), 3, 'claim released')
            if str(c.prop(dev, T.IDEV, 'Fault')[0]):
                c.dev(dev).Claim()
                T.wait_for(lambda: self._clear(c.dev(dev)), 3, 'fault cleared')
                c.dev(dev).Release()
            c.close()
        return lat

    def lease_missed(self, c, dev):
        d = c.dev(dev)
        lat, late = [], []
        pid = self.smpd.proc.pid
        for _ in self._repetitions(N_DEADMAN, lat):
            self.start(d)
            T.pump(0.1)
            mark = len(self.sim.events())
            if self.sim.status()['state'] != 'RUNNING':
                # a host stall let the lease run out before smpd was
                # stopped: nothing to measure in this repetition
                self.discarded += 1
                if str(c.prop(dev, T.IDEV, 'State')) == 'fault':
                    T.wait_for(lambda: self._clear(d), 3, 'fault cleared')
                continue
            os.kill(pid, signal.SIGSTOP)
            try:
                # the device's own lease (RUNNING -> FAULT), or through
                # smpusb the driver's lease timer, whose STOP can come
                # first when the guest is slow (RUNNING -> IDLE)
                T.wait_for(lambda: self.sim.status()['state'] != 'RUNNING', 3, 'lease expiry')
            finally:
                os.kill(pid, signal.SIGCONT)
            ev_all = self.sim.events()
            ev = ev_all[mark:]
            stop = next(e for e in ev if 'event=STATE from=RUNNING to=' in e)
            if 'reason=LEASE_EXPIRED' in stop:
                exp = next(e for e in ev if 'event=LEASE_EXPIRED' in e)
                late.append(int(re.search(r'late_us=(\d+)', exp)[1]))
            elif 'reason=STOP' in stop:
                self.driver_stops += 1
            else:
                raise RuntimeError('the needle stopped for another reason while smpd was '
                                   'stopped: ' + stop)
            renew = [e for e in ev_all[:ev_all.index(stop)] if 'event=LEASE_RENEW' in e or
                     'event=LEASE_ARM' in e][-1]
            lat.append(t_us(stop) - t_us(renew))
            T.wait_for(lambda: str(c.prop(dev, T.IDEV, 'State')) != 'running', 3, 'stop seen by smpd')
            if str(c.prop(dev, T.IDEV, 'State')) == 'fault':
                T.wait_for(lambda: self._clear(d), 3, 'lease fault cleared')
        return lat, late

    def telemetry(self, c, dev):
        d = c.dev(dev)
        dropped = []
        c.conn.add_signal_receiver(lambda s: dropped.append(int(s.get('Dropped', 0))),
                                   'Telemetry', T.IDEV, path=dev)
        self.start(d)
        st0 = self.sim.ctl('stats')
        mark = len(self.sim.events())
        t0 = time.monotonic()
        while time.monotonic() - t0 < TELEMETRY_S and self.sim.status()['state'] == 'RUNNING':
            T.pump(0.5)
        ran = time.monotonic() - t0
        st1 = self.sim.ctl('stats')
        stopped = self.sim.status()['state'] != 'RUNNING'
        stop_ev = [e for e in self.sim.events()[mark:] if 'event=STATE from=RUNNING' in e]
        why = None
        if stopped:
            T.pump(0.5)
            why = ': '.join(str(x) for x in c.prop(dev, T.IDEV, 'Fault'))
            self._clear(d)
        else:
            d.Stop()

        def field(s, k):
            return int(re.search(k + r'=(\d+)', s)[1])
        return {
            'seconds': TELEMETRY_S,
            'ran_seconds': round(ran, 1),
            # a stop before the end (e.g. smpd stalled under TCG) is reported, not hidden
            'stopped_early': stop_ev[0].split(' ', 1)[1] if stop_ev else None,
            'stopped_fault': why,
            'records': field(st1, 'telemetry_sent') - field(st0, 'telemetry_sent'),
            'device_dropped': field(st1, 'telemetry_dropped') - field(st0, 'telemetry_dropped'),
            'smpd_missed': sum(dropped),
            'signals': len(dropped),
        }


def main():
    b = Bench()
    out = {}
    try:
        raw = b.raw_rtt()
        b.smpd = T.Smpd(b.bus, b.tmp, b.sim)
        dev = b.smpd.device_path()
        T.pump(1.0)
        rss_idle = proc_kb(b.smpd.proc.pid, 'VmRSS')
        control = b.control()

        c = T.Client(b.bus)
        d = c.dev(dev)
        d.Claim()
        b.fresh_cartridge()
        c.mgr.BeginSession(dev, T.metadata(client='bench-react'))
        d.SetParameters(T.params())
        react = b.reaction(c, dev)
        lease, late = b.lease_missed(c, dev)
        # A run a host stall stopped early (lease expired on a starved TCG
        # guest) is reported in the figures; up to three tries for a whole
        # one, every earlier try kept in 'stalled_runs'.
        stalled = []
        for _ in range(3):
            tel = b.telemetry(c, dev)
            if not tel['stopped_early']:
                break
            stalled.append(tel)
        tel['stalled_runs'] = [dict(ran_seconds=t['ran_seconds'], stopped_early=t['stopped_early'],
                                    stopped_fault=t['stopped_fault'], records=t['records'],
                                    device_dropped=t['device_dropped'], smpd_missed=t['smpd_missed'])
                               for t in stalled if t is not tel]
        tel['rss_kb'] = proc_kb(b.smpd.proc.pid, 'VmRSS')
        tel['hwm_kb'] = proc_kb(b.smpd.proc.pid, 'VmHWM')
        tel['rss_idle_kb'] = rss_idle
        d.Release()
        c.close()
        owner = b.owner_killed(dev)
        out = {
            'backend': BACKEND,
            'raw_rtt': {'p50_ms': raw['p50_us'] / 1000, 'p99_ms': raw['p99_us'] / 1000,
                        'count': raw['count'], 'what': raw['what']},
            'reaction': stats_ms(react),
            'owner_killed': stats_ms(owner),
            'lease_missed': dict(stats_ms(lease), lease_ms=LEASE_MS,
                                 late_us_max=max(late) if late else None,
                                 late_us_p50=pct(late, 50) if late else None,
                                 stopped_by_driver=b.driver_stops),
            'telemetry': tel,
            'relatched_after_clear': b.relatched,
            'discarded_lease_expiries': b.discarded,
        }
        out['control_rtt'] = {'n': control['count'], 'p50_ms': control['p50_us'] / 1000,
                              'p99_ms': control['p99_us'] / 1000,
                              'what': 'libsmp smp_device_set_parameters(), applied on the device'}
    except BaseException:
        # what the device and the daemon saw, for the failure report
        try:
            ev = [x for x in b.sim.events() if 'LEASE_RENEW' not in x and 'CONTROL' not in x]
            print('--- smp-sim events (last 30) ---\n' + '\n'.join(ev[-30:]), file=sys.stderr)
            if b.smpd:
                print('--- smpd stderr (tail) ---\n' + b.smpd.read_stderr()[-3000:], file=sys.stderr)
        except OSError:
            pass
        raise
    finally:
        b.close()
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
