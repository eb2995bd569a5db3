//! EtcdStore against a real etcd: the KvStore contract (atomic commit, get, scan, big
//! batches), fencing (a deposed maintainer writes nothing), the batch limit, and an
//! Engine running DAGs on it.

mod support;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use obrestore_dag::store::{Batch, KvStore, Records, StoreError};
use obrestore_dag::{Engine, EngineConfig, State, SubmitError};
use obrestore_etcd::testing::EtcdCluster;
use obrestore_etcd::{Election, Etcd, EtcdStore};

fn maintainer(etcd: &Etcd, cluster: &str) -> (obrestore_etcd::Leadership, EtcdStore) {
    let election = Election::new(etcd.clone(), cluster, "agent-a:2886").unwrap();
    let leadership = election.campaign().unwrap().expect("no other candidate");
    let store = EtcdStore::new(etcd.clone(), cluster, leadership.fence()).unwrap();
    (leadership, store)
}

fn batch(writes: &[(&str, Option<&str>)]) -> Batch {
    let mut batch = Batch::default();
    for (key, value) in writes {
        match value {
            Some(value) => batch.put(key.as_bytes().to_vec(), value.as_bytes().to_vec()),
            None => batch.delete(key.as_bytes().to_vec()),
        }
    }
    batch
}

#[test]
fn commit_get_and_scan_under_the_cluster_prefix() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let (_leadership, store) = maintainer(&etcd, "c1");
    let (_other_leadership, other) = maintainer(&etcd, "c2");
    store
        .commit(batch(&[
            ("dag/1", Some("a")),
            ("dag/2", Some("b")),
            ("node/1", Some("n")),
        ]))
        .unwrap();
    other
        .commit(batch(&[("dag/9", Some("other cluster"))]))
        .unwrap();
    store
        .commit(batch(&[("dag/2", None), ("dag/3", Some("c"))]))
        .unwrap();

    assert_eq!(store.get(b"dag/1").unwrap(), Some(b"a".to_vec()));
    assert_eq!(store.get(b"dag/2").unwrap(), None);
    let keys: Vec<Vec<u8>> = store
        .scan_prefix(b"dag/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec![b"dag/1".to_vec(), b"dag/3".to_vec()]);
    // The records live under the cluster's prefix, nowhere else.
    assert!(etcd.get(b"/obrestore/c1/dag/node/1").unwrap().is_some());
    assert_eq!(other.scan_prefix(b"").unwrap().len(), 1);
}

#[test]
fn a_big_batch_commits_whole_and_one_over_the_limit_writes_nothing() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let (_leadership, store) = maintainer(&etcd, "big");
    let value = "v".repeat(200);
    let keys: Vec<String> = (0..5000).map(|i| format!("task/{i:06}")).collect();
    let writes: Vec<(&str, Option<&str>)> = keys
        .iter()
        .map(|k| (k.as_str(), Some(value.as_str())))
        .collect();
    store.commit(batch(&writes)).unwrap();
    assert_eq!(store.scan_prefix(b"task/").unwrap().len(), 5000);

    let small = store
        .clone()
        .with_limits(4, obrestore_etcd::store::SETUP_MAX_REQUEST_BYTES);
    assert_eq!(small.max_batch_writes(), Some(4));
    let before = etcd.revision().unwrap();
    let err = small
        .commit(batch(&[
            ("x/1", Some("1")),
            ("x/2", Some("2")),
            ("x/3", Some("3")),
            ("x/4", Some("4")),
            ("x/5", Some("5")),
        ]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BatchTooLarge {
                writes: 5,
                limit: 4
            }
        ),
        "{err}"
    );
    let tiny_bytes = store.clone().with_limits(1000, 70_000);
    let err = tiny_bytes.commit(batch(&writes[..500])).unwrap_err();
    assert!(err.to_string().contains("--max-request-bytes"), "{err}");
    assert_eq!(
        etcd.revision().unwrap(),
        before,
        "a refused batch wrote something"
    );
}

#[test]
fn a_deposed_maintainer_writes_nothing() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let (leadership, store) = maintainer(&etcd, "fence");
    store.commit(batch(&[("dag/1", Some("mine"))])).unwrap();

    // The lease goes (as when it expires): the key is deleted, the fence fails.
    leadership.resign().unwrap();
    let before = etcd.revision().unwrap();
    let err = store
        .commit(batch(&[("dag/1", Some("stale")), ("dag/2", Some("stale"))]))
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
    assert!(
        err.to_string().contains("/obrestore/fence/maintainer"),
        "{err}"
    );
    assert_eq!(
        etcd.revision().unwrap(),
        before,
        "a fenced commit wrote something"
    );

    // Another maintainer is elected: the old claim stays dead, the new one writes.
    let (_new, new_store) = maintainer(&etcd, "fence");
    let err = store
        .commit(batch(&[("dag/1", Some("stale"))]))
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err}");
    new_store.commit(batch(&[("dag/3", Some("new"))])).unwrap();
    assert_eq!(new_store.get(b"dag/1").unwrap(), Some(b"mine".to_vec()));
    assert_eq!(new_store.get(b"dag/2").unwrap(), None);

    // A reader never writes.
    let reader = EtcdStore::read_only(etcd.clone(), "fence").unwrap();
    assert!(matches!(
        reader.commit(batch(&[("dag/4", Some("r"))])),
        Err(StoreError::Fenced(_))
    ));
    assert_eq!(reader.get(b"dag/3").unwrap(), Some(b"new".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_on_the_etcd_store_runs_dags_and_a_reader_sees_them() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let (_leadership, store) = maintainer(&etcd, "engine");
    let executions = Arc::new(AtomicUsize::new(0));
    let engine = Engine::open(
        EngineConfig::default(),
        Arc::new(store),
        support::registry(&executions),
    )
    .await
    .unwrap();
    let chain = engine.submit(support::dag("chain", 3, 0, 0)).await.unwrap();
    let fan = engine.submit(support::dag("fan", 1, 20, 0)).await.unwrap();
    for id in [chain, fan] {
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    }
    assert_eq!(
        executions.load(std::sync::atomic::Ordering::SeqCst),
        3 + 1 + 20
    );
    engine.shutdown(std::time::Duration::from_secs(5)).await;

    let reader: Arc<dyn KvStore> = Arc::new(EtcdStore::read_only(etcd, "engine").unwrap());
    let records = Records::new(reader);
    let dag = tokio::task::spawn_blocking(move || records.dag(fan))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dag.expect("durable").state, State::Succeed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committer_keeps_groups_within_the_limit_and_submit_refuses_a_dag_over_it() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let (_leadership, store) = maintainer(&etcd, "limit");
    let limit = 40;
    let store = store.with_limits(limit, obrestore_etcd::store::SETUP_MAX_REQUEST_BYTES);
    let executions = Arc::new(AtomicUsize::new(0));
    let engine = Engine::open(
        EngineConfig::default(),
        Arc::new(store),
        support::registry(&executions),
    )
    .await
    .unwrap();

    let err = engine
        .submit(support::dag("huge", limit, 0, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SubmitError::Invalid(why) if why.contains("limit of 40")),
        "{err}"
    );

    // Many small DAGs at once stay within the limit end to end on etcd (the check that
    // fails without the engine's limit, with a slow store, is
    // crates/dag/tests/batch_limit.rs).
    let submits = (0..24).map(|i| {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .submit(support::dag(&format!("small{i}"), 2, 2, 0))
                .await
        })
    });
    let ids: Vec<u64> = futures_ids(submits).await;
    for id in ids {
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
    }
}

async fn futures_ids(
    handles: impl Iterator<Item = tokio::task::JoinHandle<Result<u64, SubmitError>>>,
) -> Vec<u64> {
    let mut ids = Vec::new();
    for handle in handles {
        ids.push(handle.await.unwrap().expect("submit within the limit"));
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_whose_maintainer_was_deposed_stops_at_its_first_commit() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let (leadership, store) = maintainer(&etcd, "deposed");
    let executions = Arc::new(AtomicUsize::new(0));
    let engine = Engine::open(
        EngineConfig::default(),
        Arc::new(store),
        support::registry(&executions),
    )
    .await
    .unwrap();
    let id = engine
        .submit(support::dag("before", 1, 0, 0))
        .await
        .unwrap();
    assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);

    tokio::task::spawn_blocking(move || leadership.resign().unwrap())
        .await
        .unwrap();
    let revision = etcd.revision().unwrap();
    let err = engine
        .submit(support::dag("after", 1, 0, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SubmitError::Store(StoreError::Poisoned(why)) if why.contains("fenced")),
        "{err}"
    );
    // Poisoned: every later request gets the same error, and nothing was written.
    let again = engine
        .submit(support::dag("later", 1, 0, 0))
        .await
        .unwrap_err();
    assert!(again.to_string().contains("fenced"), "{again}");
    assert_eq!(etcd.revision().unwrap(), revision);
    assert_eq!(executions.load(std::sync::atomic::Ordering::SeqCst), 1);
}
