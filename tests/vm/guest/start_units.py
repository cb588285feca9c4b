#!/usr/bin/env python3
"""Starts transient services named as Corral names its own, straight over D-Bus
(StartTransientUnit), without a process per unit on our side and without Subscribe(): what
Corral then sees of them comes from its own subscription.

Usage: start_units.py [--keep-failed] NAME COUNT [COMMAND...]
  Starts app-corral-NAME<i>-<8 hex>.service for i in 1..COUNT, described as
  "NAME<i> [corral: test]", running COMMAND (default: sleep 600). Prints how long it took.
  Units are collected as soon as they end (as Corral's are), unless --keep-failed: then a
  failed one stays loaded, with its Result, until reset-failed.
"""
import os
import sys
import time

from gi.repository import Gio, GLib

args = sys.argv[1:]
keep_failed = args[:1] == ["--keep-failed"]
if keep_failed:
    args = args[1:]
name, count = args[0], int(args[1])
command = args[2:] or ["/bin/sleep", "600"]
bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
start = time.time()
for i in range(1, count + 1):
    unit = f"app-corral-{name}{i}-{os.urandom(4).hex()}.service"
    properties = [
        ("Description", GLib.Variant("s", f"{name}{i} [corral: test]")),
        ("ExecStart", GLib.Variant("a(sasb)", [(command[0], command, False)])),
    ]
    if not keep_failed:
        properties.append(("CollectMode", GLib.Variant("s", "inactive-or-failed")))
    bus.call_sync("org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                  "org.freedesktop.systemd1.Manager", "StartTransientUnit",
                  GLib.Variant("(ssa(sv)a(sa(sv)))", (unit, "fail", properties, [])),
                  None, 0, 30000, None)
print(f"started {count} units in {time.time() - start:.1f} s")
