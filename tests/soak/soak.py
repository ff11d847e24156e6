#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Soak, host (socket) path: SOAK_SECONDS of randomized treatment sessions,
faults injected through the simulator's control socket, hotplug (the
simulated device unplugged and plugged back) and clients killed mid-run,
against one smpd that must live through all of it.

Asserted (each a failure, never a warning):
  - after every injected fault or loss of the owner the needle stops
    within STOP_BOUND_MS of device time (the simulator's clock: the
    injection's CONTROL event -> the state change leaving RUNNING); it
    never stops with nothing injected, unless a host stall is proved
    (host_stall(): counted by cause and reported);
  - smpd never exits; nothing leaks: its open file descriptors at the end
    equal those after the warm-up (same state: one device, no client),
    and its RSS grows by at most RSS_GROWTH_KB between the warm-up and the
    end, plus what its store of cartridges and clients may take (see
    docs/soak.md for why that bound); under SMPD_TEST_WRAPPER=
    valgrind, memcheck's exit status 99 on any definite leak or error;
  - no acknowledged record lost: every D-Bus call whose success the client
    saw (session_begin, set_parameters, start, stop, session_end) has its
    record in `smp-audit export`, and after smpd's clean stop the log
    verifies INTACT with no unsealed record;
  - no sanitizer report in smpd's stderr.

Environment: SMPD_SOURCE_DIR, SMPD_BUILD_DIR, SOAK_SECONDS (1800),
SOAK_SEED (random, printed), SOAK_OUT (a directory: on failure the
simulator's whole event log and smpd's stderr are copied there),
SMPD_TEST_WRAPPER, SMPD_TEST_LEASE_MS and SMPD_TEST_SLOWDOWN (as
tests/daemon).
"""

import collections
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

SRC = os.environ.get('SMPD_SOURCE_DIR')
if not SRC:
    raise RuntimeError('SMPD_SOURCE_DIR and SMPD_BUILD_DIR must be set')
sys.path.insert(0, os.path.join(SRC, 'tests', 'daemon'))

import dbus  # noqa: E402

import smpdtest as T  # noqa: E402

SECONDS = float(os.environ.get('SOAK_SECONDS', '1800'))
SEED = int(os.environ.get('SOAK_SEED', str(int(time.time()))))
LEASE_MS = int(os.environ.get('SMPD_TEST_LEASE_MS', '200'))
WRAPPED = bool(os.environ.get('SMPD_TEST_WRAPPER'))
TOOL = os.path.join(T.BUILD, 'audit', 'smp-audit')
# Every stop path here is either smpd reacting to telemetry (1 ms
# records; the jam and brown-out monitors need JamTimeMs=5 and
# BrownoutTimeMs=10 of them), the firmware itself, or the lease: the
# longest is the lease after a lost link, LeaseMs plus one tick.  Twice
# the lease (plus the slowdown under valgrind) bounds them all.
STOP_BOUND_MS = 2 * LEASE_MS * T.SLOW
# smpd's ClientTimeoutMs in CONFIG below: the shipped one, or the lease
CLIENT_TIMEOUT_MS = LEASE_MS if os.environ.get('SMPD_TEST_LEASE_MS') else T.shipped_setting('ClientTimeoutMs')
# RSS may grow only by what glibc's allocator keeps for reuse after the
# warm-up has exercised every path; a leak of one small allocation per
# session (~hundreds of sessions) exceeds it.  docs/soak.md.
RSS_GROWTH_KB = 256
# Besides that, smpd keeps by design an index of every cartridge ever
# marked used and every client's last session (daemon/store.c: cartridge
# reuse and the healing interval), and every soak session brings a new
# one of each: an array per table of 80-byte entries (char key[65] +
# int64_t) that doubles from 64.  The bound allows what those arrays may
# take on top, at most: every capacity they passed through, as if no old
# block were ever reused.  A leak of even a few hundred bytes per session
# still exceeds it within a few hundred sessions.
STORE_ENTRY_BYTES = 80
STORE_TABLES = 2


def store_kb(n):
    """At most what smpd's store arrays hold for n clients and n cartridges (KiB)."""
    cap = total = 64
    while cap < n:
        cap *= 2
        total += cap
    return STORE_TABLES * STORE_ENTRY_BYTES * total / 1024


WARMUP_SESSIONS = 40
# Sanitizer builds keep freed memory in quarantine (RSS grows by design);
# LeakSanitizer's report at exit is the leak check there.
RSS_CHECK = os.environ.get('SOAK_RSS_CHECK', '1') != '0'
EVENTS = ('session_begin', 'set_parameters', 'start', 'stop', 'session_end')

# The timing settings as tests/daemon/conftest.py has them: the polkit
# mock (a Python process) and the device's replies are waits like any
# other, scaled under valgrind and TCG (SMPD_TEST_SLOWDOWN); with a longer
# lease (SMPD_TEST_LEASE_MS) the claimant's Heartbeat deadline (ClientTimeoutMs,
# the soak itself) gets the same time as the lease.
CONFIG = (f'[Daemon]\nPolkitTimeoutMs={min(120000, int(1500 * T.SLOW))}\n'
          f'CommandTimeoutMs={min(LEASE_MS - 1, int(150 * T.SLOW))}\nTelemetryHz=10\n'
          '[Monitor]\nBrownoutTimeMs=10\nJamTimeMs=5\n')
if os.environ.get('SMPD_TEST_LEASE_MS'):
    CONFIG = CONFIG.replace('[Monitor]', f'LeaseMs={LEASE_MS}\nRenewMs={LEASE_MS // 5}\n'
                            f'ClientTimeoutMs={LEASE_MS}\n[Monitor]')

# name, injection, restore (None: nothing to undo), the needle must stop
FAULTS = [
    ('overtemperature', 'temp 5600', 'temp 3000', True),
    ('overcurrent', 'overcurrent 20', None, True),
    ('brownout', 'brownout 7500', 'brownout off', True),
    ('jam', 'jam', 'unjam', True),
    ('pedal', 'pedal up', 'pedal down', True),
    ('cartridge-pulled', 'cartridge pull', None, True),
    ('telemetry-stall', f'telemetry-stall {3 * LEASE_MS}', None, True),
    ('hotplug', 'disconnect 400', None, True),
    ('corrupt-replies', 'corrupt crc 2', None, False),
    ('delayed-replies', 'delay 20 3', None, False),
]


def log(*a):
    print('soak:', *a, flush=True)


def t_us(line):
    return int(line.split(' ', 1)[0][5:])


def proc_status(pid):
    out = {}
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            k, _, v = line.partition(':')
            out[k] = v.strip()
    return int(out['VmRSS'].split()[0]), len(os.listdir(f'/proc/{pid}/fd'))


def smaps(pid):
    """Rss (KiB) per mapping name ([heap], [anon], a library, a file): where a
    growth of VmRSS is, for the failure report."""
    out = collections.Counter()
    name = None
    with open(f'/proc/{pid}/smaps') as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(':'):
                name = parts[5] if len(parts) > 5 else '[anon]'
            elif parts[0] == 'Rss:':
                out[name] += int(parts[1])
    return out


def export(adir):
    e = subprocess.run([TOOL, 'export', adir, '--format', 'json'],
                       capture_output=True, text=True, timeout=120)
    if e.returncode != 0:
        raise AssertionError(f'smp-audit export exit {e.returncode}: {e.stderr}')
    return [json.loads(x) for x in e.stdout.splitlines() if x.strip()]


class Soak:
    def __init__(self, rng, tmp):
        self.rng, self.tmp = rng, tmp
        self.bus = T.PrivateBus(tmp)
        self.polkit = T.Polkit(self.bus)
        self.polkit.allow_all()
        T.write_config(os.path.join(tmp, 'conf'), {'00-soak.conf': CONFIG})
        self.sim = T.Sim(tmp)
        # the event log, read as it grows (a 30-minute log is megabytes;
        # reading it whole while the needle runs would keep the soak, the
        # claimant, from sending its Heartbeat)
        self.evf = open(self.sim.log)
        self.ev, self.ev_tail = [], ''
        self.smpd = T.Smpd(self.bus, tmp, self.sim)
        self.acked = collections.Counter()
        self.n_sessions = 0
        self.faults = collections.Counter()
        self.stop_ms = collections.defaultdict(list)
        self.cart = 0
        self.kinds = []
        self.relatched = 0
        self.stalls = collections.Counter()
        self.leftover = collections.Counter()
        # the warm-up ends every way at least once before memory is compared
        self.warming = True
        self.uncovered = {'none', 'owner-killed'} | {f[0] for f in FAULTS}

    def events(self, since=0):
        """The simulator's events from index since on."""
        chunk = self.evf.read()
        if chunk:
            lines = (self.ev_tail + chunk).split('\n')
            self.ev_tail = lines.pop()          # a line still being written
            self.ev.extend(x.strip() for x in lines)
        return self.ev[since:]

    def mark(self):
        return len(self.events())

    def close(self):
        self.evf.close()
        if self.smpd:
            self.smpd.kill()
        self.sim.stop()
        self.polkit.stop()
        self.bus.stop()

    def check_alive(self):
        if not self.smpd.alive():
            raise AssertionError(f'smpd exited ({self.smpd.proc.returncode}): '
                                 + self.smpd.read_stderr()[-3000:])

    def device(self):
        """The device path once smpd has (re)attached it."""
        T.wait_for(lambda: len(self.smpd.manager().ListDevices()) == 1, 5, 'device attached')
        return self.smpd.device_path()

    def wait_stopped(self, mark, what):
        try:
            T.wait_for(lambda: self.sim.status()['state'] != 'RUNNING', 3, what)
        except AssertionError:
            raise AssertionError(f'{what}: the needle still runs')
        ev = self.events(mark)
        t0 = next(t_us(e) for e in ev if 'event=CONTROL' in e)
        stop = next((t_us(e) for e in ev if 'event=STATE from=RUNNING' in e), None)
        if stop is None:
            raise AssertionError(f'{what}: no state change from RUNNING in the event log')
        ms = (stop - t0) / 1000
        if ms > STOP_BOUND_MS:
            raise AssertionError(f'{what}: the needle stopped {ms:.1f} ms (device clock) after '
                                 f'the injection, bound {STOP_BOUND_MS} ms')
        return ms

    @staticmethod
    def driver_lease_stops():
        """smpusb's count of STOPs its own lease timer sent (VM), None elsewhere."""
        usb = T.usb_device() if T.USB else None
        for p in glob.glob(os.path.join(usb, '*:1.0', 'counters', 'lease_stops')) if usb else ():
            with open(p) as f:
                return int(f.read())
        return None

    def host_stall(self, stop, fault, msg, lease_stops0, ev):
        """Why a run stopped with nothing injected, if the host fell behind (the
        VM under TCG on a loaded machine): the device's or the driver's lease
        ran out, smpd saw no telemetry for a lease, a renewal timed out, or
        smpd took the claimant (the soak) for hung while the whole guest
        stood still (the device could not send telemetry for longer than
        ClientTimeoutMs).  None for any other stop: unexplained, a failure."""
        reason = re.search(r'reason=(\S+)', stop).group(1) if stop else None
        if reason == 'LEASE_EXPIRED':
            return 'device lease expired'
        if reason != 'STOP':
            return None
        if fault == 'telemetry-lost':
            return 'telemetry lost'
        if fault == 'device-refused' and 'timed out' in msg:
            return 'renewal timed out'
        if fault == 'client-unresponsive' and self.longest_drop_ms(ev) >= CLIENT_TIMEOUT_MS:
            return 'guest stood still'
        n = self.driver_lease_stops()
        if n is not None and lease_stops0 is not None and n > lease_stops0:
            return 'driver lease expired'
        return None

    def longest_drop_ms(self, ev):
        """The longest run of telemetry the host did not take in these events
        (device clock; one still going counts until now)."""
        longest, begin = 0, None
        for e in ev:
            if 'event=TELEMETRY_DROP_BEGIN' in e and 'reason=host-behind' in e:
                begin = t_us(e)
            elif 'event=TELEMETRY_DROP_END' in e and begin is not None:
                longest = max(longest, (t_us(e) - begin) / 1000)
                begin = None
        if begin is not None:
            longest = max(longest, (int(self.sim.status()['t_us']) - begin) / 1000)
        return longest

    def prepare(self, c, dev):
        """A fresh cartridge, the claim, any latched fault cleared once its cause is gone."""
        self.cart += 1
        self.sim.ctl(f'cartridge insert id=SOAK-{self.cart:05d} lot=SOAK-LOT needle=3RL '
                     f'diameter=250 expiry=2099-12-31 used=0')
        d = c.dev(dev)
        d.Claim()

        def clear():
            if not str(c.prop(dev, T.IDEV, 'Fault')[0]) and \
                    str(c.prop(dev, T.IDEV, 'State')) not in ('fault', 'estop'):
                return True
            try:
                d.ClearFault()
            except dbus.exceptions.DBusException:
                return False    # the cause persists a little longer
            return True
        T.wait_for(clear, 5, 'fault cleared')
        return d

    def session(self):
        dev = self.device()
        c = T.Client(self.bus)
        client = f'soak-{self.n_sessions:05d}'
        self.n_sessions += 1
        closed = False
        try:
            d = self.prepare(c, dev)
            s = c.ses(c.mgr.BeginSession(dev, T.metadata(client=client)))
            self.acked[('session_begin', client)] += 1
            for _ in range(self.rng.randint(1, 3)):
                d.SetParameters(T.params(depth=self.rng.choice((600, 700, 800, 900))))
                self.acked[('set_parameters', client)] += 1
            def clear():
                try:
                    d.ClearFault()
                except dbus.exceptions.DBusException:
                    pass
            # from before the Start: a stall may stop the needle before
            # the soak sees it running, and that stop must be in the events
            mark = self.mark()
            lease_stops0 = self.driver_lease_stops()
            self.relatched += T.start_through_relatch(d, clear)
            self.acked[('start', client)] += 1
            T.wait_for(lambda: any('event=STATE from=IDLE to=RUNNING' in e for e in self.events(mark)),
                       3, 'needle started')
            T.pump(self.rng.uniform(0.02, 0.3))
            if self.sim.status()['state'] != 'RUNNING':
                # Only a stall of the host may stop it here, proved by what
                # stopped it (host_stall()).  Safe, counted by cause,
                # reported; any other stop fails.
                ev = self.events(mark)
                stop = next((e for e in ev if 'event=STATE from=RUNNING' in e), None)
                fault, msg = (str(x) for x in c.prop(dev, T.IDEV, 'Fault'))
                why = self.host_stall(stop, fault, msg, lease_stops0, ev)
                if why:
                    self.stalls[why] += 1
                    self.kinds.append('stall')
                    return
                raise AssertionError(f'the needle stopped with no fault injected: device {stop!r}, '
                                     f'smpd fault {fault!r} ({msg})')
            roll = self.rng.random()
            if self.warming and self.uncovered:
                kind = self.rng.choice(sorted(self.uncovered))
            elif roll < 0.4:
                kind = 'none'
            elif roll < 0.5:
                kind = 'owner-killed'
            else:
                kind = self.rng.choice(FAULTS)[0]
            self.uncovered.discard(kind)
            self.faults[kind] += 1
            self.kinds.append(kind)
            if kind == 'owner-killed':
                mark = self.mark()
                self.sim.ctl('status')          # device time of the loss: its CONTROL event
                c.close()
                closed = True
                self.stop_ms[kind].append(self.wait_stopped(mark, 'owner left the bus'))
                return
            if kind != 'none':
                name, inject, restore, stops = next(f for f in FAULTS if f[0] == kind)
                mark = self.mark()
                self.sim.ctl(inject)
                if stops:
                    self.stop_ms[kind].append(self.wait_stopped(mark, kind))
                    if restore:
                        self.sim.ctl(restore)
                    if kind == 'overcurrent':
                        T.pump(0.05)    # the injected short ends (20 ms)
                    elif kind == 'telemetry-stall':
                        T.pump(3 * LEASE_MS / 1000)     # the device sends telemetry again
                    if kind == 'hotplug':
                        dev = self.device()
                    # the session stays open; the client ends it
                    try:
                        s.EndSession()
                        self.acked[('session_end', client)] += 1
                    except dbus.exceptions.DBusException:
                        pass    # e.g. ended by smpd with the device gone
                    return
                T.pump(0.1)
            # an orderly end; replies may be corrupted (the call then fails),
            # the needle must stop all the same
            mark = self.mark()
            try:
                d.Stop()
                self.acked[('stop', client)] += 1
            except dbus.exceptions.DBusException:
                self.sim.ctl('status')
                self.wait_stopped(mark, 'stop with bad replies')
            T.wait_for(lambda: self.sim.status()['state'] != 'RUNNING', 3, 'stopped')
            try:
                s.EndSession()
                self.acked[('session_end', client)] += 1
            except dbus.exceptions.DBusException:
                pass
        finally:
            if not closed:
                try:
                    c.dev(dev).Release()
                except dbus.exceptions.DBusException:
                    pass
                c.close()
            # nothing injected for this session may reach the next one (a
            # count of corrupted or delayed replies not used up): cancelled,
            # counted, reported
            cleared = self.sim.ctl('clear-injections').split('cleared=', 1)[1]
            if cleared != 'none':
                self.leftover.update(cleared.split(','))
            self.check_alive()

    def quiesce(self):
        """One device, no client, nothing running: a comparable state."""
        self.device()
        T.wait_for(lambda: self.sim.status()['state'] != 'RUNNING', 3, 'quiet')
        T.pump(0.5)
        return proc_status(self.smpd.proc.pid)


def main():
    rng = random.Random(SEED)
    log(f'{SECONDS:.0f} s, seed {SEED} (SOAK_SEED={SEED} repeats the choices), '
        f'{"smpd under " + os.environ["SMPD_TEST_WRAPPER"].split()[0] if WRAPPED else "plain smpd"}, '
        f'stop bound {STOP_BOUND_MS} ms')
    for exe in (TOOL,):
        if not os.access(exe, os.X_OK):
            raise RuntimeError(f'{exe} is missing: build it first')
    tmp = T.new_tmp()
    s = Soak(rng, tmp)
    started = time.monotonic()
    try:
        # warm-up: every path, and more sessions than smpd keeps once ended
        # (32), so that what follows compares like with like
        warm_end = started + min(max(SECONDS * 0.2, 10), SECONDS / 2)
        while time.monotonic() < warm_end or ((s.n_sessions < WARMUP_SESSIONS or s.uncovered) and
                                              time.monotonic() < started + SECONDS / 2):
            s.session()
        if s.n_sessions < WARMUP_SESSIONS or s.uncovered:
            raise AssertionError(f'only {s.n_sessions} sessions in half of SOAK_SECONDS, never ended '
                                 f'by {sorted(s.uncovered)}: too short a soak to compare memory '
                                 f'(at least {WARMUP_SESSIONS}, every ending)')
        s.warming = False
        rss0, fd0 = s.quiesce()
        maps0 = smaps(s.smpd.proc.pid)
        n0 = s.n_sessions
        log(f'after warm-up ({s.n_sessions} sessions): VmRSS {rss0} KiB, {fd0} fds')
        samples = [(time.monotonic() - started, rss0, fd0)]
        next_sample = time.monotonic() + max(SECONDS / 20, 5)
        while time.monotonic() < started + SECONDS:
            s.session()
            if time.monotonic() >= next_sample:
                rss, fd = s.quiesce()
                samples.append((time.monotonic() - started, rss, fd))
                next_sample = time.monotonic() + max(SECONDS / 20, 5)
        rss1, fd1 = s.quiesce()
        samples.append((time.monotonic() - started, rss1, fd1))
        log(f'end ({s.n_sessions} sessions): VmRSS {rss1} KiB, {fd1} fds; samples (s, KiB, fds): '
            + ' '.join(f'{t:.0f}:{r}:{f}' for t, r, f in samples))
        if fd1 != fd0:
            raise AssertionError(f'file descriptors leaked: {fd0} after the warm-up, {fd1} at the end')
        maps1 = smaps(s.smpd.proc.pid)
        grew = ', '.join(f'{k} {d:+d}' for d, k in sorted(
            ((maps1[k] - maps0[k], k) for k in set(maps0) | set(maps1) if maps1[k] != maps0[k]),
            reverse=True)[:12]) or 'none'
        log(f'Rss by mapping since the warm-up (KiB): {grew}')
        store = store_kb(s.n_sessions) - store_kb(n0)
        if RSS_CHECK and not WRAPPED and rss1 - rss0 > RSS_GROWTH_KB + store:
            raise AssertionError(f'smpd grew by {rss1 - rss0} KiB after the warm-up (bound '
                                 f'{RSS_GROWTH_KB} KiB + {store:.0f} KiB for the store\'s '
                                 f'{s.n_sessions - n0} new clients and cartridges); by mapping (KiB): {grew}')
        adir = os.path.join(tmp, 'state', 'audit')
        have = collections.Counter()
        for r in export(adir):
            client = r.get('fields', {}).get('client')
            if r.get('event') in EVENTS and client:
                have[(r['event'], client)] += 1
        missing = {k: (v, have[k]) for k, v in s.acked.items() if have[k] < v}
        if missing:
            raise AssertionError(f'acknowledged but not in the audit log: {missing}')
        rc = s.smpd.stop()
        err = s.smpd.read_stderr()
        for mark in ('ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer'):
            if mark in err:
                raise AssertionError('sanitizer report from smpd:\n' + err[-4000:])
        if rc != 0:
            raise AssertionError(f'smpd exited {rc} on SIGTERM (99: valgrind found errors):\n'
                                 + err[-4000:])
        s.smpd = None
        v = subprocess.run([TOOL, 'verify', adir, '--key-file', os.path.join(tmp, 'audit.key'),
                            '--json'], capture_output=True, text=True, timeout=300)
        rep = json.loads(v.stdout) if v.stdout.strip() else {}
        if v.returncode != 0 or rep.get('status') != 'INTACT' or rep.get('unsealed_records') != 0:
            raise AssertionError(f'verify after the clean stop: exit {v.returncode}: {v.stdout}{v.stderr}')
        stops = ', '.join(f'{k} {len(v)}x max {max(v):.1f} ms' for k, v in sorted(s.stop_ms.items()))
        log(f'PASS: {time.monotonic() - started:.0f} s, {s.n_sessions} sessions, '
            f'{sum(s.acked.values())} acknowledged calls all in the log, verify INTACT; '
            f'faults {dict(s.faults)}; stops (device clock) {stops}; '
            f'VmRSS {rss0} -> {rss1} KiB (bound +{RSS_GROWTH_KB} KiB + {store:.0f} KiB for the store), '
            f'fds {fd0} -> {fd1}; '
            f'faults latched again from stale telemetry after a ClearFault: {s.relatched}; '
            f'runs stopped by a host stall (nothing injected), by cause: {dict(s.stalls)}; '
            f'injections still pending at a session\'s end, cancelled: {dict(s.leftover)}')
    except BaseException:
        # what the device and the daemon saw, for the failure report
        try:
            ev = [x for x in s.sim.events() if 'LEASE_RENEW' not in x]
            print('--- smp-sim events (last 40) ---\n' + '\n'.join(ev[-40:]))
            print('--- smpd stderr (tail) ---\n' + s.smpd.read_stderr()[-3000:])
        except (OSError, AttributeError):
            pass
        print(f'--- sessions: {s.n_sessions}, last kinds: {s.kinds[-10:]}')
        # the whole event log and smpd's stderr, for the failure's report
        out = os.environ.get('SOAK_OUT')
        if out:
            for name in ('sim.log', 'smpd.stderr', 'sim.stderr'):
                try:
                    shutil.copy(os.path.join(tmp, name), os.path.join(out, 'soak-' + name))
                except OSError:
                    pass
        raise
    finally:
        s.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
