#!/usr/bin/env python3
"""A small AT-SPI client for the guest suites that drive Corral's window (gui_test.py,
tray_test.py): the accessibility bus, accessible objects, searches of their tree, and Corral's
own root. `connect()` first."""
from gi.repository import Gio, GLib

# A small AT-SPI client speaking the protocol over D-Bus directly. GTK 4.8 does not implement
# the Cache interface that bookworm's libatspi asks every app for, so pyatspi's desktop never
# lists GTK 4 apps; the per-object interfaces below are what a screen reader uses anyway.
ATSPI = "org.a11y.atspi."
ROLE_FRAME, ROLE_LIST, ROLE_LIST_ITEM = 23, 31, 32
# The unit list is a GtkColumnView: its rows are table rows.
ROLE_TABLE_ROW = 90
ROLE_LABEL, ROLE_PUSH_BUTTON, ROLE_DIALOG = 29, 43, 16
ROLE_TEXT, ROLE_ENTRY = 61, 79  # GTK 4.8 shows entries as "entry"
# GTK 4.8 gives toggle buttons the push-button role.
ROLE_TOGGLE_BUTTON = ROLE_PUSH_BUTTON
STATE_FOCUSED, STATE_SHOWING = 12, 25


def a11y_bus():
    session = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    reply = session.call_sync("org.a11y.Bus", "/org/a11y/bus", "org.a11y.Bus", "GetAddress",
                              None, GLib.VariantType("(s)"), 0, -1, None)
    address = reply.unpack()[0]
    return Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)


BUS = None


def connect():
    """Connects to the accessibility bus, for every call here; returns the connection."""
    global BUS
    BUS = a11y_bus()
    return BUS


class Node:
    def __init__(self, name, path):
        self.bus_name, self.path = name, path

    def call(self, iface, method, args=None, reply=None):
        result = BUS.call_sync(self.bus_name, self.path, ATSPI + iface, method, args,
                               GLib.VariantType(reply) if reply else None, 0, 5000, None)
        return result.unpack() if result is not None else None

    def prop(self, iface, name):
        result = BUS.call_sync(self.bus_name, self.path, "org.freedesktop.DBus.Properties", "Get",
                               GLib.Variant("(ss)", (ATSPI + iface, name)), GLib.VariantType("(v)"),
                               0, 5000, None)
        return result.unpack()[0]

    @property
    def name(self):
        return self.prop("Accessible", "Name")

    def role(self):
        return self.call("Accessible", "GetRole", None, "(u)")[0]

    def children(self):
        return [Node(n, p) for (n, p) in self.call("Accessible", "GetChildren", None, "(a(so))")[0]]

    def index(self):
        return self.call("Accessible", "GetIndexInParent", None, "(i)")[0]

    def has_state(self, state):
        states = self.call("Accessible", "GetState", None, "(au)")[0]
        return bool(states[state // 32] & (1 << (state % 32)))

    def showing(self):
        return self.has_state(STATE_SHOWING)

    def text(self):
        return self.call("Text", "GetText", GLib.Variant("(ii)", (0, -1)), "(s)")[0]

    def __eq__(self, other):
        return (self.bus_name, self.path) == (other.bus_name, other.path)


def find_all(root, predicate, limit=3000):
    """Breadth-first search of the accessible tree."""
    found, queue, seen = [], [root], 0
    while queue and seen < limit:
        node = queue.pop(0)
        seen += 1
        try:
            if predicate(node):
                found.append(node)
            queue.extend(node.children())
        except GLib.Error:
            continue  # the tree changes under us while the window updates
    return found


def find(root, role=None, name=None, showing=False):
    def match(node):
        if role is not None and node.role() != role:
            return False
        if name is not None and node.name != name:
            return False
        return not showing or node.showing()

    hits = find_all(root, match)
    return hits[0] if hits else None


def toplevel(app, name):
    """The app's window or dialog called `name`. Windows are the app root's children: looking
    only there is quick, where a search of the whole tree takes seconds in the guest."""
    for node in app.children():
        if node.name == name and node.role() in (ROLE_FRAME, ROLE_DIALOG):
            return node
    return None


def corral_app():
    """Corral's root on the accessibility bus, found by its process name."""
    names = BUS.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "ListNames", None, GLib.VariantType("(as)"), 0, -1, None).unpack()[0]
    for bus_name in names:
        if not bus_name.startswith(":"):
            continue
        root = Node(bus_name, "/org/a11y/atspi/accessible/root")
        try:
            if root.name in ("corral", "Corral"):
                return root
        except GLib.Error:
            continue
    return None


def read(path):
    """A file's text, or why it could not be read (for a failed check's message)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return f"unreadable: {e}"


def screenshot_when_drawn(path, window=None, timeout=20.0):
    """Saves an xwd picture of the window of that title (or the whole screen) once it is drawn:
    two pictures taken in a row are the same and not empty (a window's first frames are slow
    under emulation). Returns whether it settled within `timeout` s; the last picture is kept
    either way."""
    import os
    import subprocess
    import time
    where = ["-name", window] if window else ["-root"]
    previous = None
    end = time.time() + timeout
    while True:
        subprocess.run(["xwd", *where, "-silent", "-out", path], check=False)
        try:
            with open(path, "rb") as f:
                picture = f.read()
        except OSError:
            picture = None
        if picture and picture == previous:
            return True
        if time.time() > end:
            return False
        previous = picture
        time.sleep(0.3)
