//! A store that commits at most so many writes at once (etcd's `--max-txn-ops`): the
//! engine never hands it a bigger batch, however many requests pile up behind a slow
//! commit, refuses at submit a DAG whose creation alone would be bigger, and fails (instead
//! of handing the store) a dynamic fan-out wider than one commit.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use obrestore_dag::store::{Batch, KvStore, Pairs, StoreError};
use obrestore_dag::{DagSpec, Engine, EngineConfig, MemStore, NodeSpec, State, SubmitError};
use serde_json::json;
use support::*;

/// A slow store with a write limit per commit, like etcd's; it refuses a bigger batch
/// as etcd would, and records the biggest it was handed.
struct Limited {
    inner: MemStore,
    limit: usize,
    largest: AtomicUsize,
    commits: AtomicUsize,
}

impl KvStore for Limited {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.inner.scan_prefix(prefix)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let writes = batch.writes.len();
        self.largest.fetch_max(writes, Ordering::SeqCst);
        self.commits.fetch_add(1, Ordering::SeqCst);
        // Slow, as a network round trip and a quorum fsync: requests pile up meanwhile.
        std::thread::sleep(Duration::from_millis(20));
        if writes > self.limit {
            return Err(StoreError::BatchTooLarge {
                writes,
                limit: self.limit,
            });
        }
        self.inner.commit(batch)
    }

    fn commit_blocks(&self) -> bool {
        true
    }

    fn max_batch_writes(&self) -> Option<usize> {
        Some(self.limit)
    }
}

/// An engine on a [`Limited`] store of 40 writes per commit.
async fn limited_engine(world: &Arc<World>) -> (Engine, Arc<Limited>) {
    let store = Arc::new(Limited {
        inner: MemStore::new(),
        limit: 40,
        largest: AtomicUsize::new(0),
        commits: AtomicUsize::new(0),
    });
    let engine = Engine::open(EngineConfig::default(), store.clone(), registry(world))
        .await
        .unwrap();
    (engine, store)
}

/// `plan` outputs `width` files; `copy` fans out over them (a dynamic fan-out).
fn dynamic_dag(name: &str, width: usize) -> DagSpec {
    let mut spec = DagSpec::new(name);
    let files: Vec<_> = (0..width)
        .map(|i| json!({ "name": format!("f{i}") }))
        .collect();
    let plan = spec.add_node(script_with("plan", json!({ "output": { "files": files } })));
    let copy = spec.add_node(NodeSpec::new("copy", "script").dynamic_sub_tasks("files"));
    spec.add_edge(plan, copy);
    spec
}

fn small_dag(i: usize) -> DagSpec {
    let mut spec = DagSpec::new(format!("small{i}"));
    spec.chain(
        None,
        vec![script(&format!("a{i}")), script(&format!("b{i}"))],
    );
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_stay_within_the_store_limit_when_requests_pile_up() {
    let world = Arc::new(World::default());
    let (engine, store) = limited_engine(&world).await;
    let submits: Vec<_> = (0..60)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.submit(small_dag(i)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for submit in submits {
        ids.push(submit.await.unwrap().expect("every submit fits"));
    }
    for id in ids {
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    }
    let largest = store.largest.load(Ordering::SeqCst);
    assert!(largest <= 40, "a commit of {largest} writes");
    // 60 DAGs of 2 nodes write far more than 40 records: it took many commits.
    assert!(store.commits.load(Ordering::SeqCst) > 60 * 2 * 3 / 40);
}

#[tokio::test]
async fn a_dag_too_big_for_one_commit_is_refused_at_submit_and_nothing_stops() {
    let world = Arc::new(World::default());
    let (engine, store) = limited_engine(&world).await;
    let mut huge = DagSpec::new("huge");
    huge.chain(
        None,
        (0..40)
            .map(|i| NodeSpec::new(format!("n{i}"), "noop"))
            .collect(),
    );
    let err = engine.submit(huge).await.unwrap_err();
    assert!(
        matches!(&err, SubmitError::Invalid(why) if why.contains("limit of 40 writes")),
        "{err}"
    );
    // As wide a fan-out: its node's start could not be one commit either.
    let mut wide = DagSpec::new("wide");
    wide.add_node(NodeSpec::new("fan", "noop").sub_tasks(vec![serde_json::Value::Null; 40]));
    let err = engine.submit(wide).await.unwrap_err();
    assert!(matches!(&err, SubmitError::Invalid(_)), "{err}");
    let id = engine.submit(small_dag(0)).await.unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    assert!(store.largest.load(Ordering::SeqCst) <= 40);
}

#[tokio::test]
async fn a_dynamic_fan_out_too_wide_for_one_commit_fails_its_node_and_nothing_stops() {
    let world = Arc::new(World::default());
    let (engine, store) = limited_engine(&world).await;
    // The width comes from a node's output at run time: submit cannot see it.
    let id = engine
        .submit(dynamic_dag("dynamic-wide", 100))
        .await
        .unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Failed);
    let copy = engine.dag_detail(id, true).unwrap().nodes.unwrap()[1].clone();
    let logs = &copy.sub_tasks.unwrap()[0].task_logs;
    assert!(
        logs.len() == 1
            && logs[0].starts_with("ERROR: dynamic sub-tasks: 100 items under input key 'files'")
            && logs[0].contains("limit of 40 writes"),
        "{logs:?}"
    );
    // Nothing stopped: the engine takes and runs the next DAG, every commit fitted.
    let id = engine.submit(small_dag(1)).await.unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    assert!(store.largest.load(Ordering::SeqCst) <= 40);
    // A fan-out that fits still runs.
    let id = engine
        .submit(dynamic_dag("dynamic-fits", 20))
        .await
        .unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
}
