#!/bin/bash
# Corral's window against testuser's real user manager, under Xvfb, driven through AT-SPI by
# gui_test.py. Screenshots go to /mnt/host/screenshots. Run as testuser.
set -u
here=$(dirname "$0")
SCTL="systemctl --user"
. "$here/lib.sh"   # wait_for
cd "$HOME"
mkdir -p ~/.config/corral ~/.local/share/applications /mnt/host/screenshots 2>/dev/null
cat >~/.config/corral/config.toml <<'TOML'
# Presets for the window tests, and a budget for all apps the window shows.
[general]
apps-memory-high = "80%"

[presets.test]
description = "Fixed limits the tests can compare"
memory-high = "48M"
memory-max = "64M"

[presets.tiny]
description = "Too little memory for anything"
memory-max = "32M"
memory-swap-max = "0"

[apps."org.example.Sleeper"]
last-preset = "test"
TOML
cat >~/.local/share/applications/org.example.Sleeper.desktop <<'DESKTOP'
[Desktop Entry]
Type=Application
Name=Sleeper
Comment=Sleeps for five minutes
Icon=utilities-terminal
Exec=sleep 300
DESKTOP

# An app killed for lack of memory, for the Events window (corral run --wait records it).
corral run -q -w -p tiny --app-id oomtest --name OomTest -- tail /dev/zero

# Three apps with different presets for the list.
corral run -q -p browser --name browsertest -- sleep 600
corral run -q -p strict --name stricttest -- sleep 600
corral run -q -p background --name backgroundtest -- sh -c 'while :; do :; done'
# An app of several processes, for the details' process list and Contain.
corral run -q -p relaxed --name multitest --app-id multitest -- sh -c 'sleep 600 & sleep 601 & wait'

Xvfb :99 -screen 0 1280x800x24 -nolisten tcp >/tmp/xvfb.log 2>&1 &
xvfb=$!
# Cairo rendering: Mesa's llvmpipe JIT-compiles for the CPU that QEMU's "-cpu max" claims,
# and its code crashes under software emulation (a core showed it in llvmpipe's JIT'd code).
export DISPLAY=:99 GTK_A11Y=atspi GDK_BACKEND=x11 GSK_RENDERER=cairo
wait_for 20 test -S /tmp/.X11-unix/X99 || echo "Xvfb did not start"
/usr/libexec/at-spi-bus-launcher --launch-immediately >/tmp/atspi.log 2>&1 &
atspi=$!
wait_for 20 busctl --user call org.a11y.Bus /org/a11y/bus org.a11y.Bus GetAddress || echo "no accessibility bus"
busctl --user set-property org.a11y.Bus /org/a11y/bus org.a11y.Status IsEnabled b true
ulimit -c unlimited
corral >/tmp/corral-gui.log 2>&1 &
gui=$!
timeout 480 python3 "$here/gui_test.py" /mnt/host/screenshots
status=$?
if [ $status -ne 0 ]; then
    echo "---- corral's output"
    grep -v '^ *[0-9]*: \|^ *at ' /tmp/corral-gui.log | tail -30
fi
if kill -0 $gui 2>/dev/null; then
    kill $gui
    wait $gui
    echo "corral's window ended with status $? on SIGTERM"
else
    wait $gui
    echo "corral's window had ended by itself, with status $?"
    cp /tmp/core.* /mnt/host/ 2>/dev/null
    status=1
fi
kill $atspi $xvfb 2>/dev/null
$SCTL stop 'app-corral-*' >/dev/null 2>&1
# The rule the window made and the budget leave with their drop-ins, for the suites after.
corral rules remove org.example.Sleeper >/dev/null 2>&1
corral budget --memory-high max --memory-max max >/dev/null 2>&1
exit $status
