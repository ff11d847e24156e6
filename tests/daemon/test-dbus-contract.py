#!/usr/bin/python3
"""The D-Bus contract said the same way in every place it is said.

A client is written from docs/dbus.md and the introspection XML
(daemon/data/org.libsmp.Smp1.xml) alone, and a person reads the error
sentences; issue 15 found them disagreeing.  For each rule of the contract
this test names the wording that the XML doc string of each member it
concerns, docs/dbus.md's passage on it and smpd's error sentences
(daemon/*.c, daemon/safety.h) must all carry, and checks that the
behaviour tests (tests/daemon/test_records.py) assert the very sentences
smpd sends.  It also checks that every property has a doc string and
that every property (and the Telemetry signal) carrying numbers states
their unit in both documents.

Pure: reads files, starts nothing (suite 'unit').  Standard library only.
Usage: test-dbus-contract.py [SOURCE_ROOT]
"""

import ast
import os
import re
import sys
import xml.etree.ElementTree as ET

ROOT = (sys.argv[1] if len(sys.argv) > 1 else
        os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
XML = os.path.join(ROOT, 'daemon', 'data', 'org.libsmp.Smp1.xml')
DBUS_MD = os.path.join(ROOT, 'docs', 'dbus.md')
DAEMON = os.path.join(ROOT, 'daemon')
BEHAVIOUR = os.path.join(ROOT, 'tests', 'daemon', 'test_records.py')

DOC = 'org.gtk.GDBus.DocString'
IFACE = 'org.libsmp.Smp1.'

failures = []


def fail(rule, where, what):
    failures.append(f'{rule}: {where}: {what}')


def squash(s):
    return re.sub(r'\s+', ' ', s).strip()


# ------------------------------------------------------------------ sources

def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def xml_members():
    """{'Manager': doc, 'Manager.BeginSession': doc, ...} and {'Device.LeaseMs': type}."""
    docs, props = {}, {}
    for iface in ET.parse(XML).getroot().iter('interface'):
        name = iface.get('name')
        assert name.startswith(IFACE), name
        short = name[len(IFACE):]
        docs[short] = _doc(iface)
        for kind in ('method', 'property', 'signal'):
            for m in iface.findall(kind):
                key = (f'{short}.signal.{m.get("name")}' if kind == 'signal'
                       else f'{short}.{m.get("name")}')
                docs[key] = _doc(m)
                if kind == 'property':
                    props[key] = m.get('type')
    return docs, props


def _doc(el):
    for a in el.findall('annotation'):
        if a.get('name') == DOC:
            return squash(a.get('value'))
    return None


def md_blocks():
    """docs/dbus.md as blocks: each table row alone, else each paragraph
    (or list item); backticks and bold marks removed, whitespace squashed."""
    blocks, para = [], []
    for line in read(DBUS_MD).splitlines():
        if line.startswith('|'):
            if para:
                blocks.append(' '.join(para))
                para = []
            blocks.append(line)
        elif not line.strip() or line.lstrip().startswith('- '):
            if para:
                blocks.append(' '.join(para))
            para = [line] if line.strip() else []
        else:
            para.append(line)
    if para:
        blocks.append(' '.join(para))
    return [squash(b.replace('`', '').replace('*', '')) for b in blocks]


def c_strings(src, name):
    """The value of #define NAME "..." "..." (adjacent literals joined)."""
    m = re.search(r'#define\s+' + name + r'\s*\\?\s*((?:"(?:[^"\\]|\\.)*"\s*)+)', src)
    if not m:
        return None
    return ''.join(ast.literal_eval(lit) for lit in re.findall(r'"(?:[^"\\]|\\.)*"', m.group(1)))


def daemon_sources():
    out = {}
    for n in sorted(os.listdir(DAEMON)):
        if n.endswith(('.c', '.h')):
            out[n] = read(os.path.join(DAEMON, n))
    return out


def behaviour_tests():
    """{function name: (source text, {local name: str constant})}."""
    src = read(BEHAVIOUR)
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef):
            consts = {}
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Assign) and len(sub.targets) == 1 and
                        isinstance(sub.targets[0], ast.Name) and
                        isinstance(sub.value, ast.Constant) and isinstance(sub.value.value, str)):
                    consts[sub.targets[0].id] = sub.value.value
            out[node.name] = (ast.get_source_segment(src, node), consts)
    return out


# ------------------------------------------------------------------ the rules

# The facts of each character rule, as regular expressions over a text
# from which backticks and single quotes are removed (the daemon quotes the
# excluded characters, the docs put them in code spans).
TOKEN = [r'1-64 characters', r'printable ASCII', r'0x21-0x7e', r'other than ", = and \\']
TEXT = [r'1-1024 bytes', r'UTF-8', r'without control characters',
        r'U\+0000-U\+001F', r'U\+007F-U\+009F']
PROTOCOL = [r'LimitExceeded', r'above 65535', r'65536', r'4294967295', r'LastRefusal',
            r'Layer protocol', r"protocol's maximum as Limit"]

# rule id -> where: ('xml', member, [regex]) or ('md', anchor regex, [regex]).
# A md rule holds when one block whose text matches the anchor matches
# every regex.  Matching ignores case, backticks and single quotes.
RULES = {
    'session-path': [
        ('xml', 'Session', [r'/org/libsmp/Smp1/session/ID', r'32 lowercase hex digits',
                            r'no escaping', r'build the path from an Id']),
        ('xml', 'Session.Id', [r'32 lowercase hex digits', r'object path ends with it as it is']),
        ('xml', 'Manager.BeginSession', [r'Returns /org/libsmp/Smp1/session/ID, ID being the sessions Id as it is']),
        ('md', r'/org/libsmp/Smp1/session/<id>', [r'32 lowercase hex digits', r'never escaped',
                                                  r'begins with a digit', r'built from an Id']),
        ('md', r'^Properties \(all read-only\)', [r'Id \(32 lowercase hex digits, the end of the object path\)']),
    ],
    'token-rule': [
        ('xml', 'Manager.BeginSession', TOKEN + [r'ClientPseudonym s and Operator s \(required; 1-64',
                                                 r'PigmentLot s \(required[^)]*same rule as ClientPseudonym',
                                                 r'names the field, the character and its position \(1-based\) and the rule']),
        ('xml', 'Session.Client', TOKEN),
        ('xml', 'Session.Operator', TOKEN),
        ('xml', 'Session.PigmentLot', TOKEN),
        ('md', r'^- a token', TOKEN + [r'ClientPseudonym, Operator, PigmentLot', r'positions count from 1']),
        ('md', r'^The character rules', [r'InvalidArgument', r'names the field, what is wrong and where, then the rule']),
        ('md', r'^\| ClientPseudonym \|', [r'a token']),
        ('md', r'^\| Operator \|', [r'a token']),
        ('md', r'^\| PigmentLot \|', [r'a token', r'NoPigmentLot']),
    ],
    'text-rule': [
        ('xml', 'Manager.BeginSession', [r'PigmentManufacturer s \(optional; ' + TEXT[0]] + TEXT +
         [r'OverrideReason s \(' + TEXT[0]]),
        ('xml', 'Session.PigmentManufacturer', TEXT + [r'empty when not given']),
        ('xml', 'Session.Annotate', TEXT + [r'names the byte position and why']),
        ('md', r'^- text', TEXT + [r'PigmentManufacturer, OverrideReason, Annotate',
                                   r'positions are byte offsets from 1']),
        ('md', r'^\| PigmentManufacturer \|', [r'text']),
        ('md', r'^\| OverrideReason \|', [r'text']),
        ('md', r'^\| Annotate\(s text\) \|', TEXT),
    ],
    'beyond-protocol': [
        ('xml', 'Device.SetParameters', PROTOCOL),
        ('xml', 'Device.LastRefusal', [r'Layer s', r'as in Limits']),
        ('xml', 'Device.Limits', [r'protocol']),
        ('md', r"protocol's 16-bit field", PROTOCOL),
        ('md', r'^\| Layer \|', [r'protocol']),
    ],
    'dates': [
        ('xml', 'Manager.BeginSession', [r'PatchTestTime x and ScreeningTime x \(Unix seconds, signed',
                                         r'a date before 1970 is a date', r'from 1900-01-01',
                                         r'not in the future', r'0 or absent: none given']),
        ('xml', 'Session.PatchTestTime', [r'Unix seconds', r'signed', r'before 1970 is a date', r'0: none given']),
        ('xml', 'Session.ScreeningTime', [r'Unix seconds', r'signed', r'before 1970 is a date', r'0: none given']),
        ('xml', 'Manager.ListPastSessions', [r'PatchTestTime, ScreeningTime x \(signed Unix seconds, 0: none given\)']),
        ('md', r'^\| PatchTestTime \| x \|', [r'Unix seconds, signed', r'a date before 1970 is a date',
                                             r'from 1900-01-01 \(-2208988800\)', r'not in the future',
                                             r'0 or absent: none given']),
        ('md', r'^\| ScreeningTime \| x \|', [r'Unix seconds, same rule']),
        ('md', r'^\| PatchTestTime, ScreeningTime \| x \|', [r'Unix seconds', r'signed', r'before 1970 is a date',
                                                            r'0: none given']),
        ('md', r'^Properties \(all read-only\)', [r'PatchTestTime, ScreeningTime \(x, Unix seconds as given, signed; 0: none given\)']),
    ],
    'zero-and-empty': [
        ('xml', 'Session.EndTime', [r'0 while open']),
        ('xml', 'Session.EndReason', [r'empty while open']),
        ('xml', 'Manager.ListPastSessions', [r'EndTime 0 only while State is open', r'EndReason s \(empty while open\)']),
        ('md', r'^Properties \(all read-only\)', [r'EndTime 0 while open', r'EndReason \(s, "" while open\)']),
        ('md', r'^\| BeginTime, EndTime \| t \|', [r'EndTime 0 only while State is open']),
        ('md', r'^\| EndReason \| s \|', [r'"" while open']),
    ],
    'endsession-audit': [
        ('xml', 'Session.EndSession', [r'AuditUnavailable', r'session stays open', r'Active true, no Ended signal',
                                       r'daemon-stopped', r'daemon-crashed']),
        ('md', r'^EndSession when the audit log cannot be written', [
            r'AuditUnavailable', r'session stays open', r'Active true, no Ended signal',
            r'daemon-stopped', r'daemon-crashed']),
    ],
}

# Units: every property (and the Telemetry signal) that carries a number
# must be here, with the unit (or what the number is, when it has none) as
# the XML doc string and dbus.md's passage state it.
UNITS = {
    'Manager.APIVersion': ([r'version of this API, 1'], r'^\| property APIVersion \|', [r'version of this API, 1']),
    'Manager.HealingIntervalDays': ([r'in force, in days'], r'^\| property HealingIntervalDays \|',
                                    [r'in force, in days']),
    'Device.ModelNumber': ([r'USB product number'], r'^\| ModelNumber \|', [r'USB product number']),
    'Device.Setpoints': ([r'Voltage \(mV\)', r'Current \(mA', r'StrokeRate \(0\.01 Hz\)', r'Depth \(um\)'],
                         r'^\| Setpoints \|',
                         [r'Voltage \(mV\)', r'Current \(mA\)', r'StrokeRate \(0\.01 Hz\)', r'Depth \(µm\)']),
    'Device.Limits': ([r'Voltage mV', r'Current mA', r'StrokeRate 0\.01 Hz', r'Depth um'],
                      r'^\| Limits \|', [r'units as Setpoints']),
    'Device.LastRefusal': ([r'Requested u and Limit u \(in the unit of the parameter, as in Setpoints: mV, mA, 0\.01 Hz, um\)',
                            r'Serial t \(1 for the first'],
                           r'^\| LastRefusal \|', [r'units as Setpoints']),
    'Device.Cartridge': ([r'DiameterUm u \(um\)', r'ExpiryDay u \(days since 1970-01-01\)'],
                         r'^\| Cartridge \|', [r'DiameterUm \(µm\)', r'ExpiryDay \(days since 1970-01-01\)']),
    'Device.Telemetry': ([r'units as in the Telemetry signal'], r'^\| Telemetry \|', [r'units as the signal']),
    'Device.LeaseMs': ([r'in milliseconds'], r'^\| LeaseMs \|', [r', ms$|, ms \|']),
    'Device.ClientTimeoutMs': ([r'in milliseconds'], r'^\| ClientTimeoutMs \|', [r', ms;']),
    'Session.PatchTestTime': ([r'Unix seconds'], r'^Properties \(all read-only\)', [r'PatchTestTime, ScreeningTime \(x, Unix seconds']),
    'Session.ScreeningTime': ([r'Unix seconds'], r'^Properties \(all read-only\)', [r'PatchTestTime, ScreeningTime \(x, Unix seconds']),
    'Session.BeginTime': ([r'CLOCK_REALTIME, microseconds since 1970'], r'^Properties \(all read-only\)',
                          [r'BeginTime, EndTime \(t, CLOCK_REALTIME µs']),
    'Session.EndTime': ([r'CLOCK_REALTIME, microseconds since 1970'], r'^Properties \(all read-only\)',
                        [r'BeginTime, EndTime \(t, CLOCK_REALTIME µs']),
    'Session.NeedleOnTime': ([r'Microseconds'], r'^Properties \(all read-only\)', [r'NeedleOnTime \(t, µs\)']),
    'Session.MaxDuration': ([r'^Seconds from BeginTime'], r'^Properties \(all read-only\)',
                            [r'MaxDuration, MaxNeedleOn \(u, s']),
    'Session.MaxNeedleOn': ([r'^Seconds of NeedleOnTime'], r'^Properties \(all read-only\)',
                            [r'MaxDuration, MaxNeedleOn \(u, s']),
    # a signal, not a property, but its numbers are what Telemetry holds
    'Device.signal.Telemetry': (
        [r'Voltage/VoltageMin/VoltageMax \(mV\)', r'Current/CurrentMin/CurrentMax \(mA\)',
         r'StrokeRate \(0\.01 Hz\)', r'Depth \(um\)', r'LeaseLeft \(ms', r'Samples, Dropped \(records\)',
         r'TemperatureMax \(i, 0\.01 degC\)'],
        r'^Signals: Telemetry\(a\{sv\} summary\)',
        [r'Voltage/VoltageMin/VoltageMax \(mV\)', r'Current/CurrentMin/CurrentMax \(mA\)',
         r'StrokeRate \(0\.01 Hz\)', r'Depth \(µm\)', r'LeaseLeft \(ms', r'Samples, Dropped \(records\)',
         r'TemperatureMax \(i, 0\.01 °C\)']),
}
NUMERIC = set('ynqiuxtd')


def norm(s):
    return s.replace("'", '').replace('’', '')


def has(text, regex):
    return re.search(norm(regex), norm(text), re.IGNORECASE) is not None


def check_rules(docs, blocks):
    for rule, places in RULES.items():
        for kind, where, regexes in places:
            if kind == 'xml':
                doc = docs.get(where)
                if doc is None:
                    fail(rule, f'XML {where}', 'no doc string')
                    continue
                for rx in regexes:
                    if not has(doc, rx):
                        fail(rule, f'XML {where}', f'does not say /{rx}/: {doc!r}')
            else:
                check_md(rule, blocks, where, regexes)


def check_md(rule, blocks, anchor, regexes):
    cands = [b for b in blocks if re.search(anchor, b)]
    if not cands:
        fail(rule, 'docs/dbus.md', f'no passage /{anchor}/')
        return
    best = min(cands, key=lambda b: sum(not has(b, rx) for rx in regexes))
    for rx in regexes:
        if not has(best, rx):
            fail(rule, f'docs/dbus.md /{anchor}/', f'does not say /{rx}/: {best!r}')


def check_units(docs, props, blocks):
    for key, typ in sorted(props.items()):
        if docs.get(key) is None:
            fail('units', f'XML property {key}', 'has no doc string (say what it is, and its unit)')
        if set(typ) & NUMERIC and key not in UNITS:
            fail('units', f'XML property {key} ({typ})',
                 'carries numbers but has no entry in UNITS (its unit in the XML and dbus.md)')
    for key, (xml_rx, anchor, md_rx) in UNITS.items():
        member = key
        if member not in docs:
            fail('units', f'UNITS {key}', 'no such member in the XML')
            continue
        for rx in xml_rx:
            if not has(docs[member] or '', rx):
                fail('units', f'XML {key}', f'does not say /{rx}/: {docs[member]!r}')
        check_md('units', blocks, anchor, md_rx)


def check_sentences(daemon, tests):
    """smpd's sentences for the rules, the docs' and the behaviour tests'."""
    header = daemon['safety.h']
    token_rule = c_strings(header, 'SAFETY_TOKEN_RULE')
    text_rule = c_strings(header, 'SAFETY_TEXT_RULE')
    if not token_rule or not text_rule:
        fail('sentences', 'daemon/safety.h', 'SAFETY_TOKEN_RULE or SAFETY_TEXT_RULE not found')
        return
    for rule, sentence, facts in (('token-rule', token_rule, TOKEN), ('text-rule', text_rule, TEXT)):
        for rx in facts:
            if not has(sentence, rx):
                fail(rule, 'daemon/safety.h', f'the rule sentence does not say /{rx}/: {sentence!r}')
    # Each use of a rule in an error names the field and what is wrong
    # ("<Field> %s; " then the rule), for every field the docs give it.
    uses = {}
    for name, src in daemon.items():
        for m in re.finditer(r'"([^"]*)"\s*(SAFETY_(?:TOKEN|TEXT)_RULE)\b', src):
            uses.setdefault(m.group(2), []).append((name, m.group(1)))
            if not re.fullmatch(r'(?:the )?\w+ %s; ', m.group(1)):
                fail('sentences', f'daemon/{name}', f'{m.group(1)!r} {m.group(2)}: the sentence must '
                     'name the field and what is wrong ("<Field> %s; " then the rule)')
    for macro, fields in (('SAFETY_TOKEN_RULE', ['ClientPseudonym', 'Operator', 'PigmentLot']),
                          ('SAFETY_TEXT_RULE', ['PigmentManufacturer', 'OverrideReason', 'the annotation'])):
        said = {prefix[:-len(' %s; ')] for _, prefix in uses.get(macro, [])}
        for f in fields:
            if f not in said:
                fail('sentences', 'daemon', f'no error sentence "{f} %s; " {macro}')
    # dbus.md quotes the daemon's token sentence
    md = squash(read(DBUS_MD))
    md_plain = md.replace('`', '')
    if token_rule not in md:
        fail('token-rule', 'docs/dbus.md', f'the example sentence does not end with the daemon\'s rule {token_rule!r}')
    # the behaviour tests assert the daemon's very sentences
    src, consts = tests.get('test_text_rules_named_in_the_error', ('', {}))
    if consts.get('rule') != token_rule:
        fail('token-rule', 'test_records.py', f'asserts {consts.get("rule")!r}, smpd says {token_rule!r}')
    if consts.get('text_rule') != text_rule:
        fail('text-rule', 'test_records.py', f'asserts {consts.get("text_rule")!r}, smpd says {text_rule!r}')
    for f in ('ClientPseudonym', 'Operator', 'PigmentLot', 'PigmentManufacturer', 'the annotation'):
        if f not in src:
            fail('sentences', 'test_records.py', f'no behaviour test of the {f} sentence')
    # the dates: smpd's sentences and the oldest date the docs give
    safety_c = daemon['safety.c']
    m = re.search(r'#define\s+SAFETY_DATE_MIN\s+\((-?\d+)LL\)', header)
    if not m or '(-2208988800)' not in md_plain:
        fail('dates', 'daemon/safety.h, docs/dbus.md', 'SAFETY_DATE_MIN and the documented -2208988800 differ')
    elif m.group(1) != '-2208988800':
        fail('dates', 'daemon/safety.h', f'SAFETY_DATE_MIN is {m.group(1)}, dbus.md says -2208988800')
    src, _ = tests.get('test_dates_before_1970_are_dates', ('', {}))
    for said in ('lies before 1900-01-01', 'lies in the future', 'none was given'):
        if said not in safety_c:
            fail('dates', 'daemon/safety.c', f'no sentence {said!r}')
        if said not in src:
            fail('dates', 'test_records.py', f'test_dates_before_1970_are_dates does not assert {said!r}')
    for v in ('-31536000', '-1'):
        if v not in src:
            fail('dates', 'test_records.py', f'no date before 1970 ({v}) accepted as a date')
    # beyond the protocol: LimitExceeded naming the protocol layer
    if "the protocol's 16-bit field cannot" not in safety_c:
        fail('beyond-protocol', 'daemon/safety.c', 'the refusal does not name the protocol')
    if not re.search(r'LAYER_PROTOCOL, "protocol",\s*"protocol v1"', safety_c):
        fail('beyond-protocol', 'daemon/safety.c', 'the protocol layer is not named "protocol" ("protocol v1")')
    src, _ = tests.get('test_parameters_beyond_the_protocol_are_limit_exceeded', ('', {}))
    for said in ('65536', '4294967295', "'protocol'", 'LimitExceeded', 'LastRefusal'):
        if said not in src:
            fail('beyond-protocol', 'test_records.py', f'the behaviour test does not check {said}')
    # the session path
    src, _ = tests.get('test_session_path_is_prefix_and_id', ('', {}))
    if "'/org/libsmp/Smp1/session/' + sid" not in src or 'isdigit' not in src:
        fail('session-path', 'test_records.py', 'no behaviour test of the path of an Id that begins with a digit')


def main():
    docs, props = xml_members()
    blocks = md_blocks()
    check_rules(docs, blocks)
    check_units(docs, props, blocks)
    check_sentences(daemon_sources(), behaviour_tests())
    if failures:
        print(f'{len(failures)} disagreement(s) between the XML, docs/dbus.md, smpd and its tests:')
        for f in failures:
            print('  ' + f)
        return 1
    print(f'ok: {sum(len(p) for p in RULES.values())} rule places, {len(UNITS)} unit entries, '
          f'{len(props)} properties; the sentences agree')
    return 0


if __name__ == '__main__':
    sys.exit(main())
