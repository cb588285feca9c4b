#!/usr/bin/env python3
"""Reads and clicks `corral --tray`'s menu over D-Bus, as a panel does (com.canonical.dbusmenu
on the item's /MenuBar), so a suite can see what the long-running app shows.

Usage: tray_menu.py layout                  print every label, one per line, indented by depth
       tray_menu.py wait TEXT [SECONDS]     wait until a label contains TEXT; print the wait
       tray_menu.py gone TEXT [SECONDS]     wait until no label contains TEXT
       tray_menu.py click TEXT              click the first item whose label contains TEXT
       tray_menu.py time [COUNT]            time GetLayout of the whole menu, COUNT times
       tray_menu.py tooltip                 print the item's tooltip title and description
Exit status 1 when the item is not on the bus or the wait timed out.
"""
import sys
import time

from gi.repository import Gio, GLib

MENU_PATH = "/MenuBar"
ITEM_PATH = "/StatusNotifierItem"
BUS = Gio.bus_get_sync(Gio.BusType.SESSION, None)


def item_name():
    """The newest StatusNotifierItem name on the bus (ksni names it ...-PID-N)."""
    names = BUS.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "ListNames", None, GLib.VariantType("(as)"), 0, -1, None).unpack()[0]
    items = [n for n in names if n.startswith("org.kde.StatusNotifierItem-")]
    if not items:
        return None
    return sorted(items, key=lambda n: [int(p) for p in n.split("-")[1:] if p.isdigit()])[-1]


def layout(name):
    """[(depth, id, label)] of the whole menu."""
    reply = BUS.call_sync(name, MENU_PATH, "com.canonical.dbusmenu", "GetLayout",
                          GLib.Variant("(iias)", (0, -1, [])), GLib.VariantType("(u(ia{sv}av))"),
                          0, 10000, None)
    _, root = reply.unpack()
    items = []

    def walk(node, depth):
        node_id, props, children = node
        if depth > 0:
            items.append((depth, node_id, props.get("label", "")))
        for child in children:
            walk(child, depth + 1)

    walk(root, 0)
    return items


def current():
    name = item_name()
    if name is None:
        return None, []
    try:
        return name, layout(name)
    except GLib.Error:
        return name, []


def wait(text, seconds, present=True):
    start = time.time()
    while time.time() - start < seconds:
        _, items = current()
        found = any(text in label for _, _, label in items)
        if found == present and (items or not present):
            print(f"{(time.time() - start) * 1000:.0f}")
            return 0
        time.sleep(0.2)
    _, items = current()
    print(f"timed out after {seconds} s; the menu: {[label for _, _, label in items]}", file=sys.stderr)
    return 1


def main():
    command = sys.argv[1]
    if command == "layout":
        name, items = current()
        if name is None:
            print("no tray item on the bus", file=sys.stderr)
            return 1
        for depth, _, label in items:
            print("  " * (depth - 1) + label)
        return 0
    if command in ("wait", "gone"):
        seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10
        return wait(sys.argv[2], seconds, present=command == "wait")
    if command == "click":
        name, items = current()
        for _, node_id, label in items:
            if sys.argv[2] in label:
                BUS.call_sync(name, MENU_PATH, "com.canonical.dbusmenu", "Event",
                              GLib.Variant("(isvu)", (node_id, "clicked", GLib.Variant("s", ""), 0)),
                              None, 0, 10000, None)
                return 0
        print(f"no item labelled {sys.argv[2]!r}", file=sys.stderr)
        return 1
    if command == "time":
        count = int(sys.argv[2]) if len(sys.argv) > 2 else 5
        name = item_name()
        took = []
        for _ in range(count):
            start = time.time()
            items = layout(name)
            took.append((time.time() - start) * 1000)
        print(f"{len(items)} items; GetLayout took {min(took):.0f} ms at best, "
              f"{sum(took) / len(took):.0f} ms on average, {max(took):.0f} ms at worst")
        return 0
    if command == "tooltip":
        reply = BUS.call_sync(item_name(), ITEM_PATH, "org.freedesktop.DBus.Properties", "Get",
                              GLib.Variant("(ss)", ("org.kde.StatusNotifierItem", "ToolTip")),
                              GLib.VariantType("(v)"), 0, 10000, None)
        _, _, title, description = reply.unpack()[0]
        print(f"{title}\n{description}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


sys.exit(main())
