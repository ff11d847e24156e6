#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make bench: every figure next to a baseline measured in the same run, as
# a ratio (docs/benchmarks.md says what each one measures).  Writes
# $BUILD/bench.json and prints a table.  Timings are never asserted.
# usage: build-aux/bench.sh      (BUILD, BENCH_DIR, BENCH_SECONDS from the environment)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
# the audit figures are for the filesystem smpd's state lives on
BENCH_DIR=${BENCH_DIR:-/var/tmp}
export BENCH_SECONDS=${BENCH_SECONDS:-10}
export BENCH_TELEMETRY_SECONDS=${BENCH_TELEMETRY_SECONDS:-60}
# 1: also the kernel-path figures in the VM (needs kernel/smpusb.ko)
BENCH_VM=${BENCH_VM:-1}
# recall: only the lot recall figure (bench-audit's recall part), nothing else;
# smpd: only smpd's figures on the socket path (bench-smpd.py, bench-safety.py)
# fleet: only the collector figures (tests/audit/bench-fleet.py)
BENCH_ONLY=${BENCH_ONLY:-}
case "$BENCH_ONLY" in '' | recall | smpd | fleet) ;; *) echo "bench: BENCH_ONLY=$BENCH_ONLY: only 'recall', 'smpd' and 'fleet' are known" >&2; exit 2 ;; esac
# the collector's fleets (docs/fleet.md "Scale"): N workstations' streams
BENCH_FLEET_N=${BENCH_FLEET_N:-1 10 50}

die() { echo "bench: $*" >&2; exit 1; }
for x in tests/audit/bench-audit tests/audit/journal-gen tools/smpctl/smpctl audit/smp-audit tests/evidence/bench-rtt tests/evidence/bench-libsmp daemon/smpd tools/smp-sim/smp-sim \
	tools/smp-probe/smp-probe; do
	[ -x "$BUILD/$x" ] || die "$BUILD/$x is missing: build first (make build)"
done
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 is missing"
command -v sha256sum >/dev/null || die "sha256sum is missing"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$BENCH_ONLY" = recall ]; then
	echo "bench: lot recall only (bench-audit on $BENCH_DIR, 10,000 sessions)..." >&2
	BENCH_AUDIT_ONLY=recall BENCH_SMPCTL=$BUILD/tools/smpctl/smpctl BENCH_SMP_AUDIT=$BUILD/audit/smp-audit \
		"$BUILD/tests/audit/bench-audit" "$BENCH_DIR" >"$work/audit.txt" ||
		die "bench-audit failed: $(cat "$work/audit.txt")"
	/usr/bin/python3 - "$work/audit.txt" "$BUILD/bench.json" <<'PY'
import json, os, re, sys, time
t = open(sys.argv[1]).read()
rc = re.search(r'recall \(10000 sessions\)\s+([\d.]+) s\s+baseline export of the log\s+([\d.]+) s.*recall CPU ([\d.]+) s', t)
if not rc:
    sys.exit('bench: cannot read bench-audit output:\n' + t)
val, base, cpu = float(rc[1]), float(rc[2]), float(rc[3])
load = os.getloadavg()
row = {'name': 'lot recall, 10,000 sessions: smpctl log recall', 'value': val, 'unit': 's',
       'baseline_name': 'smp-audit export of the same log', 'baseline': base,
       'ratio': round(val / base, 3) if base else None, 'better': 'lower', 'cpu_s': cpu}
print(f'{"figure":45} {"value":>10} {"unit":5} {"baseline":>10}  {"ratio":>8}  baseline')
print(f'{row["name"]:45} {val:10.5g} {"s":5} {base:10.5g}  {row["ratio"]:8.4g}  {row["baseline_name"]}')
print(f'(recall CPU {cpu:.3f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs)')
json.dump({'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'host': os.uname().nodename,
           'nproc': os.cpu_count(), 'loadavg': load, 'only': 'recall', 'figures': [row],
           'raw': {'bench_audit': t}}, open(sys.argv[2], 'w'), indent=1)
print(f'(written to {sys.argv[2]})')
PY
	exit 0
fi

# fleet_bench OUT: the collector ingesting and verifying N workstations'
# streams next to systemd-journal-remote alone and sha256sum, same run.
fleet_bench() {
	echo "bench: the collector, fleets of $BENCH_FLEET_N workstations (bench-fleet.py)..." >&2
	BENCH_DIR=$BENCH_DIR /usr/bin/python3 tests/audit/bench-fleet.py "$BUILD/audit/smp-audit" \
		"$BUILD/tests/audit/journal-gen" $BENCH_FLEET_N >"$1" || die "bench-fleet.py failed"
}

if [ "$BENCH_ONLY" = fleet ]; then
	fleet_bench "$work/fleet.json"
	/usr/bin/python3 - "$work/fleet.json" "$BUILD/bench.json" <<'PY'
import json, os, sys, time
fl = json.load(open(sys.argv[1]))
print(f'{"figure":45} {"value":>10} {"unit":9} {"baseline":>10}  {"ratio":>8}  baseline')
for r in fl['rows']:
    r['ratio'] = round(r['value'] / r['baseline'], 3) if r['baseline'] else None
    print(f'{r["name"]:45} {r["value"]:10.5g} {r["unit"]:9} {r["baseline"]:10.5g}  {r["ratio"]:8.4g}  {r["baseline_name"]}')
for n, x in fl['per_n'].items():
    print(f'(N={n}: {x["entries"]} entries, {x["export_bytes"] / 1e6:.1f} MB of export, journal {x["journal_bytes"] / 1e6:.1f} MB; '
          f'verify {x["verify_s"]:.3f} s = {x["verify_s_per_workstation"] * 1000:.1f} ms per workstation)')
load = os.getloadavg()
print(f'(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs)')
json.dump({'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'host': os.uname().nodename,
           'nproc': os.cpu_count(), 'loadavg': load, 'only': 'fleet', 'figures': fl['rows'],
           'raw': {'fleet': fl}}, open(sys.argv[2], 'w'), indent=1)
print(f'(written to {sys.argv[2]})')
PY
	exit 0
fi

: >"$work/audit.txt"
if [ "$BENCH_ONLY" != smpd ]; then
	echo "bench: audit log on $BENCH_DIR (bench-audit: durable appends, verify)..." >&2
	BENCH_SMPCTL=$BUILD/tools/smpctl/smpctl BENCH_SMP_AUDIT=$BUILD/audit/smp-audit \
		"$BUILD/tests/audit/bench-audit" "$BENCH_DIR" 2000 64 >"$work/audit.txt" ||
		die "bench-audit failed: $(cat "$work/audit.txt")"
fi
if [ "$BENCH_ONLY" != smpd ]; then
	fleet_bench "$work/fleet.json"
else
	echo '{"rows": []}' >"$work/fleet.json"
fi
echo "bench: smpd (control round trip, telemetry CPU, idle wakeups; ~$((BENCH_SECONDS * 3 + 15)) s)..." >&2
SMPD_SOURCE_DIR=$top SMPD_BUILD_DIR=$BUILD PYTHONDONTWRITEBYTECODE=1 \
	/usr/bin/python3 tests/evidence/bench-smpd.py >"$work/smpd.json" ||
	die "bench-smpd.py failed"

echo "bench: safety reaction, dead-man, ${BENCH_TELEMETRY_SECONDS:-60} s of 1 kHz telemetry (socket path)..." >&2
SMPD_SOURCE_DIR=$top SMPD_BUILD_DIR=$BUILD PYTHONDONTWRITEBYTECODE=1 \
	/usr/bin/python3 tests/evidence/bench-safety.py >"$work/safety.json" ||
	die "bench-safety.py failed"

# ClientTimeoutMs's margin (docs/safety.md "ClientTimeoutMs"): a GUI-class
# claimant at normal priority under CPU load, its Heartbeat gaps as smpd
# sees them, and the shipped timeout against it.
echo '{}' >"$work/heartbeat.json"
if [ "$BENCH_ONLY" != smpd ]; then
	echo "bench: claimant heartbeat under load, 2 x ${BENCH_HEARTBEAT_SECONDS:-60} s..." >&2
	SMPD_SOURCE_DIR=$top SMPD_BUILD_DIR=$BUILD PYTHONDONTWRITEBYTECODE=1 \
		/usr/bin/python3 tests/evidence/bench-heartbeat.py >"$work/heartbeat.json" ||
		die "bench-heartbeat.py failed"
fi

# The kernel path: the same figures in the VM (qemu TCG), through smpusb.ko.
echo '{}' >"$work/kernel.json"
vm_failed=
vm_rc=0
if [ "$BENCH_VM" = 1 ] && [ "$BENCH_ONLY" != smpd ]; then
	[ -f tests/vm/lib-smpd.sh ] ||
		die "the kernel-path figures need tests/vm/lib-smpd.sh (smpd in the VM); BENCH_VM=0 leaves them out"
	[ -f kernel/smpusb.ko ] || die "kernel/smpusb.ko is missing: make kernel"
	echo "bench: the same through smpusb.ko in the VM (TCG; several minutes)..." >&2
	out_vm="$BUILD/bench-vm"
	wrap="$BUILD/bench-vm.sh"
	rm -rf "$out_vm"
	cat >"$wrap" <<WRAP
#!/bin/bash
# vm-timeout: $((BENCH_TELEMETRY_SECONDS * 3 + 1200))
export BENCH_REACTION_COUNT=${BENCH_REACTION_COUNT:-50} BENCH_DEADMAN_COUNT=${BENCH_DEADMAN_COUNT:-15}
export BENCH_TELEMETRY_SECONDS=$BENCH_TELEMETRY_SECONDS BENCH_COUNT=${BENCH_COUNT:-300}
exec bash "\$SMP_SRC/tests/vm/bench/bench-kernel.sh"
WRAP
	chmod +x "$wrap"
	SMP_VM_TIMEOUT=$((BENCH_TELEMETRY_SECONDS * 3 + 1800)) \
		tests/vm/run --build "$BUILD" --out "$out_vm" "$wrap" >"$work/vm.tap" 2>&1 || vm_rc=$?
	found=$(find "$out_vm/tests" -name bench-kernel.json | head -n1)
	if [ $vm_rc -eq 0 ] && [ -s "$found" ]; then
		cp "$found" "$work/kernel.json"
	else
		# the host table is still printed; the run fails at the end
		vm_failed="the VM benchmark failed (exit $vm_rc): $(grep -v '^# stderr: #   ' "$work/vm.tap" | tail -n 12); see $out_vm"
	fi
fi

/usr/bin/python3 - "$work/audit.txt" "$work/smpd.json" "$work/safety.json" "$work/kernel.json" \
	"$work/heartbeat.json" "$work/fleet.json" "$BUILD/bench.json" <<'PY'
import json, re, sys, time, os
audit_txt, smpd_json, safety_json, kernel_json, heartbeat_json, fleet_json, out = sys.argv[1:]
t = open(audit_txt).read()
m = re.search(r'durable appends \(1 sync each\)\s+([\d.]+) /s\s+baseline raw write\+fdatasync\s+([\d.]+) /s', t)
g = re.search(r'group commit \(1 sync per 16\)\s+([\d.]+) /s', t)
v = re.search(r'verify\s+([\d.]+) MB/s baseline sha256sum\s+([\d.]+) MB/s', t)
rs = re.search(r'record size\s+(\d+) bytes', t)
rc = re.search(r'recall \(10000 sessions\)\s+([\d.]+) s\s+baseline export of the log\s+([\d.]+) s', t)
if t and not (m and g and v and rs and rc):  # empty: BENCH_ONLY=smpd
    sys.exit('bench: cannot read bench-audit output:\n' + t)
s = json.load(open(smpd_json))
f = json.load(open(safety_json))
k = json.load(open(kernel_json))
hb = json.load(open(heartbeat_json))
fl = json.load(open(fleet_json))
raw, tel = f['raw_rtt'], f['telemetry']


def stalled(t):
    """Runs a host stall stopped before this one (bench-safety.py retries)."""
    n = len(t.get('stalled_runs', []))
    return f' ({n} stalled before)' if n else ''


rows = [
    # name, value, unit, baseline name, baseline, better
    ('audit durable appends (1 fdatasync each)', float(m[1]), '/s',
     'raw pwrite+fdatasync, same bytes', float(m[2]), 'higher'),
    ('audit group commit (1 fdatasync per 16)', float(g[1]), '/s',
     'raw pwrite+fdatasync, same bytes', float(m[2]), 'higher'),
    ('audit verify', float(v[1]), 'MB/s', 'sha256sum, same files', float(v[2]), 'higher'),
    ('lot recall, 10,000 sessions: smpctl log recall', float(rc[1]), 's',
     'smp-audit export of the same log', float(rc[2]), 'lower'),
] if t else []
rows += [
    ('control round trip p50: D-Bus SetParameters', s['control_rtt']['smpd_p50'], 'us',
     'raw SET_PARAMS round trip (socket)', s['control_rtt']['raw_p50'], 'lower'),
    ('control round trip p99: D-Bus SetParameters', s['control_rtt']['smpd_p99'], 'us',
     'raw SET_PARAMS round trip (socket)', s['control_rtt']['raw_p99'], 'lower'),
    ('smpd CPU per telemetry record (running)', s['telemetry_cpu']['smpd'], 'us',
     'smp-probe reading the same stream', s['telemetry_cpu']['probe'], 'lower'),
    ('smpd wakeups/s, no device', s['idle_wakeups']['no_device'], '/s',
     'smpd wakeups/s, idle device attached', s['idle_wakeups']['idle_device'], 'lower'),
    ('safety reaction p50: telemetry fault -> STOP', f['reaction']['p50_ms'], 'ms',
     'raw command round trip p50 (socket)', raw['p50_ms'], 'lower'),
    ('safety reaction p99: telemetry fault -> STOP', f['reaction']['p99_ms'], 'ms',
     'raw command round trip p99 (socket)', raw['p99_ms'], 'lower'),
    ('dead-man p50: owner killed -> STOP', f['owner_killed']['p50_ms'], 'ms',
     'raw command round trip p50 (socket)', raw['p50_ms'], 'lower'),
    ('dead-man p99: owner killed -> STOP', f['owner_killed']['p99_ms'], 'ms',
     'raw command round trip p99 (socket)', raw['p99_ms'], 'lower'),
    ('dead-man p50: lease missed -> STOP', f['lease_missed']['p50_ms'], 'ms',
     'the lease (LeaseMs)', f['lease_missed']['lease_ms'], 'lower'),
    ('dead-man p99: lease missed -> STOP', f['lease_missed']['p99_ms'], 'ms',
     'the lease (LeaseMs)', f['lease_missed']['lease_ms'], 'lower'),
    (f'telemetry drops, {tel.get("ran_seconds", tel["seconds"]):g} s at 1 kHz via smpd{stalled(tel)}', tel['device_dropped'] + tel['smpd_missed'],
     'rec', 'records the device sent', tel['records'], 'lower'),
    (f'smpd VmRSS after {tel["seconds"]:g} s of 1 kHz', tel['rss_kb'], 'KiB',
     'VmRSS idle, just started', tel['rss_idle_kb'], 'lower'),
    (f'smpd VmHWM after {tel["seconds"]:g} s of 1 kHz', tel['hwm_kb'], 'KiB',
     'VmRSS idle, just started', tel['rss_idle_kb'], 'lower'),
    ('control round trip p50: libsmp, applied', f['control_rtt']['p50_ms'], 'ms',
     'raw command round trip p50 (socket)', raw['p50_ms'], 'lower'),
    ('control round trip p99: libsmp, applied', f['control_rtt']['p99_ms'], 'ms',
     'raw command round trip p99 (socket)', raw['p99_ms'], 'lower'),
] + ([
    ('claimant Heartbeat gap p99, loaded, at smpd', hb['measure']['gap_routed_to_smpd']['p99_ms'], 'ms',
     'ClientTimeoutMs (shipped)', hb['check']['client_timeout_ms'], 'lower'),
    ('claimant Heartbeat gap max, loaded, at smpd', hb['measure']['gap_routed_to_smpd']['max_ms'], 'ms',
     'ClientTimeoutMs (shipped)', hb['check']['client_timeout_ms'], 'lower'),
    (f'spurious client-unresponsive, {hb["check"]["seconds"]:g} s loaded', int(hb['check']['spurious_stop']),
     'stops', 'sessions run', 1, 'lower'),
    ('hung claimant -> STOP (device clock), loaded', hb['check']['hang_stop_ms'] or float('nan'), 'ms',
     'RenewMs + ClientTimeoutMs + 1', hb['check']['bound_ms'], 'lower'),
] if hb else [])
if k:
    kr, kt = k['raw_rtt'], k['telemetry']
    rows += [
        ('[VM] control p50: libsmp, applied', k['control_rtt']['p50_ms'], 'ms',
         'raw SMPUSB ioctl round trip p50', kr['p50_ms'], 'lower'),
        ('[VM] control p99: libsmp, applied', k['control_rtt']['p99_ms'], 'ms',
         'raw SMPUSB ioctl round trip p99', kr['p99_ms'], 'lower'),
        ('[VM] safety reaction p50', k['reaction']['p50_ms'], 'ms',
         'raw SMPUSB ioctl round trip p50', kr['p50_ms'], 'lower'),
        ('[VM] safety reaction p99', k['reaction']['p99_ms'], 'ms',
         'raw SMPUSB ioctl round trip p99', kr['p99_ms'], 'lower'),
        ('[VM] dead-man p50: owner killed -> STOP', k['owner_killed']['p50_ms'], 'ms',
         'raw SMPUSB ioctl round trip p50', kr['p50_ms'], 'lower'),
        ('[VM] dead-man p99: owner killed -> STOP', k['owner_killed']['p99_ms'], 'ms',
         'raw SMPUSB ioctl round trip p99', kr['p99_ms'], 'lower'),
        ('[VM] dead-man p50: lease missed -> STOP', k['lease_missed']['p50_ms'], 'ms',
         'the lease (LeaseMs)', k['lease_missed']['lease_ms'], 'lower'),
        ('[VM] dead-man p99: lease missed -> STOP', k['lease_missed']['p99_ms'], 'ms',
         'the lease (LeaseMs)', k['lease_missed']['lease_ms'], 'lower'),
        (f'[VM] telemetry drops, {kt.get("ran_seconds", kt["seconds"]):g} s 1 kHz, kernel{stalled(kt)}', kt['device_dropped'] + kt['smpd_missed'],
         'rec', 'records the device sent', kt['records'], 'lower'),
        (f'[VM] smpd VmHWM after {kt["seconds"]:g} s of 1 kHz', kt['hwm_kb'], 'KiB',
         'VmRSS idle, just started', kt['rss_idle_kb'], 'lower'),
    ]
rows += [(r['name'], r['value'], r['unit'], r['baseline_name'], r['baseline'], r['better'])
         for r in fl['rows']]
res = {'date': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), 'host': os.uname().nodename,
       'nproc': os.cpu_count(), 'loadavg': os.getloadavg(),
       'audit_record_bytes': int(rs[1]) if t else None, 'figures': []}
if not t:
    res['only'] = 'smpd'
print(f'{"figure":45} {"value":>10} {"unit":5} {"baseline":>10}  {"ratio":>8}  baseline')
for name, val, unit, bname, base, better in rows:
    ratio = round(val / base, 3) if base else None
    res['figures'].append({'name': name, 'value': val, 'unit': unit, 'baseline_name': bname,
                           'baseline': base, 'ratio': ratio, 'better': better})
    rtxt = f'{ratio:8.4g}' if ratio is not None else '     n/a'
    print(f'{name:45} {val:10.5g} {unit:5} {base:10.5g}  {rtxt}  {bname}')
load = res['loadavg']
print(f'(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs)')
res['raw'] = {'bench_audit': t, 'smpd': s, 'safety': f, 'kernel': k, 'heartbeat': hb, 'fleet': fl}
with open(out, 'w') as f:
    json.dump(res, f, indent=1)
print(f'(written to {out})')
PY
if [ -n "$vm_failed" ]; then
	echo "bench: $vm_failed" >&2
	echo "bench: FAILED: the [VM] figures are missing from the table and $BUILD/bench.json" >&2
	exit 1
fi
