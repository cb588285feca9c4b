#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 30 s each) and fails if any finds a crash.
#
#   tests/fuzz/run.sh            # 30 s per target
#   tests/fuzz/run.sh 300        # 5 minutes per target
#   tests/fuzz/run.sh 30 config  # only the named targets
#   tests/fuzz/run.sh --replay   # no fuzzing: build on plain stable and run every target once
#                                # over its seeds (tests/run does this, so targets never rot)
#
# Needs cargo-fuzz (installed here from crates.io if missing). cargo fuzz passes nightly-only
# flags to rustc (-Z sanitizer options, sancov passes); Corral builds on stable only, so the
# stable compiler is told to accept them with RUSTC_BOOTSTRAP=1, for this crate's build only.
#
# No AddressSanitizer (-s none): the parsers under test have no `unsafe`, so it would find
# nothing that Rust's own checks don't, at half the speed. Debug assertions and overflow
# checks are on (-a), so an arithmetic overflow is a crash.
#
# Each target starts from its checked-in seeds (tests/fuzz/seeds/<target>/) plus what earlier
# runs found (tests/fuzz/corpus/<target>/, not checked in). A crash leaves its input in
# tests/fuzz/artifacts/<target>/ and the log in tests/fuzz/logs/<target>.log; turn it into a
# #[test] next to the parser (input inlined), fix the parser, and run this again.
set -euo pipefail
cd "$(dirname "$0")/../.."

fuzz_dir=tests/fuzz

# libfuzzer-sys compiles libFuzzer (C++) from source.
if ! command -v c++ >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "a C++ compiler is needed: apt-get install g++" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi

if [ "${1:-}" = --replay ]; then
    # Plain cargo, no cargo-fuzz and no nightly flags: libFuzzer's main runs the given files
    # once each. Shares the main target directory (and its compiled dependencies).
    CARGO_TARGET_DIR=target cargo build --quiet --manifest-path "$fuzz_dir/Cargo.toml" --bins
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz_dir/Cargo.toml" | grep -v '^corral-fuzz$')
    total=0
    for target in "${targets[@]}"; do
        inputs=("$fuzz_dir/seeds/$target"/*)
        if ! target/debug/"$target" "${inputs[@]}" >"target/fuzz-replay-$target.log" 2>&1; then
            echo "fuzz target $target fails on one of its seeds:" >&2
            grep -E "panicked at|Running:" -A3 "target/fuzz-replay-$target.log" | tail -20 >&2
            exit 1
        fi
        total=$((total + ${#inputs[@]}))
    done
    echo "fuzz seeds replayed: ${#targets[@]} targets, $total inputs, all pass"
    exit 0
fi

seconds=${1:-30}
shift || true
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }

export RUSTC_BOOTSTRAP=1
flags=(--fuzz-dir "$fuzz_dir" --sanitizer none --debug-assertions)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (once)"
    cargo install --locked cargo-fuzz
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
fi

echo "building ${#targets[@]} fuzz targets"
cargo fuzz build "${flags[@]}" >/dev/null

mkdir -p "$fuzz_dir/logs"
failed=()
printf '\n%-16s %12s %10s  %s\n' target executions per-second result
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    seeds="$fuzz_dir/seeds/$target"
    log="$fuzz_dir/logs/$target.log"
    mkdir -p "$corpus" "$fuzz_dir/artifacts/$target"
    # New inputs go to the first directory (the corpus); the seeds are only read.
    # -timeout: one input taking over 10 s counts as a hang, which is a failure too.
    # -rss_limit_mb: a parser that allocates without bound fails instead of eating the machine.
    status=0
    cargo fuzz run "${flags[@]}" "$target" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $status): see $log"
        failed+=("$target")
    fi
    printf '%-16s %12s %10s  %s\n' "$target" "${runs:-?}" "${rate:-?}" "$result"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo
    for target in "${failed[@]}"; do
        echo "== $target"
        grep -m1 -E "panicked at|ERROR: libFuzzer|SUMMARY" -A4 "$fuzz_dir/logs/$target.log" || true
        ls "$fuzz_dir/artifacts/$target" 2>/dev/null | sed 's/^/   input: /'
    done
    echo "fuzzing found problems in: ${failed[*]}" >&2
    exit 1
fi
echo "no crashes in ${#targets[@]} targets (${seconds} s each)"
