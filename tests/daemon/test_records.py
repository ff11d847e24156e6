# SPDX-License-Identifier: LGPL-2.1-or-later
"""Treatment records an inspector can rely on (issue 15): one reading of
sessions through every consumer (ListPastSessions, libsmp, smp-audit, the
HTML report), and every session ended on record
(H12).  The real smpd and smp-sim on a private bus, as test_smpd.py."""

import json
import os
import re
import subprocess
import sys
import time

import dbus

import smpdtest as T
from smpdtest import ERR, IMGR, ISES, expect_error, metadata

TOOL = os.path.join(T.BUILD, 'audit', 'smp-audit')
GEN = os.path.join(T.BUILD, 'tests', 'audit', 'test-audit-sessions')
JOURNAL_GEN = os.path.join(T.BUILD, 'tests', 'audit', 'journal-gen')
JOURNAL_REMOTE = next((p for p in ('/lib/systemd/systemd-journal-remote',
                                   '/usr/lib/systemd/systemd-journal-remote') if os.access(p, os.X_OK)),
                      None)
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


# smp_log_list_sessions() through ctypes, in a process of its own: in a
# sanitizer build libsmp needs the ASan runtime loaded first, which this
# (uninstrumented) Python cannot do after the fact.
_LIBSMP_SESSIONS = r"""
import ctypes, json, os, sys
lib = ctypes.CDLL(sys.argv[1])
lib.smp_log_list_sessions.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p))]
lib.smp_session_list_free.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
lib.smp_session_list_free.restype = None
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
n = lib.smp_log_list_sessions(sys.argv[2].encode(), ctypes.byref(lst))
if n < 0:
    sys.exit('smp_log_list_sessions: ' + os.strerror(-n))
res = []
for i in range(n):
    p = lst[i]
    d = {k: (f(p).decode() if isinstance(f(p), bytes) else f(p)) for k, f in s.items()}
    d['active'] = lib.smp_session_is_active(p)
    res.append(d)
lib.smp_session_list_free(lst)
print(json.dumps(res))
"""


def libsmp_sessions(adir):
    """smp_log_list_sessions(): libsmp's own reading of the log."""
    env = dict(os.environ)
    deps = subprocess.run(['ldd', LIBSMP], capture_output=True, text=True, check=True).stdout
    asan = next((ln.split('=>')[1].split()[0] for ln in deps.splitlines()
                 if 'libasan' in ln and '=>' in ln), None)
    if asan:
        env['LD_PRELOAD'] = asan
        # the interpreter's own allocations are not libsmp's leaks
        env['ASAN_OPTIONS'] = env.get('ASAN_OPTIONS', '') + ':detect_leaks=0'
    p = subprocess.run([sys.executable, '-c', _LIBSMP_SESSIONS, LIBSMP, adir],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0 and 'runtime error:' not in p.stderr and \
        'AddressSanitizer' not in p.stderr, p.stderr
    return json.loads(p.stdout)


def start(bus, tmp, adir=None):
    T.write_config(os.path.join(tmp, 'conf'))
    sim = T.Sim(tmp)
    smpd = T.Smpd(bus, tmp, sim)
    return sim, smpd


def test_every_kind_of_session_reads_the_same(bus, polkit, tmp):
    """H12: ended with a zone change, aborted, stopped in order (with and
    without an end record), cut off by a crash, open: the audit library,
    libsmp, smp-audit, ListPastSessions and the HTML report agree on each."""
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
        # the HTML session report reads each the same: its zone at the end,
        # its end and the reason (or open)
        for w in want:
            page = os.path.join(tmp, f'report-{w[0]}.html')
            p = subprocess.run([SMPCTL, '--log-dir=' + adir, 'session', 'report', w[0],
                                '--output=' + page], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            with open(page) as f:
                html = f.read()
            assert f'<th>Zone at end</th><td>{w[4][-1]}</td>' in html, (w, html)
            ended = re.search(r'<th>Ended</th><td>(.*?)</td>', html).group(1)
            if w[1] == 'open':
                assert ended == 'not recorded: the session is open', (w, ended)
            else:
                assert ended.startswith('<time datetime=') and ended.endswith(' &mdash; ' + w[2]), \
                    (w, ended)
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


# ---------------------------------------------------------------- the contract, exactly

def _new_cartridge(env, i):
    env.sim.ctl(f'cartridge insert id=PATH-CART-{i:03d} lot=L used=0 needle=3RL diameter=250 expiry=2099-01-01')
    T.pump(0.1)


def test_session_path_is_prefix_and_id(env):
    """The session object path is /org/libsmp/Smp1/session/<Id> exactly, also
    for an Id that begins with a digit (sd_bus_path_encode would escape it)."""
    c = env.client()
    c.dev(env.dev_path).Claim()
    seen_digit = seen_letter = False
    for i in range(24):
        _new_cartridge(env, i)
        path = str(c.mgr.BeginSession(env.dev_path, metadata(client=f'path-client-{i}')))
        sid = str(c.prop(path, ISES, 'Id'))
        assert path == '/org/libsmp/Smp1/session/' + sid, (path, sid)
        # a client that knows only the Id reaches the object
        assert str(c.prop('/org/libsmp/Smp1/session/' + sid, ISES, 'Client')) == f'path-client-{i}'
        seen_digit |= sid[0].isdigit()
        seen_letter |= not sid[0].isdigit()
        c.ses(path).EndSession()
        if seen_digit and seen_letter and i >= 1:
            break
    assert seen_digit and seen_letter
    assert sorted(str(p) for p in c.mgr.ListSessions()) == sorted(
        '/org/libsmp/Smp1/session/' + str(p['Id']) for p in
        c.mgr.ListPastSessions(dbus.Dictionary({}, signature='sv'), timeout=60 * T.SLOW))


def test_text_rules_named_in_the_error(env):
    """H15: each refused character is named with its position and the rule."""
    c = env.client()
    c.dev(env.dev_path).Claim()
    rule = "the rule: 1-64 characters of printable ASCII (0x21-0x7e) other than '\"', '=' and '\\'"
    for field, kw, value, why in (
            ('ClientPseudonym', 'client', 'ab"cd', "has '\"' (0x22) at position 3, which is not allowed"),
            ('ClientPseudonym', 'client', 'a=b', "has '=' (0x3d) at position 2, which is not allowed"),
            ('ClientPseudonym', 'client', 'back\\slash', "has '\\' (0x5c) at position 5, which is not allowed"),
            ('ClientPseudonym', 'client', 'two words', 'has space (0x20) at position 4, which is not allowed'),
            ('ClientPseudonym', 'client', 'x' * 65, 'is 65 characters long, more than 64'),
            ('ClientPseudonym', 'client', 'caf\u00e9', 'has byte 0xc3 at position 4, which is not allowed'),
            ('PigmentLot', 'lot', 'LOT"1', "has '\"' (0x22) at position 4, which is not allowed")):
        msg = expect_error(ERR + 'InvalidArgument', c.mgr.BeginSession, env.dev_path,
                           metadata(**{kw: value}))
        assert msg == f'{field} {why}; {rule}', msg
    md = metadata()
    md['Operator'] = dbus.String('op=1')
    msg = expect_error(ERR + 'InvalidArgument', c.mgr.BeginSession, env.dev_path, md)
    assert msg == f"Operator has '=' (0x3d) at position 3, which is not allowed; {rule}", msg
    text_rule = 'the rule: 1-1024 bytes of UTF-8 without control characters (U+0000-U+001F, U+007F-U+009F)'
    for value, why in (('Maker\nInc', 'has the control character 0x0a at byte 6'),
                       ('Maker\u0085', 'has the control character U+0085 at byte 6'),
                       ('', 'is empty'),
                       ('m' * 1025, 'is 1025 bytes long, more than 1024')):
        md = metadata(PigmentManufacturer=dbus.String(value))
        msg = expect_error(ERR + 'InvalidArgument', c.mgr.BeginSession, env.dev_path, md)
        assert msg == f'PigmentManufacturer {why}; {text_rule}', msg
    # the rule's edges are accepted
    ok = '!#$%&\'()*+,-./09:;<>?@AZ[]^_`az{|}~'
    s = c.mgr.BeginSession(env.dev_path, metadata(client=ok[:64], lot='~' * 64,
                                                  PigmentManufacturer=dbus.String('Fabricant Gérard')))
    assert str(c.prop(s, ISES, 'Client')) == ok[:64]
    msg = expect_error(ERR + 'InvalidArgument', c.ses(s).Annotate, 'tab\there')
    assert msg == f'the annotation has the control character 0x09 at byte 4; {text_rule}', msg


def test_parameters_beyond_the_protocol_are_limit_exceeded(env):
    """H2/H15: a value the protocol cannot carry is LimitExceeded at the
    protocol layer, with LastRefusal, like 65535."""
    c = env.ready_client()
    dev = env.dev_path
    last = 0
    limits = c.prop(dev, T.IDEV, 'Limits')
    for key, value, unit in (('Voltage', 65535, 'mV'), ('Voltage', 65536, 'mV'),
                             ('Voltage', 4294967295, 'mV'), ('Depth', 70000, 'um'),
                             ('StrokeRate', 65536, 'cHz'), ('Current', 100000, 'mA')):
        p = T.params()
        p[key] = dbus.UInt32(value)
        msg = expect_error(ERR + 'LimitExceeded', c.dev(dev).SetParameters, p)
        rf = c.prop(dev, T.IDEV, 'LastRefusal')
        # 65535 fits the field: the most restrictive layer refuses it; beyond
        # it, the protocol itself (its maximum is the limit)
        layer = str(limits[key][4]) if value <= 65535 else 'protocol'
        assert (str(rf['Parameter']), int(rf['Requested']), str(rf['Bound']), str(rf['Layer'])) == \
            (key, value, 'max', layer), (rf, msg)
        assert 0 < int(rf['Limit']) < 65536 and int(rf['Limit']) >= int(limits[key][1])
        assert int(rf['Serial']) == last + 1
        last = int(rf['Serial'])
        assert f'{value} {unit}' in msg, msg
        if value > 65535:
            assert 'protocol' in msg and str(rf['Source']) == 'protocol v1', (msg, rf)
    # an unauthorized or unclaimed caller is still refused for what it is
    other = env.client()
    p = T.params()
    p['Voltage'] = dbus.UInt32(65536)
    expect_error(ERR + 'NotClaimed', other.dev(dev).SetParameters, p)
    assert int(c.prop(dev, T.IDEV, 'LastRefusal')['Serial']) == last


def test_dates_before_1970_are_dates(env):
    """H10: PatchTestTime and ScreeningTime are signed Unix seconds; 0 is none."""
    c = env.client()
    c.dev(env.dev_path).Claim()
    md = metadata()
    md['PatchTestTime'] = dbus.Int64(0)
    expect_error(ERR + 'PatchTestRequired', c.mgr.BeginSession, env.dev_path, md,
                 contains='none was given')
    md['PatchTestTime'] = dbus.Int64(-2208988801)
    expect_error(ERR + 'InvalidArgument', c.mgr.BeginSession, env.dev_path, md,
                 contains='PatchTestTime -2208988801 lies before 1900-01-01')
    md['PatchTestTime'] = dbus.Int64(int(time.time()) + 3600)
    expect_error(ERR + 'InvalidArgument', c.mgr.BeginSession, env.dev_path, md,
                 contains='lies in the future')
    md['PatchTestTime'] = dbus.Int64(-31536000)
    md['ScreeningTime'] = dbus.Int64(-1)
    s = c.mgr.BeginSession(env.dev_path, md)
    assert int(c.prop(s, ISES, 'PatchTestTime')) == -31536000
    assert int(c.prop(s, ISES, 'ScreeningTime')) == -1
    sid = str(c.prop(s, ISES, 'Id'))
    [p] = [p for p in c.mgr.ListPastSessions(dbus.Dictionary({}, signature='sv'), timeout=60 * T.SLOW)
           if str(p['Id']) == sid]
    assert (int(p['PatchTestTime']), int(p['ScreeningTime'])) == (-31536000, -1)
    [r] = tool_sessions(os.path.join(env.smpd.state_dir, 'audit'), '--session', sid)
    assert (r['patch_test'], r['screening']) == ('1969-01-01T00:00:00Z', '1969-12-31T23:59:59Z')


# ---------------------------------------------------------------- lot traceability

SMPCTL = os.path.join(T.BUILD, 'tools', 'smpctl', 'smpctl')


def test_lot_recall(env):
    """H11: which clients were treated with pigment lot X or cartridge Y, and
    when: ListPastSessions, ExportLog, smp-audit and smpctl log recall (from
    a log that verifies) answer alike; a tampered log gets no answer."""
    import csv
    import io
    import shutil
    import tempfile
    c = env.client()
    c.dev(env.dev_path).Claim()
    ids = []
    for i, (lot, cart, cart_lot) in enumerate((('LOT-R', 'REC-1', 'CL-A'), ('LOT-Q', 'REC-2', 'CL-R'),
                                               ('LOT-R', 'REC-3', 'CL-R'))):
        env.sim.ctl(f'cartridge insert id={cart} lot={cart_lot} used=0 needle=3RL diameter=250 expiry=2099-01-01')
        T.pump(0.1)
        s = c.mgr.BeginSession(env.dev_path, metadata(client=f'client-r{i + 1}', lot=lot))
        ids.append(str(c.prop(s, ISES, 'Id')))
        if i < 2:
            c.ses(s).EndSession()

    def past(flt):
        return [str(p['Client']) for p in c.mgr.ListPastSessions(
            dbus.Dictionary({k: dbus.String(v) for k, v in flt.items()}, signature='sv'),
            timeout=60 * T.SLOW)]
    assert past({'PigmentLot': 'LOT-R'}) == ['client-r1', 'client-r3']
    assert past({'CartridgeLot': 'CL-R'}) == ['client-r2', 'client-r3']
    assert past({'CartridgeId': 'REC-2'}) == ['client-r2']
    assert past({'PigmentLot': 'LOT-R', 'CartridgeLot': 'CL-R'}) == ['client-r3']
    assert past({'PigmentLot': 'NONE'}) == []
    expect_error(ERR + 'InvalidArgument', c.mgr.ListPastSessions,
                 dbus.Dictionary({'PigmentLot': dbus.UInt32(1)}, signature='sv'))

    with tempfile.TemporaryFile('w+') as f:
        n = c.mgr.ExportLog(dbus.Dictionary({'PigmentLot': dbus.String('LOT-R')}, signature='sv'), 'json',
                            dbus.types.UnixFd(f.fileno()), timeout=60 * T.SLOW)
        f.seek(0)
        recs = [json.loads(line) for line in f]
    assert n == len(recs) > 0
    assert {r['fields']['session'] for r in recs} == {ids[0], ids[2]}
    assert [r['fields']['client'] for r in recs if r['event'] == 'session_begin'] == ['client-r1', 'client-r3']

    adir = os.path.join(env.smpd.state_dir, 'audit')
    out = subprocess.run([TOOL, 'export', adir, '--format', 'json', '--cartridge', 'REC-2'],
                         capture_output=True, text=True, check=True).stdout
    assert {json.loads(line)['fields']['session'] for line in out.splitlines()} == {ids[1]}

    keyfile = os.path.join(env.tmp, 'audit.key')

    def recall(*args, log=adir, rc=0):
        p = subprocess.run([SMPCTL, '--log-dir=' + log, 'log', 'recall', '--key-file=' + keyfile, *args],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
        return p.stdout
    rows = list(csv.DictReader(io.StringIO(recall('--pigment-lot=LOT-R', '--format=csv'))))
    assert [(r['client'], r['zone'], r['operator'], r['device'], r['session']) for r in rows] == \
        [('client-r1', 'temples', 'op-1', 'SIM-X2-000001', ids[0]),
         ('client-r3', 'temples', 'op-1', 'SIM-X2-000001', ids[2])]
    assert all(r['begin'].endswith(' UTC') and r['pigment_lot'] == 'LOT-R' for r in rows)
    js = json.loads(recall('--cartridge-lot=CL-R', '--format=json'))
    assert [(j['client'], j['cartridge'], j['active']) for j in js] == \
        [('client-r2', 'REC-2', False), ('client-r3', 'REC-3', True)]
    table = recall('--cartridge=REC-1').splitlines()
    assert table[0].split()[:2] == ['BEGIN', 'CLIENT'] and len(table) == 2 and 'client-r1' in table[1]
    # smpctl session list filters alike (the log's sessions and smpd's)
    p = subprocess.run([SMPCTL, '--bus-address=' + env.bus.address, '--log-dir=' + adir, '--json',
                        'session', 'list', '--pigment-lot=LOT-R'], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert sorted((j['client'], j['id']) for j in json.loads(p.stdout)) == \
        [('client-r1', ids[0]), ('client-r3', ids[2])]
    # usage: a lot or cartridge and the key are required
    p = subprocess.run([SMPCTL, '--log-dir=' + adir, 'log', 'recall', '--pigment-lot=LOT-R'],
                       capture_output=True, text=True)
    assert p.returncode != 0 and 'usage' in p.stderr
    # a log that does not verify gives no answer
    bad = os.path.join(env.tmp, 'tampered')
    shutil.copytree(adir, bad)
    first = sorted(f for f in os.listdir(bad) if f.endswith('.smplog'))[0]
    with open(os.path.join(bad, first), 'r+b') as f:
        f.seek(200)
        b = f.read(1)
        f.seek(200)
        f.write(bytes([b[0] ^ 0x01]))
    out = recall('--pigment-lot=LOT-R', log=bad, rc=3)
    assert out == ''


def test_session_verifies_at_the_collector(env):
    """H12 (issue 17): a treatment session with smp-sim, its records as
    smpd's journal mirror builds them, received by the real
    systemd-journal-remote: the collector verifies the workstation intact
    with smpd's verification key, compared with smpd's own log; an edited
    client pseudonym is named; the annotation's text and the override's
    reason never reach the collector."""
    assert JOURNAL_REMOTE, 'systemd-journal-remote is not installed (build-aux/deps.sh, group test)'
    c = env.running_client()
    secret = 'scalp psoriasis flare near the crown'
    c.ses(c.session).Annotate(secret)
    sid = str(c.prop(c.session, ISES, 'Id'))
    adir = os.path.join(env.smpd.state_dir, 'audit')
    key = os.path.join(env.smpd.tmp, 'audit.key')
    assert env.smpd.stop() == 0
    mid = 'c011ec7ed0000000000000000000000a'
    export = subprocess.run([JOURNAL_GEN, '--from-log', adir, mid, 'chair-7'], capture_output=True,
                            check=True).stdout
    assert secret.encode() not in export
    assert b'SMPC_WITHHELD=text' in export and ('SMP_SESSION=' + sid).encode() in export
    jdir = os.path.join(env.smpd.tmp, 'collector')
    os.mkdir(jdir)
    subprocess.run([JOURNAL_REMOTE, '--output=' + os.path.join(jdir, 'remote-chair-7.journal'), '-'],
                   input=export, capture_output=True, check=True, timeout=60)
    with open(os.path.join(jdir, 'remote-chair-7.journal'), 'rb') as f:
        assert secret.encode() not in f.read()

    def verify(d):
        p = subprocess.run([TOOL, 'verify', '--journal', d, '--machine', mid, '--key-file', key,
                            '--local', adir, '--json'], capture_output=True, text=True)
        return p.returncode, json.loads(p.stdout)

    rc, rep = verify(jdir)
    last = tool_records(adir)[-1]['seq']
    assert (rc, rep['status'], rep['last_seq'], rep['local_last_seq'], rep['withheld_records']) == \
        (0, 'INTACT', last, last, 1), rep
    assert rep['clean_close'] and rep['seals'] >= 1

    # one pseudonym changed at the collector: tampered at that record
    lines = export.split(b'\n')
    at = next(i for i, ln in enumerate(lines) if ln.startswith(b'SMP_CLIENT='))
    seq = next(int(ln.split(b'=')[1]) for ln in reversed(lines[:at]) if ln.startswith(b'SMP_SEQ='))
    lines[at] = b'SMP_CLIENT=client-x'
    bad = os.path.join(env.smpd.tmp, 'collector-bad')
    os.mkdir(bad)
    subprocess.run([JOURNAL_REMOTE, '--output=' + os.path.join(bad, 'remote-chair-7.journal'), '-'],
                   input=b'\n'.join(lines), capture_output=True, check=True, timeout=60)
    rc, rep = verify(bad)
    assert (rc, rep['status'], rep['seq']) == (3, 'TAMPERED', seq), rep
