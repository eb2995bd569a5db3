"""Load on one ``obagent serve`` (run through scripts/load.sh).

At once, through one agent: ``--restores`` restores of different tenants (default 20),
and tenant lifecycles whose DAGs add up to ``--dags`` (default 200) of the other kinds
the API creates: Create tenant (2 to 6 nodes), Scale out / Scale in / Modify tenant
replicas, Modify tenant primary zone, Drop tenant (to the recycle bin or not) and Wait
tenant purge finished; while reader threads loop over the read routes. Right after each
restore is accepted the same restore is POSTed again and must be refused with obshell's
``OB.Tenant.UnderMaintenance``. Every DAG must end SUCCEED and every restored tenant must
hold the source's rows (the Post check's digest, and ``obagent tenant show --digest``
once the agent is stopped). Prints the latency of every request by method (p50, p99,
max) and the most DAGs seen unfinished at once.

The agent's cluster is seeded with 3 zones of ``--server-cpu`` cores (default 256) and
the smallest unit is 1 CPU, so that many units fit in each zone; every DAG holds its
tenant's maintenance lock, so the lifecycles run in ``--workers`` threads (default 200,
so up to 200 DAGs of different tenants in flight at once) that take units from a shared
per-zone count before a DAG needs them (a refusal for capacity would be the script's
fault, not the agent's).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from agentlib import (Agent, Api, Backup, Sample, create_unit_config, dag_digest,
                      describe_failure, expected_digest, percentile, restored_digest)

ZONES = ["z1", "z2", "z3"]
UNIT, BIG_UNIT = "load_unit", "load_unit_2g"
DAG_TIMEOUT = 600.0
WAIT_INTERVAL = 0.1
READ_ROUTES = ["/api/v1/tenants/overview", "/api/v1/task/dag/unfinish", "/api/v1/resource-pools",
               "/api/v1/units/config", "/api/v1/recyclebin/tenants", "/api/v1/status"]


class Capacity:
    """Free units per zone. ``take`` takes all it is asked for at once (so that threads
    holding some units never wait for more: no deadlock), blocking until they are free
    or ``abort`` is called."""

    def __init__(self, units_per_zone: int) -> None:
        self.free = {zone: units_per_zone for zone in ZONES}
        self.aborted = False
        self.cond = threading.Condition()

    def take(self, zones: List[str]) -> None:
        wanted = Counter(zones)
        with self.cond:
            self.cond.wait_for(lambda: self.aborted or
                               all(self.free[z] >= n for z, n in wanted.items()))
            if self.aborted:
                raise RuntimeError("gave up waiting for capacity after a failure")
            for zone, count in wanted.items():
                self.free[zone] -= count

    def abort(self) -> None:
        with self.cond:
            self.aborted = True
            self.cond.notify_all()

    def give(self, zones: List[str]) -> None:
        with self.cond:
            for zone in zones:
                self.free[zone] += 1
            self.cond.notify_all()


class Step:
    """One DAG of a lifecycle: the request, the units it adds and the units it frees."""

    def __init__(self, method: str, path: str, body: Any, take: List[str] = (),
                 give: List[str] = ()):
        self.method, self.path, self.body = method, path, body
        self.take, self.give = list(take), list(give)


def zone_param(zone: str, unit: str = UNIT) -> Dict[str, Any]:
    return {"name": zone, "unit_config_name": unit, "unit_num": 1}


def create_body(name: str, zone: str, rng: random.Random) -> Dict[str, Any]:
    """Create tenant with 2 to 6 nodes: whitelist, and maybe parameters, time zone and
    variables, root password (slow in a debug build: its key derivation)."""
    body: Dict[str, Any] = {"name": name, "zone_list": [zone_param(zone)], "whitelist": "%"}
    shape = rng.randrange(10)
    if shape in (1, 2, 3):
        body["parameters"] = {"freeze_trigger_percentage": rng.choice([20, 30, 40])}
    if shape in (3, 4, 5):
        body["variables"] = {"time_zone": "+08:00", "ob_query_timeout": 20000000}
    if shape == 9:
        body["root_password"] = "Load-Pa55"
    return body


def lifecycle(name: str, rng: random.Random) -> List[Step]:
    """One tenant's DAGs, in order, of one of three shapes (3 or 5 DAGs)."""
    a, b, c = rng.sample(ZONES, 3)
    tenant = f"/api/v1/tenant/{name}"
    create = Step("POST", "/api/v1/tenant", create_body(name, a, rng), take=[a])
    shape = rng.randrange(3)
    if shape == 0:
        return [create,
                Step("PATCH", f"{tenant}/replicas",
                     {"zone_list": [{"zone_name": a, "unit_config_name": BIG_UNIT}]}),
                Step("DELETE", tenant, {"need_recycle": False}, give=[a])]
    if shape == 1:
        return [create,
                Step("POST", f"{tenant}/replicas", {"zone_list": [zone_param(b)]}, take=[b]),
                Step("PUT", f"{tenant}/primary-zone", {"primary_zone": f"{b};{a}"}),
                Step("DELETE", tenant, {"need_recycle": True}),
                Step("DELETE", f"/api/v1/recyclebin/tenant/{name}", None, give=[a, b])]
    return [create,
            Step("POST", f"{tenant}/replicas", {"zone_list": [zone_param(b), zone_param(c)]},
                 take=[b, c]),
            Step("DELETE", f"{tenant}/replicas", {"zones": [c]}, give=[c]),
            Step("PUT", f"{tenant}/primary-zone", {"primary_zone": f"{b};{a}"}),
            Step("DELETE", tenant, {"need_recycle": False}, give=[a, b])]


class Load:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = work
        self.agent = Agent(args.binary, work / "agent", work / "backup", work / "agent.log",
                           env={"OBRESTORE_FAILPOINT_BLOCK_DELAY_MS": str(args.block_delay_ms)},
                           workers=args.agent_workers,
                           extra_args=["--server-cpu", str(args.server_cpu),
                                       "--server-memory", f"{4 * args.server_cpu}GiB"])
        self.backup: Optional[Backup] = None
        self.capacity = Capacity(args.server_cpu)
        self.lock = threading.Lock()
        self.tickets = args.dags
        self.dags: Dict[str, str] = {}  # generic id -> DAG name, of every DAG submitted
        self.refusals: List[Tuple[str, int, Optional[str]]] = []
        self.restored: List[Tuple[str, int]] = []
        self.failures: List[str] = []
        self.peak_unfinished = 0
        self.idle_samples: List[Sample] = []
        self.agent_cpu: Optional[float] = None
        self.done = threading.Event()

    @property
    def api(self) -> Api:
        assert self.agent.api is not None
        return self.agent.api

    def run(self) -> float:
        """Sets up, reads on an idle agent, runs the load and checks it; the seconds the
        load itself took."""
        self.backup = Backup.generate(self.args.binary, self.work / "backup",
                                      seed=self.rng.randrange(1, 2**31))
        self.agent.start()
        create_unit_config(self.api, UNIT)
        reply = self.api.post("/api/v1/unit/config",
                              {"name": BIG_UNIT, "max_cpu": 1, "memory_size": "2GB"})
        if reply.status != 200:
            raise RuntimeError(f"creating unit config {BIG_UNIT}: {reply.describe()}")
        self.api.samples.clear()
        idle = threading.Event()
        self.with_readers(idle, lambda: idle.wait(self.args.idle_secs))
        self.idle_samples = list(self.api.samples)
        self.api.samples.clear()
        started, cpu = time.perf_counter(), self.agent.cpu_seconds()
        self.with_readers(self.done, self.run_jobs)
        elapsed = time.perf_counter() - started
        if cpu is not None:
            self.agent_cpu = (self.agent.cpu_seconds() or cpu) - cpu
        self.check_dags()
        self.agent.stop()
        self.check_rows()
        return elapsed

    def with_readers(self, stop: threading.Event, body: Callable[[], Any]) -> None:
        """Runs ``body`` while ``--readers`` threads loop over the read routes."""
        readers = [threading.Thread(target=self.guarded(lambda: self.reader(stop)))
                   for _ in range(self.args.readers)]
        for thread in readers:
            thread.start()
        try:
            body()
        finally:
            stop.set()
            for thread in readers:
                thread.join()

    def run_jobs(self) -> None:
        """The restores and the lifecycles, all started at once."""
        jobs: List[Callable[[], None]] = []
        for index in range(self.args.restores):
            self.capacity.take([ZONES[index % len(ZONES)]])
            jobs.append(self.restore_job(index, random.Random(self.rng.random())))
        for index in range(self.args.workers):
            jobs.append(self.lifecycle_job(index, random.Random(self.rng.random())))
        threads = [threading.Thread(target=self.guarded(job)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def guarded(self, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception as err:  # noqa: BLE001  (a thread's error fails the load)
                self.fail(f"{type(err).__name__}: {err}")
        return run

    # -- the jobs --------------------------------------------------------------------

    def restore_job(self, index: int, rng: random.Random) -> Callable[[], None]:
        assert self.backup is not None
        backup = self.backup
        tenant, zone = f"load_r{index + 1}", ZONES[index % len(ZONES)]
        scn = rng.choice(backup.restore_scns())

        def job() -> None:
            body = backup.restore_body(tenant, scn, zone, UNIT)
            dag_id = self.submit("POST", "/api/v1/tenant/restore", body)
            again = self.api.post("/api/v1/tenant/restore", body)
            with self.lock:
                self.refusals.append((tenant, again.status, again.err_code))
            dag = self.api.wait_dag(dag_id, DAG_TIMEOUT, WAIT_INTERVAL)
            if dag["state"] != "SUCCEED":
                self.fail(describe_failure(dag))
            elif dag_digest(dag) != expected_digest(backup, scn):
                self.fail(f"{tenant}: Post check recorded {dag_digest(dag)}, source "
                          f"{expected_digest(backup, scn)} at scn {scn}")
            with self.lock:
                self.restored.append((tenant, scn))
        return job

    def lifecycle_job(self, worker: int, rng: random.Random) -> Callable[[], None]:
        def job() -> None:
            number = 0
            while True:
                number += 1
                steps = lifecycle(f"load_w{worker + 1}_{number}", rng)
                with self.lock:
                    steps = steps[:self.tickets]
                    self.tickets -= len(steps)
                if not steps:
                    return
                self.capacity.take([zone for step in steps for zone in step.take])
                for step in steps:
                    dag_id = self.submit(step.method, step.path, step.body)
                    dag = self.api.wait_dag(dag_id, DAG_TIMEOUT, WAIT_INTERVAL)
                    if dag["state"] != "SUCCEED":
                        self.fail(describe_failure(dag))
                        return
                    self.capacity.give(step.give)
        return job

    def reader(self, stop: threading.Event) -> None:
        """Loops over the read routes (and DAG details) until ``stop``."""
        rng = random.Random(self.rng.random())
        while not stop.is_set():
            route = rng.choice(READ_ROUTES)
            reply = self.api.get(route)
            if reply.status != 200:
                self.fail(f"GET {route}: {reply.describe()}")
            elif route == "/api/v1/task/dag/unfinish":
                with self.lock:
                    self.peak_unfinished = max(self.peak_unfinished,
                                               len(reply.data.get("contents") or []))
            with self.lock:
                known = list(self.dags)
            if known:
                self.api.dag(rng.choice(known), details=True)
            time.sleep(self.args.read_pause_ms / 1000)

    def submit(self, method: str, path: str, body: Any) -> str:
        """A request that must answer a new DAG; its generic id."""
        reply = self.api.request(method, path, body)
        if reply.status != 200 or not isinstance(reply.data, dict) or "id" not in reply.data:
            raise RuntimeError(f"{method} {path}: {reply.describe()} (a DAG was expected)")
        with self.lock:
            self.dags[reply.data["id"]] = reply.data["name"]
        return reply.data["id"]

    # -- checks and report -----------------------------------------------------------

    def check_dags(self) -> None:
        dags = {d["id"]: d for d in self.api.cluster_dags()}
        for dag_id, name in self.dags.items():
            state = dags.get(dag_id, {}).get("state")
            if state != "SUCCEED":
                self.fail(f"DAG {dag_id} {name}: {state or 'missing'}")
        extra = set(dags) - set(self.dags)
        if extra:
            self.fail(f"DAGs nobody submitted: {sorted(extra)}")
        expected = self.args.restores + self.args.dags
        if len(self.dags) != expected:
            self.fail(f"{len(self.dags)} DAGs submitted, {expected} expected")
        for tenant, status, code in self.refusals:
            if (status, code) != (409, "OB.Tenant.UnderMaintenance"):
                self.fail(f"second restore of busy {tenant}: {status} {code}")
        if len(self.refusals) != self.args.restores:
            self.fail(f"{len(self.refusals)} second restores, {self.args.restores} expected")
        unfinished = self.api.unfinished_dags()
        if unfinished:
            self.fail(f"unfinished DAGs: {[d['id'] for d in unfinished]}")

    def check_rows(self) -> None:
        assert self.backup is not None
        for tenant, scn in self.restored:
            digest, _ = restored_digest(self.args.binary, self.agent.data_dir, tenant)
            if digest != expected_digest(self.backup, scn):
                self.fail(f"{tenant}: rows {digest}, source {expected_digest(self.backup, scn)}")

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)
        self.capacity.abort()
        print(f"load: FAILURE: {message}", flush=True)

    def summary(self, elapsed: Optional[float]) -> str:
        kinds = Counter(re.sub(r"load_\S+$", "<tenant>", name) for name in self.dags.values())
        seconds = f"{elapsed:.1f} s" if elapsed is not None else "not finished"
        lines = [f"load: seed {self.args.seed}, {len(self.dags)} DAGs in {seconds} "
                 f"(at most {self.peak_unfinished} unfinished at once), "
                 f"agent --workers {self.args.agent_workers}"]
        if self.agent_cpu is not None and elapsed:
            lines.append(f"  agent CPU during the load: {self.agent_cpu:.1f} s "
                         f"({self.agent_cpu / elapsed:.2f} cores of {os.cpu_count()})")
        lines += [f"  {count:4d}  {kind}" for kind, count in sorted(kinds.items())]
        refused = Counter(f"{status} {code}" for _, status, code in self.refusals)
        lines.append(f"  second restore of a busy tenant: {dict(refused)}")
        loaded = self.api.samples if self.agent.api else []
        lines.append(f"  latency seen by the client, under load (and idle: the readers alone "
                     f"for {self.args.idle_secs:g} s before the load):")
        idle = by_key(self.idle_samples, lambda s: s.method)
        for method, values in sorted(by_key(loaded, lambda s: s.method).items()):
            lines.append(f"  {method:6s} {latency_line(values)}" +
                         (f"   (idle: {latency_line(idle[method])})" if method in idle else ""))
        lines.append("  time spent in the agent under load (the envelope's duration, whole ms):")
        in_agent = [s for s in loaded if s.agent_ms is not None]
        for method, values in sorted(by_key(in_agent, lambda s: s.method, agent=True).items()):
            lines.append(f"  {method:6s} {latency_line(values)}")
        gets = [sample for sample in loaded if sample.method == "GET"]
        for route, values in sorted(by_key(gets, lambda s: s.route).items()):
            lines.append(f"    GET {route}: {latency_line(values)}")
        verdict = (f"FAILED: {len(self.failures)} failure(s)" if self.failures else
                   "PASSED: every DAG SUCCEED, busy tenant refused, rows equal the source")
        lines.append(f"load: {verdict}")
        return "\n".join(lines)


def by_key(samples: List[Sample], key: Callable[[Sample], str],
           agent: bool = False) -> Dict[str, List[float]]:
    """Latencies in milliseconds grouped by ``key``: as the client saw them, or (``agent``)
    as the agent reported them."""
    groups: Dict[str, List[float]] = {}
    for sample in samples:
        value = float(sample.agent_ms or 0) if agent else sample.seconds * 1000
        groups.setdefault(key(sample), []).append(value)
    return groups


def latency_line(values: List[float]) -> str:
    return (f"{len(values):5d} requests  p50 {percentile(values, 0.5):6.1f} ms  "
            f"p99 {percentile(values, 0.99):6.1f} ms  max {max(values):6.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restores", type=int, default=20)
    parser.add_argument("--dags", type=int, default=200, help="DAGs of the tenant lifecycles")
    parser.add_argument("--workers", type=int, default=200, help="lifecycle threads")
    parser.add_argument("--server-cpu", type=int, default=256,
                        help="cores of each of the cluster's 3 servers (1-CPU units per zone)")
    parser.add_argument("--readers", type=int, default=2, help="threads looping over GETs")
    parser.add_argument("--read-pause-ms", type=float, default=5.0)
    parser.add_argument("--idle-secs", type=float, default=2.0,
                        help="the readers alone first, for the idle latency")
    parser.add_argument("--agent-workers", type=int, default=8, help="obagent serve --workers")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--binary", required=True, help="obagent built with --features failpoints")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="default: a temporary dir, removed after a passing run")
    parser.add_argument("--block-delay-ms", type=int, default=5,
                        help="OBRESTORE_FAILPOINT_BLOCK_DELAY_MS: Restore data sleeps this per block")
    args = parser.parse_args()
    if args.restores > args.server_cpu * len(ZONES) - 3:
        parser.error("--restores leaves no capacity for the lifecycles")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**63)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="load-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load: seed {args.seed}, {args.restores} restores + {args.dags} DAGs, work dir {work}",
          flush=True)
    load = Load(args, work)
    elapsed = None
    try:
        elapsed = load.run()
    except Exception as err:  # noqa: BLE001  (any error fails the load, with its reason)
        load.fail(f"{type(err).__name__}: {err}")
    finally:
        load.agent.kill()
    print(load.summary(elapsed), flush=True)
    if load.failures:
        print(f"load: kept {work} (agent log {load.agent.log_path})", flush=True)
        return 1
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
