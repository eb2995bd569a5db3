//! A cluster that can be closed and reopened from its files, the check of a tenant's
//! rows against the model, and the run files on disk.

use std::path::{Path, PathBuf};

use obrestore_backup::truth::digest_map;
use obrestore_restore::cluster::{ClusterResult, Row, RowOp};
use obrestore_restore::{ClusterError, SledCluster, TenantService};

use crate::common::fixtures::{open_default_cluster, pool_spec, restoring_tenant};
use crate::common::{apply_model, model_rows, Model};

/// Distinct `(tablet_id, key)` of a batch: the versions its run stores.
pub fn distinct_keys(ops: &[RowOp]) -> u64 {
    let mut keys = std::collections::BTreeSet::new();
    for op in ops {
        let (RowOp::Put { tablet_id, key, .. } | RowOp::Delete { tablet_id, key }) = op;
        keys.insert((*tablet_id, key.clone()));
    }
    keys.len() as u64
}

pub fn scan(cluster: &SledCluster, tenant_id: u64) -> ClusterResult<Vec<Row>> {
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
pub fn check(cluster: &SledCluster, tenant_id: u64, model: &Model, context: &str) {
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
    assert_eq!(digest, digest_map(model), "{context}: tenant_digest");
    assert_eq!(
        digest.rows,
        model.len() as u64,
        "{context}: digest row count"
    );
}

/// A cluster in a temporary directory that can be closed and reopened from its files.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    cluster: Option<SledCluster>,
    pools: usize,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let cluster = open_default_cluster(&dir.path().join("db")).unwrap();
        Fixture {
            dir,
            cluster: Some(cluster),
            pools: 0,
        }
    }

    pub fn cluster(&self) -> &SledCluster {
        self.cluster.as_ref().expect("the cluster is closed")
    }

    pub fn close(&mut self) {
        // Dropping the cluster drops its sled::Db; sled releases its lock soon after.
        self.cluster = None;
    }

    pub fn try_reopen(&mut self) -> ClusterResult<()> {
        self.close();
        self.cluster = Some(open_default_cluster(&self.dir.path().join("db"))?);
        Ok(())
    }

    pub fn reopen(&mut self) {
        self.try_reopen().unwrap();
    }

    /// `SledCluster::open(D/db)` keeps the rows in `D/db.rows`.
    pub fn rows_dir(&self) -> PathBuf {
        self.dir.path().join("db.rows")
    }

    pub fn tenant_dir(&self, tenant_id: u64) -> PathBuf {
        self.rows_dir().join(format!("t{tenant_id}"))
    }

    /// Creates a tenant on a new one-unit pool (zones take turns); returns its id.
    pub fn tenant(&mut self, name: &str) -> u64 {
        let zone = format!("z{}", self.pools % 3 + 1);
        let pool = format!("pool_{name}");
        self.pools += 1;
        let cluster = self.cluster();
        cluster
            .create_pools(&[pool_spec(&pool, "s1", &[&zone])], "rowstore-test")
            .unwrap();
        cluster
            .create_tenant(&restoring_tenant(name, &[&pool], &[&zone]), "rowstore-test")
            .unwrap()
            .id
    }

    pub fn apply(&self, tenant_id: u64, model: &mut Model, ops: &[RowOp]) {
        self.cluster().apply_rows(tenant_id, ops).unwrap();
        apply_model(model, ops);
    }
}

/// Names in a directory, sorted (empty when it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn run_files(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|name| name.ends_with(".run"))
        .collect()
}

/// `(lo, hi)` of a `<lo>-<hi>.run` name.
pub fn run_range(name: &str) -> (u64, u64) {
    let stem = name.strip_suffix(".run").unwrap();
    let (lo, hi) = stem.split_once('-').unwrap();
    (
        u64::from_str_radix(lo, 16).unwrap(),
        u64::from_str_radix(hi, 16).unwrap(),
    )
}

/// The error is a `RowFile` error about `file` (its path and its message name it).
#[track_caller]
pub fn assert_row_file_error(error: &ClusterError, file: &str, context: &str) {
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
