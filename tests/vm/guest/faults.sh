#!/bin/bash
# Faults while Corral runs, against testuser's real user manager. The long-running Corral is
# `corral --tray` (its window and tray share one monitor) under Xvfb with a real
# StatusNotifierWatcher, read through its menu over D-Bus as a panel reads it (tray_menu.py);
# `corral watch` runs beside it. Each section says what is done and what must happen.
# Run as testuser, after main.sh mounted a 256 KiB tmpfs at ~/tiny (the full disk).
set -u
SUITE=faults
SCTL="systemctl --user"
here=$(dirname "$0")
. "$here/lib.sh"

cd "$HOME"
work=$(mktemp -d -p "$HOME" faults.XXXXXX)
tiny=$HOME/tiny
# Config and events live on the tiny file system, so that it can be filled under them.
export XDG_CONFIG_HOME=$tiny/config XDG_STATE_HOME=$tiny/state
config=$XDG_CONFIG_HOME/corral/config.toml
events=$XDG_STATE_HOME/corral/events.jsonl
mkdir -p "$XDG_CONFIG_HOME/corral" "$XDG_STATE_HOME/corral" ~/.local/share/applications
cat >"$config" <<'TOML'
[general]
refresh-interval = 0.5

[presets.test]
description = "Fixed limits the tests can compare"
memory-max = "64M"

[apps."org.example.Sleeper"]
preset = "test"
TOML
cp "$config" "$work/config.pristine"
cat >~/.local/share/applications/org.example.Sleeper.desktop <<'DESKTOP'
[Desktop Entry]
Type=Application
Name=Sleeper
Exec=sleep 600
DESKTOP
# One post-mortem from an earlier day, padded with blank lines (which readers skip) to 4000
# bytes: the next record then only partly fits in the file's last page of a full disk.
python3 - "$events" <<'PY'
import json, sys
record = {"v": 1, "app_name": "Earlier", "app_id": "earlier", "unit": "app-corral-earlier-00000001.service",
          "preset": "test", "limits": {"memory_high_bytes": None, "memory_max_bytes": 67108864, "cpu_quota_percent": None},
          "peak_memory_bytes": 67108864, "started_at": 1700000000, "ended_at": 1700000600,
          "cause": {"kind": "oom-kill"}, "result": "oom-kill", "oom_kills": 1}
line = json.dumps(record) + "\n"
with open(sys.argv[1], "w") as f:
    f.write(line + "\n" * (4000 - len(line)))
PY

pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -f "$tiny/fill"
    $SCTL stop 'app-corral-*' >/dev/null 2>&1
    $SCTL reset-failed 'app-corral-*' >/dev/null 2>&1
}
trap cleanup EXIT

menu() { python3 "$here/tray_menu.py" "$@"; }
start_units() { python3 "$here/start_units.py" "$@"; }
# wait_log FILE TEXT SECONDS: waits until FILE contains TEXT.
wait_log() {
    local i
    for i in $(seq $(($3 * 10))); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "not in $1 after $3 s: $2"
    return 1
}
alive() { kill -0 "$1" 2>/dev/null; }

echo "== corral --tray and corral watch start"
Xvfb :98 -screen 0 1024x768x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
export DISPLAY=:98 GDK_BACKEND=x11 GSK_RENDERER=cairo
status-notifier-watcher >"$work/watcher.log" 2>&1 &
pids+=($!)
sleep 1
corral --tray >"$work/tray.log" 2>&1 &
tray=$!
pids+=($tray)
corral watch >"$work/watch.out" 2>"$work/watch.err" &
watch=$!
pids+=($watch)
check "the tray's menu is on the bus" menu wait Quit 90
start_units before 2 >/dev/null
check "units started meanwhile show in the tray" menu wait before2 10
check "the Launch submenu offers Sleeper with its rule's preset" menu wait "Sleeper (test)" 5

echo "== units that end between listing and reading: no error, no crash"
# Twenty units that live half a second each, while the monitor samples every 0.5 s, and
# three `corral ps` in the middle of it.
start_units blink 20 /bin/sleep 0.5 >"$work/blink.out" &
blinker=$!
ps_errors=0
for i in 1 2 3; do
    corral ps --all >"$work/ps$i.out" 2>&1 || ps_errors=$((ps_errors + 1))
done
wait $blinker
expect_eq "corral ps while units vanish exits 0 every time" 0 "$ps_errors"
check "the blinking units leave the tray's list" menu gone blink 15
check "corral --tray is still running" alive $tray
check "corral watch is still running" alive $watch
errors=$(grep -hE 'blink|panicked' "$work/tray.log" "$work/watch.err"; grep -h 'corral: ' "$work"/ps*.out)
expect_eq "nothing was reported about them" "" "$errors"

echo "== a cgroup file that cannot be read: that field is unknown, the rest shows"
before1=$(unit_named 'app-corral-before1-*')
chmod 000 "$(cg_dir "$before1")/memory.current"
fields=$(corral ps --json | python3 -c "
import json, sys
for u in json.load(sys.stdin):
    if u['unit'] == '$before1':
        cg = u['cgroup']
        print(cg['memory_current'], cg['pids_current'] is not None, cg['memory_max'] is not None)
")
expect_eq "ps --json: memory_current unknown, pids and memory.max read" "None True True" "$fields"
expect_in "ps still lists it" "before1" "$(corral ps 2>&1)"
chmod 444 "$(cg_dir "$before1")/memory.current"

echo "== the user manager re-executes (daemon-reexec)"
$SCTL daemon-reexec
# started without Subscribe(): only Corral's own subscription brings its UnitNew
start_units after 1 >/dev/null
took=$(menu wait after1 10)
check "a unit started after the re-execution shows in the tray" test -n "$took"
echo "     shown ${took:-?} ms after it was started"
menu click "Sleeper (test)"
# The launch remembers its preset only after systemd's JobRemoved said the start job is done.
check "a launch from the tray completes (its start job's JobRemoved arrived)" \
    wait_log "$config" 'last-preset = "test"' 20
check "and its unit runs" wait_unit 'app-corral-org.example.Sleeper-*'
check "corral --tray is still running" alive $tray

echo "== the config file gets a mistake while Corral runs"
printf '\n[presets.broken]\nmemory-max = "4X"\n' >>"$config"
line=$(wc -l <"$config")
check "the tray's Corral says where ($line:14)" wait_log "$work/tray.log" "config.toml:$line:14" 5
check "and that the last good config stays in force" \
    wait_log "$work/tray.log" "keeps using the settings it loaded before" 1
check "corral watch says so too" wait_log "$work/watch.err" "config.toml:$line:14" 5
expect_in "the tray's tooltip tells" "config.toml:$line:14" "$(menu tooltip)"
check "the Launch submenu keeps the last good rule" menu wait "Sleeper (test)" 2
cp "$work/config.pristine" "$config"
check "the fixed file applies again" wait_log "$work/tray.log" "loads again" 5

echo "== the disk is full when saving the config and the event log"
cp "$events" "$work/events.before"
cp "$config" "$work/config.before"
dd if=/dev/zero of="$tiny/fill" bs=4k >/dev/null 2>&1
echo "     $(df -k --output=avail "$tiny" | tail -1 | tr -d ' ') KiB left"
# A unit that fails once the monitor has seen it: its post-mortem must be appended.
start_units --keep-failed doomed 1 /bin/sh -c 'sleep 2; exit 3' >/dev/null
check "the failed unit's post-mortem could not be written, and Corral says why" \
    wait_log "$work/tray.log" "cannot write to the event log" 20
check "the event log is exactly as it was" cmp "$events" "$work/events.before"
expect_in "and its records still read" "app-corral-earlier-00000001.service" "$(corral events --json 2>&1)"
menu click "Sleeper (test)"
check "remembering the launch's preset failed, and Corral says why" \
    wait_log "$work/tray.log" "No space left on device" 20
expect_in "in words" "the file on disk is unchanged" "$(grep 'could not remember' "$work/tray.log")"
check "the config is exactly as it was" cmp "$config" "$work/config.before"
check "no temporary file is left" test ! -e "$config.tmp"
rm -f "$tiny/fill"

echo "== Corral is killed with SIGKILL while apps run"
kill -KILL $tray
wait $tray 2>/dev/null
sleep 0.5
expect_eq "the apps keep running" active "$(active_state "$before1")"
corral --tray >>"$work/tray.log" 2>&1 &
tray=$!
pids+=($tray)
check "a new corral --tray lists them" menu wait before1 90
check "and the one launched from the tray" menu wait Sleeper 5
expect_in "and knows their presets" "test" "$(corral ps | grep Sleeper)"

echo "== the session bus goes away (its dbus-daemon is killed) and comes back"
: >"$work/tray.log.mark"
$SCTL kill --signal=KILL dbus.service
check "corral --tray says it lost the bus" wait_log "$work/tray.log" "Lost the connection to the session bus" 10
check "corral watch says so too" wait_log "$work/watch.err" "Lost the connection to the session bus" 10
check "corral --tray reconnects" wait_log "$work/tray.log" "connected to systemd again" 30
check "corral watch reconnects" wait_log "$work/watch.err" "connected to systemd again" 30
check "corral --tray is still running" alive $tray
check "corral watch is still running" alive $watch
# The watcher died with the bus; a panel would start again with the session.
status-notifier-watcher >>"$work/watcher.log" 2>&1 &
pids+=($!)
check "the tray is offered again on the new bus" menu wait before1 30
start_units late 1 >/dev/null
check "a unit started on the new bus shows in the tray" menu wait late1 10
echo "     attempts: $(grep -c 'reconnecting (attempt' "$work/tray.log") failed before reconnecting"

if [ "$failed" -gt 0 ]; then
    echo "---- tray.log"; tail -40 "$work/tray.log"
    echo "---- watch.err"; tail -20 "$work/watch.err"
    diagnose
fi
summary
