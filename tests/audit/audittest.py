# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the audit suite's Python tests share: the check tally and where
systemd-journal-remote is.  The scripts import it from their own
directory (Python puts a script's directory first on sys.path)."""
import os
import sys

REMOTE = next((p for p in ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote")
               if os.access(p, os.X_OK)), None)
fails = 0


def check(cond, what, detail=""):
    global fails
    if cond:
        print("ok:", what)
    else:
        fails += 1
        print("FAIL:", what, detail)


def need_remote():
    """A test that cannot run fails loudly: no journal-remote, no test."""
    if REMOTE is None:
        print("FAIL: systemd-journal-remote is not installed (package systemd-journal-remote; build-aux/deps.sh)")
        sys.exit(1)


def finish():
    print("%d failure(s)" % fails)
    sys.exit(1 if fails else 0)
