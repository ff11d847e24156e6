# SPDX-License-Identifier: LGPL-2.1-or-later
"""Treatment records an inspector can rely on (issue 15): one reading of
sessions through every consumer, and every session ended on record
(H12).  The real smpd and smp-sim on a private bus, as test_smpd.py."""

import ctypes
import json
import os
import subprocess

import dbus

import smpdtest as T
from smpdtest import ERR, IMGR, ISES, expect_error, metadata

TOOL = os.path.join(T.BUILD, 'audit', 'smp-audit')
GEN = os.path.join(T.BUILD, 'tests', 'audit', 'test-audit-sessions')
LIBSMP = os.path.join(T.BUILD, 'libsmp', 'libsmp.so.1')
ID = {c: c * 32 for c in 'abcde'}


def tool_sessions(adir, *args):
    out = subprocess.run([TOOL, 'sessions', adir, '--format', 'json', *args],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def tool_records(adir):
    out = subprocess.run([TOOL, 'export', adir, '--format', 'json'],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def libsmp_sessions(adir):
    """smp_log_list_sessions() through ctypes: libsmp's own reading."""
    lib = ctypes.CDLL(LIBSMP)
    lib.smp_log_list_sessions.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))]
    lib.smp_session_list_free.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
    lib.smp_session_list_free.restype = ctypes.c_void_p
    s = {}
    for name in ('id', 'client_pseudonym', 'operator', 'zone', 'pigment_lot', 'pigment_manufacturer',
                 'cartridge_id', 'cartridge_lot', 'device_serial', 'end_reason', 'needle'):
        f = getattr(lib, 'smp_session_get_' + name)
        f.argtypes = [ctypes.c_void_p]
        f.restype = ctypes.c_char_p
        s[name] = f
    for name, t in (('begin_usec', ctypes.c_uint64), ('end_usec', ctypes.c_uint64),
                    ('needle_on_usec', ctypes.c_uint64), ('patch_test_time', ctypes.c_int64)):
        f = getattr(lib, 'smp_session_get_' + name)
        f.argtypes = [ctypes.c_void_p]
        f.restype = t
        s[name] = f
    lib.smp_session_is_active.argtypes = [ctypes.c_void_p]
    lst = ctypes.POINTER(ctypes.c_void_p)()
    n = lib.smp_log_list_sessions(adir.encode(), ctypes.byref(lst))
    assert n >= 0, os.strerror(-n)
    res = []
    for i in range(n):
        p = lst[i]
        d = {k: (f(p).decode() if isinstance(f(p), bytes) else f(p)) for k, f in s.items()}
        d['active'] = lib.smp_session_is_active(p)
        res.append(d)
    lib.smp_session_list_free(lst)
    return res


def start(bus, tmp, adir=None):
    T.write_config(os.path.join(tmp, 'conf'))
    sim = T.Sim(tmp)
    smpd = T.Smpd(bus, tmp, sim)
    return sim, smpd


def test_every_kind_of_session_reads_the_same(bus, polkit, tmp):
    """H12: ended with a zone change, aborted, stopped in order (with and
    without an end record), cut off by a crash, open: the audit library,
    libsmp, smp-audit and ListPastSessions agree on each."""
    adir = os.path.join(tmp, 'state', 'audit')
    os.makedirs(os.path.dirname(adir))
    subprocess.run([GEN, '--generate', adir], check=True)
    polkit.allow_all()
    sim, smpd = start(bus, tmp)
    c = None
    try:
        c = T.Client(bus)
        dev = smpd.device_path()
        c.dev(dev).Claim()
        live = c.mgr.BeginSession(dev, metadata(client='client-f', zone='hairline', lot='LOT-X'))
        c.ses(live).ChangeZone('temples')
        fid = str(c.prop(live, ISES, 'Id'))

        # the crash that cut E off is on record, once, written at this start
        recs = tool_records(adir)
        crash = [r for r in recs if r['event'] == 'session_end' and r['fields']['session'] == ID['e']]
        assert [r['fields']['reason'] for r in crash] == ['daemon-crashed'], crash
        assert not [r for r in recs if r['event'] == 'session_end' and r['fields']['session'] == ID['c']]

        lib = tool_sessions(adir)
        want = [(ID['a'], 'ended', 'ended by the client', 'temples', ['temples', 'crown']),
                (ID['b'], 'aborted', 'cannot mark the cartridge', 'hairline', ['hairline']),
                (ID['c'], 'daemon-stopped', 'daemon-stopped', 'scar', ['scar']),
                (ID['d'], 'daemon-stopped', 'daemon-stopped', 'crown', ['crown']),
                (ID['e'], 'daemon-crashed', 'daemon-crashed', 'temples', ['temples']),
                (fid, 'open', '', 'hairline', ['hairline', 'temples'])]
        assert [(s['session'], s['state'], s['end_reason'], s['zone'], s['zones'].split(','))
                for s in lib] == want, lib
        assert lib[0]['patch_test_time'] == -31536000 and lib[0]['patch_test'] == '1969-01-01T00:00:00Z'

        past = [dict(p) for p in c.mgr.ListPastSessions(dbus.Dictionary({}, signature='sv'),
                                                         timeout=60 * T.SLOW)]
        assert [(str(p['Id']), str(p['State']), str(p['EndReason']), str(p['Zone']),
                 [str(z) for z in p['Zones']]) for p in past] == want, past
        ls = libsmp_sessions(adir)
        assert [(s['id'], s['end_reason'], s['zone'], bool(s['active'])) for s in ls] == \
            [(w[0], w[2], w[4][-1], w[1] == 'open') for w in want], ls
        for p, s, l in zip(past, lib, ls):
            assert (p['BeginTime'], p['EndTime']) == (s['begin_usec'], s['end_usec']) == \
                (l['begin_usec'], l['end_usec'])
            assert p['NeedleOnTime'] == s['needle_on_ms'] * 1000 == l['needle_on_usec']
            assert p['PatchTestTime'] == s['patch_test_time'] == l['patch_test_time']
            for k, sk, lk in (('Client', 'client', 'client_pseudonym'), ('Operator', 'operator', 'operator'),
                              ('PigmentLot', 'pigment_lot', 'pigment_lot'),
                              ('PigmentManufacturer', 'pigment_manufacturer', 'pigment_manufacturer'),
                              ('CartridgeId', 'cartridge', 'cartridge_id'),
                              ('CartridgeLot', 'cartridge_lot', 'cartridge_lot'),
                              ('Device', 'device', 'device_serial'), ('Needle', 'needle', 'needle')):
                assert str(p[k]) == s[sk] == l[lk], (k, p, s, l)
            assert (p['EndTime'] == 0) == (s['state'] == 'open')
        # lot recall through the same reading
        assert [s['client'] for s in tool_sessions(adir, '--pigment-lot', 'LOT-X')] == \
            ['client-a', 'client-c', 'client-e', 'client-f']
    finally:
        if c:
            c.close()
        smpd.stop()
        sim.stop()


def test_orderly_stop_ends_open_session_on_record(env):
    """H12: SIGTERM (systemctl stop) ends the open session with a reason
    before the log is sealed; a SIGKILL's victim is recorded at the next
    start as daemon-crashed."""
    c = env.running_client()
    sid = str(c.prop(c.session, ISES, 'Id'))
    adir = os.path.join(env.smpd.state_dir, 'audit')
    assert env.smpd.stop() == 0
    recs = tool_records(adir)
    ends = [r for r in recs if r['event'] == 'session_end' and r['fields']['session'] == sid]
    assert [r['fields']['reason'] for r in ends] == ['daemon-stopped'], ends
    stop = next(i for i, r in enumerate(recs) if r['event'] == 'daemon_stop')
    assert recs.index(ends[0]) < stop and recs[-1]['event'] == 'seal' and recs[-2]['event'] == 'close'
    assert env.sim.status()['state'] != 'RUNNING'
    [s] = tool_sessions(adir, '--session', sid)
    assert (s['state'], s['end_reason']) == ('daemon-stopped', 'daemon-stopped')


def test_crash_is_recorded_at_next_start(env_factory):
    """H12: smpd killed with a session open: the next start writes
    session_end reason=daemon-crashed for it, once."""
    env = env_factory()
    c = env.running_client()
    sid = str(c.prop(c.session, ISES, 'Id'))
    adir = os.path.join(env.smpd.state_dir, 'audit')
    c.close()
    env.smpd.kill()
    tmp = env.smpd.tmp
    s2 = T.Smpd(env.bus, tmp, env.sim)
    try:
        s2.device_path()
        ends = [r for r in tool_records(adir)
                if r['event'] == 'session_end' and r['fields']['session'] == sid]
        assert [r['fields']['reason'] for r in ends] == ['daemon-crashed'], ends
        [s] = tool_sessions(adir, '--session', sid)
        assert (s['state'], s['end_reason']) == ('daemon-crashed', 'daemon-crashed')
    finally:
        assert s2.stop() == 0
    # a second start does not record it again
    s3 = T.Smpd(env.bus, tmp, env.sim)
    try:
        s3.device_path()
    finally:
        s3.stop()
    ends = [r for r in tool_records(adir) if r['event'] == 'session_end' and r['fields']['session'] == sid]
    assert len(ends) == 1, ends
    env.smpd = s3


def test_end_session_with_unwritable_log_stays_open(bus, polkit, tmp):
    """H12: EndSession when the log cannot be written: the needle stops,
    the reply is AuditUnavailable and the session stays open (Active, no
    Ended signal), as the log says; after smpd restarts with space again,
    the session is ended on record (daemon-crashed: the stop could not be
    written either)."""
    state = os.path.join(tmp, 'state')
    os.makedirs(state)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', state], check=True)
    sim = s = c = None
    ended = []
    try:
        polkit.allow_all()
        T.write_config(os.path.join(tmp, 'conf'), {'00-test.conf': '[Daemon]\nPolkitTimeoutMs=1500\n'})
        sim = T.Sim(tmp)
        s = T.Smpd(bus, tmp, sim)
        c = T.Client(bus)
        dev = s.device_path()
        c.dev(dev).Claim()
        ses = c.mgr.BeginSession(dev, metadata())
        sid = str(c.prop(ses, ISES, 'Id'))
        c.conn.add_signal_receiver(lambda r: ended.append(str(r)), 'Ended', ISES, path=ses)
        c.dev(dev).SetParameters(T.params())
        c.dev(dev).Start()
        T.wait_for(lambda: sim.status()['state'] == 'RUNNING', 3, 'running')
        filler = os.path.join(state, 'filler')
        subprocess.run(['dd', 'if=/dev/zero', 'of=' + filler, 'bs=4k'], stderr=subprocess.DEVNULL)
        T.wait_for(lambda: not c.prop(T.ROOT, IMGR, 'AuditAvailable'), 5, 'AuditAvailable false')
        expect_error(ERR + 'AuditUnavailable', c.ses(ses).EndSession, contains='stays open')
        T.pump(0.3)
        assert sim.status()['state'] != 'RUNNING'
        assert c.prop(ses, ISES, 'Active') and str(c.prop(ses, ISES, 'EndReason')) == ''
        assert ended == []
        c.close()
        c = None
        assert s.stop() == 0
        os.unlink(filler)
        adir = os.path.join(state, 'audit')
        assert not [r for r in tool_records(adir) if r['event'] == 'session_end']
        s = T.Smpd(bus, tmp, sim)
        s.device_path()
        [rec] = tool_sessions(adir, '--session', sid)
        assert (rec['state'], rec['end_reason']) == ('daemon-crashed', 'daemon-crashed')
    finally:
        if c:
            c.close()
        if s and s.alive():
            s.stop()
        if sim:
            sim.stop()
        subprocess.run(['umount', '-l', state])
