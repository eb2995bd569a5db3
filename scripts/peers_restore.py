"""Restore against its peers (run through scripts/peers-restore.sh, as root).

1. ``obagent backup generate`` writes a backup of ``--size``.
2. One untimed probe restore under ``strace`` finds the backup files ``obagent restore
   start`` opens and the bytes it reads from them; its Post check digest is compared
   with the truth file's (``tests/sdk/truth.py``, docs/backup-format.md §5) unless
   ``--no-verify``.
3. A PostgreSQL cluster (``initdb`` as ``postgres`` in the work directory) gets one
   table filled until its data directory holds about the bytes of those files, and is
   backed up (full) with pgBackRest, repository in the same work directory (same file
   system), ``compress-type=none`` (our backup files are not compressed either).
4. ``--runs`` rounds, the three commands alternating (the order rotates each round), each
   into a fresh directory: (a) ``obagent restore start`` of the latest point at
   ``--concurrency N``, the whole command; (b) ``pgbackrest restore --process-max=N`` into
   an empty directory; (c) a copy of exactly the files (a) opens, 1 MiB read + write and
   ``fsync`` per file, then the directory; with ``--baseline BIN``, (d) the same restore
   with another obagent (a before/after in one run). Before every timed command the outputs of the
   last one are removed, ``sync`` runs and the page cache is dropped (``--warm``: the
   inputs are read into the cache instead).
5. A table of medians: MB/s = bytes read / wall time (MB = 10^6 bytes), and the ratios.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "sdk"))
from truth import Workload  # noqa: E402  (the SDK suite's oracle, stdlib only)

COPY_BUFFER = 1 << 20
PG_PORT = 54329
TENANT = "peers"
STANZA = "bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, help="the obagent binary (release)")
    parser.add_argument("--size", help="backup size (obagent's syntax; default 512MiB)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="obagent --concurrency and pgbackrest --process-max")
    parser.add_argument("--runs", type=int, default=3, help="timed rounds (median of these)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--quick", action="store_true",
                        help="a 64 MiB backup unless --size (1-2 minutes in all)")
    parser.add_argument("--warm", action="store_true",
                        help="inputs in the page cache instead of dropping it")
    parser.add_argument("--baseline", metavar="BINARY",
                        help="a second obagent (say main's) timed in the same rounds, "
                             "for a before/after of one run")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip comparing the probe restore's digest with the truth file")
    parser.add_argument("--workdir", default="/var/tmp",
                        help="parent of the work directory (one file system for all)")
    args = parser.parse_args()
    if args.size is None:
        args.size = "64MiB" if args.quick else "512MiB"
    if args.runs < 1 or args.concurrency < 1:
        parser.error("--runs and --concurrency must be at least 1")
    return args


def run(cmd: List[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {' '.join(cmd)}\n"
                           f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def as_postgres(cmd: List[str]) -> List[str]:
    return ["runuser", "-u", "postgres", "--"] + cmd


def tree_bytes(path: Path, skip: Tuple[str, ...] = ()) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def drop_cache(warm_inputs: List[Path]) -> str:
    subprocess.run(["sync"], check=True)
    if warm_inputs:
        for path in warm_inputs:
            with open(path, "rb") as f:
                while f.read(COPY_BUFFER):
                    pass
        return "warm"
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return "cold"
    except OSError:
        return "warm"


class Backup:
    """The generated backup and what one restore of it reads."""

    def __init__(self, binary: str, work: Path, size: str):
        self.binary = binary
        self.root = work / "backup"
        out = run([binary, "backup", "generate", "--dir", str(self.root), "--size", size],
                  "obagent backup generate").stdout
        fields = {}
        for line in out.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        self.data_uri = fields["data backup uri"]
        self.archive_uri = fields["archive log uri"]
        self.truth = Path(fields["truth workload"])
        self.files: List[Path] = []
        self.file_bytes = 0
        self.read_bytes = 0

    def restore_cmd(self, data_dir: Path, concurrency: int, binary: str = "") -> List[str]:
        return [binary or self.binary, "restore", "start", "--data-dir", str(data_dir),
                "--data-uri", self.data_uri, "--archive-uri", self.archive_uri,
                "--tenant", TENANT, "--concurrency", str(concurrency)]

    def probe(self, work: Path, concurrency: int, verify: bool) -> None:
        """One restore under strace: the backup files it opens and the bytes it reads."""
        trace = work / "strace.txt"
        data_dir = work / "probe-agent"
        done = run(["strace", "-f", "-qq", "-y", "-s", "0", "-o", str(trace),
                    "-e", "trace=openat,read,pread64,readv,preadv",
                    *self.restore_cmd(data_dir, concurrency), "--json"],
                   "probe restore (strace)")
        prefix = str(self.root.resolve()) + "/"
        opened = set()
        read = 0
        call_re = re.compile(r'^(\d+)\s+(\w+)\((?:AT_FDCWD|\d+)(?:<([^>]*)>)?(?:, "([^"]*)")?')
        resumed_re = re.compile(r"^(\d+)\s+<\.\.\. \w+ resumed>")
        unfinished: Dict[str, Tuple[str, str, str]] = {}
        for line in trace.read_text(errors="replace").splitlines():
            call = call_re.match(line)
            if call:
                pid, name, fd_path, path = call.groups()
                if line.endswith("<unfinished ...>"):
                    unfinished[pid] = (name, fd_path or "", path or "")
                    continue
                fd_path, path = fd_path or "", path or ""
            else:
                resumed = resumed_re.match(line)
                if not resumed or resumed.group(1) not in unfinished:
                    continue
                name, fd_path, path = unfinished.pop(resumed.group(1))
            result = re.match(r"\s*(\d+)", line.rsplit(" = ", 1)[-1]) if " = " in line else None
            if result is None:
                continue
            if name == "openat":
                if path.startswith(prefix) and os.path.isfile(path):
                    opened.add(path)
            elif fd_path.startswith(prefix):
                read += int(result.group(1))
        self.files = sorted(Path(p) for p in opened)
        self.file_bytes = sum(p.stat().st_size for p in self.files)
        self.read_bytes = read
        if verify:
            check_digest(self, done)
        shutil.rmtree(data_dir)
        trace.unlink()


def check_digest(backup: Backup, done: subprocess.CompletedProcess) -> None:
    """The probe's Post check digest against the truth file at its restore SCN."""
    dag = json.loads(done.stdout)
    recorded = (dag.get("additional_data") or {}).get("tenant_digest")
    scn = re.search(r"restore_scn\s+(\d+)", done.stderr)
    if not recorded or not scn:
        raise RuntimeError("the probe restore recorded no digest or restore_scn")
    expected = Workload.load(backup.truth).digest_at(int(scn.group(1)))
    if (recorded["rows"], recorded["sha256"]) != (expected.rows, expected.sha256):
        raise RuntimeError(f"restored digest {recorded} != truth {expected}")
    print(f"probe restore digest = truth: {expected.rows} rows, {expected.sha256[:16]}...",
          flush=True)


class Postgres:
    """A PostgreSQL cluster of about `target` bytes and its pgBackRest full backup."""

    def __init__(self, work: Path, target: int, concurrency: int):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
        if not bins:
            raise RuntimeError("no /usr/lib/postgresql/*/bin (apt-get install postgresql)")
        self.bin = Path(bins[-1])
        self.home = work / "pg"
        self.home.mkdir()
        shutil.chown(self.home, "postgres", "postgres")
        self.data = self.home / "data"
        self.conf = self.home / "pgbackrest.conf"
        self.conf.write_text(
            "[global]\n"
            f"repo1-path={self.home / 'repo'}\n"
            "compress-type=none\n"
            "start-fast=y\n"
            "log-level-console=warn\n"
            "log-level-file=off\n"
            f"lock-path={self.home / 'lock'}\n"
            f"[{STANZA}]\n"
            f"pg1-path={self.data}\n"
            f"pg1-port={PG_PORT}\n"
            f"pg1-socket-path={self.home}\n")
        self.version = run(["pgbackrest", "version"], "pgbackrest version").stdout.strip()
        self.build(target, concurrency)
        info = json.loads(run(self.rest(["--output=json", "info"]), "pgbackrest info").stdout)
        backup = info[0]["backup"][-1]
        self.label = backup["label"]
        self.repo_bytes = backup["info"]["repository"]["size"]
        self.db_bytes = backup["info"]["size"]

    def rest(self, args: List[str]) -> List[str]:
        return as_postgres(["pgbackrest", f"--config={self.conf}", f"--stanza={STANZA}"] + args)

    def psql(self, sql: str) -> str:
        return run(as_postgres([str(self.bin / "psql"), "-h", str(self.home), "-p",
                                str(PG_PORT), "-d", "postgres", "-qAtX", "-c", sql]),
                   "psql").stdout.strip()

    def build(self, target: int, concurrency: int) -> None:
        run(as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                         "-U", "postgres", "--no-sync"]), "initdb")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {PG_PORT}\nlisten_addresses = ''\n"
                       f"unix_socket_directories = '{self.home}'\n"
                       "wal_level = replica\narchive_mode = on\n"
                       f"archive_command = 'pgbackrest --config={self.conf} --stanza={STANZA}"
                       " archive-push %p'\nmax_wal_size = 4GB\n")
        run(as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                         str(self.home / "log"), "-w", "start"]), "pg_ctl start")
        try:
            run(self.rest(["stanza-create"]), "pgbackrest stanza-create")
            self.fill(target)
            run(self.rest(["--type=full", f"--process-max={concurrency}", "backup"]),
                "pgbackrest backup")
        finally:
            run(as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                             "-w", "stop"]), "pg_ctl stop")

    def fill(self, target: int) -> None:
        """One table of ~1 KB rows (storage PLAIN: neither compressed nor toasted) until
        the data directory (pg_wal aside, which a backup does not copy) is ~target."""
        self.psql("CREATE TABLE t (id bigint, v text) WITH (fillfactor = 100); "
                  "ALTER TABLE t ALTER COLUMN v SET STORAGE PLAIN;")
        sample = 10_000
        self.insert(0, sample)
        self.psql("CHECKPOINT")
        per_row = int(self.psql("SELECT pg_relation_size('t')")) / sample
        rest = target - tree_bytes(self.data, skip=("pg_wal",))
        rows = max(0, int(rest / per_row))
        step = 200_000
        for start in range(sample, sample + rows, step):
            self.insert(start, min(step, sample + rows - start))
        self.psql("CHECKPOINT")

    def insert(self, start: int, count: int) -> None:
        self.psql(f"INSERT INTO t SELECT g, repeat(md5(g::text), 31) "
                  f"FROM generate_series({start}, {start + count - 1}) g")


def copy_files(files: List[Path], dest: Path) -> None:
    """Read + write 1 MiB at a time, fsync per file, then fsync the directory."""
    dest.mkdir()
    buffer = bytearray(COPY_BUFFER)
    view = memoryview(buffer)
    for index, path in enumerate(files):
        with open(path, "rb", buffering=0) as src, \
                open(dest / f"{index:05}-{path.name}", "wb", buffering=0) as out:
            while True:
                n = src.readinto(buffer)
                if not n:
                    break
                out.write(view[:n])
            os.fsync(out.fileno())
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def timed_rounds(args: argparse.Namespace, work: Path, backup: Backup,
                 pg: Postgres) -> Tuple[Dict[str, List[float]], str]:
    ob_dir, pg_dir, copy_dir = work / "ob-agent", work / "pg-restore", work / "copy"

    def clean() -> None:
        for path in (ob_dir, pg_dir, copy_dir):
            shutil.rmtree(path, ignore_errors=True)

    def obrestore() -> None:
        run(backup.restore_cmd(ob_dir, args.concurrency), "obagent restore start")

    def pgbackrest() -> None:
        run(pg.rest([f"--pg1-path={pg_dir}", f"--process-max={args.concurrency}", "restore"]),
            "pgbackrest restore")

    def copy() -> None:
        copy_files(backup.files, copy_dir)

    def baseline() -> None:
        run(backup.restore_cmd(ob_dir, args.concurrency, args.baseline), "baseline restore")

    def prepare_pg() -> None:
        pg_dir.mkdir(mode=0o700)
        shutil.chown(pg_dir, "postgres", "postgres")

    commands = [("obrestore", obrestore, lambda: None),
                ("pgbackrest", pgbackrest, prepare_pg),
                ("copy", copy, lambda: None)]
    if args.baseline:
        commands.append(("baseline", baseline, lambda: None))
    warm_inputs = (backup.files + sorted(Path(p) for p in glob.glob(
        str(pg.home / "repo" / "backup" / STANZA / pg.label / "**"), recursive=True)
        if os.path.isfile(p))) if args.warm else []
    times: Dict[str, List[float]] = {name: [] for name, _, _ in commands}
    cache = "cold"
    for round_no in range(args.runs):
        shift = round_no % len(commands)
        for name, command, prepare in commands[shift:] + commands[:shift]:
            clean()
            prepare()
            cache = drop_cache(warm_inputs)
            started = time.perf_counter()
            command()
            times[name].append(time.perf_counter() - started)
            print(f"  round {round_no + 1}: {name:<10} {times[name][-1]:7.3f} s", flush=True)
    clean()
    return times, cache


def report(args: argparse.Namespace, backup: Backup, pg: Postgres,
           times: Dict[str, List[float]], cache: str) -> None:
    rows = [("obrestore", f"obagent restore start --concurrency {args.concurrency}",
             backup.file_bytes),
            ("pgbackrest", f"pgbackrest restore --process-max={args.concurrency}",
             pg.repo_bytes),
            ("copy", "copy + fsync of the files obrestore reads", backup.file_bytes)]
    if args.baseline:
        rows.append(("baseline", f"baseline obagent ({args.baseline}) --concurrency "
                     f"{args.concurrency}", backup.file_bytes))
    mbs = {}
    load = os.getloadavg()
    print(f"\nbackup --size {args.size}; obrestore opens {len(backup.files)} backup files, "
          f"{backup.file_bytes / 1e6:.1f} MB ({backup.read_bytes / 1e6:.1f} MB read from "
          f"them); PostgreSQL data {pg.db_bytes / 1e6:.1f} MB, pgBackRest repository "
          f"{pg.repo_bytes / 1e6:.1f} MB ({pg.version}, compress-type=none)")
    print(f"page cache: {cache} before every command; {args.runs} rounds, alternating; "
          f"load average at the end {load[0]:.2f}\n")
    print("| command | bytes read | median wall | MB/s | runs (s) |")
    print("|---|---|---|---|---|")
    for name, label, nbytes in rows:
        median = statistics.median(times[name])
        mbs[name] = nbytes / 1e6 / median
        runs = ", ".join(f"{t:.3f}" for t in times[name])
        print(f"| {label} | {nbytes / 1e6:.1f} MB | {median:.3f} s | {mbs[name]:.1f} | {runs} |")
    print(f"\nobrestore / pgBackRest (MB/s): {mbs['obrestore'] / mbs['pgbackrest']:.2f}x")
    print(f"obrestore / copy + fsync (MB/s): {mbs['obrestore'] / mbs['copy']:.2f}x")
    if args.baseline:
        print(f"baseline / copy + fsync (MB/s): {mbs['baseline'] / mbs['copy']:.2f}x")


def main() -> int:
    args = parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="peers-restore-", dir=args.workdir))
    os.chmod(work, 0o755)
    try:
        print(f"work directory {work}", flush=True)
        started = time.perf_counter()
        backup = Backup(args.binary, work, args.size)
        print(f"generated the backup ({time.perf_counter() - started:.1f} s)", flush=True)
        backup.probe(work, args.concurrency, not args.no_verify)
        print(f"probe: {len(backup.files)} files, {backup.file_bytes / 1e6:.1f} MB",
              flush=True)
        pg = Postgres(work, backup.file_bytes, args.concurrency)
        print(f"PostgreSQL + pgBackRest backup ready ({time.perf_counter() - started:.1f} s)",
              flush=True)
        times, cache = timed_rounds(args, work, backup, pg)
        report(args, backup, pg, times, cache)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
