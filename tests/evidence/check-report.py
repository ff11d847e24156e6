#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks what headless Chromium made of a session report:

  check-report.py png SHOT.png        the screenshot is a real rendering
  check-report.py dom DOM.html        the parsed DOM holds the session
  check-report.py pdf REPORT.pdf      the print is a PDF with pages

Standard library only (zlib for the PNG).  Exit 0 when it holds, 1 with
the reason otherwise.
"""

import html.parser
import struct
import sys
import zlib


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

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'svg':
            self.cur_svg = a.get('aria-label', '')
            self.svgs[self.cur_svg] = 0
        elif self.cur_svg is not None and tag in ('path', 'polyline', 'circle', 'line', 'rect'):
            self.svgs[self.cur_svg] += 1
        if tag == 'tr' and (a.get('class') or '').startswith('ev-'):
            self.cur_row = [a['class'][3:], '']
        if tag == 'p' and a.get('class') in ('ok', 'bad', 'warn'):
            self.in_ok = True
            self.ok_text = [a['class'], '']

    def handle_endtag(self, tag):
        if tag == 'svg':
            self.cur_svg = None
        if tag == 'tr' and self.cur_row:
            self.rows.append(tuple(self.cur_row))
            self.cur_row = None
        if tag == 'p':
            self.in_ok = False

    def handle_data(self, data):
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
    print(f'DOM: 5 plots ({", ".join(f"{k}: {v}" for k, v in d.svgs.items())} elements), '
          f'{len(d.rows)} timeline entries, verification "{d.ok_text[1].strip()[:60]}"')


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
