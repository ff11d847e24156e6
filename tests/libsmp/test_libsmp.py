# SPDX-License-Identifier: LGPL-2.1-or-later
"""libsmp end to end: the real smpd and smp-sim on a private bus, driven
through the library (test-libsmp-e2e scenarios) and through smpctl."""
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import smpdtest as T

E2E = os.environ.get('LIBSMP_E2E')
SMPCTL = os.environ.get('SMPCTL')
if not E2E or not SMPCTL:
    raise RuntimeError('LIBSMP_E2E and SMPCTL must be set (run through meson test)')
# SMP_TEST_WRAPPER (build-aux/check.sh's valgrind suite), e.g.
# "valgrind --error-exitcode=99 --leak-check=full": in front of every
# client program these tests run (test-libsmp-e2e, smpctl, the example).
WRAPPER = os.environ.get('SMP_TEST_WRAPPER', '').split()
if WRAPPER and T.SLOW < 5:
    T.SLOW = 5.0


def check_sanitizers(text):
    assert 'ERROR: AddressSanitizer' not in text and 'runtime error:' not in text \
        and 'LeakSanitizer' not in text, 'sanitizer report:\n' + text


def run_dispatching(cmd, input=None, timeout=60):
    """subprocess.run(), but this process keeps dispatching its bus
    connections meanwhile: a test that holds a running needle is its
    claimant and owes smpd its Heartbeat calls (docs/dbus.md)."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else None,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    res = {}

    def talk():
        try:
            res['out'] = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            p.kill()
            p.wait()
            res['err'] = e
    t = threading.Thread(target=talk)
    t.start()
    while t.is_alive():
        T.pump(0.02)
    t.join()
    if 'err' in res:
        raise res['err']
    return subprocess.CompletedProcess(cmd, p.returncode, *res['out'])


def e2e(env, scenario, *args, timeout=120):
    p = run_dispatching(WRAPPER + [E2E, env.bus.address, scenario, env.sim.ctl_path, *args],
                        timeout=timeout * T.SLOW)
    check_sanitizers(p.stderr)
    assert p.returncode == 0, f'{scenario}: exit {p.returncode}\n{p.stdout}\n{p.stderr}'
    return p.stdout


def smpctl(env, *args, rc=0, stdin=None, timeout=60):
    p = run_dispatching(WRAPPER + [SMPCTL, '--bus-address=' + env.bus.address,
                                   '--log-dir=' + os.path.join(env.smpd.state_dir, 'audit'),
                                   *args], input=stdin, timeout=timeout * T.SLOW)
    check_sanitizers(p.stderr)
    assert p.returncode == rc, \
        f'smpctl {" ".join(args)}: exit {p.returncode}, want {rc}\n{p.stdout}\n{p.stderr}'
    return p


def audit_key(env):
    with open(os.path.join(env.tmp, 'audit.key')) as f:
        return f.read().strip()


# ---- the library ---------------------------------------------------------------

def test_basics_and_invalid_arguments(env):
    e2e(env, 'basics')


def test_treatment_every_call(env):
    out = e2e(env, 'treatment', 'client-lib-1')
    assert 'session ok' in out
    # the simulator saw the setpoints smpd applied and a stop
    ev = '\n'.join(env.sim.events())
    assert 'SET_PARAMS' in ev and 'STOP' in ev


def test_check_session_before_begin(env):
    """Issue 16: smp_device_check_session() lists what BeginSession would
    refuse (the healing interval with its dates, overridable), without a
    claim and without opening anything."""
    assert 'check-session ok' in e2e(env, 'check-session', 'client-lib-check')
    c = env.client()
    assert not any(c.prop(p, T.ISES, 'Active') for p in c.mgr.ListSessions())


def test_faults_estop_and_claimant_leaving(env):
    e2e(env, 'faults', 'client-lib-2')
    assert env.sim.status()['state'] != 'RUNNING'


def test_changes_taken_from_the_signal(env):
    """A device's PropertiesChanged is applied from the signal's values,
    without a call back to smpd inside the dispatch: the dispatch sends the
    claimant's Heartbeat, and a round trip per change through a loaded bus
    delayed it (issue 16, spurious client-unresponsive stops)."""
    out = e2e(env, 'signal-values', 'client-lib-sig', str(env.smpd.proc.pid))
    assert 'signal values ok' in out


def test_session_time_warning_then_limit(env_factory):
    e = env_factory(dropins={'10-fast.conf': '[Session]\nMaxDuration=12s\nWarningBeforeEnd=6s\n'})
    assert 'session time ok' in e2e(e, 'session-time', 'client-lib-5')


def test_denied_by_polkit(env):
    env.polkit.allow([])
    try:
        e2e(env, 'denied')
    finally:
        env.polkit.allow_all()


OVERRIDE = 'org.libsmp.Smp1.override'
OPERATE = 'org.libsmp.Smp1.operate'


def polkit_checks(env):
    """(action, flags) of each CheckAuthorization smpd sent the polkit mock
    since its call log was cleared (flags 1: AllowUserInteraction)."""
    return [(str(args[1]), int(args[3]))
            for _, args in env.polkit.mock.GetMethodCalls('CheckAuthorization')]


def test_interactive_authorization_reaches_polkit(env):
    """Issue 16: with smp_client_set_interactive_authorization() smpd asks
    polkit for the override (and every other action of the client's calls)
    with AllowUserInteraction, so that an agent may prompt; without it,
    never."""
    for mode, flags in (('on', 1), ('off', 0)):
        env.polkit.mock.ClearCalls()
        out = e2e(env, 'interactive', 'client-lib-prompt-' + mode, mode, '20000', 'ok')
        assert 'interactive ok' in out
        checks = polkit_checks(env)
        assert (OVERRIDE, flags) in checks and (OPERATE, flags) in checks, (mode, checks)
        assert all(f == flags for _, f in checks), (mode, checks)


def test_interactive_authorization_waits_for_the_person(env_factory):
    """A person at polkit's prompt answers long after libsmp's method
    timeout: with interactive authorization the calls that ask polkit wait
    longer (libsmp.h), and the claim and the session with its override
    succeed.  The same delay without it times the claim out, so the delay
    does exceed the method timeout.  smpd waits for polkit as shipped
    (PolkitTimeoutMs 10 s; the tests' default 1.5 s would deny)."""
    env = env_factory(dropins={'10-polkit.conf': '[Daemon]\nPolkitTimeoutMs=10000\n'})
    delay, timeout_ms = 2.5, '1000'
    env.polkit.mock.SetDelay(delay)  # each CheckAuthorization answers 2.5 s late
    try:
        assert 'interactive timeout ok' in e2e(env, 'interactive', 'client-lib-slow-off', 'off',
                                               timeout_ms, 'timeout')
        t0 = time.monotonic()
        assert 'interactive ok' in e2e(env, 'interactive', 'client-lib-slow-on', 'on',
                                       timeout_ms, 'ok')
        # claim (operate), then BeginSession (operate, override): 3 late answers
        assert time.monotonic() - t0 >= 3 * delay
    finally:
        env.polkit.mock.SetDelay(0.0)


def test_daemon_restart_while_connected(env):
    p = subprocess.Popen(WRAPPER + [E2E, env.bus.address, 'restart', env.sim.ctl_path,
                                    'client-lib-3'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == 'READY'
        env.smpd.kill()  # SIGKILL: the lease stops the needle, the client must notice
        assert p.stdout.readline().strip() == 'LOST'
        env.smpd = T.Smpd(env.bus, env.tmp, env.sim)
        out, err = p.communicate(timeout=60 * T.SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check_sanitizers(err)
    assert p.returncode == 0, out + err
    assert 'restart ok' in out


def test_system_and_user_bus_from_environment(env):
    environ = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.bus.address,
                   DBUS_SESSION_BUS_ADDRESS=env.bus.address)
    p = subprocess.run(WRAPPER + [E2E, 'unused', 'env-buses'], env=environ,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60 * T.SLOW)
    check_sanitizers(p.stderr)
    assert p.returncode == 0 and 'env buses ok' in p.stdout, p.stdout + p.stderr
    # smpctl: the system bus by default, --user for the session bus
    for extra in ([], ['--user']):
        q = subprocess.run(WRAPPER + [SMPCTL, *extra, 'status'], env=environ,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=60 * T.SLOW)
        check_sanitizers(q.stderr)
        assert q.returncode == 0 and 'running, API version 1' in q.stdout, q.stdout + q.stderr


def test_bus_connection_lost(tmp):
    """A bus of its own, killed under a connected client."""
    saved = os.environ.get('DBUS_SYSTEM_BUS_ADDRESS')
    bus = T.PrivateBus(tmp)  # sets DBUS_SYSTEM_BUS_ADDRESS: restored below
    try:
        p = subprocess.Popen(WRAPPER + [E2E, bus.address, 'disconnect'], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == 'READY'
            bus.proc.kill()
            bus.proc.wait()
            out, err = p.communicate(timeout=60 * T.SLOW)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check_sanitizers(err)
        assert p.returncode == 0 and 'disconnect ok' in out, out + err
    finally:
        if bus.proc.poll() is None:
            bus.stop()
        if saved is None:
            os.environ.pop('DBUS_SYSTEM_BUS_ADDRESS', None)
        else:
            os.environ['DBUS_SYSTEM_BUS_ADDRESS'] = saved


def test_connect_disconnect_cycles_leak_free(env):
    """20 connect/disconnect cycles without a leak or invalid access: under
    valgrind in a plain build, under ASan+LeakSanitizer in a sanitizer build
    (valgrind cannot run ASan binaries)."""
    if WRAPPER:
        cmd = WRAPPER
    elif os.environ.get('LIBSMP_SAN_FLAGS'):
        cmd = []  # LeakSanitizer fails the exit status on any leak
    else:
        if not shutil.which('valgrind'):
            raise AssertionError('valgrind is missing (apt-get install valgrind)')
        cmd = ['valgrind', '--quiet', '--error-exitcode=99', '--leak-check=full',
               '--show-leak-kinds=definite,indirect,possible',
               '--errors-for-leak-kinds=definite,indirect,possible']
    p = subprocess.run(cmd + [E2E, env.bus.address, 'cycles', env.sim.ctl_path, '20'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=300 * T.SLOW)
    check_sanitizers(p.stderr)
    assert p.returncode == 0, f'exit {p.returncode}\n{p.stdout}\n{p.stderr}'
    assert 'cycles ok' in p.stdout


def test_audit_log_list_export_verify(env):
    out = e2e(env, 'treatment', 'client-lib-4')
    sid = [s for s in env.smpd.manager().ListSessions()]
    assert len(sid) == 1
    session_id = str(env.smpd.conn.get_object(T.BUS, sid[0]).Get(
        T.ISES, 'Id', dbus_interface='org.freedesktop.DBus.Properties'))
    # smpd seals on clean shutdown; verify the closed log
    env.smpd.stop()
    e2e(env, 'log', os.path.join(env.smpd.state_dir, 'audit'), audit_key(env), session_id)
    assert 'session ok' in out


# ---- smpctl ----------------------------------------------------------------------

def test_smpctl_read_commands(env):
    out = smpctl(env, 'status').stdout
    assert 'running, API version 1' in out and 'SIM-X2-000001' in out
    st = json.loads(smpctl(env, '--json', 'status').stdout)
    assert st['running'] and st['api_version'] == 1 and st['audit_available']
    assert st['devices'][0]['serial'] == 'SIM-X2-000001'
    devs = json.loads(smpctl(env, '--json', 'devices').stdout)
    assert devs[0]['cartridge']['needle'] == '3RL' and devs[0]['state'] == 'idle'
    assert 'SMP-X2' in smpctl(env, 'devices').stdout
    lim = json.loads(smpctl(env, '--json', 'limits', 'show').stdout)
    assert set(lim) == {'voltage', 'current', 'stroke-rate', 'depth'}
    assert lim['depth']['max'] >= lim['depth']['min'] and lim['depth']['max_source']
    out = smpctl(env, 'limits', 'show').stdout
    assert re.search(r'depth\s+\d+\.\d\d mm\s+\d+\.\d\d mm', out)
    assert json.loads(smpctl(env, '--json', 'session', 'list').stdout) == []
    assert smpctl(env, '--help').stdout.startswith('smpctl')
    assert smpctl(env, '--version').stdout.startswith('smpctl ')


def test_smpctl_usage_errors(env):
    assert 'unknown command' in smpctl(env, 'frobnicate', rc=2).stderr
    smpctl(env, rc=2)
    smpctl(env, '--no-such-option', 'status', rc=2)
    assert 'not PARAM=VALUE' in smpctl(env, 'set', 'depth', rc=2).stderr
    assert 'unknown parameter' in smpctl(env, 'set', 'speed=3', rc=2).stderr
    assert 'is not a depth' in smpctl(env, 'set', 'depth=deep', rc=2).stderr
    assert 'is not a voltage' in smpctl(env, 'set', 'voltage=8 parsecs', rc=2).stderr
    smpctl(env, 'watch', '--seconds', '-1', rc=2)
    smpctl(env, 'limits', rc=2)
    smpctl(env, 'session', rc=2)
    smpctl(env, 'session', 'show', rc=2)
    assert 'unknown key' in smpctl(env, 'session', 'begin', 'colour=red', rc=2).stderr
    assert 'not a date' in smpctl(env, 'session', 'begin', 'patch-test=soon', rc=2).stderr
    smpctl(env, 'log', rc=2)
    smpctl(env, 'log', 'export', '--format=xml', rc=2)
    smpctl(env, 'log', 'export', 'extra', rc=2)
    assert 'only inside' in smpctl(env, 'sleep', '1', rc=2).stderr
    assert 'no device with serial' in smpctl(env, '--device=NOPE', 'claim', rc=12).stderr
    smpctl(env, 'session', 'show', 'ffff', rc=12)


def test_smpctl_oneshot_commands(env):
    # one-shot claim: the claim ends when smpctl exits
    assert 'ends when smpctl exits' in smpctl(env, 'claim').stderr
    assert not json.loads(smpctl(env, '--json', 'devices').stdout)[0]['claimed']
    # estop works without a claim and latches; clear works when unclaimed
    smpctl(env, 'estop')
    assert json.loads(smpctl(env, '--json', 'devices').stdout)[0]['state'] == 'estop'
    smpctl(env, 'clear')
    assert json.loads(smpctl(env, '--json', 'devices').stdout)[0]['state'] == 'idle'
    for cmd in ('start', 'stop', 'release'):
        r = smpctl(env, cmd, rc=14)
        assert r.stderr.startswith('smpctl: ' + cmd + ': ')


def test_smpctl_denied_exit_code(env):
    env.polkit.allow([])
    try:
        r = smpctl(env, 'claim', rc=10)
        assert 'smpctl: claim: ' in r.stderr
    finally:
        env.polkit.allow_all()


def test_smpctl_smpd_missing(env):
    env.smpd.stop()
    assert 'not running' in smpctl(env, 'status', rc=12).stdout
    assert json.loads(smpctl(env, '--json', 'status', rc=12).stdout) == {'running': False}
    smpctl(env, 'devices', rc=12)
    smpctl(env, 'claim', rc=12)


SCRIPT = '''# a treatment on one connection
claim
session begin client={client} operator=op-7 zone=hairline lot=PIG-9 manufacturer=Acme patch-test=-48h
set voltage=8V current=1A rate=120Hz depth=0.8mm
start
wait-state running 5
watch --seconds 1
! set depth=3mm
session zone crown
session note "photos taken"
shell '{ctl} brownout 7500'
wait-state fault 10
shell '{ctl} brownout off'
clear
- start
stop
session end
release
'''


def ctl_helper(env):
    """A tiny shell command the script can call to talk to the simulator."""
    path = os.path.join(env.tmp, 'simctl')
    with open(path, 'w') as f:
        f.write('#!/usr/bin/python3\nimport socket, sys\n'
                's = socket.socket(socket.AF_UNIX)\n'
                f's.connect({env.sim.ctl_path!r})\n'
                's.sendall((" ".join(sys.argv[1:]) + "\\n").encode())\n'
                'r = s.recv(4096).decode()\n'
                'sys.exit(0 if r.startswith("ok") else 1)\n')
    os.chmod(path, 0o755)
    return path


def test_smpctl_run_script_session(env):
    script = os.path.join(env.tmp, 'session.smp')
    with open(script, 'w') as f:
        f.write(SCRIPT.format(client='client-ctl-1', ctl=ctl_helper(env)))
    r = smpctl(env, 'run', script)
    out = r.stdout
    # the refused request is shown with the sentence a user needs
    assert re.search(r'set: depth 3\.00 mm exceeds the \S+ limit \d+\.\d\d mm set in \S+', r.stderr), r.stderr
    assert '(refused as expected)' in out
    assert 'fault on SIM-X2-000001: brownout' in out
    assert 'state fault' in out
    assert 'voltage' in out and ' V ' in out  # the gauges
    # the session is recorded and shown from the log after it ended
    sessions = json.loads(smpctl(env, '--json', 'session', 'list').stdout)
    assert len(sessions) == 1 and sessions[0]['client'] == 'client-ctl-1'
    assert sessions[0]['zone'] == 'crown' and not sessions[0]['active']
    sid = sessions[0]['id']
    show = json.loads(smpctl(env, '--json', 'session', 'show', sid).stdout)
    assert show['pigment_lot'] == 'PIG-9' and show['operator'] == 'op-7'
    assert 'client:     client-ctl-1' in smpctl(env, 'session', 'show', sid).stdout
    # export and verify the log
    lines = smpctl(env, 'log', 'export', '--session', sid).stdout.splitlines()
    events = [json.loads(line).get('event') for line in lines]
    assert 'session_begin' in events and 'session_end' in events and 'fault' in events
    csv = smpctl(env, 'log', 'export', '--format=csv', '--client=client-ctl-1').stdout
    assert csv.splitlines()[0].startswith('seq') or ',' in csv.splitlines()[0]
    env.smpd.stop()
    keyfile = os.path.join(env.tmp, 'audit.key')
    assert smpctl(env, 'log', 'verify', '--key-file=' + keyfile).stdout.startswith('intact')
    v = json.loads(smpctl(env, '--json', 'log', 'verify', '--key=' + audit_key(env)).stdout)
    assert v['status'] == 'intact'
    smpctl(env, 'log', 'verify', rc=5)  # no key: unverifiable
    smpctl(env, 'log', 'verify', '--key=garbage', rc=1)
    # the HTML report: metadata, plots, events, verification status
    page = os.path.join(env.tmp, 'report.html')
    r = smpctl(env, 'session', 'report', sid, '--key-file=' + keyfile, '--output=' + page)
    assert r.stdout.strip() == page
    with open(page) as f:
        html = f.read()
    assert html.startswith('<!DOCTYPE html>') and sid in html
    assert html.count('<svg') == 5 and html.count('<polyline') == 5
    for text in ('client-ctl-1', 'PIG-9', 'op-7', 'class="ok">INTACT', 'session_begin',
                 'zone_change', 'annotation', 'photos taken', 'parameters_refused', 'brownout',
                 'session_end'):
        assert text in html, text
    assert '<script' not in html  # self-contained and inert
    # dates as dates (ISO 8601 with the UTC offset), never Unix seconds
    assert 'Unix time' not in html and not re.search(r'_time=\d{6,}', html)
    patch = re.search(r'<th>Patch test</th><td><time datetime="([^"]+)">', html)
    began = re.search(r'<th>Began</th><td><time datetime="([^"]+)">', html)
    assert patch and began, html
    iso = r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d$'
    assert re.match(iso, patch.group(1)) and re.match(iso, began.group(1))
    import datetime
    ago = datetime.datetime.fromisoformat(began.group(1)) - \
        datetime.datetime.fromisoformat(patch.group(1))
    assert abs(ago.total_seconds() - 48 * 3600) < 10, ago
    # the zone change, the fault and the stop are marked on each of the 5 plots
    for ev in ('zone_change', 'fault', 'stop'):
        assert html.count(f'<line class="mk mk-{ev}"') == 5, ev
    assert re.search(r'@media print\{[^@]*svg\{width:\d+cm', html)
    smpctl(env, 'session', 'report', 'f' * 32, '--output=' + page, rc=12)
    smpctl(env, 'session', 'report', rc=2)
    # tamper with one byte of a record: verify and the report say so
    logdir = os.path.join(env.smpd.state_dir, 'audit')
    logfile = sorted(f for f in os.listdir(logdir) if f.endswith('.smplog'))[0]
    with open(os.path.join(logdir, logfile), 'r+b') as f:
        data = bytearray(f.read())
        i = data.index(b'photos taken')
        data[i] ^= 0x20
        f.seek(0)
        f.write(data)
    smpctl(env, 'log', 'verify', '--key-file=' + keyfile, rc=3)
    smpctl(env, 'session', 'report', sid, '--key-file=' + keyfile, '--output=' + page, rc=3)
    with open(page) as f:
        assert 'class="bad">NOT INTACT' in f.read()


def test_smpctl_run_keeps_answering_while_waiting_for_input(env):
    """H6 client contract: `smpctl run -` dispatches its client (libsmp
    sends the Heartbeat from the dispatch) while it waits for the next line
    and while a `shell` command runs, so a needle it started runs until the
    script stops it; a claimant that sent no Heartbeat for ClientTimeoutMs
    would be stopped by smpd."""
    p = subprocess.Popen(WRAPPER + [SMPCTL, '--bus-address=' + env.bus.address, 'run', '-'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        p.stdin.write('claim\nsession begin client=client-ctl-wait operator=op-1 zone=crown '
                      'lot=PIG-1 patch-test=-48h\nset voltage=8V current=1A rate=120Hz depth=0.8mm\n'
                      'start\n')
        p.stdin.flush()
        T.wait_for(lambda: env.sim.status()['state'] == 'RUNNING', 5, 'running')
        n = len(env.sim.events())
        time.sleep(1.5)                 # nothing to read: smpctl waits for input
        assert env.sim.status()['state'] == 'RUNNING'
        p.stdin.write("shell 'sleep 1'\n")
        p.stdin.flush()
        time.sleep(1.5)
        assert env.sim.status()['state'] == 'RUNNING'
        assert not any('event=STATE from=RUNNING' in e for e in env.sim.events()[n:])
        out, err = p.communicate('stop\nsession end\nrelease\n', timeout=30 * T.SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check_sanitizers(err)
    assert p.returncode == 0, f'exit {p.returncode}\n{out}\n{err}'
    assert 'client-unresponsive' not in out + err
    ev = [e for e in env.sim.events()[n:] if 'event=STATE from=RUNNING' in e]
    assert len(ev) == 1 and 'to=IDLE' in ev[0], ev


def test_smpctl_script_stops_at_first_failure(env):
    # start without a session: refused (11), the script stops there
    r = smpctl(env, 'run', '-', stdin='claim\nstart\necho never\n', rc=11)
    assert 'never' not in r.stdout and '-:2: stopping the script' in r.stderr
    # '-' ignores a failure, '!' expects one
    r = smpctl(env, 'run', '-', stdin='claim\n- start\n! start\necho reached\n')
    assert 'reached' in r.stdout and '(refused as expected)' in r.stdout
    smpctl(env, 'run', '-', stdin='! claim\n', rc=15)
    smpctl(env, 'run', '-', stdin='"unterminated\n', rc=2)
    smpctl(env, 'run', '/nonexistent/script', rc=1)


def test_smpctl_watch_seconds_and_sigint(env):
    c = env.running_client(client='client-watch')
    p = smpctl(env, 'watch', '--seconds', '1.5')
    assert p.stdout.count('--\n') >= 3  # not a tty: one block per summary
    assert 'voltage' in p.stdout and 'depth' in p.stdout
    j = smpctl(env, '--json', 'watch', '--seconds', '1').stdout.splitlines()
    assert len(j) >= 3 and json.loads(j[0])['voltage_mv'] > 0
    q = subprocess.Popen(WRAPPER + [SMPCTL, '--bus-address=' + env.bus.address, 'watch'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # interrupt once it is showing gauges (its SIGINT handler is in place)
    first = ''
    deadline = time.monotonic() + 20 * T.SLOW
    while 'voltage' not in first and time.monotonic() < deadline and q.poll() is None:
        first += q.stdout.readline()
    assert 'voltage' in first, first
    q.send_signal(signal.SIGINT)
    out, err = q.communicate(timeout=10 * T.SLOW)
    check_sanitizers(err)
    assert q.returncode == 0, (q.returncode, err)
    c.dev(env.dev_path).Stop()


# ---- the example, built against the installed library ------------------------------------

def test_example_builds_from_install_and_runs(env):
    build = os.environ['SMPD_BUILD_DIR']
    dest = os.path.join(env.tmp, 'dest')
    p = subprocess.run(['meson', 'install', '-C', build, '--no-rebuild', '--quiet',
                        '--destdir', dest], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    assert p.returncode == 0, p.stdout
    pcs = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs if f == 'libsmp.pc']
    assert len(pcs) == 1, pcs
    for name in ('libsmp.h', 'libsmp.so.1'):
        assert any(name in fs for _, _, fs in os.walk(dest)), name + ' not installed'
    penv = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]), PKG_CONFIG_SYSROOT_DIR=dest,
                PKG_CONFIG_LIBDIR='')
    flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'libsmp'], env=penv,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert flags.returncode == 0, flags.stderr
    assert dest in flags.stdout and '-lsmp' in flags.stdout, flags.stdout
    exe = os.path.join(env.tmp, 'treatment')
    src = os.path.join(os.environ['SMPD_SOURCE_DIR'], 'examples', 'treatment.c')
    cc = subprocess.run(['cc', '-Wall', '-Wextra', '-Werror', src, '-o', exe,
                         *os.environ.get('LIBSMP_SAN_FLAGS', '').split(), *flags.stdout.split()],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert cc.returncode == 0, cc.stdout
    libdir = [f[2:] for f in flags.stdout.split() if f.startswith('-L')][0]
    run = subprocess.run(WRAPPER + [exe, env.bus.address], env=dict(os.environ, LD_LIBRARY_PATH=libdir),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=60 * T.SLOW)
    check_sanitizers(run.stderr)
    assert run.returncode == 0, run.stdout + run.stderr
    # it ran the needle and printed telemetry while running
    assert re.search(r'^ *[78]\d\d\d mV', run.stdout, re.M), run.stdout
    m = re.search(r'^needle ran (\d+\.\d) s$', run.stdout, re.M)
    assert m and 1.5 <= float(m.group(1)) <= 4.0, run.stdout
    assert 'session ended: ' in run.stdout
    # the library it ran with is the installed one
    ldd = subprocess.run(['ldd', exe], env=dict(os.environ, LD_LIBRARY_PATH=libdir),
                         stdout=subprocess.PIPE, text=True).stdout
    assert os.path.join(libdir, 'libsmp.so.1') in ldd, ldd
