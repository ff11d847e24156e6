#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The collector at scale (issue 17, docs/fleet.md "Scale"); run by make bench.

usage: bench-fleet.py SMP_AUDIT JOURNAL_GEN [N ...]     (default N = 1 10 50)

Fifty workstations' logs are recorded once with journal-gen (SESSIONS
sessions each, BENCH_FLEET_SESSIONS, default 100: ~1,260 entries, ~1.4 MB
of export), each with the entries its journal mirror sent.  For each N, the
first N workstations' entries are replayed, in the same run:

  - systemd-journal-remote alone ingesting them (export format on stdin,
    the parser and journal writer it uses behind --listen-http, without the
    HTTP and TLS in front): entries per second;
  - the collector: the same ingest, then `smp-audit fleet` over the journal
    directory it wrote, every workstation verified with its key: entries
    per second for ingest + verification, and verification MB/s over the
    export bytes;
  - sha256sum over the same export bytes: MB/s.

Best of BENCH_FLEET_REPEAT runs (default 3) each.  Prints one JSON object:
{"rows": [...], "per_n": {...}} (build-aux/bench.sh makes the table).
Timings are never asserted.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from audittest import REMOTE

SMP_AUDIT, GEN = sys.argv[1], sys.argv[2]
NS = [int(n) for n in sys.argv[3:]] or [1, 10, 50]
SESSIONS = int(os.environ.get("BENCH_FLEET_SESSIONS", "100"))
REPEAT = int(os.environ.get("BENCH_FLEET_REPEAT", "3"))
if not REMOTE:
    sys.exit("bench-fleet: systemd-journal-remote is missing (package systemd-journal-remote)")
T = tempfile.mkdtemp(prefix="smp-bench-fleet-", dir=os.environ.get("BENCH_DIR", "/var/tmp"))


def timed(argv, **kw):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def du(d):
    return sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)


try:
    keys = os.path.join(T, "keys")
    os.mkdir(keys)
    streams = []
    for i in range(max(NS)):
        h = "chair-%d" % (i + 1)
        out = subprocess.run([GEN, os.path.join(T, "log-" + h), os.path.join(keys, h + ".key"),
                              "f1ee7c0ffee00000000000000000%04x" % (i + 1), h, str(SESSIONS), str(SESSIONS // 10)],
                             check=True, stdout=subprocess.PIPE).stdout
        streams.append(out)
    rows, per_n = [], {}
    for n in NS:
        path = os.path.join(T, "stream-%d.export" % n)
        with open(path, "wb") as f:
            for s in streams[:n]:
                f.write(s)
        nbytes = os.path.getsize(path)
        entries = sum(s.count(b"\nSMPC_CHAIN=") + s.startswith(b"SMPC_CHAIN=") for s in streams[:n])
        ingest, verify, sha, jbytes = [], [], [], 0
        for _ in range(REPEAT):
            d = os.path.join(T, "remote-%d" % n)
            shutil.rmtree(d, ignore_errors=True)
            os.mkdir(d)
            with open(path, "rb") as f:
                ingest.append(timed([REMOTE, "--output=" + os.path.join(d, "remote-127.0.0.1.journal"), "-"],
                                    stdin=f, stderr=subprocess.DEVNULL))
            jbytes = du(d)
            t = time.perf_counter()
            p = subprocess.run([SMP_AUDIT, "fleet", d, "--keys", keys, "--json"], stdout=subprocess.PIPE)
            verify.append(time.perf_counter() - t)
            doc = json.loads(p.stdout)
            bad = [w["hostname"] for w in doc["workstations"] if w["verification"]["status"] != "INTACT"]
            if p.returncode != 0 or bad or len(doc["workstations"]) != n:
                sys.exit("bench-fleet: the fleet of %d does not verify intact: %s" % (n, bad or p.returncode))
            sha.append(timed(["sha256sum", path]))
        ti, tv, ts = min(ingest), min(verify), min(sha)
        per_n[n] = {"workstations": n, "entries": entries, "export_bytes": nbytes, "journal_bytes": jbytes,
                    "ingest_s": ti, "verify_s": tv, "sha256sum_s": ts, "verify_s_per_workstation": tv / n}
        rows.append({"name": "fleet N=%d: ingest + smp-audit fleet" % n, "value": entries / (ti + tv),
                     "unit": "entries/s", "baseline_name": "systemd-journal-remote alone, same entries",
                     "baseline": entries / ti, "better": "higher"})
        rows.append({"name": "fleet N=%d: smp-audit fleet verify" % n, "value": nbytes / tv / 1e6,
                     "unit": "MB/s", "baseline_name": "sha256sum, same export bytes",
                     "baseline": nbytes / ts / 1e6, "better": "higher"})
    print(json.dumps({"sessions_per_workstation": SESSIONS, "repeat": REPEAT, "rows": rows,
                      "per_n": per_n}, indent=1))
finally:
    shutil.rmtree(T, ignore_errors=True)
