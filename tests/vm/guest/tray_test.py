#!/usr/bin/env python3
"""Clicks Corral's tray menu over D-Bus as a panel does, against the real user manager: finds
the item through the StatusNotifierWatcher, reads its properties and its dbusmenu layout, sends
`Event` clicks on Frozen, a memory limit, a CPU limit and Kill (confirmed in its submenu), and
checks the kernel's files
and systemd's units after each; then Open Corral, and the window on the accessibility bus.

Usage: tray_test.py SCREENSHOT_DIR
"""
import os
import subprocess
import sys
import time

from gi.repository import Gio, GLib

import atspi
from atspi import read

SHOTS = sys.argv[1]

passed = 0
failed = 0
BUS = Gio.bus_get_sync(Gio.BusType.SESSION, None)


def ok(name):
    global passed
    passed += 1
    print(f"ok   {name}", flush=True)


def not_ok(name, detail=""):
    global failed
    failed += 1
    print(f"FAIL {name}", flush=True)
    if detail:
        print(f"     {detail}", flush=True)


def expect(name, condition, detail=""):
    ok(name) if condition else not_ok(name, detail)


def wait_for(what, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = what()
        except GLib.Error:
            value = None
        if value:
            return value
        time.sleep(0.2)
    return None


def sysctl(*args):
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True).stdout.strip()


def unit_of(name):
    out = sysctl("list-units", "--plain", "--no-legend", f"app-corral-{name}-*")
    return out.split()[0] if out else None


def cgroup_file(unit, name):
    cg = sysctl("show", "-p", "ControlGroup", "--value", unit)
    try:
        with open(f"/sys/fs/cgroup{cg}/{name}") as f:
            return f.read().strip()
    except OSError as e:
        return f"unreadable: {e}"


def get(dest, path, iface, prop):
    reply = BUS.call_sync(dest, path, "org.freedesktop.DBus.Properties", "Get",
                          GLib.Variant("(ss)", (iface, prop)), GLib.VariantType("(v)"), 0, 5000, None)
    return reply.unpack()[0]


def registered_item():
    items = get("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher",
                "org.kde.StatusNotifierWatcher", "RegisteredStatusNotifierItems")
    return items[0] if items else None


class Menu:
    def __init__(self, dest, path):
        self.dest, self.path = dest, path

    def layout(self):
        reply = BUS.call_sync(self.dest, self.path, "com.canonical.dbusmenu", "GetLayout",
                              GLib.Variant("(iias)", (0, -1, [])), GLib.VariantType("(u(ia{sv}av))"),
                              0, 5000, None)
        return reply.unpack()[1]

    def click(self, item_id):
        BUS.call_sync(self.dest, self.path, "com.canonical.dbusmenu", "Event",
                      GLib.Variant("(isvu)", (item_id, "clicked", GLib.Variant("i", 0), int(time.time()))),
                      None, 0, 5000, None)


def label(node):
    return node[1].get("label", "")


def child(node, text, prefix=False):
    """The child item of a layout node whose label is `text` (or starts with it)."""
    for c in node[2]:
        if label(c) == text or (prefix and label(c).startswith(text)):
            return c
    return None


def find_path(menu, *labels):
    """Walks the live layout down the given labels (the first matched as a prefix)."""
    node = menu.layout()
    for i, text in enumerate(labels):
        node = child(node, text, prefix=(i == 0))
        if node is None:
            return None
    return node


def walk(menu, *labels):
    """Walks the live layout down labels, each matched as a prefix."""
    node = menu.layout()
    for text in labels:
        node = child(node, text, prefix=True)
        if node is None:
            return None
    return node


def check_keep_as_rule(menu, unit):
    """Memory limit > Keep as Rule for This App > 50 % of RAM: the rule is in config.toml, its
    drop-in is written, and the running instance has the limit."""
    item = walk(menu, "traytarget", "Memory limit", "Keep as Rule for This App", "50 % of RAM")
    expect("the memory submenu offers Keep as Rule for This App", item is not None,
           walk(menu, "traytarget", "Memory limit"))
    if item is None:
        return
    menu.click(item[0])
    home = os.path.expanduser("~")
    config = f"{home}/.config/corral/config.toml"
    kept = wait_for(lambda: "[apps.traytarget]" in read(config) and 'memory-max = "50%"' in read(config), 15)
    expect("choosing 50 % of RAM there keeps it as the app's rule in config.toml", kept, read(config))
    dropin = f"{home}/.config/systemd/user/app-corral-traytarget-.service.d/40-corral.conf"
    expect("and writes the rule's drop-in", wait_for(lambda: "MemoryMax=" in read(dropin), 15), read(dropin))
    with open("/proc/meminfo") as f:
        total = int(f.readline().split()[1]) * 1024

    def half():
        value = cgroup_file(unit, "memory.max")
        return value.isdigit() and abs(int(value) - total // 2) <= total // 100
    expect("and the running instance gets it (memory.max at half the RAM)", wait_for(half, 15),
           f"memory.max={cgroup_file(unit, 'memory.max')} RAM={total}")


def main():
    item = wait_for(registered_item, 30)
    expect("corral --tray registers with the StatusNotifierWatcher", item is not None)
    if item is None:
        return
    dest, _, path = item.partition("/")
    path = "/" + path if path else "/StatusNotifierItem"
    sni = "org.kde.StatusNotifierItem"
    expect("the item's title is Corral", get(dest, path, sni, "Title") == "Corral", get(dest, path, sni, "Title"))
    expect("the item's icon is Corral's", "corral" in get(dest, path, sni, "IconName").lower(),
           get(dest, path, sni, "IconName"))
    count = len(sysctl("list-units", "--plain", "--no-legend", "app-corral-*").splitlines())
    tooltip = wait_for(lambda: f"{count} contained apps" in get(dest, path, sni, "ToolTip")[2]
                       and get(dest, path, sni, "ToolTip"), 10)
    expect("the tooltip sums up the contained apps", tooltip, get(dest, path, sni, "ToolTip"))
    expect("the status is Active without alerts", get(dest, path, sni, "Status") == "Active",
           get(dest, path, sni, "Status"))

    menu = Menu(dest, get(dest, path, sni, "Menu"))
    unit = unit_of("traytarget")
    expect("the suite's app runs in its unit", unit is not None, sysctl("list-units", "app-corral-*"))
    if unit is None:
        return
    expect("a submenu per contained app",
           wait_for(lambda: find_path(menu, "traytarget") and find_path(menu, "trayother"), 10),
           [label(c) for c in menu.layout()[2]])

    frozen = find_path(menu, "traytarget", "Frozen")
    expect("the app's submenu has Frozen", frozen is not None)
    if frozen is not None:
        menu.click(frozen[0])
        expect("clicking Frozen freezes the cgroup (frozen 1)",
               wait_for(lambda: "frozen 1" in cgroup_file(unit, "cgroup.events"), 10),
               cgroup_file(unit, "cgroup.events"))
        checked = wait_for(lambda: find_path(menu, "traytarget", "Frozen")[1].get("toggle-state") == 1, 10)
        expect("the Frozen item is then checked", checked)
        menu.click(find_path(menu, "traytarget", "Frozen")[0])
        expect("clicking it again thaws the cgroup (frozen 0)",
               wait_for(lambda: "frozen 0" in cgroup_file(unit, "cgroup.events"), 10),
               cgroup_file(unit, "cgroup.events"))

    gib = find_path(menu, "traytarget", "Memory limit", "1.0 GiB")
    expect("the memory submenu offers 1.0 GiB", gib is not None,
           find_path(menu, "traytarget", "Memory limit"))
    if gib is not None:
        menu.click(gib[0])
        expect("choosing 1.0 GiB sets memory.max to 1073741824",
               wait_for(lambda: cgroup_file(unit, "memory.max") == "1073741824", 10),
               cgroup_file(unit, "memory.max"))
        selected = wait_for(lambda: find_path(menu, "traytarget", "Memory limit", "1.0 GiB")[1]
                            .get("toggle-state") == 1, 10)
        expect("and the 1.0 GiB radio item is then selected", selected)

    half = find_path(menu, "traytarget", "CPU limit", "50 %")
    expect("the CPU submenu offers 50 %", half is not None)
    if half is not None:
        menu.click(half[0])
        expect("choosing 50 % sets cpu.max to 50000 100000",
               wait_for(lambda: cgroup_file(unit, "cpu.max") == "50000 100000", 10),
               cgroup_file(unit, "cpu.max"))

    check_keep_as_rule(menu, unit)

    kill = find_path(menu, "traytarget", "Kill…", "Kill traytarget Now")
    expect("the app's submenu has Kill…, confirmed by a Kill traytarget Now item", kill is not None,
           find_path(menu, "traytarget"))
    if kill is not None:
        menu.click(kill[0])
        expect("clicking Kill ends the unit", wait_for(lambda: unit_of("traytarget") is None, 15),
               sysctl("status", unit or "?"))
        expect("and its submenu goes away", wait_for(lambda: find_path(menu, "traytarget") is None, 10),
               [label(c) for c in menu.layout()[2]])
        expect("the other app is untouched", unit_of("trayother") is not None)

    # Open Corral: the window, built only now (the tray showed alone until then), lists the apps
    # as soon as it is shown.
    opener = find_path(menu, "Open Corral")
    expect("the menu has Open Corral", opener is not None)
    if opener is None:
        return
    menu.click(opener[0])
    atspi.connect()
    app = wait_for(atspi.corral_app, 30)
    window = app and wait_for(lambda: atspi.toplevel(app, "Corral"), 20)
    expect("Open Corral shows the window", window)
    if not window:
        return
    rows = wait_for(lambda: [r for r in atspi.find_all(window, lambda n: n.role() == atspi.ROLE_TABLE_ROW)
                             if r.name.startswith("trayother,")], 20)
    expect("the window lists the running app", rows)
    atspi.screenshot_when_drawn(f"{SHOTS}/tray-window.xwd", "Corral")
    print("     screenshot tray-window", flush=True)


main()
print(f"\ntray: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
