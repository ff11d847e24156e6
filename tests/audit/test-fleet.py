#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A workstation's audit trail over the network to a collector (issue 17, H12).

usage: test-fleet.py SMP_AUDIT JOURNAL_GEN EXAMPLES_DIR

On the loopback: the real systemd-journal-upload sends a workstation's
journal (its audit entries, written by journal-gen through
systemd-journal-remote --output) with a client certificate made here; the
collector is stunnel (mutual TLS, the shipped examples/fleet/
stunnel-journal-remote.conf with paths and ports substituted) in front of
the real systemd-journal-remote.  Asserts: the collector verifies two
workstations intact, each with its own key and certificate; a client whose certificate the clinic's CA did not sign
is refused and nothing of it arrives; with the link cut, then restored, and
the collector restarted between uploads, nothing is missing or duplicated
(the upload resumes from its saved cursor) and verification stays intact;
one workstation's log cut back is named, the other still verifies intact.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SMP_AUDIT, GEN, EXAMPLES = sys.argv[1], sys.argv[2], sys.argv[3]
WRAP = os.environ.get("SMP_TEST_WRAPPER", "").split()
SYSTEMD = next((d for d in ("/lib/systemd", "/usr/lib/systemd")
                if os.access(os.path.join(d, "systemd-journal-upload"), os.X_OK)), None)
STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")
MID = "f1ee7c0ffee000000000000000000007"
MID2 = "f1ee7c0ffee000000000000000000008"
fails = 0


def check(cond, what, detail=""):
    global fails
    if cond:
        print("ok:", what)
    else:
        fails += 1
        print("FAIL:", what, detail)


for what, have in (("systemd-journal-upload/-remote (package systemd-journal-remote)", SYSTEMD),
                   ("stunnel (package stunnel4)", STUNNEL), ("openssl", shutil.which("openssl")),
                   ("journalctl", shutil.which("journalctl"))):
    if not have:
        print("FAIL: %s is not installed (build-aux/deps.sh, group test)" % what)
        sys.exit(1)
REMOTE = os.path.join(SYSTEMD, "systemd-journal-remote")
UPLOAD = os.path.join(SYSTEMD, "systemd-journal-upload")
T = tempfile.mkdtemp(prefix="smp-fleet-")
procs = []


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(100):
        if proc.poll() is not None:
            raise SystemExit("FAIL: %s exited: %s" % (what, open(proc.log_path).read()))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("FAIL: %s does not listen on %d" % (what, port))


def start(args, name, port):
    log = os.path.join(T, name + ".log")
    p = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    p.log_path = log
    procs.append(p)
    wait_port(port, p, name)
    return p


def stop(p):
    p.terminate()
    p.wait(timeout=20)
    procs.remove(p)


def cert(name, ca):
    key, csr, pem = (os.path.join(T, name + ext) for ext in (".key", ".csr", ".pem"))
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name, "-addext",
         "subjectAltName=DNS:%s,IP:127.0.0.1" % name, "-keyout", key, "-out", csr], check=True)
    run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(T, ca + ".pem"), "-CAkey",
         os.path.join(T, ca + ".key"), "-CAcreateserial", "-days", "2", "-copy_extensions", "copy",
         "-out", pem], check=True)
    return key, pem


def ca(name):
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + name,
         "-keyout", os.path.join(T, name + ".key"), "-out", os.path.join(T, name + ".pem")], check=True)


def stunnel_conf(tls_port, http_port):
    """The shipped example, with this test's files and ports."""
    with open(os.path.join(EXAMPLES, "stunnel-journal-remote.conf")) as f:
        text = f.read()
    subst = {"accept = 19532": "accept = 127.0.0.1:%d" % tls_port,
             "connect = 127.0.0.1:19531": "connect = 127.0.0.1:%d" % http_port,
             "/etc/ssl/certs/smp-collector.pem": os.path.join(T, "collector.pem"),
             "/etc/ssl/private/smp-collector.key": os.path.join(T, "collector.key"),
             "/etc/ssl/certs/smp-clinic-ca.pem": os.path.join(T, "clinic-ca.pem")}
    for a, b in subst.items():
        if a not in text:
            raise SystemExit("FAIL: the example stunnel configuration lacks '%s'" % a)
        text = text.replace(a, b)
    path = os.path.join(T, "stunnel.conf")
    with open(path, "w") as f:
        f.write("foreground = yes\npid =\n" + text)
    return path


def upload(key, pem, state, ws=None):
    return run([UPLOAD, "--url=https://127.0.0.1:%d" % TLS, "--key=" + key, "--cert=" + pem,
                "--trust=" + os.path.join(T, "clinic-ca.pem"), "-D", ws or WS, "--save-state=" + state,
                "--follow=no"])


def verify(*extra, machine=None, key=None):
    p = run(WRAP + [SMP_AUDIT, "verify", "--journal", OUT, "--machine", machine or MID, "--key-file", key or KEY]
            + list(extra))
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def chains_at_collector():
    p = run(["journalctl", "-D", OUT, "-o", "export", "_MACHINE_ID=" + MID], check=True)
    return [ln for ln in p.stdout.split(b"\n") if ln.startswith(b"SMPC_CHAIN=")]


try:
    ca("clinic-ca")
    ca("rogue-ca")
    cert("collector", "clinic-ca")
    ws_key, ws_pem = cert("chair-1", "clinic-ca")
    ev_key, ev_pem = cert("intruder", "rogue-ca")
    ws2_key, ws2_pem = cert("chair-2", "clinic-ca")

    # The workstation: its log, and its journal in two parts (before and after the outage).
    LOG, KEY = os.path.join(T, "log"), os.path.join(T, "log.key")
    export = run(WRAP + [GEN, LOG, KEY, MID, "chair-1", "4"], check=True).stdout
    entries = [e for e in export.split(b"\n\n") if e.strip()]
    half = len(entries) // 2
    WS = os.path.join(T, "workstation-journal")
    OUT = os.path.join(T, "collector")
    os.mkdir(WS)
    os.mkdir(OUT)

    def ws_journal(name, part):
        run([REMOTE, "--output=" + os.path.join(WS, name), "-"], input=b"\n\n".join(part) + b"\n\n", check=True)

    ws_journal("a.journal", entries[:half])

    # A second workstation, with its own log, key and certificate.
    LOG2, KEY2 = os.path.join(T, "log2"), os.path.join(T, "log2.key")
    WS2 = os.path.join(T, "workstation-2-journal")
    os.mkdir(WS2)
    run([REMOTE, "--output=" + os.path.join(WS2, "a.journal"), "-"],
        input=run(WRAP + [GEN, LOG2, KEY2, MID2, "chair-2", "2"], check=True).stdout, check=True)

    TLS, HTTP = free_port(), free_port()
    remote_args = [REMOTE, "--listen-http=127.0.0.1:%d" % HTTP, "--output=" + OUT + "/", "--split-mode=host"]
    remote = start(remote_args, "journal-remote", HTTP)
    tunnel = start([STUNNEL, stunnel_conf(TLS, HTTP)], "stunnel", TLS)
    state = os.path.join(T, "upload-state")

    # A stranger's certificate is refused; nothing of it arrives.
    p = upload(ev_key, ev_pem, os.path.join(T, "intruder-state"))
    check(p.returncode != 0, "a client certificate from another CA is refused", p.stderr.decode(errors="replace"))
    check(os.listdir(OUT) == [] or chains_at_collector() == [], "nothing of the refused client arrives")

    p = upload(ws_key, ws_pem, state)
    check(p.returncode == 0, "the workstation uploads over mutual TLS", p.stderr.decode(errors="replace"))
    p = upload(ws2_key, ws2_pem, os.path.join(T, "upload-state-2"), WS2)
    check(p.returncode == 0, "a second workstation uploads with its own certificate",
          p.stderr.decode(errors="replace"))
    rc, text = verify()
    check(rc == 0 and "INTACT" in text, "the first half verifies intact at the collector", text)

    # The link cut: the upload fails; the workstation writes on meanwhile.
    stop(tunnel)
    ws_journal("b.journal", entries[half:])
    p = upload(ws_key, ws_pem, state)
    check(p.returncode != 0, "with the link cut the upload fails")

    # The collector restarted, the link restored: the upload resumes from its cursor.
    stop(remote)
    remote = start(remote_args, "journal-remote", HTTP)
    tunnel = start([STUNNEL, stunnel_conf(TLS, HTTP)], "stunnel", TLS)
    p = upload(ws_key, ws_pem, state)
    check(p.returncode == 0, "the upload resumes after the outage", p.stderr.decode(errors="replace"))
    stop(tunnel)
    stop(remote)

    # systemd-journal-upload 252 resumes *at* its saved cursor: the last
    # entry sent before the outage arrives a second time, identical.  That
    # one, and nothing else, may be twice at the collector; the verifier
    # counts it once.
    chains = chains_at_collector()
    sent = [ln for e in entries for ln in e.split(b"\n") if ln.startswith(b"SMPC_CHAIN=")]
    dups = {c for c in chains if chains.count(c) > 1}
    check(sorted(set(chains)) == sorted(sent), "every record arrived, nothing foreign",
          "%d distinct of %d sent" % (len(set(chains)), len(sent)))
    check(dups <= {sent[half - 1]} and len(chains) - len(set(chains)) == len(dups),
          "the only record received twice is the last one before the outage, twice at most",
          "%d entries for %d records" % (len(chains), len(sent)))
    rc, text = verify("--local", LOG)
    check(rc == 0 and "INTACT" in text and ("records %d " % len(sent)) in text,
          "the whole log verifies intact at the collector, compared with the local log, each record once", text)
    rc, text = verify("--local", LOG2, machine=MID2, key=KEY2)
    check(rc == 0 and "INTACT" in text, "the second workstation verifies intact beside it", text)

    # One workstation's log cut back: named; the other still intact.
    files = sorted(f for f in os.listdir(LOG) if f.endswith(".smplog"))
    path = os.path.join(LOG, files[-1])
    os.truncate(path, os.path.getsize(path) - 1)
    rc, text = verify("--local", LOG)
    check(rc == 4 and "TRUNCATED" in text, "a workstation log cut back is named truncated", text)
    rc, text = verify("--local", LOG2, machine=MID2, key=KEY2)
    check(rc == 0 and "INTACT" in text, "the untouched workstation still verifies intact", text)
finally:
    for p in list(procs):
        p.kill()
        p.wait()
    if os.environ.get("KEEP"): print("kept", T)
    else: shutil.rmtree(T, ignore_errors=True)

print("%d failure(s)" % fails)
sys.exit(1 if fails else 0)
