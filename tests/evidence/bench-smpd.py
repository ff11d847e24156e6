#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""smpd figures for `make bench` (build-aux/bench.sh), each next to a
baseline measured in the same run; prints one JSON object.  Not a test:
nothing here asserts a timing.

  control round trip: D-Bus SetParameters through smpd (polkit check,
      limits, the durable audit record, SET_PARAMS to the device and its
      reply), checked as applied in the simulator's event log; baseline:
      the raw SET_PARAMS round trip over the same socket (bench-rtt).
  telemetry CPU: smpd's CPU time (utime+stime) per telemetry record while
      the needle runs; baseline: smp-probe reading the same 1 kHz stream.
  idle wakeups: context switches per second of smpd with no device and
      with an idle device attached (no session).

Environment: SMPD_SOURCE_DIR, SMPD_BUILD_DIR, BENCH_SECONDS (default 10),
BENCH_COUNT (default 300).
"""

import json
import os
import statistics
import subprocess
import sys
import time

SRC = os.environ.get('SMPD_SOURCE_DIR')
if not SRC:
    raise RuntimeError('SMPD_SOURCE_DIR and SMPD_BUILD_DIR must be set')
sys.path.insert(0, os.path.join(SRC, 'tests', 'daemon'))

import smpdtest as T  # noqa: E402

SECONDS = float(os.environ.get('BENCH_SECONDS', '10'))
COUNT = int(os.environ.get('BENCH_COUNT', '300'))
RTT = os.path.join(T.BUILD, 'tests', 'evidence', 'bench-rtt')
PROBE = os.path.join(T.BUILD, 'tools', 'smp-probe', 'smp-probe')
for exe in (RTT, PROBE):
    if not os.access(exe, os.X_OK):
        raise RuntimeError(f'{exe} is missing: build it first')
TICK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK     # utime, stime


def ctxt_switches(pid):
    n = 0
    for tid in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{tid}/status') as f:
            for line in f:
                if line.startswith(('voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches')):
                    n += int(line.split()[1])
    return n


def wakeups(pid, seconds):
    a = ctxt_switches(pid)
    time.sleep(seconds)
    return (ctxt_switches(pid) - a) / seconds


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def main():
    out = {}
    tmp = T.new_tmp()
    bus = T.PrivateBus(tmp)
    polkit = T.Polkit(bus)
    polkit.allow_all()
    T.write_config(os.path.join(tmp, 'conf'), {'00-bench.conf': '[Daemon]\nTelemetryHz=10\n'})
    sim = T.Sim(tmp)
    smpd = None
    try:
        # baselines on the raw socket, before smpd takes it
        r = subprocess.run([RTT, sim.sock, str(COUNT)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError('bench-rtt: ' + r.stderr)
        raw = json.loads(r.stdout)
        t0 = time.monotonic()
        p = subprocess.Popen([PROBE, '--socket', sim.sock, '--json', 'stream',
                              '--seconds', str(SECONDS), '--quiet'],
                             stdout=subprocess.PIPE, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        probe = json.loads(p.stdout.read())
        p.stdout.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError('smp-probe stream failed')
        probe_cpu = ru.ru_utime + ru.ru_stime
        probe_records = probe['records']

        # smpd without a device: idle wakeups
        smpd = T.Smpd(bus, tmp, None)
        T.pump(1.0)
        idle_nodev = wakeups(smpd.proc.pid, SECONDS)
        smpd.stop()

        smpd = T.Smpd(bus, tmp, sim)
        dev = smpd.device_path()
        T.pump(1.0)
        idle_dev = wakeups(smpd.proc.pid, SECONDS)

        # control round trip through smpd
        c = T.Client(bus)
        d = c.dev(dev)
        d.Claim()
        c.mgr.BeginSession(dev, T.metadata(client='bench-1'))
        before = sum(1 for e in sim.events() if 'event=PARAMS' in e)
        lat = []
        for i in range(COUNT):
            depth = 700 if i % 2 else 800
            t = time.perf_counter()
            applied = d.SetParameters(T.params(depth=depth))
            lat.append((time.perf_counter() - t) * 1e6)
            if applied['Depth'] != depth:
                raise RuntimeError(f'SetParameters applied {applied["Depth"]}, not {depth}')
        params_events = [e for e in sim.events() if 'event=PARAMS' in e][before:]
        if len(params_events) != COUNT or f'depth_um={depth}' not in params_events[-1]:
            raise RuntimeError(f'{len(params_events)} PARAMS events on the device for {COUNT} calls')

        # telemetry CPU while the needle runs
        d.Start()
        T.wait_for(lambda: sim.status()['state'] == 'RUNNING', 3, 'needle running')
        s0 = int(sim.ctl('stats').split('telemetry_sent=')[1].split()[0])
        c0 = cpu_seconds(smpd.proc.pid)
        T.pump(SECONDS)      # the client takes the Telemetry signals, as a UI would
        c1 = cpu_seconds(smpd.proc.pid)
        s1 = int(sim.ctl('stats').split('telemetry_sent=')[1].split()[0])
        if sim.status()['state'] != 'RUNNING':
            raise RuntimeError('the needle stopped during the telemetry measurement')
        d.Stop()
        c.close()
        smpd_samples = s1 - s0
        out = {
            'control_rtt': {
                'unit': 'us', 'count': COUNT,
                'smpd_p50': round(pct(lat, 50), 1), 'smpd_p99': round(pct(lat, 99), 1),
                'smpd_mean': round(statistics.fmean(lat), 1),
                'raw_p50': raw['p50_us'], 'raw_p99': raw['p99_us'], 'raw_mean': raw['mean_us'],
                'ratio_p50': round(pct(lat, 50) / raw['p50_us'], 1),
            },
            'telemetry_cpu': {
                'unit': 'us CPU per record', 'seconds': SECONDS,
                'smpd_records': smpd_samples,
                'smpd': round((c1 - c0) * 1e6 / max(smpd_samples, 1), 2),
                'probe_records': probe_records,
                'probe': round(probe_cpu * 1e6 / max(probe_records, 1), 2),
                'clock_tick_s': 1 / TICK,
            },
            'idle_wakeups': {
                'unit': 'context switches/s', 'seconds': SECONDS,
                'no_device': round(idle_nodev, 2), 'idle_device': round(idle_dev, 2),
            },
        }
        tc = out['telemetry_cpu']
        tc['ratio'] = round(tc['smpd'] / tc['probe'], 2) if tc['probe'] > 0 else None
        iw = out['idle_wakeups']
        iw['ratio'] = round(iw['no_device'] / iw['idle_device'], 3) if iw['idle_device'] > 0 else None
    finally:
        if smpd:
            smpd.kill()
        sim.stop()
        polkit.stop()
        bus.stop()
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
