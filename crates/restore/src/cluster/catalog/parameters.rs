//! The tenant parameters (`GV$OB_PARAMETERS` with `SCOPE = 'tenant'`): their names,
//! defaults, types and edit levels, and the check of a set of values before any is
//! applied.

use std::collections::BTreeMap;

use super::values::{BoolStyle, ValueKind, SECOND_US};
use crate::cluster::error::{ClusterError, ClusterResult};

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

/// The parameter `name` (any case), if the catalogue has it.
pub fn parameter(name: &str) -> Option<&'static ParameterDef> {
    PARAMETERS
        .iter()
        .find(|def| def.name.eq_ignore_ascii_case(name.trim()))
}

/// Checks `values` like [`super::check_variables`]: `ParameterEmpty`, `ParameterNotExist`,
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
