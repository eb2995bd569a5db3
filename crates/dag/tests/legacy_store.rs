//! A store written before the binary format and the index of DAGs that have not
//! succeeded: every record JSON (format 1), no index. An engine opens it, builds the
//! index, reads its finished DAGs and finishes its unfinished ones.

mod support;

use std::sync::Arc;
use std::time::Duration;

use obrestore_dag::record::{keys, FORMAT_BINARY};
use obrestore_dag::store::{Batch, Pairs, StoreError, Stored};
use obrestore_dag::{DagSpec, KvStore, Operator, SledStore, State};
use serde_json::json;
use support::*;

/// Writes what the engine before format 2 wrote: records as JSON, and no index.
struct JsonStore(SledStore);

impl KvStore for JsonStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.0.scan_prefix(prefix)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut old = Batch::default();
        for (key, value) in batch.writes {
            if key.starts_with(keys::ACTIVE) || key == *keys::ACTIVE_INDEX_BUILT {
                continue;
            }
            match value {
                Some(Stored::Record(record)) => old.put(key, record.to_json()),
                Some(Stored::Bytes(bytes)) => old.put(key, bytes),
                None => old.delete(key),
            }
        }
        self.0.commit(old)
    }

    fn commit_blocks(&self) -> bool {
        true
    }
}

fn first_byte(store: &SledStore, key: &[u8]) -> u8 {
    store.get(key).unwrap().expect("record exists")[0]
}

/// Ids of the finished, the interrupted and the failed DAG, in a JSON store at `dir`.
async fn write_old_store(dir: &std::path::Path, world: &Arc<World>) -> (u64, u64, u64) {
    let store = Arc::new(JsonStore(SledStore::open(dir).unwrap()));
    let engine = open(store.clone(), world).await;
    let finished = engine.submit(chain(&["A", "B"])).await.unwrap();
    assert_eq!(
        engine.wait_settled(finished).await.unwrap().state,
        State::Succeed
    );
    world.fail("X", 1);
    let failed = engine.submit(chain(&["X"])).await.unwrap();
    assert_eq!(
        engine.wait_settled(failed).await.unwrap().state,
        State::Failed
    );
    let mut spec = DagSpec::new("interrupted");
    spec.chain(
        None,
        vec![script_with("S", json!({"sleep_ms": 200})), script("T")],
    );
    let interrupted = engine.submit(spec).await.unwrap();
    wait_until(&engine, interrupted, "S running", |detail| {
        detail.nodes.iter().flatten().any(|n| n.state == "RUNNING")
    })
    .await;
    // S finishes during the grace; T never starts.
    engine.shutdown(Duration::from_secs(10)).await;
    for dag in [finished, failed, interrupted] {
        assert_eq!(first_byte(&store.0, &keys::dag(dag)), b'{');
    }
    assert!(store.0.scan_prefix(keys::ACTIVE).unwrap().is_empty());
    (finished, interrupted, failed)
}

#[tokio::test]
async fn a_store_of_json_records_reopens_and_its_dags_finish() {
    let dir = tempfile::tempdir().unwrap();
    let world = Arc::new(World::default());
    let (finished, interrupted, failed) = write_old_store(dir.path(), &world).await;
    assert_eq!(world.executions_of("T"), 0);

    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = open(store.clone(), &world).await;
    // Open built the index: only the DAGs that have not succeeded are read.
    let active: Vec<u64> = engine
        .active_dags(None)
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(active, vec![failed, interrupted]);
    assert_eq!(store.scan_prefix(keys::ACTIVE).unwrap().len(), 2);
    // The finished DAG reads back whole, logs included.
    let detail = engine.dag_detail(finished, true).unwrap();
    assert_eq!(detail.state, "SUCCEED");
    let nodes = detail.nodes.unwrap();
    assert_eq!(nodes.len(), 2);
    let first_node = engine.dag_record(finished).unwrap().node_ids[0];
    let a = engine.records().node(first_node).unwrap().unwrap();
    let logs = engine.task_logs(a.task_ids[0]).unwrap();
    assert!(logs
        .iter()
        .any(|log| log.log_content.contains("executing A")));

    let dag = engine.wait_settled(interrupted).await.unwrap();
    assert_eq!(dag.state, State::Succeed);
    assert_eq!(
        world.executions_of("S"),
        1,
        "S had finished before the stop"
    );
    assert_eq!(world.executions_of("T"), 1);
    engine.operate(failed, Operator::Retry).await.unwrap();
    assert_eq!(
        engine.wait_settled(failed).await.unwrap().state,
        State::Succeed
    );
    assert!(engine.unfinished_dag_records(None).unwrap().is_empty());
    assert!(store.scan_prefix(keys::ACTIVE).unwrap().is_empty());
    // Untouched records stay JSON; rewritten ones are binary.
    assert_eq!(first_byte(&store, &keys::dag(finished)), b'{');
    assert_eq!(first_byte(&store, &keys::dag(interrupted)), FORMAT_BINARY);
    let next = engine.submit(chain(&["C"])).await.unwrap();
    assert_eq!(next, interrupted + 1, "the JSON counters were read");
    engine.wait_settled(next).await.unwrap();
    engine.shutdown(Duration::from_secs(5)).await;
    drop(engine);

    // A later open reads the index it built (and the mixed store) the same way.
    let engine = open(store, &world).await;
    assert!(engine.active_dags(None).unwrap().is_empty());
    assert_eq!(engine.dags(None).unwrap().len(), 4);
}
