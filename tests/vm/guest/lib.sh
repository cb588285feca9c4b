# Helpers for the guest tests: checks that count, and ways to read what systemd and the kernel
# did. Sourced by user.sh and system.sh; SCTL is "systemctl --user" or "systemctl".

passed=0
failed=0
failures=()

ok() {
    passed=$((passed + 1))
    printf 'ok   %s\n' "$1"
}

not_ok() {
    failed=$((failed + 1))
    failures+=("$1")
    printf 'FAIL %s\n' "$1"
    shift
    [ $# -gt 0 ] && printf '     %s\n' "$@"
    return 0
}

# check NAME COMMAND...: passes when the command succeeds.
check() {
    local name=$1
    shift
    local out
    if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "got:      $3"; fi
}

# expect_in NAME NEEDLE HAYSTACK: passes when HAYSTACK contains NEEDLE.
expect_in() {
    case "$3" in
    *"$2"*) ok "$1" ;;
    *) not_ok "$1" "expected to contain: $2" "got: $3" ;;
    esac
}

# expect_range NAME LOW HIGH VALUE (integers)
expect_range() {
    if [ -n "$4" ] && [ "$4" -ge "$2" ] && [ "$4" -le "$3" ]; then
        ok "$1 ($4 in $2..$3)"
    else
        not_ok "$1" "expected $2..$3, got '$4'"
    fi
}

summary() {
    echo
    if [ "$failed" -gt 0 ]; then
        printf 'failed: %s\n' "${failures[@]}"
    fi
    echo "$SUITE: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# The newest loaded unit matching a glob, e.g. unit_named 'app-corral-sleep-*': the one that
# left the inactive state last (names end in a random part, so the last in name order is any).
unit_named() {
    local units
    units=$($SCTL list-units --all --plain --no-legend "$1" 2>/dev/null | awk '{print $1}')
    [ -n "$units" ] || return 0
    # One block per unit, blank-line separated; a unit that never started counts as oldest.
    # shellcheck disable=SC2086
    $SCTL show -p Id -p InactiveExitTimestampMonotonic $units 2>/dev/null |
        awk -v RS= '{ id = ""; t = 0
            for (i = 1; i <= NF; i++) {
                split($i, kv, "=")
                if (kv[1] == "Id") id = kv[2]
                if (kv[1] == "InactiveExitTimestampMonotonic") t = kv[2]
            }
            if (id != "") print t, id }' | sort -n | tail -1 | cut -d' ' -f2
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds; false after SECONDS.
wait_for() {
    local i limit=$1
    shift
    for i in $(seq $((limit * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# wait_unit GLOB: waits up to 10 s for a unit matching GLOB and prints its name.
wait_unit() {
    local u i
    for i in $(seq 100); do
        u=$(unit_named "$1")
        [ -n "$u" ] && { echo "$u"; return 0; }
        sleep 0.1
    done
    return 1
}

cg_dir() { echo "/sys/fs/cgroup$($SCTL show -p ControlGroup --value "$1")"; }

# cg UNIT FILE: one cgroup file of a unit, as the kernel shows it.
cg() { cat "$(cg_dir "$1")/$2" 2>/dev/null; }

# cg_key UNIT FILE KEY: one key of a flat-keyed cgroup file (cpu.stat, memory.events, cgroup.events).
cg_key() { cg "$1" "$2" | awk -v k="$3" '$1 == k {print $2}'; }

active_state() { $SCTL show -p ActiveState --value "$1" 2>/dev/null; }

# gone UNIT: true once the unit is no longer loaded or active (waits up to 5 s).
gone() {
    local i s
    for i in $(seq 50); do
        s=$(active_state "$1")
        case "$s" in "" | inactive | failed) return 0 ;; esac
        sleep 0.1
    done
    return 1
}

# No failed or leftover corral unit may linger after a failed launch.
no_corral_units_left() {
    local left
    left=$($SCTL list-units --all --plain --no-legend 'app-corral-*' 2>/dev/null)
    [ -z "$left" ] || { echo "left behind: $left"; return 1; }
}

# diagnose: what a hung test leaves behind, for the log.
diagnose() {
    echo "---- diagnostics: processes"
    ps -eLo pid,tid,ppid,stat,wchan:24,args | grep -v ' \[' | tail -40
    echo "---- corral units"
    $SCTL list-units --all --plain --no-legend 'app-corral-*'
    local u
    for u in $($SCTL list-units --all --plain --no-legend 'app-corral-*' | awk '{print $1}'); do
        echo "-- $u: memory.current=$(cg "$u" memory.current) memory.max=$(cg "$u" memory.max)"
        cg "$u" memory.events | tr '\n' ' '
        echo
        cg "$u" cgroup.procs | tr '\n' ' '
        echo
    done
    echo "----"
}

# corral_bounded SECONDS ARGS...: runs corral, but never longer than SECONDS; a run that hangs
# has the state of the system logged, then is killed.
corral_bounded() {
    local limit=$1 pid i
    shift
    corral "$@" &
    pid=$!
    for i in $(seq $((limit * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "corral $* did not finish within $limit s" >&2
        diagnose >&2
        pkill -KILL -P "$pid"
        kill -KILL "$pid"
    fi
    wait "$pid"
}

# wait_for SECONDS COMMAND...: polls every 0.1 s until the command succeeds; fails after SECONDS.
wait_for() {
    local limit=$1 i
    shift
    for i in $(seq $((limit * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

mem_total() { awk '/^MemTotal:/ {print $2 * 1024}' /proc/meminfo; }
