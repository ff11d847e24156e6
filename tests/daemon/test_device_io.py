# SPDX-License-Identifier: LGPL-2.1-or-later
"""Nothing in smpd waits for a device inside its event loop (issue 14,
items 3-4; daemon/devio.c): a device that stops answering delays neither
an emergency stop of its own nor anything on another device.  The real
smpd with one or two real smp-sim devices; times are measured on the
simulated device's clock (its event log and status share it).  On the
host through the socket; in the VM through smpusb.ko (marker device_io,
tests/vm/tests/62-daemon-chardev-io.sh): there the device that stops
answering is the gadget behind smpusb and the other one a simulator on
the socket (the guest has one UDC)."""

import datetime
import os
import time

import pytest

import smpdtest as T
from conftest import Env
from smpdtest import ERR, IDEV, metadata, params
from test_smpd import _claimant

pytestmark = pytest.mark.device_io

# docs/safety.md, H7: an emergency stop reaches the device within this of the call
ESTOP_BOUND_MS = 20


def _t_us(line):
    return int(line.split()[0].partition('=')[2])


def _events_since(sim, n, what):
    return [e for e in sim.events()[n:] if what in e]


def _stalled_set_parameters(env, d):
    """SetParameters whose reply the device swallows; returns its answers
    (filled from the main loop), once the device has taken the command."""
    env.sim.ctl('stall 1')
    n = len(env.sim.events())
    answers = []
    d.SetParameters(params(voltage=7500),
                    reply_handler=lambda *a: answers.append(('ok', a)),
                    error_handler=lambda e: answers.append(('error', e.get_dbus_name())))
    T.wait_for(lambda: _events_since(env.sim, n, 'action=stall'), 3, 'the SET_PARAMS reply swallowed')
    assert not answers, answers
    return answers


def test_estop_overtakes_a_stalled_reply(env):
    """H7: the device swallows the reply to SetParameters (stall 1).  An
    EmergencyStop from another connection reaches the device within
    ESTOP_BOUND_MS of the call, not after the stalled command's
    CommandTimeoutMs; the stalled SetParameters is answered with an error,
    never with success."""
    owner = env.ready_client()
    bystander = env.client()
    n = len(env.sim.events())
    answers = _stalled_set_parameters(env, owner.dev(env.dev_path))

    t0 = int(env.sim.status()['t_us'])
    bystander.dev(env.dev_path).EmergencyStop()
    estops = _events_since(env.sim, n, 'event=CMD type=ESTOP')
    assert estops, env.sim.events()[n:]
    delay_ms = (_t_us(estops[0]) - t0) / 1000
    print(f'EmergencyStop reached the device {delay_ms:.1f} ms after the call (stalled reply)')
    assert delay_ms <= ESTOP_BOUND_MS * T.SLOW, \
        f'ESTOP reached the device {delay_ms} ms after the call, bound {ESTOP_BOUND_MS} ms'
    assert env.sim.status()['state'] == 'ESTOP'
    assert bystander.prop(env.dev_path, IDEV, 'State') == 'estop'
    T.wait_for(lambda: answers, 3, 'the answer to the stalled SetParameters')
    assert answers[0] == ('error', ERR + 'DeviceError'), answers


def test_bus_answered_during_a_stalled_reply(env):
    """While a command of the device waits for a reply that does not come,
    smpd answers a property Get at once: the Get's answer comes back while
    SetParameters is still unanswered (a blocked smpd would have sent the
    SetParameters error first).  SetParameters then fails after
    CommandTimeoutMs with DeviceError."""
    owner = env.ready_client()
    bystander = env.client()
    answers = _stalled_set_parameters(env, owner.dev(env.dev_path))
    assert bystander.prop(env.dev_path, IDEV, 'State') == 'idle'
    T.pump(0)       # whatever smpd has sent to the owner is dispatched
    assert not answers, f'the property Get waited for the stalled command: {answers}'
    T.wait_for(lambda: answers, 3, 'the answer to the stalled SetParameters')
    assert answers[0] == ('error', ERR + 'DeviceError'), answers


def _cartridge(ident):
    expiry = (datetime.date.today() + datetime.timedelta(days=365)).isoformat()
    return f'--cartridge=id={ident},lot=LOT-{ident},needle=3RL,diameter=250,expiry={expiry},used=0'


def _renewals(sim, n):
    return [_t_us(e) for e in _events_since(sim, n, 'event=LEASE_RENEW')]


def test_stalled_device_does_not_hold_another(bus, polkit, tmp):
    """H6, H17: two devices attached to one smpd, both running.  One stops
    answering (every reply swallowed): smpd stops it by its own means or
    its lease does, while the other runs on, its lease renewed every RenewMs
    with no renewal missed (no gap of two periods) and never stopped.  In
    a USB mode the one that stops answering is the gadget (through smpusb
    or libusb) and the other a simulator on the socket: the guest has one
    UDC."""
    # the test policy's (conftest.py): LeaseMs/5 when the lease is set, else shipped
    lease = os.environ.get('SMPD_TEST_LEASE_MS')
    renew_ms = int(lease) // 5 if lease else T.shipped_setting('RenewMs')
    env = Env(bus, polkit, tmp, sim_args=['--serial=SIM-STALL-A'])
    tmp_b = os.path.join(tmp, 'b')
    os.makedirs(tmp_b)
    sim_b = T.Sim(tmp_b, '--serial=SIM-STALL-B', _cartridge('SIM-CART-B'), socket=True)
    try:
        # the Env's smpd knows only A: a second smpd for both
        env.smpd.stop()
        env.smpd = T.Smpd(bus, tmp, env.sim, more_sims=[sim_b])
        paths = {str(T.Client(bus).prop(p, IDEV, 'Serial')): str(p)
                 for p in env.smpd.manager().ListDevices()}
        path_a, path_b = paths['SIM-STALL-A'], paths['SIM-STALL-B']

        ca, cb = env.client(), env.client()
        for c, path, client in ((ca, path_a, 'client-a'), (cb, path_b, 'client-b')):
            c.dev(path).Claim()
            c.mgr.BeginSession(path, metadata(client=client))
            c.dev(path).SetParameters(params())
            c.dev(path).Start()
        T.wait_for(lambda: env.sim.status()['state'] == 'RUNNING' and
                   sim_b.status()['state'] == 'RUNNING', 3, 'both needles running')
        T.pump(0.5)

        na, nb = len(env.sim.events()), len(sim_b.events())
        env.sim.ctl('stall 100000')
        T.wait_for(lambda: env.sim.status()['state'] != 'RUNNING', 3, 'the stalled device stopped')
        T.pump(1.5)     # A's every command times out meanwhile

        assert sim_b.status()['state'] == 'RUNNING'
        eb = sim_b.events()[nb:]
        assert not [e for e in eb if 'LEASE_EXPIRED' in e or 'from=RUNNING' in e], eb
        times = _renewals(sim_b, nb)
        assert len(times) >= 2, eb
        gaps = [(b - a) / 1000 for a, b in zip(times, times[1:])]
        print(f'device B: {len(times)} renewals while A stalled, longest gap {max(gaps):.1f} ms '
              f'(RenewMs {renew_ms})')
        assert max(gaps) < 2 * renew_ms * T.SLOW, \
            f'device B missed a renewal while A stalled: gaps {gaps} ms, RenewMs {renew_ms}'
        assert cb.prop(path_b, IDEV, 'State') == 'running'
        assert cb.prop(path_b, IDEV, 'Fault') == ('', '')
        # A was stopped and its fault latched; B's claimant still controls B
        assert ca.prop(path_a, IDEV, 'State') in ('fault', 'estop')
        cb.dev(path_b).Stop()
        assert sim_b.status()['state'] == 'IDLE'
    finally:
        env.close()
        sim_b.stop()


def _cpu_s(pid):
    """CPU time smpd's threads have had, in seconds (schedstat: ns)."""
    total = 0
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/schedstat') as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass        # a thread that ended meanwhile
    return total / 1e9


def test_loop_waits_while_the_claimants_stop_is_in_flight(env):
    """H6: the claimant dies while its needle runs and the STOP smpd sends
    takes a while to be answered (the device holds its reply back).
    Meanwhile smpd's event loop waits: its CPU time over that window is
    what steady running costs, not the whole window.  A bus tracking
    object left empty used to be dispatched again on every pass of the
    loop until the STOP completed: at SCHED_FIFO that spin took a whole
    CPU, and with the other CPU busy at the same priority the I/O worker
    that had to send the STOP got none (seen in make check: no renewal,
    no STOP, the device's lease stopped the needle)."""
    p = _claimant(env)
    c = env.client()
    T.wait_for(lambda: env.sim.status()['state'] == 'RUNNING', 3, 'running')
    hold_ms = int(100 * T.SLOW)     # below CommandTimeoutMs (conftest.py)
    pid = env.smpd.proc.pid         # the wrapper chain (chrt, valgrind) execs
    # steady running, for comparison: the same length of time
    c0, t0 = _cpu_s(pid), time.monotonic()
    time.sleep(hold_ms / 1000)
    steady, steady_wall = _cpu_s(pid) - c0, time.monotonic() - t0

    n = len(env.sim.events())
    env.sim.ctl(f'delay {hold_ms} 2')   # the STOP's reply, and a renewal's if one is in flight
    c1, t1 = _cpu_s(pid), time.monotonic()
    p.kill()
    p.wait()
    time.sleep(hold_ms / 1000)
    spent, wall = _cpu_s(pid) - c1, time.monotonic() - t1

    T.wait_for(lambda: not c.prop(env.dev_path, IDEV, 'Claimed'), 3, 'the claim released')
    ev = env.sim.events()[n:]
    stops = [e for e in ev if 'event=CMD type=STOP' in e]
    assert stops, ev
    seq = stops[0].split(' seq=')[1].split()[0]
    assert [e for e in ev if 'action=delay' in e and f'seq={seq} ' in e], \
        f'the STOP\'s reply was not held back: {ev}'
    assert not [e for e in ev if 'LEASE_EXPIRED' in e], ev
    extra = spent - steady * wall / steady_wall
    print(f'smpd used {spent * 1000:.1f} ms of CPU in the {wall * 1000:.0f} ms after the claimant '
          f'died (STOP in flight), {steady * 1000:.1f} ms in {steady_wall * 1000:.0f} ms of '
          f'steady running')
    assert extra < 0.4 * wall, \
        f'smpd spun while its STOP was in flight: {spent * 1000:.0f} ms of CPU in ' \
        f'{wall * 1000:.0f} ms ({steady * 1000:.0f} ms in {steady_wall * 1000:.0f} ms steady)'
