"""Fixtures of the obshell SDK conformance suite.

* ``backup``: one small generated backup per session (``obagent backup generate``: two
  user log streams, one FULL then 19 INCREMENTAL sets, no encryption) and its truth file.
* ``agent`` / ``client``: ``obagent serve`` with a password, driven by
  ``obshell.ClientV1(..., PasswordAuth(password))`` (v2 auth: AES bodies, X-OCS-Header).
* ``slow_agent`` / ``slow_client``: a second agent whose ``Restore data`` is slowed by
  ``OBRESTORE_FAILPOINT_BLOCK_DELAY_MS=40`` so tests can act while it runs. The failpoint
  exists only in an ``obagent`` built with ``--features failpoints`` (``scripts/sdk-suite``
  builds it so); other builds ignore the variable.
* ``restored``: the session's reference restore (``post_tenant_restore_sync``) to an
  explicit SCN inside the workload.

The binary is ``$OBAGENT_BIN`` (default ``<repo>/target/debug/obagent``). At the end the
coverage of the SDK methods and routes the suite exercised is printed and written to
``target/sdk-coverage.txt``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import obshell.service.client_v1 as client_v1_module
from obshell import ClientV1

import sdkutil
from sdkutil import MAIN_TENANT, Agent, Backup, make_client, rfc3339_to_ns
from truth import Workload

REPO = Path(__file__).resolve().parents[2]
BINARY = os.environ.get("OBAGENT_BIN") or str(REPO / "target" / "debug" / "obagent")
COVERAGE_FILE = Path(os.environ.get("SDK_COVERAGE_FILE") or REPO / "target" / "sdk-coverage.txt")
# The SDK's wait_dag_succeed sleeps 3 s between polls; the suite caps its sleeps at this
# (set SDK_SUITE_SDK_SLEEP=3 to run the SDK with its own timing).
# etcd `host:port`: run every agent as a follower of a cluster on it (`_cluster_agents`).
CLUSTER_ETCD = os.environ.get("SDK_SUITE_ETCD", "")
SDK_SLEEP_CAP = float(os.environ.get("SDK_SUITE_SDK_SLEEP", "0.25"))


# --------------------------------------------------------------------------------------
# Session plumbing: recorder, SDK sleep cap, process cleanup, coverage report
# --------------------------------------------------------------------------------------


def pytest_sessionstart(session: Any) -> None:
    try:
        COVERAGE_FILE.unlink()
    except OSError:
        pass


@pytest.fixture(scope="session", autouse=True)
def sdk_recorder():
    """Records every ClientV1 method the tests call and every route requested."""
    undo = sdkutil.install_recorder()
    yield sdkutil.RECORDER
    undo()


# wait_dag_succeed polls until the DAG ends, forever: the suite gives up after this.
SDK_WAIT_LIMIT = 120
_WAIT = threading.local()


class _CappedTime:
    """`time` for obshell.service.client_v1: sleeps capped, and a deadline on the
    polling of wait_dag_succeed (and so of every *_sync method)."""

    def __init__(self, cap: float):
        self._cap = cap

    def sleep(self, seconds: float) -> None:
        deadline = getattr(_WAIT, "deadline", None)
        if deadline is not None and time.monotonic() > deadline:
            raise AssertionError(f"wait_dag_succeed({_WAIT.dag}): the DAG did not finish "
                                 f"within {SDK_WAIT_LIMIT} s")
        time.sleep(min(seconds, self._cap))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture(scope="session", autouse=True)
def sdk_fast_polling(sdk_recorder):
    mp = pytest.MonkeyPatch()
    mp.setattr(client_v1_module, "time", _CappedTime(SDK_SLEEP_CAP))
    recorded = ClientV1.wait_dag_succeed

    def wait_dag_succeed(self, generic_id, *args, **kwargs):
        _WAIT.deadline, _WAIT.dag = time.monotonic() + SDK_WAIT_LIMIT, generic_id
        try:
            return recorded(self, generic_id, *args, **kwargs)
        finally:
            _WAIT.deadline = None

    mp.setattr(ClientV1, "wait_dag_succeed", wait_dag_succeed)
    yield
    mp.undo()


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    sdkutil.stop_all_agents()  # in case a fixture finalizer did not run
    if session.config.option.collectonly:
        return
    COVERAGE_FILE.parent.mkdir(parents=True, exist_ok=True)
    COVERAGE_FILE.write_text(sdkutil.RECORDER.report() + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if terminalreporter.config.option.collectonly:
        return
    terminalreporter.section("obshell SDK coverage")
    for line in sdkutil.RECORDER.report().splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {COVERAGE_FILE})")


# --------------------------------------------------------------------------------------
# Backup
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: Any) -> Path:
    return tmp_path_factory.mktemp("sdk-suite")


def _run(args: list, what: str) -> str:
    if not os.access(BINARY, os.X_OK):
        pytest.exit(f"obagent binary not found at {BINARY} (set OBAGENT_BIN)", returncode=2)
    proc = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): {' '.join(args)}\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="session")
def backup(work_dir: Path) -> Backup:
    root = work_dir / "backup"
    # Two user log streams (1001, 1002); one FULL set then 19 INCREMENTALs, so every
    # restore reads set 1 and a late one reads ~20 data blocks per log stream (each
    # delayed 40 ms on the slow agent); no --password: no encryption.
    out = _run(["backup", "generate", "--dir", str(root), "--size", "8MiB", "--force",
                "--log-streams", "2", "--sets", "F" + "I" * 19], "obagent backup generate")
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    data_uri = fields["data backup uri"]
    archive_uri = fields["archive log uri"]
    truth_file = Path(fields["truth workload"])
    # "mysql_tenant (id 1002), log streams [1, 1001, 1002], 4096 ops, 2080 live rows"
    summary = re.search(r"(\d+) ops, (\d+) live rows", fields.get("tenant", ""))
    assert summary, f"no ops/live rows summary in the generator's output:\n{out}"
    workload = Workload.load(truth_file)
    user_ls = [ls for ls in workload.log_streams() if ls != 1]
    assert len(user_ls) >= 2, f"the backup should have >= 2 user log streams: {out}"
    windows_json = _run(["restore", "windows", "--data-uri", data_uri, "--archive-uri",
                         archive_uri, "--json"], "obagent restore windows")
    windows = [(rfc3339_to_ns(w["start_time"]), rfc3339_to_ns(w["end_time"]))
               for w in json.loads(windows_json)["restore_windows"]]
    assert windows, f"the generated backup has no restore window: {windows_json}"
    return Backup(root=root, data_uri=data_uri, archive_uri=archive_uri,
                  truth_file=truth_file, tenant_dir=truth_file.parent.parent,
                  user_ls=user_ls, windows=windows, workload=workload,
                  generated_ops=int(summary.group(1)), generated_live_rows=int(summary.group(2)))


# --------------------------------------------------------------------------------------
# Agents and clients
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def agents(work_dir: Path, backup: Backup):
    if CLUSTER_ETCD:
        yield from _cluster_agents(work_dir, backup)
        return
    main = Agent("main", BINARY, work_dir / "agent-main", backup.root)
    slow = Agent("slow", BINARY, work_dir / "agent-slow", backup.root,
                 env={"OBRESTORE_FAILPOINT_BLOCK_DELAY_MS": "40"})
    try:
        # Both start at once (key generation dominates a debug build's start-up).
        sdkutil.start_agents([main, slow])
        yield main, slow
    finally:
        main.stop()
        slow.stop()


def _cluster_agents(work_dir: Path, backup: Backup):
    """Cluster mode (``SDK_SUITE_ETCD=host:port``, set by ``scripts/sdk-suite --cluster``):
    "main" and "slow" are each a cluster of two agents on that etcd, a maintainer
    started first and a follower; the suite talks only to the followers, which forward
    every request to their maintainer."""
    made = []
    try:
        pairs = []
        for name, env in (("main", {}), ("slow", {"OBRESTORE_FAILPOINT_BLOCK_DELAY_MS": "40"})):
            shared = work_dir / f"shared-{name}"
            maintainer = Agent(f"{name}-maintainer", BINARY, work_dir / f"agent-{name}-m",
                               backup.root, env=env,
                               args=sdkutil.cluster_args(CLUSTER_ETCD, f"sdk-{name}", "z1", shared))
            follower = Agent(name, BINARY, work_dir / f"agent-{name}", backup.root, env=env,
                             args=sdkutil.cluster_args(CLUSTER_ETCD, f"sdk-{name}", "z2", shared))
            made += [maintainer, follower]
            pairs.append((maintainer, follower))
        sdkutil.start_agents([m for m, _ in pairs])
        for maintainer, _ in pairs:
            sdkutil.wait_maintainer(maintainer)
        sdkutil.start_agents([f for _, f in pairs])
        for maintainer, follower in pairs:
            follower.maintainer = maintainer
        yield pairs[0][1], pairs[1][1]
    finally:
        for agent in made:
            agent.stop()


@pytest.fixture(scope="session")
def agent(agents: Any) -> Agent:
    return agents[0]


@pytest.fixture(scope="session")
def slow_agent(agents: Any) -> Agent:
    return agents[1]


@pytest.fixture(scope="session")
def client(agent: Agent):
    return make_client(agent.port)


@pytest.fixture(scope="session")
def slow_client(slow_agent: Agent):
    return make_client(slow_agent.port)


# --------------------------------------------------------------------------------------
# The reference restore
# --------------------------------------------------------------------------------------


@dataclass
class Restored:
    tenant: str
    scn: int
    dag: Any          # DagDetailDTO returned by post_tenant_restore_sync
    expected: Any     # truth.Digest at scn


@pytest.fixture(scope="session")
def restored(client: Any, backup: Backup) -> Restored:
    """``post_tenant_restore_sync`` of tenant sdk_main on z1 to an operation SCN at 60 %
    of the restore window; the digest the oracle expects there."""
    scn = backup.scn_at(0.6)
    dag = client.post_tenant_restore_sync(
        backup.data_uri, MAIN_TENANT, [sdkutil.zone("z1")],
        archive_log_uri=backup.archive_uri, scn=scn)
    return Restored(MAIN_TENANT, scn, dag, backup.workload.digest_at(scn))
