#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A clinic's workstations send their audit trail to a collector (issue 17, H12).

usage: test-fleet.py SMP_AUDIT JOURNAL_GEN SOURCE_ROOT BUILD_ROOT SMPCTL

docs/fleet.md followed from scratch: the blocks it marks `test-fleet:` run
as they stand (certificates; the collector; each workstation with H set;
verify; fleet).  Three machines on this one: each runs in its own mount
namespace, where /etc/ssl, /etc/systemd, /etc/stunnel, /etc/hosts,
/etc/machine-id, /var/log/journal and /var/lib/systemd are its own
directories; all share one network namespace (the test re-runs itself in
a new one), so the documented ports and host name hold.  The packages'
files are those `meson install --tags fleet` installs, split between the
machines as debian/smp-fleet-{upload,collector}.install split them.
`systemctl enable --now` is recorded, not run (no systemd here); the test
then starts each unit it enabled with the ExecStart= of the stock unit
(package systemd-journal-remote, stunnel4) and our drop-in, the socket's
ListenStream= through systemd-socket-activate, and restarts the upload as
Restart=on-failure says (after 1 s, not the drop-in's 10 s).

Asserts: two workstations' sessions arrive through the real
systemd-journal-upload, stunnel's mutual TLS and the real
systemd-journal-remote, and verify intact at the collector, each with its
own key; a client whose certificate the clinic's CA did not sign is
refused and nothing of it arrives; with the link cut (the upload fails and
is restarted), then restored, and the collector restarted, nothing is
missing or duplicated (the upload resumes from its saved cursor) and
verification stays intact; one workstation's log cut back is named, the
other still verifies intact, by `smp-audit verify`, by `smpctl log verify
--journal` and by the fleet view.  Only smpd's entries leave a workstation:
smpd logs to the journal namespace its drop-in names (LogNamespace=), and
an entry another service wrote to the system journal (health data) never
reaches the collector.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from audittest import check, finish

SMP_AUDIT, GEN, SRC, BUILD, SMPCTL = sys.argv[1:6]
WRAP = os.environ.get("SMP_TEST_WRAPPER", "").split()
SYSTEMD = next((d for d in ("/lib/systemd", "/usr/lib/systemd")
                if os.access(os.path.join(d, "systemd-journal-upload"), os.X_OK)), None)
STOCK_UNITS = next((d for d in ("/lib/systemd/system", "/usr/lib/systemd/system")
                    if os.path.exists(os.path.join(d, "systemd-journal-upload.service"))), None)
MID = {"chair-1": "f1ee7c0ffee000000000000000000007", "chair-2": "f1ee7c0ffee000000000000000000008"}
COLLECTOR_NAME = "collector.clinic.example"


for what, have in (("systemd-journal-upload/-remote (package systemd-journal-remote)", SYSTEMD and STOCK_UNITS),
                   ("stunnel (package stunnel4)", shutil.which("stunnel4")),
                   ("openssl", shutil.which("openssl")), ("journalctl", shutil.which("journalctl")),
                   ("systemd-socket-activate", shutil.which("systemd-socket-activate")),
                   ("systemd-analyze", shutil.which("systemd-analyze")),
                   ("unshare, mount (package util-linux)", shutil.which("unshare")),
                   ("ip (package iproute2)", shutil.which("ip"))):
    if not have:
        print("FAIL: %s is not installed (build-aux/deps.sh, group test)" % what)
        sys.exit(1)

# One network namespace for the three machines: the documented ports
# (19531, 19532) and nothing else listening on them.
if os.environ.get("SMP_FLEET_NETNS") != "1":
    os.environ["SMP_FLEET_NETNS"] = "1"
    argv = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-Urn"]
    p = subprocess.run(argv + ["--", sys.executable] + sys.argv)
    if p.returncode not in (0, 1):
        print("FAIL: cannot make a network namespace (root or user namespaces needed), exit %d" % p.returncode)
        sys.exit(1)
    sys.exit(p.returncode)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

T = tempfile.mkdtemp(prefix="smp-fleet-")
ADMIN = os.path.join(T, "admin")
procs = []


def run(args, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


# --- docs/fleet.md --------------------------------------------------------
with open(os.path.join(SRC, "docs", "fleet.md")) as f:
    DOC = f.read()
BLOCKS = dict(re.findall(r"<!-- test-fleet: (\S+) -->\n```sh\n(.*?)```", DOC, re.S))
for name in ("certificates", "collector", "workstation", "verify", "verify-smpctl", "fleet"):
    if name not in BLOCKS:
        print("FAIL: docs/fleet.md has no block marked 'test-fleet: %s'" % name)
        sys.exit(1)


# --- the packages ---------------------------------------------------------
INST = os.path.join(T, "inst")
p = run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--tags", "fleet", "--destdir", INST])
if p.returncode != 0:
    print("FAIL: meson install --tags fleet:", p.stdout.decode(), p.stderr.decode())
    sys.exit(1)
# Where the build puts them (prefix, sysconfdir) → where the packages do
# (debian/rules: prefix /usr, sysconfdir /etc).
opts = {o["name"]: o["value"] for o in json.loads(run(["meson", "introspect", BUILD, "--buildoptions"],
                                                       check=True).stdout)}
PREFIX = opts["prefix"].strip("/") + "/"
SYSCONF = os.path.join(opts["prefix"], opts["sysconfdir"]).strip("/") + "/"


def as_packaged(rel):
    if rel.startswith(SYSCONF):
        return "etc/" + rel[len(SYSCONF):]
    assert rel.startswith(PREFIX), rel
    return "usr/" + rel[len(PREFIX):]


FILES = {as_packaged(os.path.relpath(os.path.join(d, f), INST)): os.path.join(d, f)
         for d, _, fs in os.walk(INST) for f in fs}
installed = sorted(FILES)


def package_files(pkg):
    with open(os.path.join(SRC, "debian", pkg + ".install")) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


PKG = {p: package_files(p) for p in ("smp-fleet-upload", "smp-fleet-collector")}
check(sorted(PKG["smp-fleet-upload"] + PKG["smp-fleet-collector"]) == installed,
      "the two packages ship every file of the fleet configuration, each once", repr(installed))


class Machine:
    """A directory that stands for one machine's /etc and /var."""

    def __init__(self, name, machine_id, packages):
        self.name, self.root, self.mid = name, os.path.join(T, name), machine_id
        for d in ("etc/ssl/certs", "etc/systemd", "etc/stunnel", "var/log/journal",
                  "var/lib/systemd/journal-upload"):
            os.makedirs(os.path.join(self.root, d))
        os.makedirs(os.path.join(self.root, "etc/ssl/private"), mode=0o710)
        with open(self.path("/etc/hosts"), "w") as f:
            f.write("127.0.0.1 localhost %s\n" % COLLECTOR_NAME)
        with open(self.path("/etc/machine-id"), "w") as f:
            f.write(machine_id + "\n")
        self.enabled = self.path("/enabled")
        for pkg in packages:		# dpkg -i
            for rel in PKG[pkg]:
                os.makedirs(os.path.dirname(os.path.join(self.root, rel)), exist_ok=True)
                shutil.copy2(FILES[rel], os.path.join(self.root, rel))

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def cmd(self, argv):
        """argv run on this machine: its own mount namespace."""
        binds = " && ".join('mount --bind "$R/%s" %s' % (p.lstrip("/"), p) for p in (
            "/etc/ssl", "/etc/systemd", "/etc/stunnel", "/etc/hosts", "/etc/machine-id",
            "/var/log/journal", "/var/lib/systemd"))
        return ["unshare", "-m", "--propagation", "private", "--", "env", "R=" + self.root,
                "/bin/sh", "-c", binds + ' && exec "$@"', "sh"] + argv

    def shell(self, block, **env):
        """A docs/fleet.md block as root on this machine, in the admin's directory."""
        e = dict(os.environ, PATH=os.path.join(T, "bin") + ":" + os.environ["PATH"],
                 SMP_FLEET_ENABLED=self.enabled, **env)
        p = run(self.cmd(["/bin/sh", "-e", "-c", block]), cwd=ADMIN, env=e)
        if p.returncode != 0:
            raise SystemExit("FAIL: docs/fleet.md block on %s: %s" % (self.name, p.stderr.decode()))
        return p

    def units(self):
        with open(self.enabled) as f:
            return [u for ln in f for u in ln.split()[1:] if u.startswith(("systemd-", "stunnel"))]

    def unit_settings(self, unit, key):
        """KEY= of UNIT as systemd reads it: the stock unit, then our drop-ins (an
        empty assignment resets a list)."""
        stock = unit
        inst = ""
        if "@" in unit:		# a template instance
            stock = unit.split("@")[0] + "@." + unit.rsplit(".", 1)[1]
            inst = unit.split("@")[1].rsplit(".", 1)[0]
        paths = [unit_file(stock)]
        d = self.path("/usr/lib/systemd/system/%s.d" % unit)
        if os.path.isdir(d):
            paths += [os.path.join(d, f) for f in sorted(os.listdir(d))]
        values = []
        for path in paths:
            with open(path) as f:
                for ln in f:
                    if ln.startswith(key + "="):
                        v = ln.strip()[len(key) + 1:].replace("%i", inst).replace("%m", self.mid)
                        values = [] if v == "" else values + [v]
        return values


def unit_file(unit):
    """The stock unit (Debian's packages), or smpd's own as the build made it."""
    own = os.path.join(BUILD, "daemon", unit)
    return own if os.path.exists(own) else os.path.join(STOCK_UNITS, unit)


def audit_jdir(m):
    """Where smpd's entries land on workstation m: the directory of the
    journal namespace its drop-in names (journald writes MACHINE_ID.NAMESPACE)."""
    ns = m.unit_settings("smpd.service", "LogNamespace")
    assert len(ns) == 1, ns
    return m.path("/var/log/journal/%s.%s" % (m.mid, ns[0]))


def start(m, argv, name, restart=False):
    """A unit's main process on machine m; with restart, Restart=on-failure."""
    log = os.path.join(T, name + ".log")
    proc = {"name": name, "starts": 0, "stop": False, "p": None}

    def launch():
        proc["starts"] += 1
        proc["p"] = subprocess.Popen(m.cmd(argv), stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def supervise():
        while True:
            rc = proc["p"].wait()
            if proc["stop"] or rc == 0:
                return
            time.sleep(1)
            if proc["stop"]:
                return
            launch()

    launch()
    if restart:
        proc["thread"] = threading.Thread(target=supervise, daemon=True)
        proc["thread"].start()
    proc["log"] = log
    procs.append(proc)
    return proc


def stop(proc):
    proc["stop"] = True
    if proc["p"].poll() is None:
        proc["p"].terminate()
        proc["p"].wait(timeout=20)
    if "thread" in proc:
        proc["thread"].join(timeout=20)
    procs.remove(proc)


def wait_port(port, proc):
    for _ in range(200):
        if proc["p"].poll() is not None:
            raise SystemExit("FAIL: %s exited: %s" % (proc["name"], open(proc["log"]).read()))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("FAIL: %s does not listen on %d" % (proc["name"], port))


def start_collector(c):
    """What `systemctl enable --now` of the collector block starts."""
    listen = c.unit_settings("systemd-journal-remote.socket", "ListenStream")
    remote = c.unit_settings("systemd-journal-remote.service", "ExecStart")
    tunnel = c.unit_settings("stunnel@smp-journal-remote.service", "ExecStart")
    assert len(listen) == 1 and len(remote) == 1 and len(tunnel) == 1, (listen, remote, tunnel)
    http = int(listen[0].rsplit(":", 1)[1])
    r = start(c, ["systemd-socket-activate", "-l", listen[0]] + remote[0].split(), "journal-remote")
    wait_port(http, r)
    s = start(c, tunnel[0].split(), "stunnel")
    wait_port(19532, s)
    return r, s


def upload_cmd(w):
    ex = w.unit_settings("systemd-journal-upload.service", "ExecStart")
    assert len(ex) == 1, ex
    return ex[0].split()


def at_collector(mid, field=b"SMPC_CHAIN="):
    p = run(["journalctl", "-D", COLLECTOR_JDIR, "-o", "export", "_MACHINE_ID=" + mid])
    return [ln for ln in p.stdout.split(b"\n") if ln.startswith(field)]


def wait_for(mid, want, proc, secs=60):
    """Until the collector holds WANT distinct chain values of MID."""
    deadline = time.time() + secs
    while time.time() < deadline:
        if set(at_collector(mid)) >= want:
            return True
        time.sleep(0.3)
    print("# %s: %d of %d records arrived; upload log:\n%s" % (
        mid, len(set(at_collector(mid)) & want), len(want), open(proc["log"]).read()))
    return False


def chains(export):
    return [ln for e in export for ln in e.split(b"\n") if ln.startswith(b"SMPC_CHAIN=")]


try:
    # the systemctl of the blocks: records what would be enabled and started
    os.makedirs(os.path.join(T, "bin"))
    with open(os.path.join(T, "bin", "systemctl"), "w") as f:
        f.write('#!/bin/sh\necho "$@" >> "$SMP_FLEET_ENABLED"\n')
    os.chmod(os.path.join(T, "bin", "systemctl"), 0o755)

    # 1. certificates, on the admin's machine
    os.makedirs(ADMIN)
    p = run(["/bin/sh", "-e", "-c", BLOCKS["certificates"]], cwd=ADMIN)
    if p.returncode != 0:
        raise SystemExit("FAIL: the certificates block: " + p.stderr.decode())
    # the intruder: a certificate for a workstation's name from another CA
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rogue-ca",
         "-keyout", "rogue-ca.key", "-out", "rogue-ca.pem"], cwd=ADMIN, check=True)
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=chair-9", "-keyout", "chair-9.key",
         "-out", "chair-9.csr"], cwd=ADMIN, check=True)
    run(["openssl", "x509", "-req", "-in", "chair-9.csr", "-CA", "rogue-ca.pem", "-CAkey", "rogue-ca.key",
         "-CAcreateserial", "-days", "2", "-out", "chair-9.pem"], cwd=ADMIN, check=True)

    # systemd reads the drop-ins without a complaint (an unknown key or a
    # bad value is only a warning to systemd: the unit would run without it)
    sar = os.path.join(T, "analyze")
    units = os.path.join(sar, "etc/systemd/system")
    os.makedirs(units)
    drop = {}
    for rel in installed:
        m = re.match(r"usr/lib/systemd/system/(.+)\.d/(.+)$", rel)
        if m:
            shutil.copy(unit_file(m[1]), units)
            os.makedirs(os.path.join(units, m[1] + ".d"), exist_ok=True)
            shutil.copy(FILES[rel], os.path.join(units, m[1] + ".d", m[2]))
            drop[m[1]] = rel
    p = run(["systemd-analyze", "verify", "--root=" + sar] + sorted(drop))
    said = [ln for ln in (p.stdout + p.stderr).decode(errors="replace").splitlines() if ".d/" in ln]
    check(len(drop) == 4 and not said, "systemd-analyze verify: the four drop-ins parse cleanly",
          repr((sorted(drop), said)))

    # 2. the collector
    col = Machine("collector", "c011ec7000000000000000000000000c", ["smp-fleet-collector"])
    col.shell(BLOCKS["collector"])
    check(sorted(col.units()) == ["stunnel@smp-journal-remote.service", "systemd-journal-remote.socket"],
          "the collector block enables journal-remote's socket and stunnel", repr(col.units()))
    COLLECTOR_JDIR = col.path("/var/log/journal/remote")
    os.makedirs(COLLECTOR_JDIR)		# LogsDirectory= of the stock unit
    remote, tunnel = start_collector(col)

    # 3. the workstations: each one's log and the journal its mirror wrote
    ws, logs, keys, entries = {}, {}, {}, {}
    for h, n in (("chair-1", 4), ("chair-2", 2)):
        w = ws[h] = Machine(h, MID[h], ["smp-fleet-upload"])
        w.shell(BLOCKS["workstation"], H=h)
        check(w.units() == ["systemd-journal-upload.service"], "%s: the block enables the upload" % h)
        logs[h], keys[h] = os.path.join(T, h + ".log"), os.path.join(T, h + ".key")
        export = run(WRAP + [GEN, logs[h], keys[h], MID[h], h, str(n)], check=True).stdout
        entries[h] = [e for e in export.split(b"\n\n") if e.strip()]
        os.makedirs(audit_jdir(w))
        os.makedirs(w.path("/var/log/journal/" + MID[h]))
        with open(w.path("/etc/systemd/journald@smp-audit.conf")) as f:
            check("Storage=persistent" in f.read(), "%s: smpd's journal namespace is kept on disk" % h)

    def ws_journal(h, name, part, jdir=None):
        out = os.path.join(jdir or audit_jdir(ws[h]), name)
        run([os.path.join(SYSTEMD, "systemd-journal-remote"), "--output=" + out, "-"],
            input=b"\n\n".join(part) + b"\n\n", check=True)

    # What another service of the workstation logs to the system journal
    # (the clinic's records program, with a patient's name and diagnosis)
    # must stay there.
    HEALTH = b"MESSAGE=patient Erika Mustermann: alopecia areata, allergic to PPD"
    for h in ws:
        ws_journal(h, "system.journal", [
            b"__REALTIME_TIMESTAMP=1765000000000000\n_MACHINE_ID=" + MID[h].encode() + b"\n_HOSTNAME="
            + h.encode() + b"\n_SYSTEMD_UNIT=clinic-records.service\nPRIORITY=6\n" + HEALTH],
            ws[h].path("/var/log/journal/" + MID[h]))

    half = len(entries["chair-1"]) // 2
    # --system reads system.journal and its rotated system@*.journal only:
    # the first half as if journald had rotated it, the rest written later.
    ws_journal("chair-1", "system@1.journal", entries["chair-1"][:half])
    ws_journal("chair-2", "system.journal", entries["chair-2"])

    # A stranger: a certificate the clinic's CA did not sign is refused.
    intr = Machine("intruder", "1a7e0de000000000000000000000000e", ["smp-fleet-upload"])
    intr.shell(BLOCKS["workstation"], H="chair-9")
    os.makedirs(audit_jdir(intr))
    run([os.path.join(SYSTEMD, "systemd-journal-remote"),
         "--output=" + os.path.join(audit_jdir(intr), "system.journal"), "-"],
        input=b"\n\n".join(entries["chair-2"]).replace(MID["chair-2"].encode(), b"1a7e0de000000000000000000000000e")
        + b"\n\n", check=True)
    p = run(intr.cmd(upload_cmd(intr) + ["--follow=no"]), timeout=60)
    # refused by the collector, not failed before it (no journal to read, ...)
    check(p.returncode != 0 and b"Upload to https://" in p.stderr,
          "a client certificate from another CA is refused", p.stderr.decode(errors="replace"))

    # The uploads, as their units run them (following the journal).
    up = {h: start(ws[h], upload_cmd(ws[h]), "upload-" + h, restart=True) for h in ws}
    check(wait_for(MID["chair-1"], set(chains(entries["chair-1"][:half])), up["chair-1"]),
          "chair-1's first half arrives over mutual TLS")
    check(wait_for(MID["chair-2"], set(chains(entries["chair-2"])), up["chair-2"]),
          "chair-2's sessions arrive with its own certificate")
    check(at_collector("1a7e0de000000000000000000000000e") == [], "nothing of the refused client arrives")
    # the same TLS setup with the clinic's certificate does get through: the
    # refusal above is the certificate's, not a broken client
    p = run(ws["chair-2"].cmd(upload_cmd(ws["chair-2"]) + ["--follow=no"]), timeout=60)
    check(p.returncode == 0, "the same upload with the clinic's certificate is accepted",
          p.stderr.decode(errors="replace"))

    def verify(h, *extra):
        block = BLOCKS["verify"].replace("/var/log/journal/remote", COLLECTOR_JDIR).replace(
            "/media/safe/$H.key", keys[h]).replace("$H", h).strip()
        argv = block.split()
        assert argv[0] == "smp-audit", argv
        p = run(WRAP + [SMP_AUDIT] + argv[1:] + list(extra))
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")

    rc, text = verify("chair-1")
    check(rc == 0 and "INTACT" in text, "chair-1's first half verifies intact at the collector", text)
    rc, text = verify("chair-2")
    check(rc == 0 and "INTACT" in text, "chair-2 verifies intact at the collector", text)
    for h in ws:
        p = run(["journalctl", "-D", COLLECTOR_JDIR, "-o", "export", "_MACHINE_ID=" + MID[h]])
        check(p.returncode == 0 and b"SMPC_CHAIN=" in p.stdout and HEALTH not in p.stdout,
              "%s: only smpd's entries left the workstation, not another service's" % h)

    def smpctl(h, *extra):
        """docs/fleet.md's smpctl form of the same verification."""
        argv = BLOCKS["verify-smpctl"].replace("/var/log/journal/remote", COLLECTOR_JDIR).replace(
            "/media/safe/$H.key", keys[h]).replace("$H", h).split()
        assert argv[:3] == ["smpctl", "log", "verify"], argv
        p = run(WRAP + [SMPCTL] + argv[1:] + list(extra))
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")

    # The link cut: the upload fails and is restarted (Restart=on-failure);
    # the workstation writes on meanwhile.
    starts = up["chair-1"]["starts"]
    stop(tunnel)
    ws_journal("chair-1", "system.journal", entries["chair-1"][half:])
    deadline = time.time() + 30
    while up["chair-1"]["starts"] < starts + 2 and time.time() < deadline:
        time.sleep(0.2)
    check(up["chair-1"]["starts"] >= starts + 2, "with the link cut the upload fails and is started again",
          "%d starts" % up["chair-1"]["starts"])

    # The collector restarted, the link restored: the upload resumes from its cursor.
    stop(remote)
    remote, tunnel = start_collector(col)
    check(wait_for(MID["chair-1"], set(chains(entries["chair-1"])), up["chair-1"]),
          "the upload resumes after the outage and the collector's restart")
    for h in ws:
        stop(up[h])
    stop(tunnel)
    stop(remote)
    check(os.path.exists(ws["chair-1"].path("/var/lib/systemd/journal-upload/state")),
          "the upload keeps its cursor in the stock unit's StateDirectory")

    # systemd-journal-upload 252 resumes *at* its saved cursor: the entry
    # at the cursor may arrive a second time, identical.  Each restart may
    # add one such; the verifier counts them once.
    got, sent = at_collector(MID["chair-1"]), chains(entries["chair-1"])
    check(sorted(set(got)) == sorted(sent), "every record arrived, nothing foreign",
          "%d distinct of %d sent" % (len(set(got)), len(sent)))
    check(len(got) - len(sent) <= up["chair-1"]["starts"],
          "only the entry at a restart's cursor arrives twice",
          "%d entries for %d records, %d starts" % (len(got), len(sent), up["chair-1"]["starts"]))
    rc, text = verify("chair-1", "--local", logs["chair-1"])
    check(rc == 0 and "INTACT" in text and ("records %d " % len(sent)) in text,
          "the whole log verifies intact at the collector, compared with the local log, each record once", text)
    rc, text = verify("chair-2", "--local", logs["chair-2"])
    check(rc == 0 and "INTACT" in text, "the second workstation verifies intact beside it", text)
    rc, text = smpctl("chair-1", "--local=" + logs["chair-1"])
    check(rc == 0 and text.startswith("intact: %d records" % len(sent)),
          "smpctl log verify --journal: the same verdict, intact", text)
    rc, text = smpctl("chair-1", "--local=" + logs["chair-2"])
    check(rc == 3 and text.startswith("tampered"),
          "smpctl log verify --journal: another log given as the local one is named tampered", text)

    # One workstation's log cut back: named; the other still intact.
    files = sorted(f for f in os.listdir(logs["chair-1"]) if f.endswith(".smplog"))
    path = os.path.join(logs["chair-1"], files[-1])
    os.truncate(path, os.path.getsize(path) - 1)
    rc, text = verify("chair-1", "--local", logs["chair-1"])
    check(rc == 4 and "TRUNCATED" in text, "a workstation log cut back is named truncated", text)
    rc, text = smpctl("chair-1", "--local=" + logs["chair-1"])
    check(rc == 4 and text.startswith("truncated"), "smpctl log verify --journal names it truncated too", text)
    rc, text = smpctl("chair-2", "--local=" + logs["chair-2"])
    check(rc == 0 and text.startswith("intact"), "smpctl: the untouched workstation intact", text)
    rc, text = verify("chair-2", "--local", logs["chair-2"])
    check(rc == 0 and "INTACT" in text, "the untouched workstation still verifies intact", text)

    # The fleet view of docs/fleet.md, with the keys in the auditor's safe
    # and the workstations' logs at hand: both named, one truncated.
    safe, copies = os.path.join(T, "safe"), os.path.join(T, "copies")
    os.mkdir(safe)
    os.mkdir(copies)
    for h in ws:
        shutil.copy(keys[h], os.path.join(safe, h + ".key"))
        os.symlink(logs[h], os.path.join(copies, h))
    argv = BLOCKS["fleet"].replace("/var/log/journal/remote", COLLECTOR_JDIR).replace(
        "/media/safe", safe).split()
    assert argv[:2] == ["smp-audit", "fleet"], argv
    p = run(WRAP + [SMP_AUDIT] + argv[1:] + ["--local-dir", copies, "--json"])
    doc = json.loads(p.stdout or b"{}")
    got = {w["hostname"]: w["verification"]["status"] for w in doc.get("workstations", [])}
    check(p.returncode == 4 and got == {"chair-1": "TRUNCATED", "chair-2": "INTACT"},
          "the fleet view names the workstation cut back and the one intact", repr(got))
finally:
    for p in list(procs):
        p["stop"] = True
        if p["p"].poll() is None:
            p["p"].kill()
            p["p"].wait()
    if os.environ.get("KEEP"):
        print("kept", T)
    else:
        shutil.rmtree(T, ignore_errors=True)

finish()
