//! The run files on disk: a flipped byte or a truncation is an error naming the file,
//! never a wrong digest; leftovers of interrupted writes, compactions and drops are
//! removed at reopen.

use obrestore_backup::truth::digest_map;
use obrestore_restore::cluster::{RowOp, RunStats};
use obrestore_restore::{ClusterError, TenantService};

use crate::common::fixtures::{del, put};
use crate::common::Model;
use crate::support::{assert_row_file_error, check, names_in, run_files, run_range, scan, Fixture};

/// A tenant with two runs, the older one with 30 rows; returns the tenant, the model and
/// the older run's file name.
fn two_runs(fx: &mut Fixture) -> (u64, Model, String) {
    let t = fx.tenant("t");
    let mut model = Model::new();
    let first: Vec<RowOp> = (0..30u32)
        .map(|i| {
            put(
                u64::from(i % 3),
                format!("key-{i}").as_bytes(),
                format!("value-{i}").repeat(i as usize % 4).as_bytes(),
            )
        })
        .collect();
    fx.apply(t, &mut model, &first);
    let runs = run_files(&fx.tenant_dir(t));
    assert_eq!(runs.len(), 1);
    fx.apply(
        t,
        &mut model,
        &[
            put(0, b"key-0", b"newer"),
            del(1, b"key-1"),
            put(7, b"x", b"y"),
        ],
    );
    check(fx.cluster(), t, &model, "two runs");
    (t, model, runs[0].clone())
}

#[test]
fn any_flipped_byte_of_a_run_is_an_error_never_a_wrong_digest() {
    let mut fx = Fixture::new();
    let (t, model, file) = two_runs(&mut fx);
    let path = fx.tenant_dir(t).join(&file);
    let original = std::fs::read(&path).unwrap();
    let len = original.len();
    let good = digest_map(&model);

    // Flip the byte in the middle first, through every read path.
    let mut bytes = original.clone();
    bytes[len / 2] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    let cluster = fx.cluster();
    assert_row_file_error(&cluster.tenant_digest(t).unwrap_err(), &file, "digest");
    assert_row_file_error(&cluster.row_count(t).unwrap_err(), &file, "row_count");
    assert_row_file_error(&scan(cluster, t).unwrap_err(), &file, "for_each_row");
    // Compaction refuses to merge a corrupt run and keeps the runs.
    let stats = cluster.row_stats(t);
    assert_row_file_error(&cluster.compact_rows(t).unwrap_err(), &file, "compaction");
    assert_eq!(cluster.row_stats(t), stats);
    assert_eq!(run_files(&fx.tenant_dir(t)).len(), 2);
    // ... and leaves no partial merge behind (each failed attempt would add a `.tmp`).
    assert_eq!(
        names_in(&fx.tenant_dir(t)).len(),
        2,
        "only the two runs: {:?}",
        names_in(&fx.tenant_dir(t))
    );
    assert_row_file_error(
        &cluster.compact_rows(t).unwrap_err(),
        &file,
        "compaction again",
    );
    assert_eq!(names_in(&fx.tenant_dir(t)).len(), 2);

    // Every single byte: an error about the file, or (only for the reserved fields) the
    // right digest.
    let reserved = |at: usize| (12..16).contains(&at) || at >= len - 4;
    let mut errors = 0;
    for at in 0..len {
        let mut bytes = original.clone();
        bytes[at] ^= 0x01 << (at % 8);
        std::fs::write(&path, &bytes).unwrap();
        match cluster.tenant_digest(t) {
            Ok(digest) => {
                assert_eq!(digest, good, "byte {at} of {len} flipped: a wrong digest");
                assert!(reserved(at), "byte {at} of {len} flipped went unnoticed");
            }
            Err(error) => {
                assert_row_file_error(&error, &file, &format!("byte {at} of {len}"));
                errors += 1;
            }
        }
    }
    assert!(errors >= len - 8, "{errors} errors for {len} flipped bytes");

    // Restored, everything reads and compacts again.
    std::fs::write(&path, &original).unwrap();
    check(cluster, t, &model, "restored");
    assert_eq!(cluster.compact_rows(t).unwrap(), 2);
    check(cluster, t, &model, "restored and compacted");
}

#[test]
fn a_truncated_run_fails_the_reopen_and_names_the_file() {
    let mut fx = Fixture::new();
    let (t, model, file) = two_runs(&mut fx);
    let path = fx.tenant_dir(t).join(&file);
    let original = std::fs::read(&path).unwrap();
    let len = original.len();

    // While open: reads fail.
    std::fs::write(&path, &original[..len - 1]).unwrap();
    assert_row_file_error(&fx.cluster().tenant_digest(t).unwrap_err(), &file, "open");

    for cut in [len - 1, len - 40, len / 2, 41, 10, 0] {
        std::fs::write(&path, &original[..cut]).unwrap();
        let error = fx.try_reopen().unwrap_err();
        assert_row_file_error(&error, &file, &format!("cut to {cut} of {len} bytes"));
        // Nothing was deleted by the failed open.
        assert_eq!(run_files(&fx.tenant_dir(t)).len(), 2);
    }
    // Extended with garbage: also refused.
    let mut longer = original.clone();
    longer.extend_from_slice(b"garbage");
    std::fs::write(&path, &longer).unwrap();
    assert_row_file_error(&fx.try_reopen().unwrap_err(), &file, "extended");

    std::fs::write(&path, &original).unwrap();
    fx.reopen();
    check(fx.cluster(), t, &model, "restored");
}

#[test]
fn stray_tmp_files_and_covered_runs_are_removed_at_reopen() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();
    fx.apply(
        t,
        &mut model,
        &[
            put(1, b"a", b"1"),
            put(1, b"b", b"1"),
            put(1, b"c", b"1"),
            put(2, b"d", b"1"),
        ],
    );
    fx.apply(t, &mut model, &[put(1, b"a", b"2"), del(1, b"b")]);
    fx.apply(t, &mut model, &[del(2, b"d"), put(3, b"e", b"3")]);
    fx.apply(t, &mut model, &[del(1, b"c"), put(1, b"a", b"4")]);
    let dir = fx.tenant_dir(t);
    let inputs = run_files(&dir);
    assert_eq!(inputs.len(), 4);
    let aside = fx.dir.path().join("aside");
    std::fs::create_dir(&aside).unwrap();
    for name in &inputs {
        std::fs::copy(dir.join(name), aside.join(name)).unwrap();
    }
    assert_eq!(fx.cluster().compact_rows(t).unwrap(), 4);
    let merged = run_files(&dir);
    assert_eq!(merged.len(), 1);
    let (lo, hi) = run_range(&merged[0]);
    assert_eq!((lo, hi), (run_range(&inputs[0]).0, run_range(&inputs[3]).1));
    check(fx.cluster(), t, &model, "compacted");
    // The compaction dropped the tombstones of b, c and d: the old inputs, if read, would
    // bring those rows back.
    assert_eq!(fx.cluster().row_stats(t).versions, 2);

    // A crash between the compaction's rename and the deletion of its inputs, and two
    // unfinished writes (one empty, one a complete-looking copy of a run).
    for name in &inputs {
        std::fs::copy(aside.join(name), dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join(format!("{:016x}-{:016x}.tmp", hi + 1, hi + 1)),
        b"",
    )
    .unwrap();
    std::fs::copy(
        aside.join(&inputs[0]),
        dir.join(format!("{:016x}-{:016x}.tmp", hi + 2, hi + 2)),
    )
    .unwrap();
    assert_eq!(names_in(&dir).len(), 7);

    fx.reopen();
    assert_eq!(names_in(&dir), merged, "leftovers removed");
    assert_eq!(
        fx.cluster().row_stats(t),
        RunStats {
            runs: 1,
            versions: 2
        }
    );
    check(fx.cluster(), t, &model, "after reopen");

    // New batches get numbers past the committed ones and win over them.
    fx.apply(t, &mut model, &[put(1, b"b", b"5"), put(1, b"a", b"5")]);
    check(fx.cluster(), t, &model, "new batch");
    let (new_lo, _) = run_range(run_files(&dir).last().unwrap());
    assert!(new_lo > hi, "new run {new_lo} not after {hi}");
    fx.reopen();
    check(fx.cluster(), t, &model, "new batch after reopen");

    // A run overlapping another without being inside it is not a state the store makes:
    // refused, naming the file.
    let overlapping = format!("{:016x}-{:016x}.run", lo + 1, new_lo + 5);
    std::fs::copy(aside.join(&inputs[1]), dir.join(&overlapping)).unwrap();
    assert_row_file_error(&fx.try_reopen().unwrap_err(), &overlapping, "overlap");
    std::fs::remove_file(dir.join(&overlapping)).unwrap();
    fx.reopen();
    check(fx.cluster(), t, &model, "overlap removed");
}

#[test]
fn drops_remove_the_rows_directory_and_leftovers_go_at_reopen() {
    let mut fx = Fixture::new();
    let a = fx.tenant("a");
    let b = fx.tenant("b");
    let mut model_a = Model::new();
    let mut model_b = Model::new();
    fx.apply(
        a,
        &mut model_a,
        &[put(1, b"k1", b"a1"), put(1, b"k2", b"a2")],
    );
    fx.apply(a, &mut model_a, &[put(2, b"k3", b"a3")]);
    fx.apply(b, &mut model_b, &[put(1, b"k1", b"b1")]);
    assert!(fx.tenant_dir(a).is_dir());

    // drop_rows: the directory goes, the tenant stays and takes new rows; the old rows
    // never come back, not even after a reopen.
    assert_eq!(fx.cluster().drop_rows(a).unwrap(), 3);
    model_a.clear();
    assert!(!fx.tenant_dir(a).exists());
    assert_eq!(fx.cluster().row_stats(a), RunStats::default());
    check(fx.cluster(), a, &model_a, "dropped");
    assert_eq!(fx.cluster().drop_rows(a).unwrap(), 0, "dropping again");
    fx.apply(a, &mut model_a, &[put(2, b"k4", b"a4")]);
    check(fx.cluster(), a, &model_a, "new rows after drop_rows");
    fx.reopen();
    check(
        fx.cluster(),
        a,
        &model_a,
        "new rows after drop_rows and reopen",
    );
    check(fx.cluster(), b, &model_b, "other tenant");
    assert_eq!(names_in(&fx.rows_dir()), [format!("t{a}"), format!("t{b}")]);

    // Leftovers: a half-deleted drop and the rows of a tenant that no longer exists.
    let rows = fx.rows_dir();
    let doomed = rows.join(format!("dropped-{a}-12345-1"));
    std::fs::create_dir(&doomed).unwrap();
    for name in run_files(&fx.tenant_dir(a)) {
        std::fs::copy(fx.tenant_dir(a).join(&name), doomed.join(&name)).unwrap();
    }
    std::fs::write(doomed.join("0000000000000099-0000000000000099.tmp"), b"x").unwrap();
    let ghost = rows.join("t999998");
    std::fs::create_dir(&ghost).unwrap();
    for name in run_files(&fx.tenant_dir(b)) {
        std::fs::copy(fx.tenant_dir(b).join(&name), ghost.join(&name)).unwrap();
    }
    // Even an unreadable run does not matter in a directory that is removed anyway.
    std::fs::write(ghost.join("0000000000000001-0000000000000001.run"), b"junk").unwrap();
    fx.reopen();
    assert_eq!(names_in(&rows), [format!("t{a}"), format!("t{b}")]);
    check(fx.cluster(), a, &model_a, "after leftovers");
    check(fx.cluster(), b, &model_b, "after leftovers");
    check(fx.cluster(), 999_998, &Model::new(), "ghost tenant");

    // drop_tenant: the directory goes with the tenant; its id is not reused.
    assert!(fx.cluster().drop_tenant("a").unwrap());
    assert!(!fx.tenant_dir(a).exists());
    assert_eq!(names_in(&rows), [format!("t{b}")]);
    check(fx.cluster(), a, &Model::new(), "dropped tenant");
    assert!(matches!(
        fx.cluster().apply_rows(a, &[put(1, b"k", b"v")]),
        Err(ClusterError::TenantIdNotFound(id)) if id == a
    ));
    let c = fx.tenant("c");
    assert!(c > a && c > b);
    check(fx.cluster(), c, &Model::new(), "new tenant");
    fx.reopen();
    assert_eq!(names_in(&rows), [format!("t{b}")]);
    check(
        fx.cluster(),
        a,
        &Model::new(),
        "dropped tenant after reopen",
    );
    check(fx.cluster(), b, &model_b, "other tenant at the end");
}

/// `bytes` of a version 2 run rewritten as version 1: no value hashes, CRC and lengths
/// recomputed.
fn as_version_1(bytes: &[u8]) -> Vec<u8> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let (header_len, footer_len) = (40, 40);
    assert_eq!(u32_at(8), 2, "the writer writes version 2");
    let records = &bytes[header_len..bytes.len() - footer_len];
    let mut out_records = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let key_len = u32::from_le_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
        let value_len = u32::from_le_bytes(records[at + 12..at + 16].try_into().unwrap());
        let value_len = if value_len == u32::MAX {
            0
        } else {
            value_len as usize
        };
        let end = at + 16 + key_len + value_len;
        out_records.extend_from_slice(&records[at..end]);
        let stored_sha =
            u32::from_le_bytes(records[at + 12..at + 16].try_into().unwrap()) != u32::MAX;
        at = end + if stored_sha { 32 } else { 0 };
    }
    assert_eq!(at, records.len());
    let mut out = bytes[..header_len].to_vec();
    out[8..12].copy_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&out_records);
    let footer = &bytes[bytes.len() - footer_len..];
    out.extend_from_slice(&footer[..24]);
    out.extend_from_slice(&(out_records.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&out_records).to_le_bytes());
    out.extend_from_slice(&footer[36..]);
    out
}

#[test]
fn version_1_runs_without_value_hashes_are_still_read_digested_and_compacted() {
    let mut fx = Fixture::new();
    let (t, model, file) = two_runs(&mut fx);
    let path = fx.tenant_dir(t).join(&file);
    let v2 = std::fs::read(&path).unwrap();
    let v1 = as_version_1(&v2);
    assert!(v1.len() < v2.len(), "the version 2 run stores value hashes");
    std::fs::write(&path, &v1).unwrap();
    fx.reopen();
    // The reader hashes a version 1 run's values: the digest is the model's.
    check(fx.cluster(), t, &model, "a version 1 run");
    assert_eq!(fx.cluster().tenant_digest(t).unwrap(), digest_map(&model));
    // A merge rewrites it as version 2 with the hashes it computed.
    assert_eq!(fx.cluster().compact_rows(t).unwrap(), 2);
    check(fx.cluster(), t, &model, "compacted into version 2");
    let runs = run_files(&fx.tenant_dir(t));
    let merged = std::fs::read(fx.tenant_dir(t).join(&runs[0])).unwrap();
    assert_eq!(u32::from_le_bytes(merged[8..12].try_into().unwrap()), 2);
    fx.reopen();
    check(fx.cluster(), t, &model, "compacted, reopened");
}
