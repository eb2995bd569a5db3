//! The boundary between restore and the cluster it restores into.

use std::collections::BTreeMap;

use super::error::{ClusterError, ClusterResult};
use super::model::{
    NewRestoreJob, NewTenant, NewUnitConfig, PartProgress, PoolSpec, ReplicaModify, ReplicaSpec,
    ResourcePool, RestoreJob, RestoreJobPatch, RestoreOutcome, RowBatch, RowOp, Server, Tenant,
    TenantDigest, TenantOptions, TenantParameter, TenantVariable, UnitConfig, Zone,
};
use super::password;

/// A row visitor: `(tablet_id, key, value)`.
pub type RowVisitor<'a> = dyn FnMut(u64, &[u8], &[u8]) + 'a;

/// Everything the restore (validation, DAG executors, overview) needs from a cluster.
///
/// [`crate::SledCluster`] (the embedded cluster) implements it; an implementation that
/// drives a real OceanBase over SQL can be added behind the same trait.
///
/// Methods are blocking (the embedded cluster does disk I/O and fsync); async callers
/// should use `tokio::task::spawn_blocking`. Every mutation is atomic and durable
/// before it returns. The mutations a restore step performs are idempotent so that a
/// step re-executed after a crash (`can_continue`) or rolled back twice succeeds:
/// creations take a `creator` token (the restore job or DAG id) and a repeated call by
/// the same creator returns the existing record; drops of missing records are `Ok`.
pub trait TenantService: Send + Sync {
    // ---- topology and capacity ----

    /// All zones, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn list_zones(&self) -> ClusterResult<Vec<Zone>>;

    /// The zone `name`, if it exists.
    ///
    /// # Errors
    /// Storage failures.
    fn zone(&self, name: &str) -> ClusterResult<Option<Zone>>;

    /// Servers of `zone` with their assigned and free capacity (empty for an unknown zone).
    ///
    /// # Errors
    /// Storage failures.
    fn servers_in_zone(&self, zone: &str) -> ClusterResult<Vec<Server>>;

    /// All servers, by address.
    ///
    /// # Errors
    /// Storage failures.
    fn list_servers(&self) -> ClusterResult<Vec<Server>>;

    // ---- unit configs ----

    /// The unit config `name`, if it exists.
    ///
    /// # Errors
    /// Storage failures.
    fn unit_config(&self, name: &str) -> ClusterResult<Option<UnitConfig>>;

    /// All unit configs, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn list_unit_configs(&self) -> ClusterResult<Vec<UnitConfig>>;

    /// Creates a unit config (obshell's rules: memory ≥ 1G, max_cpu > 0,
    /// min_cpu ≤ max_cpu, log disk ≥ 2G, max_iops ≥ 1024, min_iops ≤ max_iops).
    ///
    /// # Errors
    /// `InvalidUnitConfig`, `UnitConfigExists`, storage failures.
    fn create_unit_config(&self, config: &NewUnitConfig) -> ClusterResult<UnitConfig>;

    /// Drops a unit config; `Ok(false)` if it did not exist. (The embedded cluster checks
    /// pool usage just before its transaction; a pool created concurrently in that
    /// window is not seen.)
    ///
    /// # Errors
    /// `UnitConfigInUse` while a pool uses it, storage failures.
    fn drop_unit_config(&self, name: &str) -> ClusterResult<bool>;

    // ---- resource pools ----

    /// The pool `name`, if it exists.
    ///
    /// # Errors
    /// Storage failures.
    fn pool(&self, name: &str) -> ClusterResult<Option<ResourcePool>>;

    /// All pools, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn list_pools(&self) -> ClusterResult<Vec<ResourcePool>>;

    /// Creates all `specs` in one transaction, placing each pool's units on the servers
    /// of its zones with the most free memory (ties by address). A pool that already
    /// exists with the same spec and `creator` is returned as is.
    ///
    /// # Errors
    /// `InvalidPool`, `PoolExists` (another creator or spec), `ZoneNotFound`,
    /// `UnitConfigNotFound`, `UnitNumExceedsServers`, `MachineResourceNotEnough`;
    /// nothing is created then.
    fn create_pools(&self, specs: &[PoolSpec], creator: &str) -> ClusterResult<Vec<ResourcePool>>;

    /// Drops the pools `names` and frees their units' capacity, in one transaction.
    /// Missing pools are skipped. Returns how many were dropped.
    ///
    /// # Errors
    /// `PoolGranted` while a pool belongs to an existing tenant; nothing is dropped then.
    fn drop_pools(&self, names: &[String]) -> ClusterResult<usize>;

    // ---- tenants ----

    /// The tenant `name`, if it exists.
    ///
    /// # Errors
    /// Storage failures.
    fn tenant(&self, name: &str) -> ClusterResult<Option<Tenant>>;

    /// The tenant with id `tenant_id`, if it exists.
    ///
    /// # Errors
    /// Storage failures.
    fn tenant_by_id(&self, tenant_id: u64) -> ClusterResult<Option<Tenant>>;

    /// All tenants, by id.
    ///
    /// # Errors
    /// Storage failures.
    fn list_tenants(&self) -> ClusterResult<Vec<Tenant>>;

    /// Creates a tenant on free pools covering its zones and grants them to it. Ids are
    /// 1002, 1004, ... (OceanBase's user tenant ids). A tenant of that name created by
    /// the same `creator` with the same pools is returned as is. The tenant gets
    /// [`TenantOptions::default`]: [`TenantService::create_tenant_with`] of it.
    ///
    /// # Errors
    /// `InvalidTenant`, `TenantExists`, `PoolNotFound`, `PoolGranted`.
    fn create_tenant(&self, tenant: &NewTenant, creator: &str) -> ClusterResult<Tenant>;

    /// [`TenantService::create_tenant`] with obshell's other create-tenant options
    /// (`CREATE TENANT .. CHARSET .. COLLATE .. COMMENT .. SET ..`, then the whitelist,
    /// variables, parameters and root password nodes of obshell's create DAG, all in
    /// the one transaction). The options are checked before anything is written; the
    /// idempotent return of an existing tenant does not compare them.
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
    /// is marked DROPPING first (after which `apply_rows` refuses it), so a crash in the
    /// middle leaves a DROPPING tenant that a repeated call finishes. `Ok(false)` if it
    /// did not exist. Callers stop the tenant's writers first (the restore DAG cancels
    /// before it rolls back); a batch already past its check when the tenant is marked
    /// can still land, under the dropped tenant's id, which is never reused.
    ///
    /// # Errors
    /// Storage failures.
    fn drop_tenant(&self, name: &str) -> ClusterResult<bool>;

    /// Moves a tenant to the recycle bin (OceanBase's `DROP TENANT` with the recycle bin
    /// on): it keeps its rows and pools and takes its object name
    /// `__recycle_$_<tenant id>_<microseconds>`. A tenant already in the bin is returned
    /// as is, so a repeated call is harmless.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING, storage failures.
    fn recycle_tenant(&self, tenant_id: u64) -> ClusterResult<Tenant>;

    /// The tenant in the recycle bin named `name`, by object name or else by original
    /// name (the most recently recycled one).
    ///
    /// # Errors
    /// Storage failures.
    fn recycled_tenant(&self, name: &str) -> ClusterResult<Option<Tenant>>;

    /// Brings a tenant back from the recycle bin (`FLASHBACK TENANT .. TO BEFORE DROP
    /// [RENAME TO ..]`) under `new_name`, or its original name.
    ///
    /// # Errors
    /// `RecycledTenantNotFound`, `TenantExists` when the name is taken, storage failures.
    fn flashback_tenant(&self, name: &str, new_name: Option<&str>) -> ClusterResult<Tenant>;

    /// Locks or unlocks a tenant (`ALTER TENANT .. LOCK|UNLOCK`). Idempotent.
    ///
    /// # Errors
    /// `TenantNotFound`, storage failures.
    fn set_tenant_locked(&self, name: &str, locked: bool) -> ClusterResult<Tenant>;

    /// Records that log stream `ls_id` of the tenant is restored up to `scn` (set, not
    /// max, so that it is idempotent) and recomputes `sync_scn` as the minimum.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING.
    fn set_ls_sync_scn(&self, tenant_id: u64, ls_id: u64, scn: u64) -> ClusterResult<Tenant>;

    /// STANDBY → PRIMARY and status NORMAL. Idempotent.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING.
    fn activate_tenant(&self, tenant_id: u64) -> ClusterResult<Tenant>;

    /// Sets the tenant's data_version. Idempotent.
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING.
    fn upgrade_tenant(&self, tenant_id: u64, data_version: &str) -> ClusterResult<Tenant>;

    // ---- tenant administration (obshell's tenant API) ----
    //
    // Which tenants a write accepts follows OceanBase and obshell, the same way for all:
    // a tenant in the recycle bin is `TenantState` (OceanBase refuses `ALTER TENANT` on
    // it; it is found only by its recycle-bin object name), a DROPPING one is
    // `TenantState`, and so is one whose status is not NORMAL (obshell's
    // `tenantStatusHandlerWrapper`; a RESTORE tenant is a standby being restored) —
    // except `set_parameters`, which OceanBase also applies to a restoring tenant. A
    // locked tenant refuses only what obshell does over a connection to the tenant
    // (root password, and variables such as `character_set_server`): `TenantLocked`.
    // Everything else is DDL in the sys tenant, which OceanBase applies to a locked
    // tenant. Reads accept any existing tenant; obshell's HTTP routes also ask for
    // NORMAL on `GET .../variables` and `.../parameters`, which is theirs to check.

    /// Renames a tenant (`ALTER TENANT .. RENAME GLOBAL_NAME TO ..`). Renaming to its
    /// own name returns it unchanged. A tenant with an unfinished restore job is
    /// refused, since the job is found by the tenant's name (a RESTORE tenant already
    /// is, by its status).
    ///
    /// # Errors
    /// `TenantNameEmpty`, `TenantNameInvalid` (obshell's rules for `new_name`),
    /// `TenantNotFound`, `TenantState`, `RestoreJobConflict`, `TenantExists` when
    /// `new_name` is taken, storage failures.
    fn rename_tenant(&self, name: &str, new_name: &str) -> ClusterResult<Tenant>;

    /// Sets the primary zone. Empty or any case of `random` is `RANDOM`; otherwise
    /// `z1;z2,z3` over the tenant's zones, each at most once. As obshell: changing the
    /// first-priority zones needs `enable_rebalance`; first-priority zones must share a
    /// region, and a locality spanning regions needs 2 FULL replicas in that region.
    /// Idempotent.
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
    /// counts as added.
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
    /// removing nothing returns the tenant unchanged.
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
    /// Idempotent.
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

    /// All system variables of the catalogue with the tenant's values, by name.
    ///
    /// # Errors
    /// `TenantNotFound`, storage failures.
    fn variables(&self, name: &str) -> ClusterResult<Vec<TenantVariable>> {
        Ok(named_tenant(self, name)?.system_variables())
    }

    /// One system variable of the tenant.
    ///
    /// # Errors
    /// `VariableNameEmpty`, `TenantNotFound`, `VariableNotExist`.
    fn variable(&self, name: &str, variable: &str) -> ClusterResult<TenantVariable> {
        if variable.trim().is_empty() {
            return Err(ClusterError::VariableNameEmpty);
        }
        named_tenant(self, name)?.system_variable(variable)
    }

    /// Sets tenant parameters (`ALTER SYSTEM SET .. TENANT = ..`), all or none, like
    /// [`TenantService::set_variables`]. A RESTORE tenant is accepted too. Idempotent.
    ///
    /// # Errors
    /// `ParameterEmpty`, `ParameterNotExist`, `ParameterInvalid`; `TenantNotFound`,
    /// `TenantState`.
    fn set_parameters(
        &self,
        name: &str,
        parameters: &BTreeMap<String, String>,
    ) -> ClusterResult<Tenant>;

    /// All tenant parameters of the catalogue with the tenant's values, by name.
    ///
    /// # Errors
    /// `TenantNotFound`, storage failures.
    fn parameters(&self, name: &str) -> ClusterResult<Vec<TenantParameter>> {
        Ok(named_tenant(self, name)?.tenant_parameters())
    }

    /// One tenant parameter.
    ///
    /// # Errors
    /// `ParameterNameEmpty`, `TenantNotFound`, `ParameterNotExist`.
    fn parameter(&self, name: &str, parameter: &str) -> ClusterResult<TenantParameter> {
        if parameter.trim().is_empty() {
            return Err(ClusterError::ParameterNameEmpty);
        }
        named_tenant(self, name)?.tenant_parameter(parameter)
    }

    /// Sets the root password to `new` (empty: no password). `old` must be the current
    /// one, `None` meaning empty — OceanBase's login with the old password. If `new`
    /// already is the password, the tenant is returned unchanged (so a re-executed step
    /// succeeds). Only a salted verifier is stored; the agent no longer holds the
    /// password afterwards (`root_password_persisted` becomes false).
    ///
    /// # Errors
    /// `TenantNotFound`, `TenantState`, `TenantLocked`, `RootPasswordIncorrect`.
    fn set_root_password(&self, name: &str, new: &str, old: Option<&str>) -> ClusterResult<Tenant>;

    /// Whether `password` is the tenant's root password (the empty one when it has
    /// none). Locks and status do not matter.
    ///
    /// # Errors
    /// `TenantNotFound`, storage failures.
    fn check_root_password(&self, name: &str, password: &str) -> ClusterResult<bool> {
        let tenant = named_tenant(self, name)?;
        Ok(password::is_current(
            tenant.root_password.as_ref(),
            password,
        ))
    }

    /// Records that the agent holds the root password (obshell's
    /// `persist_tenant_root_password`, which first logs in with it). Idempotent.
    ///
    /// # Errors
    /// `TenantNotFound`, `TenantState`, `TenantLocked` (no login possible),
    /// `RootPasswordIncorrect`.
    fn persist_root_password(&self, name: &str, password: &str) -> ClusterResult<Tenant>;

    // ---- rows ----

    /// Applies `batch` in order as one atomic, durable batch (put = upsert, delete =
    /// remove).
    ///
    /// # Errors
    /// `TenantIdNotFound`, `TenantState` when DROPPING, `InvalidRow` for a key or value
    /// of 4 GiB or more, storage failures.
    fn apply_batch(&self, tenant_id: u64, batch: &RowBatch) -> ClusterResult<()>;

    /// [`TenantService::apply_batch`] of `ops`.
    ///
    /// # Errors
    /// As [`TenantService::apply_batch`].
    fn apply_rows(&self, tenant_id: u64, ops: &[RowOp]) -> ClusterResult<()> {
        self.apply_batch(tenant_id, &RowBatch::from_ops(ops))
    }

    /// Number of rows of the tenant (a scan).
    ///
    /// # Errors
    /// Storage failures.
    fn row_count(&self, tenant_id: u64) -> ClusterResult<u64>;

    /// Row count and digest ([`crate::cluster::digest`]) of the tenant's rows.
    ///
    /// # Errors
    /// Storage failures.
    fn tenant_digest(&self, tenant_id: u64) -> ClusterResult<TenantDigest>;

    /// Calls `visit(tablet_id, key, value)` for every row in `(tablet_id, key)` order.
    ///
    /// # Errors
    /// Storage failures.
    fn for_each_row(&self, tenant_id: u64, visit: &mut RowVisitor<'_>) -> ClusterResult<()>;

    /// Removes all rows of the tenant; returns how many there were.
    ///
    /// # Errors
    /// Storage failures.
    fn drop_rows(&self, tenant_id: u64) -> ClusterResult<u64>;

    // ---- restore jobs (CDB_OB_RESTORE_PROGRESS / CDB_OB_RESTORE_HISTORY) ----

    /// Starts a restore job (ids 1, 2, ...), status RESTORE_PRE. If the tenant has an
    /// unfinished job started by the same `creator`, that job is returned.
    ///
    /// # Errors
    /// `RestoreJobConflict` when another creator's job for the tenant is unfinished.
    fn start_restore_job(&self, job: &NewRestoreJob, creator: &str) -> ClusterResult<RestoreJob>;

    /// Applies `patch` to an unfinished job.
    ///
    /// # Errors
    /// `RestoreJobNotFound`, `RestoreJobFinished`.
    fn update_restore_job(&self, job_id: u64, patch: &RestoreJobPatch)
        -> ClusterResult<RestoreJob>;

    /// Records the progress of one piece of work under `part` (overwriting what was
    /// recorded for it before, so it is idempotent); `finish_bytes` and
    /// `finish_tablet_count` are the sums over parts.
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
    ///
    /// # Errors
    /// `RestoreJobNotFound`, `RestoreJobFinished`.
    fn finish_restore_ls(&self, job_id: u64, ls_id: u64) -> ClusterResult<RestoreJob>;

    /// Ends the job and moves it to history. Finishing a job already in history
    /// returns it unchanged.
    ///
    /// # Errors
    /// `RestoreJobNotFound`.
    fn finish_restore_job(
        &self,
        job_id: u64,
        outcome: RestoreOutcome,
        comment: Option<&str>,
    ) -> ClusterResult<RestoreJob>;

    /// The job, running or in history.
    ///
    /// # Errors
    /// Storage failures.
    fn restore_job(&self, job_id: u64) -> ClusterResult<Option<RestoreJob>>;

    /// The tenant's unfinished job, if any.
    ///
    /// # Errors
    /// Storage failures.
    fn active_restore_job(&self, tenant_name: &str) -> ClusterResult<Option<RestoreJob>>;

    /// Every unfinished job, by job id.
    ///
    /// # Errors
    /// Storage failures.
    fn running_restore_jobs(&self) -> ClusterResult<Vec<RestoreJob>>;

    /// Finished jobs by job id, of one tenant or all.
    ///
    /// # Errors
    /// Storage failures.
    fn restore_history(&self, tenant_name: Option<&str>) -> ClusterResult<Vec<RestoreJob>>;

    /// What `GET /api/v1/tenant/:name/restore/overview` shows: the unfinished job, else
    /// the latest finished one.
    ///
    /// # Errors
    /// Storage failures.
    fn restore_overview(&self, tenant_name: &str) -> ClusterResult<Option<RestoreJob>> {
        if let Some(job) = self.active_restore_job(tenant_name)? {
            return Ok(Some(job));
        }
        Ok(self.restore_history(Some(tenant_name))?.pop())
    }
}

/// The tenant `name`, or `TenantNotFound`.
fn named_tenant<S: TenantService + ?Sized>(service: &S, name: &str) -> ClusterResult<Tenant> {
    service
        .tenant(name)?
        .ok_or_else(|| ClusterError::TenantNotFound(name.to_string()))
}
