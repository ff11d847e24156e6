#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# gen-dbus-args-seeds.py CORPUS_DIR REGRESS_DIR - writes the seeds of
# fuzz-dbus-args in its input format (see the head of fuzz-dbus-args.c):
# valid SetParameters/BeginSession calls (corpus) and one input per
# refusal rule of docs/dbus.md (regress).  The string indices below must
# follow strings[] and enum vtype in fuzz-dbus-args.c; rerun after
# changing either:
#   /usr/bin/python3 tests/fuzz/gen-dbus-args-seeds.py \
#       tests/fuzz/corpus/dbus-args tests/fuzz/regress/dbus-args
import struct, os, sys
C, R = sys.argv[1], sys.argv[2]
VT = dict(U=0,I=1,Q=2,T=3,X=4,S=5,B=6,O=7,D=8,VU=9,AU=10,SU=11)
S = dict(Voltage=0, Current=1, StrokeRate=2, Depth=3, ClientPseudonym=4, Operator=5, Zone=6,
         PigmentLot=7, PigmentManufacturer=8, OverrideReason=9, PatchTestTime=10, ScreeningTime=11,
         hairline=12, temples=13, crown=14, scar=15, Hairline=16, empty=17, voltage=18,
         client=19, opeq=20, space=21, quote=22, bslash=23, ete=24, c1=25, dele=26, tab=27,
         maxcp=28, bom=29, tok64=30, tok65=31)
def key(name): return bytes([S[name]])
def raw(b): return bytes([0xe0, len(b)]) + b
def ent(k, t, v, wide=False):
    op = VT[t] | (0x10 if wide else 0)
    kb = key(k) if isinstance(k, str) else raw(k)
    if t == 'S':
        vb = key(v) if isinstance(v, str) else (bytes([0xff, v[1]]) if isinstance(v, tuple) else raw(v))
    else:
        vb = struct.pack('>Q' if wide else '>I', v & ((1 << 64) - 1 if wide else 0xffffffff))
    return bytes([op]) + kb + vb
def sp(flags, ents, tail=b''):
    return bytes([0, flags, len(ents)]) + b''.join(ents) + tail
def bs(ents, tail=b''):
    return bytes([1, len(ents)]) + b''.join(ents) + tail
def st(sel): return bytes([2]) + sel
def w(d, name, b): open(os.path.join(d, name), 'wb').write(b)
full = [ent('Voltage','U',9000), ent('Current','U',1500), ent('StrokeRate','U',10000), ent('Depth','U',1000)]
w(C, 'sp-all', sp(0, full, b'\x01\x02'))
w(C, 'sp-all-temples', sp(0, full[:3] + [ent('Depth','U',1200)], b'\x00\x02'))
w(C, 'sp-partial-with-setpoints', sp(1, [ent('Depth','U',800)], b'\x01\x00'))
w(C, 'sp-empty-with-setpoints', sp(1, [], b'\x01\x01'))
w(C, 'sp-over-voltage', sp(0, [ent('Voltage','U',9100)] + full[1:], b'\x01\x00'))
w(C, 'sp-off-step', sp(0, full[:3] + [ent('Depth','U',1025)], b'\x00\x03'))
meta = [ent('ClientPseudonym','S','client'), ent('Operator','S','client'), ent('Zone','S','crown'),
        ent('PigmentLot','S','client'), ent('PatchTestTime','X',1790000000, True)]
w(C, 'bs-ok', bs(meta, b'\x21\x05'))
w(C, 'bs-override', bs(meta + [ent('OverrideReason','S','ete')], b'\x61\x03\x10'))
w(C, 'bs-minimal', bs(meta[:3], b'\x01\x09'))
w(C, 'str-ete', st(key('ete')))
w(C, 'str-raw', st(raw(b'hello world')))
# regress: one per refusal rule
w(R, 'sp-unknown-key', sp(0, [ent('voltage','U',9000)] + full[1:]))
w(R, 'sp-wrong-type-i', sp(0, [ent('Voltage','I',9000)] + full[1:]))
w(R, 'sp-wrong-type-q', sp(0, full[:3] + [ent('Depth','Q',1000)]))
w(R, 'sp-nested-variant', sp(0, full[:3] + [ent('Depth','VU',1000)]))
w(R, 'sp-struct', sp(0, full[:3] + [ent('Depth','SU',1000)]))
w(R, 'sp-above-u16', sp(0, full[:3] + [ent('Depth','U',65536)]))
w(R, 'sp-u16-max', sp(0, full[:3] + [ent('Depth','U',65535)], b'\x01\x01'))
w(R, 'sp-missing', sp(0, full[:3]))
w(R, 'sp-empty-no-setpoints', sp(0, []))
w(R, 'sp-duplicate-last-wins', sp(0, full + [ent('Depth','U',50)], b'\x00\x00'))
w(R, 'sp-zero-current', sp(0, [full[0], ent('Current','U',0)] + full[2:], b'\x00\x00'))
w(R, 'sp-invalid-utf8-key', sp(0, [ent(b'\xff\xfe','U',1)] + full))
w(R, 'sp-max-entries', sp(1, full * 6, b'\x01\x02'))
w(R, 'bs-unknown-field', bs(meta + [ent('Voltage','U',1)]))
w(R, 'bs-wrong-type', bs(meta + [ent('ScreeningTime','T',5, True)]))
w(R, 'bs-time-as-u', bs(meta[:4] + [ent('PatchTestTime','U',5)]))
w(R, 'bs-no-client', bs(meta[1:]))
w(R, 'bs-no-operator', bs(meta[:1] + meta[2:]))
w(R, 'bs-no-zone', bs(meta[:2] + meta[3:]))
w(R, 'bs-zone-case', bs(meta[:2] + [ent('Zone','S','Hairline')] + meta[3:]))
w(R, 'bs-zone-empty', bs(meta[:2] + [ent('Zone','S','empty')] + meta[3:]))
w(R, 'bs-override-empty', bs(meta + [ent('OverrideReason','S','empty')]))
w(R, 'bs-override-c1', bs(meta + [ent('OverrideReason','S','c1')]))
w(R, 'bs-override-1025', bs(meta + [ent('OverrideReason','S',('long', 5))]))
w(R, 'bs-override-1024', bs(meta + [ent('OverrideReason','S',('long', 4))], b'\x61\x00\x01'))
w(R, 'bs-future-patch-test', bs(meta[:4] + [ent('PatchTestTime','X',1900000000, True)], b'\x21\x05'))
w(R, 'bs-negative-time', bs(meta[:4] + [ent('ScreeningTime','X',-1, True)], b'\x21\x05'))
w(R, 'bs-client-with-space', bs([ent('ClientPseudonym','S','space')] + meta[1:], b'\x21\x05'))
w(R, 'bs-client-65', bs([ent('ClientPseudonym','S','tok65')] + meta[1:], b'\x21\x05'))
w(R, 'bs-no-lot', bs(meta[:3] + meta[4:], b'\x21\x05'))
w(R, 'bs-seen-cartridge', bs(meta, b'\x31\x05'))
w(R, 'bs-healing', bs(meta, b'\x61\x05\x08'))
w(R, 'str-c1', st(key('c1')))
w(R, 'str-del', st(key('dele')))
w(R, 'str-surrogate', st(raw(b'\xed\xa0\x80')))
w(R, 'str-overlong', st(raw(b'\xc0\xaf')))
w(R, 'str-above-10ffff', st(raw(b'\xf4\x90\x80\x80')))
w(R, 'str-truncated-seq', st(raw(b'ab\xe2\x82')))
w(R, 'str-1025', st(b'\xff\x05'))
w(R, 'empty', b'')
