//! Latency of the embedded cluster's record operations on each backend, in one run:
//! the agent's sled trees (every write flushed and `fdatasync`ed), etcd with one
//! member and etcd with three (loopback, members' data in a temporary directory, each
//! member fsyncs its WAL). Not criterion: rounds alternate the backends so machine
//! noise hits them alike, and the table prints each operation's median and p99 over
//! all rounds.
//!
//! Operations, as a restore and the API use them:
//! - `record_restore_part`: the progress write of each data sub-task (a read-modify-
//!   write of one restore job);
//! - `tenant lifecycle`: create a pool and a tenant, drop the tenant, drop the pool
//!   (five transactions over pools, servers, tenants and names, and a row drop);
//! - `tenant (read)`: a tenant by name outside a transaction (two reads);
//! - `list_tenants (scan)`: one scan of 50 tenants.
//!
//! `cargo bench -p obrestore-restore --bench cluster_records` (needs `etcd` on the
//! PATH or `OBRESTORE_ETCD_BIN`; `ROUNDS`, `OPS` env to change the sizes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use obrestore_etcd::testing::EtcdCluster;
use obrestore_restore::cluster::{
    NewRestoreJob, NewTenant, PartProgress, PoolSpec, ReplicaType, TenantRole, TenantStatus,
    TenantZone, GIB,
};
use obrestore_restore::{ClusterConfig, SledCluster, SystemClock, TenantService};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pool(name: &str, zone: &str) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        unit_config_name: "tiny".into(),
        unit_num: 1,
        zone_list: vec![zone.into()],
    }
}

fn tenant(name: &str, pool: &str, zone: &str) -> NewTenant {
    NewTenant {
        name: name.into(),
        status: TenantStatus::Normal,
        role: TenantRole::Primary,
        data_version: "4.2.1.0".into(),
        primary_zone: "RANDOM".into(),
        zone_list: vec![TenantZone {
            zone: zone.into(),
            replica_type: ReplicaType::Full,
        }],
        pool_names: vec![pool.into()],
    }
}

struct Backend {
    name: &'static str,
    cluster: SledCluster,
    job_id: u64,
    /// Keeps etcd running.
    _etcd: Option<EtcdCluster>,
    _dir: tempfile::TempDir,
}

fn open(name: &'static str, members: usize) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("agent.sled")).unwrap();
    let rows = dir.path().join("rows");
    let config = ClusterConfig::default();
    let (cluster, etcd) = if members == 0 {
        let cluster = SledCluster::new(&db, rows, &config, Arc::new(SystemClock)).unwrap();
        (cluster, None)
    } else {
        let etcd = EtcdCluster::start(members).expect("etcd is not installed");
        let cluster = SledCluster::open_etcd(
            &db,
            etcd.client(),
            "bench",
            None,
            rows,
            &config,
            Arc::new(SystemClock),
        )
        .unwrap();
        (cluster, Some(etcd))
    };
    let unit = obrestore_restore::cluster::NewUnitConfig {
        name: "tiny".into(),
        memory_size: GIB,
        max_cpu: 0.25,
        min_cpu: None,
        log_disk_size: None,
        max_iops: None,
        min_iops: None,
    };
    cluster.create_unit_config(&unit).unwrap();
    for i in 0..50 {
        let (p, z) = (format!("bg{i}"), format!("z{}", i % 3 + 1));
        cluster.create_pools(&[pool(&p, &z)], "bench").unwrap();
        cluster
            .create_tenant(&tenant(&format!("bg{i}"), &p, &z), "bench")
            .unwrap();
    }
    let job = cluster
        .start_restore_job(
            &NewRestoreJob {
                restore_tenant_name: "restoring".into(),
                ..NewRestoreJob::default()
            },
            "bench",
        )
        .unwrap();
    Backend {
        name,
        cluster,
        job_id: job.job_id,
        _etcd: etcd,
        _dir: dir,
    }
}

const OPERATIONS: [&str; 4] = [
    "record_restore_part",
    "tenant lifecycle",
    "tenant (read)",
    "list_tenants (scan)",
];

/// Runs operation `op` once (the `n`-th time on this backend).
fn run(backend: &Backend, op: usize, n: usize) {
    let cluster = &backend.cluster;
    match op {
        0 => {
            let progress = PartProgress {
                bytes: n as u64,
                tablets: 1,
            };
            cluster
                .record_restore_part(backend.job_id, &format!("part{}", n % 64), progress)
                .unwrap();
        }
        1 => {
            let name = format!("cycle{n}");
            cluster.create_pools(&[pool(&name, "z1")], &name).unwrap();
            cluster
                .create_tenant(&tenant(&name, &name, "z1"), &name)
                .unwrap();
            cluster.drop_tenant(&name).unwrap();
            cluster.drop_pools(&[name]).unwrap();
        }
        2 => {
            cluster.tenant(&format!("bg{}", n % 50)).unwrap().unwrap();
        }
        _ => {
            assert_eq!(cluster.list_tenants().unwrap().len(), 50);
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if obrestore_etcd::testing::etcd_binary().is_none() {
        eprintln!("cluster_records: etcd is not installed; nothing to compare");
        return;
    }
    let rounds = env_usize("ROUNDS", 3);
    let ops = env_usize("OPS", 100);
    let backends = [open("sled", 0), open("etcd x1", 1), open("etcd x3", 3)];
    // samples[backend][operation]
    let mut samples = vec![vec![Vec::new(); OPERATIONS.len()]; backends.len()];
    let mut count = 0;
    for _ in 0..rounds {
        for (op, _) in OPERATIONS.iter().enumerate() {
            for (b, backend) in backends.iter().enumerate() {
                for i in 0..ops {
                    let started = Instant::now();
                    run(backend, op, count + i);
                    samples[b][op].push(started.elapsed());
                }
            }
            count += ops;
        }
    }
    println!("cluster_records: {rounds} rounds x {ops} ops, backends alternating");
    println!("| operation | backend | median | p99 | ops/s (1 / median) |");
    println!("|---|---|---|---|---|");
    for (op, name) in OPERATIONS.iter().enumerate() {
        for (b, backend) in backends.iter().enumerate() {
            let sorted = {
                let mut s = samples[b][op].clone();
                s.sort_unstable();
                s
            };
            let median = percentile(&sorted, 0.5);
            println!(
                "| {name} | {} | {:.2} ms | {:.2} ms | {:.0} |",
                backend.name,
                median.as_secs_f64() * 1e3,
                percentile(&sorted, 0.99).as_secs_f64() * 1e3,
                1.0 / median.as_secs_f64()
            );
        }
    }
}
