"""Shared plumbing of scripts/crash_soak.py and scripts/load.py (Python 3 stdlib only).

* ``Agent``: one ``obagent serve`` process with no password (so plain HTTP, no SDK): start,
  SIGKILL, restart on the same data dir, stop.
* ``Api``: JSON requests on a kept-alive connection per thread, unwrapping obshell's
  envelope (docs/api.md), with every request's latency recorded.
* ``Backup``: ``obagent backup generate`` and the restore window of what it wrote.
* ``expected_digest``: the source digest at an SCN, from the generator's truth file through
  the independent oracle of the SDK suite (``tests/sdk/truth.py``, docs/backup-format.md
  §5); ``restored_digest``: the digest ``obagent tenant show --digest`` reads offline.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "sdk"))
from truth import Digest, Workload  # noqa: E402  (the SDK suite's oracle, stdlib only)

HOST = "127.0.0.1"
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0
LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class AgentDown(Exception):
    """The agent did not answer: refused, reset or closed connection."""


@dataclass
class Reply:
    status: int
    body: Dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def err_code(self) -> Optional[str]:
        return (self.body.get("error") or {}).get("errCode")

    def describe(self) -> str:
        error = self.body.get("error") or {}
        return f"{self.status} {error.get('errCode', '')} {error.get('message', '')}".strip()


@dataclass
class Sample:
    """One request: the time the client saw, and the envelope's ``duration`` (the
    milliseconds the agent spent on it, whole; None without an envelope)."""

    method: str
    route: str
    seconds: float
    status: int
    agent_ms: Optional[int] = None


class Api:
    """obshell's API of one agent at ``port``, one kept-alive connection per thread."""

    def __init__(self, port: int):
        self.port = port
        self.samples: List[Sample] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._generation = 0

    def moved(self, port: int) -> None:
        """The agent restarted on ``port``: every thread reconnects."""
        self.port = port
        self._generation += 1

    def _connection(self) -> Tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it was used before."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "generation", None) == self._generation:
            return conn, True
        if conn is not None:
            conn.close()
        conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        self._local.conn, self._local.generation = conn, self._generation
        return conn, False

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def request(self, method: str, path: str, body: Any = None, route: str = "") -> Reply:
        """One request; ``route`` names it in the latency samples (default: ``path``).

        GETs reuse this thread's connection (and are sent once more on a fresh one if a
        reused connection fails); other methods get a fresh connection and are never
        re-sent. Raises ``AgentDown`` when the agent does not answer."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        if method != "GET":
            self._drop_connection()
        while True:
            conn, reused = self._connection()
            started = time.perf_counter()
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException) as err:
                self._drop_connection()
                if not (reused and method == "GET"):
                    raise AgentDown(f"{method} {path}: {err!r}") from err
        elapsed = time.perf_counter() - started
        parsed = json.loads(raw) if raw else {}
        sample = Sample(method, route or path, elapsed, response.status, parsed.get("duration"))
        with self._lock:
            self.samples.append(sample)
        return Reply(response.status, parsed)

    def get(self, path: str, route: str = "") -> Reply:
        return self.request("GET", path, route=route)

    def post(self, path: str, body: Any, route: str = "") -> Reply:
        return self.request("POST", path, body, route=route)

    def dag(self, generic_id: str, details: bool = False) -> Dict[str, Any]:
        reply = self.get(f"/api/v1/task/dag/{generic_id}?show_details={str(details).lower()}",
                         route="/api/v1/task/dag/:id")
        if reply.status != 200:
            raise RuntimeError(f"GET dag {generic_id}: {reply.describe()}")
        return reply.data

    def cluster_dags(self) -> List[Dict[str, Any]]:
        reply = self.get("/api/v1/task/dags/ob")
        if reply.status != 200:
            raise RuntimeError(f"GET /api/v1/task/dags/ob: {reply.describe()}")
        return reply.data.get("contents") or []

    def unfinished_dags(self) -> List[Dict[str, Any]]:
        reply = self.get("/api/v1/task/dag/unfinish")
        if reply.status != 200:
            raise RuntimeError(f"GET /api/v1/task/dag/unfinish: {reply.describe()}")
        return reply.data.get("contents") or []

    def wait_dag(self, generic_id: str, timeout: float, interval: float = 0.05) -> Dict[str, Any]:
        """Polls until the DAG is SUCCEED or FAILED; its detail (with nodes)."""
        deadline = time.monotonic() + timeout
        while True:
            dag = self.dag(generic_id)
            if dag["state"] in ("SUCCEED", "FAILED"):
                return self.dag(generic_id, details=True)
            if time.monotonic() > deadline:
                raise RuntimeError(f"DAG {generic_id} ({dag['name']}) still {dag['state']} "
                                   f"after {timeout:.0f} s")
            time.sleep(interval)


def describe_failure(dag: Dict[str, Any]) -> str:
    """The failed nodes of a DAG detail and their sub-tasks' last logs."""
    lines = [f"DAG {dag['id']} {dag['name']}: {dag['state']}"]
    for node in dag.get("nodes") or []:
        if node["state"] == "SUCCEED":
            continue
        lines.append(f"  node {node['name']}: {node['state']}")
        for sub in node.get("sub_tasks") or []:
            logs = sub.get("task_logs") or []
            if logs:
                lines.append(f"    sub-task {sub['id']} {sub['state']}: {logs[-1]}")
    return "\n".join(lines)


@dataclass
class Agent:
    """``obagent serve`` without a password; ``env`` is added to the environment."""

    binary: str
    data_dir: Path
    allow_root: Path
    log_path: Path
    env: Dict[str, str] = field(default_factory=dict)
    workers: Optional[int] = None
    extra_args: List[str] = field(default_factory=list)
    proc: Optional[subprocess.Popen] = None
    api: Optional[Api] = None
    starts: List[float] = field(default_factory=list)

    def start(self) -> Api:
        """Starts the agent (a fresh port each time) and waits until it listens."""
        args = [self.binary, "serve", "--data-dir", str(self.data_dir),
                "--listen", f"{HOST}:0", "--allow-root", str(self.allow_root)]
        if self.workers:
            args += ["--workers", str(self.workers)]
        args += self.extra_args
        started = time.perf_counter()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log,
                                     env={**os.environ, **self.env})
        log.close()
        port = self._read_port()
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        self.starts.append(time.perf_counter() - started)
        if self.api is None:
            self.api = Api(port)
        self.api.moved(port)
        return self.api

    def _read_port(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        result: List[str] = []
        reader = threading.Thread(target=lambda: result.append(
            self.proc.stdout.readline().decode(errors="replace")), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        line = result[0] if result else ""
        match = LISTENING.search(line)
        if not match:
            self.kill()
            raise RuntimeError(f"obagent serve did not start within {START_TIMEOUT:.0f} s "
                               f"(first line {line!r}); see {self.log_path}")
        return int(match.group(1))

    @staticmethod
    def _drain(proc: subprocess.Popen) -> None:
        if proc.stdout is not None:
            for _ in proc.stdout:
                pass

    def cpu_seconds(self) -> Optional[float]:
        """User + system CPU time of the running agent (Linux ``/proc``), else None."""
        if self.proc is None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing runs after it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM and wait (SIGKILL if it does not exit in ``timeout``)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


def run(binary: str, args: List[str], what: str) -> str:
    """Runs ``obagent args``; its stdout, or RuntimeError with both outputs."""
    proc = subprocess.run([binary, *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({proc.returncode}): obagent {' '.join(args)}\n"
                           f"{proc.stdout}{proc.stderr}")
    return proc.stdout


@dataclass
class Backup:
    root: Path
    data_uri: str
    archive_uri: str
    workload: Workload
    window: Tuple[int, int]

    @classmethod
    def generate(cls, binary: str, root: Path, seed: int, size: str = "8MiB",
                 log_streams: int = 2, sets: str = "FII") -> "Backup":
        out = run(binary, ["backup", "generate", "--dir", str(root), "--size", size,
                           "--seed", str(seed), "--log-streams", str(log_streams),
                           "--sets", sets, "--force"], "obagent backup generate")
        fields = {}
        for line in out.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        data_uri, archive_uri = fields["data backup uri"], fields["archive log uri"]
        workload = Workload.load(Path(fields["truth workload"]))
        windows = json.loads(run(binary, ["restore", "windows", "--data-uri", data_uri,
                                          "--archive-uri", archive_uri, "--json"],
                                 "obagent restore windows"))["restore_windows"]
        if not windows:
            raise RuntimeError(f"the generated backup has no restore window:\n{out}")
        first = windows[0]
        window = (rfc3339_to_ns(first["start_time"]), rfc3339_to_ns(first["end_time"]))
        return cls(root, data_uri, archive_uri, workload, window)

    def restore_scns(self) -> List[int]:
        """The workload's operation SCNs inside the first restore window, and its end."""
        low, high = self.window
        return self.workload.scns_between(low, high) + [high]

    def restore_body(self, tenant: str, scn: int, zone: str, unit: str) -> Dict[str, Any]:
        return {"data_backup_uri": self.data_uri, "archive_log_uri": self.archive_uri,
                "restore_tenant_name": tenant, "scn": scn,
                "zone_list": [{"name": zone, "unit_config_name": unit, "unit_num": 1}]}


def rfc3339_to_ns(text: str) -> int:
    """Nanoseconds since the epoch of a whole-second RFC 3339 time (restore windows)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000


def expected_digest(backup: Backup, scn: int) -> Digest:
    return backup.workload.digest_at(scn)


def dag_digest(dag: Dict[str, Any]) -> Optional[Digest]:
    """The digest a restore DAG's Post check recorded (``additional_data.tenant_digest``)."""
    recorded = (dag.get("additional_data") or {}).get("tenant_digest")
    if not recorded:
        return None
    return Digest(rows=recorded["rows"], sha256=recorded["sha256"])


def restored_digest(binary: str, data_dir: Path, tenant: str) -> Tuple[Digest, Dict[str, Any]]:
    """``obagent tenant show --digest`` on a stopped agent's data dir: the digest and detail."""
    detail = json.loads(run(binary, ["tenant", "show", tenant, "--digest", "--json",
                                     "--data-dir", str(data_dir)], "obagent tenant show"))
    return Digest(rows=detail["row_count"], sha256=detail["digest"]), detail


def percentile(values: List[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))
    return ordered[min(rank, len(ordered)) - 1]


def create_unit_config(api: Api, name: str) -> None:
    """A 1-CPU, 1 GiB unit config (the smallest the cluster accepts)."""
    reply = api.post("/api/v1/unit/config", {"name": name, "max_cpu": 1, "memory_size": "1GB"})
    if reply.status != 200:
        raise RuntimeError(f"creating unit config {name}: {reply.describe()}")
