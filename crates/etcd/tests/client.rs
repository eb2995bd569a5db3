//! The synchronous client against a real etcd: reads, paged scans, transactions and
//! their compares, use from inside a tokio runtime, and errors that name no value.

use obrestore_etcd::testing::EtcdCluster;
use obrestore_etcd::{Compare, Etcd, EtcdError, Fence, Op};

fn put(key: &str, value: &str) -> Op {
    Op::Put(key.as_bytes().to_vec(), value.as_bytes().to_vec())
}

#[test]
fn get_scan_and_txn_round_trip() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    assert_eq!(etcd.get(b"/t/a").unwrap(), None);

    assert!(etcd
        .txn(
            vec![Compare::Absent(b"/t/a".to_vec())],
            vec![put("/t/a", "1"), put("/t/b", "2")]
        )
        .unwrap());
    let a = etcd.get(b"/t/a").unwrap().expect("written");
    assert_eq!(a.value, b"1");
    assert_eq!(a.create_revision, a.mod_revision);
    // The same compare no longer holds: nothing applies.
    assert!(!etcd
        .txn(
            vec![Compare::Absent(b"/t/a".to_vec())],
            vec![put("/t/c", "3")]
        )
        .unwrap());
    assert_eq!(etcd.get(b"/t/c").unwrap(), None);

    // ModRevision holds for the current revision only.
    assert!(etcd
        .txn(
            vec![Compare::ModRevision(b"/t/a".to_vec(), a.mod_revision)],
            vec![put("/t/a", "x")]
        )
        .unwrap());
    assert!(!etcd
        .txn(
            vec![Compare::ModRevision(b"/t/a".to_vec(), a.mod_revision)],
            vec![put("/t/a", "y")]
        )
        .unwrap());
    assert_eq!(etcd.get(b"/t/a").unwrap().unwrap().value, b"x");

    // CreateRevision (the fence) survives updates, not a delete and re-create.
    let fence = Fence::new(b"/t/a".to_vec(), a.create_revision);
    assert!(etcd
        .txn(vec![fence.compare()], vec![put("/t/d", "4")])
        .unwrap());
    assert!(etcd
        .txn(vec![], vec![Op::Delete(b"/t/a".to_vec())])
        .unwrap());
    assert!(etcd.txn(vec![], vec![put("/t/a", "again")]).unwrap());
    assert!(!etcd
        .txn(vec![fence.compare()], vec![put("/t/e", "5")])
        .unwrap());
    assert_eq!(etcd.get(b"/t/e").unwrap(), None);

    let keys: Vec<Vec<u8>> = etcd
        .scan_prefix(b"/t/")
        .unwrap()
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(
        keys,
        vec![b"/t/a".to_vec(), b"/t/b".to_vec(), b"/t/d".to_vec()]
    );
}

#[test]
fn scan_pages_through_more_keys_than_one_page_in_key_order() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let total = 1300;
    for chunk in (0..total).collect::<Vec<_>>().chunks(500) {
        let ops = chunk
            .iter()
            .map(|i| put(&format!("/p/{i:05}"), &i.to_string()))
            .collect();
        assert!(etcd.txn(vec![], ops).unwrap());
    }
    // Neighbours outside the prefix stay out.
    assert!(etcd
        .txn(
            vec![],
            vec![put("/p", "no"), put("/p0", "no"), put("/o/x", "no")]
        )
        .unwrap());
    let scanned = etcd.scan_prefix(b"/p/").unwrap();
    assert_eq!(scanned.len(), total);
    for (i, kv) in scanned.iter().enumerate() {
        assert_eq!(kv.key, format!("/p/{i:05}").into_bytes());
        assert_eq!(kv.value, i.to_string().into_bytes());
    }
}

#[test]
fn usable_from_inside_a_tokio_runtime() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = cluster.client();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let read = runtime.block_on(async move {
        etcd.txn(vec![], vec![put("/rt/k", "v")]).unwrap();
        etcd.get(b"/rt/k").unwrap()
    });
    assert_eq!(read.unwrap().value, b"v");
}

#[test]
fn errors_name_endpoint_and_key_never_the_value() {
    let Some(mut cluster) = EtcdCluster::start(1) else {
        return;
    };
    let etcd = Etcd::connect(&cluster.endpoints()).unwrap();
    // A transaction over etcd's limit is refused whole.
    let ops = (0..obrestore_etcd::store::SETUP_MAX_TXN_OPS + 1)
        .map(|i| put(&format!("/big/{i}"), "secret-value"))
        .collect();
    let err = etcd.txn(vec![], ops).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&cluster.endpoint(0)) && text.contains("/big/0"),
        "{text}"
    );
    assert!(!text.contains("secret-value"), "{text}");
    assert!(etcd.scan_prefix(b"/big/").unwrap().is_empty());

    cluster.kill(0);
    let err = etcd.get(b"/gone").unwrap_err();
    assert!(
        matches!(err, EtcdError::Request { .. } | EtcdError::Timeout { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("/gone"), "{err}");
}

#[test]
fn a_client_of_three_members_reads_and_writes() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let etcd = cluster.client();
    for i in 0..20 {
        let t = std::time::Instant::now();
        assert!(etcd
            .txn(vec![], vec![put(&format!("/three/{i}"), "v")])
            .unwrap());
        eprintln!("txn {i}: {:?}", t.elapsed());
    }
    assert_eq!(etcd.scan_prefix(b"/three/").unwrap().len(), 20);
}
