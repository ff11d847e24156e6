#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The traceability checker fails on what it must fail on.

build-aux/safety-trace.py guards every safety claim of the project, so it
gets its own tests: each case builds a small fixture tree (docs/hazards.md, a
table, a C file, a meson testlog) and asserts the verdict and the message.
A checker that passes everything would pass `make check` silently; these
make sure it cannot.
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE = os.path.join(HERE, "..", "..", "build-aux", "safety-trace.py")

HAZARDS_MD = """\
# Hazard analysis

## The layers

- FW: prose outside a hazard section is not parsed.

## H1. Needle too deep

Hazard: pigment below the dermis.

Causes: runaway client.

Required layers: FW, DM

- FW: hard depth cap.
- DM: policy limits,
  per zone.
- LIB: shows the refusal.
- Audit: requested and applied depth.

## H2. Too much current

Hazard: burns.
Causes: short.

Required layers: FW, KD

- FW: over-current trip.
- KD: over-current trip.
"""

H3_JAM = """
## H3. Jam

Hazard: tearing.

Causes: dried pigment.

Required layers: FW

- FW: stall detection.
"""

SOURCE_C = """\
#include "smp-mutation.h"

static int depth_cap(int d);

int set_depth(int d)
{
#ifndef SMP_MUTATION_FW_DEPTH
	if (d > 2000)
		return -1;
#endif
	return depth_cap(d);
}

static int depth_cap(int d)
{
	return d;
}

static void trip(void)
{
}
"""

GOOD_TABLE = """\
schema = 1
[layers.FW]
title = "fw"
issue = 2
[layers.KD]
title = "kd"
issue = 3
[layers.DM]
title = "dm"
issue = 4

[[control]]
id = "FW-DEPTH"
hazards = ["H1"]
layer = "FW"
status = "implemented"
summary = "depth cap"
code = ["src/fw.c:set_depth"]
tests = ["meson:sim/sim-core#test_depth"]

[[control]]
id = "DM-DEPTH"
hazards = ["H1"]
layer = "DM"
status = "open"
summary = "policy"

[[control]]
id = "FW-TRIP"
hazards = ["H2"]
layer = "FW"
status = "implemented"
summary = "trip"
code = ["src/fw.c:trip"]
tests = ["meson:sim/sim-core#test_trip", "meson:unit/frame"]

[[control]]
id = "KD-TRIP"
hazards = ["H2"]
layer = "KD"
status = "open"
issue = 9
summary = "kernel trip"

[[mutation]]
name = "fw_depth"
control = "FW-DEPTH"
hook = "src/fw.c"
killed_by = ["meson:sim/sim-core#test_depth"]
"""


def cmocka_out(cases):
    """cmocka stdout for {case: 'ok'|'failed'|'crash'}."""
    lines = [f"[==========] Running {len(cases)} test(s)."]
    for c, r in cases.items():
        lines.append(f"[ RUN      ] {c}")
        if r == "ok":
            lines.append(f"[       OK ] {c}")
        elif r == "failed":
            lines.append("[  ERROR   ] --- 1 != 2")
            lines.append(f"[  FAILED  ] {c}")
        elif r == "crash":
            break
        elif r == "absent":
            lines.pop()
    return "\n".join(lines) + "\n"


def testlog_line(name, suite, result, stdout=""):
    return json.dumps({"name": f"libsmp:{suite} / {name}", "result": result,
                       "stdout": stdout, "returncode": 0 if result == "OK" else 1})


class Fixture:
    def __init__(self, table=GOOD_TABLE, hazards=HAZARDS_MD, source=SOURCE_C):
        self.tmp = tempfile.TemporaryDirectory(prefix="safety-trace-test-")
        self.top = self.tmp.name
        os.makedirs(os.path.join(self.top, "src"))
        os.makedirs(os.path.join(self.top, "docs", "safety"))
        self.write("src/fw.c", source)
        self.write("docs/safety/hazards.toml", table)
        self.hazards = os.path.join(self.top, "docs", "hazards.md")
        if hazards is not None:
            self.write("docs/hazards.md", hazards)
        self.testlog = os.path.join(self.top, "testlog.json")
        self.set_results()

    def write(self, rel, text):
        with open(os.path.join(self.top, rel), "w", encoding="utf-8") as f:
            f.write(text)

    def set_results(self, depth="ok", trip="ok", frame="OK", core_result=None):
        core = {"test_depth": depth, "test_trip": trip}
        if core_result is None:
            core_result = "OK" if all(v == "ok" for v in core.values()) else "FAIL"
        with open(self.testlog, "w", encoding="utf-8") as f:
            f.write(testlog_line("sim-core", "sim", core_result, cmocka_out(core)) + "\n")
            if frame is not None:
                f.write(testlog_line("frame", "unit", frame, "") + "\n")

    def run(self, *args, testlog=True):
        cmd = [sys.executable, TRACE, "--top", self.top,
               "--table", os.path.join(self.top, "docs", "safety", "hazards.toml"),
               "--doc", os.path.join(self.top, "docs", "safety.md"),
               "--hazards", self.hazards] + list(args)
        if testlog and args and args[0] == "check":
            cmd += ["--testlog", self.testlog]
        p = subprocess.run(cmd, capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr

    def gen(self):
        rc, out = self.run("gen")
        assert rc == 0, out

    def close(self):
        self.tmp.cleanup()


class TraceTest(unittest.TestCase):
    def setUp(self):
        self.fx = None

    def tearDown(self):
        if self.fx:
            self.fx.close()

    def fixture(self, **kw):
        self.fx = Fixture(**kw)
        return self.fx

    def test_good_table_passes_with_open_warnings(self):
        fx = self.fixture()
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 0, out)
        self.assertIn("ok - H1", out)
        self.assertIn("OPEN: DM DM-DEPTH (issue 4)", out)
        self.assertIn("KD-TRIP (issue 9)", out)	# its own issue wins over the layer's
        self.assertIn("WARNING: H1 OPEN DM control DM-DEPTH", out)
        self.assertIn("0/2 hazards fully covered", out)
        self.assertIn("safety-counts: 4 0", out)
        with open(os.path.join(fx.top, "docs", "safety.md"), encoding="utf-8") as f:
            doc = f.read()
        self.assertIn("**OPEN** (issue 4)", doc)
        self.assertIn("`src/fw.c:set_depth()`", doc)
        self.assertIn("mutation `fw_depth`", doc)

    def test_missing_hazards_file_fails_loudly(self):
        fx = self.fixture(hazards=None)
        rc, out = fx.run("check")
        self.assertEqual(rc, 1)
        self.assertIn("hazards.md: missing", out)
        self.assertIn("safety-counts: 0 1", out)

    def test_hazards_parsed_into_the_page(self):
        fx = self.fixture()
        fx.gen()
        with open(os.path.join(fx.top, "docs", "safety.md"), encoding="utf-8") as f:
            doc = f.read()
        self.assertIn("**Needle too deep**. Causes: runaway client.", doc)
        self.assertIn("(hazards.md#h1-needle-too-deep)): FW: hard depth cap. "
                      "DM: policy limits, per zone.", doc)
        self.assertNotIn("shows the refusal", doc)	# LIB is not required
        self.assertIn("| [H2](#h2) | Too much current | FW, KD |", doc)

    def test_hazard_format_errors_are_named(self):
        cases = [
            (HAZARDS_MD.replace("- KD: over-current trip.\n", ""),
             "H2: requires KD but has no '- KD:' bullet"),
            (HAZARDS_MD.replace("Required layers: FW, KD", "Required layers: FW, LIB"),
             "Required layers: expected some of FW, KD, DM, got LIB"),
            (HAZARDS_MD.replace("Required layers: FW, KD\n", ""),
             "H2: names no required layer"),
            (HAZARDS_MD.replace("Causes: short.\n", ""),
             "H2: needs a 'Hazard:' and a 'Causes:' line"),
            (HAZARDS_MD.replace("- LIB: shows", "- App: shows"),
             "unknown layer 'App'"),
            (HAZARDS_MD + HAZARDS_MD[HAZARDS_MD.index("## H2."):],
             "H2 appears twice"),
            ("# Hazards\n\n| H1 | Needle too deep | x | cap (FW) |\n",
             "no hazard sections"),
        ]
        for text, msg in cases:
            with self.subTest(msg=msg):
                fx = Fixture(hazards=text)
                try:
                    rc, out = fx.run("check")
                finally:
                    fx.close()
                self.assertEqual(rc, 1, out)
                self.assertIn(msg, out)
                self.assertIn("safety-counts: 0 1", out)

    def test_required_layer_without_control_fails(self):
        fx = self.fixture(table=GOOD_TABLE.replace(
            '[[control]]\nid = "KD-TRIP"', '[[control]]\nid = "LIB-TRIP"').replace(
            'layer = "KD"', 'layer = "LIB"'))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("not ok - H2", out)
        self.assertIn("no KD control in the table", out)

    def test_hazard_with_no_entry_fails(self):
        fx = self.fixture(hazards=HAZARDS_MD + H3_JAM)
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("not ok - H3", out)
        with open(os.path.join(fx.top, "docs", "safety.md"), encoding="utf-8") as f:
            self.assertIn("MISSING", f.read())

    def test_missing_function_fails(self):
        fx = self.fixture(table=GOOD_TABLE.replace("src/fw.c:trip", "src/fw.c:trip_gone"))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("no definition of trip_gone()", out)

    def test_declaration_is_not_a_definition(self):
        src = SOURCE_C.replace("static int depth_cap(int d)\n{\n\treturn d;\n}\n", "")
        fx = self.fixture(source=src, table=GOOD_TABLE.replace("src/fw.c:trip", "src/fw.c:depth_cap"))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("no definition of depth_cap()", out)

    def test_missing_file_fails(self):
        fx = self.fixture(table=GOOD_TABLE.replace("src/fw.c:trip", "src/gone.c:trip"))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("src/gone.c: no such file", out)

    def test_failed_case_fails(self):
        fx = self.fixture()
        fx.gen()
        fx.set_results(trip="failed")
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("not ok - H2", out)
        self.assertIn("FW-TRIP: test meson:sim/sim-core#test_trip", out)

    def test_case_not_reported_fails(self):
        fx = self.fixture()
        fx.gen()
        fx.set_results(trip="crash", core_result="OK")	# a wrongly OK log
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("case test_trip failed or crashed", out)
        fx.set_results(trip="absent", core_result="OK")	# not in the binary any more
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("case test_trip did not report OK", out)

    def test_failed_meson_test_fails(self):
        fx = self.fixture()
        fx.gen()
        fx.set_results(frame="FAIL")
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("meson:unit/frame: result FAIL", out)

    def test_test_not_run_fails(self):
        fx = self.fixture()
        fx.gen()
        fx.set_results(frame=None)
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("did not run in this run", out)

    def test_no_testlog_fails(self):
        fx = self.fixture()
        fx.gen()
        rc, out = fx.run("check", testlog=False)
        self.assertEqual(rc, 1, out)
        self.assertIn("did not run in this run", out)

    def test_implemented_without_test_fails(self):
        fx = self.fixture(table=GOOD_TABLE.replace(
            'tests = ["meson:sim/sim-core#test_depth"]\n', ''))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("control FW-DEPTH: implemented without a test", out)

    def test_open_without_issue_fails(self):
        fx = self.fixture(table=GOOD_TABLE.replace("[layers.DM]\ntitle = \"dm\"\nissue = 4\n", ""))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("open without an issue number", out)

    def test_open_with_claims_fails(self):
        fx = self.fixture(table=GOOD_TABLE.replace(
            'status = "open"\nsummary = "policy"',
            'status = "open"\nsummary = "policy"\ntests = ["meson:sim/sim-core#test_depth"]'))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("open controls list no code or tests", out)

    def test_unknown_hazard_fails(self):
        fx = self.fixture(table=GOOD_TABLE.replace('hazards = ["H2"]\nlayer = "KD"',
                                                   'hazards = ["H2", "H99"]\nlayer = "KD"'))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("H99 is not a hazard in hazards.md", out)

    def test_stale_doc_fails(self):
        fx = self.fixture()
        fx.gen()
        fx.write("docs/safety/hazards.toml", GOOD_TABLE.replace('summary = "trip"', 'summary = "trip!"'))
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("docs/safety.md is stale", out)
        rc, _ = fx.run("gen", "--check")
        self.assertEqual(rc, 1)

    def test_unregistered_hook_fails(self):
        fx = self.fixture(source=SOURCE_C + "#ifdef SMP_MUTATION_FW_SECRET\n#endif\n")
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("SMP_MUTATION_FW_SECRET is not registered", out)

    def test_mutation_without_hook_fails(self):
        fx = self.fixture(source=SOURCE_C.replace("SMP_MUTATION_FW_DEPTH", "SMP_MUTATION_FW_DEPTHX"),
                          table=GOOD_TABLE + '\n[[mutation]]\nname = "fw_depthx"\ncontrol = "FW-DEPTH"\n'
                          'hook = "src/fw.c"\nkilled_by = ["meson:sim/sim-core#test_depth"]\n')
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("mutation fw_depth: src/fw.c has no #ifdef/#ifndef SMP_MUTATION_FW_DEPTH hook", out)

    def test_hook_without_header_fails(self):
        fx = self.fixture(source=SOURCE_C.replace('#include "smp-mutation.h"\n', ""))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn('does not #include "smp-mutation.h"', out)

    def test_mutation_on_open_control_fails(self):
        fx = self.fixture(table=GOOD_TABLE.replace('control = "FW-DEPTH"', 'control = "DM-DEPTH"'))
        fx.gen()
        rc, out = fx.run("check")
        self.assertEqual(rc, 1, out)
        self.assertIn("control DM-DEPTH is not implemented", out)

    def test_verdict_killed_survived_unreached(self):
        fx = self.fixture()
        fx.set_results(depth="failed")
        rc, out = fx.run("verdict", "fw_depth", fx.testlog)
        self.assertEqual(rc, 0, out)
        self.assertIn("failed (killed)", out)
        fx.set_results(depth="ok")
        rc, out = fx.run("verdict", "fw_depth", fx.testlog)
        self.assertEqual(rc, 1, out)
        self.assertIn("the mutant survived", out)
        # The binary died in an earlier case: the claimed one never ran.
        with open(fx.testlog, "w", encoding="utf-8") as f:
            f.write(testlog_line("sim-core", "sim", "FAIL",
                                 "[ RUN      ] test_other\n") + "\n")
        rc, out = fx.run("verdict", "fw_depth", fx.testlog)
        self.assertEqual(rc, 1, out)
        self.assertIn("not proved killed", out)
        # Crash inside the claimed case counts as a kill.
        fx.set_results(depth="crash")
        rc, out = fx.run("verdict", "fw_depth", fx.testlog)
        self.assertEqual(rc, 0, out)

    def test_baseline_needs_every_kill_test_passing(self):
        fx = self.fixture()
        rc, out = fx.run("baseline", fx.testlog)
        self.assertEqual(rc, 0, out)
        fx.set_results(depth="failed")
        rc, out = fx.run("baseline", fx.testlog)
        self.assertEqual(rc, 1, out)
        self.assertIn("without any mutation", out)

    def test_tap_cases(self):
        fx = self.fixture()
        fx.gen()
        with open(fx.testlog, "w", encoding="utf-8") as f:
            f.write(testlog_line("sim-core", "sim", "OK",
                                 "TAP version 13\nok 1 - test_depth\nok 2 test_trip\n") + "\n")
            f.write(testlog_line("frame", "unit", "OK") + "\n")
        rc, out = fx.run("check")
        self.assertEqual(rc, 0, out)

    def test_pytest_cases(self):
        """pytest -v lines: every parameter must pass; no outcome = did not pass."""
        fx = self.fixture()
        fx.gen()

        def run(depth_lines):
            with open(fx.testlog, "w", encoding="utf-8") as f:
                f.write(testlog_line("sim-core", "sim", "OK", "\n".join(
                    ["tests/x/test_sim.py::test_trip PASSED   [ 50%]"] + depth_lines) + "\n") + "\n")
                f.write(testlog_line("frame", "unit", "OK") + "\n")
            return fx.run("check")

        rc, out = run(["tests/x/test_sim.py::test_depth[a] PASSED   [ 75%]",
                       "tests/x/test_sim.py::test_depth[b c] PASSED  [100%]"])
        self.assertEqual(rc, 0, out)
        rc, out = run(["test_sim.py::test_depth[a] PASSED", "test_sim.py::test_depth[b] FAILED",
                       "FAILED test_sim.py::test_depth[b] - assert 1"])
        self.assertEqual(rc, 1, out)
        self.assertIn("case test_depth failed or crashed", out)
        rc, out = run(["test_sim.py::test_depth PASSED", "test_sim.py::test_depth ERROR"])
        self.assertEqual(rc, 1, out)	# passed, then its teardown failed
        rc, out = run(["test_sim.py::test_depth "])	# killed by the timeout
        self.assertEqual(rc, 1, out)
        rc, out = run(["test_sim.py::test_depth_other PASSED"])
        self.assertEqual(rc, 1, out)
        self.assertIn("case test_depth did not report OK", out)

    def test_kunit_log(self):
        """kunit.py's "[PASSED] case" lines, also for a parametrized case."""
        table = GOOD_TABLE.replace('"meson:unit/frame"]',
                                   '"meson:unit/frame", "kunit:smpusb.smpusb_test_a",'
                                   ' "kunit:smpusb.smpusb_test_p"]')
        self.assertNotEqual(table, GOOD_TABLE)
        fx = self.fixture(table=table)
        os.makedirs(os.path.join(fx.top, "kernel"))
        fx.write("kernel/k.c", 'KUNIT_CASE(smpusb_test_a),\nKUNIT_CASE_PARAM(smpusb_test_p, g),\n'
                 'static struct kunit_suite s = { .name = "smpusb", };\n')
        fx.gen()
        logdir = os.path.join(fx.top, "logs")
        os.makedirs(logdir)

        def run(a, p):
            fx.write("logs/kernel-kunit.log",
                     f"[16:23:13] [{a}] smpusb_test_a\n[16:23:13] [PASSED] case one\n"
                     f"[16:23:13] ====== [{p}] smpusb_test_p ======\n")
            return fx.run("check", "--logdir", logdir, "--strict-late")

        rc, out = run("PASSED", "PASSED")
        self.assertEqual(rc, 0, out)
        rc, out = run("FAILED", "PASSED")
        self.assertEqual(rc, 1, out)
        self.assertIn("smpusb_test_a failed", out)
        rc, out = run("PASSED", "SKIPPED")
        self.assertEqual(rc, 1, out)
        self.assertIn("smpusb_test_p failed", out)

    def test_system_tap(self):
        """system:ID: the system suite's TAP, deferred only while it has not run."""
        table = GOOD_TABLE.replace('status = "open"\nsummary = "policy"',
                                   'status = "implemented"\nsummary = "policy"\n'
                                   'code = ["src/fw.c:trip"]\ntests = ["system:52-system-udev"]')
        self.assertNotEqual(table, GOOD_TABLE)
        fx = self.fixture(table=table)
        os.makedirs(os.path.join(fx.top, "tests", "vm", "tests"))
        fx.write("tests/vm/tests/52-system-udev.sh", "plan 1\n")
        fx.gen()
        logdir = os.path.join(fx.top, "logs")
        os.makedirs(logdir)

        # Not run yet: deferred (a warning) unless the suite ran before.
        rc, out = fx.run("check", "--logdir", logdir)
        self.assertEqual(rc, 0, out)
        self.assertIn("verified by the system suite later in make check", out)
        rc, out = fx.run("check", "--logdir", logdir, "--strict-system")
        self.assertEqual(rc, 1, out)
        self.assertIn("no system.tap from this run", out)
        # --strict-late (kernel/vm ran) does not demand the system suite.
        rc, out = fx.run("check", "--logdir", logdir, "--strict-late")
        self.assertEqual(rc, 0, out)

        def run(line):
            fx.write("logs/system.tap", "TAP version 13\n1..3\nok 1 - vm: guest booted\n"
                     "    ok 1 - /dev/smpusb0 is root:smp 0660\n" + line + "\n")
            return fx.run("check", "--logdir", logdir, "--strict-system")

        rc, out = run("ok 2 - 52-system-udev (42.0s)")
        self.assertEqual(rc, 0, out)
        self.assertIn("ok - H1", out)
        rc, out = run("not ok 2 - 52-system-udev (42.0s): 1 not ok")
        self.assertEqual(rc, 1, out)
        self.assertIn("52-system-udev failed", out)
        rc, out = run("ok 2 - 53-system-session (9.0s)")
        self.assertEqual(rc, 1, out)
        self.assertIn("52-system-udev not in system.tap", out)

        # Only a *-system-* test of tests/vm can be a system: reference.
        for ref, why in (("system:20-kernel-load", "is not a tests/vm/tests/*-system-* test"),
                         ("system:59-system-none", "no tests/vm/tests/59-system-none.sh")):
            fx.write("docs/safety/hazards.toml", table.replace("system:52-system-udev", ref))
            fx.gen()
            rc, out = fx.run("check", "--logdir", logdir)
            self.assertEqual(rc, 1, out)
            self.assertIn(why, out)

    def test_proof_log(self):
        """proof:ID: the proofs suite's log, deferred only while it has not run."""
        table = GOOD_TABLE.replace('status = "open"\nsummary = "policy"',
                                   'status = "implemented"\nsummary = "policy"\n'
                                   'code = ["src/fw.c:trip"]\ntests = ["proof:spin-lease_bound"]')
        self.assertNotEqual(table, GOOD_TABLE)
        fx = self.fixture(table=table)
        os.makedirs(os.path.join(fx.top, "proofs"))
        fx.write("proofs/run.sh", "spin_check lease_bound lease_bound holds\n")
        fx.gen()
        logdir = os.path.join(fx.top, "logs")
        os.makedirs(logdir)

        rc, out = fx.run("check", "--logdir", logdir)
        self.assertEqual(rc, 0, out)
        self.assertIn("verified by the proofs suite later in make check", out)
        rc, out = fx.run("check", "--logdir", logdir, "--strict-proofs")
        self.assertEqual(rc, 1, out)
        self.assertIn("no proofs.log from this run", out)

        def run(line):
            fx.write("logs/proofs.log", "ok - proofs: eva-smp-frame\n" + line +
                     "\nsafety-counts: 1 1\n")
            return fx.run("check", "--logdir", logdir, "--strict-proofs")

        rc, out = run("ok - proofs: spin-lease_bound")
        self.assertEqual(rc, 0, out)
        self.assertIn("ok - H1", out)
        rc, out = run("not ok - proofs: spin-lease_bound (log: x.log)")
        self.assertEqual(rc, 1, out)
        self.assertIn("spin-lease_bound failed", out)
        rc, out = run("ok - proofs: spin-estop_bound")
        self.assertEqual(rc, 1, out)
        self.assertIn("spin-lease_bound not in proofs.log", out)

        # The analysis must exist in proofs/run.sh, under a known part.
        for ref, why in (("proof:spin-nothing", "nothing not in proofs/run.sh"),
                         ("proof:lease_bound", "expected eva-NAME, wp-NAME or spin-NAME")):
            fx.write("docs/safety/hazards.toml", table.replace("proof:spin-lease_bound", ref))
            fx.gen()
            rc, out = fx.run("check", "--logdir", logdir)
            self.assertEqual(rc, 1, out)
            self.assertIn(why, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
