#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Crash consistency of the real smpd's audit log (H12).

One private dbus-daemon, one polkit mock and one smp-sim stay up; smpd is
started, driven through D-Bus by a client running treatment sessions
(Claim, BeginSession, SetParameters, Start, Stop, EndSession, Release) and
SIGKILLed at a random moment, RUNS times (default 200).

After every kill:
  * `smp-audit verify` on the log as the crash left it must report INTACT
    (exit 0) or TRUNCATED (exit 4, a torn tail at the end of the newest
    file: the record being written when smpd died);
  * smpd is restarted on the same state directory; once it owns its bus
    name and has attached the device (the log is quiescent: no session),
    `smp-audit verify --key-file` must report INTACT (exit 0; an unsealed
    tail after the last seal is accepted, as the format documents), and a
    torn tail seen before the restart must now be accounted for by a
    `recovery` record;
  * `smp-audit export --format json` must contain, for every call whose
    success the client saw (in this run and every earlier one), its record:
    session_begin / set_parameters / start / stop / session_end of that
    session (keyed by the session's unique client pseudonym), at least as
    many as were acknowledged.

Nothing skips: a missing prerequisite raises and the test fails.
Environment: SMPD_SOURCE_DIR, SMPD_BUILD_DIR (set by meson), CRASH_RUNS,
CRASH_SEED, CRASH_MAX_DELAY_MS.
"""

import collections
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time

SRC = os.environ.get('SMPD_SOURCE_DIR')
if not SRC:
    raise RuntimeError('SMPD_SOURCE_DIR and SMPD_BUILD_DIR must be set (run through meson test)')
sys.path.insert(0, os.path.join(SRC, 'tests', 'daemon'))

import dbus  # noqa: E402

import smpdtest as T  # noqa: E402

RUNS = int(os.environ.get('CRASH_RUNS', '200'))
SEED = int(os.environ.get('CRASH_SEED', str(int(time.time()))))
MAX_DELAY = float(os.environ.get('CRASH_MAX_DELAY_MS', '700')) / 1000.0
TOOL = os.path.join(T.BUILD, 'audit', 'smp-audit')
if not os.access(TOOL, os.X_OK):
    raise RuntimeError(f'{TOOL} is missing: build it first')
if not shutil.which('chrt'):
    raise RuntimeError('chrt is missing (util-linux)')

FAST = '[Daemon]\nPolkitTimeoutMs=1500\nTelemetryHz=10\n'

# event name -> the D-Bus call that acknowledges it
EVENTS = ('session_begin', 'set_parameters', 'start', 'stop', 'session_end')


def log(*a):
    print(*a, flush=True)


def verify(adir, keyfile):
    v = subprocess.run([TOOL, 'verify', adir, '--key-file', keyfile, '--json'],
                       capture_output=True, text=True, timeout=60)
    try:
        rep = json.loads(v.stdout)
    except ValueError:
        raise AssertionError(f'smp-audit verify printed no JSON (exit {v.returncode}): '
                             f'{v.stdout}{v.stderr}')
    return v.returncode, rep


def export(adir):
    e = subprocess.run([TOOL, 'export', adir, '--format', 'json'],
                       capture_output=True, text=True, timeout=60)
    if e.returncode != 0:
        raise AssertionError(f'smp-audit export exit {e.returncode}: {e.stderr}')
    return [json.loads(line) for line in e.stdout.splitlines() if line.strip()]


def sanitizer_report(smpd):
    err = smpd.read_stderr()
    for mark in ('ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer'):
        if mark in err:
            raise AssertionError('sanitizer report from smpd:\n' + err[-4000:])


def count_records(records):
    """(event, client pseudonym) -> number of records; plus the recovery count."""
    n = collections.Counter()
    recoveries = 0
    for r in records:
        if r['type'] == 'recovery':
            recoveries += 1
        ev = r.get('event')
        client = r.get('fields', {}).get('client')
        if ev in EVENTS and client:
            n[(ev, client)] += 1
    return n, recoveries


class Driver:
    """The client: sessions back to back until smpd dies under it."""

    def __init__(self, bus, sim, dev_path, run, rng):
        self.bus, self.sim, self.dev_path, self.run, self.rng = bus, sim, dev_path, run, rng
        self.acked = collections.Counter()   # (event, client) -> acknowledged calls
        self.cleared = 0

    def ack(self, event, client):
        self.acked[(event, client)] += 1

    def drive(self):
        # An early kill can land before the client has even connected.
        try:
            c = T.Client(self.bus)
        except dbus.exceptions.DBusException as e:
            return e.get_dbus_name()
        try:
            d = c.dev(self.dev_path)
            k = 0
            while True:
                client = f'crash-{self.run:04d}-{k}'
                k += 1
                # a fresh single-use cartridge for every session
                cart = f'CRASH-{self.run:04d}-{k}'
                self.sim.ctl(f'cartridge insert id={cart} lot=CL-{self.run} needle=3RL '
                             f'diameter=250 expiry=2099-12-31 used=0')
                d.Claim()
                # a kill while the needle ran leaves the device latched
                # (lease expired): the operator clears it, as after any fault
                if c.prop(self.dev_path, T.IDEV, 'State') == 'fault':
                    d.ClearFault()
                    self.cleared += 1
                path = c.mgr.BeginSession(self.dev_path, T.metadata(client=client, lot=f'LOT-{self.run}'))
                self.ack('session_begin', client)
                s = c.ses(path)
                for _ in range(self.rng.randint(1, 3)):
                    d.SetParameters(T.params(depth=self.rng.choice((600, 700, 800, 900))))
                    self.ack('set_parameters', client)
                d.Start()
                self.ack('start', client)
                # running: telemetry summaries and renewals in the mix
                T.pump(self.rng.uniform(0, 0.15))
                d.Stop()
                self.ack('stop', client)
                s.EndSession()
                self.ack('session_end', client)
                d.Release()
        except dbus.exceptions.DBusException as e:
            return e.get_dbus_name()
        finally:
            c.close()


def main():
    rng = random.Random(SEED)
    log(f'crash-smpd: {RUNS} runs, seed {SEED} (CRASH_SEED={SEED} repeats them), '
        f'kill delay 0-{MAX_DELAY * 1000:.0f} ms')
    tmp = T.new_tmp()
    bus = T.PrivateBus(tmp)
    polkit = T.Polkit(bus)
    polkit.allow_all()
    T.write_config(os.path.join(tmp, 'conf'), {'00-test.conf': FAST})
    sim = T.Sim(tmp)
    adir = os.path.join(tmp, 'state', 'audit')
    keyfile = os.path.join(tmp, 'audit.key')
    acked = collections.Counter()
    torn = recovered_before = 0
    total_calls = total_cleared = 0
    smpd = None
    started = time.monotonic()
    try:
        for run in range(RUNS):
            smpd = T.Smpd(bus, tmp, sim)
            dev_path = smpd.device_path()

            # The restarted smpd has opened (and recovered) the log; no session
            # runs, so it is quiescent: it must verify and hold every ack.
            rc, rep = verify(adir, keyfile)
            if rc != 0:
                raise AssertionError(f'run {run}: after restart verify exit {rc}: {rep}')
            have, recoveries = count_records(export(adir))
            if run > 0 and need_recovery and recoveries <= recovered_before:
                raise AssertionError(f'run {run}: a torn tail was cut without a recovery record')
            recovered_before = recoveries
            missing = {k: (v, have[k]) for k, v in acked.items() if have[k] < v}
            if missing:
                raise AssertionError(f'run {run}: acknowledged but not in the log '
                                     f'(event, client): (acked, found): {missing}')

            drv = Driver(bus, sim, dev_path, run, rng)
            delay = rng.uniform(0, MAX_DELAY)
            killer = threading.Timer(delay, smpd.proc.kill)
            killer.start()
            err = drv.drive()
            killer.join()
            smpd.kill()
            if smpd.proc.returncode != -9:
                raise AssertionError(f'run {run}: smpd exited {smpd.proc.returncode} '
                                     f'before the SIGKILL: {smpd.read_stderr()[-2000:]}')
            if err not in ('org.freedesktop.DBus.Error.NoReply',
                           'org.freedesktop.DBus.Error.ServiceUnknown',
                           'org.freedesktop.DBus.Error.NameHasNoOwner',
                           'org.freedesktop.DBus.Error.Disconnected'):
                raise AssertionError(f'run {run}: the client failed with {err}, not because '
                                     f'smpd died: {smpd.read_stderr()[-2000:]}')
            sanitizer_report(smpd)
            acked.update(drv.acked)
            total_calls += sum(drv.acked.values())
            total_cleared += drv.cleared

            # The log as the crash left it: intact, or a torn tail at the end.
            rc, rep = verify(adir, keyfile)
            need_recovery = rc == 4
            if rc == 4:
                torn += 1
            elif rc != 0:
                raise AssertionError(f'run {run}: after SIGKILL verify exit {rc}: {rep}')
            smpd = None
        # the last run's acknowledgements, checked after one more restart
        smpd = T.Smpd(bus, tmp, sim)
        rc, rep = verify(adir, keyfile)
        if rc != 0:
            raise AssertionError(f'final restart: verify exit {rc}: {rep}')
        have, recoveries = count_records(export(adir))
        missing = {k: (v, have[k]) for k, v in acked.items() if have[k] < v}
        if missing:
            raise AssertionError(f'final: acknowledged but not in the log: {missing}')
        if smpd.stop() != 0:
            raise AssertionError('smpd did not exit 0 on SIGTERM: ' + smpd.read_stderr()[-2000:])
        sanitizer_report(smpd)
        smpd = None
        rc, rep = verify(adir, keyfile)
        if rc != 0 or rep.get('status') != 'INTACT' or rep.get('unsealed_records') != 0:
            raise AssertionError(f'after a clean stop verify exit {rc}: {rep}')
        log(f'crash-smpd: {RUNS} SIGKILLs in {time.monotonic() - started:.0f} s; '
            f'{total_calls} acknowledged calls ({len(acked)} distinct event/session pairs) all in '
            f'the log; {torn} kills left a torn tail, {recoveries} recovery records; '
            f'{total_cleared} latched lease faults cleared after restarts; '
            f'final verify: {rep.get("status")}')
    finally:
        if smpd:
            smpd.kill()
        sim.stop()
        polkit.stop()
        bus.stop()
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
