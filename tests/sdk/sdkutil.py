"""Helpers of the obshell SDK conformance suite: the agent processes, signed raw requests,
DAG polling, error assertions and the coverage recorder.

Everything here goes through obshell's official Python SDK (PyPI ``obshell``): clients
are ``obshell.ClientV1`` with ``PasswordAuth``, and raw requests for routes the SDK has no
method for are ``obshell.request.BaseRequest`` objects executed by ``client._execute``,
so they are signed (v2: AES body, ``X-OCS-Header``) exactly like SDK calls.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import signal
import socket
import urllib.error
import urllib.request
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote

from obshell import ClientV1, OBShellHandleError
from obshell.auth.password import PasswordAuth
from obshell.model.tenant import ZoneParam
from obshell.request import BaseRequest

PASSWORD = "Sdk-Pa55"  # short: the v2 header is RSA-encrypted in 53-byte chunks
MAIN_TENANT = "sdk_main"  # the session's reference restore (conftest `restored`)
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 60
POLL_INTERVAL = 0.2
DAG_TIMEOUT = 90

# The restore DAG's layers (SPEC; DagDetailDTO.stage runs 1..=max_stage over these).
RESTORE_LAYERS = [
    "Pre restore check",
    "Create resource pools",
    "Create restoring tenant",
    "Restore sys tablets",
    "Restore tablets meta",
    "Restore data",
    "Replay log",
    "Post check",
    "Activate tenant",
    "Upgrade tenant",
]


def layer_of(node_name: str) -> int:
    """Index in RESTORE_LAYERS of a restore node name ("Restore data 1001" -> 5)."""
    for index, layer in enumerate(RESTORE_LAYERS):
        if node_name == layer or node_name.startswith(layer + " "):
            return index
    raise AssertionError(f"node {node_name!r} is no restore layer of {RESTORE_LAYERS}")


# --------------------------------------------------------------------------------------
# Agent processes
# --------------------------------------------------------------------------------------

_LIVE: "set[Agent]" = set()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the agent gets SIGKILL if the test process dies without cleaning up."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Agent:
    """One `obagent serve` process with its own data dir and password file."""

    def __init__(self, name: str, binary: str, workdir: Path, allow_root: Path,
                 env: Optional[Dict[str, str]] = None, args: Optional[List[str]] = None):
        self.name = name
        self.extra_args = list(args or [])
        self.binary = binary
        self.workdir = Path(workdir)
        self.allow_root = Path(allow_root)
        self.extra_env = dict(env or {})
        self.data_dir = self.workdir / "data"
        self.password_file = self.workdir / "password"
        self.stdout_path = self.workdir / "stdout.log"
        self.stderr_path = self.workdir / "stderr.log"
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.port = 0
        # Where this agent's DAGs run (`execute_agent`): itself, or in cluster mode its
        # maintainer.
        self.maintainer: Optional["Agent"] = None
        self._files: list = []

    # The process is spawned from the calling (main) thread: PDEATHSIG follows the
    # spawning thread.
    def spawn(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)
        env = os.environ.copy()
        env.pop("OBAGENT_PASSWORD", None)
        env.update(self.extra_env)
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self._files = [out, err]
        self.requested_port = free_port()
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", str(self.data_dir),
             "--listen", f"{HOST}:{self.requested_port}",
             "--password-file", str(self.password_file),
             "--allow-root", str(self.allow_root)] + self.extra_args,
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
            start_new_session=True, preexec_fn=_die_with_parent)
        _LIVE.add(self)

    def wait_ready(self, timeout: float = 180) -> None:
        """Waits for stdout's first line, which carries the http:// URL once listening."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            first = ""
            try:
                with open(self.stdout_path, "r", errors="replace") as f:
                    first = f.readline()
            except OSError:
                pass
            if first.endswith("\n") or "http://" in first:
                url = next((w for w in first.split() if w.startswith("http://")), "")
                if not url:
                    raise RuntimeError(
                        f"agent {self.name}: first stdout line has no http:// URL: {first!r}\n"
                        f"stderr:\n{tail(self.stderr_path)}")
                self.url = url.rstrip("/")
                self.port = int(self.url.rsplit(":", 1)[1])
                return
            code = self.proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"agent {self.name} exited with {code} before listening "
                    f"(port {self.requested_port})\nstderr:\n{tail(self.stderr_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"agent {self.name} did not print its URL within {timeout}s\n"
                    f"stderr:\n{tail(self.stderr_path)}")
            time.sleep(0.05)

    @property
    def executor_port(self) -> int:
        return (self.maintainer or self).port

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; only this agent's own pid."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        for f in self._files:
            try:
                f.close()
            except OSError:
                pass
        self._files = []
        _LIVE.discard(self)

    def __repr__(self) -> str:
        return f"Agent({self.name}, {self.url or 'not started'})"


def stop_all_agents() -> None:
    for agent in list(_LIVE):
        agent.stop()


atexit.register(stop_all_agents)


def start_agents(agents: List[Agent], attempts: int = 3) -> None:
    """Spawns all, then waits for each; an agent that exited before listening (its free
    port was taken meanwhile) is spawned again on another port."""
    for agent in agents:
        agent.spawn()
    for agent in agents:
        for attempt in range(attempts):
            try:
                agent.wait_ready()
                break
            except RuntimeError:
                exited = agent.proc is not None and agent.proc.poll() is not None
                agent.stop()
                if not exited or attempt == attempts - 1:
                    raise
                agent.spawn()


def cluster_args(etcd: str, name: str, zone: str, shared_dir: Path) -> List[str]:
    """`obagent serve` arguments of an agent of cluster `name` on etcd `host:port`."""
    return ["--cluster", f"etcd://{etcd}", "--cluster-name", name, "--zone", zone,
            "--shared-dir", str(shared_dir), "--lease-ttl-secs", "3"]


def wait_maintainer(agent: Agent, timeout: float = 60) -> None:
    """Waits until `agent` answers `GET /api/v1/info` (no auth) with 200: started
    first and alone in its cluster, it answers only once it is the maintainer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{agent.url}/api/v1/info", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"agent {agent.name} did not become maintainer within "
                               f"{timeout}s\nstderr:\n{tail(agent.stderr_path)}")
        time.sleep(0.1)


def make_client(port: int) -> ClientV1:
    return ClientV1(HOST, port, PasswordAuth(PASSWORD), timeout=REQUEST_TIMEOUT)


# --------------------------------------------------------------------------------------
# Raw signed requests
# --------------------------------------------------------------------------------------


@dataclass
class RawAnswer:
    status: int
    body: Any
    text: str
    request: BaseRequest

    @property
    def data(self) -> Any:
        return (self.body or {}).get("data") if isinstance(self.body, dict) else None

    @property
    def error(self) -> dict:
        return (self.body or {}).get("error") or {} if isinstance(self.body, dict) else {}

    @property
    def err_code(self) -> str:
        return self.error.get("errCode", "")

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.text[:600]}"


def raw(client: ClientV1, method: str, uri: str, data: Any = None,
        query: Optional[dict] = None, once: bool = False) -> RawAnswer:
    """A request signed by the SDK's own machinery.

    By default it goes through ``client._execute`` (exactly like SDK methods, which
    re-send a request once after most errors). ``once=True`` sends it a single time
    (``Client.__real_execute``: still signed by the SDK), for races.
    """
    req = BaseRequest(uri, method, client.host, client.port, data=data,
                      query_param=query, need_auth=True, timeout=REQUEST_TIMEOUT)
    if once:
        path = unquote(req.uri)
        key = route_of(method.upper(), path)
        book = RECORDER.routes if key else RECORDER.other_routes
        key = key or f"{method.upper()} {path}"
        book[key] = book.get(key, 0) + 1
        resp = client._Client__real_execute(req)  # noqa: SLF001 - signed, sent once
    else:
        resp = client._execute(req)
    body = None
    if resp.content:
        try:
            body = resp.json()
        except ValueError:
            body = None
    return RawAnswer(resp.status_code, body, resp.text, req)


ENVELOPE_KEYS = {"successful", "timestamp", "duration", "status", "traceId"}


def check_envelope(answer: RawAnswer, status: int, err_code: Optional[str] = None) -> None:
    """The obshell envelope with this HTTP status (and errCode for errors)."""
    assert answer.status == status, f"expected HTTP {status}: {answer}"
    body = answer.body
    assert isinstance(body, dict), f"no JSON envelope: {answer}"
    missing = ENVELOPE_KEYS - body.keys()
    assert not missing, f"envelope lacks {sorted(missing)}: {answer}"
    assert body["status"] == status, f"envelope status {body['status']} != HTTP {status}"
    assert body["successful"] is (status < 400), f"successful flag wrong: {answer}"
    assert isinstance(body["traceId"], str) and body["traceId"], answer
    if status >= 400:
        err = body.get("error")
        assert isinstance(err, dict), f"error object missing: {answer}"
        assert "errCode" in err and "message" in err, f"error lacks errCode/message: {answer}"
        assert "data" not in body or body["data"] is None, answer
        if err_code is not None:
            assert err["errCode"] == err_code, \
                f"expected errCode {err_code}, got {err['errCode']}: {err.get('message')}"


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def expect_error(call: Callable[[], Any], err_code: str, status: Optional[int] = None,
                 client: Optional[ClientV1] = None) -> OBShellHandleError:
    """Runs an SDK call that must raise OBShellHandleError with this errCode (and, with
    ``client``, must have been answered with this HTTP status)."""
    try:
        result = call()
    except OBShellHandleError as err:
        assert err.err_code == err_code, (
            f"expected errCode {err_code}, got {err.err_code or err.code}: {err.message}")
        if status is not None and client is not None:
            got = last_status(client)
            assert got == status, f"{err_code}: expected HTTP {status}, got {got}"
        return err
    raise AssertionError(f"expected OBShellHandleError {err_code}, but the call "
                         f"succeeded (HTTP {last_status(client) if client else '?'}) "
                         f"and returned {describe(result)}")


def describe(value: Any) -> str:
    if hasattr(value, "__dict__"):
        try:
            return str(value)[:800]
        except Exception:  # noqa: BLE001 - SDK model_str may choke
            return repr(vars(value))[:800]
    return repr(value)[:800]


# --------------------------------------------------------------------------------------
# DAGs
# --------------------------------------------------------------------------------------


def describe_dag(dag: Any) -> str:
    """One line per node, with the last log of failed sub-tasks: for failure messages."""
    if dag is None:
        return "<no DAG>"
    lines = [f"DAG {dag.generic_id} {dag.name!r} {dag.state}/{dag.operator} "
             f"stage {dag.stage}/{dag.max_stage} additional_data={dag.additional_data}"]
    for node in dag.nodes or []:
        lines.append(f"  node {node.generic_id} {node.name!r} {node.state}/{node.operator}")
        for sub in node.sub_tasks or []:
            if sub.state == "FAILED" and sub.task_logs:
                lines.append(f"    failed sub-task {sub.generic_id}: {sub.task_logs[-1]}")
    return "\n".join(lines)


def is_finished(dag: Any) -> bool:
    return dag.state in ("SUCCEED", "FAILED")


def wait_dag(client: ClientV1, generic_id: str, until: Callable[[Any], bool] = is_finished,
             timeout: float = DAG_TIMEOUT, what: str = "to finish") -> Any:
    """Polls get_dag (with details) every 0.2 s until ``until(dag)``."""
    deadline = time.monotonic() + timeout
    while True:
        dag = client.get_dag(generic_id)
        if until(dag):
            return dag
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for DAG {generic_id} "
                                 f"{what}:\n{describe_dag(dag)}")
        time.sleep(POLL_INTERVAL)


def node_named(dag: Any, prefix: str) -> Any:
    for node in dag.nodes:
        if node.name == prefix or node.name.startswith(prefix):
            return node
    raise AssertionError(f"no node named {prefix!r}:\n{describe_dag(dag)}")


def running_restore_data(dag: Any) -> bool:
    return any(n.name.startswith("Restore data") and n.state == "RUNNING" for n in dag.nodes)


# --------------------------------------------------------------------------------------
# Restores and tenants
# --------------------------------------------------------------------------------------


@dataclass
class Backup:
    root: Path
    data_uri: str
    archive_uri: str
    truth_file: Path
    tenant_dir: Path
    user_ls: List[int]
    windows: List[Tuple[int, int]]  # restore windows in SCN (ns), from `restore windows`
    workload: Any = None
    generated_ops: int = 0        # as printed by `backup generate`
    generated_live_rows: int = 0  # rows live at the end of the workload, ditto
    source_tenant: str = "mysql_tenant"
    source_cluster: str = "obcluster"

    def data_path(self) -> Path:
        return Path(self.data_uri[len("file://"):])

    def scn_at(self, fraction: float) -> int:
        """An operation SCN of the workload at ``fraction`` of the first restore window."""
        lo, hi = self.windows[0]
        scns = self.workload.scns_between(lo, hi)
        assert scns, f"no workload operation inside the restore window {lo}..{hi}"
        return scns[min(len(scns) - 1, int(len(scns) * fraction))]


def zone(name: str = "z1", unit: str = "s1", num: int = 1,
         replica_type: Optional[str] = None) -> ZoneParam:
    return ZoneParam(name, unit, num, replica_type)


def restore_body(backup: Backup, tenant: str, scn: Optional[int] = None,
                 zone_name: str = "z1", **extra: Any) -> dict:
    body = {
        "data_backup_uri": backup.data_uri,
        "archive_log_uri": backup.archive_uri,
        "restore_tenant_name": tenant,
        "zone_list": [{"name": zone_name, "unit_config_name": "s1", "unit_num": 1}],
    }
    if scn is not None:
        body["scn"] = scn
    body.update(extra)
    return body


def submit_restore(client: ClientV1, backup: Backup, tenant: str, scn: int,
                   zone_name: str = "z1", concurrency: Optional[int] = None) -> Any:
    return client.post_tenant_restore(backup.data_uri, tenant, [zone(zone_name)],
                                      archive_log_uri=backup.archive_uri, scn=scn,
                                      concurrency=concurrency)


def tenant_names(client: ClientV1) -> List[str]:
    return [t.name for t in client.get_all_tenants()]


def pool_names(client: ClientV1) -> List[str]:
    return [p.name for p in client.get_all_resource_pools()]


def drop_tenant_quietly(client: ClientV1, name: str) -> None:
    """Cleanup: drop a tenant (through its DAG) and wait; never raises."""
    try:
        dag = client.drop_tenant(name)
        if dag is not None:
            wait_dag(client, dag.generic_id, timeout=30)
    except Exception:  # noqa: BLE001 - cleanup only
        pass


class MissingFile:
    """Renames a file out of the way for the duration of a ``with`` block."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.moved = self.path.with_name(self.path.name + ".sdk-suite-moved")

    def __enter__(self) -> "MissingFile":
        os.rename(self.path, self.moved)
        return self

    def put_back(self) -> None:
        if self.moved.exists() and not self.path.exists():
            os.rename(self.moved, self.path)

    def __exit__(self, *exc: Any) -> None:
        self.put_back()


def macro_block_file(backup: Backup, ls: int) -> Path:
    """A data file of user log stream ``ls`` in the backup's only FULL set (set 1), so
    every restore of this backup reads it in ``Restore data <ls>``."""
    files = sorted(backup.data_path().glob(f"backup_set_1_full/logstream_{ls}/*/macro_block_data.*.obbak"))
    assert files, f"no macro_block_data file of log stream {ls} under {backup.data_path()}"
    return files[0]


# --------------------------------------------------------------------------------------
# SCN <-> RFC 3339
# --------------------------------------------------------------------------------------

_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
                      r"(Z|[+-]\d\d:?\d\d)?$")


def rfc3339_to_ns(text: str) -> int:
    """Nanoseconds since the Unix epoch of an RFC 3339 time (any fraction length)."""
    import calendar
    m = _RFC3339.match(text.strip())
    assert m, f"not an RFC 3339 time: {text!r}"
    year, mon, day, hh, mm, ss = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "").ljust(9, "0")
    tz = m.group(8) or "Z"
    offset = 0
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    secs = calendar.timegm((year, mon, day, hh, mm, ss, 0, 0, 0)) - offset
    return secs * 1_000_000_000 + int(frac)


# --------------------------------------------------------------------------------------
# Coverage recorder
# --------------------------------------------------------------------------------------

# The SDK methods of the areas this suite judges (restore, task, tenant, unit config,
# resource pool, info, status), as listed in the suite's brief.
AREA_METHODS: Dict[str, List[str]] = {
    "info/status": ["get_info", "get_status", "get_ob_info"],
    "task": ["get_dag", "operate_dag", "operate_dag_sync", "get_node", "get_sub_task",
             "wait_dag_succeed", "get_unfinished_dags", "get_cluster_unfinished_dag",
             "get_agent_unfinished_dag", "get_ob_last_maintenance_dag",
             "get_agent_last_maintenance_dag", "get_all_agent_last_maintenance_dag"],
    "restore": ["post_tenant_restore", "post_tenant_restore_sync", "delete_tenant_restore",
                "delete_tenant_restore_sync", "get_tenant_restore_overview",
                "get_restore_windows"],
    "unit config": ["create_resource_unit_config", "drop_resource_unit_config",
                    "get_all_resource_unit_configs", "get_resource_unit_config"],
    "resource pool": ["get_all_resource_pools", "drop_resource_pool"],
    "tenant": ["drop_tenant", "drop_tenant_sync", "get_tenant_info", "get_all_tenants",
               "get_all_recyclebin_tenants", "flashback_recyclebin_tenant",
               "purge_recyclebin_tenant", "purge_recyclebin_tenant_sync"],
    "tenant admin": ["create_tenant", "create_tenant_sync", "lock_tenant", "unlock_tenant",
                     "rename_tenant", "add_tenant_replica", "add_tenant_replica_sync",
                     "delete_tenant_replica", "delete_tenant_replica_sync",
                     "modify_tenant_replica", "modify_tenant_replica_sync",
                     "set_tenant_primary_zone", "set_tenant_primary_zone_sync",
                     "set_tenant_whitelist", "set_tenant_root_password",
                     "persist_tenant_root_password", "set_tenant_variables",
                     "get_tenant_variable", "get_tenant_variables",
                     "set_tenant_parameters", "get_tenant_parameter",
                     "get_tenant_parameters"],
}

# obshell's routes of these areas (ob/agent/api/*.go), as (method, template).
AREA_ROUTES: List[Tuple[str, str]] = [
    ("GET", "/api/v1/info"), ("GET", "/api/v1/status"), ("GET", "/api/v1/ob/info"),
    ("GET", "/api/v1/task/dag/:id"), ("POST", "/api/v1/task/dag/:id"),
    ("GET", "/api/v1/task/node/:id"), ("POST", "/api/v1/task/node/:id"),
    ("GET", "/api/v1/task/sub_task/:id"), ("GET", "/api/v1/task/sub_task/:id/logs"),
    ("GET", "/api/v1/task/dags/ob"), ("GET", "/api/v1/task/dags/agent"),
    ("GET", "/api/v1/task/dag/maintain/ob"), ("GET", "/api/v1/task/dag/maintain/agent"),
    ("GET", "/api/v1/task/dag/maintain/agents"), ("GET", "/api/v1/task/dag/unfinish"),
    ("GET", "/api/v1/task/dag/ob/unfinish"), ("GET", "/api/v1/task/dag/agent/unfinish"),
    ("GET", "/api/v1/task/dag/agent/main_dags"),
    ("POST", "/api/v1/tenant/restore"), ("DELETE", "/api/v1/tenant/:name/restore"),
    ("GET", "/api/v1/tenant/:name/restore/overview"), ("GET", "/api/v1/restore/windows"),
    ("POST", "/api/v1/restore/source-tenant-info"), ("GET", "/api/v1/restore/tasks"),
    ("POST", "/api/v1/unit/config"), ("DELETE", "/api/v1/unit/config/:name"),
    ("GET", "/api/v1/unit/config/:name"), ("GET", "/api/v1/units/config"),
    ("GET", "/api/v1/resource-pools"), ("DELETE", "/api/v1/resource-pool/:name"),
    ("POST", "/api/v1/tenant"), ("DELETE", "/api/v1/tenant/:name"),
    ("GET", "/api/v1/tenant/:name"), ("GET", "/api/v1/tenants/overview"),
    ("PUT", "/api/v1/tenant/:name/name"), ("POST", "/api/v1/tenant/:name/lock"),
    ("DELETE", "/api/v1/tenant/:name/lock"), ("POST", "/api/v1/tenant/:name/replicas"),
    ("DELETE", "/api/v1/tenant/:name/replicas"), ("PATCH", "/api/v1/tenant/:name/replicas"),
    ("PUT", "/api/v1/tenant/:name/primary-zone"), ("PUT", "/api/v1/tenant/:name/password"),
    ("POST", "/api/v1/tenant/:name/password/persist"),
    ("PUT", "/api/v1/tenant/:name/whitelist"), ("PUT", "/api/v1/tenant/:name/parameters"),
    ("GET", "/api/v1/tenant/:name/parameters"), ("PUT", "/api/v1/tenant/:name/variables"),
    ("GET", "/api/v1/tenant/:name/variables"),
    ("GET", "/api/v1/tenant/:name/parameter/:para"),
    ("GET", "/api/v1/tenant/:name/variable/:var"),
    ("GET", "/api/v1/recyclebin/tenants"), ("DELETE", "/api/v1/recyclebin/tenant/:name"),
    ("POST", "/api/v1/recyclebin/tenant/:name"),
]


def _route_regex(template: str) -> "re.Pattern[str]":
    parts = [("[^/]+" if p.startswith(":") else re.escape(p)) for p in template.split("/")]
    return re.compile("^" + "/".join(parts) + "$")


# Literal routes before parameterised ones, so /tenant/restore is not /tenant/:name.
_ROUTE_MATCHERS = sorted(((m, t, _route_regex(t)) for m, t in AREA_ROUTES),
                         key=lambda r: r[1].count(":"))


def route_of(method: str, path: str) -> Optional[str]:
    for m, template, regex in _ROUTE_MATCHERS:
        if m == method and regex.match(path):
            return f"{m} {template}"
    return None


@dataclass
class Recorder:
    direct: Dict[str, int] = field(default_factory=dict)   # SDK methods the tests called
    nested: Dict[str, int] = field(default_factory=dict)   # called by other SDK methods
    routes: Dict[str, int] = field(default_factory=dict)   # known routes hit
    other_routes: Dict[str, int] = field(default_factory=dict)  # requests outside them
    requests: int = 0                                      # HTTP requests sent
    installed: bool = False

    def report(self) -> str:
        area_names = [m for ms in AREA_METHODS.values() for m in ms]
        existing = [m for m in area_names if callable(getattr(ClientV1, m, None))]
        called = [m for m in existing if m in self.direct]
        lines = [
            f"SDK methods called by the suite: {len(called)} of {len(existing)} in the areas "
            f"(restore, task, tenant, unit config, resource pool, info, status)",
            f"HTTP routes hit: {len(self.routes) + len(self.other_routes)} distinct "
            f"({len(self.routes)} of {len(AREA_ROUTES)} obshell routes of these areas, "
            f"{len(self.other_routes)} other); {self.requests} HTTP requests sent",
        ]
        for area, names in AREA_METHODS.items():
            present = [n for n in names if n in existing]
            hit = [n for n in present if n in self.direct]
            lines.append(f"  {area}: {len(hit)}/{len(present)}"
                         + (f"; not called: {', '.join(n for n in present if n not in hit)}"
                            if len(hit) < len(present) else ""))
        absent = [m for m in area_names if m not in existing]
        if absent:
            lines.append(f"  listed but absent from this SDK: {', '.join(absent)}")
        only_nested = sorted(set(self.nested) - set(self.direct) - {"create_request"})
        if only_nested:
            lines.append(f"  reached only through other SDK methods: {', '.join(only_nested)}")
        missed = [f"{m} {t}" for m, t in AREA_ROUTES if f"{m} {t}" not in self.routes]
        if missed:
            lines.append(f"  routes not hit: {', '.join(missed)}")
        if self.other_routes:
            lines.append(f"  other requests: {', '.join(sorted(self.other_routes))}")
        return "\n".join(lines)


RECORDER = Recorder()
_DEPTH = threading.local()


def _wrap_method(name: str, fn: Callable) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_DEPTH, "n", 0)
        book = RECORDER.direct if depth == 0 else RECORDER.nested
        book[name] = book.get(name, 0) + 1
        _DEPTH.n = depth + 1
        try:
            return fn(*args, **kwargs)
        finally:
            _DEPTH.n = depth
    wrapper.__name__ = name
    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _wrap_execute(fn: Callable) -> Callable:
    def _execute(self: Any, req: BaseRequest) -> Any:
        path = unquote(req.uri.split("?", 1)[0])
        key = route_of(req.method.upper(), path)
        if key is None:
            other = f"{req.method.upper()} {path}"
            RECORDER.other_routes[other] = RECORDER.other_routes.get(other, 0) + 1
        else:
            RECORDER.routes[key] = RECORDER.routes.get(key, 0) + 1
        try:
            resp = fn(self, req)
        except ValueError as err:
            # The SDK parses every error answer as JSON: say what came instead.
            last = getattr(self, "_sdk_suite_last_resp", None)
            status = getattr(last, "status_code", "?")
            body = getattr(last, "text", "")[:300]
            self._sdk_suite_last_status = status
            raise AssertionError(f"{req.method} {path}: the answer is not an obshell JSON "
                                 f"envelope: HTTP {status}, body {body!r} ({err})") from None
        self._sdk_suite_last_status = getattr(resp, "status_code", None)
        return resp
    _execute.__wrapped__ = fn  # type: ignore[attr-defined]
    return _execute


def _wrap_real_execute(fn: Callable) -> Callable:
    def real_execute(self: Any, req: BaseRequest) -> Any:
        RECORDER.requests += 1
        resp = fn(self, req)
        self._sdk_suite_last_resp = resp
        return resp
    real_execute.__wrapped__ = fn  # type: ignore[attr-defined]
    return real_execute


def install_recorder() -> Callable[[], None]:
    """Wraps every public ClientV1 method and Client._execute; returns the undo."""
    from obshell.client import Client
    saved: List[Tuple[type, str, Any]] = []
    for name, fn in list(vars(ClientV1).items()):
        if name.startswith("_") or not callable(fn):
            continue
        saved.append((ClientV1, name, fn))
        setattr(ClientV1, name, _wrap_method(name, fn))
    saved.append((Client, "_execute", Client._execute))
    Client._execute = _wrap_execute(Client._execute)
    saved.append((Client, "_Client__real_execute", Client._Client__real_execute))
    Client._Client__real_execute = _wrap_real_execute(Client._Client__real_execute)
    RECORDER.installed = True

    def undo() -> None:
        for owner, name, fn in reversed(saved):
            setattr(owner, name, fn)
        RECORDER.installed = False
    return undo


def last_status(client: ClientV1) -> Optional[int]:
    """HTTP status of the client's last answer (recorded by the instrumented _execute)."""
    return getattr(client, "_sdk_suite_last_status", None)
