#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""smpd figures for `make bench` (build-aux/bench.sh), each next to a
baseline measured in the same run; prints one JSON object.  Not a test:
nothing here asserts a timing.

  control round trip: D-Bus SetParameters through smpd (polkit check,
      limits, the durable audit record, SET_PARAMS to the device and its
      reply), checked as applied in the simulator's event log; baseline:
      the raw SET_PARAMS round trip over the same socket (bench-rtt).
  telemetry CPU: smpd's CPU time (its threads' schedstat) per telemetry
      record while the needle runs; baseline: smp-probe reading the same
      1 kHz stream from a twin simulator (same arguments).  The machine is
      shared and its load moves within a minute, so the two alternate,
      BENCH_CPU_ROUNDS windows of BENCH_SECONDS each, and the figures are
      the medians of the windows.  Where the reader runs next to its
      simulator decides most of the cost of a record (a wakeup on the
      same CPU, or across CPUs by an interrupt, which costs a VM exit
      here), and the scheduler picks one or the other for a whole run:
      unpinned, smp-probe's figure moved between 14 and 40 us from run to
      run.  So for these windows both simulators and both readers are
      pinned alike, BENCH_CPU_PIN: same (default; simulator and reader on
      the last CPU), split (simulators on CPU 0, readers on CPU 1), none.
  idle wakeups: context switches per second of smpd with no device and
      with an idle device attached (no session).

Environment: SMPD_SOURCE_DIR, SMPD_BUILD_DIR, BENCH_SECONDS (default 10),
BENCH_COUNT (default 300), BENCH_CPU_ROUNDS (default 3), BENCH_CPU_PIN
(default same).
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
ROUNDS = int(os.environ.get('BENCH_CPU_ROUNDS', '3'))
PIN = os.environ.get('BENCH_CPU_PIN', 'same')
RTT = os.path.join(T.BUILD, 'tests', 'evidence', 'bench-rtt')
PROBE = os.path.join(T.BUILD, 'tools', 'smp-probe', 'smp-probe')
for exe in (RTT, PROBE):
    if not os.access(exe, os.X_OK):
        raise RuntimeError(f'{exe} is missing: build it first')


def cpu_seconds(pid):
    """CPU time of all of pid's threads (schedstat: ns, not clock ticks)."""
    total = 0
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/schedstat') as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass        # a thread that ended meanwhile
    return total / 1e9


def pin(pid, cpu):
    """Every thread of pid on cpu (None: any)."""
    cpus = {cpu} if cpu is not None else set(range(os.cpu_count()))
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass


def placement():
    """(simulator's CPU, reader's CPU) for the CPU figure."""
    n = os.cpu_count()
    if PIN == 'split' and n >= 2:
        return 0, 1
    if PIN == 'same':
        return n - 1, n - 1
    return None, None


def probe_cpu_per_record(sock, seconds, cpu=None):
    """smp-probe stream on sock for seconds: its CPU time (rusage) per
    record, in us.  The GLib loop runs meanwhile: the claimant's Heartbeat
    calls go on."""
    p = subprocess.Popen([PROBE, '--socket', sock, '--json', 'stream',
                          '--seconds', str(seconds), '--quiet'],
                         stdout=subprocess.PIPE, text=True,
                         preexec_fn=None if cpu is None else lambda: os.sched_setaffinity(0, {cpu}))
    T.pump(seconds)
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        T.pump(0.02)
    probe = json.loads(p.stdout.read())
    p.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError('smp-probe stream failed')
    n = max(probe['records'], 1)
    return (ru.ru_utime + ru.ru_stime) * 1e6 / n, probe['records'], (ru.ru_nvcsw + ru.ru_nivcsw) / n


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
    twin_tmp = T.new_tmp()
    twin = T.Sim(twin_tmp)     # the same stream, for smp-probe while smpd has sim
    smpd = None
    try:
        # baselines on the raw socket, before smpd takes it
        r = subprocess.run([RTT, sim.sock, str(COUNT)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError('bench-rtt: ' + r.stderr)
        raw = json.loads(r.stdout)

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

        # telemetry CPU while the needle runs, windows alternating with smp-probe's
        d.Start()
        T.wait_for(lambda: sim.status()['state'] == 'RUNNING', 3, 'needle running')
        sim_cpu, reader_cpu = placement()
        for proc, cpu in ((sim, sim_cpu), (twin, sim_cpu), (smpd, reader_cpu)):
            pin(proc.proc.pid, cpu)
        smpd_w, probe_w, smpd_samples, probe_records = [], [], 0, 0
        smpd_cs, probe_cs = [], []
        for _ in range(ROUNDS):
            s0 = int(sim.ctl('stats').split('telemetry_sent=')[1].split()[0])
            c0, x0 = cpu_seconds(smpd.proc.pid), ctxt_switches(smpd.proc.pid)
            T.pump(SECONDS)      # the client takes the Telemetry signals, as a UI would
            c1, x1 = cpu_seconds(smpd.proc.pid), ctxt_switches(smpd.proc.pid)
            s1 = int(sim.ctl('stats').split('telemetry_sent=')[1].split()[0])
            smpd_w.append((c1 - c0) * 1e6 / max(s1 - s0, 1))
            smpd_samples += s1 - s0
            smpd_cs.append((x1 - x0) / max(s1 - s0, 1))
            us, n, cs = probe_cpu_per_record(twin.sock, SECONDS, reader_cpu)
            probe_w.append(us)
            probe_cs.append(cs)
            probe_records += n
        for proc in (sim, twin, smpd):
            pin(proc.proc.pid, None)
        if sim.status()['state'] != 'RUNNING':
            raise RuntimeError('the needle stopped during the telemetry measurement')
        d.Stop()
        c.close()
        out = {
            'control_rtt': {
                'unit': 'us', 'count': COUNT,
                'smpd_p50': round(pct(lat, 50), 1), 'smpd_p99': round(pct(lat, 99), 1),
                'smpd_mean': round(statistics.fmean(lat), 1),
                'raw_p50': raw['p50_us'], 'raw_p99': raw['p99_us'], 'raw_mean': raw['mean_us'],
                'ratio_p50': round(pct(lat, 50) / raw['p50_us'], 1),
            },
            'telemetry_cpu': {
                'unit': 'us CPU per record (median of the windows)', 'seconds': SECONDS,
                'rounds': ROUNDS,
                'smpd_records': smpd_samples,
                'smpd': round(statistics.median(smpd_w), 2),
                'smpd_windows': [round(x, 2) for x in smpd_w],
                'probe_records': probe_records,
                'probe': round(statistics.median(probe_w), 2),
                'probe_windows': [round(x, 2) for x in probe_w],
                'window_ratios': [round(a / b, 3) if b else None for a, b in zip(smpd_w, probe_w)],
                # wakeups: context switches per record (smpd: all its threads)
                'smpd_switches_per_record': [round(x, 3) for x in smpd_cs],
                'probe_switches_per_record': [round(x, 3) for x in probe_cs],
                'placement': {'pin': PIN, 'simulators_cpu': sim_cpu, 'readers_cpu': reader_cpu},
                'loadavg': os.getloadavg(),
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
        twin.stop()
        polkit.stop()
        bus.stop()
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
