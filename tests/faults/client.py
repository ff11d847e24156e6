#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The claimant of a fault scenario, as its own process (so that it can
crash or hang for real): claims the device, opens a session, sets the
setpoints and starts the needle, printing one `ack EVENT` line per call
smpd acknowledged, then `running`, and serves its bus connection until it
is killed.  Usage: client.py BUS_ADDRESS DEVICE_PATH PSEUDONYM"""

import os
import sys

sys.path.insert(0, os.path.join(os.environ['SMPD_SOURCE_DIR'], 'tests', 'daemon'))

import dbus  # noqa: E402
from gi.repository import GLib  # noqa: E402

import smpdtest as T  # noqa: E402


def main():
    address, dev_path, pseudonym = sys.argv[1:4]
    conn = dbus.bus.BusConnection(address)
    mgr = dbus.Interface(conn.get_object(T.BUS, T.ROOT), T.IMGR)
    d = dbus.Interface(conn.get_object(T.BUS, dev_path), T.IDEV)
    d.Claim()
    mgr.BeginSession(dev_path, T.metadata(client=pseudonym))
    print('ack session_begin', flush=True)
    d.SetParameters(T.params())
    print('ack set_parameters', flush=True)
    d.Start()
    print('ack start', flush=True)
    print('running', flush=True)
    GLib.MainLoop().run()


if __name__ == '__main__':
    main()
