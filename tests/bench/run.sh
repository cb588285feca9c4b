#!/usr/bin/env bash
# The benchmarks (issue 7): builds Corral in release mode, boots the real-systemd guest and runs
# tests/vm/guest/bench.sh in it, where Corral and its anchors (systemd-run, systemd-cgtop,
# systemctl, bare D-Bus calls) are measured side by side in the same run; then writes
# BENCHMARKS.md at the top of the repository, whose last printed line says how many goals were
# met. Figures are printed, never judged as a test: the script fails only when it could not
# measure. Takes about 10 minutes on 2 cores (plus a release build the first time).
#
# Usage: tests/bench/run.sh            (needs root for the guest, as tests/vm/test.sh does)
# The pure in-process parts have criterion benchmarks of their own: cargo bench.
set -euo pipefail
trap 'echo "bench: stopped: line $LINENO ($BASH_COMMAND) failed; nothing was measured past it: fix what the lines above say and run tests/bench/run.sh again" >&2' ERR
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
# The guest first (its first build takes about 3 minutes): its QEMU describes the machine below.
qemu_version=$(tests/vm/run.sh --qemu-version)
cargo build --release --quiet --bin corral --bin corral-desktop --example bench_guest --example notification_recorder

raw=$top/target/bench
mkdir -p "$raw"
# The host, to describe the machine and to compare the guest's speed with.
{
    echo "cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cpus=$(nproc)"
    echo "memory_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "rustc=$(rustc --version)"
    echo "qemu=$qemu_version"
    # The release profile's settings, as Cargo.toml has them: "lto=fat, codegen-units=1".
    echo "release=$(awk '/^\[/ {in_release = ($0 == "[profile.release]")} in_release && /=/' Cargo.toml | tr -d ' "' | paste -sd, - | sed 's/,/, /g')"
    echo "commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples || echo '+changes')"
} >"$raw/host.txt"
target/release/examples/bench_guest calibrate >"$raw/host.jsonl"

status=0
SUITES=bench VM_TIMEOUT=1200 tests/vm/test.sh target/release || status=$?
cp tests/vm/out/results/bench.jsonl "$raw/guest.jsonl" 2>/dev/null || : >"$raw/guest.jsonl"
cp tests/vm/out/results/guest.txt "$raw/guest.txt" 2>/dev/null || : >"$raw/guest.txt"
python3 tests/bench/report.py "$raw" BENCHMARKS.md
[ "$status" = 0 ] || echo "bench: some rows could not be measured (guest exit $status): see tests/vm/out/guest.log" >&2
exit $status
