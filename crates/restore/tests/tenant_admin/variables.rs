//! System variables and tenant parameters: set, read, normalized, refused.

use std::collections::BTreeMap;

use chrono::Duration;
use obrestore_restore::cluster::catalog::{self, VARIABLES};
use obrestore_restore::cluster::{Tenant, TenantOptions, TenantParameter, TenantStatus};
use obrestore_restore::TenantService;

use crate::fixture::*;

/// Tenant t1, whose variables are set 7 seconds after its creation: read_only, the
/// whitelist, time zone, isolation, SQL mode and packet size, in various spellings.
fn t1_with_variables_set(fx: &Fixture) -> Tenant {
    fx.tenant("t1", &[("z1", F)]);
    fx.clock.advance(Duration::seconds(7));
    fx.cluster
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
        .unwrap()
}

#[test]
fn variables_are_set_read_and_normalized() {
    let fx = fixture();
    let tenant = t1_with_variables_set(&fx);
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
}

#[test]
fn setting_variables_is_idempotent() {
    let fx = fixture();
    let tenant = t1_with_variables_set(&fx);
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

/// Tenants t1, `locked` (locked) and `restoring` (RESTORE).
fn variable_refusal_fixture() -> Fixture {
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
    fx
}

#[test]
fn variable_refusals() {
    let fx = variable_refusal_fixture();
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
    assert_eq!(snapshot(&fx.cluster), before);
    // A locked tenant takes what the sys tenant sets.
    let locked = fx
        .cluster
        .set_variables("locked", &map(&[("time_zone", "SYSTEM")]))
        .unwrap();
    assert_eq!(locked.variables["time_zone"], "SYSTEM");
}

#[test]
fn variable_read_refusals() {
    let fx = variable_refusal_fixture();
    let before = snapshot(&fx.cluster);
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
    // Reads accept any tenant.
    assert_eq!(
        fx.cluster
            .variable("restoring", "autocommit")
            .unwrap()
            .value,
        "1"
    );
}

/// Tenants t1 and `restoring` (RESTORE).
fn parameter_fixture() -> Fixture {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    fx.tenant_with(
        "restoring",
        &[("z2", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    fx
}

#[test]
fn parameters_are_set_and_read() {
    let fx = parameter_fixture();
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
}

#[test]
fn parameter_refusals() {
    let fx = parameter_fixture();
    let gone = fx.tenant("gone", &[("z3", F)]);
    let recycled = fx.cluster.recycle_tenant(gone.id).unwrap();
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
