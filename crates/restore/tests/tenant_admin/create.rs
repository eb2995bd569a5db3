//! Create options: obshell's defaults, options recorded, options checked before
//! anything is written, and records from before tenant administration.

use std::collections::BTreeMap;

use obrestore_restore::cluster::catalog::{PARAMETERS, VARIABLES};
use obrestore_restore::cluster::{
    Tenant, TenantMode, TenantOptions, TenantParameter, TenantStatus, TenantVariable,
};
use obrestore_restore::{Secret, TenantService};

use crate::fixture::*;

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

/// Creates tenant t1 on pool p1 with each case's options, checks that each is refused
/// as expected, and that nothing was written.
fn check_create_refusals(cases: Vec<(&str, TenantOptions, Expected<'_>)>) {
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
    check_refusals(
        cases
            .into_iter()
            .map(|(label, options, expected)| {
                let result = fx.cluster.create_tenant_with(&new, &options, "setup");
                (label, result, expected)
            })
            .collect(),
    );
    assert_eq!(snapshot(&fx.cluster), before);
    assert_eq!(fx.cluster.tenant("t1").unwrap(), None);
}

fn with_variables(pairs: &[(&str, &str)]) -> TenantOptions {
    TenantOptions {
        variables: map(pairs),
        ..TenantOptions::default()
    }
}

fn with_parameters(pairs: &[(&str, &str)]) -> TenantOptions {
    TenantOptions {
        parameters: map(pairs),
        ..TenantOptions::default()
    }
}

#[test]
fn create_tenant_charsets_are_checked_before_anything_is_written() {
    check_create_refusals(vec![
        (
            "unknown charset",
            TenantOptions {
                charset: Some("ascii".into()),
                ..TenantOptions::default()
            },
            ("CharsetCollationInvalid", "Charset 'ascii' is not exist."),
        ),
        (
            "unknown collation",
            TenantOptions {
                collation: Some("klingon_ci".into()),
                ..TenantOptions::default()
            },
            (
                "CharsetCollationInvalid",
                "Collation 'klingon_ci' is not exist.",
            ),
        ),
        (
            "charset and collation mismatch",
            TenantOptions {
                charset: Some("gbk".into()),
                collation: Some("utf8mb4_bin".into()),
                ..TenantOptions::default()
            },
            (
                "CharsetCollationInvalid",
                "Charset 'gbk' and Collation 'utf8mb4_bin' is not match.",
            ),
        ),
    ]);
}

#[test]
fn create_tenant_variables_are_checked_before_anything_is_written() {
    check_create_refusals(vec![
        (
            "empty variable name",
            with_variables(&[("", "1")]),
            ("VariableEmpty", "Tenant variable name or value is empty."),
        ),
        (
            "unknown variable",
            with_variables(&[("no_such_variable", "1")]),
            ("VariableNotExist", "Tenant variable 'no_such_variable' does not exist."),
        ),
        (
            "bad variable value",
            with_variables(&[("wait_timeout", "0")]),
            (
                "VariableInvalid",
                "Tenant variable 'wait_timeout' is invalid: value '0' is out of range [1, 31536000].",
            ),
        ),
        (
            "read-only variable",
            with_variables(&[("ob_compatibility_mode", "ORACLE")]),
            (
                "VariableInvalid",
                "Tenant variable 'ob_compatibility_mode' is invalid: it is read only.",
            ),
        ),
        (
            "bad whitelist",
            TenantOptions {
                whitelist: Some("10.0.0.1;drop".into()),
                ..TenantOptions::default()
            },
            (
                "VariableInvalid",
                "Tenant variable 'ob_tcp_invited_nodes' is invalid: '10.0.0.1;drop' is not an IP address, a CIDR block or a %/_ pattern.",
            ),
        ),
    ]);
}

#[test]
fn create_tenant_parameters_are_checked_before_anything_is_written() {
    check_create_refusals(vec![
        (
            "empty parameter name",
            with_parameters(&[(" ", "1")]),
            ("ParameterEmpty", "Tenant parameter name or value is empty."),
        ),
        (
            "unknown parameter",
            with_parameters(&[("no_such_parameter", "1")]),
            ("ParameterNotExist", "Tenant parameter 'no_such_parameter' does not exist."),
        ),
        (
            "bad parameter value",
            with_parameters(&[("ha_high_thread_score", "101")]),
            (
                "ParameterInvalid",
                "The input parameter 'ha_high_thread_score' is illegal: value '101' is out of range [0, 100]",
            ),
        ),
    ]);
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
