#!/usr/bin/env bash
# The peers bench: obrestore's engine (MemStore and the durable SledStore) side by side
# with dagx, dagrs, duroxide and apalis on SQLite, same shapes of no-op tasks, plus the device's
# sync rate and sequential write bandwidth measured in the same run. Prints one table.
#   scripts/peers.sh [--quick] [--runs N] [--duroxide-runs N] [--dir PATH] [--memory-only]
# --dir puts the durable stores and the device probes on another filesystem (default:
# the temp dir). Builds benches/peers (its own cargo workspace) in release into
# target/peers, or into $CARGO_TARGET_DIR when set.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/peers}"
cargo build --release --locked --manifest-path benches/peers/Cargo.toml
exec "$CARGO_TARGET_DIR/release/obrestore-peers-bench" "$@"
