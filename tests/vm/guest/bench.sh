#!/bin/bash
# The benchmarks of issue 7 against the guest's real systemd, as testuser: launch (commands and
# in-process), sampling sweep against systemd-cgtop, freeze/thaw and kill, alert latency, the
# footprint of the tray and the window, and growth with the number of units. Corral and each
# anchor are measured side by side in this one run. Figures go to /mnt/host/results/bench.jsonl
# (one JSON object per line) for tests/bench/report.py; nothing here judges a number: a part
# fails only when it could not measure.
set -u
SUITE=bench
SCTL="systemctl --user"
. "$(dirname "$0")/lib.sh"

cd "$HOME"
results=/mnt/host/results
out=$results/bench.jsonl
work=$(mktemp -d -p "$HOME" bench.XXXXXX)
# Run the benchmark binary from the guest's disk, not through 9p.
cp /mnt/host/bench_guest "$work/bench_guest"
bench=$work/bench_guest
: >"$out"

pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    $SCTL kill --signal=KILL 'app-corral-*' >/dev/null 2>&1
    rm -f ~/.config/corral/config.toml
    # What the parts logged, for a look when one could not measure.
    mkdir -p "$results/logs" && cp "$work"/*.log "$work"/*.err "$work"/*.out "$results/logs/" 2>/dev/null
}
trap cleanup EXIT

# emit METRIC UNIT VALUE: one measured figure.
emit() { printf '{"metric": "%s", "unit": "%s", "value": %s}\n' "$1" "$2" "$3" >>"$out"; }
# emit_samples METRIC UNIT V1 V2 ...
emit_samples() {
    local metric=$1 unit=$2
    shift 2
    local list
    list=$(IFS=,; echo "$*")
    printf '{"metric": "%s", "unit": "%s", "samples": [%s]}\n' "$metric" "$unit" "$list" >>"$out"
}
# part NAME COMMAND...: runs one part, its figures appended to the results.
part() {
    local name=$1 start=$EPOCHREALTIME
    shift
    echo "== $name ($(date +%T))"
    if "$@" >>"$out" 2>"$work/$name.err"; then
        ok "$name measured ($(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}') s)"
    else
        not_ok "$name could not be measured" "$(tail -5 "$work/$name.err")"
    fi
}

# The guest, for the report.
{
    echo "kernel=$(uname -r)"
    echo "systemd=$(systemctl --version | head -1)"
    echo "cpus=$(nproc)"
    echo "memory_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    echo "cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
    echo "controllers=$(cat /sys/fs/cgroup/user.slice/user-1001.slice/user@1001.service/cgroup.subtree_control 2>/dev/null)"
} >"$results/guest.txt"

part calibrate "$bench" calibrate
part cli "$bench" cli --corral corral --runs 20
part launch "$bench" launch --runs 20
part control "$bench" control --corral corral --runs 15

echo "== alert latency and post-mortems ($(date +%T))"
mkdir -p ~/.config/corral
cat >~/.config/corral/config.toml <<'TOML'
[presets.hog]
description = "A soft limit below a small hard one, no swap"
memory-high = "60M"
memory-max = "64M"
memory-swap-max = "0"

[presets.hogmax]
description = "Only a small hard limit, no swap"
memory-max = "64M"
memory-swap-max = "0"
TOML
/mnt/host/notification_recorder "$work/notify.log" >"$work/recorder.out" 2>&1 &
pids+=($!)
check "the recorder owns org.freedesktop.Notifications" wait_for 10 grep -q ready "$work/recorder.out"
corral watch >"$work/watch.out" 2>"$work/watch.err" &
pids+=($!)
check "corral watch starts" wait_for 10 grep -q watching "$work/watch.err"
at_ms() { python3 -c "import json,sys; print(json.loads(sys.stdin.readline())['at_ms'])"; }
# A hog grows 1 MiB per 20 ms past 90 % of its 64M limit (below its soft limit, where no kernel
# event fires): from the moment it reads itself past 90 % to the Notify call's arrival.
latencies=()
# The functions below read $app, not the loop's $i: wait_for has an `i` of its own.
notified() { grep '"call":"Notify"' "$work/notify.log" | grep "$app is close to its memory limit"; }
killed() { grep '"call":"Notify"' "$work/notify.log" | grep "$app was killed: out of memory"; }
for i in 1 2 3 4 5 6 7 8; do
    app=hog$i
    corral run -q -p hog --app-id "$app" --name "$app" -- python3 /tmp/guest/hog.py hold 90 "$work/$app.out"
    unit=$(wait_unit "app-corral-$app-*.service")
    if wait_for 40 grep -q crossed "$work/$app.out" && wait_for 5 notified; then
        crossed=$(awk '/crossed/ {print $2}' "$work/$app.out")
        latencies+=($(($(notified | head -1 | at_ms) - crossed)))
    else
        not_ok "$app: no near-limit notification" "$(tail -3 "$work/watch.err")"
    fi
    $SCTL kill --signal=KILL "$unit" >/dev/null 2>&1
    gone "$unit"
done
echo "     near-limit latencies (ms): ${latencies[*]}"
[ ${#latencies[@]} -gt 0 ] && emit_samples alert.near-limit ms "${latencies[@]}"
# An OOM kill under a hard limit: from the kernel's count of the kill (memory.events, seen
# through inotify by a watcher of its own) to the OOM-killed notification, which Corral sends
# at that count for a unit systemd stops at its first kill (OOMPolicy=stop), and to the
# post-mortem, which it records once systemd has said how the unit ended (the event log's
# modification time). The hog grows only once its unit is listed and the watcher is ready.
oom_latencies=()
record_latencies=()
systemd_latencies=()
recorded=0
events_log=~/.local/state/corral/events.jsonl
cgroups=/sys/fs/cgroup/user.slice/user-$(id -u).slice/user@$(id -u).service/app.slice
for i in 1 2 3; do
    app=oom$i
    corral run -q -p hogmax --app-id "$app" --name "$app" -- \
        python3 /tmp/guest/bench_hog.py oom "$work/$app.go" "$work/$app.out"
    unit=$(wait_unit "app-corral-$app-*.service")
    python3 /tmp/guest/bench_hog.py kill "$cgroups/$unit" "$work/$app.kill" >"$work/$app.watch" 2>&1 &
    wait_for 10 grep -q ready "$work/$app.watch" || not_ok "$app: the kill watcher did not start" "$(cat "$work/$app.watch")"
    # Corral lists a new unit within its 1 s sweeps; then the hog may grow.
    sleep 2
    touch "$work/$app.go"
    if wait_for 30 killed && wait_for 5 test -s "$work/$app.kill"; then
        kill_ms=$(cat "$work/$app.kill")
        oom_latencies+=($(($(killed | head -1 | at_ms) - kill_ms)))
    else
        not_ok "$app: no OOM-killed notification" "$(tail -3 "$work/watch.err")"
    fi
    if wait_for 5 sh -c "corral events --json | grep -q '\"unit\": \"$unit\"'"; then
        recorded=$((recorded + 1))
        if [ -n "${kill_ms:-}" ]; then
            record_latencies+=($(($(stat -c %.3Y "$events_log" | tr -d .) - kill_ms)))
            # The anchor: when systemd itself recorded the unit's end.
            failed_ms=$(journalctl --user -u "$unit" -o json --no-pager | python3 -c "
import json, sys
for line in sys.stdin:
    entry = json.loads(line)
    if 'Failed with result' in str(entry.get('MESSAGE')):
        # When systemd logged it, rather than when the journal took it in.
        at = entry.get('_SOURCE_REALTIME_TIMESTAMP', entry['__REALTIME_TIMESTAMP'])
        print(int(at) // 1000)
        break")
            [ -n "$failed_ms" ] && systemd_latencies+=($((failed_ms - kill_ms)))
        fi
    fi
    kill_ms=
done
echo "     OOM kill to notification (ms): ${oom_latencies[*]}; to the post-mortem (ms): ${record_latencies[*]}; to systemd's end (ms): ${systemd_latencies[*]}; post-mortems recorded: $recorded of 3"
[ ${#oom_latencies[@]} -gt 0 ] && emit_samples alert.oom-kill ms "${oom_latencies[@]}"
[ ${#record_latencies[@]} -gt 0 ] && emit_samples alert.oom-record ms "${record_latencies[@]}"
[ ${#systemd_latencies[@]} -gt 0 ] && emit_samples alert.oom-systemd ms "${systemd_latencies[@]}"
emit alert.oom-recorded count "$recorded"
emit alert.oom-runs count 3
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
pids=()
rm -f ~/.config/corral/config.toml

part sample "$bench" sample --corral corral --counts 10,100,300 --sweeps 30 --cgtop-runs 10 --keep 50

# Footprint with the 50 idle units the sampling part kept, sampled at the default 1 Hz.
echo "== footprint: tray and window with 50 units ($(date +%T))"
running=$($SCTL list-units --plain --no-legend 'app-corral-benchidle-*' | wc -l)
emit footprint.units count "$running"
Xvfb :99 -screen 0 1280x800x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
# Cairo rendering: llvmpipe's JIT crashes under software emulation (see gui.sh).
export DISPLAY=:99 GDK_BACKEND=x11 GSK_RENDERER=cairo GTK_A11Y=none NO_AT_BRIDGE=1
sleep 1
status-notifier-watcher >"$work/sn-watcher.log" 2>&1 &
pids+=($!)
gtk-sni-tray-standalone -m 0 --top -s 40 >"$work/sn-host.log" 2>&1 &
pids+=($!)
sleep 2
# The window's main loop: its longest stall while it loads 2 000 desktop entries, and while a
# preference is held down (its own GTK main loop on this display).
part stall "$bench" stall --apps 2000 --hold-ms 3000 --rounds 3
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Context switches of each of the process's threads so far, one "TID COUNT" line per thread:
# each time a thread ran after sleeping (voluntary) or was preempted (nonvoluntary), a wakeup of
# the CPU on its behalf.
ctxt_switches() {
    local task
    for task in /proc/"$1"/task/*; do
        awk -v tid="${task##*/}" '/^(non)?voluntary_ctxt_switches:/ {n += $2} END {print tid, n + 0}' "$task/status" 2>/dev/null
    done
}
# switches_between BEFORE AFTER: the switches made in between, thread by thread. A thread that
# ended in between takes its count with it (the whole process's sum could even go down, as a
# runtime's idle thread exits): only the threads alive at the end count, from 0 if they started
# in between.
switches_between() {
    awk 'NR == FNR {before[$1] = $2; next} {n += $2 - before[$1]} END {print n + 0}' <(echo "$1") <(echo "$2")
}
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
# measure NAME PID: CPU share of one core and wakeups per second over 60 s after 10 s of
# settling, and peak RSS.
measure() {
    local name=$1 pid=$2 before after start end switches_before switches_after
    sleep 10
    before=$(cpu_ticks "$pid")
    switches_before=$(ctxt_switches "$pid")
    start=$EPOCHREALTIME
    sleep 60
    after=$(cpu_ticks "$pid") || { not_ok "$name ended during the measurement"; return; }
    switches_after=$(ctxt_switches "$pid")
    end=$EPOCHREALTIME
    emit "footprint.$name.cpu" % "$(awk -v t="$((after - before))" -v hz="$ticks" -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", t / hz / (b - a) * 100}')"
    local switches
    switches=$(switches_between "$switches_before" "$switches_after")
    emit "footprint.$name.wakeups" per-second "$(awk -v n="$switches" -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", n / (b - a)}')"
    emit "footprint.$name.threads" count "$(ls /proc/"$pid"/task | wc -l)"
    emit "footprint.$name.hwm" KiB "$(status_kib "$pid" VmHWM)"
    emit "footprint.$name.rss" KiB "$(status_kib "$pid" VmRSS)"
    ok "$name measured: $(awk -v t="$((after - before))" -v hz="$ticks" 'BEGIN {printf "%.2f", t / hz}') s of CPU and $switches context switches in 60 s, peak RSS $(status_kib "$pid" VmHWM) KiB"
}
corral --tray >"$work/tray.log" 2>&1 &
tray=$!
registered() {
    busctl --user get-property org.kde.StatusNotifierWatcher /StatusNotifierWatcher \
        org.kde.StatusNotifierWatcher RegisteredStatusNotifierItems | grep -q "StatusNotifierItem-$tray-"
}
if wait_for 30 registered; then
    ok "corral --tray registered its icon"
    measure tray "$tray"
    grep -q 'no tray' "$work/tray.log" && not_ok "the tray fell back to the window" "$(cat "$work/tray.log")"
else
    not_ok "corral --tray did not register with the watcher" "$(tail -5 "$work/tray.log")"
fi
kill "$tray" 2>/dev/null
wait "$tray" 2>/dev/null
corral >"$work/window.log" 2>&1 &
window=$!
# The application owns its id on the session bus once it has started (GApplication).
started() { busctl --user status io.github.corral.Corral >/dev/null 2>&1; }
if wait_for 30 started; then
    ok "the window started"
    measure window "$window"
    xwd -root -silent >/mnt/host/screenshots/bench-window.xwd 2>/dev/null
else
    not_ok "the window did not start" "$(tail -5 "$work/window.log")"
fi
kill "$window" 2>/dev/null
wait "$window" 2>/dev/null
$SCTL stop 'app-corral-benchidle-*' >/dev/null 2>&1

# Rules (issue 13): how long `corral rules set` takes to reach N running instances (the
# drop-ins written, one daemon-reload, every instance read back), against a bare
# `systemctl --user daemon-reload` with the same units loaded; and both with 300 units.
echo "== rules: a rule reaching running instances; a reload with 300 units ($(date +%T))"
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", (b - a) * 1000}'; }
# time_runs METRIC COMMAND...: five runs of a command, their times in ms.
time_runs() {
    local metric=$1 run t samples=()
    shift
    for run in 1 2 3 4 5; do
        t=$EPOCHREALTIME
        "$@" "$run" >"$work/rules.out" 2>&1 || { not_ok "$metric: $* failed" "$(tail -3 "$work/rules.out")"; return 1; }
        samples+=("$(ms_since "$t")")
    done
    emit_samples "$metric" ms "${samples[@]}"
}
set_rule() { corral rules set "benchrule$1" --memory-max "$((400 + $2))M"; }
reload() { $SCTL daemon-reload; }
for n in 1 10 50; do
    for i in $(seq "$n"); do
        systemd-run --user --scope -q --unit="app-gnome-benchrule$n-$i.scope" sleep 600 &
        pids+=($!)
    done
    all_up() { [ "$($SCTL list-units --plain --no-legend "app-gnome-benchrule$n-*" | grep -c running)" -eq "$n" ]; }
    if ! wait_for 120 all_up; then
        not_ok "rules: $n instances did not start"
        continue
    fi
    time_runs "rules.apply.$n" set_rule "$n"
    expect_eq "rules: the $n instances have the rule's last limit" $((405 << 20)) \
        "$(cg "app-gnome-benchrule$n-$n.scope" memory.max)"
    time_runs "rules.reload.$n" reload
    corral rules remove "benchrule$n" >/dev/null 2>&1
    $SCTL stop "app-gnome-benchrule$n-*" >/dev/null 2>&1
done
python3 "$(dirname "$0")/start_units.py" benchload 300 >"$work/load.out" 2>&1
loaded=$($SCTL list-units --plain --no-legend 'app-corral-benchload*' | grep -c running)
emit rules.units count "$loaded"
time_runs rules.apply.300 set_rule 300
time_runs rules.reload.300 reload
corral rules remove benchrule300 >/dev/null 2>&1
$SCTL stop 'app-corral-benchload*' >/dev/null 2>&1

summary
