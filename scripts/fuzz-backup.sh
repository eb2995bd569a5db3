#!/usr/bin/env bash
# Seeds and runs every fuzz target of the backup parsers for SECONDS each (default 60):
#   scripts/fuzz-backup.sh [seconds]
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain. The corpus is
# generated from a small backup (`crates/backup/examples/fuzz_seeds.rs`) into
# fuzz/corpus/<target>/; each run's libFuzzer summary goes to fuzz/logs/<target>.log and
# one line per target ("<target>: #<execs> DONE ... exec/s") is printed at the end.
# Exits non-zero if any target finds a crash, a leak, an OOM or a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
corpus="$PWD/fuzz/corpus"
logs="$PWD/fuzz/logs"
mkdir -p "$corpus" "$logs"
cargo run -q -p obrestore-backup --features fuzzing --example fuzz_seeds -- "$corpus"
targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^obrestore')
# Release with debug assertions and overflow checks, AddressSanitizer (cargo-fuzz's default).
target_dir="${CARGO_TARGET_DIR:-$PWD/fuzz/target}/fuzz-nightly"
cd fuzz
cargo +nightly fuzz build --target-dir "$target_dir"
status=0
for target in $targets; do
    if ! cargo +nightly fuzz run --target-dir "$target_dir" "$target" "$corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        > "$logs/$target.log" 2>&1; then
        echo "$target: FAILED, see fuzz/logs/$target.log and fuzz/artifacts/$target/" >&2
        status=1
    fi
done
for target in $targets; do
    echo "$target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$target.log" | tail -1)"
done
exit "$status"
