#!/usr/bin/env bash
# Fuzzes the agent's HTTP API with Schemathesis against its own OpenAPI document.
#
# Starts `obagent serve` twice, once without a password and once with one (then every
# request is signed and its body encrypted as obshell's SDK does, by the hooks in
# scripts/fuzz_api_sign.py), and runs Schemathesis (PyPI, pinned below, in its own venv:
# target/fuzz-venv unless FUZZ_VENV is set) against the served
# /api/v1/openapi.json. Checks: no 5xx, every status documented for its operation,
# every body the documented schema and content type. The agent's own request log is
# the count: a run fails on any 5xx in it, on any Schemathesis failure, and (full
# mode) on fewer than 1,000 requests.
#
#   scripts/fuzz-api.sh            full: the examples, coverage and fuzzing phases,
#                                  FUZZ_API_EXAMPLES (default 40) cases per operation
#                                  and phase, >= 1,000 requests per run
#   scripts/fuzz-api.sh --short    CI: the fuzzing phase, 3 cases per operation (also
#                                  FUZZ_API_SHORT=1), >= 100 requests per run
#   scripts/fuzz-api.sh --cluster [--short]
#                                  through a follower: a real etcd (etcd-server), a
#                                  maintainer and a follower with one password; every
#                                  request goes to the follower, which answers it,
#                                  reads it from etcd or forwards it. The maintainer's
#                                  log counts what was forwarded; Schemathesis' checks
#                                  cover every answer. Not in CI.
#
# The binary under test is $OBAGENT_BIN; without it this script builds `obagent` as
# scripts/sdk-suite does (same features, so after the SDK suite nothing is rebuilt).
# FUZZ_API_SEED fixes Schemathesis' seed (default 1). FUZZ_API_KEEP=1 keeps the work
# dir (agent logs, Schemathesis reports) and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
PYCRYPTODOME_VERSION=4.4.0
PYTHON=${PYTHON:-python3}
VENV=${FUZZ_VENV:-$ROOT/target/fuzz-venv}
SHORT=${FUZZ_API_SHORT:-0}
CLUSTER=0
for arg in "$@"; do
    case "$arg" in
        --short) SHORT=1 ;;
        --cluster) CLUSTER=1 ;;
        *) echo "fuzz-api: unknown argument $arg" >&2; exit 2 ;;
    esac
done
if [ "$SHORT" = 1 ]; then
    EXAMPLES=3
    PHASES=fuzzing
    MIN_REQUESTS=100
else
    EXAMPLES=${FUZZ_API_EXAMPLES:-40}
    PHASES=examples,coverage,fuzzing
    MIN_REQUESTS=1000
fi
SEED=${FUZZ_API_SEED:-1}

if [ ! -x "$VENV/bin/python" ]; then
    echo "fuzz-api: creating venv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$SCHEMATHESIS_VERSION" "$PYCRYPTODOME_VERSION" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(0 if (version("schemathesis"), version("pycryptodome")) == (sys.argv[1], sys.argv[2]) else 1)
PY
    echo "fuzz-api: installing schemathesis==$SCHEMATHESIS_VERSION pycryptodome==$PYCRYPTODOME_VERSION"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" "pycryptodome==$PYCRYPTODOME_VERSION"
fi

if [ -z "${OBAGENT_BIN:-}" ]; then
    cargo build --bin obagent --features failpoints
    TARGET_DIR=${CARGO_TARGET_DIR:-target}
    case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
    OBAGENT_BIN=$TARGET_DIR/debug/obagent
fi
echo "fuzz-api: testing $OBAGENT_BIN ($EXAMPLES cases per operation and phase, seed $SEED)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-api.XXXXXX")
AGENT_PID=""
EXTRA_PIDS=()
cleanup() {
    for pid in $AGENT_PID "${EXTRA_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "${FUZZ_API_KEEP:-0}" = 1 ]; then
        echo "fuzz-api: work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# start_agent NAME [PASSWORD [SERVE ARGS...]]: starts `obagent serve` on a free port;
# sets AGENT_URL and AGENT_PID.
start_agent() {
    local dir=$WORK/$1
    mkdir -p "$dir/backup"
    local password_args=()
    if [ -n "${2:-}" ]; then
        printf '%s\n' "$2" > "$dir/password"
        chmod 600 "$dir/password"
        password_args=(--password-file "$dir/password")
    fi
    env -u OBAGENT_PASSWORD OBAGENT_LOG=obrestore_server=info NO_COLOR=1 \
        "$OBAGENT_BIN" serve --data-dir "$dir/data" --listen 127.0.0.1:0 \
        --allow-root "$dir/backup" "${password_args[@]}" "${@:3}" \
        > "$dir/stdout.log" 2> "$dir/agent.log" < /dev/null &
    AGENT_PID=$!
    AGENT_URL=""
    for _ in $(seq 1 1800); do
        AGENT_URL=$(grep -o 'http://[0-9.:]*' "$dir/stdout.log" 2>/dev/null | head -n1 || true)
        [ -n "$AGENT_URL" ] && return 0
        kill -0 "$AGENT_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "fuzz-api: the agent did not start:" >&2
    cat "$dir/agent.log" >&2
    exit 1
}

stop_agent() {
    kill "$AGENT_PID"
    wait "$AGENT_PID" || true
    AGENT_PID=""
}

# start_cluster NAME PASSWORD: an etcd, a maintainer (NAME-maintainer) and a follower
# (NAME); AGENT_URL and AGENT_PID are the follower's, the log counted is the
# maintainer's (copied to NAME/agent.log when the run ends).
start_cluster() {
    local name=$1 password=$2
    local etcd_dir=$WORK/$name-etcd
    mkdir -p "$etcd_dir"
    local ports
    ports=$("$PYTHON" -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))')
    local client=${ports% *} peer=${ports#* }
    etcd --data-dir "$etcd_dir/data" --listen-client-urls "http://127.0.0.1:$client" \
        --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "default=http://127.0.0.1:$peer" \
        --max-txn-ops 8192 --max-request-bytes 16777216 > "$etcd_dir/etcd.log" 2>&1 &
    EXTRA_PIDS+=($!)
    local cluster=(--cluster "etcd://127.0.0.1:$client" --shared-dir "$WORK/$name-shared"
        --lease-ttl-secs 3)
    start_agent "$name-maintainer" "$password" "${cluster[@]}" --zone z1
    EXTRA_PIDS+=("$AGENT_PID")
    MAINTAINER_DIR=$WORK/$name-maintainer
    for _ in $(seq 1 600); do
        grep -q "maintainer of cluster" "$MAINTAINER_DIR/agent.log" 2>/dev/null && break
        sleep 0.1
    done
    start_agent "$name" "$password" "${cluster[@]}" --zone z2
}

# run NAME [PASSWORD]: one agent (with --cluster: a follower of a cluster), one
# Schemathesis run; prints the counts, returns 1 on any failure.
run() {
    local name=$1 password=${2:-}
    if [ "$CLUSTER" = 1 ]; then
        start_cluster "$name" "$password"
    else
        start_agent "$name" "$password"
    fi
    local dir=$WORK/$name rc=0
    # From the work dir, so Schemathesis' own files (.schemathesis/) stay out of the tree.
    (cd "$dir" && FUZZ_AGENT_URL=$AGENT_URL FUZZ_AGENT_PASSWORD=$password \
    SCHEMATHESIS_HOOKS=$ROOT/scripts/fuzz_api_sign.py \
        "$VENV/bin/schemathesis" run "$AGENT_URL/api/v1/openapi.json" \
        --url "$AGENT_URL" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
        --phases "$PHASES" \
        --max-examples "$EXAMPLES" --seed "$SEED" --workers 2 \
        --suppress-health-check all --no-color \
        > "$dir/schemathesis.log" 2>&1) || rc=$?
    stop_agent
    if [ "$CLUSTER" = 1 ]; then
        # The follower logs no request of its own: count what reached the maintainer.
        mv "$dir/agent.log" "$dir/follower.log"
        cp "$MAINTAINER_DIR/agent.log" "$dir/agent.log"
    fi
    # One log line per request: `... request method=.. path=.. status=NNN ...`.
    local requests errors
    requests=$(sed 's/\x1b\[[0-9;]*m//g' "$dir/agent.log" | grep -c ' request method=' || true)
    errors=$(sed 's/\x1b\[[0-9;]*m//g' "$dir/agent.log" | grep ' request method=' \
        | grep -c 'status=5[0-9][0-9]' || true)
    local cases
    cases=$(grep -A1 '^Test cases:' "$dir/schemathesis.log" | tail -n1 | sed 's/^ *//' || true)
    echo "fuzz-api: $name: $requests requests, $errors answered 5xx, schemathesis exit $rc (test cases: $cases)"
    local statuses
    statuses=$(sed 's/\x1b\[[0-9;]*m//g' "$dir/agent.log" | grep ' request method=' \
        | grep -o 'status=[0-9]*' | cut -d= -f2 | sort | uniq -c \
        | awk '{printf "%s%s×%s", sep, $2, $1; sep=", "}' || true)
    echo "fuzz-api: $name: statuses $statuses"
    if [ "$rc" -ne 0 ] || [ "$errors" -ne 0 ] || [ "$requests" -lt "$MIN_REQUESTS" ]; then
        echo "fuzz-api: $name FAILED; the Schemathesis report:" >&2
        tail -n 200 "$dir/schemathesis.log" >&2
        if [ "$errors" -ne 0 ]; then
            sed 's/\x1b\[[0-9;]*m//g' "$dir/agent.log" | grep 'status=5[0-9][0-9]' | head -n 20 >&2
        fi
        return 1
    fi
}

start=$(date +%s)
status=0
if [ "$CLUSTER" = 0 ]; then
    run open || status=1
fi
run password "fuzz-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" || status=1
elapsed=$(( $(date +%s) - start ))
if [ "$status" -eq 0 ]; then
    echo "fuzz-api: PASSED in ${elapsed}s"
else
    echo "fuzz-api: FAILED in ${elapsed}s"
fi
exit "$status"
