# SPDX-License-Identifier: LGPL-2.1-or-later
import os
import shutil

import pytest

import smpdtest as T

# Fast test policy: shipped defaults plus a drop-in that shortens what the
# tests have to wait for (a drop-in can only tighten the shipped limits;
# [Daemon] settings are last-wins).
# polkit's answer and the device's reply are waits like any other: scaled
# (valgrind, TCG); the shipped 150 ms command timeout when SLOW is 1,
# always below the lease (the policy refuses one at or above it).
_LEASE_MS = int(os.environ.get('SMPD_TEST_LEASE_MS', '200'))
FAST = f'''[Daemon]
PolkitTimeoutMs={min(120000, int(1500 * T.SLOW))}
CommandTimeoutMs={min(_LEASE_MS - 1, int(150 * T.SLOW))}
TelemetryHz=10
'''
# Under valgrind smpd runs 20-50 times slower than the simulated firmware's
# real-time clock; the memory-checking run uses the longest lease the
# protocol allows (SMPD_TEST_LEASE_MS=500).  The shipped 200 ms lease is
# what every other run tests.
# The claimant's Heartbeat deadline (ClientTimeoutMs) gets the same time as the
# lease, as with the shipped 200 ms.
if os.environ.get('SMPD_TEST_LEASE_MS'):
    _lease = int(os.environ['SMPD_TEST_LEASE_MS'])
    FAST += f'LeaseMs={_lease}\nRenewMs={_lease // 5}\nClientTimeoutMs={_lease}\n'


@pytest.fixture(scope='session')
def bus():
    tmp = T.new_tmp()
    b = T.PrivateBus(tmp)
    yield b
    b.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope='session')
def polkit(bus):
    p = T.Polkit(bus)
    yield p
    p.stop()


@pytest.fixture
def tmp():
    d = T.new_tmp()
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Env:
    """A running simulator + smpd pair for one test."""

    def __init__(self, bus, polkit, tmp, dropins=None, sim_args=(), main=None):
        self.bus, self.polkit, self.tmp = bus, polkit, tmp
        if polkit.proc is None:
            polkit.start()
        polkit.allow_all()
        d = {'00-test.conf': FAST}
        d.update(dropins or {})
        T.write_config(os.path.join(tmp, 'conf'), d, main=main)
        self.sim = T.Sim(tmp, *sim_args)
        self.smpd = None
        try:
            self.smpd = T.Smpd(bus, tmp, self.sim)
            self.dev_path = self.smpd.device_path()
        except BaseException:
            # nothing this test started may outlive it
            if self.smpd:
                self.smpd.kill()
            self.sim.stop()
            raise
        self.clients = []

    def client(self):
        c = T.Client(self.bus)
        self.clients.append(c)
        return c

    def ready_client(self, begin=True, **md):
        """A client that has claimed the device and begun a session."""
        c = self.client()
        c.dev(self.dev_path).Claim()
        c.session = None
        if begin:
            c.session = str(c.mgr.BeginSession(self.dev_path, T.metadata(**md)))
        return c

    def running_client(self, **md):
        c = self.ready_client(**md)
        c.dev(self.dev_path).SetParameters(T.params())
        c.dev(self.dev_path).Start()
        T.wait_for(lambda: self.sim.status()['state'] == 'RUNNING', 3, 'needle running')
        return c

    def close(self):
        for c in self.clients:
            c.close()
        alive = self.smpd.alive()
        rc = self.smpd.stop() if alive else self.smpd.proc.returncode
        self.sim.stop()
        err = self.smpd.read_stderr()
        # sanitizer reports fail the test even when the behaviour was right
        if 'ERROR: AddressSanitizer' in err or 'runtime error:' in err or 'LeakSanitizer' in err:
            raise AssertionError('sanitizer report from smpd:\n' + err)
        # a clean SIGTERM exit is 0; valgrind (SMPD_TEST_WRAPPER) exits 99 on errors
        if alive and rc != 0:
            raise AssertionError(f'smpd exited with {rc} on SIGTERM:\n' + err)
        return rc


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'core: a core scenario, also run in the VM through the kernel driver and '
        'through libusb (tests/vm/tests/60-daemon-chardev.sh, 61-daemon-libusb.sh)')
    config.addinivalue_line(
        'markers', 'device_io: nothing waits for a device in smpd\'s event loop '
        '(test_device_io.py), also run in the VM through the kernel driver '
        '(tests/vm/tests/62-daemon-chardev-io.sh)')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, 'rep_' + rep.when, rep)


@pytest.fixture
def env_factory(request, bus, polkit, tmp):
    envs = []

    def make(**kw):
        e = Env(bus, polkit, tmp, **kw)
        envs.append(e)
        return e
    yield make
    rep = getattr(request.node, 'rep_call', None)
    if rep is not None and rep.failed:
        for e in envs:
            # what the device and the daemon saw, for the failure report
            try:
                ev = [x for x in e.sim.events() if 'LEASE_RENEW' not in x and 'CONTROL' not in x]
                print('--- smp-sim events (last 40) ---\n' + '\n'.join(ev[-40:]))
            except OSError:
                pass
            try:
                print('--- smp-sim stderr ---\n' + e.sim.read_stderr())
            except OSError:
                pass
            print('--- smpd stderr ---\n' + e.smpd.read_stderr())
    for e in envs:
        e.close()


@pytest.fixture
def env(env_factory):
    return env_factory()
