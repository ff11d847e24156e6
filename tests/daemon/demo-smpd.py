#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Demo: smpd driving the simulator on a private bus, polkit mocked to
allow everything.  Claims the device, opens a session, sets parameters,
runs the needle for 3 s printing the Telemetry signal, then tries a depth
the temples do not allow, stops and ends the session.

    SMPD_SOURCE_DIR=. SMPD_BUILD_DIR=build /usr/bin/python3 tests/daemon/demo-smpd.py

With --keep it leaves everything running and prints the bus address, for
busctl --address=ADDR tree org.libsmp.Smp1 and friends (Ctrl-C ends it).
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dbus  # noqa: E402

import smpdtest as T  # noqa: E402


def main():
    tmp = T.new_tmp()
    bus = T.PrivateBus(tmp)
    pk = T.Polkit(bus)
    pk.allow_all()
    T.write_config(os.path.join(tmp, 'conf'))
    sim = T.Sim(tmp)
    smpd = T.Smpd(bus, tmp, sim)
    try:
        print(f'bus: {bus.address}\nstate: {tmp}/state (audit log, key in {tmp}/audit.key)')
        c = T.Client(bus)
        dev = smpd.device_path()
        d = c.dev(dev)
        print('device', dev, c.prop(dev, T.IDEV, 'Model'), c.prop(dev, T.IDEV, 'Serial'))
        d.Claim()
        ses = c.mgr.BeginSession(dev, T.metadata(client='demo-client', zone='temples'))
        print('session', ses, 'cartridge', c.prop(ses, T.ISES, 'CartridgeId'))
        print('applied', dict(d.SetParameters(T.params(voltage=8000, current=1000, rate=12000, depth=800))))
        c.conn.add_signal_receiver(
            lambda s: print(f"  {s['State']:8} {s['Voltage']:5} mV {s['Current']:5} mA "
                            f"{s['StrokeRate'] / 100:6.1f} Hz {s['Depth']:5} um "
                            f"{s['Temperature'] / 100:5.2f} C  ({s['Samples']} records)"),
            'Telemetry', T.IDEV, path=dev)
        d.Start()
        T.pump(3)
        try:
            d.SetParameters(T.params(depth=1400))
        except dbus.exceptions.DBusException as e:
            print('refused:', e.get_dbus_name(), '-', e.get_dbus_message())
        d.Stop()
        if '--keep' in sys.argv:
            print('running; Ctrl-C to end')
            while True:
                T.pump(1)
        c.ses(ses).EndSession()
        d.Release()
    except KeyboardInterrupt:
        pass
    finally:
        smpd.stop()
        sim.stop()
        pk.stop()
        bus.stop()
        if '--keep' not in sys.argv:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
