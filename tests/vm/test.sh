#!/usr/bin/env bash
# Runs the guest test suites (tests/vm/guest) against a real systemd: builds corral, boots the
# guest with the binary and the scripts on the share, and reports the guest's verdict.
#
# Usage: tests/vm/test.sh [CARGO_PROFILE_DIR]   (default: target/debug, always brought up to
#        date first; a given folder is used as it is, built only when its binaries are missing)
# Environment: SUITES="user gui" runs only those suites (default: all; see guest/main.sh).
# Guest runs are serialised machine-wide (flock on /tmp/corral-vm.lock): two emulated guests
# on two cores would each run at half speed and miss the timing checks.
set -euo pipefail
trap 'echo "vm-test: stopped: line $LINENO ($BASH_COMMAND) failed, before the guest ran: fix what the lines above say and run tests/vm/test.sh again" >&2' ERR
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$top/target/debug}/corral
desktop=$(dirname "$bin")/corral-desktop   # the window and the tray, which corral execs
# The default build is brought up to date (a no-op when it is): a binary older than the code
# would test yesterday's Corral.
if [ $# -eq 0 ]; then
    (cd "$top" && cargo build --quiet --bins --example notification_recorder --example monitor_load)
fi
[ -x "$bin" ] && [ -x "$desktop" ] || (cd "$top" && cargo build --quiet)
# The notification server the runaway-watch suite records with (examples/notification_recorder.rs),
# and the monitor's cost under load for the load suite (examples/monitor_load.rs).
recorder=$(dirname "$bin")/examples/notification_recorder
load=$(dirname "$bin")/examples/monitor_load
profile=()
[ "$(basename "$(dirname "$bin")")" = release ] && profile=(--release)
[ -x "$recorder" ] && [ -x "$load" ] || (cd "$top" && cargo build --quiet "${profile[@]}" \
    --example notification_recorder --example monitor_load)
# The benchmark suite's binary (examples/bench_guest.rs), when it was built: tests/bench/run.sh.
bench=$(dirname "$bin")/examples/bench_guest

share=$top/tests/vm/out
rm -rf "$share" && mkdir -p "$share/guest"
cp "$bin" "$share/corral"
cp "$desktop" "$share/corral-desktop"
cp "$recorder" "$share/notification_recorder"
[ -x "$bench" ] && cp "$bench" "$share/bench_guest"
cp "$load" "$share/monitor_load"
cp "$top"/tests/vm/guest/*.sh "$top"/tests/vm/guest/*.py "$share/guest/"
[ -n "${SUITES:-}" ] && echo "$SUITES" >"$share/suites"
exec 9>/tmp/corral-vm.lock
flock 9
start=$(date +%s)
status=0
"$top/tests/vm/run.sh" "$share" /mnt/host/guest/main.sh || status=$?
# The window tests leave X screenshots; keep PNG copies beside the log to look at.
for shot in "$share"/screenshots/*.xwd; do
    [ -e "$shot" ] && convert "xwd:$shot" "${shot%.xwd}.png" && rm "$shot"
done
echo "vm: guest tests took $(( $(date +%s) - start )) s (boot and power-off included)"
# One closing line for all suites, in the form CI reads.
counts=$(grep -hE '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$share/guest.log" 2>/dev/null || true)
passed=$(echo "$counts" | awk '{s += $2} END {print s + 0}')
failed=$(echo "$counts" | awk '{s += $4} END {print s + 0}')
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1   # the guest failed before counting
echo "guest: $passed passed, $failed failed"
exit $status
