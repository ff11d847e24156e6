#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hazard traceability for libsmp.

Reads docs/hazards.md (the hazards H1.., their causes and the layers each
one requires) and docs/safety/hazards.toml (the table: hazard -> controls by
layer -> tests -> mutations), then:

  gen [--check]     write docs/safety.md (--check: fail if it is stale)
  check [options]   fail on any hazard without a control or test for a
                    required layer, any reference that does not resolve, any
                    claimed test that did not pass in this run; list open
                    (not yet built) controls as warnings
  mutations         list the mutations: name, control, the meson tests to
                    build and run (TAB separated)
  targets BUILD SUITE/NAME...
                    the ninja targets (relative to BUILD) that those meson
                    tests need, so a mutant build compiles nothing else
  pytest-k BUILD [NAME...]
                    the pytest -k expression that selects just the claimed
                    cases of the pytest-driven meson tests among the killed_by
                    tests of those mutations (empty: none); the runner passes
                    it through $PYTEST_ADDOPTS
  baseline LOG [NAME...]
                    exit 0 only if every killed_by test of every mutation
                    (or of those named) passed in LOG (the unmutated build)
  verdict NAME LOG  after a mutant run (meson testlog LOG): exit 0 only if
                    every killed_by test of mutation NAME failed

Global options --top, --table, --doc and --hazards point it at other files
(tests/safety uses them with fixtures).  Nothing outside the source tree
is read, except the build and log directories it is given.

Python 3.11 standard library only (tomllib); run with /usr/bin/python3.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(TOP, "docs", "safety", "hazards.toml")
DOC = os.path.join(TOP, "docs", "safety.md")
HAZARDS = os.path.join(TOP, "docs", "hazards.md")
LAYERS = ("FW", "KD", "DM", "LIB")
# The layers a hazard can require (hazards.md "Required layers:"); LIB is
# never trusted for safety, and the audit record is the daemon's work.
REQUIRABLE = ("FW", "KD", "DM")
# The bullets a hazard may carry, one per layer.
BULLETS = LAYERS + ("Audit",)
STATUSES = ("implemented", "open")
MUTATION_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# cmocka: "[       OK ] name", "[  FAILED  ] name", "[ RUN      ] name";
# TAP: "ok 3 - name", "not ok 3 - name".
CMOCKA_OK = "[       OK ] "
CMOCKA_FAILED = "[  FAILED  ] "
CMOCKA_RUN = "[ RUN      ] "


class TableError(Exception):
    pass


# --------------------------------------------------------------- inputs

def load_hazards(path):
    """H-number -> {title, hazard, causes, controls, layers} from hazards.md.

    Each hazard is a section "## Hn. Title" with the lines "Hazard: ...",
    "Causes: ..." and "Required layers: FW, KD, DM" and one bullet per layer
    ("- FW: ..."); each runs on to the next blank line or field.
    """
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise TableError(f"{name}: missing ({os.path.normpath(path)}); the hazards "
                         "(H1..) and the layers each requires come from it")
    hazards = {}
    cur = None
    field = None
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()

    def fail(n, msg):
        raise TableError(f"{name}:{n}: {msg}")

    for n, line in enumerate(lines, 1):
        if line.startswith("## "):
            m = re.fullmatch(r"## (H\d+)\. (\S.*)", line)
            cur = None
            field = None
            if not m:
                continue	# another section (layers, format)
            h = m.group(1)
            if h in hazards:
                fail(n, f"{h} appears twice")
            cur = hazards[h] = {"title": m.group(2).strip(), "hazard": "", "causes": "",
                                "layers": None, "bullets": {}, "line": n}
            continue
        if cur is None:
            continue
        if not line.strip():
            field = None
            continue
        m = re.fullmatch(r"(Hazard|Causes|Required layers): *(.*)", line)
        if m:
            key = {"Hazard": "hazard", "Causes": "causes",
                   "Required layers": "layers"}[m.group(1)]
            if key == "layers":
                lays = [x.strip() for x in m.group(2).split(",") if x.strip()]
                bad = [x for x in lays if x not in REQUIRABLE]
                if bad or not lays:
                    fail(n, "Required layers: expected some of " + ", ".join(REQUIRABLE)
                         + (f", got {', '.join(bad)}" if bad else ""))
                cur["layers"] = [x for x in REQUIRABLE if x in lays]
                field = None
            else:
                cur[key] = m.group(2).strip()
                field = (cur, key)
            continue
        m = re.fullmatch(r"- ([A-Za-z]+): *(.*)", line)
        if m:
            if m.group(1) not in BULLETS:
                fail(n, f"unknown layer '{m.group(1)}' (expected one of {', '.join(BULLETS)})")
            if m.group(1) in cur["bullets"]:
                fail(n, f"a second {m.group(1)} bullet")
            cur["bullets"][m.group(1)] = m.group(2).strip()
            field = (cur["bullets"], m.group(1))
            continue
        if field:
            d, k = field
            d[k] = (d[k] + " " + line.strip()).strip()
            continue

    if not hazards:
        raise TableError(f"{name}: no hazard sections ('## H1. Title') found")
    for h, hz in hazards.items():
        where = f"{name}:{hz['line']}: {h}"
        if not hz["hazard"] or not hz["causes"]:
            raise TableError(f"{where}: needs a 'Hazard:' and a 'Causes:' line")
        if not hz["layers"]:
            raise TableError(f"{where}: names no required layer ('Required layers: FW, DM')")
        for lay in hz["layers"]:
            if not hz["bullets"].get(lay):
                raise TableError(f"{where}: requires {lay} but has no '- {lay}:' bullet "
                                 "saying what it must do")
        hz["controls"] = " ".join(f"{lay}: {hz['bullets'][lay]}" for lay in hz["layers"])
    return dict(sorted(hazards.items(), key=lambda kv: int(kv[0][1:])))


def load_table(path=None):
    path = path or TABLE
    try:
        with open(path, "rb") as f:
            t = tomllib.load(f)
    except FileNotFoundError:
        raise TableError(f"{path}: missing")
    except tomllib.TOMLDecodeError as e:
        raise TableError(f"{path}: {e}")
    if t.get("schema") != 1:
        raise TableError("hazards.toml: schema = 1 expected")
    t.setdefault("control", [])
    t.setdefault("mutation", [])
    t.setdefault("layers", {})
    t.setdefault("proof", [])
    for pr in t["proof"]:
        for k in ("id", "hazards", "shows", "command", "limits"):
            if k not in pr:
                raise TableError(f"hazards.toml: [[proof]] {pr.get('id', '?')}: {k} missing")
    return t


def parse_test_ref(ref):
    """'meson:SUITE/NAME[#CASE]' | 'kunit:SUITE.CASE' | 'vm:ID' | 'system:ID' -> dict."""
    m = re.fullmatch(r"meson:([^/#\s]+)/([^#\s]+)(?:#(\S+))?", ref)
    if m:
        return {"kind": "meson", "suite": m.group(1), "name": m.group(2),
                "case": m.group(3), "ref": ref}
    m = re.fullmatch(r"kunit:([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)", ref)
    if m:
        return {"kind": "kunit", "suite": m.group(1), "case": m.group(2), "ref": ref}
    m = re.fullmatch(r"vm:(\S+)", ref)
    if m:
        return {"kind": "vm", "id": m.group(1), "ref": ref}
    m = re.fullmatch(r"system:(\S+)", ref)
    if m:
        return {"kind": "system", "id": m.group(1), "ref": ref}
    m = re.fullmatch(r"proof:([A-Za-z0-9_.-]+)", ref)
    if m:
        return {"kind": "proof", "id": m.group(1), "ref": ref}
    raise TableError(f"test reference '{ref}': expected meson:SUITE/NAME[#CASE], "
                     "kunit:SUITE.CASE, vm:ID, system:ID or proof:ID")


def parse_code_ref(ref):
    if ":" not in ref:
        raise TableError(f"code reference '{ref}': expected FILE:FUNCTION")
    path, sym = ref.rsplit(":", 1)
    if not path or not sym:
        raise TableError(f"code reference '{ref}': expected FILE:FUNCTION")
    return path, sym


# -------------------------------------------------------------- resolving

def c_defines(text, sym):
    """True when text (C) defines function sym (or #defines it)."""
    if re.search(r"(?m)^\s*#\s*define\s+" + re.escape(sym) + r"\b", text):
        return True
    pat = re.compile(r"(?m)^[A-Za-z_][^;{}()\n]*?\b" + re.escape(sym) + r"\s*\(")
    for m in pat.finditer(text):
        i, depth = m.end(), 1
        while i < len(text) and depth:
            if text[i] == "(":
                depth += 1
            elif text[i] == ")":
                depth -= 1
            i += 1
        rest = text[i:].lstrip()
        if rest.startswith("{"):
            return True
    return False


def resolve_code(ref):
    """None when FILE:SYMBOL resolves, else the reason."""
    path, sym = parse_code_ref(ref)
    full = os.path.join(TOP, path)
    if not os.path.isfile(full):
        return f"{path}: no such file"
    with open(full, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if path.endswith((".c", ".h")):
        if not c_defines(text, sym):
            return f"{path}: no definition of {sym}()"
    elif path.endswith(".py"):
        if not re.search(r"(?m)^\s*(async\s+)?def\s+" + re.escape(sym) + r"\b", text):
            return f"{path}: no def {sym}"
    elif path.endswith(".sh") or "/" not in path:
        if not re.search(r"(?m)^\s*(function\s+)?" + re.escape(sym) + r"\s*\(\)", text) and \
                not re.search(r"\b" + re.escape(sym) + r"\b", text):
            return f"{path}: {sym} not found"
    elif not re.search(r"(?<![A-Za-z0-9_])" + re.escape(sym) + r"(?![A-Za-z0-9_])", text):
        return f"{path}: {sym} not found"
    return None


def files_under(sub, exts):
    root = os.path.join(TOP, sub)
    for d, dirs, files in os.walk(root):
        # Build directories (build/, build-*/, _build*/) hold copies.
        dirs[:] = [x for x in dirs if not x.startswith((".", "build", "_build"))
                   or x == "build-aux"]
        for fn in files:
            if fn.endswith(exts):
                yield os.path.join(d, fn)


def grep_files(paths, regex):
    r = re.compile(regex, re.M)
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                if r.search(f.read()):
                    return p
        except OSError:
            pass
    return None


class Results:
    """Test results of this run: meson testlogs, KUnit and VM logs."""

    def __init__(self, testlogs=(), logdir=None, strict_late=False, late_after=0.0,
                 strict_system=False, strict_proofs=False):
        self.meson = {}		# name -> list of (suites or None, result, stdout)
        for p in testlogs:
            self._read_testlog(p)
        self.logdir = logdir
        self.strict_late = strict_late
        self.strict_system = strict_system
        self.strict_proofs = strict_proofs
        self.late_after = late_after

    def _read_testlog(self, path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                d = json.loads(line)
                name = d["name"]
                suites = None
                if " / " in name:
                    left, name = name.split(" / ", 1)
                    suites = left.split(":", 1)[1].split("+") if ":" in left else [left]
                self.meson.setdefault(name, []).append(
                    (suites, d.get("result"), (d.get("stdout") or "") + (d.get("stderr") or "")))

    def meson_runs(self, t):
        return [r for r in self.meson.get(t["name"], ()) if r[0] is None or t["suite"] in r[0]]

    def late_log(self, name):
        """A KUnit/VM log of this run, or None."""
        if not self.logdir:
            return None
        p = os.path.join(self.logdir, name)
        if not os.path.isfile(p) or os.path.getmtime(p) < self.late_after:
            return None
        with open(p, encoding="utf-8", errors="replace") as f:
            return f.read()


# pytest -v: "test_smpd.py::test_x PASSED   [ 5%]"; a parametrized case
# "test_x[id]" counts under test_x (every instance must pass).  A case line
# without its outcome (killed by a timeout) ran and did not pass.
PYTEST_LINE = re.compile(r"^\S*?\.py::([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?(?:\s+(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b)?")
# KUnit (kunit.py): "[12:00:00] [PASSED] case" or, for a parametrized case,
# "[12:00:00] ===== [PASSED] case =====".
KUNIT_LINE = re.compile(r"\[(PASSED|FAILED|SKIPPED|CRASHED|TIMED OUT)\] ([A-Za-z0-9_]+)(?: =+)?\s*$")


def case_outcome(out, case):
    """'ok', 'failed' (failed or crashed inside it), or None (never ran)."""
    ran = False
    py = []
    for ln in out.splitlines():
        m = PYTEST_LINE.match(ln)
        if m and m.group(1) == case:
            py.append(m.group(3))
            continue
        m = KUNIT_LINE.search(ln)
        if m and m.group(2) == case:
            return "ok" if m.group(1) == "PASSED" else "failed"
        if ln.startswith(CMOCKA_OK) and ln[len(CMOCKA_OK):].strip() == case:
            return "ok"
        if ln.startswith(CMOCKA_FAILED) and ln[len(CMOCKA_FAILED):].strip() == case:
            return "failed"
        if ln.startswith(CMOCKA_RUN) and ln[len(CMOCKA_RUN):].strip() == case:
            ran = True
        # proofs/run.sh: "ok - proofs: NAME", "not ok - proofs: NAME (log: ...)"
        m = re.match(r"^\s*(not ok|ok) - proofs: (\S+)", ln)
        if m and m.group(2) == case:
            return "failed" if m.group(1) == "not ok" else "ok"
        m = re.match(r"^\s*(not ok|ok)\s+\d+\s*(?:-\s*)?(\S+)", ln)
        if m and m.group(2) == case:
            return "failed" if m.group(1) == "not ok" else "ok"
    if py:
        return "ok" if all(o == "PASSED" for o in py) else "failed"
    return "failed" if ran else None


def check_test_exists(t):
    """None when the referenced test exists in the tree, else the reason."""
    if t["kind"] == "meson":
        return None	# existence is proved by the testlog
    if t["kind"] == "kunit":
        files = list(files_under("kernel", (".c",)))
        if not grep_files(files, r"KUNIT_CASE(?:_PARAM)?\(\s*" + re.escape(t["case"]) + r"\b"):
            return f"no KUNIT_CASE({t['case']}) under kernel/"
        if not grep_files(files, r"\.name\s*=\s*\"" + re.escape(t["suite"]) + r"\""):
            return f"no KUnit suite .name = \"{t['suite']}\" under kernel/"
        return None
    if t["kind"] == "vm":
        if not os.path.isdir(os.path.join(TOP, "tests", "vm")):
            return "tests/vm/ does not exist"
        if os.path.isfile(os.path.join(TOP, "tests", "vm", "tests", t["id"] + ".sh")):
            return None
        if not grep_files(files_under("tests/vm", ("",)),
                          r"(?<![A-Za-z0-9_.-])" + re.escape(t["id"]) + r"(?![A-Za-z0-9_.-])"):
            return f"VM test id {t['id']} not found under tests/vm/"
        return None
    if t["kind"] == "system":
        # A test of the systemd-booted guest (tests/vm/run --systemd runs
        # the *-system-* tests), reported by the system suite.
        if "-system-" not in t["id"]:
            return f"system test id {t['id']} is not a tests/vm/tests/*-system-* test"
        if not os.path.isfile(os.path.join(TOP, "tests", "vm", "tests", t["id"] + ".sh")):
            return f"no tests/vm/tests/{t['id']}.sh"
        return None
    if t["kind"] == "proof":
        # An analysis of proofs/run.sh: "eva-NAME", "wp-NAME", "spin-NAME"
        # (spin-mutant-NAME: a mutant of the model the search must catch).
        path = os.path.join(TOP, "proofs", "run.sh")
        if not os.path.isfile(path):
            return "proofs/run.sh does not exist"
        part, _, name = t["id"].partition("-")
        if part not in ("eva", "wp", "spin") or not name:
            return f"proof id {t['id']}: expected eva-NAME, wp-NAME or spin-NAME"
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # the analysis by its name, or by its whole id as run.sh reports it
        if not re.search(r"(?<![A-Za-z0-9_.-])" + re.escape(name) + r"(?![A-Za-z0-9_.-])", text) \
                and f'"{t["id"]}"' not in text:
            return f"proof {t['id']}: {name} not in proofs/run.sh"
        return None
    return f"unknown test kind {t['kind']}"


def test_passed(t, res):
    """(state, detail): state 'pass', 'fail' or 'deferred'."""
    why = check_test_exists(t)
    if why:
        return "fail", why
    if t["kind"] == "meson":
        runs = res.meson_runs(t)
        if not runs:
            return "fail", "did not run in this run (not in the meson testlog)"
        bad = [r for r in runs if r[1] != "OK"]
        if bad:
            return "fail", f"result {bad[0][1]}"
        if t["case"]:
            for _, _, out in runs:
                o = case_outcome(out, t["case"])
                if o != "ok":
                    return "fail", f"case {t['case']} " + ("did not report OK" if o is None else "failed or crashed")
        return "pass", "passed"
    suite, logname, strict = {
        "kunit": ("kernel", "kernel-kunit.log", res.strict_late),
        "vm": ("vm", "vm.tap", res.strict_late),
        "system": ("system", "system.tap", res.strict_system),
        "proof": ("proofs", "proofs.log", res.strict_proofs),
    }[t["kind"]]
    text = res.late_log(logname)
    if text is None:
        if strict:
            return "fail", f"no {logname} from this run"
        return "deferred", f"verified by the {suite} suite later in make check"
    key = t["case"] if t["kind"] == "kunit" else t["id"]
    o = case_outcome(text, key)
    if o == "ok":
        return "pass", "passed"
    return "fail", f"{key} " + ("not in " + logname if o is None else "failed")


# ---------------------------------------------------------------- checking

def validate(table, hazards):
    """Structural checks. Returns (errors, per-hazard controls)."""
    errs = []
    ids = set()
    by_hazard = {h: [] for h in hazards}
    layers = table["layers"]
    for lay in layers:
        if lay not in LAYERS:
            errs.append(f"[layers.{lay}]: unknown layer (FW, KD, DM, LIB)")
    for c in table["control"]:
        cid = c.get("id", "?")
        where = f"control {cid}"
        if not re.fullmatch(r"[A-Z][A-Z0-9-]*", cid):
            errs.append(f"{where}: id must look like FW-LEASE")
        if cid in ids:
            errs.append(f"{where}: duplicate id")
        ids.add(cid)
        if c.get("layer") not in LAYERS:
            errs.append(f"{where}: layer must be one of {', '.join(LAYERS)}")
        if c.get("status") not in STATUSES:
            errs.append(f"{where}: status must be implemented or open")
        if not c.get("summary"):
            errs.append(f"{where}: summary missing")
        hz = c.get("hazards") or []
        if not hz:
            errs.append(f"{where}: hazards missing")
        for h in hz:
            if h not in hazards:
                errs.append(f"{where}: {h} is not a hazard in hazards.md")
            else:
                by_hazard[h].append(c)
        for ref in c.get("tests", []):
            try:
                parse_test_ref(ref)
            except TableError as e:
                errs.append(f"{where}: {e}")
        for ref in c.get("code", []):
            try:
                parse_code_ref(ref)
            except TableError as e:
                errs.append(f"{where}: {e}")
        if c.get("status") == "open":
            if not isinstance(c.get("issue", layers.get(c.get("layer"), {}).get("issue")), int):
                errs.append(f"{where}: open without an issue number (issue = N, or [layers.{c.get('layer')}] issue)")
            if c.get("tests") or c.get("code"):
                errs.append(f"{where}: open controls list no code or tests; "
                            "set status = \"implemented\" once they exist and pass")
        else:
            if not c.get("code"):
                errs.append(f"{where}: implemented without a code reference")
            if not c.get("tests"):
                errs.append(f"{where}: implemented without a test")
    controls = {c.get("id"): c for c in table["control"]}
    names = set()
    for m in table["mutation"]:
        n = m.get("name", "?")
        where = f"mutation {n}"
        if not MUTATION_RE.match(n):
            errs.append(f"{where}: name must be lower case, like fw_lease_expiry")
        if n in names:
            errs.append(f"{where}: duplicate name")
        names.add(n)
        c = controls.get(m.get("control"))
        if not c:
            errs.append(f"{where}: unknown control {m.get('control')}")
        elif c.get("status") != "implemented":
            errs.append(f"{where}: control {c['id']} is not implemented")
        if not m.get("killed_by"):
            errs.append(f"{where}: killed_by missing")
        for ref in m.get("killed_by", []):
            try:
                t = parse_test_ref(ref)
                if t["kind"] != "meson":
                    errs.append(f"{where}: {ref}: only meson tests can kill a mutant so far")
            except TableError as e:
                errs.append(f"{where}: {e}")
        hook = m.get("hook", "")
        macro = "SMP_MUTATION_" + n.upper()
        full = os.path.join(TOP, hook)
        if not hook or not os.path.isfile(full):
            errs.append(f"{where}: hook file '{hook}' does not exist")
        else:
            with open(full, encoding="utf-8", errors="replace") as f:
                text = f.read()
            if not re.search(r"(?m)^\s*#\s*if(n?def)?\b.*\b" + macro + r"\b", text):
                errs.append(f"{where}: {hook} has no #ifdef/#ifndef {macro} hook")
            if not re.search(r'(?m)^\s*#\s*include\s+"smp-mutation.h"', text):
                errs.append(f"{where}: {hook} does not #include \"smp-mutation.h\" (the hook would never fire)")
    # Every hook in the tree is registered: an unlisted one is never run.
    for p in files_under("", (".c", ".h")):
        with open(p, encoding="utf-8", errors="replace") as f:
            for macro in set(re.findall(r"\bSMP_MUTATION_([A-Z0-9_]+)", f.read())):
                if macro.lower() not in names:
                    errs.append(f"{os.path.relpath(p, TOP)}: hook SMP_MUTATION_{macro} "
                                "is not registered as a [[mutation]]")
    return errs, by_hazard


def issue_of(table, c):
    return c.get("issue", table["layers"].get(c["layer"], {}).get("issue"))


def cmd_check(args):
    try:
        hazards = load_hazards(args.hazards)
        table = load_table()
    except TableError as e:
        print(f"not ok - safety: {e}")
        print("safety-counts: 0 1")
        return 1

    late_after = 0.0
    testlogs = [p for p in args.testlog if os.path.isfile(p)]
    missing = [p for p in args.testlog if not os.path.isfile(p)]
    for p in missing:
        print(f"# safety: {p}: no such testlog")
    if args.since is not None:
        # make check runs the kernel suite beside the host suite, so its
        # log can be older than the host testlog and still be this run's
        late_after = args.since
    elif testlogs:
        late_after = min(os.path.getmtime(p) for p in testlogs)
    res = Results(testlogs, args.logdir, args.strict_late, late_after, args.strict_system,
                  args.strict_proofs)

    # Tests this run's testlog lacks (run alone; or valgrind's run, which
    # skips the no-valgrind suites, overwrote the host testlog): run them.
    if args.run_missing:
        absent = []
        for c in table["control"]:
            if c.get("status") != "implemented":
                continue
            for ref in c.get("tests", []):
                try:
                    t = parse_test_ref(ref)
                except TableError:
                    continue
                if t["kind"] == "meson" and not res.meson_runs(t) and t["name"] not in absent:
                    absent.append(t["name"])
        if absent:
            print(f"# safety: running the claimed test(s) not in this run's testlog: {' '.join(absent)}")
            logbase = "testlog-safety"
            subprocess.run(["meson", "test", "-C", args.run_missing, "--no-rebuild",
                            "--num-processes", "2", "--logbase", logbase] + absent,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            p = os.path.join(args.run_missing, "meson-logs", logbase + ".json")
            if os.path.isfile(p):
                res._read_testlog(p)
                if not testlogs and args.since is None:
                    res.late_after = os.path.getmtime(p)

    errs, by_hazard = validate(table, hazards)
    npass = nfail = 0
    warnings = []

    # Test results, resolved once per reference.
    cache = {}

    def test_state(ref):
        if ref not in cache:
            cache[ref] = test_passed(parse_test_ref(ref), res)
        return cache[ref]

    for h, hz in hazards.items():
        herrs = []
        open_layers = []
        for lay in hz["layers"]:
            cs = [c for c in by_hazard[h] if c.get("layer") == lay]
            if not cs:
                herrs.append(f"no {lay} control in the table (hazards.md requires one)")
        for c in by_hazard[h]:
            if c.get("status") == "open":
                open_layers.append((c.get("layer"), c["id"], issue_of(table, c)))
                continue
            if c.get("status") != "implemented":
                continue
            for ref in c.get("code", []):
                try:
                    why = resolve_code(ref)
                except TableError as e:
                    why = str(e)
                if why:
                    herrs.append(f"{c['id']}: code {ref}: {why}")
            for ref in c.get("tests", []):
                try:
                    state, detail = test_state(ref)
                except TableError as e:
                    state, detail = "fail", str(e)
                if state == "fail":
                    herrs.append(f"{c['id']}: test {ref}: {detail}")
                elif state == "deferred":
                    warnings.append(f"{h} {c['id']}: {ref}: {detail}")
        if herrs:
            nfail += 1
            print(f"not ok - {h} {hz['title']}")
            for e in herrs:
                print(f"    {e}")
        else:
            npass += 1
            if open_layers:
                print(f"ok - {h} {hz['title']} # OPEN: " +
                      ", ".join(f"{lay} {cid} (issue {i})" for lay, cid, i in open_layers))
                for lay, cid, i in open_layers:
                    warnings.append(f"{h} OPEN {lay} control {cid}: not built yet (issue {i})")
            else:
                print(f"ok - {h} {hz['title']}: every required layer controlled and tested")

    if errs:
        nfail += 1
        print("not ok - hazards.toml well-formed")
        for e in errs:
            print(f"    {e}")
    else:
        npass += 1
        print("ok - hazards.toml well-formed")

    want = render(table, hazards)
    have = open(DOC, encoding="utf-8").read() if os.path.isfile(DOC) else None
    if have == want:
        npass += 1
        print("ok - docs/safety.md is current")
    else:
        nfail += 1
        print("not ok - docs/safety.md is " + ("missing" if have is None else "stale") +
              ": run build-aux/safety-trace.py gen and commit it")

    if warnings:
        print()
        print(f"WARNING: {len(warnings)} open or deferred item(s), open defects until built and tested:")
        for w in warnings:
            print(f"  WARNING: {w}")
    covered = [h for h in hazards if all(
        any(c.get("layer") == lay and c.get("status") == "implemented" for c in by_hazard[h])
        for lay in hazards[h]["layers"]) and not any(c.get("status") == "open" for c in by_hazard[h])]
    print()
    print(f"safety: {len(covered)}/{len(hazards)} hazards fully covered; "
          f"{len(hazards) - len(covered)} open")
    print(f"safety-counts: {npass} {nfail}")
    return 1 if nfail else 0


# ------------------------------------------------------------- generating

def md_escape(s):
    return s.replace("|", "\\|")


def anchor(h, title):
    """The GitHub-style anchor of the heading "## Hn. title"."""
    text = f"{h}. {title}".lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def render(table, hazards):
    by_hazard = {h: [] for h in hazards}
    for c in table["control"]:
        for h in c.get("hazards", []):
            if h in by_hazard:
                by_hazard[h].append(c)
    muts = {}
    for m in table["mutation"]:
        muts.setdefault(m.get("control"), []).append(m)

    out = []
    w = out.append
    w("# Safety traceability")
    w("")
    w("<!-- Generated by build-aux/safety-trace.py from docs/safety/hazards.toml")
    w("     and docs/hazards.md; do not edit. `make check-safety` fails when")
    w("     this file is stale: run `build-aux/safety-trace.py gen`. -->")
    w("")
    w("Every hazard of the project's hazard analysis, [hazards.md](hazards.md), mapped to")
    w("the controls that meet it, layer by layer (FW device firmware, KD kernel")
    w("driver, DM daemon, LIB libsmp and tools), the code that implements each")
    w("control and the tests that prove it. `make check` runs:")
    w("")
    w("- suite `safety` (`build-aux/safety-trace.py check`): fails when a layer")
    w("  hazards.md requires has no control in the table, a code reference does")
    w("  not resolve, or a claimed test did not pass in this run; controls not")
    w("  built yet are listed as OPEN warnings with their issue;")
    w("- suite `mutations` (`build-aux/safety-mutations.sh`): builds each")
    w("  mutant (`-Dmutation=NAME`, one control disabled by an")
    w("  `SMP_MUTATION_<NAME>` hook) and passes only if its tests then fail;")
    w("- suite `analyze` (`build-aux/analyze.sh`): scan-build and cppcheck;")
    w("- suite `proofs` (`proofs/run.sh`, [proofs/README.md](../proofs/README.md)):")
    w("  Frama-C Eva on the codecs, WP on the limit rules, Spin on the stop")
    w("  protocol with a mutant per property; a test `proof:ID` is the line")
    w("  `ok - proofs: ID` of this run's proofs log.")
    w("")
    w("A hazard is **covered** only when every layer hazards.md requires has an")
    w("implemented, tested control. **OPEN** marks a required control that is not")
    w("built yet: an open defect, tracked in the issue named.")
    w("")
    w("How to register a component's controls, tests and mutations: the comment")
    w("at the top of [`safety/hazards.toml`](safety/hazards.toml).")
    w("")
    w("## Summary")
    w("")
    w("| hazard | | required | " + " | ".join(LAYERS) + " | status |")
    w("|---|---|---|" + "---|" * len(LAYERS) + "---|")
    for h, hz in hazards.items():
        cells = []
        for lay in LAYERS:
            cs = [c for c in by_hazard[h] if c.get("layer") == lay]
            impl = [c for c in cs if c.get("status") == "implemented"]
            opn = [c for c in cs if c.get("status") == "open"]
            bits = []
            if impl:
                bits.append(f"{len(impl)} tested")
            if opn:
                bits.append("OPEN #" + ", #".join(sorted({str(issue_of(table, c)) for c in opn})))
            if not cs:
                bits.append("**MISSING**" if lay in hz["layers"] else "")
            cells.append(" ".join(b for b in bits if b))
        open_req = [lay for lay in hz["layers"]
                    if not any(c.get("layer") == lay and c.get("status") == "implemented"
                               for c in by_hazard[h])
                    or any(c.get("layer") == lay and c.get("status") == "open" for c in by_hazard[h])]
        status = "covered" if not open_req else "**OPEN** (" + ", ".join(open_req) + ")"
        w(f"| [{h}](#{h.lower()}) | {md_escape(hz['title'])} | {', '.join(hz['layers'])} | "
          + " | ".join(cells) + f" | {status} |")
    w("")
    nimpl = sum(1 for c in table["control"] if c.get("status") == "implemented")
    nopen = sum(1 for c in table["control"] if c.get("status") == "open")
    w(f"{nimpl} controls implemented and tested, {nopen} open; "
      f"{len(table['mutation'])} mutations.")
    w("")
    w("## Hazards")
    for h, hz in hazards.items():
        w("")
        w(f"### {h}")
        w("")
        w(f"**{hz['title']}**. Causes: {hz['causes']}")
        w("")
        w(f"Required controls ([hazards.md](hazards.md#{anchor(h, hz['title'])})): "
          f"{hz['controls']}")
        w("")
        for lay in LAYERS:
            for c in sorted((c for c in by_hazard[h] if c.get("layer") == lay), key=lambda c: c["id"]):
                if c.get("status") == "open":
                    w(f"- **{lay}** `{c['id']}`: **OPEN** (issue {issue_of(table, c)}), "
                      f"not built yet: {c['summary']}")
                    continue
                w(f"- **{lay}** `{c['id']}`: {c['summary']}")
                w("  - code: " + ", ".join(f"`{r}()`" if r.rsplit(":", 1)[0].endswith((".c", ".h"))
                                           else f"`{r}`" for r in c.get("code", [])))
                w("  - tests: " + ", ".join(f"`{r}`" for r in c.get("tests", [])))
                for m in muts.get(c["id"], []):
                    w(f"  - mutation `{m['name']}` (`SMP_MUTATION_{m['name'].upper()}` in "
                      f"`{m['hook']}`) killed by " + ", ".join(f"`{r}`" for r in m["killed_by"]))
        if not by_hazard[h]:
            w("- **MISSING**: no control in the table")
    w("")
    w("## Test references")
    w("")
    w("`meson:SUITE/NAME#CASE` is the meson test NAME in suite SUITE and, after")
    w("`#`, the cmocka case, TAP test or pytest case in it that must report OK;")
    w("`kunit:SUITE.CASE` a KUnit case; `vm:ID` a test of the VM harness")
    w("(tests/vm, TAP); `system:ID` a test of the systemd-booted VM with the")
    w("Debian packages installed (tests/vm/tests/ID.sh, suite `system`);")
    w("`proof:ID` an analysis of the `proofs` suite (below).")
    w("")
    if table.get("proof"):
        w("## Proofs and model checks")
        w("")
        w("Analyses that cover every input (or every interleaving of a model), not")
        w("only the inputs tried; the suite `proofs` runs them all (`make")
        w("check-proofs`). What each one assumes and leaves out, in full:")
        w("[proofs/README.md](../proofs/README.md).")
        w("")
        for pr in table["proof"]:
            w(f"### `proof:{pr['id']}` ({', '.join(pr.get('hazards', []))})")
            w("")
            w(pr["shows"])
            w("")
            w(f"- reproduce: `{pr['command']}`")
            w(f"- not covered: {pr['limits']}")
            w("")
    return "\n".join(out)


def cmd_gen(args):
    try:
        text = render(load_table(), load_hazards(args.hazards))
    except TableError as e:
        print(f"safety-trace: {e}", file=sys.stderr)
        return 1
    if args.check:
        have = open(DOC, encoding="utf-8").read() if os.path.isfile(DOC) else None
        if have != text:
            print("docs/safety.md is stale: run build-aux/safety-trace.py gen", file=sys.stderr)
            return 1
        return 0
    with open(DOC + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(DOC + ".tmp", DOC)
    print(f"wrote {os.path.relpath(DOC, TOP)}")
    return 0


# ------------------------------------------------------------- mutations

def cmd_mutations(args):
    try:
        table = load_table()
    except TableError as e:
        print(f"safety-trace: {e}", file=sys.stderr)
        return 1
    for m in table["mutation"]:
        tests = []
        for ref in m.get("killed_by", []):
            t = parse_test_ref(ref)
            if t["kind"] == "meson" and f"{t['suite']}/{t['name']}" not in tests:
                tests.append(f"{t['suite']}/{t['name']}")
        print("\t".join([m["name"], m.get("control", "?"), " ".join(tests)]))
    return 0


def cmd_targets(args):
    out = subprocess.run(["meson", "introspect", "--tests", "--targets", args.build],
                         check=True, capture_output=True, text=True).stdout
    intro = json.loads(out)
    files = {t["id"]: t["filename"] for t in intro["targets"]}
    want = []
    for spec in args.tests:
        suite, name = spec.split("/", 1)
        found = [t for t in intro["tests"] if t["name"] == name and
                 any(s == suite or s.endswith(":" + suite) for s in t["suite"])]
        if not found:
            print(f"safety-trace: no meson test {spec} in {args.build}", file=sys.stderr)
            return 1
        for t in found:
            paths = [t["cmd"][0]] if t["cmd"] else []
            for dep in t.get("depends", []):
                paths += files.get(dep, [])
            for pth in paths:
                rel = os.path.relpath(pth, os.path.abspath(args.build))
                if not rel.startswith("..") and rel not in want:
                    want.append(rel)
    print("\n".join(want))
    return 0


def cmd_pytest_k(args):
    """The pytest -k expression selecting the claimed cases of pytest tests."""
    table = load_table()
    out = subprocess.run(["meson", "introspect", "--tests", args.build],
                         check=True, capture_output=True, text=True).stdout
    intro = json.loads(out)
    cases = []
    for m in table["mutation"]:
        if args.names and m["name"] not in args.names:
            continue
        for ref in m.get("killed_by", []):
            t = parse_test_ref(ref)
            if t["kind"] != "meson" or not t["case"]:
                continue
            for it in intro:
                if it["name"] == t["name"] and "pytest" in it["cmd"] and \
                        any(s == t["suite"] or s.endswith(":" + t["suite"]) for s in it["suite"]):
                    if t["case"] not in cases:
                        cases.append(t["case"])
    print(" or ".join(cases))
    return 0


def cmd_baseline(args):
    table = load_table()
    res = Results([args.testlog])
    bad = 0
    for m in table["mutation"]:
        if args.names and m["name"] not in args.names:
            continue
        for ref in m.get("killed_by", []):
            state, detail = test_passed(parse_test_ref(ref), res)
            if state != "pass":
                print(f"    {m['name']}: {ref} without any mutation: {detail}")
                bad += 1
    return 1 if bad else 0


def cmd_verdict(args):
    table = load_table()
    ms = [m for m in table["mutation"] if m["name"] == args.name]
    if not ms:
        print(f"unknown mutation {args.name}")
        return 2
    res = Results([args.testlog])
    survived = 0
    for ref in ms[0]["killed_by"]:
        t = parse_test_ref(ref)
        runs = res.meson_runs(t)
        if not runs:
            print(f"    {ref}: did not run: the mutant is not proved killed")
            survived += 1
            continue
        if t["case"]:
            outs = [case_outcome(out, t["case"]) for _, _, out in runs]
            if all(o == "failed" for o in outs):
                print(f"    {ref}: failed (killed)")
            elif any(o is None for o in outs):
                print(f"    {ref}: case never reported (an earlier case crashed?): not proved killed")
                survived += 1
            else:
                print(f"    {ref}: PASSED with the control disabled: the mutant survived")
                survived += 1
        else:
            if all(r[1] != "OK" for r in runs):
                print(f"    {ref}: {runs[0][1]} (killed)")
            else:
                print(f"    {ref}: PASSED with the control disabled: the mutant survived")
                survived += 1
    return 1 if survived else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hazards", help="the hazard analysis (default docs/hazards.md)")
    ap.add_argument("--top", help="source tree the code references are relative to")
    ap.add_argument("--table", help="the table (default docs/safety/hazards.toml)")
    ap.add_argument("--doc", help="the generated page (default docs/safety.md)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--check", action="store_true")
    c = sub.add_parser("check")
    c.add_argument("--testlog", action="append", default=[],
                   help="meson testlog JSON of this run (repeatable)")
    c.add_argument("--logdir", help="check.sh LOGDIR (kernel-kunit.log, vm.tap, system.tap)")
    c.add_argument("--run-missing", metavar="BUILD",
                   help="run claimed meson tests absent from the testlogs in BUILD first")
    c.add_argument("--strict-late", action="store_true",
                   help="KUnit and VM results must be present (kernel/vm suites ran before)")
    c.add_argument("--strict-system", action="store_true",
                   help="system VM results must be present (the system suite ran before)")
    c.add_argument("--strict-proofs", action="store_true",
                   help="proof results must be present (the proofs suite ran before)")
    c.add_argument("--since", type=float, metavar="EPOCH",
                   help="this run started then: KUnit/VM/system logs older than it are "
                        "another run's (default: the oldest testlog's time)")
    sub.add_parser("mutations")
    tg = sub.add_parser("targets")
    tg.add_argument("build")
    tg.add_argument("tests", nargs="+")
    pk = sub.add_parser("pytest-k")
    pk.add_argument("build")
    pk.add_argument("names", nargs="*", help="only these mutations (default: all)")
    b = sub.add_parser("baseline")
    b.add_argument("testlog")
    b.add_argument("names", nargs="*", help="only these mutations (default: all)")
    v = sub.add_parser("verdict")
    v.add_argument("name")
    v.add_argument("testlog")
    args = ap.parse_args()
    global TOP, TABLE, DOC
    if args.top:
        TOP = os.path.abspath(args.top)
    if not args.hazards:
        args.hazards = HAZARDS
    if args.table:
        TABLE = os.path.abspath(args.table)
    if args.doc:
        DOC = os.path.abspath(args.doc)
    return {"gen": cmd_gen, "check": cmd_check, "mutations": cmd_mutations,
            "targets": cmd_targets, "pytest-k": cmd_pytest_k, "baseline": cmd_baseline,
            "verdict": cmd_verdict}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
