//! The optimistic transaction against a real etcd (skipped when etcd is not
//! installed, as the harness does): a conflicting write re-runs the closure, a lost
//! fence fails at once and writes nothing, a preview writes nothing.

use std::cell::Cell;

use obrestore_etcd::testing::EtcdCluster;
use obrestore_etcd::{Compare, Etcd, Fence, Op};

use super::{check_cluster_name, EtcdRecords};
use crate::cluster::error::ClusterError;
use crate::cluster::sled_store::records::{decode_u64, Tree};

const COUNTER: &[u8] = b"counter";
const COUNTER_KEY: &[u8] = b"/obrestore/c1/cluster/meta/counter";
const FENCE_KEY: &[u8] = b"/obrestore/c1/maintainer";

fn counter(records: &EtcdRecords) -> Option<u64> {
    records
        .get(Tree::Meta, COUNTER)
        .unwrap()
        .map(|bytes| decode_u64(Tree::Meta, &bytes).unwrap())
}

/// Creates the fence key and returns the fence on it.
fn claim(etcd: &Etcd) -> Fence {
    let claimed = etcd
        .txn(
            vec![Compare::Absent(FENCE_KEY.to_vec())],
            vec![Op::Put(FENCE_KEY.to_vec(), b"agent-1".to_vec())],
        )
        .unwrap();
    assert!(claimed);
    let kv = etcd.get(FENCE_KEY).unwrap().unwrap();
    Fence::new(FENCE_KEY.to_vec(), kv.create_revision)
}

/// Adds one to the counter; on the first attempt another writer sets it to 10
/// between the read and the commit. Returns what the transaction read.
fn increment_with_interference(records: &EtcdRecords, etcd: &Etcd, attempts: &Cell<u32>) -> u64 {
    records
        .transact(|tx| {
            attempts.set(attempts.get() + 1);
            let read = match tx.get(Tree::Meta, COUNTER)? {
                Some(bytes) => decode_u64(Tree::Meta, &bytes).unwrap(),
                None => 0,
            };
            if attempts.get() == 1 {
                let other = Op::Put(COUNTER_KEY.to_vec(), 10u64.to_be_bytes().to_vec());
                assert!(etcd.txn(Vec::new(), vec![other]).unwrap());
            }
            tx.put(Tree::Meta, COUNTER, (read + 1).to_be_bytes().to_vec());
            Ok(read)
        })
        .unwrap()
}

#[test]
fn a_conflicting_write_reruns_the_closure_on_fresh_reads() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let records = EtcdRecords::new(etcd.clone(), "c1", None).unwrap();
    let attempts = Cell::new(0);
    // The first attempt read "absent": the other writer's put makes its compare fail.
    assert_eq!(increment_with_interference(&records, &etcd, &attempts), 10);
    assert_eq!(attempts.get(), 2);
    assert_eq!(counter(&records), Some(11));
    // The same with a key that existed at the first read (a mod-revision compare).
    attempts.set(0);
    assert_eq!(increment_with_interference(&records, &etcd, &attempts), 10);
    assert_eq!(attempts.get(), 2);
    assert_eq!(counter(&records), Some(11));
}

#[test]
fn a_lost_fence_fails_at_once_and_writes_nothing() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let fence = claim(&etcd);
    let records = EtcdRecords::new(etcd.clone(), "c1", Some(fence)).unwrap();
    let increment = |attempts: &Cell<u32>| {
        records.transact(|tx| {
            attempts.set(attempts.get() + 1);
            tx.put(Tree::Meta, COUNTER, 1u64.to_be_bytes().to_vec());
            Ok(())
        })
    };
    let attempts = Cell::new(0);
    increment(&attempts).unwrap();
    assert_eq!((attempts.get(), counter(&records)), (1, Some(1)));
    records.check_fence().unwrap();

    // The lease ends: the key is deleted.
    assert!(etcd
        .txn(Vec::new(), vec![Op::Delete(FENCE_KEY.to_vec())])
        .unwrap());
    etcd.txn(Vec::new(), vec![Op::Delete(COUNTER_KEY.to_vec())])
        .unwrap();
    let attempts = Cell::new(0);
    assert!(matches!(increment(&attempts), Err(ClusterError::FenceLost)));
    assert_eq!((attempts.get(), counter(&records)), (1, None));
    assert!(matches!(
        records.check_fence(),
        Err(ClusterError::FenceLost)
    ));

    // Another agent claims the same key: a new create revision, still not ours.
    claim(&etcd);
    let attempts = Cell::new(0);
    assert!(matches!(increment(&attempts), Err(ClusterError::FenceLost)));
    assert_eq!((attempts.get(), counter(&records)), (1, None));
}

#[test]
fn a_preview_validates_its_reads_and_writes_nothing() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let records = EtcdRecords::new(etcd.clone(), "c1", None).unwrap();
    let attempts = Cell::new(0);
    let previewed = records
        .preview(|tx| {
            attempts.set(attempts.get() + 1);
            let before = tx.get(Tree::Meta, COUNTER)?;
            tx.put(Tree::Meta, COUNTER, 7u64.to_be_bytes().to_vec());
            // A transaction reads its own writes.
            let after = tx.get(Tree::Meta, COUNTER)?;
            tx.remove(Tree::Meta, b"other");
            if attempts.get() == 1 {
                let other = Op::Put(COUNTER_KEY.to_vec(), 3u64.to_be_bytes().to_vec());
                assert!(etcd.txn(Vec::new(), vec![other]).unwrap());
            }
            Ok((before, after, tx.get(Tree::Meta, b"other")?))
        })
        .unwrap();
    // The first attempt's read of "absent" was stale: the preview ran again.
    assert_eq!(attempts.get(), 2);
    assert_eq!(
        previewed,
        (
            Some(3u64.to_be_bytes().to_vec()),
            Some(7u64.to_be_bytes().to_vec()),
            None
        )
    );
    assert_eq!(counter(&records), Some(3));
}

#[test]
fn keys_and_scans_stay_inside_their_cluster_and_tree() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let c1 = EtcdRecords::new(etcd.clone(), "c1", None).unwrap();
    let c2 = EtcdRecords::new(etcd.clone(), "c2", None).unwrap();
    c1.transact(|tx| {
        tx.put(Tree::RestoreJobs, &2u64.to_be_bytes(), b"job 2".to_vec());
        tx.put(Tree::RestoreJobs, &1u64.to_be_bytes(), b"job 1".to_vec());
        tx.put(Tree::ActiveRestoreJobs, b"t", 1u64.to_be_bytes().to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(
        c1.scan(Tree::RestoreJobs).unwrap(),
        [
            (1u64.to_be_bytes().to_vec(), b"job 1".to_vec()),
            (2u64.to_be_bytes().to_vec(), b"job 2".to_vec()),
        ]
    );
    assert!(c2.scan(Tree::RestoreJobs).unwrap().is_empty());
    assert!(etcd
        .get(b"/obrestore/c1/cluster/restore_active/t")
        .unwrap()
        .is_some());
}

#[test]
fn cluster_names_that_would_break_the_key_layout_are_refused() {
    for good in ["c1", "prod.eu-1", "A_b"] {
        assert!(check_cluster_name(good).is_ok(), "{good}");
    }
    let long = "x".repeat(129);
    for bad in ["", "a/b", "a b", "é", "a\n", long.as_str()] {
        let err = check_cluster_name(bad).unwrap_err();
        assert!(err.to_string().contains("is invalid"), "{bad}: {err}");
    }
}

#[test]
fn a_reader_reads_what_a_writer_committed_and_writes_nothing() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let writer = EtcdRecords::new(etcd.clone(), "c1", None).unwrap();
    let reader = EtcdRecords::reader(etcd.clone(), "c1").unwrap();
    assert_eq!(counter(&reader), None);
    let attempts = Cell::new(0);
    increment_with_interference(&writer, &etcd, &attempts);
    // Read at the time of the call: the writer's commit is there at once.
    assert_eq!(counter(&reader), Some(11));
    let revision = etcd.revision().unwrap();
    let written = reader.transact(|tx| {
        tx.put(Tree::Meta, COUNTER, 99u64.to_be_bytes().to_vec());
        Ok(())
    });
    assert!(
        matches!(written, Err(ClusterError::ReadOnly)),
        "{written:?}"
    );
    assert!(matches!(reader.check_fence(), Err(ClusterError::ReadOnly)));
    // A transaction that only reads still answers.
    let read = reader.transact(|tx| Ok(tx.get(Tree::Meta, COUNTER)?.is_some()));
    assert!(read.unwrap());
    assert_eq!(etcd.revision().unwrap(), revision, "the reader wrote");
    assert_eq!(counter(&writer), Some(11));
}
