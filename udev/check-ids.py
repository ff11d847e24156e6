#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Check that the udev hwdb and the smpusb driver list the same devices.

usage: check-ids.py --hwdb FILE --kernel-dir DIR [--protocol FILE]

The driver's table is the usb_device_id array named by
MODULE_DEVICE_TABLE(usb, ...) in DIR/*.c; its macros (USB_DEVICE,
USB_DEVICE_VER, USB_DEVICE_AND_INTERFACE_INFO, ...) and constants are
resolved from the #defines in DIR and DIR/include.  The hwdb entries are
usb:v<VID>p<PID>d<MM>* with MM the model byte of bcdDevice.

Checks:
  - the two list the same vendor:product pairs;
  - every hwdb model lies inside a bcdDevice range the driver binds;
  - where the driver restricts bcdDevice, it binds no model the hwdb lacks;
  - with --protocol, the hwdb models and names are those of the "Models"
    table of docs/protocol.md.
Exit 0 when all hold, 1 with one line per mismatch, 2 when an input
cannot be found or parsed (that is a failure too, never a pass).
"""
import argparse
import glob
import os
import re
import sys


def die(msg):
    print(f"check-ids: error: {msg}", file=sys.stderr)
    sys.exit(2)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def read_defines(kdir):
    defines = {}
    files = glob.glob(os.path.join(kdir, "**", "*.h"), recursive=True)
    files += glob.glob(os.path.join(kdir, "*.c"))
    for f in sorted(files):
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = strip_comments(fh.read())
        for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)[ \t]+([^\n]+)$",
                             text, flags=re.M):
            defines.setdefault(m.group(1), m.group(2).strip())
    return defines


def evaluate(expr, defines, depth=0):
    expr = expr.strip()
    if depth > 10:
        die(f"macro nesting too deep at '{expr}'")
    while expr.startswith("(") and expr.endswith(")"):
        expr = expr[1:-1].strip()
    m = re.fullmatch(r"(0[xX][0-9a-fA-F]+|\d+)[uUlL]*", expr)
    if m:
        return int(m.group(1), 0)
    if expr in defines:
        return evaluate(defines[expr], defines, depth + 1)
    die(f"cannot resolve '{expr}' in the driver's ID table")


def split_args(s):
    args, level, cur = [], 0, ""
    for ch in s:
        if ch == "," and level == 0:
            args.append(cur.strip())
            cur = ""
            continue
        level += ch == "("
        level -= ch == ")"
        cur += ch
    if cur.strip():
        args.append(cur.strip())
    return args


# Each macro of include/linux/usb.h we understand: which argument is what.
MACROS = {
    "USB_DEVICE": ("vid", "pid"),
    "USB_DEVICE_VER": ("vid", "pid", "lo", "hi"),
    "USB_DEVICE_INTERFACE_CLASS": ("vid", "pid", "icl"),
    "USB_DEVICE_INTERFACE_PROTOCOL": ("vid", "pid", "ipr"),
    "USB_DEVICE_INTERFACE_NUMBER": ("vid", "pid", "inum"),
    "USB_DEVICE_AND_INTERFACE_INFO": ("vid", "pid", "icl", "isc", "ipr"),
    "USB_VENDOR_AND_INTERFACE_INFO": ("vid", "icl", "isc", "ipr"),
}
FIELDS = {"idVendor": "vid", "idProduct": "pid", "bcdDevice_lo": "lo",
          "bcdDevice_hi": "hi", "bInterfaceClass": "icl",
          "bInterfaceSubClass": "isc", "bInterfaceProtocol": "ipr"}


def kernel_table(kdir):
    if not os.path.isdir(kdir):
        die(f"kernel source directory {kdir} not found")
    defines = read_defines(kdir)
    entries, tables = [], 0
    for f in sorted(glob.glob(os.path.join(kdir, "*.c"))):
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = strip_comments(fh.read())
        for name in re.findall(r"MODULE_DEVICE_TABLE\s*\(\s*usb\s*,\s*(\w+)\s*\)", text):
            m = re.search(r"struct\s+usb_device_id\s+" + re.escape(name) +
                          r"\s*\[\s*\]\s*=\s*\{(.*?)\n\s*\}\s*;", text, flags=re.S)
            if not m:
                die(f"{f}: MODULE_DEVICE_TABLE(usb, {name}) but no array {name}[]")
            tables += 1
            body = m.group(1)
            for em in re.finditer(r"\{(.*?)\}\s*,", body, flags=re.S):
                entries.append(parse_entry(em.group(1), defines, f))
    if tables == 0:
        die(f"no MODULE_DEVICE_TABLE(usb, ...) in {kdir}/*.c")
    if not entries:
        die(f"the driver's usb_device_id table in {kdir} is empty")
    return entries


def parse_entry(src, defines, where):
    src = " ".join(src.split())
    if not src:
        die(f"{where}: empty entry before the terminator")
    e = {"vid": None, "pid": None, "lo": 0, "hi": 0xFFFF}
    m = re.fullmatch(r"(\w+)\s*\((.*)\)", src)
    if m and m.group(1) in MACROS:
        names = MACROS[m.group(1)]
        args = split_args(m.group(2))
        if len(args) != len(names):
            die(f"{where}: {m.group(1)} with {len(args)} arguments")
        for n, a in zip(names, args):
            e[n] = evaluate(a, defines)
    elif src.startswith("."):
        for part in split_args(src):
            fm = re.fullmatch(r"\.(\w+)\s*=\s*(.+)", part)
            if not fm:
                die(f"{where}: cannot parse '{part}'")
            if fm.group(1) in FIELDS:
                e[FIELDS[fm.group(1)]] = evaluate(fm.group(2), defines)
    else:
        die(f"{where}: unknown ID table entry '{src}'")
    if e["vid"] is None or e["pid"] is None:
        die(f"{where}: entry '{src}' does not name a vendor and product")
    return e


def hwdb_models(path):
    if not os.path.isfile(path):
        die(f"hwdb {path} not found")
    models = {}
    cur = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                cur = []
                continue
            if not line.startswith(" "):
                m = re.fullmatch(r"usb:v([0-9A-F]{4})p([0-9A-F]{4})d([0-9A-F]{2})\*", line)
                if not m:
                    die(f"{path}:{lineno}: match '{line}' is not usb:vVVVVpPPPPdMM*")
                key = tuple(int(x, 16) for x in m.groups())
                if key in models:
                    die(f"{path}:{lineno}: {line} listed twice")
                models[key] = {"line": lineno}
                cur.append(key)
                continue
            pm = re.fullmatch(r" (ID_SMP_\w+)=(.*)", line)
            if not pm or not cur:
                die(f"{path}:{lineno}: bad property line '{line}'")
            for k in cur:
                models[k][pm.group(1)] = pm.group(2)
    if not models:
        die(f"{path}: no usb:... entries")
    for (vid, pid, mod), props in models.items():
        for k in ("ID_SMP_MODEL", "ID_SMP_MODEL_NAME"):
            if k not in props:
                die(f"{path}:{props['line']}: entry has no {k}")
        if int(props["ID_SMP_MODEL"]) != mod:
            die(f"{path}:{props['line']}: ID_SMP_MODEL={props['ID_SMP_MODEL']} "
                f"but the match is for model byte {mod:02X}")
    return models


def protocol_models(path):
    if not os.path.isfile(path):
        die(f"{path} not found")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    sec = re.search(r"^### Models.*?\n(.*?)(?=^#)", text, flags=re.S | re.M)
    if not sec:
        die(f"{path}: no '### Models' section")
    out = {}
    for m in re.finditer(r"^\|\s*(\d+)\s*\|\s*`([^`]+)`", sec.group(1), flags=re.M):
        out[int(m.group(1))] = m.group(2)
    if not out:
        die(f"{path}: the Models table lists no model")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hwdb", required=True)
    ap.add_argument("--kernel-dir", required=True)
    ap.add_argument("--protocol")
    a = ap.parse_args()

    ktab = kernel_table(a.kernel_dir)
    hw = hwdb_models(a.hwdb)
    errors = []

    kpairs = {(e["vid"], e["pid"]) for e in ktab}
    hpairs = {(v, p) for (v, p, _) in hw}
    for v, p in sorted(kpairs - hpairs):
        errors.append(f"driver binds {v:04x}:{p:04x}, the hwdb lists no model of it")
    for v, p in sorted(hpairs - kpairs):
        errors.append(f"hwdb lists {v:04x}:{p:04x}, the driver does not bind it")

    for (v, p, mod), props in sorted(hw.items()):
        lo, hi = mod << 8, (mod << 8) | 0xFF
        if (v, p) in kpairs and not any(e["vid"] == v and e["pid"] == p and
                                        e["lo"] <= lo and hi <= e["hi"] for e in ktab):
            errors.append(f"hwdb model {mod} ({props['ID_SMP_MODEL_NAME']}) of {v:04x}:{p:04x}: "
                          f"the driver's bcdDevice ranges do not cover {lo:04x}-{hi:04x}")
    for e in ktab:
        if (e["lo"], e["hi"]) == (0, 0xFFFF):
            continue
        for mod in range(e["lo"] >> 8, (e["hi"] >> 8) + 1):
            if (e["vid"], e["pid"], mod) not in hw:
                errors.append(f"driver binds {e['vid']:04x}:{e['pid']:04x} model {mod} "
                              f"(bcdDevice {e['lo']:04x}-{e['hi']:04x}), the hwdb does not list it")

    if a.protocol:
        doc = protocol_models(a.protocol)
        hwnames = {mod: props["ID_SMP_MODEL_NAME"] for (_, _, mod), props in hw.items()}
        for mod in sorted(set(doc) | set(hwnames)):
            if doc.get(mod) != hwnames.get(mod):
                errors.append(f"model {mod}: {a.protocol} says {doc.get(mod)!r}, "
                              f"the hwdb says {hwnames.get(mod)!r}")

    for e in errors:
        print(f"check-ids: {e}")
    if errors:
        return 1
    print(f"check-ids: ok: {len(ktab)} driver ID entr{'y' if len(ktab) == 1 else 'ies'}, "
          f"{len(hw)} hwdb models, same devices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
