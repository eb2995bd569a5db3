#!/usr/bin/env bash
# Crash soak: `scripts/crash-soak.sh N [--seed S] [...]` restores through `obagent serve`
# and SIGKILLs it N times at random moments (inside POSTs and in every restore stage),
# restarting it each time; every DAG must end SUCCEED with the source's rows
# (scripts/crash_soak.py has the details; `--help` lists the options).
#
# Python 3 standard library only. The binary under test is $OBAGENT_BIN; without it this
# script builds `obagent` with the `failpoints` feature (as scripts/sdk-suite does, so CI
# builds it once): the soak slows `Restore data` with OBRESTORE_FAILPOINT_BLOCK_DELAY_MS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${OBAGENT_BIN:-}" ]; then
    cargo build --bin obagent --features failpoints
    TARGET_DIR=${CARGO_TARGET_DIR:-target}
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
    OBAGENT_BIN=$TARGET_DIR/debug/obagent
fi
exec env PYTHONDONTWRITEBYTECODE=1 "${PYTHON:-python3}" scripts/crash_soak.py --binary "$OBAGENT_BIN" "$@"
