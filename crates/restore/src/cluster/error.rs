//! Errors of the embedded cluster.

/// Why a cluster operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("cluster storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("corrupt cluster record in tree '{tree}': {reason}")]
    Corrupt { tree: String, reason: String },
    #[error("cluster store format version {found} is not supported (expected {expected})")]
    UnsupportedFormat { found: u64, expected: u64 },
    #[error("zone '{0}' does not exist")]
    ZoneNotFound(String),
    #[error("zone '{0}' already exists")]
    ZoneExists(String),
    #[error("zone '{name}' is invalid: {reason}")]
    InvalidZone { name: String, reason: String },
    #[error("server '{0}' already exists")]
    ServerExists(String),
    #[error("server '{server}' is invalid: {reason}")]
    InvalidServer { server: String, reason: String },
    #[error("unit config '{0}' does not exist")]
    UnitConfigNotFound(String),
    #[error("unit config '{0}' already exists")]
    UnitConfigExists(String),
    #[error("unit config '{name}' is invalid: {reason}")]
    InvalidUnitConfig { name: String, reason: String },
    #[error("unit config '{name}' is used by resource pool '{pool}'")]
    UnitConfigInUse { name: String, pool: String },
    #[error("resource pool '{0}' does not exist")]
    PoolNotFound(String),
    #[error("resource pool '{0}' already exists")]
    PoolExists(String),
    #[error("resource pool '{name}' is invalid: {reason}")]
    InvalidPool { name: String, reason: String },
    #[error("resource pool '{pool}' has already been granted to tenant '{tenant}'")]
    PoolGranted { pool: String, tenant: String },
    #[error("unit num '{unit_num}' is bigger than server num '{servers}' in zone '{zone}'")]
    UnitNumExceedsServers {
        unit_num: u32,
        servers: usize,
        zone: String,
    },
    #[error("machine resource '{zone}' is not enough to hold a new unit")]
    MachineResourceNotEnough { zone: String },
    #[error("tenant '{0}' does not exist")]
    TenantNotFound(String),
    #[error("tenant with id {0} does not exist")]
    TenantIdNotFound(u64),
    #[error("tenant '{0}' already exists")]
    TenantExists(String),
    #[error("tenant '{name}' is invalid: {reason}")]
    InvalidTenant { name: String, reason: String },
    #[error("tenant '{name}' is {actual}, the operation needs {expected}")]
    TenantState {
        name: String,
        actual: String,
        expected: String,
    },
    #[error("tenant row file '{path}': {reason}")]
    RowFile { path: String, reason: String },
    #[error("row of tablet {tablet_id} is invalid: {reason}")]
    InvalidRow { tablet_id: u64, reason: String },
    #[error("Tenant '{0}' does not exist in recyclebin")]
    RecycledTenantNotFound(String),
    #[error("restore job {0} does not exist")]
    RestoreJobNotFound(u64),
    #[error("tenant '{tenant}' already has an unfinished restore job {job_id}")]
    RestoreJobConflict { tenant: String, job_id: u64 },
    #[error("restore job {0} is already finished")]
    RestoreJobFinished(u64),
}

impl ClusterError {
    /// obshell's dotted error code, for the HTTP layer's `error.errCode`.
    pub fn err_code(&self) -> &'static str {
        use ClusterError::*;
        match self {
            Storage(_) | Corrupt { .. } | UnsupportedFormat { .. } | RowFile { .. } => {
                "Common.Unexpected"
            }
            InvalidRow { .. } => "Common.IllegalArgument",
            ZoneNotFound(_) => "OB.Zone.NotExist",
            ZoneExists(_) | ServerExists(_) | InvalidZone { .. } | InvalidServer { .. } => {
                "Common.IllegalArgument"
            }
            UnitConfigNotFound(_) => "OB.Resource.UnitConfig.NotExist",
            UnitConfigExists(_) => "OB.Resource.UnitConfig.Existed",
            InvalidUnitConfig { .. } | InvalidPool { .. } | InvalidTenant { .. } => {
                "Common.IllegalArgument"
            }
            UnitConfigInUse { .. } => "OB.Resource.UnitConfig.InUse",
            PoolNotFound(_) => "Common.NotFound",
            PoolExists(_) => "OB.Resource.Pool.Existed",
            PoolGranted { .. } => "OB.Resource.Pool.Granted",
            UnitNumExceedsServers { .. } => "OB.Tenant.UnitNum.ExceedsLimit",
            MachineResourceNotEnough { .. } => "OB.Tenant.ResourceNotEnough",
            TenantNotFound(_) | TenantIdNotFound(_) => "OB.Tenant.NotExist",
            TenantExists(_) => "OB.Tenant.Existed",
            RecycledTenantNotFound(_) => "OB.Recyclebin.Tenant.NotExist",
            TenantState { .. } => "OB.Tenant.StatusNotNormal",
            RestoreJobNotFound(_) => "OB.Restore.Task.NotExist",
            RestoreJobConflict { .. } => "OB.Tenant.UnderMaintenance",
            RestoreJobFinished(_) => "OB.Restore.Task.AlreadySucceed",
        }
    }

    /// HTTP status for the error (SPEC §3): 404 unknown name, 409 conflict, 400 bad
    /// input, 500 internal fault.
    pub fn http_status(&self) -> u16 {
        use ClusterError::*;
        match self {
            Storage(_) | Corrupt { .. } | UnsupportedFormat { .. } | RowFile { .. } => 500,
            ZoneNotFound(_)
            | UnitConfigNotFound(_)
            | PoolNotFound(_)
            | TenantNotFound(_)
            | TenantIdNotFound(_)
            | RecycledTenantNotFound(_)
            | RestoreJobNotFound(_) => 404,
            ZoneExists(_)
            | ServerExists(_)
            | UnitConfigExists(_)
            | UnitConfigInUse { .. }
            | PoolExists(_)
            | PoolGranted { .. }
            | TenantExists(_)
            | TenantState { .. }
            | RestoreJobConflict { .. }
            | RestoreJobFinished(_) => 409,
            _ => 400,
        }
    }
}

/// Result of cluster operations.
pub type ClusterResult<T> = Result<T, ClusterError>;
