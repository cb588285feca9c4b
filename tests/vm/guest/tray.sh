#!/bin/bash
# `corral --tray` against testuser's real user manager: a real StatusNotifierWatcher
# (status-notifier-watcher) on the session bus, and tray_test.py clicking the item's dbusmenu
# as a panel does (com.canonical.dbusmenu Event), checking what the kernel did, and finally
# opening the window through AT-SPI. Run as testuser.
set -u
here=$(dirname "$0")
SCTL="systemctl --user"
. "$here/lib.sh"   # wait_for
cd "$HOME"

# Two apps to act on; the tray lists each in its own submenu.
corral run -q -p relaxed --name traytarget --app-id traytarget -- sleep 600
corral run -q -p relaxed --name trayother --app-id trayother -- sleep 600

Xvfb :98 -screen 0 1024x768x24 -nolisten tcp >/tmp/xvfb-tray.log 2>&1 &
xvfb=$!
export DISPLAY=:98 GDK_BACKEND=x11 GSK_RENDERER=cairo GTK_A11Y=atspi
status-notifier-watcher >/tmp/watcher.log 2>&1 &
watcher=$!
# The accessibility bus, on which the test finds the window the tray opens.
/usr/libexec/at-spi-bus-launcher --launch-immediately >/tmp/atspi-tray.log 2>&1 &
atspi=$!
# Started when they answer: the X server's socket, the watcher's and the accessibility bus's names.
wait_for 20 test -S /tmp/.X11-unix/X98 || echo "Xvfb did not start"
wait_for 20 busctl --user status org.kde.StatusNotifierWatcher || echo "no StatusNotifierWatcher"
wait_for 20 busctl --user call org.a11y.Bus /org/a11y/bus org.a11y.Bus GetAddress || echo "no accessibility bus"
busctl --user set-property org.a11y.Bus /org/a11y/bus org.a11y.Status IsEnabled b true
corral --tray >/tmp/corral-tray.log 2>&1 &
tray=$!
timeout 240 python3 "$here/tray_test.py" /mnt/host/screenshots
status=$?
if [ $status -ne 0 ]; then
    echo "---- corral --tray's output"
    tail -30 /tmp/corral-tray.log
fi
kill $tray $watcher $atspi $xvfb 2>/dev/null
wait $tray 2>/dev/null
$SCTL stop 'app-corral-*' >/dev/null 2>&1
# The rule kept from the tray leaves with its drop-ins, for the suites after.
corral rules remove traytarget >/dev/null 2>&1
exit $status
