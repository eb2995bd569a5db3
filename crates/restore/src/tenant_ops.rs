//! obshell's tenant-operation DAGs on the embedded cluster (`ob/agent/executor/tenant`,
//! `executor/recyclebin`, `executor/ob/cancel_restore.go`):
//!
//! ```text
//! Drop tenant:                 Drop tenant → Drop resource pool
//! Drop tenant (need_recycle):  Recycle tenant
//! Wait tenant purge finished:  Wait tenant purge finished → Drop resource pool
//! Cancel restore <tenant>:     Cancel restore → Drop resource pool
//! ```
//!
//! Each is a cluster DAG that takes the tenant's maintenance lock and releases it when it
//! fails (`failure_exit_maintenance`), as obshell's do. Every step is idempotent: it
//! works by tenant id and treats "already gone" as done, so a step re-run after a crash
//! or a RETRY converges.

use std::sync::Arc;

use async_trait::async_trait;
use obrestore_dag::{
    DagSpec, Flags, Maintenance, NodeSpec, Scope, Task, TaskContext, TaskError, TaskRegistry,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::{ClusterError, RestoreOutcome, Tenant, TenantService};
use crate::executors::Deps;

/// Name of the drop-tenant DAG (obshell's `DAG_DROP_TENANT`).
pub const DROP_TENANT_DAG: &str = "Drop tenant";
/// Name of the purge DAG (obshell's `DAG_WAIT_PURGE_TENANT_FINISHED`).
pub const PURGE_TENANT_DAG: &str = "Wait tenant purge finished";

/// The cancel-restore DAG of a tenant whose restore job has no restore DAG of its own.
pub fn cancel_restore_dag_name(tenant: &str) -> String {
    format!("Cancel restore {tenant}")
}

const DROP: &str = "tenant.drop";
const RECYCLE: &str = "tenant.recycle";
const PURGE: &str = "tenant.purge";
const CANCEL_RESTORE: &str = "tenant.cancel_restore";
const DROP_POOLS: &str = "tenant.drop_pools";

/// What every tenant-operation DAG stores: the tenant by id (its name may change, e.g.
/// in the recycle bin) and the pools it had when the DAG was submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantDagParams {
    pub tenant_id: u64,
    pub tenant_name: String,
    pub pools: Vec<String>,
}

impl TenantDagParams {
    fn of(tenant: &Tenant) -> TenantDagParams {
        TenantDagParams {
            tenant_id: tenant.id,
            tenant_name: tenant.name.clone(),
            pools: tenant.pool_names.clone(),
        }
    }
}

fn tenant_dag(name: String, lock: &str, tenant: &Tenant, steps: &[(&str, &str)]) -> DagSpec {
    let params = serde_json::to_value(TenantDagParams::of(tenant)).unwrap_or(Value::Null);
    let mut spec = DagSpec::new(name)
        .scope(Scope::Cluster)
        .maintenance(Maintenance::Tenant(lock.to_string()))
        .params(params);
    spec.chain(
        None,
        steps
            .iter()
            .map(|(node, task_type)| NodeSpec::new(*node, *task_type).failure_exit_maintenance())
            .collect(),
    );
    spec
}

/// `Drop tenant`: drops the tenant (or moves it to the recycle bin with `need_recycle`)
/// under its maintenance lock.
pub fn drop_tenant_dag(tenant: &Tenant, need_recycle: bool) -> DagSpec {
    let steps: &[(&str, &str)] = if need_recycle {
        &[("Recycle tenant", RECYCLE)]
    } else {
        &[("Drop tenant", DROP), ("Drop resource pool", DROP_POOLS)]
    };
    tenant_dag(DROP_TENANT_DAG.to_string(), &tenant.name, tenant, steps)
}

/// `Wait tenant purge finished`: drops a recycled tenant and its pools, under the lock
/// of its recycle-bin object name (as obshell's purge does).
pub fn purge_tenant_dag(tenant: &Tenant) -> DagSpec {
    tenant_dag(
        PURGE_TENANT_DAG.to_string(),
        &tenant.name,
        tenant,
        &[
            ("Wait tenant purge finished", PURGE),
            ("Drop resource pool", DROP_POOLS),
        ],
    )
}

/// `Cancel restore <tenant>`: cancels a restore job that no unfinished restore DAG
/// owns, dropping the restoring tenant and its pools (OceanBase's `CANCEL RESTORE`).
pub fn cancel_restore_dag(tenant: &Tenant) -> DagSpec {
    tenant_dag(
        cancel_restore_dag_name(&tenant.name),
        &tenant.name,
        tenant,
        &[
            ("Cancel restore", CANCEL_RESTORE),
            ("Drop resource pool", DROP_POOLS),
        ],
    )
}

/// Registers the tenant-operation task types. obshell's flags: continue, retry, cancel
/// and pass, no rollback (a drop cannot be undone).
pub fn register(registry: &mut TaskRegistry, deps: Arc<Deps>) {
    let flags = Flags {
        can_retry: true,
        can_rollback: false,
        can_cancel: true,
        can_pass: true,
        can_continue: true,
    };
    for (name, step) in [
        (DROP, Step::Drop),
        (RECYCLE, Step::Recycle),
        (PURGE, Step::Purge),
        (CANCEL_RESTORE, Step::CancelRestore),
        (DROP_POOLS, Step::DropPools),
    ] {
        let deps = Arc::clone(&deps);
        registry.register(name, flags, move |_params| {
            Ok(Box::new(TenantStep {
                step,
                deps: Arc::clone(&deps),
            }) as Box<dyn Task>)
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Drop,
    Recycle,
    Purge,
    CancelRestore,
    DropPools,
}

struct TenantStep {
    step: Step,
    deps: Arc<Deps>,
}

fn err(message: impl std::fmt::Display) -> TaskError {
    TaskError::new(message.to_string())
}

/// Runs cluster work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TaskError> + Send + 'static,
) -> Result<T, TaskError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| err(format!("cluster worker failed: {e}")))?
}

/// Closes the tenant's unfinished restore job as CANCELED, if it has one.
fn cancel_restore_job(
    cluster: &dyn TenantService,
    tenant: &str,
    comment: &str,
) -> Result<Option<u64>, ClusterError> {
    let Some(job) = cluster.active_restore_job(tenant)? else {
        return Ok(None);
    };
    cluster.finish_restore_job(job.job_id, RestoreOutcome::Canceled, Some(comment))?;
    Ok(Some(job.job_id))
}

/// The work of the `Drop tenant` step, shared with the offline drop
/// ([`crate::agent::OfflineAgent::drop_tenant`]): closes the tenant's unfinished restore
/// job as CANCELED, then drops the tenant with its rows. Returns the closed job.
///
/// # Errors
/// The cluster fails.
pub(crate) fn drop_tenant_now(
    cluster: &dyn TenantService,
    tenant: &Tenant,
) -> Result<Option<u64>, ClusterError> {
    let job = cancel_restore_job(cluster, &tenant.name, "tenant dropped")?;
    cluster.drop_tenant(&tenant.name)?;
    Ok(job)
}

#[async_trait]
impl Task for TenantStep {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let params: TenantDagParams = serde_json::from_value(ctx.dag_params().clone())
            .map_err(|e| err(format!("tenant parameters are unreadable: {e}")))?;
        let deps = Arc::clone(&self.deps);
        let step = self.step;
        let tenant_id = params.tenant_id;
        let log = blocking(move || {
            let cluster = deps.cluster.as_ref();
            let tenant = cluster.tenant_by_id(tenant_id).map_err(err)?;
            match (step, tenant) {
                (Step::DropPools, _) => {
                    let dropped = cluster.drop_pools(&params.pools).map_err(err)?;
                    Ok(format!(
                        "Drop resource pool {} ({dropped} dropped now)",
                        params.pools.join(", ")
                    ))
                }
                (_, None) => Ok(format!("Tenant {} no longer exists", params.tenant_name)),
                (Step::Drop | Step::Purge, Some(tenant)) => {
                    if let Some(job) = drop_tenant_now(cluster, &tenant).map_err(err)? {
                        ctx_note(format!("restore job {job} canceled"));
                    }
                    Ok(format!("Drop tenant {}", tenant.name))
                }
                (Step::Recycle, Some(tenant)) => {
                    let recycled = cluster.recycle_tenant(tenant.id).map_err(err)?;
                    Ok(format!(
                        "Recycle tenant {} as {}",
                        params.tenant_name, recycled.name
                    ))
                }
                (Step::CancelRestore, Some(tenant)) => {
                    let job = cancel_restore_job(cluster, &tenant.name, "restore canceled")
                        .map_err(err)?;
                    cluster.drop_tenant(&tenant.name).map_err(err)?;
                    Ok(match job {
                        Some(job) => format!(
                            "Cancel restore job {job} of tenant '{}' and drop the tenant",
                            tenant.name
                        ),
                        None => format!(
                            "There is no running restore task; dropped tenant '{}'",
                            tenant.name
                        ),
                    })
                }
            }
        })
        .await?;
        ctx.info(log);
        Ok(())
    }
}

/// Notes made inside blocking work go to the tracing log (the sub-task log line is
/// written by the caller).
fn ctx_note(note: String) {
    tracing::info!("{note}");
}

// ---- creating and reshaping tenants ----
//
// ```text
// Create tenant <name>:        Create tenant → [Set tenant parameters] → Modify tenant
//                              whitelist → [Set tenant time zone] → [Set tenant variables]
//                              → [Set root password]
// Scale out tenant replicas:   Scale out tenant locality
// Scale in tenant replicas:    Scale in tenant locality
// Modify tenant replicas:      Alter tenant locality
// Modify tenant primary zone:  Modify tenant primary zone
// ```
//
// obshell checks each request in full before it submits the DAG (the agent does so
// with the cluster's previews), so the steps only fail on what changed in between.
// Each reshaping step is one cluster transaction (obshell's several SQL steps and
// waits for the locality to converge are one atomic change here), which is why those
// DAGs have one node and no rollback.

/// Name of the scale-out DAG (obshell's `DAG_SCALE_OUT_TENANT_REPLICA`).
pub const SCALE_OUT_DAG: &str = "Scale out tenant replicas";
/// Name of the scale-in DAG (obshell's `DAG_SCALE_IN_TENANT_REPLICA`).
pub const SCALE_IN_DAG: &str = "Scale in tenant replicas";
/// Name of the modify-replicas DAG (obshell's `DAG_MODIFY_TENANT_REPLICA`).
pub const MODIFY_REPLICAS_DAG: &str = "Modify tenant replicas";
/// Name of the primary-zone DAG (obshell's `DAG_MODIFY_TENANT_PRIMARY_ZONE`).
pub const PRIMARY_ZONE_DAG: &str = "Modify tenant primary zone";

/// The create-tenant DAG of `tenant` (obshell's `DAG_CREATE_TENANT`).
pub fn create_tenant_dag_name(tenant: &str) -> String {
    format!("Create tenant {tenant}")
}

const CREATE: &str = "tenant.create";
const SET_PARAMETERS: &str = "tenant.set_parameters";
const SET_WHITELIST: &str = "tenant.set_whitelist";
const SET_TIME_ZONE: &str = "tenant.set_time_zone";
const SET_VARIABLES: &str = "tenant.set_variables";
const SET_ROOT_PASSWORD: &str = "tenant.set_root_password";
const RESHAPE: &str = "tenant.reshape";

/// What the `Create tenant` DAG stores. The root password only sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateTenantDagParams {
    pub plan: crate::tenant_param::CreateTenantPlan,
    /// Part of the pool names (`<tenant>_<zone>_<task_time>`), as obshell names them.
    pub task_time: i64,
    pub root_password_sealed: Option<String>,
}

impl CreateTenantDagParams {
    fn pool_specs(&self) -> Vec<crate::cluster::PoolSpec> {
        let plan = &self.plan;
        plan.zone_list
            .iter()
            .map(|zone| crate::cluster::PoolSpec {
                name: format!("{}_{}_{}", plan.name, zone.name, self.task_time),
                unit_config_name: zone.unit_config_name.clone(),
                unit_num: zone.unit_num,
                zone_list: vec![zone.name.clone()],
            })
            .collect()
    }
}

/// `Create tenant <name>`: obshell's steps, each present only when the request asks
/// for it, under the new tenant's maintenance lock.
pub fn create_tenant_dag(params: &CreateTenantDagParams) -> DagSpec {
    let plan = &params.plan;
    let mut steps = vec![("Create tenant", CREATE)];
    if !plan.parameters.is_empty() {
        steps.push(("Set tenant parameters", SET_PARAMETERS));
    }
    steps.push(("Modify tenant whitelist", SET_WHITELIST));
    if plan.time_zone.is_some() {
        steps.push(("Set tenant time zone", SET_TIME_ZONE));
    }
    if !plan.variables.is_empty() {
        steps.push(("Set tenant variables", SET_VARIABLES));
    }
    if params.root_password_sealed.is_some() {
        steps.push(("Set root password", SET_ROOT_PASSWORD));
    }
    let mut spec = DagSpec::new(create_tenant_dag_name(&plan.name))
        .scope(Scope::Cluster)
        .maintenance(Maintenance::Tenant(plan.name.clone()))
        .params(serde_json::to_value(params).unwrap_or(Value::Null));
    spec.chain(
        None,
        steps
            .into_iter()
            .map(|(node, task_type)| NodeSpec::new(node, task_type).failure_exit_maintenance())
            .collect(),
    );
    spec
}

/// One change to an existing tenant's locality or primary zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reshape {
    AddReplicas(Vec<crate::cluster::ReplicaSpec>),
    RemoveReplicas(Vec<String>),
    ModifyReplicas(Vec<crate::cluster::ReplicaModify>),
    PrimaryZone(String),
}

/// What a reshaping DAG stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReshapeDagParams {
    pub tenant_name: String,
    pub change: Reshape,
}

/// The DAG of one reshaping change of `tenant`, under its maintenance lock.
pub fn reshape_dag(tenant: &str, change: Reshape) -> DagSpec {
    let (dag, node) = match &change {
        Reshape::AddReplicas(_) => (SCALE_OUT_DAG, "Scale out tenant locality"),
        Reshape::RemoveReplicas(_) => (SCALE_IN_DAG, "Scale in tenant locality"),
        Reshape::ModifyReplicas(_) => (MODIFY_REPLICAS_DAG, "Alter tenant locality"),
        Reshape::PrimaryZone(_) => (PRIMARY_ZONE_DAG, "Modify tenant primary zone"),
    };
    let params = ReshapeDagParams {
        tenant_name: tenant.to_string(),
        change,
    };
    let mut spec = DagSpec::new(dag)
        .scope(Scope::Cluster)
        .maintenance(Maintenance::Tenant(tenant.to_string()))
        .params(serde_json::to_value(&params).unwrap_or(Value::Null));
    spec.add_node(NodeSpec::new(node, RESHAPE).failure_exit_maintenance());
    spec
}

/// Registers the create and reshape task types with obshell's flags for each step.
pub fn register_admin(registry: &mut TaskRegistry, deps: Arc<Deps>) {
    let all = Flags {
        can_retry: true,
        can_rollback: true,
        can_cancel: true,
        can_pass: true,
        can_continue: true,
    };
    // obshell: the whitelist, variables and root password steps cannot be passed (the
    // tenant would be unusable), and the whitelist step cannot be continued either.
    let no_pass = Flags {
        can_pass: false,
        ..all
    };
    let whitelist = Flags {
        can_continue: false,
        ..no_pass
    };
    let reshape = Flags {
        can_rollback: false,
        ..all
    };
    for (name, step, flags) in [
        (CREATE, CreateStep::Create, all),
        (SET_PARAMETERS, CreateStep::Parameters, all),
        (SET_WHITELIST, CreateStep::Whitelist, whitelist),
        (SET_TIME_ZONE, CreateStep::TimeZone, all),
        (SET_VARIABLES, CreateStep::Variables, no_pass),
        (SET_ROOT_PASSWORD, CreateStep::RootPassword, no_pass),
    ] {
        let deps = Arc::clone(&deps);
        registry.register(name, flags, move |_params| {
            Ok(Box::new(CreateTenantStep {
                step,
                deps: Arc::clone(&deps),
            }) as Box<dyn Task>)
        });
    }
    registry.register(RESHAPE, reshape, move |_params| {
        Ok(Box::new(ReshapeStep {
            deps: Arc::clone(&deps),
        }) as Box<dyn Task>)
    });
}

#[derive(Debug, Clone, Copy)]
enum CreateStep {
    Create,
    Parameters,
    Whitelist,
    TimeZone,
    Variables,
    RootPassword,
}

struct CreateTenantStep {
    step: CreateStep,
    deps: Arc<Deps>,
}

fn creator(ctx: &TaskContext) -> String {
    format!("dag:{}", ctx.dag_id())
}

fn create_params(ctx: &TaskContext) -> Result<CreateTenantDagParams, TaskError> {
    serde_json::from_value(ctx.dag_params().clone())
        .map_err(|e| err(format!("create-tenant parameters are unreadable: {e}")))
}

/// One function per step of `Create tenant <name>` (blocking; each returns its log
/// line).
mod create_steps {
    use std::collections::BTreeMap;

    use obrestore_dag::TaskError;

    use super::{err, CreateTenantDagParams};
    use crate::cluster::{
        catalog, NewTenant, SledCluster, TenantRole, TenantService, TenantStatus, TenantZone,
    };
    use crate::tenant_param::CreateTenantPlan;

    pub(super) fn create(
        cluster: &SledCluster,
        params: &CreateTenantDagParams,
        creator: &str,
    ) -> Result<String, TaskError> {
        let plan = &params.plan;
        let name = &plan.name;
        let pools = cluster
            .create_pools(&params.pool_specs(), creator)
            .map_err(err)?;
        let tenant = NewTenant {
            name: name.clone(),
            status: TenantStatus::Normal,
            role: TenantRole::Primary,
            data_version: crate::executors::CURRENT_DATA_VERSION.to_string(),
            primary_zone: plan.primary_zone.clone(),
            zone_list: plan
                .zone_list
                .iter()
                .map(|zone| TenantZone {
                    zone: zone.name.clone(),
                    replica_type: zone.replica_type,
                })
                .collect(),
            pool_names: pools.iter().map(|pool| pool.name.clone()).collect(),
        };
        let created = cluster
            .create_tenant_with(&tenant, &plan.create, creator)
            .map_err(err)?;
        Ok(format!(
            "Create tenant {name} (id {}) on resource pools {}",
            created.id,
            tenant.pool_names.join(", ")
        ))
    }

    pub(super) fn parameters(
        cluster: &SledCluster,
        plan: &CreateTenantPlan,
    ) -> Result<String, TaskError> {
        cluster
            .set_parameters(&plan.name, &plan.parameters)
            .map_err(err)?;
        Ok(format!("Set tenant parameters {}", names(&plan.parameters)))
    }

    pub(super) fn whitelist(
        cluster: &SledCluster,
        plan: &CreateTenantPlan,
    ) -> Result<String, TaskError> {
        let whitelist = catalog::merge_whitelist(&plan.whitelist);
        set_variable(cluster, plan, catalog::VARIABLE_WHITELIST, &whitelist)?;
        Ok(format!("Modify tenant whitelist to '{whitelist}'"))
    }

    pub(super) fn time_zone(
        cluster: &SledCluster,
        plan: &CreateTenantPlan,
    ) -> Result<String, TaskError> {
        let time_zone = plan.time_zone.clone().unwrap_or_default();
        set_variable(
            cluster,
            plan,
            crate::tenant_param::VARIABLE_TIME_ZONE,
            &time_zone,
        )?;
        Ok(format!("Set tenant time zone to '{time_zone}'"))
    }

    pub(super) fn variables(
        cluster: &SledCluster,
        plan: &CreateTenantPlan,
    ) -> Result<String, TaskError> {
        cluster
            .set_variables(&plan.name, &plan.variables)
            .map_err(err)?;
        Ok(format!("Set tenant variables {}", names(&plan.variables)))
    }

    pub(super) fn root_password(
        cluster: &SledCluster,
        plan: &CreateTenantPlan,
        password: Option<crate::secret::Secret>,
    ) -> Result<String, TaskError> {
        let Some(password) = password else {
            return Ok("No root password to set".to_string());
        };
        cluster
            .set_root_password(&plan.name, password.expose(), None)
            .map_err(err)?;
        Ok("Set root password".to_string())
    }

    fn set_variable(
        cluster: &SledCluster,
        plan: &CreateTenantPlan,
        variable: &str,
        value: &str,
    ) -> Result<(), TaskError> {
        let variables = BTreeMap::from([(variable.to_string(), value.to_string())]);
        cluster
            .set_variables(&plan.name, &variables)
            .map(|_| ())
            .map_err(err)
    }

    /// `a, b, c`: the names of a variable or parameter map.
    fn names(values: &BTreeMap<String, String>) -> String {
        values.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

impl CreateTenantStep {
    /// The root password of the `Set root password` step, unsealed; `None` for the
    /// other steps.
    fn root_password(
        &self,
        params: &CreateTenantDagParams,
    ) -> Result<Option<crate::secret::Secret>, TaskError> {
        let (CreateStep::RootPassword, Some(sealed)) = (self.step, &params.root_password_sealed)
        else {
            return Ok(None);
        };
        let plain = self
            .deps
            .keystore
            .unseal(sealed)
            .map_err(|e| err(format!("the sealed root password cannot be opened: {e}")))?;
        let text = String::from_utf8(plain).map_err(|_| err("the root password is not UTF-8"))?;
        Ok(Some(crate::secret::Secret::new(text)))
    }
}

#[async_trait]
impl Task for CreateTenantStep {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let params = create_params(ctx)?;
        let password = self.root_password(&params)?;
        let deps = Arc::clone(&self.deps);
        let step = self.step;
        let creator = creator(ctx);
        let log = blocking(move || {
            let cluster = deps.cluster.as_ref();
            let plan = &params.plan;
            match step {
                CreateStep::Create => create_steps::create(cluster, &params, &creator),
                CreateStep::Parameters => create_steps::parameters(cluster, plan),
                CreateStep::Whitelist => create_steps::whitelist(cluster, plan),
                CreateStep::TimeZone => create_steps::time_zone(cluster, plan),
                CreateStep::Variables => create_steps::variables(cluster, plan),
                CreateStep::RootPassword => create_steps::root_password(cluster, plan, password),
            }
        })
        .await?;
        ctx.info(log);
        Ok(())
    }

    /// obshell's `CreateTenantTask.Rollback`: drop the tenant this DAG created and its
    /// pools; the other steps have nothing to undo once the tenant is gone.
    async fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        if !matches!(self.step, CreateStep::Create) {
            return Ok(());
        }
        let params = create_params(ctx)?;
        let deps = Arc::clone(&self.deps);
        let creator = creator(ctx);
        let log = blocking(move || {
            let cluster = deps.cluster.as_ref();
            let name = &params.plan.name;
            let mut done = Vec::new();
            if let Some(tenant) = cluster.tenant(name).map_err(err)? {
                if tenant.creator.as_deref() == Some(creator.as_str()) {
                    cluster.drop_tenant(name).map_err(err)?;
                    done.push(format!("dropped tenant {name}"));
                }
            }
            let pools: Vec<String> = params
                .pool_specs()
                .into_iter()
                .map(|spec| spec.name)
                .collect();
            let dropped = cluster.drop_pools(&pools).map_err(err)?;
            done.push(format!("dropped {dropped} resource pools"));
            Ok(done.join(", "))
        })
        .await?;
        ctx.info(log);
        Ok(())
    }
}

struct ReshapeStep {
    deps: Arc<Deps>,
}

#[async_trait]
impl Task for ReshapeStep {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let params: ReshapeDagParams = serde_json::from_value(ctx.dag_params().clone())
            .map_err(|e| err(format!("tenant parameters are unreadable: {e}")))?;
        let deps = Arc::clone(&self.deps);
        let creator = creator(ctx);
        let log = blocking(move || {
            let cluster = deps.cluster.as_ref();
            let name = &params.tenant_name;
            let tenant = match &params.change {
                Reshape::AddReplicas(zones) => cluster.add_replicas(name, zones, &creator),
                Reshape::RemoveReplicas(zones) => cluster.remove_replicas(name, zones),
                Reshape::ModifyReplicas(zones) => cluster.modify_replicas(name, zones),
                Reshape::PrimaryZone(primary_zone) => cluster.set_primary_zone(name, primary_zone),
            }
            .map_err(err)?;
            Ok(format!(
                "Tenant {name}: locality {}, primary zone {}, resource pools {}",
                tenant.locality(),
                tenant.primary_zone,
                tenant.pool_names.join(", ")
            ))
        })
        .await?;
        ctx.info(log);
        Ok(())
    }
}
