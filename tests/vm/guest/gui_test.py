#!/usr/bin/env python3
"""Drives Corral's window through AT-SPI, as a screen reader or a person would, against the
real user manager: picks an app in the launcher, launches it, freezes it and changes its memory
limit from the details view, and checks what the kernel did. Saves screenshots on the way.

Usage: gui_test.py SCREENSHOT_DIR   (DISPLAY and the session bus must be set)
"""
import subprocess
import sys
import time

import pyatspi

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


def screenshot(name):
    path = f"{SHOTS}/{name}.xwd"
    subprocess.run(["xwd", "-root", "-silent", "-out", path], check=False)
    print(f"     screenshot {name}", flush=True)


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


def find_all(root, predicate, limit=2000):
    """Breadth-first search of the accessible tree."""
    found, queue, seen = [], [root], 0
    while queue and seen < limit:
        node = queue.pop(0)
        seen += 1
        try:
            if predicate(node):
                found.append(node)
            queue.extend(node[i] for i in range(node.childCount))
        except Exception:
            continue
    return found


def find(root, role=None, name=None, showing=True):
    def match(node):
        if role is not None and node.getRole() != role:
            return False
        if name is not None and node.name != name:
            return False
        if showing and not node.getState().contains(pyatspi.STATE_SHOWING):
            return False
        return True

    hits = find_all(root, match)
    return hits[0] if hits else None


def click(node):
    action = node.queryAction()
    for i in range(action.nActions):
        if action.getName(i) in ("click", "press", "activate", "toggle"):
            action.doAction(i)
            return
    action.doAction(0)


def corral_app():
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        app = desktop[i]
        if app is not None and app.name in ("corral", "Corral"):
            return app
    return None


def main():
    app = wait_for(corral_app, 60)
    expect("the window is on the accessibility bus", app is not None)
    if app is None:
        return
    window = wait_for(lambda: find(app, pyatspi.ROLE_FRAME, "Corral"))
    expect("the main window is shown", window is not None)

    # The list shows the apps the suite launched with different presets.
    rows_named = lambda name: wait_for(lambda: find(window, pyatspi.ROLE_LIST_ITEM) and [
        r for r in find_all(window, lambda n: n.getRole() == pyatspi.ROLE_LIST_ITEM)
        if r.name.startswith(name + ",")])
    for app_name in ("browsertest", "stricttest", "backgroundtest"):
        expect(f"the list shows {app_name}", rows_named(app_name))
    time.sleep(3)  # a few samples so the sparklines and graphs have history
    screenshot("list")

    # Details of the browser app, with its graphs.
    browser_rows = rows_named("browsertest")
    if browser_rows:
        unit_list = find(window, pyatspi.ROLE_LIST, "Contained apps")
        index = browser_rows[0].getIndexInParent()
        unit_list.querySelection().selectChild(index)
        expect("selecting a row shows its details",
               wait_for(lambda: find(window, pyatspi.ROLE_TOGGLE_BUTTON, "Freeze")))
        time.sleep(4)
        screenshot("details")

    # The launcher: pick the app, see the remembered preset, launch.
    click(find(window, pyatspi.ROLE_PUSH_BUTTON, "Launch an App"))
    dialog = wait_for(lambda: find(app, None, "Launch an App"))
    expect("the launcher opens", dialog is not None)
    if dialog is not None:
        apps_list = wait_for(lambda: find(dialog, pyatspi.ROLE_LIST, "Installed apps"))
        sleeper = wait_for(lambda: find(dialog, pyatspi.ROLE_LIST_ITEM, "Sleeper"))
        expect("the picker lists the installed app", sleeper is not None)
        if apps_list is not None and sleeper is not None:
            apps_list.querySelection().selectChild(sleeper.getIndexInParent())
        time.sleep(1)
        screenshot("launcher")
        click(wait_for(lambda: find(dialog, pyatspi.ROLE_PUSH_BUTTON, "Launch")))
    launched = wait_for(lambda: units("app-corral-org.example.Sleeper-*"), 20)
    expect("launching from the picker starts a unit", launched, sysctl("list-units", "app-corral-*"))
    if not launched:
        return
    unit = launched[0]
    expect("the unit has the remembered preset's memory.max (64M)",
           cgroup_file(unit, "memory.max") == "67108864", cgroup_file(unit, "memory.max"))

    # Freeze it from the details view.
    unit_list = find(window, pyatspi.ROLE_LIST, "Contained apps")
    row = wait_for(lambda: [r for r in find_all(window, lambda n: n.getRole() == pyatspi.ROLE_LIST_ITEM)
                            if r.name.startswith("Sleeper,")])
    expect("the launched app appears in the list", row)
    if not row:
        return
    unit_list.querySelection().selectChild(row[0].getIndexInParent())
    freeze = wait_for(lambda: find(window, pyatspi.ROLE_TOGGLE_BUTTON, "Freeze"))
    click(freeze)
    frozen = wait_for(lambda: "frozen 1" in cgroup_file(unit, "cgroup.events"), 10)
    expect("Freeze in the details view freezes the cgroup (frozen 1)", frozen, cgroup_file(unit, "cgroup.events"))

    # Change its memory limit: the memory max editor shows the current limit, 64M.
    editor = wait_for(lambda: [t for t in find_all(window, lambda n: n.getRole() == pyatspi.ROLE_TEXT)
                               if t.getState().contains(pyatspi.STATE_SHOWING)
                               and t.queryText().getText(0, -1) == "64M"])
    expect("the memory max editor shows the current limit", editor)
    if editor:
        text = editor[0]
        text.queryEditableText().setTextContents("80M")
        text.queryComponent().grabFocus()
        time.sleep(0.3)
        pyatspi.Registry.generateKeyboardEvent(36, None, pyatspi.KEY_PRESSRELEASE)  # Return
        changed = wait_for(lambda: cgroup_file(unit, "memory.max") == "83886080", 10)
        expect("applying 80M changes memory.max at runtime", changed, cgroup_file(unit, "memory.max"))
        time.sleep(1)
        screenshot("details-after-limit")

    # Preferences.
    pyatspi.Registry.generateKeyboardEvent(37, None, pyatspi.KEY_PRESS)  # Control_L
    pyatspi.Registry.generateKeyboardEvent(59, None, pyatspi.KEY_PRESSRELEASE)  # comma
    pyatspi.Registry.generateKeyboardEvent(37, None, pyatspi.KEY_RELEASE)
    prefs = wait_for(lambda: find(app, None, "Preferences"), 10)
    expect("Ctrl+, opens the preferences", prefs is not None)
    time.sleep(1)
    screenshot("preferences")


main()
print(f"\ngui: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
