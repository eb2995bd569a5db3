//! The boundary between restore and the cluster it restores into.

use std::collections::BTreeMap;

use super::error::ClusterResult;
use super::model::{
    NewRestoreJob, NewTenant, PartProgress, PoolSpec, ReplicaModify, ReplicaSpec, ResourcePool,
    RestoreJob, RestoreJobPatch, RestoreOutcome, RowBatch, Server, Tenant, TenantOptions,
    UnitConfig, Zone,
};

/// A row visitor: `(tablet_id, key, value)`.
pub type RowVisitor<'a> = dyn FnMut(u64, &[u8], &[u8]) + 'a;

/// What the restore needs from a cluster: what request validation reads
/// ([`crate::RestoreParam::validate`] and
/// [`crate::tenant_param::CreateTenantParam::validate`], which take a
/// `&dyn TenantService`) and what the DAG executors do (the restore DAG's steps in
/// `executors`, the tenant DAGs' steps in `tenant_ops`, the Post check's row scan).
/// Each method says who calls it.
///
/// [`crate::SledCluster`] (the embedded cluster) implements it; an implementation that
/// drives a real OceanBase over SQL can be added behind the same trait. The embedded
/// cluster's other operations — listings, unit configs, the recycle bin, locks, rename,
/// variable and parameter reads, row counts, restore history — are inherent methods of
/// [`crate::SledCluster`], which the agent, the HTTP API and the CLI call directly.
///
/// Methods are blocking (the embedded cluster does disk I/O and fsync); async callers
/// should use `tokio::task::spawn_blocking`. Every mutation is atomic and durable
/// before it returns. The mutations a restore step performs are idempotent so that a
/// step re-executed after a crash (`can_continue`) or rolled back twice succeeds:
/// creations take a `creator` token (the restore job or DAG id) and a repeated call by
/// the same creator returns the existing record; drops of missing records are `Ok`.
///
/// Which tenants a tenant-administration write (`set_primary_zone` to
/// `set_root_password`) accepts follows OceanBase and obshell, the same way for all: a
/// tenant in the recycle bin is `TenantState` (OceanBase refuses `ALTER TENANT` on it;
/// it is found only by its recycle-bin object name), a DROPPING one is `TenantState`,
/// and so is one whose status is not NORMAL (obshell's `tenantStatusHandlerWrapper`; a
/// RESTORE tenant is a standby being restored) — except `set_parameters`, which
/// OceanBase also applies to a restoring tenant. A locked tenant refuses only what
/// obshell does over a connection to the tenant (root password, and variables such as
/// `character_set_server`): `TenantLocked`. Everything else is DDL in the sys tenant,
/// which OceanBase applies to a locked tenant.
pub trait TenantService: Send + Sync {
    // ---- topology: read by request validation (obshell's `CheckZoneParams`) ----

    /// The zone `name`, if it exists. Called by request validation (zone exists, its
    /// region for the primary-zone rules).
    ///
    /// # Errors
    /// Storage failures.
    fn zone(&self, name: &str) -> ClusterResult<Option<Zone>>;

    /// Servers of `zone` with their assigned and free capacity (empty for an unknown
    /// zone). Called by request validation (unit num against servers, free capacity).
    ///
    /// # Errors
    /// Storage failures.
    fn servers_in_zone(&self, zone: &str) -> ClusterResult<Vec<Server>>;

    /// The unit config `name`, if it exists. Called by request validation.
    ///
    /// # Errors
    /// Storage failures.
    fn unit_config(&self, name: &str) -> ClusterResult<Option<UnitConfig>>;

    // ---- resource pools: created and dropped by the restore and create-tenant DAGs ----

    /// Creates all `specs` in one transaction, placing each pool's units on the servers
    /// of its zones with the most free memory (ties by address). A pool that already
    /// exists with the same spec and `creator` is returned as is. Called by the restore
    /// DAG's Create resource pool step and the create-tenant DAG.
    ///
    /// # Errors
    /// `InvalidPool`, `PoolExists` (another creator or spec), `ZoneNotFound`,
    /// `UnitConfigNotFound`, `UnitNumExceedsServers`, `MachineResourceNotEnough`;
    /// nothing is created then.
    fn create_pools(&self, specs: &[PoolSpec], creator: &str) -> ClusterResult<Vec<ResourcePool>>;

    /// Drops the pools `names` and frees their units' capacity, in one transaction.
    /// Missing pools are skipped. Returns how many were dropped. Called by the rollback
    /// of Create resource pool and by the drop-tenant DAGs' Drop resource pool step.
    ///
    /// # Errors
    /// `PoolGranted` while a pool belongs to an existing tenant; nothing is dropped then.
    fn drop_pools(&self, names: &[String]) -> ClusterResult<usize>;

    // ---- tenants ----

    /// The tenant `name`, if it exists. Called by request validation (the name is
    /// free), the rollback of Create tenant, the Post check and the tenant DAGs.
    ///
    /// # Errors
    /// Storage failures.
    fn tenant(&self, name: &str) -> ClusterResult<Option<Tenant>>;

    /// The tenant with id `tenant_id`, if it exists. Called by the Post check and by
    /// every tenant-DAG step (which finds its tenant by id).
    ///
    /// # Errors
    /// Storage failures.
    fn tenant_by_id(&self, tenant_id: u64) -> ClusterResult<Option<Tenant>>;

    /// Creates a tenant on free pools covering its zones and grants them to it. Ids are
    /// 1002, 1004, ... (OceanBase's user tenant ids). A tenant of that name created by
    /// the same `creator` with the same pools is returned as is. The tenant gets
    /// [`TenantOptions::default`]: [`TenantService::create_tenant_with`] of it. Called by
    /// the restore DAG's Create tenant step.
    ///
    /// # Errors
    /// `InvalidTenant`, `TenantExists`, `PoolNotFound`, `PoolGranted`.
    fn create_tenant(&self, tenant: &NewTenant, creator: &str) -> ClusterResult<Tenant> {
        self.create_tenant_with(tenant, &TenantOptions::default(), creator)
    }

    /// [`TenantService::create_tenant`] with obshell's other create-tenant options
    /// (`CREATE TENANT .. CHARSET .. COLLATE .. COMMENT .. SET ..`, then the whitelist,
    /// variables, parameters and root password nodes of obshell's create DAG, all in
    /// the one transaction). The options are checked before anything is written; the
    /// idempotent return of an existing tenant does not compare them. Called by the
    /// create-tenant DAG's Create tenant step.
    ///
    /// # Errors
    /// As [`TenantService::create_tenant`]; `CharsetCollationInvalid`;
    /// `VariableEmpty`, `VariableNotExist`, `VariableInvalid`; `ParameterEmpty`,
    /// `ParameterNotExist`, `ParameterInvalid`.
    fn create_tenant_with(
        &self,
        tenant: &NewTenant,
        options: &TenantOptions,
        creator: &str,
    ) -> ClusterResult<Tenant>;

    /// Drops a tenant and all its rows and releases (does not drop) its pools. The tenant
    /// is marked DROPPING first (after which `apply_batch` refuses it), so a crash in the
    /// middle leaves a DROPPING tenant that a repeated call finishes. `Ok(false)` if it
    /// did not exist. Callers stop the tenant's writers first (the restore DAG cancels
    /// before it rolls back); a batch already past its check when the tenant is marked
    /// can still land, under the dropped tenant's id, which is never reused. Called by
    /// the rollback of Create tenant and by the drop, purge and cancel-restore DAGs.
    ///
    /// # Errors
    /// Storage failures.
    fn drop_tenant(&self, name: &str) -> ClusterResult<bool>;

    /// Moves a tenant to the recycle bin (OceanBase's `DROP TENANT` with the recycle bin
    /// on): it keeps its rows and pools and takes its object name
    /// `__recycle_$_<tenant id>_<microseconds>`. A tenant already in the bin is returned
    /// as is, so a repeated call is harmless. Called by the drop-tenant DAG's Recycle
    /// step.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING, storage failures.
    fn recycle_tenant(&self, tenant_id: u64) -> ClusterResult<Tenant>;

    /// Records that log stream `ls_id` of the tenant is restored up to `scn` (set, not
    /// max, so that it is idempotent) and recomputes `sync_scn` as the minimum. Called
    /// by the restore DAG's log replay.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING.
    fn set_ls_sync_scn(&self, tenant_id: u64, ls_id: u64, scn: u64) -> ClusterResult<Tenant>;

    /// STANDBY → PRIMARY and status NORMAL. Idempotent. Called by the restore DAG's
    /// Activate step.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING.
    fn activate_tenant(&self, tenant_id: u64) -> ClusterResult<Tenant>;

    /// Sets the tenant's data_version. Idempotent. Called by the restore DAG's Upgrade
    /// step.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING.
    fn upgrade_tenant(&self, tenant_id: u64, data_version: &str) -> ClusterResult<Tenant>;

    // ---- tenant administration: the steps of the tenant DAGs (`tenant_ops`) ----

    /// Sets the primary zone. Empty or any case of `random` is `RANDOM`; otherwise
    /// `z1;z2,z3` over the tenant's zones, each at most once. As obshell: changing the
    /// first-priority zones needs `enable_rebalance`; first-priority zones must share a
    /// region, and a locality spanning regions needs 2 FULL replicas in that region.
    /// Idempotent. Called by the Modify tenant primary zone step.
    ///
    /// # Errors
    /// `TenantNotFound`, `TenantState`, `PrimaryZoneInvalid`, `RebalanceDisabled`,
    /// `PrimaryZoneCrossRegion`, `PrimaryRegionFullReplicaNotEnough`.
    fn set_primary_zone(&self, name: &str, primary_zone: &str) -> ClusterResult<Tenant>;

    /// Adds a replica in each of `zones` (obshell's scale-out): one new resource pool
    /// per zone, named `<tenant>_<zone>_<unix seconds>` as obshell names them (with
    /// `_2`, `_3`, ... if that is taken), created by `creator`, granted to the tenant,
    /// and the zone appended to the locality, all in one transaction. Idempotent: a zone
    /// that already has a replica of that type on a pool `creator` made to that spec
    /// counts as added. Called by the Scale out tenant locality step.
    ///
    /// # Errors
    /// In obshell's order: `ZoneListEmpty`, `ZoneRepeated`, `UnitConfigNameEmpty`,
    /// `UnitNumInvalid`, `UnitNumInconsistent` (between the zones); `TenantNotFound`,
    /// `TenantState`; `ZoneNotFound`, `UnitConfigNotFound`, `UnitNumExceedsServers`;
    /// `ZoneAlreadyHasReplica`; `UnitNumInconsistent` (with the tenant's unit num);
    /// `HasPoolOnZone`; `RebalanceDisabled`, `PrimaryZoneCrossRegion`,
    /// `PrimaryRegionFullReplicaNotEnough`; `MachineResourceNotEnough`.
    fn add_replicas(
        &self,
        name: &str,
        zones: &[ReplicaSpec],
        creator: &str,
    ) -> ClusterResult<Tenant>;

    /// Removes the tenant's replicas in `zones` (obshell's scale-in): their locality
    /// entries go, and so do their pools, whose units give their capacity back. A pool
    /// that spans removed and kept zones is first split into one pool per zone, named
    /// `<tenant id>_<zone>_<unix seconds>` as obshell splits them. Zones without a
    /// replica are skipped, as obshell filters them, so a repeated call succeeds and
    /// removing nothing returns the tenant unchanged. Called by the Scale in tenant
    /// locality step.
    ///
    /// # Errors
    /// `TenantNotFound`, `TenantState`; `ReplicaOnlyOne` (removing a tenant's only
    /// replica), `ReplicaDeleteAll` (removing all of several); `LocalityPrincipalNotAllowed`
    /// (no FULL replica left, or one left of several); `PrimaryZoneInvalid` (the
    /// primary zone names a removed zone); `RebalanceDisabled`, `PrimaryZoneCrossRegion`,
    /// `PrimaryRegionFullReplicaNotEnough`.
    fn remove_replicas(&self, name: &str, zones: &[String]) -> ClusterResult<Tenant>;

    /// Changes the replica type, unit config or unit num of the tenant's replicas in
    /// `zones`, in one transaction. A unit config change resizes the zone's units in
    /// place on their servers (splitting a pool shared with zones that keep their
    /// config). A unit num change applies to every pool (OceanBase's
    /// `ALTER RESOURCE TENANT .. UNIT_NUM`): more units go to the free servers with the
    /// most memory, fewer drop the newest units. Capacity is charged and given back
    /// accordingly. Idempotent: asking for what is already there changes nothing.
    /// Called by the Alter tenant locality step.
    ///
    /// # Errors
    /// In obshell's order: `ZoneListEmpty`; `TenantNotFound`, `TenantState`;
    /// `ZoneWithoutReplica`; `ZoneRepeated`, `UnitNumInvalid`, `UnitNumExceedsServers`,
    /// `UnitNumInconsistent`, `UnitConfigNameEmpty`, `UnitConfigNotFound`;
    /// `ModifyUnitNumPartially` (a unit num change for some of the tenant's zones);
    /// `RebalanceDisabled`; `LocalityPrincipalNotAllowed`; `PrimaryZoneCrossRegion`,
    /// `PrimaryRegionFullReplicaNotEnough`; `MachineResourceNotEnough`.
    fn modify_replicas(&self, name: &str, zones: &[ReplicaModify]) -> ClusterResult<Tenant>;

    /// Sets system variables (`ALTER TENANT .. SET VARIABLES`), all or none. Names are
    /// case-insensitive; values are checked and normalized by the catalogue
    /// ([`crate::cluster::catalog`]). The whitelist is `ob_tcp_invited_nodes` (obshell's
    /// whitelist route sets [`crate::cluster::catalog::merge_whitelist`] of its input).
    /// Idempotent. Called by the create-tenant DAG's whitelist, time zone and variables
    /// steps and by the variables and whitelist DAGs.
    ///
    /// # Errors
    /// `VariableEmpty` (an empty name), `VariableNotExist`, `VariableInvalid` (a bad
    /// value, a create-only or read-only variable); `TenantNotFound`, `TenantState`;
    /// `TenantLocked` for a variable obshell sets over a tenant connection.
    fn set_variables(
        &self,
        name: &str,
        variables: &BTreeMap<String, String>,
    ) -> ClusterResult<Tenant>;

    /// Sets tenant parameters (`ALTER SYSTEM SET .. TENANT = ..`), all or none, like
    /// [`TenantService::set_variables`]. A RESTORE tenant is accepted too. Idempotent.
    /// Called by the create-tenant DAG's Set tenant parameters step and the parameters
    /// DAG.
    ///
    /// # Errors
    /// `ParameterEmpty`, `ParameterNotExist`, `ParameterInvalid`; `TenantNotFound`,
    /// `TenantState`.
    fn set_parameters(
        &self,
        name: &str,
        parameters: &BTreeMap<String, String>,
    ) -> ClusterResult<Tenant>;

    /// Sets the root password to `new` (empty: no password). `old` must be the current
    /// one, `None` meaning empty — OceanBase's login with the old password. If `new`
    /// already is the password, the tenant is returned unchanged (so a re-executed step
    /// succeeds). Only a salted verifier is stored; the agent no longer holds the
    /// password afterwards (`root_password_persisted` becomes false). Called by the
    /// create-tenant DAG's Set root password step and the root-password DAG.
    ///
    /// # Errors
    /// `TenantNotFound`, `TenantState`, `TenantLocked`, `RootPasswordIncorrect`.
    fn set_root_password(&self, name: &str, new: &str, old: Option<&str>) -> ClusterResult<Tenant>;

    // ---- rows: written by data restore and log replay, read by the Post check ----

    /// Applies `batch` in order as one atomic, durable batch (put = upsert, delete =
    /// remove). Called by the restore DAG's data restore and log replay.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING, `InvalidRow` for a key or value
    /// of 4 GiB or more, storage failures.
    fn apply_batch(&self, tenant_id: u64, batch: &RowBatch) -> ClusterResult<()>;

    /// Calls `visit(tablet_id, key, value)` for every row in `(tablet_id, key)` order.
    /// The Post check digests the restored rows with it
    /// ([`crate::SledCluster::tenant_digest`]).
    ///
    /// # Errors
    /// Storage failures.
    fn for_each_row(&self, tenant_id: u64, visit: &mut RowVisitor<'_>) -> ClusterResult<()>;

    // ---- restore jobs (CDB_OB_RESTORE_PROGRESS / CDB_OB_RESTORE_HISTORY) ----

    /// Starts a restore job (ids 1, 2, ...), status RESTORE_PRE. If the tenant has an
    /// unfinished job started by the same `creator`, that job is returned. Called by the
    /// agent when it submits a restore and by the restore DAG's Pre restore check.
    ///
    /// # Errors
    /// `RestoreJobConflict` when another creator's job for the tenant is unfinished.
    fn start_restore_job(&self, job: &NewRestoreJob, creator: &str) -> ClusterResult<RestoreJob>;

    /// Applies `patch` to an unfinished job. Called by the restore DAG's steps as they
    /// advance the job's status and plan.
    ///
    /// # Errors
    /// `RestoreJobNotFound`, `RestoreJobFinished`.
    fn update_restore_job(&self, job_id: u64, patch: &RestoreJobPatch)
        -> ClusterResult<RestoreJob>;

    /// Records the progress of one piece of work under `part` (overwriting what was
    /// recorded for it before, so it is idempotent); `finish_bytes` and
    /// `finish_tablet_count` are the sums over parts. Called by the restore DAG's data
    /// restore.
    ///
    /// # Errors
    /// `RestoreJobNotFound`, `RestoreJobFinished`.
    fn record_restore_part(
        &self,
        job_id: u64,
        part: &str,
        progress: PartProgress,
    ) -> ClusterResult<RestoreJob>;

    /// Marks log stream `ls_id` finished (idempotent); `finish_ls_count` counts them.
    /// Called by the restore DAG's log replay.
    ///
    /// # Errors
    /// `RestoreJobNotFound`, `RestoreJobFinished`.
    fn finish_restore_ls(&self, job_id: u64, ls_id: u64) -> ClusterResult<RestoreJob>;

    /// Ends the job and moves it to history. Finishing a job already in history
    /// returns it unchanged. Called by the restore DAG's Upgrade step (success) and
    /// rollback (failure), the drop and cancel-restore DAGs (canceled) and the agent.
    ///
    /// # Errors
    /// `RestoreJobNotFound`.
    fn finish_restore_job(
        &self,
        job_id: u64,
        outcome: RestoreOutcome,
        comment: Option<&str>,
    ) -> ClusterResult<RestoreJob>;

    /// The tenant's unfinished job, if any. Called by the restore DAG's rollback, the
    /// drop and cancel-restore DAGs and the agent.
    ///
    /// # Errors
    /// Storage failures.
    fn active_restore_job(&self, tenant_name: &str) -> ClusterResult<Option<RestoreJob>>;
}
