//! The tenant row store (sorted run files, see `cluster/rowstore.rs`) through the public
//! `SledCluster` / `TenantService` API, every check against a reference model: a
//! `BTreeMap<(tablet_id, key), value>` that gets the same ops in the same order.
//!
//! Covers last-op-wins within a batch, newest-run-wins across batches, tombstones,
//! random batches with compaction and reopen, automatic compaction, corrupt and truncated
//! run files, leftovers of interrupted writes, compactions and drops, and tenant
//! isolation.

mod common;

use std::path::{Path, PathBuf};

use common::{apply_model, model_rows, Model};
use obrestore_restore::cluster::digest::digest_rows;
use obrestore_restore::cluster::{
    ClusterResult, NewTenant, PoolSpec, ReplicaType, Row, RowBatch, RowOp, RunStats, TenantRole,
    TenantStatus, TenantZone, COMPACT_AT_RUNS,
};
use obrestore_restore::{ClusterConfig, ClusterError, SledCluster, TenantService};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn put(tablet_id: u64, key: &[u8], value: &[u8]) -> RowOp {
    RowOp::Put {
        tablet_id,
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn del(tablet_id: u64, key: &[u8]) -> RowOp {
    RowOp::Delete {
        tablet_id,
        key: key.to_vec(),
    }
}

/// Distinct `(tablet_id, key)` of a batch: the versions its run stores.
fn distinct_keys(ops: &[RowOp]) -> u64 {
    let mut keys = std::collections::BTreeSet::new();
    for op in ops {
        let (RowOp::Put { tablet_id, key, .. } | RowOp::Delete { tablet_id, key }) = op;
        keys.insert((*tablet_id, key.clone()));
    }
    keys.len() as u64
}

fn scan(cluster: &SledCluster, tenant_id: u64) -> ClusterResult<Vec<Row>> {
    let mut rows = Vec::new();
    cluster.for_each_row(tenant_id, &mut |tablet_id, key, value| {
        rows.push(Row {
            tablet_id,
            key: key.to_vec(),
            value: value.to_vec(),
        })
    })?;
    Ok(rows)
}

/// The tenant's rows equal the model: `for_each_row` (order and content), `row_count`
/// and `tenant_digest`.
#[track_caller]
fn check(cluster: &SledCluster, tenant_id: u64, model: &Model, context: &str) {
    let expected = model_rows(model);
    let seen = scan(cluster, tenant_id).unwrap_or_else(|e| panic!("{context}: scan: {e}"));
    if seen != expected {
        let first_difference = seen
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(seen.len().min(expected.len()));
        panic!(
            "{context}: tenant {tenant_id} has {} rows, the model {}; first difference at {first_difference}: {:?} vs {:?}",
            seen.len(),
            expected.len(),
            seen.get(first_difference),
            expected.get(first_difference)
        );
    }
    assert!(
        seen.windows(2)
            .all(|w| (w[0].tablet_id, &w[0].key) < (w[1].tablet_id, &w[1].key)),
        "{context}: rows not strictly ascending"
    );
    assert_eq!(
        cluster.row_count(tenant_id).unwrap(),
        model.len() as u64,
        "{context}: row_count"
    );
    let digest = cluster.tenant_digest(tenant_id).unwrap();
    assert_eq!(digest, digest_rows(expected), "{context}: tenant_digest");
    assert_eq!(
        digest.row_count,
        model.len() as u64,
        "{context}: digest row count"
    );
}

fn open_cluster(path: &Path) -> ClusterResult<SledCluster> {
    common::retry_while_locked(|| SledCluster::open(path, &ClusterConfig::default()))
}

/// A cluster in a temporary directory that can be closed and reopened from its files.
struct Fixture {
    dir: tempfile::TempDir,
    cluster: Option<SledCluster>,
    pools: usize,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cluster = open_cluster(&dir.path().join("db")).unwrap();
        Fixture {
            dir,
            cluster: Some(cluster),
            pools: 0,
        }
    }

    fn cluster(&self) -> &SledCluster {
        self.cluster.as_ref().expect("the cluster is closed")
    }

    fn close(&mut self) {
        // Dropping the cluster drops its sled::Db; sled releases its lock soon after.
        self.cluster = None;
    }

    fn try_reopen(&mut self) -> ClusterResult<()> {
        self.close();
        self.cluster = Some(open_cluster(&self.dir.path().join("db"))?);
        Ok(())
    }

    fn reopen(&mut self) {
        self.try_reopen().unwrap();
    }

    /// `SledCluster::open(D/db)` keeps the rows in `D/db.rows`.
    fn rows_dir(&self) -> PathBuf {
        self.dir.path().join("db.rows")
    }

    fn tenant_dir(&self, tenant_id: u64) -> PathBuf {
        self.rows_dir().join(format!("t{tenant_id}"))
    }

    /// Creates a tenant on a new one-unit pool (zones take turns); returns its id.
    fn tenant(&mut self, name: &str) -> u64 {
        let zone = format!("z{}", self.pools % 3 + 1);
        let pool = format!("pool_{name}");
        self.pools += 1;
        let cluster = self.cluster();
        cluster
            .create_pools(
                &[PoolSpec {
                    name: pool.clone(),
                    unit_config_name: "s1".into(),
                    unit_num: 1,
                    zone_list: vec![zone.clone()],
                }],
                "rowstore-test",
            )
            .unwrap();
        cluster
            .create_tenant(
                &NewTenant {
                    name: name.into(),
                    status: TenantStatus::Restore,
                    role: TenantRole::Standby,
                    data_version: "4.2.1.0".into(),
                    primary_zone: "RANDOM".into(),
                    zone_list: vec![TenantZone {
                        zone,
                        replica_type: ReplicaType::Full,
                    }],
                    pool_names: vec![pool],
                },
                "rowstore-test",
            )
            .unwrap()
            .id
    }

    fn apply(&self, tenant_id: u64, model: &mut Model, ops: &[RowOp]) {
        self.cluster().apply_rows(tenant_id, ops).unwrap();
        apply_model(model, ops);
    }
}

/// Names in a directory, sorted (empty when it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn run_files(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|name| name.ends_with(".run"))
        .collect()
}

/// `(lo, hi)` of a `<lo>-<hi>.run` name.
fn run_range(name: &str) -> (u64, u64) {
    let stem = name.strip_suffix(".run").unwrap();
    let (lo, hi) = stem.split_once('-').unwrap();
    (
        u64::from_str_radix(lo, 16).unwrap(),
        u64::from_str_radix(hi, 16).unwrap(),
    )
}

/// The error is a `RowFile` error about `file` (its path and its message name it).
#[track_caller]
fn assert_row_file_error(error: &ClusterError, file: &str, context: &str) {
    match error {
        ClusterError::RowFile { path, .. } => {
            assert!(
                Path::new(path).file_name().and_then(|n| n.to_str()) == Some(file),
                "{context}: the error names {path}, not {file}: {error}"
            );
            assert!(
                error.to_string().contains(file),
                "{context}: the message does not name {file}: {error}"
            );
        }
        other => panic!("{context}: expected a RowFile error about {file}, got {other:?}"),
    }
}

#[test]
fn within_a_batch_the_last_op_of_a_key_wins() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();

    // Rows the next batch deletes and re-puts.
    fx.apply(
        t,
        &mut model,
        &[
            put(5, b"old-deleted", b"x"),
            put(5, b"old-reput", b"x"),
            put(5, b"old-kept", b"kept"),
        ],
    );
    assert_eq!(model.len(), 3);

    // Unsorted by key and by tablet, with repeats of keys.
    let batch = [
        put(9, b"m", b"m1"),
        put(2, b"put-then-delete", b"gone"),
        put(5, b"old-reput", b"y1"),
        del(9, b"delete-then-put"),
        put(2, b"put-twice", b"first"),
        put(1, b"z", b"z"),
        del(2, b"put-then-delete"),
        del(5, b"old-reput"),
        put(9, b"delete-then-put", b"back"),
        put(2, b"put-twice", b"second"),
        del(5, b"old-deleted"),
        put(5, b"old-reput", b"y2"),
        put(1, b"a", b"a"),
        put(9, b"m", b"m2"),
        put(2, b"put-twice", b"third"),
        del(7, b"never-existed"),
    ];
    fx.apply(t, &mut model, &batch);
    let cluster = fx.cluster();
    check(cluster, t, &model, "after the batch");

    let value = |tablet: u64, key: &[u8]| model.get(&(tablet, key.to_vec())).cloned();
    assert_eq!(value(2, b"put-then-delete"), None);
    assert_eq!(value(9, b"delete-then-put").as_deref(), Some(&b"back"[..]));
    assert_eq!(value(2, b"put-twice").as_deref(), Some(&b"third"[..]));
    assert_eq!(value(5, b"old-reput").as_deref(), Some(&b"y2"[..]));
    assert_eq!(value(5, b"old-deleted"), None);
    assert_eq!(value(9, b"m").as_deref(), Some(&b"m2"[..]));
    assert_eq!(model.len(), 7);

    // One version per distinct key of each batch: repeats within a batch are not stored.
    assert_eq!(
        cluster.row_stats(t),
        RunStats {
            runs: 2,
            versions: 3 + distinct_keys(&batch)
        }
    );
    assert_eq!(distinct_keys(&batch), 9);

    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
    assert_eq!(fx.cluster().compact_rows(t).unwrap(), 2);
    check(fx.cluster(), t, &model, "after compaction");
    assert_eq!(
        fx.cluster().row_stats(t),
        RunStats {
            runs: 1,
            versions: 7
        }
    );
}

#[test]
fn a_reused_row_batch_applies_like_its_ops() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();
    let mut batch = RowBatch::new();
    let rounds: Vec<Vec<RowOp>> = vec![
        vec![
            put(3, b"b", b"1"),
            put(1, b"a", b"1"),
            del(3, b"b"),
            put(2, b"", b""),
        ],
        vec![
            put(1, b"a", b"2"),
            put(3, b"b", b"2"),
            put(3, b"b", b"22"),
            del(2, b""),
        ],
        vec![del(1, b"a"), put(1, b"a", b"3"), del(9, b"missing")],
    ];
    for (n, ops) in rounds.iter().enumerate() {
        // Refilled after `clear`, with every way of adding a change.
        batch.clear();
        assert!(batch.is_empty());
        for (i, op) in ops.iter().enumerate() {
            match (op, i % 2) {
                (
                    RowOp::Put {
                        tablet_id,
                        key,
                        value,
                    },
                    0,
                ) => batch.put(*tablet_id, key, value),
                (
                    RowOp::Put {
                        tablet_id,
                        key,
                        value,
                    },
                    _,
                ) => batch.push(*tablet_id, key, Some(value)),
                (RowOp::Delete { tablet_id, key }, 0) => batch.delete(*tablet_id, key),
                (RowOp::Delete { tablet_id, key }, _) => batch.push(*tablet_id, key, None),
            }
        }
        assert_eq!(batch, RowBatch::from_ops(ops));
        assert_eq!(batch.len(), ops.len());
        fx.cluster().apply_batch(t, &batch).unwrap();
        apply_model(&mut model, ops);
        check(fx.cluster(), t, &model, &format!("round {n}"));
    }
    let expected: Model = [
        ((1, b"a".to_vec()), b"3".to_vec()),
        ((3, b"b".to_vec()), b"22".to_vec()),
    ]
    .into_iter()
    .collect();
    assert_eq!(model, expected);
    batch.clear();
    fx.cluster().apply_batch(t, &batch).unwrap();
    assert_eq!(
        fx.cluster().row_stats(t).runs,
        3,
        "an empty batch writes no run"
    );
    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
}

#[test]
fn later_batches_win_and_deletes_hide_rows_across_runs() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();
    let big = vec![0xabu8; 70_000];

    let batches: Vec<Vec<RowOp>> = vec![
        vec![
            put(1, b"a", b"1"),
            put(1, b"b", b"1"),
            put(2, b"a", b"1"),
            put(u64::MAX, b"\xff\xff", b"max tablet"),
            put(0, b"", b""),
            put(0, b"\x00", b"nul key"),
            put(3, b"big", &big),
        ],
        vec![
            put(1, b"a", b"2"),
            del(2, b"a"),
            put(1, b"ab", b"2"),
            put(1, b"a\x00", b"2"),
        ],
        // Empty value versus deleted: an empty value is a row.
        vec![
            put(1, b"b", b""),
            del(0, b"\x00"),
            put(3, b"big", b"small now"),
        ],
        vec![
            put(2, b"a", b"4"),
            del(1, b"ab"),
            del(u64::MAX, b"\xff\xff"),
        ],
        vec![
            del(2, b"a"),
            put(u64::MAX, b"\xff\xff", b"again"),
            put(0, b"", b"5"),
        ],
    ];
    for (n, batch) in batches.iter().enumerate() {
        fx.apply(t, &mut model, batch);
        check(fx.cluster(), t, &model, &format!("after batch {}", n + 1));
        assert_eq!(fx.cluster().row_stats(t).runs, n + 1);
    }
    type Entry<'a> = ((u64, &'a [u8]), &'a [u8]);
    let expected: Vec<Entry<'_>> = vec![
        ((0, b""), b"5"),
        ((1, b"a"), b"2"),
        ((1, b"a\x00"), b"2"),
        ((1, b"b"), b""),
        ((3, b"big"), b"small now"),
        ((u64::MAX, b"\xff\xff"), b"again"),
    ];
    let actual: Vec<Entry<'_>> = model
        .iter()
        .map(|((tablet, key), value)| ((*tablet, key.as_slice()), value.as_slice()))
        .collect();
    assert_eq!(actual, expected);

    // An empty batch writes nothing and changes nothing.
    let before = fx.cluster().row_stats(t);
    let files = names_in(&fx.tenant_dir(t));
    fx.apply(t, &mut model, &[]);
    assert_eq!(fx.cluster().row_stats(t), before);
    assert_eq!(names_in(&fx.tenant_dir(t)), files);
    check(fx.cluster(), t, &model, "after an empty batch");

    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
    assert_eq!(fx.cluster().row_stats(t), before);

    // A tenant that never got rows reads as empty.
    let empty = fx.tenant("empty");
    fx.apply(empty, &mut Model::new(), &[]);
    check(fx.cluster(), empty, &Model::new(), "empty tenant");
    assert_eq!(fx.cluster().row_stats(empty), RunStats::default());
    assert_eq!(fx.cluster().compact_rows(empty).unwrap(), 0);
    assert!(!fx.tenant_dir(empty).exists());
}

fn random_key(rng: &mut StdRng) -> (u64, Vec<u8>) {
    const TABLETS: [u64; 4] = [0, 1, 200_001, u64::MAX];
    const BYTES: [u8; 3] = [0x00, b'a', 0xff];
    let tablet = TABLETS[rng.gen_range(0..TABLETS.len())];
    let len = rng.gen_range(0..4);
    let key = (0..len)
        .map(|_| BYTES[rng.gen_range(0..BYTES.len())])
        .collect();
    (tablet, key)
}

fn random_batch(rng: &mut StdRng) -> Vec<RowOp> {
    let len = if rng.gen_bool(0.1) {
        0
    } else {
        rng.gen_range(1..40)
    };
    (0..len)
        .map(|_| {
            let (tablet_id, key) = random_key(rng);
            if rng.gen_bool(0.35) {
                RowOp::Delete { tablet_id, key }
            } else {
                let value_len = rng.gen_range(0..48);
                RowOp::Put {
                    tablet_id,
                    key,
                    value: (0..value_len).map(|_| rng.gen()).collect(),
                }
            }
        })
        .collect()
}

/// What the run statistics of a tenant must be.
#[derive(Clone, Copy, Debug, Default)]
struct StatsModel {
    runs: usize,
    versions: u64,
}

#[test]
fn random_batches_with_compaction_and_reopen_match_the_model() {
    let base: u64 = match std::env::var("OBRESTORE_ROWSTORE_SEED") {
        Ok(seed) => seed.parse().unwrap(),
        Err(_) => rand::thread_rng().gen(),
    };
    println!("rowstore random test seed {base} (set OBRESTORE_ROWSTORE_SEED to repeat)");
    let mut compactions_checked = 0;
    for case in 0..40u64 {
        let seed = base.wrapping_add(case);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut fx = Fixture::new();
        let tenants = [fx.tenant("a"), fx.tenant("b")];
        let mut models = [Model::new(), Model::new()];
        let mut stats = [StatsModel::default(); 2];
        let steps = rng.gen_range(10..30);
        for step in 0..steps {
            let which = rng.gen_range(0..2);
            let t = tenants[which];
            let context = format!("seed {seed} (base {base} case {case}) step {step}");
            let action = rng.gen_range(0..100);
            if action < 65 {
                let batch = random_batch(&mut rng);
                fx.apply(t, &mut models[which], &batch);
                if !batch.is_empty() {
                    stats[which].runs += 1;
                    stats[which].versions += distinct_keys(&batch);
                }
            } else if action < 82 {
                let before = fx.cluster().row_stats(t);
                let merged = fx.cluster().compact_rows(t).unwrap();
                if before.runs >= 2 {
                    assert_eq!(merged, before.runs, "{context}: runs merged");
                    stats[which] = StatsModel {
                        runs: 1,
                        versions: models[which].len() as u64,
                    };
                    compactions_checked += 1;
                } else {
                    assert_eq!(merged, 0, "{context}: nothing to merge");
                }
            } else if action < 95 {
                fx.reopen();
            } else {
                let count = fx.cluster().drop_rows(t).unwrap();
                assert_eq!(
                    count,
                    models[which].len() as u64,
                    "{context}: drop_rows count"
                );
                models[which].clear();
                stats[which] = StatsModel::default();
                assert!(!fx.tenant_dir(t).exists(), "{context}: dir after drop_rows");
            }
            for (i, tenant) in tenants.iter().enumerate() {
                let context = format!("{context} tenant {tenant}");
                check(fx.cluster(), *tenant, &models[i], &context);
                let actual = fx.cluster().row_stats(*tenant);
                assert_eq!(
                    (actual.runs, actual.versions),
                    (stats[i].runs, stats[i].versions),
                    "{context}: row_stats"
                );
                assert!(actual.versions >= models[i].len() as u64);
                assert_eq!(
                    run_files(&fx.tenant_dir(*tenant)).len(),
                    actual.runs,
                    "{context}"
                );
            }
        }
        // A last full compaction and reopen.
        for (i, tenant) in tenants.iter().enumerate() {
            let runs = fx.cluster().row_stats(*tenant).runs;
            let merged = fx.cluster().compact_rows(*tenant).unwrap();
            assert_eq!(merged, if runs >= 2 { runs } else { 0 }, "seed {seed}");
            if runs >= 2 {
                assert_eq!(
                    fx.cluster().row_stats(*tenant),
                    RunStats {
                        runs: 1,
                        versions: models[i].len() as u64
                    },
                    "seed {seed}: a full compaction keeps only live rows"
                );
            }
        }
        fx.reopen();
        for (i, tenant) in tenants.iter().enumerate() {
            check(
                fx.cluster(),
                *tenant,
                &models[i],
                &format!("seed {seed} final"),
            );
        }
    }
    assert!(
        compactions_checked >= 20,
        "only {compactions_checked} compactions"
    );
}

#[test]
fn past_compact_at_runs_runs_are_merged_automatically() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();
    let batches = 2 * COMPACT_AT_RUNS + 5;
    for i in 1..=batches {
        let n = i as u64;
        // Overwrite a sliding window of keys, delete one, add one.
        let mut batch: Vec<RowOp> = (0..5)
            .map(|j| {
                let key = format!("k{:03}", (n + j) % 60);
                put(n % 3, key.as_bytes(), format!("v{n}").as_bytes())
            })
            .collect();
        batch.push(del((n + 1) % 3, format!("k{:03}", (n * 7) % 60).as_bytes()));
        batch.push(put(9, format!("unique{n:04}").as_bytes(), b"u"));
        fx.apply(t, &mut model, &batch);
        let stats = fx.cluster().row_stats(t);
        // A batch that takes the tenant past COMPACT_AT_RUNS runs merges them into one.
        assert_eq!(
            stats.runs,
            (i - 1) % COMPACT_AT_RUNS + 1,
            "runs after batch {i}"
        );
        assert!(stats.runs <= COMPACT_AT_RUNS);
        assert_eq!(run_files(&fx.tenant_dir(t)).len(), stats.runs);
        if stats.runs == 1 && i > 1 {
            // The merge of all runs dropped every tombstone and overridden version.
            assert_eq!(stats.versions, model.len() as u64, "after batch {i}");
        }
        if i % 16 == 0 || stats.runs == 1 {
            check(fx.cluster(), t, &model, &format!("after batch {i}"));
        }
    }
    check(fx.cluster(), t, &model, "at the end");
    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
    assert_eq!(
        fx.cluster().row_stats(t).runs,
        (batches - 1) % COMPACT_AT_RUNS + 1
    );
}

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
    let good = digest_rows(model_rows(&model));

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

#[test]
fn rows_of_two_tenants_never_mix() {
    let mut fx = Fixture::new();
    let a = fx.tenant("a");
    let b = fx.tenant("b");
    let mut model_a = Model::new();
    let mut model_b = Model::new();
    // The same tablets and keys, different values; interleaved batches.
    for round in 0..6u32 {
        let ops_a: Vec<RowOp> = (0..8u32)
            .map(|i| {
                let key = format!("k{}", (round + i) % 10);
                if (round + i) % 5 == 0 {
                    del(1, key.as_bytes())
                } else {
                    put(1, key.as_bytes(), format!("a{round}").as_bytes())
                }
            })
            .collect();
        let ops_b: Vec<RowOp> = (0..8u32)
            .map(|i| {
                let key = format!("k{}", (round * 3 + i) % 10);
                put(1, key.as_bytes(), format!("b{round}").as_bytes())
            })
            .collect();
        fx.apply(a, &mut model_a, &ops_a);
        fx.apply(b, &mut model_b, &ops_b);
        if round == 3 {
            assert_eq!(fx.cluster().compact_rows(a).unwrap(), 4);
            assert_eq!(fx.cluster().row_stats(b).runs, 4);
        }
        check(fx.cluster(), a, &model_a, &format!("a round {round}"));
        check(fx.cluster(), b, &model_b, &format!("b round {round}"));
    }
    assert_ne!(model_a, model_b);
    assert!(model_a.values().all(|v| v.starts_with(b"a")));
    assert!(model_b.values().all(|v| v.starts_with(b"b")));
    fx.reopen();
    check(fx.cluster(), a, &model_a, "a after reopen");
    check(fx.cluster(), b, &model_b, "b after reopen");
    assert_eq!(fx.cluster().drop_rows(b).unwrap(), model_b.len() as u64);
    model_b.clear();
    check(fx.cluster(), a, &model_a, "a after b's drop");
    check(fx.cluster(), b, &model_b, "b dropped");
    assert_eq!(fx.cluster().compact_rows(a).unwrap(), 3);
    fx.reopen();
    check(fx.cluster(), a, &model_a, "a at the end");
    check(fx.cluster(), b, &model_b, "b at the end");
}
