#!/bin/bash
# Corral against the system manager (--system), as root: a service and a scope with limits,
# freeze, a runtime limit change and stop. polkit is not involved for root.
set -u
SUITE=system
SCTL="systemctl"
. "$(dirname "$0")/lib.sh"

echo "== system service"
corral --system run -q --memory-max 64M --tasks-max 16 --app-id syssleep -- sleep 300
svc=$(wait_unit 'app-corral-syssleep-*.service')
expect_in "system unit lives in system.slice" "/system.slice/" "$($SCTL show -p ControlGroup --value "$svc")"
expect_eq "system service memory.max" 67108864 "$(cg "$svc" memory.max)"
expect_eq "system service pids.max" 16 "$(cg "$svc" pids.max)"
expect_in "ps --system lists it" "$svc" "$(corral --system ps)"
check "freeze it" corral --system freeze syssleep
expect_eq "frozen 1" 1 "$(cg_key "$svc" cgroup.events frozen)"
check "thaw it" corral --system thaw syssleep
out=$(corral --system limit syssleep --memory-max 128M 2>&1)
expect_eq "runtime change on the system manager" 134217728 "$(cg "$svc" memory.max)"
check "stop it" corral --system stop syssleep
check "gone" gone "$svc"

echo "== system scope"
out=$(corral --system run --scope --memory-max 32M --app-id sysscope -- sh -c 'cat /proc/self/cgroup; cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/memory.max' 2>&1)
expect_eq "scope command exits 0" 0 $?
expect_in "the command ran inside the scope" "app-corral-sysscope-" "$out"
expect_in "with the limit" "33554432" "$out"

echo "== OOM on the system manager"
out=$(corral --system run --wait --memory-max 40M --memory-swap-max 0 --app-id syshog -- tail /dev/zero 2>&1)
expect_eq "OOM-killed system service exits 137" 137 $?
expect_in "and is reported" "OOM killer" "$out"
check "no unit lingers" no_corral_units_left
summary
