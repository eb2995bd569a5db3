#!/usr/bin/env bash
# Restore against its peers: `scripts/peers-restore.sh [--size 512MiB] [--concurrency 2]
# [--runs 3] [--keep] [--quick] [--warm] [--baseline OTHER_OBAGENT]` times, in one run and
# alternating, the whole `obagent restore start` command (and another obagent's with
# `--baseline`), `pgbackrest restore --process-max=N` of a PostgreSQL
# cluster of about the same bytes, and a copy + fsync of exactly the backup files our
# restore reads; it prints medians, MB/s and the ratios (scripts/peers_restore.py has
# the details; `--help` lists the options). `--quick` (64 MiB, 3 rounds) takes a minute or
# two. Not run by CI (too heavy); docs/performance.md has the figures.
#
# Needs root (it installs what is missing, runs PostgreSQL as the `postgres` user and
# drops the page cache between runs). Installs with apt when missing: postgresql,
# pgbackrest, strace. The binary under test is $OBAGENT_BIN; without it this script builds
# the release `obagent`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "$(id -u)" != 0 ]; then
    echo "peers-restore: run as root (PostgreSQL runs as 'postgres', the page cache is dropped)" >&2
    exit 1
fi
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v pgbackrest >/dev/null || missing+=(pgbackrest)
command -v strace >/dev/null || missing+=(strace)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi
if [ -z "${OBAGENT_BIN:-}" ]; then
    cargo build --release --bin obagent
    TARGET_DIR=${CARGO_TARGET_DIR:-target}
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
    OBAGENT_BIN=$TARGET_DIR/release/obagent
fi
exec env PYTHONDONTWRITEBYTECODE=1 "${PYTHON:-python3}" scripts/peers_restore.py --binary "$OBAGENT_BIN" "$@"
