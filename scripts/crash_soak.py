"""Crash soak of ``obagent serve`` (run through scripts/crash-soak.sh).

Restores a generated backup through obshell's restore route, one tenant after another,
and SIGKILLs the agent N times at random moments: inside the ``POST
/api/v1/tenant/restore`` or while the restore DAG is in one of its stages
(``DagDetailDTO.stage`` 1..=10: Pre restore check ... Upgrade tenant). After each kill
the agent is restarted on the same data dir; a restore is POSTed again only when no DAG
was persisted for it, and a POST the agent acknowledged must have its DAG after the
restart. In the end every DAG must be SUCCEED (exactly one per tenant, none unfinished)
and every restored tenant's rows must match the source: the digest the restore's Post
check recorded, and the digest ``obagent tenant show --digest`` reads from the stopped
agent's data dir, both equal the truth file's digest at the restore SCN
(docs/backup-format.md §5). Every random choice comes from ``--seed`` (printed), so a
run is repeated by passing the same seed; kill timing still depends on the machine.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional

from agentlib import (Agent, AgentDown, Api, Backup, create_unit_config, dag_digest,
                      describe_failure, expected_digest, restored_digest)

# Index 0: inside the POST; index i >= 1: DagDetailDTO.stage i of the restore DAG.
STAGES = ["POST /tenant/restore", "Pre restore check", "Create resource pools",
          "Create restoring tenant", "Restore sys tablets", "Restore tablets meta",
          "Restore data", "Replay log", "Post check", "Activate tenant", "Upgrade tenant"]
UNIT = "soak_unit"
ZONES = ["z1", "z2", "z3"]
UNITS_PER_ZONE = 16  # 16 CPU per zone's server, 1 CPU per unit
DAG_TIMEOUT = 300.0
POLL_SLEEP = 0.001


@dataclass
class Restore:
    tenant: str
    scn: int
    zone: str
    dag_id: Optional[str] = None
    kills: int = 0


@dataclass
class Tally:
    kills: Counter = field(default_factory=Counter)
    reposts: int = 0
    post_latencies: List[float] = field(default_factory=list)
    stage_lengths: Dict[int, List[float]] = field(default_factory=dict)
    failures: List[str] = field(default_factory=list)


class Soak:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = work
        self.tally = Tally()
        self.restores: List[Restore] = []
        self.dag_count: Optional[int] = None
        self.backup: Optional[Backup] = None
        self.agent = Agent(args.binary, work / "agent", work / "backup", work / "agent.log",
                           env={"OBRESTORE_FAILPOINT_BLOCK_DELAY_MS": str(args.block_delay_ms)})

    @property
    def api(self) -> Api:
        assert self.agent.api is not None
        return self.agent.api

    # -- the run ---------------------------------------------------------------------

    def run(self) -> None:
        self.backup = Backup.generate(self.args.binary, self.work / "backup",
                                      seed=self.rng.randrange(1, 2**31))
        self.agent.start()
        create_unit_config(self.api, UNIT)
        while sum(self.tally.kills.values()) < self.args.kills:
            if len(self.restores) >= UNITS_PER_ZONE * len(ZONES):
                raise RuntimeError("out of cluster capacity before the last kill")
            self.restore_once(self.new_restore())
        self.check_dags()
        self.agent.stop()
        self.check_rows()

    def new_restore(self) -> Restore:
        assert self.backup is not None
        index = len(self.restores) + 1
        restore = Restore(tenant=f"soak_{index}", scn=self.rng.choice(self.backup.restore_scns()),
                          zone=ZONES[index % len(ZONES)])
        self.restores.append(restore)
        return restore

    def kill_targets(self) -> List[int]:
        """The stages (indexes of STAGES) to kill this restore in, ascending: 1 to 3 (more
        when the kills left would not fit in the cluster's capacity otherwise); the POST at
        most once (a persisted DAG cannot be killed in its POST again)."""
        left = self.args.kills - sum(self.tally.kills.values())
        restores_left = UNITS_PER_ZONE * len(ZONES) - len(self.restores) + 1
        least = max(1, -(-left // restores_left))
        count = min(left, self.rng.randint(least, least + 2))
        targets = sorted(self.rng.randrange(len(STAGES)) for _ in range(count))
        return [t for i, t in enumerate(targets) if t != 0 or i == 0]

    def restore_once(self, restore: Restore) -> None:
        for target in self.kill_targets():
            if target == 0:
                self.kill_in_post(restore)
                continue
            if restore.dag_id is None:
                restore.dag_id = self.post(restore)
            if not self.kill_in_stage(restore, target):
                break  # the DAG ended before the stage came: no kill
        if restore.dag_id is None:
            restore.dag_id = self.post(restore)
        dag = self.api.wait_dag(restore.dag_id, DAG_TIMEOUT)
        if dag["state"] != "SUCCEED":
            self.fail(f"{restore.tenant}: {describe_failure(dag)}")
            return
        self.check_recorded_digest(restore, dag)
        self.learn_stage_lengths(dag)
        self.log(f"{restore.tenant}: SUCCEED after {restore.kills} kill(s), DAG {restore.dag_id}")

    # -- kills -----------------------------------------------------------------------

    def post(self, restore: Restore) -> str:
        assert self.backup is not None
        body = self.backup.restore_body(restore.tenant, restore.scn, restore.zone, UNIT)
        started = time.perf_counter()
        reply = self.api.post("/api/v1/tenant/restore", body)
        if reply.status != 200:
            raise RuntimeError(f"POST restore {restore.tenant}: {reply.describe()}")
        self.tally.post_latencies.append(time.perf_counter() - started)
        return reply.data["id"]

    def kill_in_post(self, restore: Restore) -> None:
        """SIGKILL at a random moment of a POST, then find out whether its DAG persisted."""
        assert self.backup is not None
        body = self.backup.restore_body(restore.tenant, restore.scn, restore.zone, UNIT)
        answer: Dict[str, Any] = {}

        def send() -> None:
            try:
                answer["reply"] = self.api.post("/api/v1/tenant/restore", body)
            except AgentDown as err:
                answer["down"] = str(err)

        sender = threading.Thread(target=send)
        sender.start()
        typical = min(self.tally.post_latencies, default=0.05)
        time.sleep(self.rng.uniform(0, typical))
        answered = "reply" in answer
        self.crash(STAGES[1] if answered else STAGES[0], restore)
        sender.join()
        persisted = self.dag_of(restore.tenant)
        reply = answer.get("reply")
        if reply is not None and reply.status == 200 and persisted != reply.data["id"]:
            self.fail(f"{restore.tenant}: POST answered DAG {reply.data['id']} but after the "
                      f"restart the agent has {persisted or 'no DAG'}")
        if persisted is None:
            if restore.tenant in self.tenant_names():
                self.fail(f"{restore.tenant}: the tenant exists but no restore DAG does")
            self.tally.reposts += 1
            restore.dag_id = self.post(restore)
        else:
            restore.dag_id = persisted

    def kill_in_stage(self, restore: Restore, target: int) -> bool:
        """Polls the DAG until it is at stage ``target`` or later, then SIGKILLs it at a
        random moment within the stage's usual length (the median of the completed
        restores', ``--first-stage-ms`` before any completed), polling on meanwhile; the kill
        counts for the stage the last poll saw. False (no kill) if the DAG ended first."""
        assert restore.dag_id is not None
        deadline = None
        while True:
            dag = self.api.dag(restore.dag_id)
            if dag["state"] in ("SUCCEED", "FAILED"):
                return False
            now = time.monotonic()
            if deadline is None and dag["stage"] >= target and dag["state"] == "RUNNING":
                deadline = now + self.rng.uniform(0, self.stage_length(dag["stage"]))
            if deadline is not None and now >= deadline:
                break
            time.sleep(POLL_SLEEP)
        self.crash(STAGES[dag["stage"]], restore)
        return True

    def stage_length(self, stage: int) -> float:
        lengths = sorted(self.tally.stage_lengths.get(stage, []))
        if not lengths:
            return self.args.first_stage_ms / 1000
        return lengths[len(lengths) // 2]

    def learn_stage_lengths(self, dag: Dict[str, Any]) -> None:
        """Records how long each stage of a finished restore DAG took (its last run)."""
        for node in dag.get("nodes") or []:
            stage = next((i for i, name in enumerate(STAGES)
                          if node["name"] == name or node["name"].startswith(name + " ")), None)
            if stage is not None:
                length = parse_time(node["end_time"]) - parse_time(node["start_time"])
                self.tally.stage_lengths.setdefault(stage, []).append(length)

    def crash(self, stage: str, restore: Restore) -> None:
        self.agent.kill()
        self.tally.kills[stage] += 1
        restore.kills += 1
        self.agent.start()

    def tenant_names(self) -> List[str]:
        reply = self.api.get("/api/v1/tenants/overview")
        if reply.status != 200:
            raise RuntimeError(f"GET /api/v1/tenants/overview: {reply.describe()}")
        return [t["tenant_name"] for t in reply.data.get("contents") or []]

    def dag_of(self, tenant: str) -> Optional[str]:
        """The generic id of the tenant's restore DAG, if one was persisted."""
        ids = [d["id"] for d in self.api.cluster_dags() if d["name"] == f"Restore backup_{tenant}"]
        if len(ids) > 1:
            self.fail(f"{tenant}: {len(ids)} restore DAGs: {ids}")
        return ids[0] if ids else None

    # -- checks ----------------------------------------------------------------------

    def check_recorded_digest(self, restore: Restore, dag: Dict[str, Any]) -> None:
        assert self.backup is not None
        expected = expected_digest(self.backup, restore.scn)
        recorded = dag_digest(dag)
        if recorded != expected:
            self.fail(f"{restore.tenant}: Post check recorded {recorded}, source {expected} "
                      f"at scn {restore.scn}")

    def check_dags(self) -> None:
        dags = self.api.cluster_dags()
        names = Counter(d["name"] for d in dags)
        for dag in dags:
            if dag["state"] != "SUCCEED":
                self.fail(f"DAG {dag['id']} {dag['name']} ended {dag['state']}")
        for restore in self.restores:
            count = names[f"Restore backup_{restore.tenant}"]
            if count != 1:
                self.fail(f"{restore.tenant}: {count} restore DAGs")
        unfinished = self.api.unfinished_dags()
        if unfinished:
            self.fail(f"unfinished DAGs: {[d['id'] for d in unfinished]}")
        self.dag_count = len(dags)

    def check_rows(self) -> None:
        """Every restored tenant, read offline: NORMAL PRIMARY with the source's rows."""
        assert self.backup is not None
        for restore in self.restores:
            digest, detail = restored_digest(self.args.binary, self.agent.data_dir,
                                             restore.tenant)
            expected = expected_digest(self.backup, restore.scn)
            if digest != expected:
                self.fail(f"{restore.tenant}: rows {digest}, source {expected} "
                          f"at scn {restore.scn}")
            tenant = detail["tenant"]
            if (tenant["status"], tenant["role"]) != ("NORMAL", "PRIMARY"):
                self.fail(f"{restore.tenant}: {tenant['status']} {tenant['role']}")

    def fail(self, message: str) -> None:
        self.tally.failures.append(message)
        self.log(f"FAILURE: {message}")

    @staticmethod
    def log(message: str) -> None:
        print(f"crash-soak: {message}", flush=True)

    def summary(self, elapsed: float) -> str:
        kills = self.tally.kills
        lines = [f"crash-soak: seed {self.args.seed}, {sum(kills.values())} kills, "
                 f"{len(self.restores)} restores ({self.tally.reposts} re-POSTed), "
                 f"{self.dag_count} DAGs, {elapsed:.1f} s"]
        lines += [f"  {kills[stage]:4d}  {stage}" for stage in STAGES]
        starts = sorted(self.agent.starts)
        if starts:
            lines.append(f"  agent starts: {len(starts)}, median {starts[len(starts) // 2]:.2f} s")
        verdict = "FAILED" if self.tally.failures else "PASSED"
        lines.append(f"crash-soak: {verdict}: " + (
            f"{len(self.tally.failures)} failure(s)" if self.tally.failures else
            "every DAG SUCCEED, every tenant's rows equal the source digest"))
        return "\n".join(lines)


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 time of the API (nanosecond fractions)."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kills", type=int, help="SIGKILLs in total")
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--binary", required=True, help="obagent built with --features failpoints")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="default: a temporary dir, removed after a passing run")
    parser.add_argument("--block-delay-ms", type=int, default=5,
                        help="OBRESTORE_FAILPOINT_BLOCK_DELAY_MS: Restore data sleeps this per block")
    parser.add_argument("--first-stage-ms", type=float, default=10.0,
                        help="a stage kill lands up to this long after the stage is seen, "
                             "until a restore completed (then: the stage's median length)")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**63)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="crash-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"crash-soak: seed {args.seed} (repeat with --seed {args.seed}), {args.kills} kills, "
          f"work dir {work}", flush=True)
    soak = Soak(args, work)
    started = time.perf_counter()
    try:
        soak.run()
    except Exception as err:  # noqa: BLE001  (any error fails the soak, with its reason)
        soak.fail(f"{type(err).__name__}: {err}")
    finally:
        soak.agent.kill()
    print(soak.summary(time.perf_counter() - started), flush=True)
    if soak.tally.failures:
        print(f"crash-soak: kept {work} (agent log {soak.agent.log_path})", flush=True)
        return 1
    if args.work_dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
