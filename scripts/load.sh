#!/usr/bin/env bash
# Load: `scripts/load.sh [--restores 20] [--dags 200] [--seed S] [...]` runs restores of
# different tenants and tenant-lifecycle DAGs at once through one `obagent serve`; every
# DAG must end SUCCEED, a second restore of a busy tenant must be refused, and the API
# latency (p50/p99 per method) is printed (scripts/load.py has the details; `--help`
# lists the options).
#
# Python 3 standard library only. The binary under test is $OBAGENT_BIN; without it this
# script builds `obagent` with the `failpoints` feature (as scripts/sdk-suite does, so CI
# builds it once): the load slows `Restore data` with OBRESTORE_FAILPOINT_BLOCK_DELAY_MS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${OBAGENT_BIN:-}" ]; then
    cargo build --bin obagent --features failpoints
    TARGET_DIR=${CARGO_TARGET_DIR:-target}
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
    OBAGENT_BIN=$TARGET_DIR/debug/obagent
fi
exec env PYTHONDONTWRITEBYTECODE=1 "${PYTHON:-python3}" scripts/load.py --binary "$OBAGENT_BIN" "$@"
