#!/usr/bin/env python3
"""Drives Corral's window through AT-SPI, as a screen reader or a person would, against the
real user manager: picks an app in the launcher, launches it, freezes it and changes its memory
limit from the details view, and checks what the kernel did. Saves screenshots on the way.

Usage: gui_test.py SCREENSHOT_DIR   (DISPLAY and the session bus must be set)
"""
import subprocess
import sys
import time

from gi.repository import GLib

import atspi
from atspi import (ATSPI, ROLE_LABEL, ROLE_LIST_ITEM, ROLE_PUSH_BUTTON, ROLE_TABLE_ROW, ROLE_TEXT,
                   ROLE_TOGGLE_BUTTON, STATE_FOCUSED, Node, corral_app, find, find_all,
                   screenshot_when_drawn, toplevel)

SHOTS = sys.argv[1]
passed = 0
failed = 0


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
    """Polls `what()` until it returns something truthy."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = what()
        except Exception:  # the tree changes under us while the window updates
            value = None
        if value:
            return value
        time.sleep(0.2)
    return None


def screenshot(name, window=None):
    """The whole screen, or the toplevel window of that title (a dialog that has no window
    manager to stack it may not show in the root window's picture), once it is drawn."""
    drawn = screenshot_when_drawn(f"{SHOTS}/{name}.xwd", window)
    print(f"     screenshot {name}{'' if drawn else ' (still changing after 20 s)'}", flush=True)


def sysctl(*args):
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True).stdout.strip()


def cgroup_file(unit, name):
    cg = sysctl("show", "-p", "ControlGroup", "--value", unit)
    try:
        with open(f"/sys/fs/cgroup{cg}/{name}") as f:
            return f.read().strip()
    except OSError as e:
        return f"unreadable: {e}"


def units(glob):
    out = sysctl("list-units", "--plain", "--no-legend", glob)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def dump(root, limit=400):
    """Prints the accessible tree, to see why something was not found."""
    for node in find_all(root, lambda n: True, limit):
        try:
            print(f"     role={node.role()} showing={node.showing()} name={node.name!r}", flush=True)
        except GLib.Error:
            pass


def click(node):
    node.call("Action", "DoAction", GLib.Variant("(i)", (0,)), "(b)")


def parent(node):
    bus_name, path = node.prop("Accessible", "Parent")
    return Node(bus_name, path)


def select(item):
    """Selects a list row through its list's Selection interface."""
    parent(item).call("Selection", "SelectChild", GLib.Variant("(i)", (item.index(),)), "(b)")


def key(keycode, kind):
    """kind: 0 press, 1 release, 2 press and release (the registry sends it through XTest)."""
    BUS.call_sync("org.a11y.atspi.Registry", "/org/a11y/atspi/registry/deviceeventcontroller",
                  ATSPI + "DeviceEventController", "GenerateKeyboardEvent",
                  GLib.Variant("(isu)", (keycode, "", kind)), None, 0, 5000, None)


def main():
    global BUS
    BUS = atspi.connect()
    app = wait_for(corral_app, 60)
    expect("the window is on the accessibility bus", app is not None)
    if app is None:
        return
    window = wait_for(lambda: toplevel(app, "Corral"))
    expect("the main window is shown", window is not None)

    # The list shows the apps the suite launched with different presets, one table row each,
    # under headers that say what each figure is.
    def rows_named(name):
        return wait_for(lambda: [r for r in find_all(window, lambda n: n.role() == ROLE_TABLE_ROW)
                                 if r.name.startswith(name + ",")])
    for app_name in ("browsertest", "stricttest", "backgroundtest"):
        expect(f"the list shows {app_name}", rows_named(app_name))
    table = find(window, None, "Contained apps")  # the column view, headers and rows
    headers = [h for h in ("App", "Memory", "CPU", "Tasks", "Pressure")
               if table is not None and find(table, ROLE_LABEL, h) is not None]
    expect("the list has the headers App, Memory, CPU, Tasks and Pressure",
           len(headers) == 5, f"found only {headers}")
    # Not a wait for anything: three samples of history, for the sparklines in the picture.
    time.sleep(3)
    screenshot("list")

    # Details of the browser app, with its graphs.
    browser_rows = rows_named("browsertest")
    if browser_rows:
        select(browser_rows[0])
        shown = wait_for(lambda: find_all(window, lambda n: n.role() == ROLE_LABEL
                                          and "preset browser" in n.name))
        expect("selecting a row shows its details", shown)
        if not shown:
            dump(window)
        screenshot("details")

    # The launcher: pick the app, see the remembered preset, launch.
    click(find(window, ROLE_PUSH_BUTTON, "Launch an App"))
    dialog = wait_for(lambda: toplevel(app, "Launch an App"))
    expect("the launcher opens", dialog is not None)
    if dialog is not None:
        sleeper = wait_for(lambda: find(dialog, ROLE_LIST_ITEM, "Sleeper"))
        expect("the picker lists the installed app", sleeper is not None)
        if sleeper is not None:
            select(sleeper)
        screenshot("launcher", "Launch an App")
        click(wait_for(lambda: find(dialog, ROLE_PUSH_BUTTON, "Launch")))
    launched = wait_for(lambda: units("app-corral-org.example.Sleeper-*"), 20)
    expect("launching from the picker starts a unit", launched, sysctl("list-units", "app-corral-*"))
    if not launched:
        return
    unit = launched[0]
    expect("the unit has the remembered preset's memory.max (64M)",
           cgroup_file(unit, "memory.max") == "67108864", cgroup_file(unit, "memory.max"))

    # Freeze it from the details view.
    row = rows_named("Sleeper")
    expect("the launched app appears in the list", row)
    if not row:
        return
    select(row[0])
    freeze = wait_for(lambda: find(window, ROLE_TOGGLE_BUTTON, "Freeze"))
    click(freeze)
    frozen = wait_for(lambda: "frozen 1" in cgroup_file(unit, "cgroup.events"), 10)
    expect("Freeze in the details view freezes the cgroup (frozen 1)", frozen, cgroup_file(unit, "cgroup.events"))

    # Change its memory limit in the "Memory max" editor, as a person does: click into it,
    # select all, type the new size, press Enter.
    editor = wait_for(lambda: find(window, ROLE_TEXT, "Memory max (killed above)"))
    expect("the memory max editor is found", editor is not None)
    if editor is None:
        dump(window)
    else:
        # Focus it (GTK scrolls a focused row into view), else click where it is shown.
        x = y = w = h = 0
        try:
            focused = editor.call("Component", "GrabFocus", None, "(b)")[0]
        except GLib.Error as e:
            focused = False
            print(f"     GrabFocus failed: {e}", flush=True)
        if not focused:
            # GTK 4.8 cannot focus through AT-SPI: scroll the details down with the mouse
            # wheel until the row is on screen, then click into it.
            for _ in range(10):
                BUS.call_sync("org.a11y.atspi.Registry", "/org/a11y/atspi/registry/deviceeventcontroller",
                              ATSPI + "DeviceEventController", "GenerateMouseEvent",
                              GLib.Variant("(iis)", (830, 400, "b5c")), None, 0, 5000, None)
                time.sleep(0.2)  # one wheel step at a time, as a hand turns it
            # Scrolled far enough once the row is on the screen.
            wait_for(lambda: 0 < editor.call("Component", "GetExtents", GLib.Variant("(u)", (0,)),
                                             "((iiii))")[0][1] < 800, 10)
            x, y, w, h = editor.call("Component", "GetExtents", GLib.Variant("(u)", (0,)), "((iiii))")[0]
            BUS.call_sync("org.a11y.atspi.Registry", "/org/a11y/atspi/registry/deviceeventcontroller",
                          ATSPI + "DeviceEventController", "GenerateMouseEvent",
                          GLib.Variant("(iis)", (x + w // 2, y + h // 2, "b1c")), None, 0, 5000, None)
        wait_for(lambda: editor.has_state(STATE_FOCUSED), 10)
        key(37, 0)  # Control_L
        key(38, 2)  # a: select all
        key(37, 1)
        BUS.call_sync("org.a11y.atspi.Registry", "/org/a11y/atspi/registry/deviceeventcontroller",
                      ATSPI + "DeviceEventController", "GenerateKeyboardEvent",
                      GLib.Variant("(isu)", (0, "80M", 4)), None, 0, 5000, None)  # type a string
        wait_for(lambda: editor.text() == "80M", 10)
        key(36, 2)  # Return applies the row
        changed = wait_for(lambda: cgroup_file(unit, "memory.max") == "83886080", 10)
        expect("typing 80M into the editor changes memory.max at runtime", changed,
               f"memory.max={cgroup_file(unit, 'memory.max')} focused={focused} extents={(x, y, w, h)}")
        screenshot("details-after-limit")

    # Preferences.
    key(37, 0)  # Control_L
    key(59, 2)  # comma
    key(37, 1)
    asked = time.time()
    prefs = wait_for(lambda: toplevel(app, "Preferences"), 10)
    print(f"     preferences shown after {time.time() - asked:.1f} s", flush=True)
    expect("Ctrl+, opens the preferences", prefs is not None)
    screenshot("preferences", "Preferences")

    # The events: the OOM kill gui.sh caused, as a post-mortem row.
    key(9, 2)  # Escape closes the preferences
    wait_for(lambda: toplevel(app, "Preferences") is None and "closed", 10)
    key(37, 0)  # Control_L
    key(26, 2)  # e
    key(37, 1)
    asked = time.time()
    events = wait_for(lambda: toplevel(app, "Events"), 10)
    print(f"     events shown after {time.time() - asked:.1f} s", flush=True)
    expect("Ctrl+E opens the events", events is not None)
    if events is not None:
        killed = wait_for(lambda: find_all(events, lambda n: n.name.startswith(
            "OomTest killed by the OOM killer at its 32 MiB limit")), 10)
        expect("the events show the OOM-killed app's post-mortem", killed)
        if not killed:
            dump(events)
        screenshot("events", "Events")


main()
print(f"\ngui: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
