//! What sharing one cluster in etcd adds: agents see each other's records and rows,
//! concurrent writers and concurrent first starts stay consistent, and a maintainer
//! whose fence is gone writes nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use obrestore_etcd::Etcd;
use obrestore_restore::cluster::{ClusterError, NewRestoreJob, RestoreOutcome, GIB};
use obrestore_restore::{ManualClock, SledCluster, TenantService};

use crate::common::fixtures::{pool_spec as pool, put, restoring_tenant, start, unit_config};
use crate::support::{claim_maintainer, etcd, lose_maintainer, open_agent, usage, CLUSTER};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(start()))
}

/// Agent `n`'s own database path under `dir`.
fn agent_db(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("agent{n}.sled"))
}

/// Every key of the cluster with its `mod_revision`: what any write would change.
fn cluster_keys(etcd: &Etcd) -> Vec<(Vec<u8>, i64)> {
    etcd.scan_prefix(format!("/obrestore/{CLUSTER}/cluster/").as_bytes())
        .unwrap()
        .into_iter()
        .map(|kv| (kv.key, kv.mod_revision))
        .collect()
}

/// The files under `dir`, recursively, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn two_agents_see_the_same_tenants_jobs_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let a = open_agent(etcd(), &agent_db(dir.path(), 1), &shared, None, clock()).unwrap();
    a.create_pools(&[pool("p", "s1", &["z1"])], "dag-1")
        .unwrap();
    let tenant = a
        .create_tenant(&restoring_tenant("t", &["p"], &["z1"]), "dag-1")
        .unwrap();
    a.apply_rows(tenant.id, &[put(5, "k1", "v1"), put(5, "k2", "v2")])
        .unwrap();
    let job = a
        .start_restore_job(
            &NewRestoreJob {
                restore_tenant_name: "t".into(),
                ..NewRestoreJob::default()
            },
            "dag-1",
        )
        .unwrap();

    // A second agent, as a new maintainer would: the records from etcd, the rows
    // from the shared directory.
    let b = open_agent(etcd(), &agent_db(dir.path(), 2), &shared, None, clock()).unwrap();
    assert_eq!(b.tenant("t").unwrap(), Some(tenant.clone()));
    assert_eq!(b.list_pools().unwrap(), a.list_pools().unwrap());
    assert_eq!(usage(&b, "z1"), usage(&a, "z1"));
    assert_eq!(b.active_restore_job("t").unwrap(), Some(job.clone()));
    assert_eq!(
        b.tenant_digest(tenant.id).unwrap(),
        a.tenant_digest(tenant.id).unwrap()
    );
    assert_eq!(b.row_count(tenant.id).unwrap(), 2);

    // What the second writes, the first reads.
    let finished = b
        .finish_restore_job(job.job_id, RestoreOutcome::Success, None)
        .unwrap();
    assert_eq!(a.restore_history(Some("t")).unwrap(), [finished]);
    assert_eq!(a.active_restore_job("t").unwrap(), None);
    let activated = b.activate_tenant(tenant.id).unwrap();
    assert_eq!(a.tenant_by_id(tenant.id).unwrap(), Some(activated));
}

#[test]
fn concurrent_writers_on_shared_records_rerun_and_lose_nothing() {
    const THREADS: usize = 8;
    const EACH: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let agents: Vec<SledCluster> = (0..2)
        .map(|n| open_agent(etcd(), &agent_db(dir.path(), n), &shared, None, clock()).unwrap())
        .collect();
    agents[0]
        .create_unit_config(&unit_config("tiny", 0.5, GIB))
        .unwrap();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (agent, barrier) = (&agents[thread % 2], &barrier);
            scope.spawn(move || {
                barrier.wait();
                for i in 0..EACH {
                    // Both take the next id from one counter key ...
                    agent
                        .create_unit_config(&unit_config(&format!("u{thread}_{i}"), 1.0, GIB))
                        .unwrap();
                    // ... and both add a unit to the one server of z1.
                    agent
                        .create_pools(&[pool(&format!("p{thread}_{i}"), "tiny", &["z1"])], "d")
                        .unwrap();
                }
            });
        }
    });
    let total = (THREADS * EACH) as u64;
    let mut ids: Vec<u64> = agents[1]
        .list_unit_configs()
        .unwrap()
        .iter()
        .map(|config| config.id)
        .collect();
    ids.sort_unstable();
    // s1 (seeded) and tiny took 1001 and 1002.
    assert_eq!(ids, (1001..=1002 + total).collect::<Vec<_>>());
    assert_eq!(agents[1].list_pools().unwrap().len() as u64, total);
    assert_eq!(
        usage(&agents[0], "z1"),
        (
            0.5 * total as f64,
            total * GIB,
            16.0 - 0.5 * total as f64,
            (64 - total) * GIB,
            total
        )
    );
}

#[test]
fn concurrent_first_starts_seed_once() {
    const AGENTS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let barrier = Barrier::new(AGENTS);
    let etcd = etcd();
    let opened: Vec<Result<SledCluster, ClusterError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..AGENTS)
            .map(|n| {
                let (etcd, barrier, dir) = (etcd.clone(), &barrier, dir.path());
                scope.spawn(move || {
                    let clock = Arc::new(ManualClock::new(
                        start() + chrono::Duration::seconds(n as i64),
                    ));
                    barrier.wait();
                    open_agent(etcd, &agent_db(dir, n), &dir.join("shared"), None, clock)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let agents: Vec<SledCluster> = opened.into_iter().map(Result::unwrap).collect();
    // One transaction wrote every seeded key, once: each key was created and last
    // modified at the same revision.
    let keys = etcd
        .scan_prefix(format!("/obrestore/{CLUSTER}/cluster/").as_bytes())
        .unwrap();
    let revision = keys[0].create_revision;
    for kv in &keys {
        assert_eq!(
            (kv.create_revision, kv.mod_revision),
            (revision, revision),
            "{}",
            kv.key.escape_ascii()
        );
    }
    for agent in &agents {
        assert_eq!(agent.list_zones().unwrap().len(), 3);
        assert_eq!(agent.list_servers().unwrap().len(), 3);
        let seeded: Vec<(String, u64)> = agent
            .list_unit_configs()
            .unwrap()
            .into_iter()
            .map(|config| (config.name, config.id))
            .collect();
        assert_eq!(seeded, [("s1".to_string(), 1001)]);
    }
    let next = agents[AGENTS - 1]
        .create_unit_config(&unit_config("u", 1.0, GIB))
        .unwrap();
    assert_eq!(next.id, 1002);
}

// long: one deposed maintainer tried on every kind of write (record transactions, row
// batch, drop, reopen), each checked to leave etcd and the shared directory unchanged.
#[test]
fn a_deposed_maintainer_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let etcd = etcd();
    let fence = claim_maintainer(&etcd);
    let old = open_agent(
        etcd.clone(),
        &agent_db(dir.path(), 1),
        &shared,
        Some(fence),
        clock(),
    )
    .unwrap();
    old.create_pools(&[pool("p", "s1", &["z1"])], "d").unwrap();
    let tenant = old
        .create_tenant(&restoring_tenant("t", &["p"], &["z1"]), "d")
        .unwrap();
    old.apply_rows(tenant.id, &[put(1, "a", "1")]).unwrap();

    lose_maintainer(&etcd);
    let keys = cluster_keys(&etcd);
    let rows = files(&shared);
    let fence_lost = |result: Result<(), ClusterError>| {
        assert!(matches!(result, Err(ClusterError::FenceLost)), "{result:?}");
        assert_eq!(cluster_keys(&etcd), keys);
        assert_eq!(files(&shared), rows);
    };
    fence_lost(old.create_pools(&[pool("q", "s1", &["z2"])], "d").map(drop));
    fence_lost(old.set_ls_sync_scn(tenant.id, 1, 5).map(drop));
    fence_lost(old.apply_rows(tenant.id, &[put(1, "b", "2")]));
    fence_lost(old.compact_rows(tenant.id).map(drop));
    fence_lost(old.drop_tenant("t").map(drop));
    drop(old);
    // Nor can it open the cluster again with its old fence.
    let old_fence = obrestore_etcd::Fence::new(crate::support::MAINTAINER_KEY.to_vec(), 1);
    fence_lost(
        open_agent(
            etcd.clone(),
            &agent_db(dir.path(), 1),
            &shared,
            Some(old_fence),
            clock(),
        )
        .map(drop),
    );

    // A new maintainer takes over and finds everything the old one committed.
    let new = open_agent(
        etcd.clone(),
        &agent_db(dir.path(), 2),
        &shared,
        Some(claim_maintainer(&etcd)),
        clock(),
    )
    .unwrap();
    assert_eq!(new.tenant("t").unwrap(), Some(tenant.clone()));
    assert_eq!(new.row_count(tenant.id).unwrap(), 1);
    new.apply_rows(tenant.id, &[put(1, "b", "2")]).unwrap();
    assert_eq!(new.row_count(tenant.id).unwrap(), 2);
}
