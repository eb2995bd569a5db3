//! Every RestoreParam rule of SPEC §4.1: exact message, field and errCode, and the
//! order in which rules are checked.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use obrestore_restore::cluster::ServerSeed;
use obrestore_restore::cluster::{
    NewTenant, NewUnitConfig, PoolSpec, ReplicaType, TenantRole, TenantStatus, TenantZone, GIB,
};
use obrestore_restore::{
    ClusterConfig, ManualClock, RestoreParam, RestoreParamError, RestorePoint, RestoreSecrets,
    Secret, SledCluster, TenantService, ValidatedRestore, ValidatedZone, ZoneParam,
};

fn cluster(dir: &tempfile::TempDir) -> SledCluster {
    let db = sled::open(dir.path().join("db")).unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2024, 1, 9, 9, 0, 0).unwrap(),
    ));
    let cluster = SledCluster::new(
        &db,
        dir.path().join("rows"),
        &ClusterConfig::default(),
        clock,
    )
    .unwrap();
    cluster.add_zone("z4", "default").unwrap();
    cluster
        .create_unit_config(&NewUnitConfig {
            name: "huge".into(),
            memory_size: 8 * GIB,
            max_cpu: 32.0,
            min_cpu: None,
            log_disk_size: None,
            max_iops: None,
            min_iops: None,
        })
        .unwrap();
    let pools = cluster
        .create_pools(
            &[PoolSpec {
                name: "existing_pool".into(),
                unit_config_name: "s1".into(),
                unit_num: 1,
                zone_list: vec!["z1".into()],
            }],
            "setup",
        )
        .unwrap();
    cluster
        .create_tenant(
            &NewTenant {
                name: "existing".into(),
                status: TenantStatus::Normal,
                role: TenantRole::Primary,
                data_version: "4.2.1.0".into(),
                primary_zone: "RANDOM".into(),
                zone_list: vec![TenantZone {
                    zone: "z1".into(),
                    replica_type: ReplicaType::Full,
                }],
                pool_names: vec![pools[0].name.clone()],
            },
            "setup",
        )
        .unwrap();
    cluster
}

fn zone(name: &str) -> ZoneParam {
    ZoneParam {
        name: name.into(),
        replica_type: None,
        unit_config_name: "s1".into(),
        unit_num: 1,
    }
}

fn valid_param() -> RestoreParam {
    RestoreParam {
        data_backup_uri: "file:///backup/data".into(),
        restore_tenant_name: "t1".into(),
        zone_list: Some(vec![zone("z1"), zone("z2"), zone("z3")]),
        ..RestoreParam::default()
    }
}

/// The zones of a param under mutation.
fn zones(p: &mut RestoreParam) -> &mut Vec<ZoneParam> {
    p.zone_list.get_or_insert_with(Vec::new)
}

type Mutation = fn(&mut RestoreParam);
type Rule = fn(&RestoreParamError) -> bool;

/// (slot, mutation, message, field, rule), in the order obshell checks them (each
/// zone's static checks before the next zone's, then each zone's cluster checks), then
/// our checks that OceanBase would make later. Mutations of the same slot touch the
/// same field and are not combined in the order test.
const CASES: &[(&str, Mutation, &str, &str, Rule)] = &[
    ("data_uri", |p| p.data_backup_uri = String::new(),
        "Bind JSON failed: Key: 'data_backup_uri' Error:Field validation for 'data_backup_uri' failed on the 'required' tag",
        "data_backup_uri", |e| matches!(e, RestoreParamError::Required { .. })),
    ("name", |p| p.restore_tenant_name = String::new(),
        "Bind JSON failed: Key: 'restore_tenant_name' Error:Field validation for 'restore_tenant_name' failed on the 'required' tag",
        "restore_tenant_name", |e| matches!(e, RestoreParamError::Required { .. })),
    ("zone_list", |p| p.zone_list = None,
        "Bind JSON failed: Key: 'zone_list' Error:Field validation for 'zone_list' failed on the 'required' tag",
        "zone_list", |e| matches!(e, RestoreParamError::Required { .. })),
    ("name", |p| p.restore_tenant_name = "sys".into(),
        "System tenant is not allowed to perform this operation",
        "restore_tenant_name", |e| matches!(e, RestoreParamError::SysTenant)),
    ("name", |p| p.restore_tenant_name = "existing".into(),
        "Tenant existing already exists",
        "restore_tenant_name", |e| matches!(e, RestoreParamError::TenantExists { .. })),
    ("zone_list", |p| zones(p).clear(),
        "Zone list is empty.",
        "zone_list", |e| matches!(e, RestoreParamError::ZoneListEmpty)),
    ("target", |p| {
        p.scn = Some(1_728_727_696_264_250_400);
        p.timestamp = Some(chrono::DateTime::parse_from_rfc3339("2024-10-12T18:08:16.264+08:00").unwrap());
    },
        "The input parameter 'timestamp or scn' is illegal: cannot be set at the same time",
        "timestamp", |e| matches!(e, RestoreParamError::TimestampAndScn)),
    ("score", |p| p.ha_high_thread_score = Some(101),
        "The input parameter 'ha_high_thread_score' is illegal: should be in [0, 100]",
        "ha_high_thread_score", |e| matches!(e, RestoreParamError::HaHighThreadScoreOutOfRange { value: 101 })),
    ("score", |p| p.ha_high_thread_score = Some(-1),
        "The input parameter 'ha_high_thread_score' is illegal: should be in [0, 100]",
        "ha_high_thread_score", |e| matches!(e, RestoreParamError::HaHighThreadScoreOutOfRange { value: -1 })),
    ("unit_num", |p| zones(p)[0].unit_num = 0,
        "Unit number '0' is invalid: unit num should be greater than 0",
        "zone_list[0].unit_num", |e| matches!(e, RestoreParamError::UnitNumInvalid { .. })),
    ("zone1", |p| zones(p)[1].name = "z1".into(),
        "Zone 'z1' is repeated.",
        "zone_list[1].name", |e| matches!(e, RestoreParamError::ZoneRepeated { .. })),
    ("replica", |p| zones(p)[1].replica_type = Some("learner".into()),
        "Replica type 'LEARNER' is not supported",
        "zone_list[1].replica_type", |e| matches!(e, RestoreParamError::ReplicaTypeInvalid { .. })),
    ("unit_num", |p| zones(p)[1].unit_num = 2,
        "Unit number is inconsistent, should be the same in all zones.",
        "zone_list[1].unit_num", |e| matches!(e, RestoreParamError::UnitNumInconsistent { .. })),
    ("config2", |p| zones(p)[2].unit_config_name = String::new(),
        "Unit config name is empty.",
        "zone_list[2].unit_config_name", |e| matches!(e, RestoreParamError::UnitConfigNameEmpty { .. })),
    ("unit_num", |p| zones(p).iter_mut().for_each(|z| z.unit_num = 2),
        "Unit number '2' is bigger than server number '1' in zone 'z1'.",
        "zone_list[0].unit_num", |e| matches!(e, RestoreParamError::UnitNumExceedsServers { .. })),
    ("config1", |p| zones(p)[1].unit_config_name = "nope".into(),
        "Unit config 'nope' does not exist.",
        "zone_list[1].unit_config_name", |e| matches!(e, RestoreParamError::UnitConfigNotExist { .. })),
    ("zone2", |p| zones(p)[2].name = "z9".into(),
        "Zone 'z9' does not exist",
        "zone_list[2].name", |e| matches!(e, RestoreParamError::ZoneNotExist { .. })),
    ("replica", |p| zones(p).iter_mut().for_each(|z| z.replica_type = Some("READONLY".into())),
        "Tenant 't1' has no paxos replica, please check tenant's replica info.",
        "zone_list", |e| matches!(e, RestoreParamError::NoFullReplica { .. })),
    ("primary", |p| p.primary_zone = Some("z1;z9".into()),
        "Primary zone 'z1;z9' is invalid: Zone 'z9' is not in zone_list.",
        "primary_zone", |e| matches!(e, RestoreParamError::PrimaryZoneInvalid { .. })),
    ("primary", |p| p.primary_zone = Some("z1,z2;z1".into()),
        "Primary zone 'z1,z2;z1' is invalid: Zone 'z1' is repeated in primary_zone.",
        "primary_zone", |e| matches!(e, RestoreParamError::PrimaryZoneInvalid { .. })),
    ("config0", |p| zones(p)[0].unit_config_name = "huge".into(),
        "machine resource 'z1' is not enough to hold a new unit",
        "zone_list[0]", |e| matches!(e, RestoreParamError::MachineResourceNotEnough { .. })),
    ("name", |p| p.restore_tenant_name = "Sys".into(),
        "Tenant name 'Sys' is invalid: the name is reserved",
        "restore_tenant_name", |e| matches!(e, RestoreParamError::TenantNameInvalid { .. })),
    ("name", |p| p.restore_tenant_name = "bad name".into(),
        "Tenant name 'bad name' is invalid: tenant names may only contain letters, numbers, and special characters (- _ # ~ +)",
        "restore_tenant_name", |e| matches!(e, RestoreParamError::TenantNameInvalid { .. })),
    ("data_uri", |p| p.data_backup_uri = "s3://bucket/data".into(),
        "The input parameter 'data_backup_uri' is illegal: unsupported storage type 's3' in uri 's3://bucket/data'",
        "data_backup_uri", |e| matches!(e, RestoreParamError::UriInvalid { field: "data_backup_uri", .. })),
    ("archive_uri", |p| p.archive_log_uri = Some("oss://bucket/clog?host=h".into()),
        "The input parameter 'archive_log_uri' is illegal: unsupported storage type 'oss' in uri 'oss://bucket/clog?host=h'",
        "archive_log_uri", |e| matches!(e, RestoreParamError::UriInvalid { field: "archive_log_uri", .. })),
    ("concurrency", |p| p.concurrency = Some(101),
        "The input parameter 'concurrency' is illegal: 101 is out of range, should be in [0, 100]",
        "concurrency", |e| matches!(e, RestoreParamError::ConcurrencyOutOfRange { value: 101 })),
];

#[test]
fn every_rule_reports_its_message_field_and_variant() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    assert!(valid_param().validate(&cluster).is_ok());
    for (_, mutate, message, field, rule) in CASES {
        let mut param = valid_param();
        mutate(&mut param);
        let err = param.validate(&cluster).unwrap_err();
        assert_eq!(err.to_string(), *message);
        assert_eq!(err.field().as_deref(), Some(*field), "{message}");
        assert!(rule(&err), "{message}: got {err:?}");
    }
}

#[test]
fn a_param_breaking_two_rules_reports_the_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    let mut pairs = 0;
    for (earlier_index, (earlier_slot, earlier, message, field, rule)) in CASES.iter().enumerate() {
        for (later_slot, later, later_message, _, _) in &CASES[earlier_index + 1..] {
            if earlier_slot == later_slot {
                continue;
            }
            let mut param = valid_param();
            later(&mut param);
            earlier(&mut param);
            let err = param.validate(&cluster).unwrap_err();
            // The rule is identified by field and variant; the text may name a zone the
            // later mutation renamed.
            assert!(
                err.field().as_deref() == Some(*field) && rule(&err),
                "{message} combined with {later_message}: got {err}"
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 307);
}

#[test]
fn every_failing_required_field_is_named_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    let err = RestoreParam::default().validate(&cluster).unwrap_err();
    match &err {
        RestoreParamError::Required { fields } => assert_eq!(
            fields,
            &["data_backup_uri", "restore_tenant_name", "zone_list"]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string().lines().count(),
        3,
        "one line per field: {err}"
    );
}

#[test]
fn primary_zone_regions_follow_obshell() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    cluster.add_zone("z5", "r2").unwrap();
    cluster
        .add_server(
            "z5",
            &ServerSeed {
                ip: "127.0.0.1".into(),
                port: 2890,
                cpu_capacity: 16.0,
                memory_capacity: 64 * GIB,
            },
        )
        .unwrap();
    let mut param = valid_param();
    zones(&mut param).push(zone("z5"));
    // The first-priority zones must be in one region.
    param.primary_zone = Some("z1,z5;z2".into());
    let err = param.clone().validate(&cluster).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Primary zone 'z1,z5;z2' crosses regions, please check tenant's primary zone."
    );
    assert!(matches!(
        err,
        RestoreParamError::PrimaryZoneCrossRegion { .. }
    ));
    // With two regions, the primary region needs two FULL replicas.
    param.primary_zone = Some("z1".into());
    assert!(param.clone().validate(&cluster).is_ok());
    zones(&mut param)[1].replica_type = Some("READONLY".into());
    zones(&mut param)[2].replica_type = Some("READONLY".into());
    let err = param.clone().validate(&cluster).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The region default where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only 1 full replicas."
    );
    assert_eq!(err.field().as_deref(), Some("primary_zone"));
    // RANDOM over two regions is cross-region.
    param.primary_zone = None;
    assert!(matches!(
        param.validate(&cluster).unwrap_err(),
        RestoreParamError::PrimaryZoneCrossRegion { .. }
    ));
}

#[test]
fn capacity_rule_follows_allocations() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    cluster
        .create_unit_config(&NewUnitConfig {
            name: "half".into(),
            memory_size: 30 * GIB,
            max_cpu: 8.0,
            min_cpu: None,
            log_disk_size: None,
            max_iops: None,
            min_iops: None,
        })
        .unwrap();
    let mut param = valid_param();
    param.zone_list = Some(vec![ZoneParam {
        unit_config_name: "half".into(),
        ..zone("z2")
    }]);
    assert!(param.clone().validate(&cluster).is_ok());
    cluster
        .create_pools(
            &[PoolSpec {
                name: "p".into(),
                unit_config_name: "half".into(),
                unit_num: 1,
                zone_list: vec!["z2".into()],
            }],
            "test",
        )
        .unwrap();
    // 30G + 30G fits in 64G; a third would not, but one more is fine.
    assert!(param.clone().validate(&cluster).is_ok());
    cluster
        .create_pools(
            &[PoolSpec {
                name: "q".into(),
                unit_config_name: "half".into(),
                unit_num: 1,
                zone_list: vec!["z2".into()],
            }],
            "test",
        )
        .unwrap();
    assert_eq!(
        param.validate(&cluster).unwrap_err().to_string(),
        "machine resource 'z2' is not enough to hold a new unit"
    );
}

#[test]
fn zone_without_servers_exceeds_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    let mut param = valid_param();
    param.zone_list = Some(vec![zone("z4")]);
    assert_eq!(
        param.validate(&cluster).unwrap_err().to_string(),
        "Unit number '1' is bigger than server number '0' in zone 'z4'."
    );
}

#[test]
fn defaults_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    let mut param = valid_param();
    zones(&mut param)[2].replica_type = Some("readonly".into());
    param.primary_zone = Some("Random".into());
    param.scn = Some(0);
    param.decryption = vec![Secret::new("pw1"), Secret::new("pw2")];
    let validated = param.validate(&cluster).unwrap();
    let zone = |name: &str, replica_type| ValidatedZone {
        name: name.into(),
        replica_type,
        unit_config_name: "s1".into(),
        unit_num: 1,
        unit_max_cpu: 2.0,
        unit_memory_size: 4 * GIB,
    };
    assert_eq!(
        serde_json::to_value(&validated).unwrap(),
        serde_json::json!({
            "data_backup_uri": "file:///backup/data",
            "archive_log_uri": "file:///backup/data",
            "restore_tenant_name": "t1",
            "target": {"type": "LATEST"},
            "zone_list": [
                {"name": "z1", "replica_type": "FULL", "unit_config_name": "s1", "unit_num": 1,
                 "unit_max_cpu": 2.0, "unit_memory_size": 4294967296u64},
                {"name": "z2", "replica_type": "FULL", "unit_config_name": "s1", "unit_num": 1,
                 "unit_max_cpu": 2.0, "unit_memory_size": 4294967296u64},
                {"name": "z3", "replica_type": "READONLY", "unit_config_name": "s1", "unit_num": 1,
                 "unit_max_cpu": 2.0, "unit_memory_size": 4294967296u64},
            ],
            "primary_zone": "RANDOM",
            "concurrency": 2,
            "ha_high_thread_score": 100,
            "ha_high_threads": 100,
            "decryption_count": 2,
            "has_kms_encrypt_info": false
        })
    );
    assert_eq!(
        validated.zone_list,
        vec![
            zone("z1", ReplicaType::Full),
            zone("z2", ReplicaType::Full),
            zone("z3", ReplicaType::Readonly)
        ]
    );
    assert_eq!(
        validated.secrets(),
        &RestoreSecrets {
            decryption: vec![Secret::new("pw1"), Secret::new("pw2")],
            kms_encrypt_info: None,
        }
    );
    assert_eq!(
        validated.pool_specs(1704762703),
        vec![
            PoolSpec {
                name: "t1_z1_1704762703".into(),
                unit_config_name: "s1".into(),
                unit_num: 1,
                zone_list: vec!["z1".into()]
            },
            PoolSpec {
                name: "t1_z2_1704762703".into(),
                unit_config_name: "s1".into(),
                unit_num: 1,
                zone_list: vec!["z2".into()]
            },
            PoolSpec {
                name: "t1_z3_1704762703".into(),
                unit_config_name: "s1".into(),
                unit_num: 1,
                zone_list: vec!["z3".into()]
            },
        ]
    );
}

#[test]
fn thread_score_and_concurrency_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    let cases = [
        (Some(0), Some(0), 8, 0, 2),
        (Some(10), Some(5), 10, 10, 5),
        (None, None, 100, 100, 2),
        (Some(100), Some(100), 100, 100, 100),
    ];
    for (score, concurrency, threads, resolved_score, resolved_concurrency) in cases {
        let mut param = valid_param();
        param.ha_high_thread_score = score;
        param.concurrency = concurrency;
        let validated = param.validate(&cluster).unwrap();
        assert_eq!(
            (
                validated.ha_high_threads,
                validated.ha_high_thread_score,
                validated.concurrency
            ),
            (threads, resolved_score, resolved_concurrency),
            "{score:?} {concurrency:?}"
        );
    }
}

#[test]
fn json_uses_obshell_names_and_the_time_stamp_alias() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    let body = r#"{
        "data_backup_uri": "file:///data/backup/data",
        "restore_tenant_name": "rt2",
        "time_stamp": "2024-10-12T18:08:16.264250400+08:00",
        "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
        "archive_log_uri": "file:///data/backup/clog",
        "decryption": ["pwd1"],
        "kms_encrypt_info": null,
        "scn": 0
    }"#;
    let param: RestoreParam = serde_json::from_str(body).unwrap();
    let validated = param.validate(&cluster).unwrap();
    let timestamp =
        chrono::DateTime::parse_from_rfc3339("2024-10-12T18:08:16.264250400+08:00").unwrap();
    assert_eq!(
        validated.target,
        RestorePoint::Timestamp {
            timestamp,
            scn: 1_728_727_696_264_250_400
        }
    );
    assert_eq!(validated.target.scn(), Some(1_728_727_696_264_250_400));
    assert_eq!(validated.archive_log_uri, "file:///data/backup/clog");

    // Persisted JSON never holds the password; re-attaching restores it.
    let stored = serde_json::to_string(&validated).unwrap();
    assert!(!stored.contains("pwd1"), "{stored}");
    assert!(!format!("{validated:?}").contains("pwd1"));
    let loaded: ValidatedRestore = serde_json::from_str(&stored).unwrap();
    assert!(loaded.secrets_missing());
    let loaded = loaded.with_secrets(validated.secrets().clone());
    assert!(!loaded.secrets_missing());
    assert_eq!(loaded, validated);
    assert_eq!(loaded.secrets().decryption[0].expose(), "pwd1");

    // "timestamp" works too, and "" means unset.
    let param: RestoreParam = serde_json::from_str(
        r#"{"restore_tenant_name":"a","timestamp":"","zone_list":null,"data_backup_uri":"file:///d"}"#,
    )
    .unwrap();
    assert_eq!(param.timestamp, None);
    // `null` is "missing" (a binding error), unlike `[]`.
    assert!(param.zone_list.is_none());
    let bad = serde_json::from_str::<RestoreParam>(r#"{"timestamp":"yesterday"}"#).unwrap_err();
    assert!(
        bad.to_string()
            .starts_with("timestamp 'yesterday' is not RFC 3339"),
        "{bad}"
    );
}

#[test]
fn tenant_zone_locality_of_validated_restore() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = cluster(&dir);
    let mut param = valid_param();
    zones(&mut param)[1].replica_type = Some("READONLY".into());
    param.primary_zone = Some("z1;z3".into());
    let validated = param.validate(&cluster).unwrap();
    let tenant = validated.restoring_tenant(vec!["p1".into()], "4.2.1.0");
    assert_eq!(tenant.status, TenantStatus::Restore);
    assert_eq!(tenant.role, TenantRole::Standby);
    assert_eq!(tenant.primary_zone, "z1;z3");
    assert_eq!(
        obrestore_restore::cluster::locality(&tenant.zone_list),
        "FULL{1}@z1, READONLY{1}@z2, FULL{1}@z3"
    );
}
