//! The system variables (`CDB_OB_SYS_VARIABLES`): their names, defaults, types and
//! when they can be set, and the check of a set of values before any is applied.

use std::collections::BTreeMap;

use super::values::{BoolStyle, ValueKind};
use super::DEFAULT_WHITELIST;
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::DEFAULT_CHARSET;

/// When a system variable can be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    /// At creation and with [`crate::TenantService::set_variables`].
    Dynamic,
    /// Only when the tenant is created (OceanBase's `READONLY` variables that
    /// `CREATE TENANT .. SET` accepts, obshell's `CREATE_TENANT_STATEMENT_VARIABLES`).
    CreateOnly,
    /// Never directly: it reflects an attribute of the tenant.
    ReadOnly,
}

/// A system variable (`CDB_OB_SYS_VARIABLES`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VariableDef {
    pub name: &'static str,
    pub default_value: &'static str,
    pub info: &'static str,
    pub kind: ValueKind,
    pub mutability: Mutability,
    /// obshell sets it over a connection to the tenant itself (its
    /// `VARIAbLES_NEED_TO_CONNEC_WHEN_SET`), so a locked tenant cannot take it.
    pub needs_tenant_connection: bool,
}

const SECONDS_PER_YEAR: i64 = 31_536_000;

const fn var(
    name: &'static str,
    default_value: &'static str,
    kind: ValueKind,
    info: &'static str,
) -> VariableDef {
    VariableDef {
        name,
        default_value,
        info,
        kind,
        mutability: Mutability::Dynamic,
        needs_tenant_connection: false,
    }
}

/// The system variables, by name.
pub static VARIABLES: &[VariableDef] = &[
    var(
        "autocommit",
        "1",
        ValueKind::Bool,
        "Whether each statement is committed on its own (1) or waits for COMMIT (0)",
    ),
    VariableDef {
        needs_tenant_connection: true,
        ..var(
            "character_set_server",
            DEFAULT_CHARSET,
            ValueKind::Charset,
            "The server character set",
        )
    },
    VariableDef {
        needs_tenant_connection: true,
        ..var(
            "collation_server",
            "utf8mb4_general_ci",
            ValueKind::Collation,
            "The server collation",
        )
    },
    var(
        "explicit_defaults_for_timestamp",
        "1",
        ValueKind::Bool,
        "whether use traditional mode for timestamp",
    ),
    var(
        "foreign_key_checks",
        "1",
        ValueKind::Bool,
        "set to 1 (the default by MySQL), foreign key constraints are checked. If set to 0, foreign key constraints are ignored",
    ),
    var(
        "group_concat_max_len",
        "1024",
        ValueKind::Int {
            min: 4,
            max: i64::MAX,
        },
        "The maximum length in bytes of the result of GROUP_CONCAT()",
    ),
    var(
        "interactive_timeout",
        "28800",
        ValueKind::Int {
            min: 1,
            max: SECONDS_PER_YEAR,
        },
        "The number of seconds the server waits for activity on an interactive connection before closing it.",
    ),
    VariableDef {
        mutability: Mutability::CreateOnly,
        ..var(
            "lower_case_table_names",
            "1",
            ValueKind::Int { min: 0, max: 2 },
            "how table database names are stored and compared, 0 means stored using the lettercase in the CREATE_TABLE or CREATE_DATABASE statement. Name comparisons are case sensitive; 1 means that table and database names are stored in lowercase abd name comparisons are not case sensitive.",
        )
    },
    var(
        "max_allowed_packet",
        "16777216",
        ValueKind::Int {
            min: 1024,
            max: 1_073_741_824,
        },
        "Max packet length to send to or receive from the server",
    ),
    var(
        "net_read_timeout",
        "30",
        ValueKind::Int {
            min: 1,
            max: SECONDS_PER_YEAR,
        },
        "The number of seconds to wait for more data from a connection before aborting the read",
    ),
    var(
        "net_write_timeout",
        "60",
        ValueKind::Int {
            min: 1,
            max: SECONDS_PER_YEAR,
        },
        "The number of seconds to wait for a block to be written to a connection before aborting the write",
    ),
    VariableDef {
        mutability: Mutability::ReadOnly,
        ..var(
            "ob_compatibility_mode",
            "MYSQL",
            ValueKind::Enum(&["MYSQL", "ORACLE"]),
            "What DBMS is OceanBase compatible with? MYSQL means it behaves like MySQL while ORACLE means it behaves like Oracle.",
        )
    },
    var(
        "ob_plan_cache_percentage",
        "5",
        ValueKind::Int { min: 0, max: 100 },
        "percentage of tenant memory resources that can be used by plan cache",
    ),
    var(
        "ob_query_timeout",
        "10000000",
        ValueKind::Int {
            min: 1,
            max: i64::MAX,
        },
        "Query timeout in microsecond(us)",
    ),
    var(
        "ob_read_consistency",
        "STRONG",
        ValueKind::Enum(&["FROZEN", "WEAK", "STRONG"]),
        "read consistency level: 3=STRONG, 2=WEAK, 1=FROZEN",
    ),
    var(
        "ob_sql_work_area_percentage",
        "5",
        ValueKind::Int { min: 0, max: 100 },
        "The percentage limitation of tenant memory for SQL execution.",
    ),
    var(
        "ob_tcp_invited_nodes",
        DEFAULT_WHITELIST,
        ValueKind::Whitelist,
        "ip white list for tenant, support % and _ and multi ip(separated by commas), support ip match and wild match",
    ),
    var(
        "ob_trx_timeout",
        "86400000000",
        ValueKind::Int {
            min: 1,
            max: i64::MAX,
        },
        "The max duration of one transaction",
    ),
    var(
        "read_only",
        "0",
        ValueKind::Bool,
        "Whether the tenant refuses writes from users without the SUPER privilege",
    ),
    var(
        "recyclebin",
        "0",
        ValueKind::Bool,
        "When the recycle bin is enabled, dropped tables and their dependent objects are placed in the recycle bin. When the recycle bin is disabled, dropped tables and their dependent objects are not placed in the recycle bin; they are just dropped.",
    ),
    var(
        "sql_mode",
        "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ENGINE_SUBSTITUTION",
        ValueKind::SqlMode,
        "The SQL modes in effect, comma-separated",
    ),
    var(
        "time_zone",
        "+08:00",
        ValueKind::TimeZone,
        "The time zone of the tenant: SYSTEM, an offset such as +08:00, or a named zone such as Asia/Shanghai",
    ),
    var(
        "tx_isolation",
        "READ-COMMITTED",
        ValueKind::Enum(&[
            "READ-UNCOMMITTED",
            "READ-COMMITTED",
            "REPEATABLE-READ",
            "SERIALIZABLE",
        ]),
        "Transaction Isolcation Levels: READ-UNCOMMITTED READ-COMMITTED REPEATABLE-READ SERIALIZABLE",
    ),
    var(
        "wait_timeout",
        "28800",
        ValueKind::Int {
            min: 1,
            max: SECONDS_PER_YEAR,
        },
        "The number of seconds the server waits for activity on a noninteractive connection before closing it.",
    ),
];

/// The variable `name` (any case), if the catalogue has it.
pub fn variable(name: &str) -> Option<&'static VariableDef> {
    VARIABLES
        .iter()
        .find(|def| def.name.eq_ignore_ascii_case(name.trim()))
}

/// Where a variable is being set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetAt {
    Creation,
    Alter,
}

/// Checks `values` as obshell and OceanBase do, all before any is applied: an empty
/// name first (`VariableEmpty`), then unknown names (`VariableNotExist`), then the
/// values (`VariableInvalid`), each in name order. Returns the definitions with the
/// normalized values.
pub(crate) fn check_variables(
    values: &BTreeMap<String, String>,
    at: SetAt,
) -> ClusterResult<Vec<(&'static VariableDef, String)>> {
    if values.keys().any(|name| name.trim().is_empty()) {
        return Err(ClusterError::VariableEmpty);
    }
    let defs = values
        .keys()
        .map(|name| variable(name).ok_or_else(|| ClusterError::VariableNotExist(name.clone())))
        .collect::<ClusterResult<Vec<_>>>()?;
    defs.into_iter()
        .zip(values.values())
        .map(|(def, value)| {
            let invalid = |reason: String| ClusterError::VariableInvalid {
                name: def.name.to_string(),
                reason,
            };
            match (def.mutability, at) {
                (Mutability::ReadOnly, _) => {
                    return Err(invalid("it is read only".to_string()));
                }
                (Mutability::CreateOnly, SetAt::Alter) => {
                    return Err(invalid(
                        "it can only be set when the tenant is created".to_string(),
                    ));
                }
                _ => {}
            }
            let normalized = def
                .kind
                .normalize(value, BoolStyle::Digit)
                .map_err(invalid)?;
            Ok((def, normalized))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_maps_are_checked_in_obshell_order() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect()
        };
        type Case<'a> = (&'a [(&'a str, &'a str)], SetAt, &'a str);
        let cases: &[Case<'_>] = &[
            (&[("", "1"), ("nope", "1")], SetAt::Alter, "Tenant variable name or value is empty."),
            (&[("nope", "1"), ("autocommit", "x")], SetAt::Alter, "Tenant variable 'nope' does not exist."),
            (&[("autocommit", "x")], SetAt::Alter, "Tenant variable 'autocommit' is invalid: value 'x' is not a boolean."),
            (&[("lower_case_table_names", "0")], SetAt::Alter, "Tenant variable 'lower_case_table_names' is invalid: it can only be set when the tenant is created."),
            (&[("ob_compatibility_mode", "ORACLE")], SetAt::Creation, "Tenant variable 'ob_compatibility_mode' is invalid: it is read only."),
        ];
        for (pairs, at, expected) in cases {
            let got = check_variables(&map(pairs), *at).map(|_| ()).unwrap_err();
            assert_eq!(got.to_string(), *expected, "{pairs:?}");
        }
        let ok = check_variables(
            &map(&[("AUTOCOMMIT", "off"), ("lower_case_table_names", "0")]),
            SetAt::Creation,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = ok
            .iter()
            .map(|(def, value)| (def.name, value.as_str()))
            .collect();
        assert_eq!(got, [("autocommit", "0"), ("lower_case_table_names", "0")]);
    }
}
