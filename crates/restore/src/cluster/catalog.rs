//! The system variables, tenant parameters and character sets the embedded cluster
//! knows, with OceanBase's names, default values and types.
//!
//! A tenant stores only the variables and parameters set on it
//! ([`crate::cluster::Tenant::variables`], [`crate::cluster::Tenant::parameters`]); the
//! others read as the default here. Setting a name that is not here is refused
//! (`OB.Tenant.Variable.NotExist` / `OB.Tenant.Parameter.NotExist`), as OceanBase refuses
//! an unknown name.
//!
//! Defaults and ranges are OceanBase 4.x's (`ob_system_variable_init.json`,
//! `ob_parameter_seed.ipp`). The `info` texts are OceanBase's where it has one; where
//! OceanBase's is blank (`" "`, as for `autocommit`), a one-line description is given
//! instead. Two deliberate differences: `ob_tcp_invited_nodes` defaults to `127.0.0.1`,
//! what obshell gives every tenant it creates, and charset/collation variables hold
//! names (`utf8mb4`) where OceanBase stores collation ids (`45`).
//!
//! Values are normalized before they are stored: booleans become `1`/`0` for variables
//! and `True`/`False` for parameters (as OceanBase shows them), enumerations take the
//! catalogue's spelling, integers their decimal form.

use std::collections::BTreeMap;

use super::error::{ClusterError, ClusterResult};
use super::model::{parse_capacity, Tenant, TenantParameter, TenantVariable, DEFAULT_CHARSET};

/// The value type of a variable or parameter, with its range where it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueKind {
    /// A whole number in `[min, max]`.
    Int { min: i64, max: i64 },
    /// A number in `[min, max]`.
    Double { min: f64, max: f64 },
    /// `1`/`0`, `ON`/`OFF`, `TRUE`/`FALSE`, `YES`/`NO`, any case.
    Bool,
    /// One of the names, any case; stored with the catalogue's spelling.
    Enum(&'static [&'static str]),
    /// Any string.
    Str,
    /// A capacity such as `256K` ([`parse_capacity`]) in `[min, max]` bytes.
    Capacity { min: u64, max: u64 },
    /// A duration: a whole number with a unit `us`, `ms`, `s`, `m`, `h` or `d`, in
    /// `[min_us, max_us]` microseconds.
    Time { min_us: u64, max_us: u64 },
    /// `HH:MM` of a day, or `disable`.
    Moment,
    /// An IP whitelist: comma-separated addresses, CIDR blocks or `%`/`_` patterns.
    Whitelist,
    /// `SYSTEM`, an offset such as `+08:00`, or a named zone such as `Asia/Shanghai`.
    TimeZone,
    /// A character set of [`CHARSETS`].
    Charset,
    /// A collation of one of [`CHARSETS`].
    Collation,
    /// Comma-separated SQL mode names ([`SQL_MODES`]), possibly none.
    SqlMode,
}

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

/// `GV$OB_PARAMETERS.EDIT_LEVEL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditLevel {
    DynamicEffective,
    StaticEffective,
    Readonly,
}

impl EditLevel {
    /// The upper-case name OceanBase shows.
    pub fn as_str(self) -> &'static str {
        match self {
            EditLevel::DynamicEffective => "DYNAMIC_EFFECTIVE",
            EditLevel::StaticEffective => "STATIC_EFFECTIVE",
            EditLevel::Readonly => "READONLY",
        }
    }
}

/// A tenant parameter (`GV$OB_PARAMETERS` with `SCOPE = 'tenant'`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParameterDef {
    pub name: &'static str,
    pub default_value: &'static str,
    pub info: &'static str,
    pub kind: ValueKind,
    pub edit_level: EditLevel,
}

impl ParameterDef {
    /// `GV$OB_PARAMETERS.DATA_TYPE`.
    pub fn data_type(&self) -> &'static str {
        match self.kind {
            ValueKind::Int { .. } => "INT",
            ValueKind::Double { .. } => "DOUBLE",
            ValueKind::Bool => "BOOL",
            ValueKind::Capacity { .. } => "CAPACITY",
            ValueKind::Time { .. } => "TIME",
            ValueKind::Moment => "MOMENT",
            _ => "STRING",
        }
    }
}

/// A character set with its collations; the first collation is its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charset {
    pub name: &'static str,
    pub collations: &'static [&'static str],
}

impl Charset {
    /// The collation a tenant of this character set gets when none is given.
    pub fn default_collation(&self) -> &'static str {
        self.collations[0]
    }
}

/// The character sets OceanBase 4.x offers tenants.
pub static CHARSETS: &[Charset] = &[
    Charset {
        name: "utf8mb4",
        collations: &[
            "utf8mb4_general_ci",
            "utf8mb4_bin",
            "utf8mb4_unicode_ci",
            "utf8mb4_0900_ai_ci",
        ],
    },
    Charset {
        name: "binary",
        collations: &["binary"],
    },
    Charset {
        name: "gbk",
        collations: &["gbk_chinese_ci", "gbk_bin"],
    },
    Charset {
        name: "gb18030",
        collations: &["gb18030_chinese_ci", "gb18030_bin"],
    },
    Charset {
        name: "latin1",
        collations: &["latin1_swedish_ci", "latin1_bin"],
    },
    Charset {
        name: "utf16",
        collations: &["utf16_general_ci", "utf16_bin"],
    },
];

/// SQL mode names `sql_mode` accepts.
pub static SQL_MODES: &[&str] = &[
    "ALLOW_INVALID_DATES",
    "ANSI",
    "ANSI_QUOTES",
    "ERROR_FOR_DIVISION_BY_ZERO",
    "HIGH_NOT_PRECEDENCE",
    "IGNORE_SPACE",
    "NO_AUTO_CREATE_USER",
    "NO_AUTO_VALUE_ON_ZERO",
    "NO_BACKSLASH_ESCAPES",
    "NO_DIR_IN_CREATE",
    "NO_ENGINE_SUBSTITUTION",
    "NO_UNSIGNED_SUBTRACTION",
    "NO_ZERO_DATE",
    "NO_ZERO_IN_DATE",
    "ONLY_FULL_GROUP_BY",
    "PAD_CHAR_TO_FULL_LENGTH",
    "PIPES_AS_CONCAT",
    "REAL_AS_FLOAT",
    "STRICT_ALL_TABLES",
    "STRICT_TRANS_TABLES",
    "TIME_TRUNCATE_FRACTIONAL",
    "TRADITIONAL",
];

/// The whitelist entry obshell always keeps, and a new tenant's whitelist.
pub const DEFAULT_WHITELIST: &str = "127.0.0.1";

/// The variable holding the IP whitelist.
pub const VARIABLE_WHITELIST: &str = "ob_tcp_invited_nodes";
/// The variable mirrored by [`crate::cluster::Tenant::read_only`].
pub const VARIABLE_READ_ONLY: &str = "read_only";
/// The variable that shows the tenant mode.
pub const VARIABLE_COMPATIBILITY_MODE: &str = "ob_compatibility_mode";
/// The server character set variable, set from the tenant's character set.
pub const VARIABLE_CHARACTER_SET_SERVER: &str = "character_set_server";
/// The server collation variable, set from the tenant's collation.
pub const VARIABLE_COLLATION_SERVER: &str = "collation_server";
/// The parameter that must be on to change unit num or first-priority zones.
pub const PARAMETER_ENABLE_REBALANCE: &str = "enable_rebalance";

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

const fn param(
    name: &'static str,
    default_value: &'static str,
    kind: ValueKind,
    info: &'static str,
) -> ParameterDef {
    ParameterDef {
        name,
        default_value,
        info,
        kind,
        edit_level: EditLevel::DynamicEffective,
    }
}

const SECOND_US: u64 = 1_000_000;

/// The tenant parameters, by name.
pub static PARAMETERS: &[ParameterDef] = &[
    param(
        "compaction_high_thread_score",
        "0",
        ValueKind::Int { min: 0, max: 100 },
        "the current work thread score of high priority compaction. Range: [0,100] in integer. Especially, 0 means default value",
    ),
    param(
        "cpu_quota_concurrency",
        "4",
        ValueKind::Double {
            min: 1.0,
            max: 20.0,
        },
        "max allowed concurrency for 1 CPU quota. Range: [1,20]",
    ),
    param(
        "default_auto_increment_mode",
        "order",
        ValueKind::Enum(&["order", "noorder"]),
        "specifies default auto-increment mode, default is 'order'",
    ),
    param(
        "enable_rebalance",
        "True",
        ValueKind::Bool,
        "specifies whether the tenant load-balancing is turned on. Value:  True:turned on  False: turned off",
    ),
    param(
        "freeze_trigger_percentage",
        "20",
        ValueKind::Int { min: 1, max: 99 },
        "the threshold of the size of the mem store when freeze will be triggered. Rang:(0,100)",
    ),
    param(
        "ha_high_thread_score",
        "0",
        ValueKind::Int { min: 0, max: 100 },
        "the current work thread score of high availability high thread. Range: [0,100] in integer. Especially, 0 means default value",
    ),
    param(
        "ha_mid_thread_score",
        "0",
        ValueKind::Int { min: 0, max: 100 },
        "the current work thread score of high availability mid thread. Range: [0,100] in integer. Especially, 0 means default value",
    ),
    param(
        "lob_enable_block_cache_threshold",
        "256K",
        ValueKind::Capacity {
            min: 0,
            max: 512 << 20,
        },
        "For outrow-stored LOBs up to this length, reads use the block cache. Range: [0B, 512M]",
    ),
    param(
        "log_archive_concurrency",
        "0",
        ValueKind::Int { min: 0, max: 100 },
        "log archive concurrency. If the value is default 0, the database will automatically calculate the number of archive worker threads based on the tenant specification, which is tenant max_cpu divided by 4; otherwise set the the worker count equals to the value.Range: [0, 100] in integer",
    ),
    param(
        "log_disk_throttling_percentage",
        "60",
        ValueKind::Int { min: 40, max: 100 },
        "the threshold of the size of the log disk when writing_limit will be triggered. Rang:[40,100]. setting 100 means turn off writing limit",
    ),
    param(
        "log_disk_utilization_limit_threshold",
        "95",
        ValueKind::Int { min: 80, max: 100 },
        "maximum of log disk usage percentage before stop submitting or receiving logs, should be bigger than log_disk_utilization_threshold. Range: [80, 100]",
    ),
    param(
        "log_disk_utilization_threshold",
        "80",
        ValueKind::Int { min: 10, max: 99 },
        "log disk utilization threshold before reuse log files, should be smaller than log_disk_utilization_limit_threshold. Range: [10, 100)",
    ),
    param(
        "log_restore_concurrency",
        "0",
        ValueKind::Int { min: 0, max: 100 },
        "log restore concurrency, for both the restore tenant and standby tenant. If the value is default 0, the database will automatically calculate the number of restore worker threads based on the tenant specification, which is tenant max_cpu; otherwise set the the worker count equals to the value.Range: [0, 100] in integer",
    ),
    param(
        "major_freeze_duty_time",
        "02:00",
        ValueKind::Moment,
        "the start time of system daily merge procedure. Range: [00:00, 24:00)",
    ),
    param(
        "max_stale_time_for_weak_consistency",
        "5s",
        ValueKind::Time {
            min_us: 5 * SECOND_US,
            max_us: u64::MAX,
        },
        "the max data stale time that cluster weak read version behind current timestamp,no smaller than weak_read_version_refresh_interval, range: [5s, +∞)",
    ),
    param(
        "memstore_limit_percentage",
        "50",
        ValueKind::Int { min: 1, max: 99 },
        "used in calculating the value of MEMSTORE_LIMIT parameter: memstore_limit_percentage = memstore_limit / memory_size,memory_size, where MEMORY_SIZE is determined when the tenant is created. Range: (0, 100)",
    ),
    param(
        "merger_check_interval",
        "10m",
        ValueKind::Time {
            min_us: 10 * SECOND_US,
            max_us: 3600 * SECOND_US,
        },
        "the time interval between the schedules of the task that checks on the progress of MERGE for each zone. Range: [10s, 60m]",
    ),
    param(
        "minor_compact_trigger",
        "2",
        ValueKind::Int { min: 0, max: 16 },
        "minor_compact_trigger, Range: [0,16] in integer",
    ),
    param(
        "px_workers_per_cpu_quota",
        "10",
        ValueKind::Int { min: 0, max: 20 },
        "the ratio(integer) between the number of system allocated px workers vs the maximum number of threads that can be scheduled concurrently. Range: [0, 20]",
    ),
    param(
        "undo_retention",
        "1800",
        ValueKind::Int {
            min: 0,
            max: 4_294_967_295,
        },
        "the low threshold value of undo retention. The system retains undo for at least the time specified in this config when active txn protection is banned. Range: [0, 4294967295]",
    ),
    param(
        "writing_throttling_trigger_percentage",
        "60",
        ValueKind::Int { min: 1, max: 100 },
        "the threshold of the size of the mem store when writing_limit will be triggered. Rang:(0,100]. setting 100 means turn off writing limit",
    ),
];

/// The variable `name` (any case), if the catalogue has it.
pub fn variable(name: &str) -> Option<&'static VariableDef> {
    VARIABLES
        .iter()
        .find(|def| def.name.eq_ignore_ascii_case(name.trim()))
}

/// The parameter `name` (any case), if the catalogue has it.
pub fn parameter(name: &str) -> Option<&'static ParameterDef> {
    PARAMETERS
        .iter()
        .find(|def| def.name.eq_ignore_ascii_case(name.trim()))
}

/// The character set `name` (any case), if the catalogue has it.
pub fn charset(name: &str) -> Option<&'static Charset> {
    CHARSETS
        .iter()
        .find(|charset| charset.name.eq_ignore_ascii_case(name.trim()))
}

/// The character set of collation `name` (any case) and the collation's spelling.
pub fn collation(name: &str) -> Option<(&'static Charset, &'static str)> {
    CHARSETS.iter().find_map(|charset| {
        charset
            .collations
            .iter()
            .find(|collation| collation.eq_ignore_ascii_case(name.trim()))
            .map(|collation| (charset, *collation))
    })
}

/// The tenant's `(charset, collation)` from what `CREATE TENANT` was given: either
/// alone, both (they must match), or neither (`utf8mb4`, `utf8mb4_general_ci`). Empty
/// strings count as not given.
///
/// # Errors
/// `CharsetCollationInvalid` for an unknown name or a mismatch, with obshell's texts.
pub fn resolve_charset(
    charset_name: Option<&str>,
    collation_name: Option<&str>,
) -> ClusterResult<(String, String)> {
    fn given(value: Option<&str>) -> Option<&str> {
        value.map(str::trim).filter(|value| !value.is_empty())
    }
    let invalid = || ClusterError::CharsetCollationInvalid {
        charset: given(charset_name).map(str::to_string),
        collation: given(collation_name).map(str::to_string),
    };
    match (given(charset_name), given(collation_name)) {
        (None, None) => {
            let default = &CHARSETS[0];
            Ok((
                default.name.to_string(),
                default.default_collation().to_string(),
            ))
        }
        (Some(name), None) => {
            let found = charset(name).ok_or_else(invalid)?;
            Ok((
                found.name.to_string(),
                found.default_collation().to_string(),
            ))
        }
        (None, Some(name)) => {
            let (found, spelled) = collation(name).ok_or_else(invalid)?;
            Ok((found.name.to_string(), spelled.to_string()))
        }
        (Some(charset_name), Some(collation_name)) => {
            let found = charset(charset_name).ok_or_else(invalid)?;
            match collation(collation_name) {
                Some((owner, spelled)) if owner.name == found.name => {
                    Ok((found.name.to_string(), spelled.to_string()))
                }
                _ => Err(invalid()),
            }
        }
    }
}

/// obshell's `mergeWhitelist`: `specific` plus `127.0.0.1`, without repeats, in order;
/// an empty `specific` is just `127.0.0.1`.
pub fn merge_whitelist(specific: &str) -> String {
    if specific.is_empty() {
        return DEFAULT_WHITELIST.to_string();
    }
    let mut merged: Vec<&str> = Vec::new();
    for item in specific.split(',').chain([DEFAULT_WHITELIST]) {
        if !merged.contains(&item) {
            merged.push(item);
        }
    }
    merged.join(",")
}

/// SQL `LIKE` as obshell's `filter` query uses it: `%` is any run, `_` any one
/// character, `\` escapes; letters compare case-insensitively (the `_ci` collations of
/// the views it queries).
pub fn sql_like(pattern: &str, text: &str) -> bool {
    enum Token {
        Any,
        One,
        Literal(char),
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut index = 0;
    while index < chars.len() {
        tokens.push(match chars[index] {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' if index + 1 < chars.len() => {
                index += 1;
                Token::Literal(chars[index])
            }
            literal => Token::Literal(literal),
        });
        index += 1;
    }
    // matched[j]: the tokens so far match the first j characters. One pass per token,
    // so a pattern from a request costs O(pattern × text) whatever its `%`s.
    let text: Vec<char> = text.chars().collect();
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for token in &tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            Token::Any => {
                let mut reached = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    reached |= matched[j];
                    *slot = reached;
                }
            }
            Token::One => {
                next[1..].copy_from_slice(&matched[..text.len()]);
            }
            Token::Literal(literal) => {
                for j in 1..=text.len() {
                    next[j] = matched[j - 1] && same_char(*literal, Some(text[j - 1]));
                }
            }
        }
        matched = next;
    }
    matched[text.len()]
}

fn same_char(expected: char, found: Option<char>) -> bool {
    found.is_some_and(|found| found.to_lowercase().eq(expected.to_lowercase()))
}

/// How booleans are spelled when stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolStyle {
    /// `1` / `0`, as system variables.
    Digit,
    /// `True` / `False`, as parameters.
    Word,
}

impl ValueKind {
    /// Checks `value` against the type and range, and returns the form to store.
    ///
    /// # Errors
    /// Why the value does not fit, as a sentence fragment without the name.
    pub fn normalize(&self, value: &str, bools: BoolStyle) -> Result<String, String> {
        let trimmed = value.trim();
        match *self {
            ValueKind::Int { min, max } => {
                let number: i64 = trimmed
                    .parse()
                    .map_err(|_| format!("value '{value}' is not an integer"))?;
                if number < min || number > max {
                    return Err(format!("value '{value}' is out of range [{min}, {max}]"));
                }
                Ok(number.to_string())
            }
            ValueKind::Double { min, max } => {
                let number: f64 = trimmed
                    .parse()
                    .ok()
                    .filter(|number: &f64| number.is_finite())
                    .ok_or_else(|| format!("value '{value}' is not a number"))?;
                if number < min || number > max {
                    return Err(format!("value '{value}' is out of range [{min}, {max}]"));
                }
                Ok(number.to_string())
            }
            ValueKind::Bool => {
                let on = match trimmed.to_ascii_lowercase().as_str() {
                    "1" | "on" | "true" | "yes" => true,
                    "0" | "off" | "false" | "no" => false,
                    _ => return Err(format!("value '{value}' is not a boolean")),
                };
                Ok(match (bools, on) {
                    (BoolStyle::Digit, true) => "1",
                    (BoolStyle::Digit, false) => "0",
                    (BoolStyle::Word, true) => "True",
                    (BoolStyle::Word, false) => "False",
                }
                .to_string())
            }
            ValueKind::Enum(names) => names
                .iter()
                .find(|name| name.eq_ignore_ascii_case(trimmed))
                .map(|name| name.to_string())
                .ok_or_else(|| {
                    format!("value '{value}' is not one of {}", names.join(", "))
                }),
            ValueKind::Str => Ok(value.to_string()),
            ValueKind::Capacity { min, max } => {
                let bytes = parse_capacity(trimmed)?;
                if bytes < min || bytes > max {
                    return Err(format!(
                        "value '{value}' is out of range [{}, {}]",
                        super::model::format_capacity(min),
                        super::model::format_capacity(max)
                    ));
                }
                Ok(trimmed.to_ascii_uppercase())
            }
            ValueKind::Time { min_us, max_us } => {
                let micros = parse_time_us(trimmed).ok_or_else(|| {
                    format!(
                        "value '{value}' is not a whole number with a unit (us, ms, s, m, h, d)"
                    )
                })?;
                if micros < min_us || micros > max_us {
                    return Err(format!("value '{value}' is out of range"));
                }
                Ok(trimmed.to_ascii_lowercase())
            }
            ValueKind::Moment => normalize_moment(trimmed)
                .ok_or_else(|| format!("value '{value}' is not HH:MM in [00:00, 24:00) or disable")),
            ValueKind::Whitelist => normalize_whitelist(value),
            ValueKind::TimeZone => normalize_time_zone(trimmed).ok_or_else(|| {
                format!("value '{value}' is not SYSTEM, an offset in [-12:59, +13:00] or a named time zone")
            }),
            ValueKind::Charset => charset(trimmed)
                .map(|charset| charset.name.to_string())
                .ok_or_else(|| format!("unknown character set '{value}'")),
            ValueKind::Collation => collation(trimmed)
                .map(|(_, spelled)| spelled.to_string())
                .ok_or_else(|| format!("unknown collation '{value}'")),
            ValueKind::SqlMode => {
                let mut modes = Vec::new();
                for mode in trimmed.split(',').map(str::trim).filter(|mode| !mode.is_empty()) {
                    let Some(known) = SQL_MODES.iter().find(|known| known.eq_ignore_ascii_case(mode))
                    else {
                        return Err(format!("unknown SQL mode '{mode}'"));
                    };
                    if !modes.contains(known) {
                        modes.push(*known);
                    }
                }
                Ok(modes.join(","))
            }
        }
    }
}

fn parse_time_us(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = lower.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit_us: u64 = match unit {
        "us" => 1,
        "ms" => 1_000,
        "s" => SECOND_US,
        "m" => 60 * SECOND_US,
        "h" => 3600 * SECOND_US,
        "d" => 86_400 * SECOND_US,
        _ => return None,
    };
    number.checked_mul(unit_us)
}

fn normalize_moment(value: &str) -> Option<String> {
    if value.eq_ignore_ascii_case("disable") {
        return Some("disable".to_string());
    }
    let (hours, minutes) = value.split_once(':')?;
    let digits =
        |part: &str| (1..=2).contains(&part.len()) && part.chars().all(|c| c.is_ascii_digit());
    if !digits(hours) || minutes.len() != 2 || !digits(minutes) {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then(|| format!("{hours:02}:{minutes:02}"))
}

fn normalize_whitelist(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        // OceanBase accepts an empty whitelist: nobody may connect.
        return Ok(String::new());
    }
    let mut items = Vec::new();
    for item in value.split(',').map(str::trim) {
        let allowed = |c: char| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '%' | '_' | '/');
        if item.is_empty() || !item.chars().all(allowed) {
            return Err(format!(
                "'{item}' is not an IP address, a CIDR block or a %/_ pattern"
            ));
        }
        if !items.contains(&item) {
            items.push(item);
        }
    }
    Ok(items.join(","))
}

fn normalize_time_zone(value: &str) -> Option<String> {
    if value.eq_ignore_ascii_case("system") {
        return Some("SYSTEM".to_string());
    }
    if let Some(sign) = value.chars().next().filter(|c| matches!(c, '+' | '-')) {
        let (hours, minutes) = value[1..].split_once(':')?;
        let digits = |part: &str, lengths: std::ops::RangeInclusive<usize>| {
            lengths.contains(&part.len()) && part.chars().all(|c| c.is_ascii_digit())
        };
        if !digits(hours, 1..=2) || !digits(minutes, 2..=2) {
            return None;
        }
        let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
        let total = hours * 60 + minutes;
        let fits = minutes < 60
            && match sign {
                '+' => total <= 13 * 60,
                _ => total <= 12 * 60 + 59,
            };
        return fits.then(|| format!("{sign}{hours:02}:{minutes:02}"));
    }
    let named = value.split('/').count() >= 2
        && value.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
        && value.starts_with(|c: char| c.is_ascii_alphabetic());
    (named || value.eq_ignore_ascii_case("UTC")).then(|| value.to_string())
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

/// Checks `values` like [`check_variables`]: `ParameterEmpty`, `ParameterNotExist`,
/// then `ParameterInvalid`.
pub(crate) fn check_parameters(
    values: &BTreeMap<String, String>,
) -> ClusterResult<Vec<(&'static ParameterDef, String)>> {
    if values.keys().any(|name| name.trim().is_empty()) {
        return Err(ClusterError::ParameterEmpty);
    }
    let defs = values
        .keys()
        .map(|name| parameter(name).ok_or_else(|| ClusterError::ParameterNotExist(name.clone())))
        .collect::<ClusterResult<Vec<_>>>()?;
    defs.into_iter()
        .zip(values.values())
        .map(|(def, value)| {
            let invalid = |reason: String| ClusterError::ParameterInvalid {
                name: def.name.to_string(),
                reason,
            };
            if def.edit_level == EditLevel::Readonly {
                return Err(invalid("it is read only".to_string()));
            }
            let normalized = def
                .kind
                .normalize(value, BoolStyle::Word)
                .map_err(invalid)?;
            Ok((def, normalized))
        })
        .collect()
}

impl Tenant {
    /// The value of system variable `def` on this tenant.
    pub fn variable_value(&self, def: &VariableDef) -> String {
        if def.name == VARIABLE_COMPATIBILITY_MODE {
            return self.mode.as_str().to_string();
        }
        self.variables
            .get(def.name)
            .cloned()
            .unwrap_or_else(|| def.default_value.to_string())
    }

    /// The value of parameter `def` on this tenant.
    pub fn parameter_value(&self, def: &ParameterDef) -> String {
        self.parameters
            .get(def.name)
            .cloned()
            .unwrap_or_else(|| def.default_value.to_string())
    }

    /// Every system variable of the catalogue with this tenant's value, by name.
    pub fn system_variables(&self) -> Vec<TenantVariable> {
        VARIABLES.iter().map(|def| self.variable_row(def)).collect()
    }

    /// The system variable `name` (any case).
    ///
    /// # Errors
    /// `VariableNotExist`.
    pub fn system_variable(&self, name: &str) -> ClusterResult<TenantVariable> {
        variable(name)
            .map(|def| self.variable_row(def))
            .ok_or_else(|| ClusterError::VariableNotExist(name.to_string()))
    }

    /// Every tenant parameter of the catalogue with this tenant's value, by name.
    pub fn tenant_parameters(&self) -> Vec<TenantParameter> {
        PARAMETERS
            .iter()
            .map(|def| self.parameter_row(def))
            .collect()
    }

    /// The tenant parameter `name` (any case).
    ///
    /// # Errors
    /// `ParameterNotExist`.
    pub fn tenant_parameter(&self, name: &str) -> ClusterResult<TenantParameter> {
        parameter(name)
            .map(|def| self.parameter_row(def))
            .ok_or_else(|| ClusterError::ParameterNotExist(name.to_string()))
    }

    /// Whether the parameter `enable_rebalance` is on.
    pub fn rebalance_enabled(&self) -> bool {
        self.parameters
            .get(PARAMETER_ENABLE_REBALANCE)
            .map_or(true, |value| value == "True")
    }

    fn variable_row(&self, def: &VariableDef) -> TenantVariable {
        TenantVariable {
            name: def.name.to_string(),
            value: self.variable_value(def),
            info: def.info.to_string(),
        }
    }

    fn parameter_row(&self, def: &ParameterDef) -> TenantParameter {
        TenantParameter {
            name: def.name.to_string(),
            value: self.parameter_value(def),
            data_type: def.data_type().to_string(),
            info: def.info.to_string(),
            edit_level: def.edit_level.as_str().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_unique_lower_case_and_defaults_are_valid() {
        for names in [
            VARIABLES.iter().map(|def| def.name).collect::<Vec<_>>(),
            PARAMETERS.iter().map(|def| def.name).collect::<Vec<_>>(),
        ] {
            let mut sorted = names.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(names, sorted);
            assert!(names.iter().all(|name| *name == name.to_ascii_lowercase()));
        }
        for def in VARIABLES {
            assert_eq!(
                def.kind
                    .normalize(def.default_value, BoolStyle::Digit)
                    .as_deref(),
                Ok(def.default_value),
                "{}",
                def.name
            );
        }
        for def in PARAMETERS {
            assert_eq!(
                def.kind
                    .normalize(def.default_value, BoolStyle::Word)
                    .as_deref(),
                Ok(def.default_value),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn values_are_checked_and_normalized_by_kind() {
        let ints = ValueKind::Int { min: 0, max: 100 };
        let time = ValueKind::Time {
            min_us: 5 * SECOND_US,
            max_us: u64::MAX,
        };
        let capacity = ValueKind::Capacity {
            min: 0,
            max: 512 << 20,
        };
        let cases: &[(ValueKind, BoolStyle, &str, Result<&str, &str>)] = &[
            (ints, BoolStyle::Digit, " 42 ", Ok("42")),
            (ints, BoolStyle::Digit, "101", Err("value '101' is out of range [0, 100]")),
            (ints, BoolStyle::Digit, "-1", Err("value '-1' is out of range [0, 100]")),
            (ints, BoolStyle::Digit, "4.5", Err("value '4.5' is not an integer")),
            (ints, BoolStyle::Digit, "", Err("value '' is not an integer")),
            (ValueKind::Double { min: 1.0, max: 20.0 }, BoolStyle::Word, "4.50", Ok("4.5")),
            (ValueKind::Double { min: 1.0, max: 20.0 }, BoolStyle::Word, "0.5", Err("value '0.5' is out of range [1, 20]")),
            (ValueKind::Bool, BoolStyle::Digit, "ON", Ok("1")),
            (ValueKind::Bool, BoolStyle::Digit, "false", Ok("0")),
            (ValueKind::Bool, BoolStyle::Word, "1", Ok("True")),
            (ValueKind::Bool, BoolStyle::Word, "off", Ok("False")),
            (ValueKind::Bool, BoolStyle::Word, "maybe", Err("value 'maybe' is not a boolean")),
            (ValueKind::Enum(&["FROZEN", "WEAK", "STRONG"]), BoolStyle::Digit, "weak", Ok("WEAK")),
            (ValueKind::Enum(&["order", "noorder"]), BoolStyle::Word, "NOORDER", Ok("noorder")),
            (ValueKind::Enum(&["A", "B"]), BoolStyle::Digit, "C", Err("value 'C' is not one of A, B")),
            (capacity, BoolStyle::Word, "1m", Ok("1M")),
            (capacity, BoolStyle::Word, "1G", Err("value '1G' is out of range [0B, 512M]")),
            (time, BoolStyle::Word, "10S", Ok("10s")),
            (time, BoolStyle::Word, "4s", Err("value '4s' is out of range")),
            (time, BoolStyle::Word, "10", Err("value '10' is not a whole number with a unit (us, ms, s, m, h, d)")),
            (ValueKind::Moment, BoolStyle::Word, "2:05", Ok("02:05")),
            (ValueKind::Moment, BoolStyle::Word, "DISABLE", Ok("disable")),
            (ValueKind::Moment, BoolStyle::Word, "24:00", Err("value '24:00' is not HH:MM in [00:00, 24:00) or disable")),
            (ValueKind::Whitelist, BoolStyle::Digit, "10.0.0.0/8, %", Ok("10.0.0.0/8,%")),
            (ValueKind::Whitelist, BoolStyle::Digit, "", Ok("")),
            (ValueKind::Whitelist, BoolStyle::Digit, "1.2.3.4,,5.6.7.8", Err("'' is not an IP address, a CIDR block or a %/_ pattern")),
            (ValueKind::Whitelist, BoolStyle::Digit, "host;rm", Err("'host;rm' is not an IP address, a CIDR block or a %/_ pattern")),
            (ValueKind::TimeZone, BoolStyle::Digit, "+8:00", Ok("+08:00")),
            (ValueKind::TimeZone, BoolStyle::Digit, "-12:59", Ok("-12:59")),
            (ValueKind::TimeZone, BoolStyle::Digit, "system", Ok("SYSTEM")),
            (ValueKind::TimeZone, BoolStyle::Digit, "Asia/Shanghai", Ok("Asia/Shanghai")),
            (ValueKind::TimeZone, BoolStyle::Digit, "+13:01", Err("value '+13:01' is not SYSTEM, an offset in [-12:59, +13:00] or a named time zone")),
            (ValueKind::TimeZone, BoolStyle::Digit, "Mars", Err("value 'Mars' is not SYSTEM, an offset in [-12:59, +13:00] or a named time zone")),
            (ValueKind::Charset, BoolStyle::Digit, "GBK", Ok("gbk")),
            (ValueKind::Charset, BoolStyle::Digit, "ascii", Err("unknown character set 'ascii'")),
            (ValueKind::Collation, BoolStyle::Digit, "UTF8MB4_BIN", Ok("utf8mb4_bin")),
            (ValueKind::Collation, BoolStyle::Digit, "klingon_ci", Err("unknown collation 'klingon_ci'")),
            (ValueKind::SqlMode, BoolStyle::Digit, "strict_all_tables, ansi_quotes,STRICT_ALL_TABLES", Ok("STRICT_ALL_TABLES,ANSI_QUOTES")),
            (ValueKind::SqlMode, BoolStyle::Digit, "", Ok("")),
            (ValueKind::SqlMode, BoolStyle::Digit, "NO_SUCH_MODE", Err("unknown SQL mode 'NO_SUCH_MODE'")),
        ];
        for (kind, bools, input, expected) in cases {
            assert_eq!(
                kind.normalize(input, *bools),
                expected.map(str::to_string).map_err(str::to_string),
                "{kind:?} {input:?}"
            );
        }
    }

    #[test]
    fn charset_resolution() {
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Result<(&'a str, &'a str), &'a str>,
        );
        let cases: &[Case<'_>] = &[
            (None, None, Ok(("utf8mb4", "utf8mb4_general_ci"))),
            (Some(""), Some(""), Ok(("utf8mb4", "utf8mb4_general_ci"))),
            (Some("GBK"), None, Ok(("gbk", "gbk_chinese_ci"))),
            (None, Some("utf8mb4_bin"), Ok(("utf8mb4", "utf8mb4_bin"))),
            (
                Some("latin1"),
                Some("LATIN1_BIN"),
                Ok(("latin1", "latin1_bin")),
            ),
            (
                Some("gbk"),
                Some("utf8mb4_bin"),
                Err("Charset 'gbk' and Collation 'utf8mb4_bin' is not match."),
            ),
            (Some("ascii"), None, Err("Charset 'ascii' is not exist.")),
            (
                None,
                Some("klingon_ci"),
                Err("Collation 'klingon_ci' is not exist."),
            ),
        ];
        for (charset, collation, expected) in cases {
            let got = resolve_charset(*charset, *collation).map_err(|err| err.to_string());
            let expected = expected
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .map_err(str::to_string);
            assert_eq!(got, expected, "{charset:?} {collation:?}");
        }
    }

    #[test]
    fn whitelist_merge_follows_obshell() {
        let cases = [
            ("", "127.0.0.1"),
            ("10.0.0.1", "10.0.0.1,127.0.0.1"),
            ("127.0.0.1,10.0.0.1", "127.0.0.1,10.0.0.1"),
            ("%,%", "%,127.0.0.1"),
        ];
        for (input, expected) in cases {
            assert_eq!(merge_whitelist(input), expected, "{input}");
        }
    }

    #[test]
    fn like_patterns() {
        let cases = [
            ("%", "anything", true),
            ("ob_%", "ob_query_timeout", true),
            ("OB_%TIMEOUT", "ob_query_timeout", true),
            ("ob\\_%", "obx", false),
            ("ob\\_q%", "ob_query_timeout", true),
            ("_utocommit", "autocommit", true),
            ("autocommit_", "autocommit", false),
            ("", "", true),
            ("", "a", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(sql_like(pattern, text), expected, "{pattern} {text}");
        }
        // A request's `filter` with many `%`: backtracking would take forever here.
        let text = "a".repeat(200);
        assert!(!sql_like(&format!("{}b", "%a".repeat(40)), &text));
        assert!(sql_like(&format!("{}%", "%a".repeat(40)), &text));
        assert!(sql_like("\\", "\\"), "a trailing backslash is itself");
    }

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
