"""The truth oracle itself (tests/sdk/truth.py): the digest definition of
crates/backup/src/truth.rs, and agreement with the generator's own summary."""

import hashlib
import struct

from truth import Digest, Workload, digest_rows


def h(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def test_empty_digest_is_sha256_of_nothing():
    assert digest_rows({}) == Digest(0, hashlib.sha256(b"").hexdigest())
    assert digest_rows({}).sha256 == \
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_digest_orders_by_tablet_then_bytewise_key():
    rows = {(2, b"a"): h(b"z"), (1, b"b"): h(b"y"), (1, b"a"): h(b"x"),
            (1, b"a\x00"): h(b"w"), (10, b""): h(b"v")}
    expected = hashlib.sha256()
    for tablet, key, value in [(1, b"a", b"x"), (1, b"a\x00", b"w"), (1, b"b", b"y"),
                               (2, b"a", b"z"), (10, b"", b"v")]:
        expected.update(struct.pack(">QI", tablet, len(key)) + key + h(value))
    assert digest_rows(rows) == Digest(5, expected.hexdigest())


def test_replay_applies_inserts_updates_deletes_up_to_the_scn(tmp_path):
    x, y = h(b"x").hex(), h(b"y").hex()
    (tmp_path / "workload.tsv").write_text(
        "# obrestore truth v1\n"
        f"10\t1001\t5\tI\t6b\t{x}\n"
        f"20\t1001\t5\tU\t6b\t{y}\n"
        "30\t1001\t5\tD\t6b\t-\n")
    wl = Workload.load(tmp_path)
    assert wl.rows_at(9) == {}
    assert wl.rows_at(10) == {(5, b"k"): h(b"x")}
    assert wl.rows_at(29) == {(5, b"k"): h(b"y")}
    assert wl.rows_at(30) == {}
    assert wl.digest_at(25).rows == 1


def test_oracle_agrees_with_the_generator_summary(backup):
    wl = backup.workload
    assert len(wl.ops) == backup.generated_ops
    assert wl.digest_at(wl.max_scn).rows == backup.generated_live_rows
    assert set(backup.user_ls) | {1} >= set(wl.log_streams())
