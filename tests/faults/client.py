#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The claimant of a fault scenario, as its own process (so that it can
crash or hang for real): claims the device, opens a session, sets the
setpoints and starts the needle, printing one `ack EVENT` line per call
smpd acknowledged, then `running`, and runs its main loop (serving its bus
connection, a Heartbeat every ClientTimeoutMs/4) until it is killed.

A line `again` on stdin (the runner's, when a starved guest stopped the
needle before anything was injected) does what an operator does then:
ClearFault if a fault is latched, Start again; it prints `ack start` and
`running`, or `error NAME: MESSAGE` when smpd refuses.
Usage: client.py BUS_ADDRESS DEVICE_PATH PSEUDONYM"""

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
    obj = conn.get_object(T.BUS, dev_path)
    d = dbus.Interface(obj, T.IDEV)
    props = dbus.Interface(obj, 'org.freedesktop.DBus.Properties')
    d.Claim()
    # the claimant's sign of life while its needle runs, from its main loop
    T.heartbeat(conn, [dev_path])
    mgr.BeginSession(dev_path, T.metadata(client=pseudonym))
    print('ack session_begin', flush=True)
    d.SetParameters(T.params())
    print('ack set_parameters', flush=True)
    d.Start()
    print('ack start', flush=True)
    print('running', flush=True)

    def start_again():
        if props.Get(T.IDEV, 'State') in ('fault', 'estop'):
            d.ClearFault()
        try:
            d.Start()
        except dbus.exceptions.DBusException as e:
            # smpd may latch a fault it reads after the State above
            if e.get_dbus_name() != T.ERR + 'FaultLatched':
                raise
            d.ClearFault()
            d.Start()

    def command(source, cond):
        line = sys.stdin.readline()
        if not line:
            return False        # the runner closed stdin: keep serving the bus
        if line.strip() == 'again':
            try:
                start_again()
                print('ack start', flush=True)
                print('running', flush=True)
            except dbus.exceptions.DBusException as e:
                msg = f'{e.get_dbus_name()}: {e.get_dbus_message()}'.replace('\n', ' ')
                print(f'error {msg}', flush=True)
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, command)
    GLib.MainLoop().run()


if __name__ == '__main__':
    main()
