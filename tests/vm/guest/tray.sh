#!/bin/bash
# `corral --tray` against testuser's real user manager: a real StatusNotifierWatcher
# (status-notifier-watcher) on the session bus, and tray_test.py clicking the item's dbusmenu
# as a panel does (com.canonical.dbusmenu Event), checking what the kernel did. Run as testuser.
set -u
here=$(dirname "$0")
SCTL="systemctl --user"
cd "$HOME"

# Two apps to act on; the tray lists each in its own submenu.
corral run -q -p relaxed --name traytarget --app-id traytarget -- sleep 600
corral run -q -p relaxed --name trayother --app-id trayother -- sleep 600

Xvfb :98 -screen 0 1024x768x24 -nolisten tcp >/tmp/xvfb-tray.log 2>&1 &
xvfb=$!
export DISPLAY=:98 GDK_BACKEND=x11 GSK_RENDERER=cairo
status-notifier-watcher >/tmp/watcher.log 2>&1 &
watcher=$!
sleep 1
corral --tray >/tmp/corral-tray.log 2>&1 &
tray=$!
timeout 180 python3 "$here/tray_test.py"
status=$?
if [ $status -ne 0 ]; then
    echo "---- corral --tray's output"
    tail -30 /tmp/corral-tray.log
fi
kill $tray $watcher $xvfb 2>/dev/null
wait $tray 2>/dev/null
$SCTL stop 'app-corral-*' >/dev/null 2>&1
exit $status
