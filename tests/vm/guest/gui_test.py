#!/usr/bin/env python3
"""Drives Corral's window through AT-SPI, as a screen reader or a person would, against the
real user manager: picks an app in the launcher, launches it, freezes it and changes its memory
limit from the details view, and checks what the kernel did. Saves screenshots on the way.

Usage: gui_test.py SCREENSHOT_DIR   (DISPLAY and the session bus must be set)
"""
import os
import subprocess
import sys
import time

from gi.repository import GLib

import atspi
from atspi import (ATSPI, ROLE_LABEL, ROLE_LIST_ITEM, ROLE_PUSH_BUTTON, ROLE_TABLE_ROW, ROLE_TEXT,
                   ROLE_TOGGLE_BUTTON, STATE_FOCUSED, Node, corral_app, find, find_all,
                   read, screenshot_when_drawn, toplevel)

SHOTS = sys.argv[1]
HOME = os.path.expanduser("~")
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


def extents(node):
    return node.call("Component", "GetExtents", GLib.Variant("(u)", (0,)), "((iiii))")[0]


def click_at(node):
    """A mouse click in the middle of `node` (GTK 4.8 cannot focus through AT-SPI)."""
    x, y, w, h = extents(node)
    BUS.call_sync("org.a11y.atspi.Registry", "/org/a11y/atspi/registry/deviceeventcontroller",
                  ATSPI + "DeviceEventController", "GenerateMouseEvent",
                  GLib.Variant("(iis)", (x + w // 2, y + h // 2, "b1c")), None, 0, 5000, None)


def type_text(text):
    BUS.call_sync("org.a11y.atspi.Registry", "/org/a11y/atspi/registry/deviceeventcontroller",
                  ATSPI + "DeviceEventController", "GenerateKeyboardEvent",
                  GLib.Variant("(isu)", (0, text, 4)), None, 0, 5000, None)


def scroll_details(steps=25, up=False):
    """Turns the mouse wheel over the details until their last sections show (or the first)."""
    for _ in range(steps):
        BUS.call_sync("org.a11y.atspi.Registry", "/org/a11y/atspi/registry/deviceeventcontroller",
                      ATSPI + "DeviceEventController", "GenerateMouseEvent",
                      GLib.Variant("(iis)", (830, 400, "b4c" if up else "b5c")), None, 0, 5000, None)
        time.sleep(0.1)


def click_label(root, text):
    """Clicks the button that shows `text`: GTK 4.8 names a button for AT-SPI only when it is
    told to, which libadwaita's dialog responses and view switcher buttons are not."""
    # 62: a toggle button; 37: a page tab (a view switcher's button).
    buttons = (ROLE_PUSH_BUTTON, 62, 37)
    tab = find(root, 37, text)
    if tab is not None:
        click(tab)
        return True
    for label in find_all(root, lambda n: n.name == text and n.role() not in buttons):
        node = label
        for _ in range(5):
            node = parent(node)
            if node.role() in buttons:
                click(node)
                return True
    # Or a button named as it shows after all.
    button = find(root, ROLE_PUSH_BUTTON, text)
    if button is not None:
        click(button)
        return True
    return False


def unit_described(glob, words):
    for unit in units(glob):
        if words in sysctl("show", "-p", "Description", "--value", unit):
            return unit
    return None


def check_rule_from_details(app, window, unit):
    """'Limit This App Everywhere…' in the Sleeper's details: the dialog, prefilled with its
    limits, saves a rule whose drop-in reaches the running instance."""
    button = wait_for(lambda: find(window, ROLE_PUSH_BUTTON, "Limit This App Everywhere…"))
    expect("the details offer Limit This App Everywhere…", button is not None)
    if button is None:
        dump(window)
        return
    click(button)
    dialog = wait_for(lambda: toplevel(app, "Limit Sleeper Everywhere"), 10)
    expect("it opens the rule dialog", dialog is not None)
    if dialog is None:
        return
    editor = wait_for(lambda: find(dialog, ROLE_TEXT, "Memory max (killed above)"), 10)
    expect("the dialog has the memory max field", editor is not None)
    if editor is None:
        dump(dialog)
        return
    screenshot("rule-dialog", "Limit Sleeper Everywhere")
    if not wait_for(lambda: editor.has_state(STATE_FOCUSED), 3):
        click_at(editor)
        wait_for(lambda: editor.has_state(STATE_FOCUSED), 10)
    key(37, 0)  # Control_L
    key(38, 2)  # a: select all
    key(37, 1)
    type_text("96M")
    wait_for(lambda: editor.text() == "96M", 10)
    key(36, 2)  # Return: the dialog's default response, Save Rule
    if not wait_for(lambda: toplevel(app, "Limit Sleeper Everywhere") is None and "closed", 5):
        save = find(dialog, ROLE_PUSH_BUTTON, "Save Rule")
        print(f"     Return did not save (field: {editor.text()!r}); Save Rule button: {save}", flush=True)
        if save is not None:
            click(save)
        else:
            dump(dialog)
    dropin = f"{HOME}/.config/systemd/user/app-corral-org.example.Sleeper-.service.d/40-corral.conf"
    written = wait_for(lambda: "MemoryMax=100663296" in read(dropin), 15)
    expect("saving writes the rule's drop-in (MemoryMax=100663296)", written, read(dropin))
    # GTK 4.8 gives AT-SPI no text of an entry that was not typed into: the prefill shows in
    # what was saved without being typed, the unit's soft limit.
    expect("with the unit's other limits, as the dialog was prefilled (MemoryHigh=48M)",
           "MemoryHigh=50331648" in read(dropin), read(dropin))
    changed = wait_for(lambda: cgroup_file(unit, "memory.max") == "100663296", 15)
    expect("and the running instance's memory.max becomes 96M (100663296)", changed,
           cgroup_file(unit, "memory.max"))
    said = wait_for(lambda: find_all(window, lambda n: n.role() == ROLE_LABEL
                                     and n.name.startswith("Rule for org.example.Sleeper")), 15)
    expect("the details then say which rule applies", said)
    scroll_details()
    screenshot("details-rule")
    scroll_details(up=True)  # back to the top, where the next steps expect the details


def check_processes(app, window):
    """The details of a unit of several processes list them (as its cgroup.procs has them), and
    Contain… moves one into a scope of its own."""
    unit = unit_described("app-corral-multitest-*", "multitest")
    expect("the multi-process app runs", unit is not None, sysctl("list-units", "app-corral-*"))
    if unit is None:
        return
    rows = wait_for(lambda: [r for r in find_all(window, lambda n: n.role() == ROLE_TABLE_ROW)
                             if r.name.startswith("multitest,")])
    if not rows:
        not_ok("the multi-process app is listed")
        return
    select(rows[0])
    procs = sorted(cgroup_file(unit, "cgroup.procs").split())

    def shown():
        pids = [n.name.split()[1] for n in find_all(window, lambda n: n.role() == ROLE_LABEL
                                                    and n.name.startswith("PID "))]
        return sorted(pids) if sorted(pids) == procs else None
    listed = wait_for(shown, 15)
    expect(f"the details list the unit's {len(procs)} processes by PID", listed,
           f"cgroup.procs={procs} labels={[n.name for n in find_all(window, lambda n: n.role() == ROLE_LABEL and n.name.startswith('PID '))]}")
    expect("each names its command", wait_for(lambda: find(window, ROLE_LABEL, "sleep 601"), 10))
    scroll_details()
    time.sleep(2)  # a second reading, for the CPU figures
    screenshot("details-processes")
    contain = [b for b in find_all(window, lambda n: n.role() == ROLE_PUSH_BUTTON and n.name == "Contain…")]
    expect("a unit of several processes offers Contain… per process", len(contain) == len(procs),
           f"{len(contain)} buttons")
    if not contain:
        return
    before = set(units("app-corral-*"))
    click(contain[-1])
    dialog = wait_for(lambda: next((c for c in app.children() if c.name.startswith("Contain Process")), None), 10)
    expect("Contain… asks for a preset", dialog is not None)
    if dialog is None:
        return
    screenshot("contain-dialog", dialog.name)
    clicked = click_label(dialog, "Contain")
    if not clicked:
        dump(dialog, 100)
        key(36, 2)  # Return: the dialog's default response
    expect("the dialog's Contain is clicked", clicked)
    new = wait_for(lambda: [u for u in units("app-corral-*") if u not in before and u.endswith(".scope")], 15)
    expect("and moves the process into a scope of its own", new, sysctl("list-units", "app-corral-*"))
    if new:
        moved = cgroup_file(new[0], "cgroup.procs").split()
        expect("the scope holds one of the app's processes", moved and set(moved) <= set(procs),
               f"{moved} of {procs}")


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
    budget = wait_for(lambda: find_all(window, lambda n: n.role() == ROLE_LABEL
                                       and n.name.startswith("All apps: ") and "budget" in n.name), 15)
    expect("the window shows all apps' memory against the budget", budget)
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

    # A rule for it from its details, then freeze it there.
    row = rows_named("Sleeper")
    expect("the launched app appears in the list", row)
    if not row:
        return
    select(row[0])
    check_rule_from_details(app, window, unit)
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
    if prefs is not None:
        soft = wait_for(lambda: find(prefs, ROLE_TEXT, "Soft limit (all apps slow down above)"), 10)
        expect("General has the budget of all apps", soft is not None)
    # Once its page is there: taken at once, the picture could settle on what lay under the
    # window before it was drawn.
    screenshot("preferences", "Preferences")
    if prefs is not None:
        page = wait_for(lambda: click_label(prefs, "Rules"), 10)
        expect("the preferences have a Rules page", page)
        if not page:
            dump(prefs, 150)
        if page:
            listed = wait_for(lambda: find(prefs, ROLE_LABEL, "org.example.Sleeper"), 10)
            expect("it lists the rule made from the details", listed)
            expect("with Edit and Remove",
                   find(prefs, ROLE_PUSH_BUTTON, "Edit the rule for org.example.Sleeper")
                   and find(prefs, ROLE_PUSH_BUTTON, "Remove the rule for org.example.Sleeper"))
            screenshot("preferences-rules", "Preferences")

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
        key(9, 2)  # Escape closes the events
        wait_for(lambda: toplevel(app, "Events") is None and "closed", 10)

    check_processes(app, window)


main()
print(f"\ngui: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
