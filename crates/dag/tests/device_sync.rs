//! Device syncs per commit, counted through `CommitLog::syncs` (the sled store's
//! commit log: one record `fdatasync`ed per commit) and `DeviceSync::syncs` (sled's
//! flush made durable: the log's checkpoints, and every commit of other users of the
//! database): every durable commit of the sled store reaches the device before it
//! returns, and the engine's committer pays one device sync per group of batches, not
//! one per record or per transition. (What an `fdatasync` is, and what the strace of a
//! whole restore shows, is in `docs/engine-store.md`.)

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use obrestore_dag::store::{Batch, DeviceSync, Pairs};
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Event, KvStore, NodeSpec, SledStore, State, StoreError, Subject,
};
use serde_json::json;
use support::{registry, World};

/// Puts `count` keys `prefix/<n>` of `value_len` bytes each in one batch.
fn batch(prefix: &str, count: usize, value_len: usize) -> Batch {
    let mut batch = Batch::default();
    for n in 0..count {
        batch.put(
            format!("{prefix}/{n:04}").into_bytes(),
            vec![b'v'; value_len],
        );
    }
    batch
}

#[test]
fn every_inline_commit_is_one_log_sync_and_no_sled_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let device = DeviceSync::of(store.db()).unwrap();
    let log = store.commit_log();
    // (records per commit, commits): the count does not depend on the batch's size.
    for (records, commits) in [(1, 10), (8, 5), (200, 3)] {
        let (before, flushes) = (log.syncs(), device.syncs());
        for commit in 0..commits {
            store
                .commit(batch(&format!("r{records}c{commit}"), records, 600))
                .unwrap();
        }
        assert_eq!(
            log.syncs() - before,
            commits as u64,
            "{commits} commits of {records} records"
        );
        assert_eq!(device.syncs(), flushes, "no checkpoint in an 8 MiB log");
    }
}

#[test]
fn one_database_has_one_device_sync_and_a_new_database_another() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path().join("a")).unwrap();
    let shared = SledStore::from_db(store.db()).unwrap();
    let other = SledStore::open(dir.path().join("b")).unwrap();
    let device = DeviceSync::of(store.db()).unwrap();
    assert!(Arc::ptr_eq(&device, &DeviceSync::of(shared.db()).unwrap()));
    assert!(!Arc::ptr_eq(&device, &DeviceSync::of(other.db()).unwrap()));
    // One commit log per database too.
    assert!(std::ptr::eq(store.commit_log(), shared.commit_log()));
    assert!(!std::ptr::eq(store.commit_log(), other.commit_log()));
    let before = store.commit_log().syncs();
    shared.commit(batch("shared", 1, 10)).unwrap();
    other.commit(batch("other", 1, 10)).unwrap();
    assert_eq!(
        store.commit_log().syncs() - before,
        1,
        "only the commit to this database"
    );
    // A flush of the database (another user's commit) makes the engine's tree durable
    // too, and costs this database one device sync.
    let before = device.syncs();
    device.flush(store.db()).unwrap();
    assert_eq!(device.syncs() - before, 1);
}

#[test]
fn concurrent_flushes_share_device_syncs_and_concurrent_commits_all_survive_a_reopen() {
    const THREADS: usize = 4;
    const COMMITS: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let device = DeviceSync::of(store.db()).unwrap();
        let (syncs, requests) = (device.syncs(), device.requests());
        let log_syncs = store.commit_log().syncs();
        let threads: Vec<_> = (0..THREADS)
            .map(|thread| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || {
                    for commit in 0..COMMITS {
                        store
                            .commit(batch(&format!("t{thread}/{commit:02}"), 1, 100))
                            .unwrap();
                        // What the cluster does in the same database: a sled flush.
                        DeviceSync::of(store.db())
                            .unwrap()
                            .flush(store.db())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let syncs = device.syncs() - syncs;
        let commits = (THREADS * COMMITS) as u64;
        assert_eq!(device.requests() - requests, commits);
        assert!(
            (1..=commits).contains(&syncs),
            "{syncs} device syncs for {commits} concurrent flushes"
        );
        // The engine's commits are serial: one log sync each.
        assert_eq!(store.commit_log().syncs() - log_syncs, commits);
    }
    let store = SledStore::open(dir.path()).unwrap();
    for thread in 0..THREADS {
        let found = store.scan_prefix(format!("t{thread}/").as_bytes()).unwrap();
        assert_eq!(found.len(), COMMITS, "thread {thread}");
    }
}

#[test]
fn a_value_sled_keeps_in_a_blob_file_is_committed_and_read_back() {
    // sled keeps a page over a quarter of a 512 KiB segment in `blobs/<lsn>`, written
    // without a sync of its own; the device sync syncs it and the blobs directory. The
    // value goes through the log, is applied to the tree, then sled writes the blob at a
    // flush: here the cluster's (any flush of the database).
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'b'; 300 << 10];
    {
        let store = SledStore::open(dir.path()).unwrap();
        let mut batch = Batch::default();
        batch.put(b"big".to_vec(), big.clone());
        store.commit(batch).unwrap();
        // The commit returned once its record was synced in the log; sled has the value
        // once the applier has applied it.
        store.commit_log().apply_pending().unwrap();
        DeviceSync::of(store.db())
            .unwrap()
            .flush(store.db())
            .unwrap();
        let blobs = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blobs >= 1, "sled wrote no blob file");
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.get(b"big").unwrap(), Some(big));
}

/// The sled store, counting the commits the engine makes.
struct Counting {
    inner: SledStore,
    commits: AtomicU64,
}

/// A durable store in `dir` that counts engine commits, and its device's sync counter.
fn counted_sled(dir: &std::path::Path) -> (Arc<Counting>, Arc<DeviceSync>) {
    let sled = SledStore::open(dir).unwrap();
    let device = DeviceSync::of(sled.db()).unwrap();
    let store = Arc::new(Counting {
        inner: sled,
        commits: AtomicU64::new(0),
    });
    (store, device)
}

impl Counting {
    /// Device syncs for the engine's commits: log records, and sled flushes
    /// (checkpoints).
    fn syncs(&self, device: &DeviceSync) -> u64 {
        self.inner.commit_log().syncs() + device.syncs()
    }
}

impl KvStore for Counting {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.inner.scan_prefix(prefix)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        self.inner.commit(batch)
    }

    fn commit_blocks(&self) -> bool {
        self.inner.commit_blocks()
    }
}

/// A DAG of one node with `width` no-op sub-tasks.
fn fan_out(name: &str, width: usize) -> DagSpec {
    let mut spec = DagSpec::new(name);
    let params = (0..width).map(|n| json!({ "n": n })).collect();
    spec.chain(None, vec![NodeSpec::new(name, "noop").sub_tasks(params)]);
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipelined_committer_pays_one_device_sync_per_group_of_transitions() {
    const DAGS: usize = 4;
    const WIDTH: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let (store, device) = counted_sled(dir.path());
    let world = Arc::new(World::default());
    let config = EngineConfig {
        event_capacity: 1 << 14,
        ..EngineConfig::default()
    };
    let engine = Engine::open(config, store.clone(), registry(&world))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let (syncs, commits) = (store.syncs(&device), store.commits.load(Ordering::SeqCst));
    // A burst: every DAG is submitted at once.
    let submits: Vec<_> = (0..DAGS)
        .map(|n| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.submit(fan_out(&format!("burst{n}"), WIDTH)).await })
        })
        .collect();
    for submit in submits {
        submit.await.unwrap().unwrap();
    }
    let (mut transitions, mut settled) = (0u64, 0);
    while settled < DAGS {
        let event: Event = events.recv().await.unwrap();
        transitions += 1;
        if event.subject == Subject::Dag && event.state == State::Succeed {
            settled += 1;
        }
    }
    let syncs = store.syncs(&device) - syncs;
    let commits = store.commits.load(Ordering::SeqCst) - commits;
    eprintln!("{transitions} transitions, {commits} engine commits, {syncs} device syncs");
    assert_eq!(syncs, commits, "one device sync per engine commit");
    assert!(syncs >= 1);
    assert!(
        syncs < transitions,
        "{syncs} device syncs for {transitions} transitions: no group commit"
    );
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}

/// A chain of `length` nodes of one no-op sub-task each.
fn noop_chain(length: usize) -> DagSpec {
    let mut spec = DagSpec::new("chain");
    let nodes = (0..length)
        .map(|n| NodeSpec::new(format!("step {n}"), "noop").sub_tasks(vec![json!({ "n": n })]))
        .collect();
    spec.chain(None, nodes);
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_chain_pays_one_log_sync_per_stage_and_no_sled_flush() {
    const STAGES: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let (store, device) = counted_sled(dir.path());
    let world = Arc::new(World::default());
    let engine = Engine::open(EngineConfig::default(), store.clone(), registry(&world))
        .await
        .unwrap();
    let (log_syncs, flushes) = (store.inner.commit_log().syncs(), device.syncs());
    let commits = store.commits.load(Ordering::SeqCst);
    let dag_id = engine.submit(noop_chain(STAGES as usize)).await.unwrap();
    let dag = engine.wait_settled(dag_id).await.unwrap();
    assert_eq!(dag.state, State::Succeed);
    let log_syncs = store.inner.commit_log().syncs() - log_syncs;
    let commits = store.commits.load(Ordering::SeqCst) - commits;
    // The submit's batch starts the first stage; every later batch finishes stage N and
    // starts stage N+1 (its sub-task's SUCCEED, the node's SUCCEED, the next node's and
    // its sub-task's RUNNING), and the last one finishes the DAG. Nothing else commits.
    assert_eq!(commits, STAGES + 1, "engine commits for {STAGES} stages");
    assert_eq!(log_syncs, commits, "one log sync per engine commit");
    assert_eq!(device.syncs(), flushes, "and no sled flush");
    engine.shutdown(std::time::Duration::from_secs(5)).await;
}
