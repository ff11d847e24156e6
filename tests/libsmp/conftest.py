# SPDX-License-Identifier: LGPL-2.1-or-later
"""libsmp end-to-end fixtures: the daemon tests' harness (tests/daemon:
private dbus-daemon, python-dbusmock polkitd, real smp-sim, real smpd),
shared rather than copied."""
import importlib.util
import os
import sys

_src = os.environ.get('SMPD_SOURCE_DIR')
if not _src:
    raise RuntimeError('SMPD_SOURCE_DIR must be set (run through meson test)')
_daemon_tests = os.path.join(_src, 'tests', 'daemon')
sys.path.insert(0, _daemon_tests)
_spec = importlib.util.spec_from_file_location('smpd_conftest',
                                               os.path.join(_daemon_tests, 'conftest.py'))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)

bus = _mod.bus
polkit = _mod.polkit
tmp = _mod.tmp
env_factory = _mod.env_factory
env = _mod.env
pytest_runtest_makereport = _mod.pytest_runtest_makereport
FAST = _mod.FAST
