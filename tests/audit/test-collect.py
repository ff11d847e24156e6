#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Central verification of workstations' audit logs (issue 17, hazard H12).

usage: test-collect.py SMP_AUDIT JOURNAL_GEN [--live]

Two workstations' logs are written by journal-gen, which also writes, in the
journal export format, every entry the audit library's journal mirror builds
for them.  The real systemd-journal-remote turns those entries into a journal
directory, as a collector receiving them from systemd-journal-upload keeps
it; `smp-audit verify --journal` must then give each verdict: intact, tampered
at the record whose entry was changed, gap for a removed entry, truncated for
a workstation log cut back, tampered for a rewritten or replaced one,
unverifiable without the right key, and named errors for bad input.
With --live (root or user namespaces): the entries go through
sd_journal_sendv() to a fake journald first, as smpd's do.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
import hashlib

from audittest import REMOTE, check, finish, need_remote

SMP_AUDIT, GEN = sys.argv[1], sys.argv[2]
WRAP = os.environ.get("SMP_TEST_WRAPPER", "").split()
M1, M2 = "5eedc0ffee0000000000000000000001", "5eedc0ffee0000000000000000000002"
PRIVATE = [b"psoriasis", b"rash after the last session"]


need_remote()

T = tempfile.mkdtemp(prefix="smp-collect-")


def parse_export(data):
    """Journal export format -> list of entries, each a list of [name, value]."""
    entries, cur, i = [], [], 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if line == b"":
            if cur:
                entries.append(cur)
            cur, i = [], nl + 1
            continue
        if b"=" in line:
            k, v = line.split(b"=", 1)
            cur.append([k.decode(), v])
            i = nl + 1
        else:
            n = int.from_bytes(data[nl + 1:nl + 9], "little")
            cur.append([line.decode(), data[nl + 9:nl + 9 + n]])
            i = nl + 9 + n + 1
    if cur:
        entries.append(cur)
    return entries


def write_export(entries):
    out = bytearray()
    for e in entries:
        for k, v in e:
            if b"\n" in v:
                out += k.encode() + b"\n" + len(v).to_bytes(8, "little") + v + b"\n"
            else:
                out += k.encode() + b"=" + v + b"\n"
        out += b"\n"
    return bytes(out)


def field(e, name):
    for k, v in e:
        if k == name:
            return v
    return None


def set_field(e, name, value):
    for kv in e:
        if kv[0] == name:
            kv[1] = value
            return
    e.append([name, value])


def seq(e):
    return int(field(e, "SMP_SEQ"))


def gen(name, machine, host, sessions):
    log, key = os.path.join(T, name), os.path.join(T, name + ".key")
    out = subprocess.run(WRAP + [GEN, log, key, machine, host, str(sessions)], stdout=subprocess.PIPE, check=True).stdout
    return log, key, parse_export(out)


def collect(*streams):
    """A collector's journal directory holding these entries, written by systemd-journal-remote."""
    d = tempfile.mkdtemp(dir=T, prefix="journal-")
    data = b"".join(write_export(s) for s in streams)
    p = subprocess.run([REMOTE, "--output=" + os.path.join(d, "remote-collect.journal"), "-"], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        print("FAIL: systemd-journal-remote:", p.stderr.decode(errors="replace"))
        sys.exit(1)
    return d


def verify(jdir, *args, json_out=True):
    cmd = WRAP + [SMP_AUDIT, "verify", "--journal", jdir] + list(args) + (["--json"] if json_out else [])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    rep = None
    if json_out and p.stdout.strip():
        rep = json.loads(p.stdout)
    return p.returncode, rep, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def expect(code, what, jdir, *args, **want):
    rc, rep, text = verify(jdir, *args)
    ok = rc == code and rep is not None and all(rep.get(k) == v for k, v in want.items())
    check(ok, what, "exit %d, expected %d; %s; want %s" % (rc, code, text.strip(), want))
    return rep


def live():
    """smpd's transport: the log mirrors through sd_journal_sendv() to a
    socket at journald's place (journal-gen --live, a private mount
    namespace); what arrived is what the collector verifies."""
    log, key = os.path.join(T, "live"), os.path.join(T, "live.key")
    p = subprocess.run(WRAP + [GEN, "--live", log, key, M1, "chair-1", "3"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode == 77:
        check(False, "a private mount namespace for the fake journald (need root or user namespaces)")
        return
    check(p.returncode == 0, "journal-gen --live ran", p.stderr.decode(errors="replace"))
    sent = parse_export(p.stdout)
    replay = parse_export(subprocess.run(WRAP + [GEN, "--from-log", log, M1, "chair-1"], stdout=subprocess.PIPE,
                                         check=True).stdout)
    ours = lambda es: [[kv for kv in e if kv[0].startswith(("SMP", "MESSAGE", "PRIORITY"))] for e in es]
    check(len(sent) > 30 and ours(sent) == ours(replay),
          "every record went through sd_journal_sendv() exactly as the mirror builds it",
          "%d sent, %d records" % (len(sent), len(replay)))
    check(not any(x in p.stdout for x in PRIVATE), "no annotation or override text went through the socket")
    rc, rep, text = verify(collect(sent), "--machine", M1, "--key-file", key, "--local", log)
    check(rc == 0 and rep and rep["status"] == "INTACT" and rep["last_seq"] == seq(replay[-1]),
          "what journald received verifies intact at the collector", text)


try:
    if len(sys.argv) > 3 and sys.argv[3] == "--live":
        live()
        finish()
    log1, key1, ws1 = gen("ws1", M1, "chair-1", 3)
    log2, key2, ws2 = gen("ws2", M2, "chair-2", 2)
    last1 = seq(ws1[-1])
    good = collect(ws1, ws2)

    # ---- intact: each workstation, by machine id and by host name ----
    expect(0, "workstation 1 verifies intact from the collector's journal", good, "--machine", M1,
           "--key-file", key1, status="INTACT", first_seq=0, last_seq=last1, clean_close=True)
    expect(0, "workstation 2 verifies intact, selected by host name", good, "--host", "chair-2",
           "--key-file", key2, status="INTACT", last_seq=seq(ws2[-1]))
    rep = expect(0, "intact with the workstation's own log compared", good, "--machine", M1, "--key-file", key1,
                 "--local", log1, status="INTACT", local_last_seq=last1)
    check(rep and rep["seals"] >= 3, "seals were checked centrally", str(rep))
    rc, _, text = verify(good, "--machine", M1, "--key-file", key1, json_out=False)
    check(rc == 0 and "INTACT" in text and "withheld" in text, "the text report says intact and counts withheld records",
          text)

    # ---- the builder replayed over a log on disk gives the live mirror's entries ----
    replay = parse_export(subprocess.run(WRAP + [GEN, "--from-log", log1, M1, "chair-1"], stdout=subprocess.PIPE,
                                         check=True).stdout)
    strip = lambda es: [[kv for kv in e if "TIMESTAMP" not in kv[0]] for e in es]
    check(strip(replay) == strip(ws1), "journal-gen --from-log rebuilds exactly what the mirror sent",
          "%d vs %d entries" % (len(replay), len(ws1)))

    # ---- only pseudonyms leave the workstation ----
    raw = write_export(ws1)
    check(not any(p in raw for p in PRIVATE), "no annotation or override text in what the mirror sends")
    with open(os.path.join(good, "remote-collect.journal"), "rb") as f:
        jbytes = f.read()
    check(not any(p in jbytes for p in PRIVATE), "no annotation or override text in the collector's journal")
    withheld = [e for e in ws1 if field(e, "SMPC_WITHHELD")]
    check(len(withheld) == 6 and all(field(e, "SMPC_RECORD") is None and field(e, "SMPC_PREV") for e in withheld),
          "annotations and overrides travel as chain links without their bytes", str(len(withheld)))
    check(all(field(e, "SMPC_RECORD") and field(e, "SMPC_CHAIN") and field(e, "SMPC_LOG_ID")
              for e in ws1 if not field(e, "SMPC_WITHHELD")),
          "every other entry carries its record, chain value and log id")
    check(any(field(e, "SMP_CLIENT") == b"c-19b2" for e in ws1), "the client pseudonym is searchable")

    # ---- tampered: one searchable field changed at the collector ----
    t = [list(map(list, e)) for e in ws1]
    k = next(i for i, e in enumerate(t) if field(e, "SMP_CLIENT") and field(e, "SMPC_RECORD") and i > 5)
    set_field(t[k], "SMP_CLIENT", b"c-0000")
    d = collect(t, ws2)
    rep = expect(3, "a changed SMP_CLIENT is tampered at that record", d, "--machine", M1, "--key-file", key1,
                 status="TAMPERED", seq=seq(t[k]))
    check(rep and "SMP_CLIENT" in rep.get("reason", ""), "the reason names the field", str(rep))
    expect(0, "the untouched workstation still verifies intact", d, "--machine", M2, "--key-file", key2,
           status="INTACT")

    # ---- tampered: the record's bytes changed (one hex digit) ----
    t = [list(map(list, e)) for e in ws1]
    k2 = k + 1 if field(t[k + 1], "SMPC_RECORD") else k + 2
    r = bytearray(field(t[k2], "SMPC_RECORD"))
    r[200] = ord("0") if r[200] != ord("0") else ord("1")
    set_field(t[k2], "SMPC_RECORD", bytes(r))
    expect(3, "a changed record is tampered at that record", collect(t), "--machine", M1, "--key-file", key1,
           status="TAMPERED", seq=seq(t[k2]))

    # ---- tampered: a record rewritten with a consistent chain up to the next seal: the seal catches it ----
    t = [list(map(list, e)) for e in ws1]
    # The first record naming the device whose next seal follows without withheld records between.
    start = seal = None
    for i, e in enumerate(t):
        if field(e, "SMP_DEVICE") != b"SMP-0042" or field(e, "SMPC_WITHHELD"):
            continue
        j = next(j for j in range(i + 1, len(t)) if field(t[j], "SMP_EVENT") in (b"seal", b"annotation", b"override"))
        if field(t[j], "SMP_EVENT") == b"seal":
            start, seal = i, j
            break
    check(start is not None, "a forgery window exists")
    prev_hash = None
    for i in range(start, seal + 1):
        rec = bytearray(bytes.fromhex(field(t[i], "SMPC_RECORD").decode()))
        if i == start:
            at = rec.find(b"SMP-0042")
            rec[at:at + 8] = b"SMP-0666"
            set_field(t[i], "SMP_DEVICE", b"SMP-0666")
            set_field(t[i], "MESSAGE", field(t[i], "MESSAGE").replace(b"SMP-0042", b"SMP-0666"))
        else:
            rec[40:72] = prev_hash
        rec[-4:] = zlib.crc32(bytes(rec[:-4])).to_bytes(4, "little")
        prev_hash = hashlib.sha256(rec).digest()
        set_field(t[i], "SMPC_RECORD", bytes(rec).hex().encode())
        set_field(t[i], "SMPC_CHAIN", prev_hash.hex().encode())
    rep = expect(3, "a rewritten, re-chained record is caught by the seal after it", collect(t), "--machine", M1,
                 "--key-file", key1, status="TAMPERED", seq=seq(t[seal]))
    check(rep and "does not verify" in rep.get("reason", ""), "the reason is the seal", str(rep))

    # ---- tampered: a whole record stripped, posing as withheld ----
    t = [list(map(list, e)) for e in ws1]
    rec = bytes.fromhex(field(t[k], "SMPC_RECORD").decode())
    t[k] = [kv for kv in t[k] if kv[0] != "SMPC_RECORD"] + [["SMPC_WITHHELD", b"client"],
                                                             ["SMPC_PREV", rec[40:72].hex().encode()]]
    expect(3, "an entry stripped of its record without withheld text is tampered", collect(t), "--machine", M1,
           "--key-file", key1, status="TAMPERED", seq=seq(t[k]))

    # ---- tampered: two different records with one sequence number ----
    t = [list(map(list, e)) for e in ws1]
    other = [list(map(list, e)) for e in t if seq(e) == seq(t[k2 + 1])][0]
    set_field(other, "SMPC_RECORD", field(t[k2], "SMPC_RECORD"))
    set_field(other, "SMPC_CHAIN", field(t[k2], "SMPC_CHAIN"))
    set_field(other, "SMP_SEQ", field(t[k2 + 1], "SMP_SEQ"))
    expect(3, "two different records under one sequence number are tampered", collect(t + [other]), "--machine", M1,
           "--key-file", key1, status="TAMPERED")
    expect(0, "an entry received twice is not an error", collect(ws1 + [ws1[k]]), "--machine", M1,
           "--key-file", key1, status="INTACT")

    # ---- gap: one entry removed ----
    t = [e for e in ws1 if seq(e) != seq(ws1[k])]
    rep = expect(6, "a removed entry is a gap", collect(t), "--machine", M1, "--key-file", key1, status="GAP",
                 gap_first=seq(ws1[k]), gap_last=seq(ws1[k]))
    t = [e for e in ws1 if not 10 <= seq(e) <= 12]
    expect(6, "three removed entries are one gap", collect(t), "--machine", M1, "--key-file", key1, status="GAP",
           gap_first=10, gap_last=12)

    # ---- truncated: the workstation's log cut back at a record boundary ----
    cut = os.path.join(T, "ws1-cut")
    shutil.copytree(log1, cut)
    export = subprocess.run([SMP_AUDIT, "export", cut, "--format", "json"], stdout=subprocess.PIPE,
                            check=True).stdout.decode().splitlines()
    recs = [json.loads(x) for x in export]
    at = recs[len(recs) - 9]
    os.truncate(os.path.join(cut, at["file"]), at["offset"])
    os.unlink(os.path.join(cut, "audit.key"))
    expect(4, "a workstation log cut back is truncated", good, "--machine", M1, "--key-file", key1, "--local", cut,
           status="TRUNCATED", local_last_seq=at["seq"] - 1)

    # ---- tampered: the workstation's log rewritten, or replaced by a fresh one ----
    rw = os.path.join(T, "ws1-rewritten")
    shutil.copytree(log1, rw)
    victim = recs[12]
    path = os.path.join(rw, victim["file"])
    with open(path, "r+b") as f:
        f.seek(victim["offset"] + 100)
        b = f.read(1)
        f.seek(victim["offset"] + 100)
        f.write(bytes([b[0] ^ 1]))
    # Re-frame it so it still reads as a well-formed record (a careful rewrite).
    with open(path, "r+b") as f:
        f.seek(victim["offset"] + 4)
        length = int.from_bytes(f.read(4), "little")
        f.seek(victim["offset"])
        body = f.read(length - 4)
        f.write(zlib.crc32(body).to_bytes(4, "little"))
    rep = expect(3, "a rewritten workstation record is tampered", good, "--machine", M1, "--key-file", key1,
                 "--local", rw, status="TAMPERED", seq=victim["seq"])
    check(rep and "rewritten" in rep.get("reason", ""), "the reason says rewritten", str(rep))
    fresh, _, _ = gen("ws1-fresh", M1, "chair-1", 1)
    rep = expect(3, "a workstation log replaced by a fresh one is tampered", good, "--machine", M1, "--key-file", key1,
                 "--local", fresh, status="TAMPERED")
    check(rep and "replaced" in rep.get("reason", ""), "the reason says replaced", str(rep))
    _, _, ws1b = gen("ws1-new", M1, "chair-1", 1)
    rep = expect(3, "a second log from one workstation is named as a replacement", collect(ws1, ws1b), "--machine", M1,
                 "--key-file", key1, status="TAMPERED")
    check(rep and "replaced" in rep.get("reason", ""), "the reason says replaced", str(rep))

    # ---- unverifiable ----
    expect(5, "without a key: unverifiable", good, "--machine", M1, "--no-key", status="UNVERIFIABLE")
    rep = expect(5, "another log's key: unverifiable", good, "--machine", M1, "--key-file", key2,
                 status="UNVERIFIABLE")
    check(rep and "does not belong" in rep.get("reason", ""), "the reason says the key is another log's", str(rep))
    expect(5, "a machine with no records: unverifiable", good, "--machine", "f" * 32, "--key-file", key1,
           status="UNVERIFIABLE")

    # ---- bad input: named errors, never a crash ----
    def bad(code, what, args, text):
        p = subprocess.run(WRAP + [SMP_AUDIT, "verify"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        out = (p.stdout + p.stderr).decode(errors="replace")
        check(p.returncode == code and text in out, what, "exit %d: %s" % (p.returncode, out))

    bad(1, "a missing journal directory is named", ["--journal", T + "/nope", "--machine", M1, "--no-key"],
        T + "/nope")
    bad(2, "a malformed machine id is refused", ["--journal", good, "--machine", "XYZ", "--no-key"], "bad machine id")
    bad(2, "--machine and --host together are refused", ["--journal", good, "--machine", M1, "--host", "a",
                                                         "--no-key"], "exactly one of --machine")
    bad(2, "--local without --journal is refused", [log1, "--local", log1, "--no-key"], "need --journal")
    bad(5, "a malformed key is named", ["--journal", good, "--machine", M1, "--key", "smpk1-nonsense"], "malformed")
    bad(1, "a missing local log is named", ["--journal", good, "--machine", M1, "--no-key", "--local", T + "/gone"],
        T + "/gone")
    # Malformed entries at the collector: each named at its record, never a crash.
    def malformed(name, value):
        def f(e):
            if value is None:
                e[:] = [kv for kv in e if kv[0] != name]
            else:
                set_field(e, name, value)
        return f

    rec = field(ws1[k], "SMPC_RECORD")
    for what, mutate in (("a malformed chain value", malformed("SMPC_CHAIN", b"zz")),
                         ("an upper-case chain value", malformed("SMPC_CHAIN", field(ws1[k], "SMPC_CHAIN").upper())),
                         ("a record of odd length", malformed("SMPC_RECORD", rec[:-1])),
                         ("a record cut short", malformed("SMPC_RECORD", rec[:100])),
                         ("a record that is not hex", malformed("SMPC_RECORD", b"g" * len(rec))),
                         ("a record far too long", malformed("SMPC_RECORD", b"00" * (1 << 20 | 1))),
                         ("a sequence number that is not a number", malformed("SMP_SEQ", b"12x")),
                         ("a sequence number out of range", malformed("SMP_SEQ", b"99999999999999999999999")),
                         ("a negative sequence number", malformed("SMP_SEQ", b"-1")),
                         ("no log id", malformed("SMPC_LOG_ID", None)),
                         ("a short key fingerprint", malformed("SMPC_KEY_FP", b"00")),
                         ("a sequence number not the record's", malformed("SMP_SEQ", b"%d" % (seq(ws1[k]) + 1000))),
                         ("withheld keys its event does not withhold",
                          malformed("SMPC_WITHHELD", b"session," + b"x" * 300))):
        t = [list(map(list, e)) for e in ws1]
        mutate(t[k])
        rc, rep, text = verify(collect(t), "--machine", M1, "--key-file", key1)
        check(rc == 3 and rep and rep["status"] == "TAMPERED", "%s is tampered, not a crash" % what, text.strip())
    # A forged last seal with a huge epoch: named at once, no endless key derivation.
    for fake_seq, fake_epoch, code in ((None, 1 << 40, 3), (1 << 50, 1 << 40, 5)):
        t = [list(map(list, e)) for e in ws1]
        last = t[-1]
        rec = bytearray(bytes.fromhex(field(last, "SMPC_RECORD").decode()))
        at = rec.find(b"epoch") + 5
        rec[at:at + 8] = fake_epoch.to_bytes(8, "little")
        if fake_seq:
            rec[8:16] = fake_seq.to_bytes(8, "little")
            set_field(last, "SMP_SEQ", b"%d" % fake_seq)
        rec[-4:] = zlib.crc32(bytes(rec[:-4])).to_bytes(4, "little")
        set_field(last, "SMPC_RECORD", bytes(rec).hex().encode())
        set_field(last, "SMPC_CHAIN", hashlib.sha256(rec).hexdigest().encode())
        set_field(last, "SMP_EPOCH", b"%d" % fake_epoch)
        start_t = time.monotonic()
        rc, rep, text = verify(collect(t), "--machine", M1, "--key-file", key1)
        check(rc == code and rep and "epoch" in rep.get("reason", "") and time.monotonic() - start_t < 60,
              "a seal claiming epoch 2^40 (at %s) is named, not derived for" % (fake_seq or "its place"),
              text.strip())

    t = [list(map(list, e)) for e in ws1]
    w = next(e for e in t if field(e, "SMPC_WITHHELD"))
    set_field(w, "SMPC_PREV", b"0" * 63)
    rc, rep, text = verify(collect(t), "--machine", M1, "--key-file", key1)
    check(rc == 3 and rep and rep["seq"] == seq(w), "a withheld record's malformed SMPC_PREV is tampered",
          text.strip())
finally:
    shutil.rmtree(T, ignore_errors=True)

finish()
