//! Rows: upsert, delete, count, digest and drop, per tenant. The digest is the one of
//! `docs/backup-format.md` §5: `tenant_digest`, `verify::restored_digest` and
//! `obrestore_backup::truth` agree on the same rows.

use obrestore_backup::truth::digest_map;
use obrestore_restore::cluster::{Row, RowOp};
use obrestore_restore::verify::{restored_digest, VerifyError};
use obrestore_restore::TenantService;

use crate::common::Model;

use crate::common::fixtures::{pool_spec as pool, put, restoring_tenant as new_tenant, row};
use crate::support::open;

#[test]
fn rows_upsert_delete_count_digest_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    cluster
        .create_pools(&[pool("p", "s1", &["z1"]), pool("q", "s1", &["z2"])], "d")
        .unwrap();
    let a = cluster
        .create_tenant(&new_tenant("a", &["p"], &["z1"]), "d")
        .unwrap()
        .id;
    let b = cluster
        .create_tenant(&new_tenant("b", &["q"], &["z2"]), "d")
        .unwrap()
        .id;

    let batch = [
        put(200001, "k2", "v2"),
        put(200001, "k1", "v1"),
        put(200002, "k1", "x"),
        put(200001, "k2", "v2-new"),
        RowOp::Delete {
            tablet_id: 200002,
            key: b"k1".to_vec(),
        },
        RowOp::Delete {
            tablet_id: 9,
            key: b"missing".to_vec(),
        },
        put(1, "", ""),
    ];
    cluster.apply_rows(a, &batch).unwrap();
    // Re-applying a batch is harmless.
    cluster.apply_rows(a, &batch).unwrap();
    cluster
        .apply_rows(b, &[put(200001, "k1", "other tenant")])
        .unwrap();

    let mut seen = Vec::new();
    cluster
        .for_each_row(a, &mut |tablet, key, value| {
            seen.push(Row {
                tablet_id: tablet,
                key: key.to_vec(),
                value: value.to_vec(),
            })
        })
        .unwrap();
    let expected = vec![
        row(1, "", ""),
        row(200001, "k1", "v1"),
        row(200001, "k2", "v2-new"),
    ];
    assert_eq!(seen, expected);
    assert_eq!(cluster.row_count(a).unwrap(), 3);
    let digest = cluster.tenant_digest(a).unwrap();
    assert_eq!(digest, digest_map(&model_of(expected.iter().rev())));
    assert_eq!(restored_digest(&cluster, "a").unwrap(), digest);
    assert_eq!(digest.rows, 3);
    // Pinned: the digest scheme is a documented format (docs/backup-format.md §5; this
    // value was computed from that text with Python's hashlib).
    assert_eq!(
        digest.sha256_hex,
        "d6dfab7645997d8ce3cc0fef17e14833e8dce8b585e27b3f67192cb25ddbb71b"
    );

    assert_eq!(cluster.drop_rows(a).unwrap(), 3);
    assert_eq!(cluster.row_count(a).unwrap(), 0);
    assert_eq!(cluster.row_count(b).unwrap(), 1);
    assert_eq!(
        cluster.tenant_digest(a).unwrap().sha256_hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(restored_digest(&cluster, "a").unwrap().rows, 0);
    assert!(matches!(
        restored_digest(&cluster, "missing"),
        Err(VerifyError::NoTenant(name)) if name == "missing"
    ));
}

/// Rows of several MiB, so that the digest hands many chunks from the scanning thread to
/// the hashing thread: the same digest as `truth` computes in one go.
#[test]
fn the_digest_of_many_chunks_equals_the_truth_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, _) = open(&dir);
    cluster
        .create_pools(&[pool("p", "s1", &["z1"])], "d")
        .unwrap();
    let t = cluster
        .create_tenant(&new_tenant("big", &["p"], &["z1"]), "d")
        .unwrap()
        .id;
    let ops: Vec<RowOp> = (0..6000u32)
        .map(|i| {
            let value = format!("value {i} ").repeat(1 + (i as usize % 300));
            put(u64::from(i % 5), format!("key-{i:05}"), value)
        })
        .collect();
    cluster.apply_rows(t, &ops).unwrap();
    let mut model = Model::new();
    crate::common::apply_model(&mut model, &ops);
    let bytes: usize = model.values().map(Vec::len).sum();
    assert!(bytes > 4 << 20, "only {bytes} bytes of values");

    let digest = cluster.tenant_digest(t).unwrap();
    assert_eq!(digest, digest_map(&model));
    assert_eq!(digest.rows, 6000);
    assert_eq!(restored_digest(&cluster, "big").unwrap(), digest);
}

/// The rows as a model (`(tablet_id, key) -> value`), in whatever order they come.
fn model_of<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Model {
    rows.into_iter()
        .map(|row| ((row.tablet_id, row.key.clone()), row.value.clone()))
        .collect()
}
