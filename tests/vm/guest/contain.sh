#!/bin/bash
# Containing what escaped (issue 14), against testuser's real user manager: an app's processes
# as /proc has them, `corral adopt` moving a process tree started in another scope into a new
# scope with limits, and the cases it must refuse leaving nothing behind. Run as testuser.
set -u
SUITE=contain
SCTL="systemctl --user"
. "$(dirname "$0")/lib.sh"

cd "$HOME"
work=$(mktemp -d -p "$HOME" contain.XXXXXX)
started=()
cleanup() {
    local u
    for u in "${started[@]}"; do $SCTL stop "$u" 2>/dev/null; done
    $SCTL stop 'app-corral-bash-*' 'app-corral-sleep-*' 2>/dev/null
}
trap cleanup EXIT

echo "== an app's processes, as /proc has them"
corral run -q --app-id procs -- sh -c 'sleep 600 & sleep 601 & exec sleep 602'
procs=$(wait_unit 'app-corral-procs-*.service')
started+=("$procs")
three() { [ "$(cg "$procs" cgroup.procs | wc -l)" -eq 3 ]; }
check "the unit has its three processes" wait_for 10 three
json=$(corral ps "$procs" --processes --json)
listed=$(echo "$json" | python3 -c '
import json, sys
print(" ".join(str(p["pid"]) for p in sorted(json.load(sys.stdin)[0]["processes"], key=lambda p: p["pid"])))')
expect_eq "corral ps --processes lists exactly the cgroup's processes" \
    "$(cg "$procs" cgroup.procs | sort -n | tr '\n' ' ' | sed 's/ $//')" "$listed"
same=$(echo "$json" | python3 -c '
import json, sys
bad = []
for p in json.load(sys.stdin)[0]["processes"]:
    with open("/proc/%d/comm" % p["pid"]) as f:
        comm = f.read().strip()
    with open("/proc/%d/statm" % p["pid"]) as f:
        rss = int(f.read().split()[1]) * 4096
    with open("/proc/%d/cmdline" % p["pid"]) as f:
        cmd = f.read().strip("\0").replace("\0", " ")
    if (p["name"], p["memory_bytes"], p["command"]) != (comm, rss, cmd):
        bad.append((p["pid"], p["name"], comm, p["memory_bytes"], rss, p["command"], cmd))
print(bad or "same")')
expect_eq "each process's name, command and memory match /proc" same "$same"
text=$(corral ps "$procs" --processes 2>&1)
expect_in "the table lists the command" "sleep 601" "$text"
expect_in "… and says how many" "3 processes" "$text"

echo "== corral adopt moves a tree that escaped into a scope of its own"
# A "terminal": a shell in another scope, with two children of its own.
systemd-run --user --scope -q --unit=term-1.scope bash -c 'sleep 600 & sleep 600 & wait' &
started+=(term-1.scope)
two_children() { [ "$(cg term-1.scope cgroup.procs | wc -l)" -eq 3 ]; }
check "the terminal's scope holds the shell and its two children" wait_for 10 two_children
shell=$(for p in $(cg term-1.scope cgroup.procs); do
    [ "$(cat /proc/"$p"/comm)" = bash ] && echo "$p"; done)
tree="$shell $(pgrep -P "$shell" | tr '\n' ' ')"
out=$(corral adopt "$shell" --memory-max 100M --cpu-quota 50% 2>&1)
check "corral adopt succeeds" test $? -eq 0
unit=$(echo "$out" | grep -o 'app-corral-bash-[0-9a-f]*\.scope' | head -1)
started+=("$unit")
expect_in "the new scope is named after the process's executable" "app-corral-bash-" "$unit"
expect_in "it says how many processes moved" "3 processes" "$out"
for p in $tree; do
    expect_in "process $p is in the new scope" "$unit" "$(cat /proc/"$p"/cgroup)"
done
expect_eq "the new scope has the memory limit" 104857600 "$(cg "$unit" memory.max)"
expect_eq "… and the CPU quota" "50000 100000" "$(cg "$unit" cpu.max)"
expect_in "corral ps lists it as Corral's" "$unit" "$(corral ps 2>&1)"

echo "== adopt refuses what it cannot move, and leaves nothing behind"
refused() {
    local pid=$1 words=$2 out
    out=$(corral adopt "$pid" 2>&1)
    local status=$?
    if [ "$status" -ne 0 ]; then ok "adopt $pid is refused"; else not_ok "adopt $pid is refused" "$out"; fi
    expect_in "… saying why" "$words" "$out"
    check "… and no corral unit is left" test -z "$($SCTL list-units --all --plain --no-legend 'app-corral-*' 2>/dev/null | grep -v -e "$unit" -e "$procs")"
}
refused 1 "init"
refused "$(pgrep -u root -o systemd-journal)" "belongs to user 0"
refused 999999 "there is no process 999999"

summary
