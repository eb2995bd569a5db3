//! Maintainer election against a real etcd: one maintainer at a time, `leader()`,
//! resign, the lost flag when the lease is revoked, takeover after the lease expires.

use std::time::{Duration, Instant};

use obrestore_etcd::testing::EtcdCluster;
use obrestore_etcd::Election;

/// Generous bound for things that take about a TTL: a failure, not a measurement.
const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn one_maintainer_at_a_time_and_resign_hands_over() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let a = Election::new(cluster.client(), "c", "10.0.0.1:2886").unwrap();
    let b = Election::new(cluster.client(), "c", "10.0.0.2:2886").unwrap();
    assert_eq!(a.leader().unwrap(), None);

    let held = a.campaign().unwrap().expect("first candidate wins");
    assert!(held.is_held());
    assert!(b.campaign().unwrap().is_none(), "two maintainers at once");
    assert_eq!(b.leader().unwrap().as_deref(), Some("10.0.0.1:2886"));

    let first_fence = held.fence();
    held.resign().unwrap();
    assert_eq!(a.leader().unwrap(), None);
    let taken = b.campaign().unwrap().expect("free after resign");
    assert_eq!(a.leader().unwrap().as_deref(), Some("10.0.0.2:2886"));
    assert!(taken.fence().create_revision() > first_fence.create_revision());
    // Other clusters are independent.
    let other = Election::new(cluster.client(), "d", "10.0.0.1:2886").unwrap();
    assert!(other.campaign().unwrap().is_some());
}

#[test]
fn the_lost_flag_flips_when_the_lease_is_revoked() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let a = Election::new(cluster.client(), "c", "a").unwrap();
    let held = a.campaign().unwrap().unwrap();
    let lost = held.lost();
    // Someone else ends the lease (an operator, or etcd after the TTL).
    let revoked = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &cluster.endpoint(0), "lease", "revoke"])
        .arg(format!("{:x}", held.lease()))
        .output()
        .expect("run etcdctl");
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let since = Instant::now();
    while !*lost.borrow() {
        assert!(since.elapsed() < PATIENCE, "the lost flag never flipped");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!held.is_held());
    assert_eq!(a.leader().unwrap(), None);
}

#[test]
fn another_candidate_takes_over_once_the_holders_lease_expires() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let a = Election::new(cluster.client(), "c", "a")
        .unwrap()
        .with_ttl(Duration::from_secs(2));
    let b = Election::new(cluster.client(), "c", "b").unwrap();
    let held = a.campaign().unwrap().unwrap();
    // Kept alive past several TTLs, the claim stays.
    std::thread::sleep(Duration::from_secs(5));
    assert!(held.is_held());
    assert!(b.campaign().unwrap().is_none());

    // The holder stops renewing (as a dead process would): etcd ends the lease.
    drop(held);
    let taken = b
        .campaign_until(Duration::from_millis(100), PATIENCE)
        .unwrap()
        .expect("b takes over after the TTL");
    assert!(taken.is_held());
    assert_eq!(b.leader().unwrap().as_deref(), Some("b"));
}
