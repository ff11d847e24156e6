#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The collector's fleet view, `smp-audit fleet` (issue 17, docs/fleet.md).

usage: test-fleet-view.py SMP_AUDIT JOURNAL_GEN

Six workstations' logs written by journal-gen, their mirrored entries
turned into one collector journal directory by the real
systemd-journal-remote (as behind stunnel: one file for all), some of
them spoilt on the way or on the workstation.  The fleet view must name
each workstation's verdict (intact; tampered: an entry altered; gap: an
entry lost; truncated: the workstation's log cut back; tampered: the
workstation's log replaced by a fresh one; unverifiable: no key), its
last record and last seal, its sessions and faults per day (an entry
received twice counted once), the same in --json and in the --html page's
table and plots, and exit with the worst verdict.
"""
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile

from audittest import REMOTE, check, finish, need_remote

SMP_AUDIT, GEN = sys.argv[1], sys.argv[2]
WRAP = os.environ.get("SMP_TEST_WRAPPER", "").split()
DAY = 86400 * 1000000


need_remote()

T = tempfile.mkdtemp(prefix="smp-fleet-view-")


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, **kw)


def field(e, name):
    for ln in e.split(b"\n"):
        if ln.startswith(name + b"="):
            return ln[len(name) + 1:]
    return None


def set_field(e, name, value):
    return b"\n".join(name + b"=" + value if ln.startswith(name + b"=") else ln for ln in e.split(b"\n"))


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.svgs, self.bars = {}, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-machine-id" in a:
            self.rows[a["data-machine-id"]] = a["data-status"]
        if tag == "svg" and "data-machine-id" in a:
            self.svgs.append(a["data-machine-id"])
        if tag == "rect" and a.get("class") in ("sessions", "faults"):
            self.bars.append((self.svgs[-1], a["class"], a["data-day"], int(a["data-count"])))


try:
    LOGS, KEYS, JDIR = (os.path.join(T, d) for d in ("logs", "keys", "remote"))
    for d in (LOGS, KEYS, JDIR):
        os.mkdir(d)
    hosts = ["chair-%d" % i for i in range(1, 7)]
    mid = {h: "f1ee7c0ffee0000000000000000000%02d" % i for i, h in enumerate(hosts, 1)}
    ent = {}
    for h in hosts:
        # chair-1: 3 sessions, the first with a fault; the others 2 sessions
        out = run(WRAP + [GEN, os.path.join(LOGS, h), os.path.join(KEYS, h + ".key"), mid[h], h,
                          "3" if h == "chair-1" else "2", "1" if h == "chair-1" else "0"], check=True).stdout
        ent[h] = [e for e in out.split(b"\n\n") if e.strip()]
    os.remove(os.path.join(KEYS, "chair-6.key"))		# unverifiable: no key

    # chair-1 over two days: from its second session on, a day later; and
    # its second session's begin received twice (the upload's cursor).
    begins = [i for i, e in enumerate(ent["chair-1"]) if field(e, b"SMP_EVENT") == b"session_begin"]
    for i in range(begins[1], len(ent["chair-1"])):
        e = ent["chair-1"][i]
        ent["chair-1"][i] = set_field(e, b"__REALTIME_TIMESTAMP",
                                      b"%d" % (int(field(e, b"__REALTIME_TIMESTAMP")) + DAY))
    ent["chair-1"].insert(begins[1] + 1, ent["chair-1"][begins[1]])
    day0 = int(field(ent["chair-1"][0], b"__REALTIME_TIMESTAMP")) // DAY
    # chair-2 tampered: one record's bytes altered on the way
    e = ent["chair-2"][10]
    rec = field(e, b"SMPC_RECORD")
    ent["chair-2"][10] = set_field(e, b"SMPC_RECORD", rec[:-1] + (b"0" if rec[-1:] != b"0" else b"1"))
    tampered_seq = int(field(e, b"SMP_SEQ"))
    # chair-3 gap: one entry lost
    gap_seq = int(field(ent["chair-3"][9], b"SMP_SEQ"))
    del ent["chair-3"][9]
    # chair-4 truncated: its log cut back on the workstation
    d = os.path.join(LOGS, "chair-4")
    last = sorted(f for f in os.listdir(d) if f.endswith(".smplog"))[-1]
    os.truncate(os.path.join(d, last), os.path.getsize(os.path.join(d, last)) - 1)
    # chair-5 replaced: a fresh log where its log was
    shutil.rmtree(os.path.join(LOGS, "chair-5"))
    run(WRAP + [GEN, os.path.join(LOGS, "chair-5"), os.path.join(T, "other.key"), mid["chair-5"], "chair-5", "1"],
        check=True)

    stream = b"".join(e + b"\n\n" for h in hosts for e in ent[h])
    run([REMOTE, "--output=" + os.path.join(JDIR, "remote-127.0.0.1.journal"), "-"], input=stream, check=True)

    want = {"chair-1": "INTACT", "chair-2": "TAMPERED", "chair-3": "GAP", "chair-4": "TRUNCATED",
            "chair-5": "TAMPERED", "chair-6": "UNVERIFIABLE"}
    args = [SMP_AUDIT, "fleet", JDIR, "--keys", KEYS, "--local-dir", LOGS]

    # the table
    p = run(WRAP + args)
    text = p.stdout.decode()
    check(p.returncode == 3, "the fleet's exit status is its worst verdict (tampered)", "%d %s" % (p.returncode, text))
    rows = {ln.split()[0]: ln for ln in text.split("\n\n")[0].splitlines()[1:]}
    for h, v in want.items():
        check(h in rows and rows[h].split()[6].rstrip(":") == v, "table: %s is %s" % (h, v), rows.get(h, text))
    check("replaced" in rows.get("chair-5", ""), "table: the replaced log is named replaced", rows.get("chair-5"))
    days = [ln.split() for ln in text.split("\n\n")[1].splitlines()[1:]]
    c1 = [d[1:] for d in days if d[0] == "chair-1"]
    check(len(c1) == 2 and c1[0][1:] == ["1", "1"] and c1[1][1:] == ["2", "0"],
          "table: chair-1's sessions and faults per day, the duplicate counted once", repr(c1))

    # --json
    p = run(WRAP + args + ["--json"])
    doc = json.loads(p.stdout)
    check(p.returncode == 3 and doc["exit_code"] == 3, "--json: the same exit status")
    by = {w["hostname"]: w for w in doc["workstations"]}
    check(sorted(by) == hosts, "--json: every workstation, no other machine", repr(sorted(by)))
    for h, v in want.items():
        check(by[h]["verification"]["status"] == v and by[h]["machine_id"] == mid[h], "--json: %s is %s" % (h, v),
              repr(by[h]["verification"]))
    check(by["chair-2"]["verification"]["seq"] == tampered_seq, "--json: the altered record is named",
          repr(by["chair-2"]["verification"]))
    check(by["chair-3"]["verification"].get("gap_first") == gap_seq == by["chair-3"]["verification"].get("gap_last"),
          "--json: the lost record is named", repr(by["chair-3"]["verification"]))
    w = by["chair-1"]
    seqs = [int(field(e, b"SMP_SEQ")) for e in ent["chair-1"]]
    seals = [int(field(e, b"SMP_SEQ")) for e in ent["chair-1"] if field(e, b"SMP_RECORD_TYPE") == b"seal"]
    check(w["last_record"]["seq"] == max(seqs) and w["last_seal"]["seq"] == max(seals),
          "--json: chair-1's last record and last seal", repr((w["last_record"], w["last_seal"])))
    check([(d["sessions"], d["faults"]) for d in w["days"]] == [(1, 1), (2, 0)] and
          w["days"][0]["day"] == run(["date", "-u", "-d", "@%d" % (day0 * 86400), "+%F"]).stdout.decode().strip(),
          "--json: chair-1's days", repr(w["days"]))
    check(w["verification"]["key"] and w["verification"]["local"] and not by["chair-6"]["verification"]["key"],
          "--json: which key and local log were used")

    # --html
    page = os.path.join(T, "fleet.html")
    p = run(WRAP + args + ["--html", page])
    check(p.returncode == 3, "--html: the same exit status")
    parser = Page()
    with open(page) as f:
        parser.feed(f.read())
    check(parser.rows == {mid[h]: v for h, v in want.items()}, "--html: each workstation's row and verdict",
          repr(parser.rows))
    check(sorted(parser.svgs) == sorted(mid.values()), "--html: one plot per workstation", repr(parser.svgs))
    bars = [(b[1], b[3]) for b in parser.bars if b[0] == mid["chair-1"]]
    check(bars == [("sessions", 1), ("faults", 1), ("sessions", 2), ("faults", 0)],
          "--html: chair-1's plot has its sessions and faults per day", repr(bars))

    # Without the spoilt ones: every workstation intact, exit 0.
    only = os.path.join(T, "only")
    os.mkdir(only)
    run([REMOTE, "--output=" + os.path.join(only, "remote.journal"), "-"],
        input=b"".join(e + b"\n\n" for e in ent["chair-1"]), check=True)
    p = run(WRAP + [SMP_AUDIT, "fleet", only, "--keys", KEYS, "--local-dir", LOGS])
    check(p.returncode == 0 and "INTACT" in p.stdout.decode(), "a fleet all intact exits 0", p.stdout.decode())
    p = run(WRAP + [SMP_AUDIT, "fleet", os.path.join(T, "missing")])
    check(p.returncode == 1 and b"missing" in p.stderr, "a missing journal directory is named", p.stderr.decode())
finally:
    if os.environ.get("KEEP"):
        print("kept", T)
    else:
        shutil.rmtree(T, ignore_errors=True)

finish()
