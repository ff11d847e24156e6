#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks what headless Chromium made of a session report:

  check-report.py png SHOT.png        the screenshot is a real rendering
  check-report.py dom DOM.html        the parsed DOM holds the session
  check-report.py pdf REPORT.pdf      the print is a PDF with pages

Standard library only (zlib for the PNG).  Exit 0 when it holds, 1 with
the reason otherwise.
"""

import datetime
import html.parser
import re
import struct
import sys
import zlib

# ISO 8601 with the offset from UTC spelled out, as the report writes dates
ISO = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d$')
MARKED = ('fault', 'stop', 'estop', 'zone_change')


def fail(msg):
    print('FAIL: ' + msg)
    sys.exit(1)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def png_pixels(path):
    """(width, height, set of distinct pixels, pixels per colour) of an 8-bit RGB(A) PNG."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        fail(f'{path} is not a PNG')
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + body) != struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])[0]:
            fail(f'{path}: bad CRC in chunk {kind!r}')
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat.append(body)
        elif kind == b'IEND':
            break
        pos += 12 + n
    if not ihdr:
        fail(f'{path}: no IHDR')
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        fail(f'{path}: unexpected PNG format depth={depth} type={ctype} interlace={interlace}')
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        fail(f'{path}: {len(raw)} bytes of image data for {w}x{h}')
    prev = bytearray(stride)
    colours = {}
    for y in range(h):
        ft = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xff
        elif ft == 2:
            row = bytearray((a + b) & 0xff for a, b in zip(row, prev))
        elif ft == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xff
        elif ft == 4:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                ul = prev[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + paeth(left, prev[i], ul)) & 0xff
        elif ft != 0:
            fail(f'{path}: bad filter type {ft} in row {y}')
        rb = bytes(row)
        for i in range(0, stride, bpp):
            px = rb[i:i + 3]
            colours[px] = colours.get(px, 0) + 1
        prev = row
    return w, h, colours


def check_png(path):
    w, h, colours = png_pixels(path)
    total = w * h
    top = max(colours.values())
    # a blank or error page is one colour (or a handful for its text)
    print(f'screenshot {w}x{h}: {len(colours)} distinct colours, '
          f'the commonest covers {100.0 * top / total:.1f}%')
    if (w, h) != (1200, 2000):
        fail(f'screenshot is {w}x{h}, not the 1200x2000 window')
    if len(colours) < 32:
        fail(f'only {len(colours)} distinct colours: the page did not render')
    if top > 0.985 * total:
        fail('the screenshot is nearly blank')


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.svgs = {}          # aria-label -> counts of drawn elements
        self.cur_svg = None
        self.rows = []          # (class, text)
        self.cur_row = None
        self.ok_text = None
        self.in_ok = False
        self.svg_attrs = {}     # aria-label -> the svg's attributes
        self.frames = {}        # aria-label -> the plot frame's attributes
        self.marks = {}         # aria-label -> [attributes of each marker line]
        self.row_seq = {}       # seq -> (event, datetime of its <time>)
        self.cur_seq = None
        self.record = {}        # Record table: header -> [datetime of each <time>], text
        self.cur_th = None
        self.cur_rec = None
        self.in_th = False
        self.in_style = False
        self.style = ''

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'svg':
            self.cur_svg = a.get('aria-label', '')
            self.svgs[self.cur_svg] = 0
            self.svg_attrs[self.cur_svg] = a
            self.marks[self.cur_svg] = []
        elif self.cur_svg is not None and tag in ('path', 'polyline', 'circle', 'line', 'rect'):
            self.svgs[self.cur_svg] += 1
            if tag == 'rect' and 'frame' in (a.get('class') or '').split():
                self.frames[self.cur_svg] = a
            if tag == 'line' and 'mk' in (a.get('class') or '').split():
                self.marks[self.cur_svg].append(a)
        if tag == 'style':
            self.in_style = True
        if tag == 'th' and self.cur_row is None:
            self.in_th = True
            self.cur_th = ''
        if tag == 'td' and self.cur_th is not None and self.cur_row is None:
            self.cur_rec = self.record.setdefault(self.cur_th, [[], ''])
        if tag == 'time':
            if self.cur_row is not None and self.cur_seq is not None:
                self.row_seq.setdefault(self.cur_seq, (self.cur_row[0], a.get('datetime')))
            elif self.cur_rec is not None:
                self.cur_rec[0].append(a.get('datetime'))
        if tag == 'tr' and (a.get('class') or '').startswith('ev-'):
            self.cur_row = [a['class'][3:], '']
            self.cur_seq = a.get('data-seq')
        if tag == 'p' and a.get('class') in ('ok', 'bad', 'warn'):
            self.in_ok = True
            self.ok_text = [a['class'], '']

    def handle_endtag(self, tag):
        if tag == 'svg':
            self.cur_svg = None
        if tag == 'style':
            self.in_style = False
        if tag == 'th':
            self.in_th = False
        if tag == 'tr':
            self.cur_th = None
            self.cur_rec = None
        if tag == 'tr' and self.cur_row:
            self.rows.append(tuple(self.cur_row))
            self.cur_row = None
        if tag == 'p':
            self.in_ok = False

    def handle_data(self, data):
        if self.in_style:
            self.style += data
        if self.in_th:
            self.cur_th += data
        if self.cur_rec is not None:
            self.cur_rec[1] += data
        if self.cur_row is not None:
            self.cur_row[1] += data
        if self.in_ok:
            self.ok_text[1] += data


def check_dom(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    d = Dom()
    d.feed(text)
    for plot in ('Voltage', 'Current', 'Stroke rate', 'Depth', 'Temperature'):
        if plot not in d.svgs:
            fail(f'no SVG plot "{plot}" in the DOM (plots: {sorted(d.svgs)})')
        if d.svgs[plot] < 5:
            fail(f'the "{plot}" plot draws only {d.svgs[plot]} elements')
    events = [r[0] for r in d.rows]
    for ev in ('session_begin', 'set_parameters', 'start', 'stop', 'fault', 'session_end'):
        if ev not in events:
            fail(f'no "{ev}" entry in the event timeline ({events})')
    if not any(k == 'fault' and 'brownout' in t for k, t in d.rows):
        fail('the brown-out fault is not in the timeline')
    if not d.ok_text or d.ok_text[0] != 'ok' or 'INTACT' not in d.ok_text[1]:
        fail(f'no INTACT verification status in the DOM: {d.ok_text}')
    check_dates(d, text)
    check_marks(d)
    check_print_css(d)
    print(f'DOM: 5 plots ({", ".join(f"{k}: {v}" for k, v in d.svgs.items())} elements), '
          f'{len(d.rows)} timeline entries, verification "{d.ok_text[1].strip()[:60]}"')


def when(iso):
    """An ISO 8601 date with its offset as an aware datetime."""
    if not iso or not ISO.match(iso):
        fail(f'"{iso}" is not an ISO 8601 date and time with its UTC offset')
    return datetime.datetime.fromisoformat(iso)


def check_dates(d, text):
    """Dates read as dates: the patch test and screening (the demo gives
    -48 h and -72 h), the session's begin and end, each event."""
    if re.search(r'Unix time|_time=-?\d{6,}|_day=-?\d{4,}', text):
        fail('a date is still shown as a Unix time')
    for row in ('Patch test', 'Screening', 'Began', 'Ended'):
        if row not in d.record or len(d.record[row][0]) != 1:
            fail(f'the record has no date for "{row}" ({d.record.get(row)})')
        if re.search(r'\b\d{9,}\b', d.record[row][1]):
            fail(f'"{row}" shows a bare number: {d.record[row][1]!r}')
    began = when(d.record['Began'][0][0])
    ended = when(d.record['Ended'][0][0])
    for row, hours in (('Patch test', 48), ('Screening', 72)):
        ago = (began - when(d.record[row][0][0])).total_seconds()
        if abs(ago - hours * 3600) > 5:
            fail(f'{row} is {ago:.0f} s before the session, not {hours} h')
    if not began <= ended or (ended - began).total_seconds() > 300:
        fail(f'the session runs from {began} to {ended}')
    if not d.row_seq:
        fail('no event row has a <time> and a data-seq')
    for seq, (ev, iso) in d.row_seq.items():
        t = when(iso)
        if not began - datetime.timedelta(seconds=1) <= t <= ended + datetime.timedelta(seconds=1):
            fail(f'event {seq} ({ev}) at {t} lies outside the session')
    # the offset is that of the writer's time zone (check-report.sh sets TZ)
    for row in ('Began', 'Ended', 'Patch test', 'Screening'):
        t = when(d.record[row][0][0])
        if t.utcoffset() != t.astimezone().utcoffset():
            fail(f'{row} {t.isoformat()} does not carry the local UTC offset '
                 f'{t.astimezone().utcoffset()}')
    offsets = {d.record[r][0][0][-6:] for r in ('Began', 'Patch test')}
    print(f'dates: began {began.isoformat()}, patch test and screening 48 h and 72 h before, '
          f'UTC offset(s) {sorted(offsets)}')


def check_marks(d):
    """Each fault, stop and zone change of the timeline has a marker line
    on every plot, across the plot frame, where its time falls on the
    plot's time axis (the session's begin to its end)."""
    began = when(d.record['Began'][0][0])
    ended = when(d.record['Ended'][0][0])
    span = (ended - began).total_seconds()
    want = {seq: (ev, when(iso)) for seq, (ev, iso) in d.row_seq.items() if ev in MARKED}
    kinds = {ev for ev, _ in want.values()}
    for k in ('fault', 'stop', 'zone_change'):
        if k not in kinds:
            fail(f'the demo timeline has no {k} to mark (events: {sorted(kinds)})')
    for plot, marks in d.marks.items():
        fr = d.frames.get(plot)
        if not fr:
            fail(f'the "{plot}" plot has no frame')
        x0, w = float(fr['x']), float(fr['width'])
        y0, h = float(fr['y']), float(fr['height'])
        got = {m.get('data-seq'): m for m in marks}
        if sorted(got) != sorted(want) or len(marks) != len(want):
            fail(f'"{plot}" marks seq {sorted(got)}, the timeline has {sorted(want)}')
        for seq, (ev, t) in want.items():
            m = got[seq]
            if m.get('data-event') != ev or f'mk-{ev}' not in m.get('class', '').split():
                fail(f'"{plot}": the marker of seq {seq} is {m}, not a {ev}')
            x = x0 + (t - began).total_seconds() / span * w
            for k in ('x1', 'x2'):
                if abs(float(m[k]) - x) > 0.6:
                    fail(f'"{plot}": the {ev} (seq {seq}) at {t} is drawn at {k}={m[k]}, '
                         f'the time axis puts it at {x:.2f}')
            ys = sorted((float(m['y1']), float(m['y2'])))
            if abs(ys[0] - y0) > 0.5 or abs(ys[1] - (y0 + h)) > 0.5:
                fail(f'"{plot}": the {ev} marker spans y {ys}, not the frame {y0}..{y0 + h}')
    print(f'markers: {len(want)} events ({", ".join(sorted(kinds))}) on each of {len(d.marks)} plots')


def check_print_css(d):
    """Printed, the plots have a fixed physical width and scale through
    their viewBox; a figure is not split across pages."""
    css = re.sub(r'\s+', ' ', d.style)
    m = re.search(r'@media print\s*\{((?:[^{}]*\{[^{}]*\})*)[^{}]*\}', css)
    if not m:
        fail(f'no @media print block in the style sheet: {css!r}')
    rules = dict((sel.strip(), body) for sel, body in re.findall(r'([^{}]+)\{([^{}]*)\}', m.group(1)))
    svg = rules.get('svg', '')
    if not re.search(r'(^|;)\s*width:\s*\d+(\.\d+)?(cm|mm)', svg) or 'height:auto' not in svg.replace(' ', ''):
        fail(f'the print rule for svg has no fixed width in cm/mm with height:auto: {svg!r}')
    fig = rules.get('figure', '')
    if 'break-inside:avoid' not in fig.replace(' ', ''):
        fail(f'printed figures may break across pages: {fig!r}')
    for plot, a in d.svg_attrs.items():
        if not re.match(r'^0 0 \d+ \d+$', a.get('viewbox', '')):
            fail(f'the "{plot}" plot has no viewBox to scale by ({a})')
    print(f'print CSS: svg {{{svg.strip()}}}')


def check_pdf(path):
    with open(path, 'rb') as f:
        data = f.read()
    if not data.startswith(b'%PDF-') or b'%%EOF' not in data[-64:]:
        fail(f'{path} is not a complete PDF')
    pages = data.count(b'/Type /Page') + data.count(b'/Type/Page') - \
        data.count(b'/Type /Pages') - data.count(b'/Type/Pages')
    if pages < 1 or len(data) < 10000:
        fail(f'{path}: {pages} pages, {len(data)} bytes')
    print(f'PDF: {len(data)} bytes, {pages} page(s)')


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('png', 'dom', 'pdf'):
        print(__doc__)
        sys.exit(2)
    {'png': check_png, 'dom': check_dom, 'pdf': check_pdf}[sys.argv[1]](sys.argv[2])
