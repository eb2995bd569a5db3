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

use crate::cluster::{RestoreOutcome, Tenant, TenantService};
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
) -> Result<Option<u64>, TaskError> {
    let Some(job) = cluster.active_restore_job(tenant).map_err(err)? else {
        return Ok(None);
    };
    cluster
        .finish_restore_job(job.job_id, RestoreOutcome::Canceled, Some(comment))
        .map_err(err)?;
    Ok(Some(job.job_id))
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
                    if let Some(job) = cancel_restore_job(cluster, &tenant.name, "tenant dropped")?
                    {
                        ctx_note(format!("restore job {job} canceled"));
                    }
                    cluster.drop_tenant(&tenant.name).map_err(err)?;
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
                    let job = cancel_restore_job(cluster, &tenant.name, "restore canceled")?;
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
