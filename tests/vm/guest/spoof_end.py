#!/usr/bin/env python3
"""Pretends to be systemd on the system bus: broadcasts, from this (unprivileged) process,
the PropertiesChanged signal with which systemd announces that a unit became inactive, as any
user may broadcast signals on the system bus (dbus's default policy allows it).

Usage: spoof_end.py UNIT [COUNT]   (COUNT signals, 0.1 s apart; default 20)
"""
import sys
import time

from gi.repository import Gio, GLib


def object_path(unit):
    """systemd's object path of a unit: every byte other than [A-Za-z0-9] as _XX."""
    return "/org/freedesktop/systemd1/unit/" + "".join(
        c if c.isascii() and c.isalnum() else "_%02x" % b
        for c, b in ((chr(b), b) for b in unit.encode()))


def main():
    unit = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    changed = GLib.Variant("(sa{sv}as)", ("org.freedesktop.systemd1.Unit", {
        "ActiveState": GLib.Variant("s", "inactive"),
        "SubState": GLib.Variant("s", "dead"),
    }, []))
    for _ in range(count):
        bus.emit_signal(None, object_path(unit), "org.freedesktop.DBus.Properties",
                        "PropertiesChanged", changed)
        bus.flush_sync(None)
        time.sleep(0.1)
    print(f"sent {count} false ends of {unit} as {bus.get_unique_name()}", flush=True)


main()
