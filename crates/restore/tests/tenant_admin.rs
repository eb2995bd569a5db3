//! Tenant administration on the embedded cluster (obshell's tenant API at the domain
//! level): create options, rename, primary zone, add/remove/modify replicas with their
//! capacity accounting, variables, parameters and the root password; every refusal with
//! its error variant and obshell text; idempotency; durability across reopen; and that
//! no root password reaches the store.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use obrestore_restore::cluster::catalog::{self, PARAMETERS, VARIABLES};
use obrestore_restore::cluster::{
    ClusterResult, NewRestoreJob, NewTenant, NewUnitConfig, PoolSpec, ReplicaModify, ReplicaSpec,
    ReplicaType, ResourcePool, RestoreOutcome, ServerSeed, Tenant, TenantMode, TenantOptions,
    TenantParameter, TenantRole, TenantStatus, TenantVariable, TenantZone, ZoneSeed, GIB,
    ROOT_PASSWORD_KDF_ITERATIONS,
};
use obrestore_restore::{
    ClusterConfig, ClusterError, ManualClock, Secret, SledCluster, TenantService,
};

/// PBKDF2 rounds for the tests' verifiers (the default takes seconds unoptimized).
const TEST_KDF_ITERATIONS: u32 = 64;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 9, 9, 11, 43).unwrap()
}

/// z1..z3 (region hangzhou) have two 16-CPU / 64 GiB servers each, z4 (shanghai) one,
/// z5 (hangzhou) one small 4-CPU / 8 GiB server. Unit configs: s1 (2 CPU, 4 GiB), s2
/// (4 CPU, 8 GiB), big (12 CPU, 48 GiB).
fn config() -> ClusterConfig {
    let server = |port: u16, cpu: f64, memory: u64| ServerSeed {
        ip: "127.0.0.1".into(),
        port,
        cpu_capacity: cpu,
        memory_capacity: memory,
    };
    let zone = |name: &str, region: &str, servers: Vec<ServerSeed>| ZoneSeed {
        name: name.into(),
        region: region.into(),
        servers,
    };
    let unit = |name: &str, cpu: f64, memory: u64| NewUnitConfig {
        name: name.into(),
        memory_size: memory,
        max_cpu: cpu,
        min_cpu: None,
        log_disk_size: None,
        max_iops: None,
        min_iops: None,
    };
    ClusterConfig {
        zones: vec![
            zone(
                "z1",
                "hangzhou",
                vec![server(2811, 16.0, 64 * GIB), server(2812, 16.0, 64 * GIB)],
            ),
            zone(
                "z2",
                "hangzhou",
                vec![server(2821, 16.0, 64 * GIB), server(2822, 16.0, 64 * GIB)],
            ),
            zone(
                "z3",
                "hangzhou",
                vec![server(2831, 16.0, 64 * GIB), server(2832, 16.0, 64 * GIB)],
            ),
            zone("z4", "shanghai", vec![server(2841, 16.0, 64 * GIB)]),
            zone("z5", "hangzhou", vec![server(2851, 4.0, 8 * GIB)]),
        ],
        unit_configs: vec![
            unit("s1", 2.0, 4 * GIB),
            unit("s2", 4.0, 8 * GIB),
            unit("big", 12.0, 48 * GIB),
        ],
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    cluster: SledCluster,
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("db")
}

fn open_at(path: &Path, clock: Arc<ManualClock>) -> SledCluster {
    let db = common::retry_while_locked(|| sled::open(path)).unwrap();
    SledCluster::new(&db, path.with_extension("rows"), &config(), clock)
        .unwrap()
        .with_password_kdf_iterations(TEST_KDF_ITERATIONS)
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let cluster = open_at(&db_path(&dir), clock.clone());
    Fixture {
        dir,
        clock,
        cluster,
    }
}

impl Fixture {
    /// Closes the cluster and opens it again on the same directory.
    fn reopened(self) -> Fixture {
        let Fixture {
            dir,
            clock,
            cluster,
        } = self;
        drop(cluster);
        let cluster = open_at(&db_path(&dir), clock.clone());
        Fixture {
            dir,
            clock,
            cluster,
        }
    }

    /// Closes the cluster, lets `edit` change the stored JSON of tenant `id`, and opens
    /// it again: how records written by an older version, or left DROPPING by a crash,
    /// are made.
    fn with_tenant_record_edited(
        self,
        id: u64,
        edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) -> Fixture {
        let Fixture {
            dir,
            clock,
            cluster,
        } = self;
        drop(cluster);
        {
            let db = common::retry_while_locked(|| sled::open(db_path(&dir))).unwrap();
            let tenants = db.open_tree("cluster/tenants").unwrap();
            let bytes = tenants.get(id.to_be_bytes()).unwrap().unwrap();
            let mut record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            edit(record.as_object_mut().unwrap());
            tenants
                .insert(id.to_be_bytes(), serde_json::to_vec(&record).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let cluster = open_at(&db_path(&dir), clock.clone());
        Fixture {
            dir,
            clock,
            cluster,
        }
    }

    /// A NORMAL, PRIMARY tenant with one pool `<name>_<zone>` of s1 per zone, primary
    /// zone RANDOM.
    fn tenant(&self, name: &str, zones: &[(&str, ReplicaType)]) -> Tenant {
        self.tenant_with(
            name,
            zones,
            "RANDOM",
            TenantStatus::Normal,
            &TenantOptions::default(),
        )
    }

    fn tenant_with(
        &self,
        name: &str,
        zones: &[(&str, ReplicaType)],
        primary_zone: &str,
        status: TenantStatus,
        options: &TenantOptions,
    ) -> Tenant {
        let specs: Vec<PoolSpec> = zones
            .iter()
            .map(|(zone, _)| pool_spec(&format!("{name}_{zone}"), "s1", &[zone]))
            .collect();
        self.cluster.create_pools(&specs, "setup").unwrap();
        let new = new_tenant(
            name,
            zones,
            primary_zone,
            status,
            specs.iter().map(|spec| spec.name.clone()).collect(),
        );
        self.cluster
            .create_tenant_with(&new, options, "setup")
            .unwrap()
    }

    fn get(&self, name: &str) -> Tenant {
        self.cluster.tenant(name).unwrap().unwrap()
    }

    fn pools_of(&self, name: &str) -> Vec<ResourcePool> {
        self.get(name)
            .pool_names
            .iter()
            .map(|pool| self.cluster.pool(pool).unwrap().unwrap())
            .collect()
    }

    fn set_parameter(&self, tenant: &str, name: &str, value: &str) {
        self.cluster
            .set_parameters(tenant, &map(&[(name, value)]))
            .unwrap();
    }
}

fn pool_spec(name: &str, config: &str, zones: &[&str]) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        unit_config_name: config.into(),
        unit_num: 1,
        zone_list: zones.iter().map(|zone| zone.to_string()).collect(),
    }
}

fn new_tenant(
    name: &str,
    zones: &[(&str, ReplicaType)],
    primary_zone: &str,
    status: TenantStatus,
    pool_names: Vec<String>,
) -> NewTenant {
    NewTenant {
        name: name.into(),
        status,
        role: if status == TenantStatus::Restore {
            TenantRole::Standby
        } else {
            TenantRole::Primary
        },
        data_version: "4.2.1.0".into(),
        primary_zone: primary_zone.into(),
        zone_list: zones
            .iter()
            .map(|(zone, replica_type)| TenantZone {
                zone: zone.to_string(),
                replica_type: *replica_type,
            })
            .collect(),
        pool_names,
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn zones(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn replica(zone: &str, replica_type: ReplicaType, config: &str, unit_num: u32) -> ReplicaSpec {
    ReplicaSpec {
        zone: zone.into(),
        replica_type,
        unit_config_name: config.into(),
        unit_num,
    }
}

fn modify(zone: &str) -> ReplicaModify {
    ReplicaModify {
        zone: zone.into(),
        ..ReplicaModify::default()
    }
}

use ReplicaType::{Full as F, Readonly as R};

/// The name of `err`'s `ClusterError` variant, e.g. `ZoneRepeated` (the identifier its
/// `Debug` output starts with). The obshell errCode and HTTP status of each variant are
/// the server crate's business.
fn variant_name(err: &ClusterError) -> String {
    let debug = format!("{err:?}");
    let end = debug
        .find(|c: char| c == '(' || c == '{' || c.is_whitespace())
        .unwrap_or(debug.len());
    debug[..end].to_string()
}

/// `(variant name, message)` of a refusal.
fn refusal<T: Debug>(result: ClusterResult<T>) -> (String, String) {
    let err = result.unwrap_err();
    (variant_name(&err), err.to_string())
}

/// What a refusal must be: `(variant name, message)`.
type Expected<'a> = (&'a str, &'a str);

/// One refusal to check: a label, what the call returned, and what it must be.
type Case<'a, T> = (&'a str, ClusterResult<T>, Expected<'a>);

/// Checks each `(label, result, (variant name, message))`.
fn check_refusals<T: Debug>(cases: Vec<Case<'_, T>>) {
    for (label, result, (variant, message)) in cases {
        let (got_variant, got_message) = refusal(result);
        assert_eq!(
            (got_variant.as_str(), got_message.as_str()),
            (variant, message),
            "{label}"
        );
    }
}

/// Every server's `(address, cpu_assigned, memory_assigned, unit_count)`.
fn capacity(cluster: &SledCluster) -> Vec<(String, f64, u64, u64)> {
    cluster
        .list_servers()
        .unwrap()
        .into_iter()
        .map(|server| {
            (
                server.address(),
                server.cpu_assigned,
                server.memory_assigned,
                server.unit_count,
            )
        })
        .collect()
}

/// `(cpu_assigned, memory_assigned, unit_count)` of server `address`.
fn usage(cluster: &SledCluster, address: &str) -> (f64, u64, u64) {
    capacity(cluster)
        .into_iter()
        .find(|(server, ..)| server == address)
        .map(|(_, cpu, memory, units)| (cpu, memory, units))
        .unwrap()
}

/// Everything the cluster holds outside rows, to compare before and after.
#[derive(Debug, PartialEq)]
struct Snapshot {
    tenants: Vec<Tenant>,
    pools: Vec<ResourcePool>,
    servers: Vec<(String, f64, u64, u64)>,
}

fn snapshot(cluster: &SledCluster) -> Snapshot {
    Snapshot {
        tenants: cluster.list_tenants().unwrap(),
        pools: cluster.list_pools().unwrap(),
        servers: capacity(cluster),
    }
}

fn zone_list(tenant: &Tenant) -> Vec<(String, ReplicaType)> {
    tenant
        .zone_list
        .iter()
        .map(|zone| (zone.zone.clone(), zone.replica_type))
        .collect()
}

fn pairs(list: &[(&str, ReplicaType)]) -> Vec<(String, ReplicaType)> {
    list.iter()
        .map(|(zone, replica_type)| (zone.to_string(), *replica_type))
        .collect()
}

// ---- create options ----

#[test]
fn create_tenant_without_options_gets_obshell_defaults() {
    let fx = fixture();
    let tenant = fx.tenant("t1", &[("z1", F)]);
    assert_eq!(tenant.mode, TenantMode::Mysql);
    assert_eq!(
        (tenant.charset.as_str(), tenant.collation.as_str()),
        ("utf8mb4", "utf8mb4_general_ci")
    );
    assert_eq!(tenant.comment, "");
    assert!(!tenant.read_only);
    assert_eq!(
        tenant.variables,
        map(&[
            ("character_set_server", "utf8mb4"),
            ("collation_server", "utf8mb4_general_ci"),
            ("ob_tcp_invited_nodes", "127.0.0.1"),
        ])
    );
    assert_eq!(tenant.parameters, BTreeMap::new());
    assert_eq!(tenant.root_password, None);
    assert!(!tenant.root_password_persisted);
    // Every catalogue variable reads as its default, except the mode, which reflects
    // the tenant.
    let variables = fx.cluster.variables("t1").unwrap();
    assert_eq!(variables.len(), VARIABLES.len());
    for (row, def) in variables.iter().zip(VARIABLES) {
        assert_eq!(
            row,
            &TenantVariable {
                name: def.name.into(),
                value: def.default_value.into(),
                info: def.info.into(),
            }
        );
    }
    let parameters = fx.cluster.parameters("t1").unwrap();
    assert_eq!(parameters.len(), PARAMETERS.len());
    for (row, def) in parameters.iter().zip(PARAMETERS) {
        assert_eq!(
            row,
            &TenantParameter {
                name: def.name.into(),
                value: def.default_value.into(),
                data_type: def.data_type().into(),
                info: def.info.into(),
                edit_level: "DYNAMIC_EFFECTIVE".into(),
            }
        );
    }
}

#[test]
fn create_tenant_with_options_records_them() {
    let fx = fixture();
    let options = TenantOptions {
        mode: TenantMode::Oracle,
        charset: Some("GBK".into()),
        collation: None,
        comment: "orders".into(),
        read_only: true,
        variables: map(&[
            ("LOWER_CASE_TABLE_NAMES", "0"),
            ("ob_query_timeout", "20000000"),
            ("ob_tcp_invited_nodes", "10.0.0.0/8"),
            ("autocommit", "OFF"),
        ]),
        parameters: map(&[
            ("enable_rebalance", "false"),
            ("major_freeze_duty_time", "3:30"),
        ]),
        whitelist: None,
        root_password: Some(Secret::new("Root#1")),
    };
    let tenant = fx.tenant_with("t1", &[("z1", F)], "RANDOM", TenantStatus::Normal, &options);
    assert_eq!(tenant.mode, TenantMode::Oracle);
    assert_eq!(
        (tenant.charset.as_str(), tenant.collation.as_str()),
        ("gbk", "gbk_chinese_ci")
    );
    assert_eq!(tenant.comment, "orders");
    assert!(tenant.read_only);
    assert_eq!(
        tenant.variables,
        map(&[
            ("autocommit", "0"),
            ("character_set_server", "gbk"),
            ("collation_server", "gbk_chinese_ci"),
            ("lower_case_table_names", "0"),
            ("ob_query_timeout", "20000000"),
            ("ob_tcp_invited_nodes", "10.0.0.0/8,127.0.0.1"),
            ("read_only", "1"),
        ])
    );
    assert_eq!(
        tenant.parameters,
        map(&[
            ("enable_rebalance", "False"),
            ("major_freeze_duty_time", "03:30")
        ])
    );
    assert!(tenant.root_password_persisted);
    assert!(fx.cluster.check_root_password("t1", "Root#1").unwrap());
    assert_eq!(
        fx.cluster
            .variable("t1", "ob_compatibility_mode")
            .unwrap()
            .value,
        "ORACLE"
    );

    // An explicit whitelist wins over the variable; read_only set by the variables wins
    // over the flag (obshell applies the variables after CREATE TENANT .. read_only=1).
    let options = TenantOptions {
        read_only: true,
        variables: map(&[("ob_tcp_invited_nodes", "10.0.0.1"), ("read_only", "0")]),
        whitelist: Some("192.168.0.%".into()),
        collation: Some("utf8mb4_bin".into()),
        ..TenantOptions::default()
    };
    let tenant = fx.tenant_with("t2", &[("z2", F)], "RANDOM", TenantStatus::Normal, &options);
    assert!(!tenant.read_only);
    assert_eq!(
        tenant.variables["ob_tcp_invited_nodes"],
        "192.168.0.%,127.0.0.1"
    );
    assert_eq!(
        (tenant.charset.as_str(), tenant.collation.as_str()),
        ("utf8mb4", "utf8mb4_bin")
    );
    assert!(!tenant.root_password_persisted);
}

#[test]
fn create_tenant_options_are_checked_before_anything_is_written() {
    let fx = fixture();
    fx.cluster
        .create_pools(&[pool_spec("p1", "s1", &["z1"])], "setup")
        .unwrap();
    let before = snapshot(&fx.cluster);
    let new = new_tenant(
        "t1",
        &[("z1", F)],
        "RANDOM",
        TenantStatus::Normal,
        vec!["p1".into()],
    );
    let with = |options: TenantOptions| fx.cluster.create_tenant_with(&new, &options, "setup");
    let variables = |pairs: &[(&str, &str)]| TenantOptions {
        variables: map(pairs),
        ..TenantOptions::default()
    };
    let parameters = |pairs: &[(&str, &str)]| TenantOptions {
        parameters: map(pairs),
        ..TenantOptions::default()
    };
    check_refusals(vec![
        (
            "unknown charset",
            with(TenantOptions {
                charset: Some("ascii".into()),
                ..TenantOptions::default()
            }),
            ("CharsetCollationInvalid", "Charset 'ascii' is not exist."),
        ),
        (
            "unknown collation",
            with(TenantOptions {
                collation: Some("klingon_ci".into()),
                ..TenantOptions::default()
            }),
            ("CharsetCollationInvalid", "Collation 'klingon_ci' is not exist."),
        ),
        (
            "charset and collation mismatch",
            with(TenantOptions {
                charset: Some("gbk".into()),
                collation: Some("utf8mb4_bin".into()),
                ..TenantOptions::default()
            }),
            (
                "CharsetCollationInvalid",
                "Charset 'gbk' and Collation 'utf8mb4_bin' is not match.",
            ),
        ),
        (
            "empty variable name",
            with(variables(&[("", "1")])),
            ("VariableEmpty", "Tenant variable name or value is empty."),
        ),
        (
            "unknown variable",
            with(variables(&[("no_such_variable", "1")])),
            ("VariableNotExist", "Tenant variable 'no_such_variable' does not exist."),
        ),
        (
            "bad variable value",
            with(variables(&[("wait_timeout", "0")])),
            (
                "VariableInvalid",
                "Tenant variable 'wait_timeout' is invalid: value '0' is out of range [1, 31536000].",
            ),
        ),
        (
            "read-only variable",
            with(variables(&[("ob_compatibility_mode", "ORACLE")])),
            (
                "VariableInvalid",
                "Tenant variable 'ob_compatibility_mode' is invalid: it is read only.",
            ),
        ),
        (
            "bad whitelist",
            with(TenantOptions {
                whitelist: Some("10.0.0.1;drop".into()),
                ..TenantOptions::default()
            }),
            (
                "VariableInvalid",
                "Tenant variable 'ob_tcp_invited_nodes' is invalid: '10.0.0.1;drop' is not an IP address, a CIDR block or a %/_ pattern.",
            ),
        ),
        (
            "empty parameter name",
            with(parameters(&[(" ", "1")])),
            ("ParameterEmpty", "Tenant parameter name or value is empty."),
        ),
        (
            "unknown parameter",
            with(parameters(&[("no_such_parameter", "1")])),
            ("ParameterNotExist", "Tenant parameter 'no_such_parameter' does not exist."),
        ),
        (
            "bad parameter value",
            with(parameters(&[("ha_high_thread_score", "101")])),
            (
                "ParameterInvalid",
                "The input parameter 'ha_high_thread_score' is illegal: value '101' is out of range [0, 100]",
            ),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
    assert_eq!(fx.cluster.tenant("t1").unwrap(), None);
}

#[test]
fn records_written_before_tenant_administration_load_with_defaults() {
    let fx = fixture();
    let tenant = fx.tenant_with(
        "old",
        &[("z1", F)],
        "RANDOM",
        TenantStatus::Normal,
        &TenantOptions {
            comment: "x".into(),
            root_password: Some(Secret::new("pw")),
            ..TenantOptions::default()
        },
    );
    let new_fields = [
        "mode",
        "charset",
        "collation",
        "comment",
        "read_only",
        "variables",
        "parameters",
        "root_password",
        "root_password_persisted",
    ];
    let fx = fx.with_tenant_record_edited(tenant.id, |record| {
        for field in new_fields {
            assert!(record.remove(field).is_some(), "{field}");
        }
    });
    let loaded = fx.get("old");
    assert_eq!(
        loaded,
        Tenant {
            mode: TenantMode::Mysql,
            charset: "utf8mb4".into(),
            collation: "utf8mb4_general_ci".into(),
            comment: String::new(),
            read_only: false,
            variables: BTreeMap::new(),
            parameters: BTreeMap::new(),
            root_password: None,
            root_password_persisted: false,
            ..tenant
        }
    );
    assert_eq!(
        fx.cluster
            .variable("old", "ob_tcp_invited_nodes")
            .unwrap()
            .value,
        "127.0.0.1"
    );
    assert!(fx.cluster.check_root_password("old", "").unwrap());
}

// ---- rename ----

#[test]
fn rename_moves_the_name_and_keeps_everything_else() {
    let fx = fixture();
    let before = fx.tenant("t1", &[("z1", F)]);
    fx.clock.advance(Duration::seconds(5));
    let renamed = fx.cluster.rename_tenant("t1", "orders#2").unwrap();
    assert_eq!(
        renamed,
        Tenant {
            name: "orders#2".into(),
            updated_at: start() + Duration::seconds(5),
            ..before.clone()
        }
    );
    assert_eq!(fx.cluster.tenant("t1").unwrap(), None);
    assert_eq!(fx.get("orders#2"), renamed);
    assert_eq!(
        fx.cluster.tenant_by_id(before.id).unwrap(),
        Some(renamed.clone())
    );
    // Renaming to its own name changes nothing; the old name is free again.
    assert_eq!(
        fx.cluster.rename_tenant("orders#2", "orders#2").unwrap(),
        renamed
    );
    fx.tenant("t1", &[("z2", F)]);
    assert_eq!(fx.cluster.list_tenants().unwrap().len(), 2);
}

#[test]
fn rename_refusals() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    fx.tenant("t2", &[("z2", F)]);
    fx.tenant_with(
        "restoring",
        &[("z3", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    let gone = fx.tenant("gone", &[("z4", F)]);
    let recycled = fx.cluster.recycle_tenant(gone.id).unwrap();
    let dropping = fx.tenant("dropping", &[("z5", F)]);
    let fx = fx.with_tenant_record_edited(dropping.id, |record| {
        record.insert("status".into(), "DROPPING".into());
    });
    // Activated but its restore job not finished yet (the Upgrade step is left).
    fx.tenant("activated", &[("z1", F)]);
    let job = NewRestoreJob {
        restore_tenant_name: "activated".into(),
        ..NewRestoreJob::default()
    };
    let job = fx.cluster.start_restore_job(&job, "dag-1").unwrap();
    let before = snapshot(&fx.cluster);
    let rename = |from: &str, to: &str| fx.cluster.rename_tenant(from, to);
    check_refusals(vec![
        ("empty", rename("t1", ""), ("TenantNameEmpty", "Tenant name is empty")),
        (
            "dollar",
            rename("t1", "a$b"),
            (
                "TenantNameInvalid",
                "Tenant name 'a$b' is invalid: a tenant name containing '$' is not supported",
            ),
        ),
        (
            "reserved",
            rename("t1", "SYS"),
            ("TenantNameInvalid", "Tenant name 'SYS' is invalid: the name is reserved"),
        ),
        (
            "characters",
            rename("t1", "a b"),
            (
                "TenantNameInvalid",
                "Tenant name 'a b' is invalid: tenant names may only contain letters, numbers, and special characters (- _ # ~ +)",
            ),
        ),
        ("missing", rename("nope", "t9"), ("TenantNotFound", "tenant 'nope' does not exist")),
        ("taken", rename("t1", "t2"), ("TenantExists", "tenant 't2' already exists")),
        (
            "restore job unfinished",
            rename("activated", "t9"),
            (
                "RestoreJobConflict",
                format!("tenant 'activated' already has an unfinished restore job {}", job.job_id).as_str(),
            ),
        ),
        (
            "restoring",
            rename("restoring", "t9"),
            ("TenantState", "tenant 'restoring' is RESTORE, the operation needs NORMAL"),
        ),
        (
            "dropping",
            rename("dropping", "t9"),
            ("TenantState", "tenant 'dropping' is DROPPING, the operation needs NORMAL"),
        ),
        (
            "recycled, by object name",
            rename(&recycled.name, "t9"),
            (
                "TenantState",
                format!("tenant '{}' is in the recycle bin, the operation needs NORMAL", recycled.name).as_str(),
            ),
        ),
        ("recycled, by original name", rename("gone", "t9"), ("TenantNotFound", "tenant 'gone' does not exist")),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
    // Once the job is in history the name is free to change.
    fx.cluster
        .finish_restore_job(job.job_id, RestoreOutcome::Success, None)
        .unwrap();
    assert_eq!(
        fx.cluster.rename_tenant("activated", "t9").unwrap().name,
        "t9"
    );
}

// ---- primary zone ----

#[test]
fn primary_zone_is_set_normalized_and_checked() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F), ("z2", F), ("z3", R)]);
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("z1;z2", Ok("z1;z2")),
        ("z1,z2;z3", Ok("z1,z2;z3")),
        ("random", Ok("RANDOM")),
        ("", Ok("RANDOM")),
        ("z2", Ok("z2")),
        (
            "z9",
            Err("Primary zone 'z9' is invalid: Zone 'z9' is not in zone_list."),
        ),
        (
            "z1;z4",
            Err("Primary zone 'z1;z4' is invalid: Zone 'z4' is not in zone_list."),
        ),
        (
            "z1;z1",
            Err("Primary zone 'z1;z1' is invalid: Zone 'z1' is repeated in primary_zone."),
        ),
        (
            "z1;;z2",
            Err("Primary zone 'z1;;z2' is invalid: Zone '' is not in zone_list."),
        ),
    ];
    for (input, expected) in cases {
        match expected {
            Ok(stored) => {
                let tenant = fx.cluster.set_primary_zone("t1", input).unwrap();
                assert_eq!(tenant.primary_zone, *stored, "{input}");
                // Idempotent.
                assert_eq!(fx.cluster.set_primary_zone("t1", input).unwrap(), tenant);
            }
            Err(message) => {
                let before = fx.get("t1");
                let (variant, got) = refusal(fx.cluster.set_primary_zone("t1", input));
                assert_eq!(
                    (variant.as_str(), got.as_str()),
                    ("PrimaryZoneInvalid", *message)
                );
                assert_eq!(fx.get("t1"), before);
            }
        }
    }
}

#[test]
fn primary_zone_changes_of_first_priority_need_rebalance_and_one_region() {
    let fx = fixture();
    fx.tenant_with(
        "t1",
        &[("z1", F), ("z2", F), ("z3", R)],
        "z1;z2",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    fx.set_parameter("t1", "enable_rebalance", "False");
    // The first-priority FULL zones stay {z1}: allowed with rebalance off. z3 is
    // READONLY, so "z3;z1" still has first priority {z1}.
    assert_eq!(
        fx.cluster
            .set_primary_zone("t1", "z1;z3")
            .unwrap()
            .primary_zone,
        "z1;z3"
    );
    assert_eq!(
        fx.cluster
            .set_primary_zone("t1", "z3;z1")
            .unwrap()
            .primary_zone,
        "z3;z1"
    );
    check_refusals(vec![(
        "first priority {z1} -> {z2}",
        fx.cluster.set_primary_zone("t1", "z2;z1"),
        (
            "RebalanceDisabled",
            "Change first priority zone of primary zone is not allowed when tenant 'enable_rebalance' is disabled.",
        ),
    )]);
    fx.set_parameter("t1", "enable_rebalance", "True");
    assert_eq!(
        fx.cluster
            .set_primary_zone("t1", "z2;z1")
            .unwrap()
            .primary_zone,
        "z2;z1"
    );

    // Regions: z4 is in shanghai.
    fx.tenant_with(
        "t2",
        &[("z1", F), ("z2", F), ("z4", F)],
        "z1",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    fx.tenant_with(
        "t3",
        &[("z3", F), ("z4", F)],
        "z3",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    check_refusals(vec![
        (
            "first priority across regions",
            fx.cluster.set_primary_zone("t2", "z1,z4"),
            (
                "PrimaryZoneCrossRegion",
                "Primary zone 'z1,z4' crosses regions, please check tenant's primary zone.",
            ),
        ),
        (
            "RANDOM over two regions",
            fx.cluster.set_primary_zone("t2", "RANDOM"),
            (
                "PrimaryZoneCrossRegion",
                "Primary zone 'RANDOM' crosses regions, please check tenant's primary zone.",
            ),
        ),
        (
            "one FULL replica in the primary region",
            fx.cluster.set_primary_zone("t3", "z4"),
            (
                "PrimaryRegionFullReplicaNotEnough",
                "The region shanghai where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only 1 full replicas.",
            ),
        ),
    ]);
    // Two FULL replicas in hangzhou: z1 or z2 first is fine.
    assert_eq!(
        fx.cluster
            .set_primary_zone("t2", "z2;z1")
            .unwrap()
            .primary_zone,
        "z2;z1"
    );
}

// ---- add replicas ----

#[test]
fn add_replicas_creates_granted_pools_charges_capacity_and_is_idempotent() {
    let fx = fixture();
    let tenant = fx.tenant("t1", &[("z1", F)]);
    let free = capacity(&fx.cluster);
    fx.clock.advance(Duration::seconds(60));
    let now = start() + Duration::seconds(60);
    let wanted = [replica("z2", F, "s2", 1), replica("z3", R, "s1", 1)];
    let added = fx.cluster.add_replicas("t1", &wanted, "dag-9").unwrap();

    let pool_z2 = format!("t1_z2_{}", now.timestamp());
    let pool_z3 = format!("t1_z3_{}", now.timestamp());
    assert_eq!(
        added.pool_names,
        [
            tenant.pool_names[0].clone(),
            pool_z2.clone(),
            pool_z3.clone()
        ]
    );
    assert_eq!(zone_list(&added), pairs(&[("z1", F), ("z2", F), ("z3", R)]));
    assert_eq!(added.locality(), "FULL{1}@z1, FULL{1}@z2, READONLY{1}@z3");
    assert_eq!(added.updated_at, now);
    for (name, zone, config) in [(&pool_z2, "z2", "s2"), (&pool_z3, "z3", "s1")] {
        let pool = fx.cluster.pool(name).unwrap().unwrap();
        assert_eq!(pool.tenant_id, Some(tenant.id));
        assert_eq!(pool.creator.as_deref(), Some("dag-9"));
        assert_eq!(pool.spec(), pool_spec(name, config, &[zone]));
        assert_eq!(pool.units.len(), 1);
        assert_eq!(pool.units[0].zone, zone);
    }
    // The units went to the first server of each zone (equal free memory, ties by
    // address) and took exactly their config.
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2821"), (4.0, 8 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2831"), (2.0, 4 * GIB, 1));
    let changed: Vec<_> = capacity(&fx.cluster)
        .into_iter()
        .zip(&free)
        .filter(|(now, before)| now != *before)
        .map(|(now, _)| now.0)
        .collect();
    assert_eq!(changed, ["127.0.0.1:2821", "127.0.0.1:2831"]);

    // A step re-executed later (another second) by the same creator converges: nothing
    // new is created or charged.
    fx.clock.advance(Duration::seconds(1));
    let before = snapshot(&fx.cluster);
    assert_eq!(
        fx.cluster.add_replicas("t1", &wanted, "dag-9").unwrap(),
        added
    );
    assert_eq!(snapshot(&fx.cluster), before);
    // Another creator, or another spec, is refused.
    check_refusals(vec![
        (
            "another creator",
            fx.cluster.add_replicas("t1", &wanted, "dag-10"),
            ("ZoneAlreadyHasReplica", "Zone 'z2' already has a replica."),
        ),
        (
            "another replica type",
            fx.cluster
                .add_replicas("t1", &[replica("z3", F, "s1", 1)], "dag-9"),
            ("ZoneAlreadyHasReplica", "Zone 'z3' already has a replica."),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
}

#[test]
fn add_replicas_pool_names_do_not_collide() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    let now = start().timestamp();
    // Someone else's pool already has the name obshell would pick.
    fx.cluster
        .create_pools(
            &[pool_spec(&format!("t1_z2_{now}"), "s1", &["z3"])],
            "other",
        )
        .unwrap();
    let tenant = fx
        .cluster
        .add_replicas("t1", &[replica("z2", F, "s1", 1)], "dag-1")
        .unwrap();
    assert_eq!(tenant.pool_names[1], format!("t1_z2_{now}_2"));
    let other = fx.cluster.pool(&format!("t1_z2_{now}")).unwrap().unwrap();
    assert_eq!(
        (other.tenant_id, other.creator.as_deref()),
        (None, Some("other"))
    );
}

#[test]
fn add_replicas_refusals() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    fx.tenant_with(
        "east",
        &[("z1", F)],
        "z1",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    fx.tenant_with(
        "restoring",
        &[("z2", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    // A tenant whose pool also covers z2, where it has no replica.
    fx.cluster
        .create_pools(&[pool_spec("wide", "s1", &["z1", "z2"])], "setup")
        .unwrap();
    fx.cluster
        .create_tenant(
            &new_tenant(
                "wide",
                &[("z1", F)],
                "RANDOM",
                TenantStatus::Normal,
                vec!["wide".into()],
            ),
            "setup",
        )
        .unwrap();
    fx.tenant("calm", &[("z1", F)]);
    fx.set_parameter("calm", "enable_rebalance", "False");
    let before = snapshot(&fx.cluster);
    let add = |tenant: &str, specs: &[ReplicaSpec]| fx.cluster.add_replicas(tenant, specs, "dag-1");
    check_refusals(vec![
        ("no zones", add("t1", &[]), ("ZoneListEmpty", "Zone list is empty.")),
        (
            "repeated zone",
            add("t1", &[replica("z2", F, "s1", 1), replica("z2", R, "s1", 1)]),
            ("ZoneRepeated", "Zone 'z2' is repeated."),
        ),
        (
            "no unit config",
            add("t1", &[replica("z2", F, " ", 1)]),
            ("UnitConfigNameEmpty", "Unit config name is empty."),
        ),
        (
            "unit num 0",
            add("t1", &[replica("z2", F, "s1", 0)]),
            ("UnitNumInvalid", "Unit number '0' is invalid: unit num should be greater than 0"),
        ),
        (
            "unit nums differ",
            add("t1", &[replica("z2", F, "s1", 1), replica("z3", F, "s1", 2)]),
            ("UnitNumInconsistent", "Unit number is inconsistent, should be the same in all zones."),
        ),
        ("missing tenant", add("nope", &[replica("z2", F, "s1", 1)]), ("TenantNotFound", "tenant 'nope' does not exist")),
        (
            "restoring tenant",
            add("restoring", &[replica("z3", F, "s1", 1)]),
            ("TenantState", "tenant 'restoring' is RESTORE, the operation needs NORMAL"),
        ),
        ("missing zone", add("t1", &[replica("z9", F, "s1", 1)]), ("ZoneNotFound", "zone 'z9' does not exist")),
        (
            "missing unit config",
            add("t1", &[replica("z2", F, "s9", 1)]),
            ("UnitConfigNotFound", "unit config 's9' does not exist"),
        ),
        (
            "more units than servers",
            add("t1", &[replica("z4", F, "s1", 2)]),
            ("UnitNumExceedsServers", "unit num '2' is bigger than server num '1' in zone 'z4'"),
        ),
        (
            "zone has a replica",
            add("t1", &[replica("z2", F, "s1", 1), replica("z1", F, "s1", 1)]),
            ("ZoneAlreadyHasReplica", "Zone 'z1' already has a replica."),
        ),
        (
            "unit num other than the tenant's",
            add("t1", &[replica("z2", F, "s1", 2)]),
            ("UnitNumInconsistent", "Unit number is inconsistent, should be the same in all zones."),
        ),
        (
            "tenant has a pool in the zone",
            add("wide", &[replica("z2", F, "s1", 1)]),
            ("HasPoolOnZone", "Tenant already has a pool located in zone 'z2'."),
        ),
        (
            "new FULL zone changes RANDOM's first priority",
            add("calm", &[replica("z2", F, "s1", 1)]),
            (
                "RebalanceDisabled",
                "Change first priority zone of locality is not allowed when tenant 'enable_rebalance' is disabled.",
            ),
        ),
        (
            "RANDOM over two regions",
            add("t1", &[replica("z4", F, "s1", 1)]),
            (
                "PrimaryZoneCrossRegion",
                "Primary zone 'RANDOM' crosses regions, please check tenant's primary zone.",
            ),
        ),
        (
            "second region without 2 FULL in the first",
            add("east", &[replica("z4", F, "s1", 1)]),
            (
                "PrimaryRegionFullReplicaNotEnough",
                "The region hangzhou where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only 1 full replicas.",
            ),
        ),
        (
            "no server can hold the unit",
            add("t1", &[replica("z2", F, "s1", 1), replica("z5", F, "big", 1)]),
            ("MachineResourceNotEnough", "machine resource 'z5' is not enough to hold a new unit"),
        ),
    ]);
    // Nothing was created, granted or charged by any refusal (the last one had placed
    // z2's unit before z5 failed).
    assert_eq!(snapshot(&fx.cluster), before);
    // A READONLY replica leaves RANDOM's first priority alone: allowed with rebalance off.
    let calm = add("calm", &[replica("z2", R, "s1", 1)]).unwrap();
    assert_eq!(zone_list(&calm), pairs(&[("z1", F), ("z2", R)]));
}

// ---- remove replicas ----

#[test]
fn remove_replicas_drops_pools_frees_capacity_and_is_idempotent() {
    let fx = fixture();
    let tenant = fx.tenant("t1", &[("z1", F), ("z2", F), ("z3", F)]);
    let z3_server = "127.0.0.1:2831";
    assert_eq!(usage(&fx.cluster, z3_server), (2.0, 4 * GIB, 1));
    fx.clock.advance(Duration::seconds(3));
    let removed = fx
        .cluster
        .remove_replicas("t1", &zones(&["z3", "z4"]))
        .unwrap();
    assert_eq!(zone_list(&removed), pairs(&[("z1", F), ("z2", F)]));
    assert_eq!(removed.pool_names, tenant.pool_names[..2]);
    assert_eq!(removed.updated_at, start() + Duration::seconds(3));
    assert_eq!(fx.cluster.pool("t1_z3").unwrap(), None);
    assert_eq!(usage(&fx.cluster, z3_server), (0.0, 0, 0));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2811"), (2.0, 4 * GIB, 1));

    // Again, and zones without a replica: nothing to do.
    let before = snapshot(&fx.cluster);
    assert_eq!(
        fx.cluster.remove_replicas("t1", &zones(&["z3"])).unwrap(),
        removed
    );
    assert_eq!(
        fx.cluster
            .remove_replicas("t1", &zones(&["z4", "z9"]))
            .unwrap(),
        removed
    );
    assert_eq!(fx.cluster.remove_replicas("t1", &[]).unwrap(), removed);
    assert_eq!(snapshot(&fx.cluster), before);

    // A READONLY replica does not count for the FULL rule.
    fx.tenant("t2", &[("z1", F), ("z2", F), ("z3", R)]);
    let t2 = fx.cluster.remove_replicas("t2", &zones(&["z3"])).unwrap();
    assert_eq!(zone_list(&t2), pairs(&[("z1", F), ("z2", F)]));
}

#[test]
fn remove_replicas_splits_a_pool_shared_with_kept_zones() {
    let fx = fixture();
    fx.cluster
        .create_pools(&[pool_spec("shared", "s1", &["z1", "z2", "z3"])], "setup")
        .unwrap();
    let tenant = fx
        .cluster
        .create_tenant(
            &new_tenant(
                "t1",
                &[("z1", F), ("z2", F), ("z3", F)],
                "RANDOM",
                TenantStatus::Normal,
                vec!["shared".into()],
            ),
            "setup",
        )
        .unwrap();
    let shared = fx.cluster.pool("shared").unwrap().unwrap();
    fx.clock.advance(Duration::seconds(10));
    let now = (start() + Duration::seconds(10)).timestamp();
    let removed = fx.cluster.remove_replicas("t1", &zones(&["z2"])).unwrap();
    let z1 = format!("{}_z1_{now}", tenant.id);
    let z3 = format!("{}_z3_{now}", tenant.id);
    assert_eq!(removed.pool_names, [z1.clone(), z3.clone()]);
    assert_eq!(fx.cluster.pool("shared").unwrap(), None);
    for (name, zone) in [(&z1, "z1"), (&z3, "z3")] {
        let part = fx.cluster.pool(name).unwrap().unwrap();
        assert_eq!(part.zone_list, [zone]);
        assert_eq!(part.tenant_id, Some(tenant.id));
        assert_eq!(part.creator.as_deref(), Some("setup"));
        assert_eq!(part.unit_config_name, "s1");
        // The units stay where they were.
        let kept: Vec<_> = shared
            .units
            .iter()
            .filter(|unit| unit.zone == zone)
            .cloned()
            .collect();
        assert_eq!(part.units, kept);
    }
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2821"), (0.0, 0, 0));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2811"), (2.0, 4 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2831"), (2.0, 4 * GIB, 1));
}

#[test]
fn remove_replicas_refusals() {
    let fx = fixture();
    fx.tenant("one", &[("z1", F)]);
    fx.tenant("t3", &[("z1", F), ("z2", F), ("z3", F)]);
    fx.tenant("fr", &[("z1", F), ("z2", R)]);
    fx.tenant_with(
        "pz",
        &[("z1", F), ("z2", F), ("z3", F)],
        "z3;z1",
        TenantStatus::Normal,
        &TenantOptions::default(),
    );
    fx.tenant("calm", &[("z1", F), ("z2", F), ("z3", F)]);
    fx.set_parameter("calm", "enable_rebalance", "False");
    fx.tenant_with(
        "restoring",
        &[("z4", F), ("z5", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    let before = snapshot(&fx.cluster);
    let remove = |tenant: &str, names: &[&str]| fx.cluster.remove_replicas(tenant, &zones(names));
    check_refusals(vec![
        ("missing tenant", remove("nope", &["z1"]), ("TenantNotFound", "tenant 'nope' does not exist")),
        (
            "restoring tenant",
            remove("restoring", &["z5"]),
            ("TenantState", "tenant 'restoring' is RESTORE, the operation needs NORMAL"),
        ),
        ("the only replica", remove("one", &["z1"]), ("ReplicaOnlyOne", "Tenant 'one' only has one replica")),
        ("every replica", remove("t3", &["z3", "z1", "z2"]), ("ReplicaDeleteAll", "Cannot delete all replicas")),
        (
            "three FULL to one",
            remove("t3", &["z1", "z2"]),
            ("LocalityPrincipalNotAllowed", "Violate locality principal not allowed."),
        ),
        (
            "no FULL left",
            remove("fr", &["z1"]),
            ("LocalityPrincipalNotAllowed", "Violate locality principal not allowed."),
        ),
        (
            "primary zone names the zone",
            remove("pz", &["z3"]),
            ("PrimaryZoneInvalid", "Primary zone 'z3;z1' is invalid: Zone 'z3' is not in zone_list."),
        ),
        (
            "RANDOM's first priority shrinks",
            remove("calm", &["z3"]),
            (
                "RebalanceDisabled",
                "Change first priority zone of locality is not allowed when tenant 'enable_rebalance' is disabled.",
            ),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
    // Two FULL to one is refused as well (the next step after three to two).
    fx.cluster.remove_replicas("t3", &zones(&["z3"])).unwrap();
    check_refusals(vec![(
        "two FULL to one",
        remove("t3", &["z2"]),
        (
            "LocalityPrincipalNotAllowed",
            "Violate locality principal not allowed.",
        ),
    )]);
}

// ---- modify replicas ----

#[test]
fn modify_replicas_changes_type_config_and_unit_num_with_capacity_accounting() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F), ("z2", F), ("z3", F)]);
    let first_servers = ["127.0.0.1:2811", "127.0.0.1:2821", "127.0.0.1:2831"];
    let second_servers = ["127.0.0.1:2812", "127.0.0.1:2822", "127.0.0.1:2832"];
    let usages = |servers: &[&str]| {
        servers
            .iter()
            .map(|s| usage(&fx.cluster, s))
            .collect::<Vec<_>>()
    };
    let all_zones = |change: fn(ReplicaModify) -> ReplicaModify| -> Vec<ReplicaModify> {
        ["z1", "z2", "z3"]
            .into_iter()
            .map(|zone| change(modify(zone)))
            .collect()
    };

    // Replica type.
    let tenant = fx
        .cluster
        .modify_replicas(
            "t1",
            &[ReplicaModify {
                replica_type: Some(R),
                ..modify("z3")
            }],
        )
        .unwrap();
    assert_eq!(tenant.locality(), "FULL{1}@z1, FULL{1}@z2, READONLY{1}@z3");

    // Unit config: the units grow in place.
    let to_s2 = all_zones(|change| ReplicaModify {
        unit_config_name: Some("s2".into()),
        ..change
    });
    fx.cluster.modify_replicas("t1", &to_s2).unwrap();
    for pool in fx.pools_of("t1") {
        assert_eq!(pool.unit_config_name, "s2");
        assert_eq!(
            pool.units
                .iter()
                .map(|unit| (unit.max_cpu, unit.memory_size))
                .collect::<Vec<_>>(),
            [(4.0, 8 * GIB)]
        );
    }
    assert_eq!(usages(&first_servers), [(4.0, 8 * GIB, 1); 3]);
    assert_eq!(usages(&second_servers), [(0.0, 0, 0); 3]);

    // Unit num 2: a second unit per zone, on the other server.
    let two = all_zones(|change| ReplicaModify {
        unit_num: Some(2),
        ..change
    });
    fx.cluster.modify_replicas("t1", &two).unwrap();
    for pool in fx.pools_of("t1") {
        assert_eq!(pool.unit_num, 2);
        let mut servers: Vec<_> = pool.units.iter().map(|unit| unit.server.clone()).collect();
        servers.dedup();
        assert_eq!(servers.len(), 2, "{}", pool.name);
    }
    assert_eq!(usages(&first_servers), [(4.0, 8 * GIB, 1); 3]);
    assert_eq!(usages(&second_servers), [(4.0, 8 * GIB, 1); 3]);

    // Idempotent: asking for what is there changes nothing at all.
    fx.clock.advance(Duration::seconds(1));
    let before = snapshot(&fx.cluster);
    fx.cluster.modify_replicas("t1", &two).unwrap();
    fx.cluster.modify_replicas("t1", &to_s2).unwrap();
    fx.cluster
        .modify_replicas(
            "t1",
            &[ReplicaModify {
                replica_type: Some(R),
                ..modify("z3")
            }],
        )
        .unwrap();
    assert_eq!(snapshot(&fx.cluster), before);

    // Back to 1: the newest unit of each zone goes and its server is freed.
    let one = all_zones(|change| ReplicaModify {
        unit_num: Some(1),
        ..change
    });
    let original_units: Vec<u64> = fx
        .pools_of("t1")
        .iter()
        .map(|pool| pool.units[0].id)
        .collect();
    fx.cluster.modify_replicas("t1", &one).unwrap();
    let pools = fx.pools_of("t1");
    assert_eq!(
        pools
            .iter()
            .map(|pool| pool.units[0].id)
            .collect::<Vec<_>>(),
        original_units
    );
    assert!(pools
        .iter()
        .all(|pool| pool.unit_num == 1 && pool.units.len() == 1));
    assert_eq!(usages(&first_servers), [(4.0, 8 * GIB, 1); 3]);
    assert_eq!(usages(&second_servers), [(0.0, 0, 0); 3]);

    // Back to s1: the units shrink and give the difference back.
    let to_s1 = all_zones(|change| ReplicaModify {
        unit_config_name: Some("s1".into()),
        ..change
    });
    fx.cluster.modify_replicas("t1", &to_s1).unwrap();
    assert_eq!(usages(&first_servers), [(2.0, 4 * GIB, 1); 3]);
}

#[test]
fn modify_replicas_splits_a_shared_pool_for_a_partial_config_change() {
    let fx = fixture();
    fx.cluster
        .create_pools(&[pool_spec("shared", "s1", &["z1", "z2"])], "setup")
        .unwrap();
    let tenant = fx
        .cluster
        .create_tenant(
            &new_tenant(
                "t1",
                &[("z1", F), ("z2", F)],
                "RANDOM",
                TenantStatus::Normal,
                vec!["shared".into()],
            ),
            "setup",
        )
        .unwrap();
    let now = start().timestamp();
    let changed = fx
        .cluster
        .modify_replicas(
            "t1",
            &[ReplicaModify {
                unit_config_name: Some("s2".into()),
                ..modify("z2")
            }],
        )
        .unwrap();
    let (z1, z2) = (
        format!("{}_z1_{now}", tenant.id),
        format!("{}_z2_{now}", tenant.id),
    );
    assert_eq!(changed.pool_names, [z1.clone(), z2.clone()]);
    assert_eq!(fx.cluster.pool("shared").unwrap(), None);
    assert_eq!(
        fx.cluster.pool(&z1).unwrap().unwrap().unit_config_name,
        "s1"
    );
    assert_eq!(
        fx.cluster.pool(&z2).unwrap().unwrap().unit_config_name,
        "s2"
    );
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2811"), (2.0, 4 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2821"), (4.0, 8 * GIB, 1));
}

#[test]
fn modify_replicas_refusals() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F), ("z2", F), ("z3", F)]);
    fx.tenant("two", &[("z1", F), ("z2", F)]);
    fx.tenant("small", &[("z5", F)]);
    fx.tenant("calm", &[("z1", F), ("z2", F), ("z3", F)]);
    fx.set_parameter("calm", "enable_rebalance", "False");
    fx.tenant_with(
        "restoring",
        &[("z4", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    let before = snapshot(&fx.cluster);
    let change =
        |tenant: &str, changes: &[ReplicaModify]| fx.cluster.modify_replicas(tenant, changes);
    let unit_num = |zone: &str, num: u32| ReplicaModify {
        unit_num: Some(num),
        ..modify(zone)
    };
    let config = |zone: &str, name: &str| ReplicaModify {
        unit_config_name: Some(name.into()),
        ..modify(zone)
    };
    let kind = |zone: &str, replica_type: ReplicaType| ReplicaModify {
        replica_type: Some(replica_type),
        ..modify(zone)
    };
    check_refusals(vec![
        ("no zones", change("t1", &[]), ("ZoneListEmpty", "Zone list is empty.")),
        ("missing tenant", change("nope", &[modify("z1")]), ("TenantNotFound", "tenant 'nope' does not exist")),
        (
            "restoring tenant",
            change("restoring", &[modify("z4")]),
            ("TenantState", "tenant 'restoring' is RESTORE, the operation needs NORMAL"),
        ),
        (
            "zone without replica",
            change("t1", &[modify("z1"), modify("z4")]),
            ("ZoneWithoutReplica", "Zone 'z4' does not have a replica."),
        ),
        ("repeated zone", change("t1", &[modify("z1"), modify("z1")]), ("ZoneRepeated", "Zone 'z1' is repeated.")),
        (
            "unit num 0",
            change("t1", &[unit_num("z1", 0)]),
            ("UnitNumInvalid", "Unit number '0' is invalid: unit num must be greater than 0"),
        ),
        (
            "more units than servers",
            change("t1", &[unit_num("z1", 3)]),
            ("UnitNumExceedsServers", "unit num '3' is bigger than server num '2' in zone 'z1'"),
        ),
        (
            "unit nums differ",
            change("t1", &[unit_num("z1", 2), unit_num("z2", 1)]),
            ("UnitNumInconsistent", "Unit number is inconsistent, should be the same in all zones."),
        ),
        ("no unit config name", change("t1", &[config("z1", "")]), ("UnitConfigNameEmpty", "Unit config name is empty.")),
        (
            "missing unit config",
            change("t1", &[config("z1", "s9")]),
            ("UnitConfigNotFound", "unit config 's9' does not exist"),
        ),
        (
            "unit num of some zones",
            change("t1", &[unit_num("z1", 2), unit_num("z2", 2)]),
            ("ModifyUnitNumPartially", "Cannot modify unit number partially."),
        ),
        (
            "unit num with rebalance off",
            change("calm", &[unit_num("z1", 2), unit_num("z2", 2), unit_num("z3", 2)]),
            (
                "RebalanceDisabled",
                "modify unit num is not allowed when tenant 'enable_rebalance' is disabled.",
            ),
        ),
        (
            "two FULL to one",
            change("two", &[kind("z2", R)]),
            ("LocalityPrincipalNotAllowed", "Violate locality principal not allowed."),
        ),
        (
            "no FULL left",
            change("two", &[kind("z1", R), kind("z2", R)]),
            ("LocalityPrincipalNotAllowed", "Violate locality principal not allowed."),
        ),
        (
            "RANDOM's first priority shrinks",
            change("calm", &[kind("z3", R)]),
            (
                "RebalanceDisabled",
                "Change first priority zone of locality is not allowed when tenant 'enable_rebalance' is disabled.",
            ),
        ),
        (
            "the server cannot hold the bigger unit",
            change("small", &[config("z5", "big")]),
            ("MachineResourceNotEnough", "machine resource 'z5' is not enough to hold a new unit"),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
    // The same unit num everywhere is no change, so it is no partial change either; and
    // s2 fills the small server exactly.
    change("t1", &[unit_num("z1", 1)]).unwrap();
    change("small", &[config("z5", "s2")]).unwrap();
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2851"), (4.0, 8 * GIB, 1));
}

// ---- variables and parameters ----

#[test]
fn variables_are_set_read_and_normalized() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    fx.clock.advance(Duration::seconds(7));
    let tenant = fx
        .cluster
        .set_variables(
            "t1",
            &map(&[
                ("Read_Only", "ON"),
                (
                    "ob_tcp_invited_nodes",
                    &catalog::merge_whitelist("10.1.1.1,10.1.1.2"),
                ),
                ("time_zone", "+8:00"),
                ("tx_isolation", "repeatable-read"),
                ("sql_mode", "ansi_quotes"),
                ("max_allowed_packet", "1073741824"),
            ]),
        )
        .unwrap();
    assert!(tenant.read_only);
    assert_eq!(tenant.updated_at, start() + Duration::seconds(7));
    let expected = [
        ("max_allowed_packet", "1073741824"),
        ("ob_tcp_invited_nodes", "10.1.1.1,10.1.1.2,127.0.0.1"),
        ("read_only", "1"),
        ("sql_mode", "ANSI_QUOTES"),
        ("time_zone", "+08:00"),
        ("tx_isolation", "REPEATABLE-READ"),
    ];
    for (name, value) in expected {
        assert_eq!(tenant.variables[name], value, "{name}");
        let row = fx
            .cluster
            .variable("t1", &name.to_ascii_uppercase())
            .unwrap();
        assert_eq!((row.name.as_str(), row.value.as_str()), (name, value));
    }
    let listed = fx.cluster.variables("t1").unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|row| row.name.as_str())
            .collect::<Vec<_>>(),
        VARIABLES.iter().map(|def| def.name).collect::<Vec<_>>()
    );
    assert_eq!(
        listed
            .iter()
            .find(|row| row.name == "read_only")
            .unwrap()
            .value,
        "1"
    );
    assert_eq!(
        listed
            .iter()
            .find(|row| row.name == "autocommit")
            .unwrap()
            .value,
        "1"
    );

    // Idempotent: the same values again do not even touch the record.
    fx.clock.advance(Duration::seconds(1));
    let again = fx
        .cluster
        .set_variables("t1", &map(&[("read_only", "1"), ("time_zone", "+08:00")]))
        .unwrap();
    assert_eq!(again, tenant);
    // read_only off again follows into the field; an empty map changes nothing.
    assert!(
        !fx.cluster
            .set_variables("t1", &map(&[("read_only", "0")]))
            .unwrap()
            .read_only
    );
    let now = fx.get("t1");
    assert_eq!(
        fx.cluster.set_variables("t1", &BTreeMap::new()).unwrap(),
        now
    );
}

#[test]
fn variable_refusals() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    fx.tenant("locked", &[("z2", F)]);
    fx.cluster.set_tenant_locked("locked", true).unwrap();
    fx.tenant_with(
        "restoring",
        &[("z3", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    let before = snapshot(&fx.cluster);
    let set = |tenant: &str, pairs: &[(&str, &str)]| fx.cluster.set_variables(tenant, &map(pairs));
    check_refusals(vec![
        ("empty name", set("t1", &[("", "1")]), ("VariableEmpty", "Tenant variable name or value is empty.")),
        ("unknown", set("t1", &[("no_such_var", "1")]), ("VariableNotExist", "Tenant variable 'no_such_var' does not exist.")),
        (
            "not an integer",
            set("t1", &[("ob_query_timeout", "soon")]),
            ("VariableInvalid", "Tenant variable 'ob_query_timeout' is invalid: value 'soon' is not an integer."),
        ),
        (
            "out of range",
            set("t1", &[("max_allowed_packet", "100")]),
            (
                "VariableInvalid",
                "Tenant variable 'max_allowed_packet' is invalid: value '100' is out of range [1024, 1073741824].",
            ),
        ),
        (
            "not a boolean",
            set("t1", &[("autocommit", "2")]),
            ("VariableInvalid", "Tenant variable 'autocommit' is invalid: value '2' is not a boolean."),
        ),
        (
            "not in the enumeration",
            set("t1", &[("ob_read_consistency", "EVENTUAL")]),
            (
                "VariableInvalid",
                "Tenant variable 'ob_read_consistency' is invalid: value 'EVENTUAL' is not one of FROZEN, WEAK, STRONG.",
            ),
        ),
        (
            "one bad value spoils the lot",
            set("t1", &[("autocommit", "0"), ("wait_timeout", "-1")]),
            (
                "VariableInvalid",
                "Tenant variable 'wait_timeout' is invalid: value '-1' is out of range [1, 31536000].",
            ),
        ),
        (
            "create only",
            set("t1", &[("lower_case_table_names", "0")]),
            (
                "VariableInvalid",
                "Tenant variable 'lower_case_table_names' is invalid: it can only be set when the tenant is created.",
            ),
        ),
        (
            "read only",
            set("t1", &[("ob_compatibility_mode", "MYSQL")]),
            ("VariableInvalid", "Tenant variable 'ob_compatibility_mode' is invalid: it is read only."),
        ),
        ("missing tenant", set("nope", &[("autocommit", "1")]), ("TenantNotFound", "tenant 'nope' does not exist")),
        (
            "restoring tenant",
            set("restoring", &[("autocommit", "1")]),
            ("TenantState", "tenant 'restoring' is RESTORE, the operation needs NORMAL"),
        ),
        (
            "locked tenant, a variable set over a tenant connection",
            set("locked", &[("collation_server", "utf8mb4_bin")]),
            ("TenantLocked", "Tenant locked is locked"),
        ),
    ]);
    check_refusals(vec![
        (
            "get: empty name",
            fx.cluster.variable("t1", " "),
            ("VariableNameEmpty", "Tenant variable name is empty."),
        ),
        (
            "get: unknown",
            fx.cluster.variable("t1", "nope"),
            ("VariableNotExist", "Tenant variable 'nope' does not exist."),
        ),
        (
            "get: missing tenant",
            fx.cluster.variable("nope", "autocommit"),
            ("TenantNotFound", "tenant 'nope' does not exist"),
        ),
    ]);
    check_refusals(vec![(
        "list: missing tenant",
        fx.cluster.variables("nope"),
        ("TenantNotFound", "tenant 'nope' does not exist"),
    )]);
    assert_eq!(snapshot(&fx.cluster), before);
    // A locked tenant takes what the sys tenant sets; reads accept any tenant.
    let locked = fx
        .cluster
        .set_variables("locked", &map(&[("time_zone", "SYSTEM")]))
        .unwrap();
    assert_eq!(locked.variables["time_zone"], "SYSTEM");
    assert_eq!(
        fx.cluster
            .variable("restoring", "autocommit")
            .unwrap()
            .value,
        "1"
    );
}

#[test]
fn parameters_are_set_read_and_refused() {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    fx.tenant_with(
        "restoring",
        &[("z2", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    let gone = fx.tenant("gone", &[("z3", F)]);
    let recycled = fx.cluster.recycle_tenant(gone.id).unwrap();
    let tenant = fx
        .cluster
        .set_parameters(
            "t1",
            &map(&[
                ("HA_HIGH_THREAD_SCORE", "50"),
                ("enable_rebalance", "off"),
                ("cpu_quota_concurrency", "2.50"),
                ("max_stale_time_for_weak_consistency", "10S"),
                ("lob_enable_block_cache_threshold", "1m"),
                ("default_auto_increment_mode", "NOORDER"),
            ]),
        )
        .unwrap();
    assert_eq!(
        tenant.parameters,
        map(&[
            ("cpu_quota_concurrency", "2.5"),
            ("default_auto_increment_mode", "noorder"),
            ("enable_rebalance", "False"),
            ("ha_high_thread_score", "50"),
            ("lob_enable_block_cache_threshold", "1M"),
            ("max_stale_time_for_weak_consistency", "10s"),
        ])
    );
    assert!(!tenant.rebalance_enabled());
    assert_eq!(
        fx.cluster.parameter("t1", "ha_high_thread_score").unwrap(),
        TenantParameter {
            name: "ha_high_thread_score".into(),
            value: "50".into(),
            data_type: "INT".into(),
            info: "the current work thread score of high availability high thread. Range: [0,100] in integer. Especially, 0 means default value".into(),
            edit_level: "DYNAMIC_EFFECTIVE".into(),
        }
    );
    let listed = fx.cluster.parameters("t1").unwrap();
    assert_eq!(
        listed
            .iter()
            .find(|row| row.name == "major_freeze_duty_time")
            .unwrap()
            .value,
        "02:00"
    );
    // Idempotent.
    fx.clock.advance(Duration::seconds(1));
    assert_eq!(
        fx.cluster
            .set_parameters("t1", &map(&[("enable_rebalance", "false")]))
            .unwrap(),
        tenant
    );
    // A restoring tenant takes parameters (OceanBase's ALTER SYSTEM SET .. TENANT).
    let restoring = fx
        .cluster
        .set_parameters("restoring", &map(&[("ha_high_thread_score", "8")]))
        .unwrap();
    assert_eq!(restoring.parameters["ha_high_thread_score"], "8");

    let before = snapshot(&fx.cluster);
    let set = |tenant: &str, pairs: &[(&str, &str)]| fx.cluster.set_parameters(tenant, &map(pairs));
    check_refusals(vec![
        ("empty name", set("t1", &[("", "1")]), ("ParameterEmpty", "Tenant parameter name or value is empty.")),
        ("unknown", set("t1", &[("no_such", "1")]), ("ParameterNotExist", "Tenant parameter 'no_such' does not exist.")),
        (
            "out of range",
            set("t1", &[("log_disk_utilization_threshold", "100")]),
            (
                "ParameterInvalid",
                "The input parameter 'log_disk_utilization_threshold' is illegal: value '100' is out of range [10, 99]",
            ),
        ),
        (
            "not a boolean",
            set("t1", &[("enable_rebalance", "sometimes")]),
            ("ParameterInvalid", "The input parameter 'enable_rebalance' is illegal: value 'sometimes' is not a boolean"),
        ),
        (
            "not a moment",
            set("t1", &[("major_freeze_duty_time", "25:00")]),
            (
                "ParameterInvalid",
                "The input parameter 'major_freeze_duty_time' is illegal: value '25:00' is not HH:MM in [00:00, 24:00) or disable",
            ),
        ),
        (
            "time below its minimum",
            set("t1", &[("merger_check_interval", "5s")]),
            ("ParameterInvalid", "The input parameter 'merger_check_interval' is illegal: value '5s' is out of range"),
        ),
        ("missing tenant", set("nope", &[("undo_retention", "1")]), ("TenantNotFound", "tenant 'nope' does not exist")),
        (
            "recycled tenant",
            set(&recycled.name, &[("undo_retention", "1")]),
            (
                "TenantState",
                format!("tenant '{}' is in the recycle bin, the operation needs NORMAL or RESTORE", recycled.name).as_str(),
            ),
        ),
    ]);
    check_refusals(vec![
        (
            "get: empty name",
            fx.cluster.parameter("t1", ""),
            ("ParameterNameEmpty", "Tenant parameter name is empty."),
        ),
        (
            "get: unknown",
            fx.cluster.parameter("t1", "nope"),
            (
                "ParameterNotExist",
                "Tenant parameter 'nope' does not exist.",
            ),
        ),
        (
            "get: missing tenant",
            fx.cluster.parameter("nope", "undo_retention"),
            ("TenantNotFound", "tenant 'nope' does not exist"),
        ),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
}

// ---- root password ----

#[test]
fn root_password_lifecycle() {
    let fx = fixture();
    let options = TenantOptions {
        root_password: Some(Secret::new("first-Pw1")),
        ..TenantOptions::default()
    };
    let created = fx.tenant_with("t1", &[("z1", F)], "RANDOM", TenantStatus::Normal, &options);
    let verifier = created.root_password.clone().unwrap();
    assert_eq!(
        (verifier.kdf.as_str(), verifier.iterations),
        ("PBKDF2-HMAC-SHA256", TEST_KDF_ITERATIONS)
    );
    assert!(created.root_password_persisted);
    assert!(fx.cluster.check_root_password("t1", "first-Pw1").unwrap());
    assert!(!fx.cluster.check_root_password("t1", "first-pw1").unwrap());
    assert!(!fx.cluster.check_root_password("t1", "").unwrap());

    check_refusals(vec![
        (
            "wrong old password",
            fx.cluster.set_root_password("t1", "second", Some("guess")),
            (
                "RootPasswordIncorrect",
                "The provided password is unable to connect to the tenant",
            ),
        ),
        (
            "no old password while one is set",
            fx.cluster.set_root_password("t1", "second", None),
            (
                "RootPasswordIncorrect",
                "The provided password is unable to connect to the tenant",
            ),
        ),
    ]);
    assert_eq!(fx.get("t1"), created);

    let changed = fx
        .cluster
        .set_root_password("t1", "second", Some("first-Pw1"))
        .unwrap();
    assert_ne!(changed.root_password, created.root_password);
    assert!(!changed.root_password_persisted);
    assert!(fx.cluster.check_root_password("t1", "second").unwrap());
    assert!(!fx.cluster.check_root_password("t1", "first-Pw1").unwrap());
    // A re-executed step (its old password is stale now) converges without a change.
    assert_eq!(
        fx.cluster
            .set_root_password("t1", "second", Some("first-Pw1"))
            .unwrap(),
        changed
    );

    check_refusals(vec![(
        "persist a wrong password",
        fx.cluster.persist_root_password("t1", "first-Pw1"),
        (
            "RootPasswordIncorrect",
            "The provided password is unable to connect to the tenant",
        ),
    )]);
    let persisted = fx.cluster.persist_root_password("t1", "second").unwrap();
    assert!(persisted.root_password_persisted);
    assert_eq!(persisted.root_password, changed.root_password);
    assert_eq!(
        fx.cluster.persist_root_password("t1", "second").unwrap(),
        persisted
    );

    // Clearing the password: no verifier, the empty password logs in, and a password
    // given as the old one is wrong now.
    let cleared = fx
        .cluster
        .set_root_password("t1", "", Some("second"))
        .unwrap();
    assert_eq!(cleared.root_password, None);
    assert!(fx.cluster.check_root_password("t1", "").unwrap());
    check_refusals(vec![(
        "old password given while none is set",
        fx.cluster.set_root_password("t1", "third", Some("second")),
        (
            "RootPasswordIncorrect",
            "The provided password is unable to connect to the tenant",
        ),
    )]);
    let third = fx.cluster.set_root_password("t1", "third", None).unwrap();
    assert!(third.root_password.is_some());
    assert!(fx.cluster.check_root_password("t1", "third").unwrap());
    let fourth = fx
        .cluster
        .set_root_password("t1", "fourth", Some("third"))
        .unwrap();
    assert!(fx.cluster.check_root_password("t1", "fourth").unwrap());
    assert_ne!(fourth.root_password, third.root_password);
}

#[test]
fn root_password_refusals_by_tenant_state() {
    let fx = fixture();
    let options = TenantOptions {
        root_password: Some(Secret::new("pw")),
        ..TenantOptions::default()
    };
    fx.tenant_with(
        "locked",
        &[("z1", F)],
        "RANDOM",
        TenantStatus::Normal,
        &options,
    );
    fx.cluster.set_tenant_locked("locked", true).unwrap();
    fx.tenant_with(
        "restoring",
        &[("z2", F)],
        "RANDOM",
        TenantStatus::Restore,
        &options,
    );
    let before = snapshot(&fx.cluster);
    check_refusals(vec![
        (
            "set on a locked tenant",
            fx.cluster.set_root_password("locked", "new", Some("pw")),
            ("TenantLocked", "Tenant locked is locked"),
        ),
        (
            "persist on a locked tenant",
            fx.cluster.persist_root_password("locked", "pw"),
            ("TenantLocked", "Tenant locked is locked"),
        ),
        (
            "set on a restoring tenant",
            fx.cluster.set_root_password("restoring", "new", Some("pw")),
            (
                "TenantState",
                "tenant 'restoring' is RESTORE, the operation needs NORMAL",
            ),
        ),
        (
            "set on a missing tenant",
            fx.cluster.set_root_password("nope", "new", None),
            ("TenantNotFound", "tenant 'nope' does not exist"),
        ),
        (
            "persist on a missing tenant",
            fx.cluster.persist_root_password("nope", "pw"),
            ("TenantNotFound", "tenant 'nope' does not exist"),
        ),
    ]);
    check_refusals(vec![(
        "check on a missing tenant",
        fx.cluster.check_root_password("nope", "pw"),
        ("TenantNotFound", "tenant 'nope' does not exist"),
    )]);
    assert_eq!(snapshot(&fx.cluster), before);
    // Checking is a read: the lock does not matter.
    assert!(fx.cluster.check_root_password("locked", "pw").unwrap());
    // Unlocking is always possible, and then the password can change.
    fx.cluster.set_tenant_locked("locked", false).unwrap();
    fx.cluster
        .set_root_password("locked", "new", Some("pw"))
        .unwrap();
}

#[test]
fn root_password_verifiers_use_the_default_iterations_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(db_path(&dir)).unwrap();
    let cluster = SledCluster::new(
        &db,
        db_path(&dir).with_extension("rows"),
        &config(),
        Arc::new(ManualClock::new(start())),
    )
    .unwrap();
    cluster
        .create_pools(&[pool_spec("p", "s1", &["z1"])], "setup")
        .unwrap();
    let tenant = cluster
        .create_tenant_with(
            &new_tenant(
                "t1",
                &[("z1", F)],
                "RANDOM",
                TenantStatus::Normal,
                vec!["p".into()],
            ),
            &TenantOptions {
                root_password: Some(Secret::new("pw")),
                ..TenantOptions::default()
            },
            "setup",
        )
        .unwrap();
    assert_eq!(ROOT_PASSWORD_KDF_ITERATIONS, 100_000);
    assert_eq!(
        tenant.root_password.unwrap().iterations,
        ROOT_PASSWORD_KDF_ITERATIONS
    );
    // A verifier keeps its own count: a cluster with another default still checks it.
    let cluster = cluster.with_password_kdf_iterations(TEST_KDF_ITERATIONS);
    assert!(cluster.check_root_password("t1", "pw").unwrap());
}

#[test]
fn root_passwords_never_reach_the_store() {
    let fx = fixture();
    let passwords = ["Pa55-first-7f3a", "Pa55-second-9c1e", "Pa55-third-2b8d"];
    // The comment is a control: stored in plain text, the scans must find it.
    let marker = "marker-4e7d1c-comment";
    let options = TenantOptions {
        comment: marker.into(),
        root_password: Some(Secret::new(passwords[0])),
        ..TenantOptions::default()
    };
    let tenant = fx.tenant_with("t1", &[("z1", F)], "RANDOM", TenantStatus::Normal, &options);
    fx.cluster
        .set_root_password("t1", passwords[1], Some(passwords[0]))
        .unwrap();
    fx.cluster
        .persist_root_password("t1", passwords[1])
        .unwrap();
    fx.cluster
        .set_root_password("t1", passwords[2], Some(passwords[1]))
        .unwrap();
    assert!(!format!("{tenant:?}").contains(&tenant.root_password.as_ref().unwrap().verifier_hex));
    let contains = |haystack: &[u8], needle: &str| {
        haystack
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };

    // Every key and value of every tree of the database.
    let db = fx.cluster.db();
    db.flush().unwrap();
    let mut stored = Vec::new();
    for name in db.tree_names() {
        for entry in db.open_tree(&name).unwrap().iter() {
            let (key, value) = entry.unwrap();
            stored.extend_from_slice(&key);
            stored.push(0);
            stored.extend_from_slice(&value);
            stored.push(0);
        }
    }
    assert!(contains(&stored, marker));
    for password in passwords {
        assert!(!contains(&stored, password), "{password} in a sled tree");
    }

    // And every byte the cluster wrote to disk (log, snapshots, row files).
    let fx = fx.reopened();
    let mut files = Vec::new();
    let mut pending = vec![fx.dir.path().to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                files.extend(std::fs::read(entry.path()).unwrap());
            }
        }
    }
    assert!(contains(&files, marker));
    for password in passwords {
        assert!(!contains(&files, password), "{password} in a file");
    }
    assert!(fx.cluster.check_root_password("t1", passwords[2]).unwrap());
}

// ---- durability ----

#[test]
fn administration_survives_reopen() {
    let fx = fixture();
    let options = TenantOptions {
        root_password: Some(Secret::new("pw-1")),
        ..TenantOptions::default()
    };
    fx.tenant_with(
        "t1",
        &[("z1", F), ("z2", F)],
        "RANDOM",
        TenantStatus::Normal,
        &options,
    );
    fx.cluster.rename_tenant("t1", "orders").unwrap();
    fx.cluster
        .add_replicas("orders", &[replica("z3", R, "s1", 1)], "dag-1")
        .unwrap();
    fx.cluster
        .modify_replicas(
            "orders",
            &[
                ReplicaModify {
                    unit_config_name: Some("s2".into()),
                    unit_num: Some(2),
                    ..modify("z1")
                },
                ReplicaModify {
                    unit_num: Some(2),
                    ..modify("z2")
                },
                ReplicaModify {
                    unit_num: Some(2),
                    replica_type: Some(F),
                    ..modify("z3")
                },
            ],
        )
        .unwrap();
    fx.cluster
        .remove_replicas("orders", &zones(&["z2"]))
        .unwrap();
    fx.cluster.set_primary_zone("orders", "z3;z1").unwrap();
    fx.cluster
        .set_variables("orders", &map(&[("ob_query_timeout", "30000000")]))
        .unwrap();
    fx.cluster
        .set_parameters("orders", &map(&[("undo_retention", "900")]))
        .unwrap();
    fx.cluster
        .set_root_password("orders", "pw-2", Some("pw-1"))
        .unwrap();
    fx.cluster.persist_root_password("orders", "pw-2").unwrap();
    let before = snapshot(&fx.cluster);

    let fx = fx.reopened();
    assert_eq!(snapshot(&fx.cluster), before);
    let tenant = fx.get("orders");
    assert_eq!(tenant.locality(), "FULL{1}@z1, FULL{1}@z3");
    assert_eq!(tenant.primary_zone, "z3;z1");
    assert_eq!(
        fx.cluster
            .variable("orders", "ob_query_timeout")
            .unwrap()
            .value,
        "30000000"
    );
    assert_eq!(
        fx.cluster
            .parameter("orders", "undo_retention")
            .unwrap()
            .value,
        "900"
    );
    assert!(tenant.root_password_persisted);
    assert!(fx.cluster.check_root_password("orders", "pw-2").unwrap());
    assert_eq!(fx.cluster.tenant("t1").unwrap(), None);
    // z1's pool holds 2 units of s2, z3's 2 of s1; z2 gave everything back.
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2811"), (4.0, 8 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2812"), (4.0, 8 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2821"), (0.0, 0, 0));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2822"), (0.0, 0, 0));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2831"), (2.0, 4 * GIB, 1));
    assert_eq!(usage(&fx.cluster, "127.0.0.1:2832"), (2.0, 4 * GIB, 1));
}

// ---- error texts ----

#[test]
fn new_errors_carry_obshell_texts() {
    use ClusterError::*;
    let cases: Vec<(ClusterError, &str)> = vec![
        (TenantNameEmpty, "Tenant name is empty"),
        (TenantNameInvalid { name: "a b".into(), reason: "why".into() }, "Tenant name 'a b' is invalid: why"),
        (TenantLocked("t".into()), "Tenant t is locked"),
        (ZoneListEmpty, "Zone list is empty."),
        (ZoneRepeated("z".into()), "Zone 'z' is repeated."),
        (UnitConfigNameEmpty, "Unit config name is empty."),
        (UnitNumInvalid { unit_num: 0, reason: "why".into() }, "Unit number '0' is invalid: why"),
        (UnitNumInconsistent, "Unit number is inconsistent, should be the same in all zones."),
        (ModifyUnitNumPartially, "Cannot modify unit number partially."),
        (ZoneAlreadyHasReplica("z".into()), "Zone 'z' already has a replica."),
        (ZoneWithoutReplica("z".into()), "Zone 'z' does not have a replica."),
        (HasPoolOnZone("z".into()), "Tenant already has a pool located in zone 'z'."),
        (ReplicaOnlyOne("t".into()), "Tenant 't' only has one replica"),
        (ReplicaDeleteAll, "Cannot delete all replicas"),
        (LocalityPrincipalNotAllowed, "Violate locality principal not allowed."),
        (
            PrimaryZoneInvalid { primary_zone: "z9".into(), reason: "why".into() },
            "Primary zone 'z9' is invalid: why.",
        ),
        (
            PrimaryZoneCrossRegion("z1,z4".into()),
            "Primary zone 'z1,z4' crosses regions, please check tenant's primary zone.",
        ),
        (
            PrimaryRegionFullReplicaNotEnough { region: "r".into(), full_replicas: 1 },
            "The region r where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only 1 full replicas.",
        ),
        (
            RebalanceDisabled { operation: "X".into() },
            "X is not allowed when tenant 'enable_rebalance' is disabled.",
        ),
        (
            RootPasswordIncorrect { tenant: "t".into() },
            "The provided password is unable to connect to the tenant",
        ),
        (VariableEmpty, "Tenant variable name or value is empty."),
        (VariableNameEmpty, "Tenant variable name is empty."),
        (VariableNotExist("v".into()), "Tenant variable 'v' does not exist."),
        (VariableInvalid { name: "v".into(), reason: "why".into() }, "Tenant variable 'v' is invalid: why."),
        (ParameterEmpty, "Tenant parameter name or value is empty."),
        (ParameterNameEmpty, "Tenant parameter name is empty."),
        (ParameterNotExist("p".into()), "Tenant parameter 'p' does not exist."),
        (
            ParameterInvalid { name: "p".into(), reason: "why".into() },
            "The input parameter 'p' is illegal: why",
        ),
        (
            CharsetCollationInvalid { charset: None, collation: Some("c".into()) },
            "Collation 'c' is not exist.",
        ),
    ];
    for (err, message) in cases {
        assert_eq!(err.to_string(), message, "{err:?}");
    }
}
