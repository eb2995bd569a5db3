"""Independent truth oracle for the generator's workload (`truth/workload.tsv`).

The format and the digest are defined in the module docs of
`crates/backup/src/truth.rs`; this file shares no code with the Rust side:

* one header line ``# obrestore truth v1``, then one operation per line, in SCN order:
  ``scn \\t ls_id \\t tablet_id \\t op \\t key_hex \\t value_sha256_hex`` with ``op`` one of
  ``I``, ``U``, ``D`` (the value hash is ``-`` for ``D``);
* the tenant digest over the live rows sorted by ``(tablet_id, key)`` (bytewise key
  order) is ``SHA-256( Σ tablet_id:u64 BE ‖ key_len:u32 BE ‖ key ‖ SHA-256(value) )``,
  lowercase hex, together with the row count. An empty tenant's digest is SHA-256("").
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

HEADER = "# obrestore truth v1"
WORKLOAD_FILE = "workload.tsv"


@dataclass(frozen=True)
class Op:
    scn: int
    ls_id: int
    tablet_id: int
    op: str
    key: bytes
    value_sha256: bytes | None


@dataclass(frozen=True)
class Digest:
    rows: int
    sha256: str


class Workload:
    """The parsed workload, kept in memory (the suite's backups are small)."""

    def __init__(self, ops: List[Op]):
        self.ops = ops

    @classmethod
    def load(cls, path: Path) -> "Workload":
        path = Path(path)
        if path.is_dir():
            path = path / WORKLOAD_FILE
        ops: List[Op] = []
        with open(path, "r", encoding="ascii") as f:
            first = f.readline().rstrip("\n")
            if first != HEADER:
                raise ValueError(f"{path}: line 1: missing header {HEADER!r}, got {first!r}")
            last_scn = 0
            for line_no, line in enumerate(f, start=2):
                line = line.rstrip("\n")
                fields = line.split("\t")
                if len(fields) != 6:
                    raise ValueError(f"{path}: line {line_no}: expected 6 tab-separated fields")
                scn_s, ls_s, tablet_s, op, key_hex, value_hex = fields
                scn = int(scn_s)
                if scn < last_scn:
                    raise ValueError(f"{path}: line {line_no}: scn {scn} < previous {last_scn}")
                last_scn = scn
                if op in ("I", "U"):
                    value = bytes.fromhex(value_hex)
                    if len(value) != 32:
                        raise ValueError(f"{path}: line {line_no}: value hash is not 32 bytes")
                elif op == "D":
                    if value_hex != "-":
                        raise ValueError(f"{path}: line {line_no}: D must have '-' as value")
                    value = None
                else:
                    raise ValueError(f"{path}: line {line_no}: op must be I, U or D")
                ops.append(Op(scn, int(ls_s), int(tablet_s), op, bytes.fromhex(key_hex), value))
        return cls(ops)

    # -- queries ---------------------------------------------------------------------

    @property
    def min_scn(self) -> int:
        return self.ops[0].scn

    @property
    def max_scn(self) -> int:
        return self.ops[-1].scn

    def log_streams(self) -> List[int]:
        return sorted({op.ls_id for op in self.ops})

    def rows_at(self, scn: int) -> Dict[Tuple[int, bytes], bytes]:
        """Live rows after applying every operation with ``op.scn <= scn``."""
        rows: Dict[Tuple[int, bytes], bytes] = {}
        for op in self.ops:
            if op.scn > scn:
                break
            k = (op.tablet_id, op.key)
            if op.op == "D":
                rows.pop(k, None)
            else:
                rows[k] = op.value_sha256  # type: ignore[assignment]
        return rows

    def digest_at(self, scn: int) -> Digest:
        return digest_rows(self.rows_at(scn))

    def scns_between(self, lo: int, hi: int) -> List[int]:
        """Distinct operation SCNs with ``lo < scn < hi``."""
        out = []
        for op in self.ops:
            if lo < op.scn < hi and (not out or out[-1] != op.scn):
                out.append(op.scn)
        return out


def digest_rows(rows: Dict[Tuple[int, bytes], bytes]) -> Digest:
    h = hashlib.sha256()
    for (tablet_id, key) in sorted(rows):  # tuple order: tablet id, then bytewise key
        h.update(struct.pack(">Q", tablet_id))
        h.update(struct.pack(">I", len(key)))
        h.update(key)
        h.update(rows[(tablet_id, key)])
    return Digest(rows=len(rows), sha256=h.hexdigest())
