//! Errors of the embedded cluster.

/// Why a cluster operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("cluster storage error: {0}")]
    Storage(#[from] sled::Error),
    /// The etcd holding a cluster of agents' records failed (unreachable, no answer in
    /// time, a transaction it refuses).
    #[error("cluster store error: {0}")]
    Etcd(Box<obrestore_etcd::EtcdError>),
    /// The maintainer's fence no longer holds (another agent is maintainer now):
    /// nothing was written.
    #[error("this agent is no longer the cluster's maintainer; nothing was written")]
    FenceLost,
    /// A write on an agent that only reads the cluster (it is not the maintainer):
    /// nothing was written.
    #[error("this agent is not the cluster's maintainer and only reads; nothing was written")]
    ReadOnly,
    /// A cluster transaction on etcd conflicted with other writers this many times in
    /// a row; nothing was written.
    #[error("cluster transaction conflicted {0} times in a row; nothing was written")]
    TooManyConflicts(u32),
    /// A cluster name that cannot be part of an etcd key.
    #[error("cluster name '{name}' is invalid: {reason}")]
    InvalidClusterName { name: String, reason: String },
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

    // ---- tenant administration (texts: obshell's en.json with the args filled in) ----
    /// A tenant name that is empty.
    #[error("Tenant name is empty")]
    TenantNameEmpty,
    /// A new tenant name that breaks obshell's rules (`check_tenant_name`).
    #[error("Tenant name '{name}' is invalid: {reason}")]
    TenantNameInvalid { name: String, reason: String },
    /// An operation that needs a connection to the tenant while it is locked.
    #[error("Tenant {0} is locked")]
    TenantLocked(String),
    /// An empty list of zones.
    #[error("Zone list is empty.")]
    ZoneListEmpty,
    /// A zone given twice.
    #[error("Zone '{0}' is repeated.")]
    ZoneRepeated(String),
    /// A replica without a unit config name.
    #[error("Unit config name is empty.")]
    UnitConfigNameEmpty,
    /// A unit num of 0.
    #[error("Unit number '{unit_num}' is invalid: {reason}")]
    UnitNumInvalid { unit_num: u32, reason: String },
    /// Unit nums that differ between zones, or from the tenant's.
    #[error("Unit number is inconsistent, should be the same in all zones.")]
    UnitNumInconsistent,
    /// A unit num change for some but not all of the tenant's zones.
    #[error("Cannot modify unit number partially.")]
    ModifyUnitNumPartially,
    /// Adding a replica in a zone that has one.
    #[error("Zone '{0}' already has a replica.")]
    ZoneAlreadyHasReplica(String),
    /// Changing the replica of a zone that has none.
    #[error("Zone '{0}' does not have a replica.")]
    ZoneWithoutReplica(String),
    /// Adding a replica in a zone where the tenant already has a resource pool.
    #[error("Tenant already has a pool located in zone '{0}'.")]
    HasPoolOnZone(String),
    /// Removing the only replica of a tenant.
    #[error("Tenant '{0}' only has one replica")]
    ReplicaOnlyOne(String),
    /// Removing every replica of a tenant.
    #[error("Cannot delete all replicas")]
    ReplicaDeleteAll,
    /// A locality change that leaves no FULL replica, or one FULL replica out of several.
    #[error("Violate locality principal not allowed.")]
    LocalityPrincipalNotAllowed,
    /// A primary zone naming a zone outside the tenant's zones, or one zone twice.
    #[error("Primary zone '{primary_zone}' is invalid: {reason}.")]
    PrimaryZoneInvalid {
        primary_zone: String,
        reason: String,
    },
    /// First-priority primary zones in more than one region.
    #[error("Primary zone '{0}' crosses regions, please check tenant's primary zone.")]
    PrimaryZoneCrossRegion(String),
    /// A multi-region locality whose first-priority region has fewer than 2 FULL replicas.
    #[error(
        "The region {region} where the first priority of tenant zone is located needs to have at least 2 F replicas. In fact, there are only {full_replicas} full replicas."
    )]
    PrimaryRegionFullReplicaNotEnough {
        region: String,
        full_replicas: usize,
    },
    /// A change that needs the tenant parameter `enable_rebalance` while it is False.
    #[error("{operation} is not allowed when tenant 'enable_rebalance' is disabled.")]
    RebalanceDisabled { operation: String },
    /// A root password that is not the tenant's.
    #[error("The provided password is unable to connect to the tenant")]
    RootPasswordIncorrect { tenant: String },
    /// A variable with an empty name.
    #[error("Tenant variable name or value is empty.")]
    VariableEmpty,
    /// Asking for a variable without a name.
    #[error("Tenant variable name is empty.")]
    VariableNameEmpty,
    /// A variable the catalogue does not have.
    #[error("Tenant variable '{0}' does not exist.")]
    VariableNotExist(String),
    /// A variable value of the wrong type, out of range, or a variable that cannot be set.
    #[error("Tenant variable '{name}' is invalid: {reason}.")]
    VariableInvalid { name: String, reason: String },
    /// A parameter with an empty name.
    #[error("Tenant parameter name or value is empty.")]
    ParameterEmpty,
    /// Asking for a parameter without a name.
    #[error("Tenant parameter name is empty.")]
    ParameterNameEmpty,
    /// A parameter the catalogue does not have.
    #[error("Tenant parameter '{0}' does not exist.")]
    ParameterNotExist(String),
    /// A parameter value of the wrong type or out of range (obshell's
    /// `Common.IllegalArgument` with message).
    #[error("The input parameter '{name}' is illegal: {reason}")]
    ParameterInvalid { name: String, reason: String },
    /// An unknown character set or collation, or a pair that does not match.
    #[error("{}", charset_message(charset.as_deref(), collation.as_deref()))]
    CharsetCollationInvalid {
        charset: Option<String>,
        collation: Option<String>,
    },
}

impl From<obrestore_etcd::EtcdError> for ClusterError {
    fn from(error: obrestore_etcd::EtcdError) -> ClusterError {
        ClusterError::Etcd(Box::new(error))
    }
}

/// obshell's `checkCharsetAndCollation` texts.
fn charset_message(charset: Option<&str>, collation: Option<&str>) -> String {
    match (charset, collation) {
        (Some(charset), Some(collation)) => {
            format!("Charset '{charset}' and Collation '{collation}' is not match.")
        }
        (Some(charset), None) => format!("Charset '{charset}' is not exist."),
        (None, Some(collation)) => format!("Collation '{collation}' is not exist."),
        (None, None) => "Invalid collation: ''.".to_string(),
    }
}

/// Result of cluster operations.
pub type ClusterResult<T> = Result<T, ClusterError>;
