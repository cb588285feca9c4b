#!/usr/bin/env bash
# Runs the guest test suites (tests/vm/guest) against a real systemd: builds corral, boots the
# guest with the binary and the scripts on the share, and reports the guest's verdict.
#
# Usage: tests/vm/test.sh [CARGO_PROFILE_DIR]   (default: target/debug, built if needed)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$top/target/debug}/corral
[ -x "$bin" ] || (cd "$top" && cargo build --quiet)

share=$top/tests/vm/out
rm -rf "$share" && mkdir -p "$share/guest"
cp "$bin" "$share/corral"
cp "$top"/tests/vm/guest/*.sh "$share/guest/"
start=$(date +%s)
status=0
"$top/tests/vm/run.sh" "$share" /mnt/host/guest/main.sh || status=$?
echo "vm: guest tests took $(( $(date +%s) - start )) s (boot and power-off included)"
exit $status
