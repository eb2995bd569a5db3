//! One function per step of the restore DAG, and one per rollback of an undoable step.
//! [`RestoreStep`]'s `execute` and `rollback` only dispatch to them.
//!
//! Invariants: every step reads the plan from the DAG's parameters (made once at
//! submit, [`crate::prepare`]); every blocking call (the backup's files, the cluster)
//! runs inside [`blocking`], on the blocking pool; each step moves the restore job to
//! its status before it works, so the overview shows where a restore is.

use std::sync::Arc;

use async_trait::async_trait;
use obrestore_dag::{Flags, Task, TaskContext, TaskError, TaskRegistry};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::dag::{groups_key, TASK_TYPES};
use super::data::{data_groups, CancelFlag, DataGroup, Worker};
use super::failpoint::crash_point;
use super::read_ahead::StopOnCancel;
use super::{Deps, RestoreDagParams, CURRENT_DATA_VERSION, SYS_LS};
use crate::cluster::TenantService;
use crate::cluster::{PartProgress, RestoreJobPatch, RestoreJobStatus, RestoreOutcome};

/// The steps of the restore DAG, one task type each ([`TASK_TYPES`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    PreCheck,
    CreatePools,
    CreateTenant,
    SysTablets,
    TabletsMeta,
    RestoreData,
    ReplayLog,
    PostCheck,
    Activate,
    Upgrade,
}

impl Step {
    /// The step's name: its node's name, without the log stream of a per-log-stream
    /// step. Crash points are named after it.
    pub(super) fn label(self) -> &'static str {
        match self {
            Step::PreCheck => "Pre restore check",
            Step::CreatePools => "Create resource pools",
            Step::CreateTenant => "Create restoring tenant",
            Step::SysTablets => "Restore sys tablets",
            Step::TabletsMeta => "Restore tablets meta",
            Step::RestoreData => "Restore data",
            Step::ReplayLog => "Replay log",
            Step::PostCheck => "Post check",
            Step::Activate => "Activate tenant",
            Step::Upgrade => "Upgrade tenant",
        }
    }
}

/// Registers every restore task type.
pub fn register(registry: &mut TaskRegistry, deps: Arc<Deps>) {
    for (name, step) in TASK_TYPES {
        // Activation and upgrade cannot be undone (SPEC §4.3); every step can be
        // passed, as obshell's restore tasks (`SetCanPass()`).
        let can_rollback = !matches!(step, Step::Activate | Step::Upgrade);
        let flags = Flags {
            can_retry: true,
            can_rollback,
            can_cancel: true,
            can_pass: true,
            can_continue: true,
        };
        let deps = Arc::clone(&deps);
        registry.register(name, flags, move |_params| {
            Ok(Box::new(RestoreStep {
                step,
                task_type: name,
                deps: Arc::clone(&deps),
            }) as Box<dyn Task>)
        });
    }
}

struct RestoreStep {
    step: Step,
    task_type: &'static str,
    deps: Arc<Deps>,
}

#[async_trait]
impl Task for RestoreStep {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let params = params_of(ctx)?;
        let tenant = params.restore.restore_tenant_name.clone();
        // A cancelled restore stops its archive log read-ahead (read_ahead.rs).
        let _stop = StopOnCancel {
            read_aheads: &self.deps.read_aheads,
            dag_id: ctx.dag_id(),
            cancelled: || ctx.cancelled().is_cancelled(),
        };
        match self.step {
            Step::PreCheck => self.pre_check(ctx, params).await,
            Step::CreatePools => self.create_pools(ctx, params).await,
            Step::CreateTenant => self.create_tenant(ctx, params).await,
            Step::SysTablets => self.sys_tablets(ctx, params).await,
            Step::TabletsMeta => self.tablets_meta(ctx, params).await,
            Step::RestoreData => self.restore_data(ctx, params).await,
            Step::ReplayLog => self.replay_log(ctx, params).await,
            Step::PostCheck => self.post_check(ctx, params).await,
            Step::Activate => self.activate(ctx).await,
            Step::Upgrade => self.upgrade(ctx).await,
        }?;
        super::failpoint::after_step(self.task_type, &tenant)
    }

    async fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let params = params_of(ctx)?;
        match self.step {
            Step::PreCheck => self.close_restore_job(ctx, params).await,
            Step::CreatePools => self.drop_pools(ctx, params).await,
            Step::CreateTenant => self.drop_restoring_tenant(ctx, params).await,
            _ => Ok(()),
        }
    }
}

/// Steps, in DAG order.
impl RestoreStep {
    /// "Pre restore check": the planned sources are still there; the restore job exists.
    async fn pre_check(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let creator = creator(ctx);
        let summary = plan_summary(&params.plan);
        let job_id = blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                let job = crate::prepare::check_planned_sources(
                    &params.restore,
                    &params.plan,
                    &deps.roots,
                    params.task_time,
                )
                .map_err(err)?;
                let job = deps
                    .cluster
                    .start_restore_job(&job, &creator)
                    .map_err(err)?;
                crash_point("after-start-job");
                Ok(job.job_id)
            },
        )
        .await?;
        ctx.info(summary);
        ctx.set_additional_data("restore_job_id", json!(job_id));
        ctx.set_output("job_id", json!(job_id));
        Ok(())
    }

    async fn create_pools(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let specs = params.restore.pool_specs(params.task_time);
        let creator = creator(ctx);
        let pools = blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                let pools = deps.cluster.create_pools(&specs, &creator).map_err(err)?;
                crash_point("after-create-pools");
                Ok(pools)
            },
        )
        .await?;
        let names: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();
        ctx.info(format!("created resource pools {}", names.join(", ")));
        ctx.set_output("pool_names", json!(names));
        Ok(())
    }

    async fn create_tenant(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let job_id = input_u64(ctx, "job_id")?;
        let version = params
            .plan
            .sets
            .first()
            .map(|s| s.info.cluster_version.clone())
            .unwrap_or_default();
        let tenant = params
            .restore
            .restoring_tenant(pool_names(&params), &version);
        let creator = creator(ctx);
        let created = blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                let tenant = deps.cluster.create_tenant(&tenant, &creator).map_err(err)?;
                crash_point("after-create-tenant");
                let patch = RestoreJobPatch {
                    status: Some(RestoreJobStatus::CreateTenant),
                    restore_tenant_id: Some(tenant.id),
                    ..RestoreJobPatch::default()
                };
                deps.cluster
                    .update_restore_job(job_id, &patch)
                    .map_err(err)?;
                crash_point("after-set-tenant-id");
                Ok(tenant)
            },
        )
        .await?;
        ctx.info(format!(
            "created tenant {} (id {}) in RESTORE/STANDBY",
            created.name, created.id
        ));
        ctx.set_output("tenant_id", json!(created.id));
        Ok(())
    }

    /// "Restore sys tablets": LS 1's data groups and its log, in one sub-task.
    async fn sys_tablets(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let tenant_id = input_u64(ctx, "tenant_id")?;
        let job_id = input_u64(ctx, "job_id")?;
        let restore_scn = params.plan.restore_scn.as_u64();
        let start = params.plan.restore_start_scn.as_u64();
        let dag_id = ctx.dag_id();
        let mut done = 0u64;
        let total = blocking(
            ctx,
            self.step,
            |bytes: u64| done += bytes,
            move |worker| {
                let sources = deps.sources(&params.plan)?;
                // One sub-task restores LS 1 group by group: one range is enough.
                let groups = data_groups(&sources.data, &params.plan, SYS_LS, 1).map_err(err)?;
                let total: u64 = groups.iter().map(|g| g.bytes).sum();
                deps.set_status(job_id, RestoreJobStatus::RestoreSysTablets)?;
                // LS 1's log is replayed below: its data skips the rows the log rewrites.
                let plan = &params.plan;
                let skip = deps.log_keys(dag_id, &sources.archive, plan, SYS_LS, worker);
                for group in &groups {
                    let skip = skip.keys();
                    deps.restore_group(&sources.data, &params, tenant_id, group, skip, worker)?;
                    deps.record_group(job_id, group)?;
                }
                drop(skip);
                let log = worker.without_progress();
                deps.replay_log(
                    &sources.archive,
                    &params.plan,
                    tenant_id,
                    SYS_LS,
                    start,
                    &log,
                )?;
                deps.finish_ls(job_id, tenant_id, SYS_LS, restore_scn)?;
                // The user streams' log files, read ahead of their replays.
                super::read_ahead::spawn(
                    &deps.read_aheads,
                    dag_id,
                    &sources,
                    &params.plan,
                    &params.user_ls,
                );
                Ok(total)
            },
        )
        .await?;
        ctx.info(format!(
            "restored sys tablets: {done} of {total} bytes, log replayed to {restore_scn}"
        ));
        Ok(())
    }

    /// "Restore tablets meta L": outputs L's data groups, the sub-tasks of `Restore data L`
    /// (up to `concurrency` row ranges: a log stream's blocks are restored in parallel).
    async fn tablets_meta(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let ls = ls_param(ctx)?;
        let job_id = input_u64(ctx, "job_id")?;
        let groups = blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                let sources = deps.sources(&params.plan)?;
                // As many ranges as the `restore_data` pool runs at once.
                let parts = params.restore.concurrency.max(1) as usize;
                let groups = data_groups(&sources.data, &params.plan, ls, parts).map_err(err)?;
                deps.set_status(job_id, RestoreJobStatus::RestoreData)?;
                Ok(groups)
            },
        )
        .await?;
        let bytes: u64 = groups.iter().map(|g| g.bytes).sum();
        let tablets: usize = groups.iter().map(|g| g.tablets.len()).sum();
        ctx.info(format!(
            "log stream {ls}: {tablets} tablets in {} groups, {bytes} bytes",
            groups.len()
        ));
        ctx.set_output(groups_key(ls), serde_json::to_value(&groups).map_err(err)?);
        Ok(())
    }

    /// One sub-task of "Restore data L": one data group.
    async fn restore_data(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let tenant_id = input_u64(ctx, "tenant_id")?;
        let job_id = input_u64(ctx, "job_id")?;
        let group: DataGroup = serde_json::from_value(ctx.params().clone())
            .map_err(|e| err(format!("data group is unreadable: {e}")))?;
        let mut done = 0u64;
        let worker_group = group.clone();
        let dag_id = ctx.dag_id();
        blocking(
            ctx,
            self.step,
            |bytes: u64| done += bytes,
            move |worker| {
                let sources = deps.sources(&params.plan)?;
                let (plan, ls) = (&params.plan, worker_group.ls);
                // The rows `Replay log L` rewrites after this round are not written here.
                let skip = deps.log_keys(dag_id, &sources.archive, plan, ls, worker);
                let (data, group) = (&sources.data, &worker_group);
                deps.restore_group(data, &params, tenant_id, group, skip.keys(), worker)?;
                deps.record_group(job_id, &worker_group)
            },
        )
        .await?;
        ctx.set_additional_data("restored_bytes", json!({ group.name.clone(): group.bytes }));
        ctx.info(format!(
            "{}: {} tablets, {} bytes",
            group.name,
            group.tablets.len(),
            done
        ));
        Ok(())
    }

    /// "Replay log L", resumed after the last complete SCN of an interrupted run.
    async fn replay_log(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let tenant_id = input_u64(ctx, "tenant_id")?;
        let job_id = input_u64(ctx, "job_id")?;
        let ls = ls_param(ctx)?;
        let restore_scn = params.plan.restore_scn.as_u64();
        let from = ctx
            .local("replayed_scn")
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
            .max(params.plan.restore_start_scn.as_u64());
        let mut last = from;
        let on_progress = |scn: u64| {
            last = scn;
            ctx.set_local("replayed_scn", json!(scn));
        };
        let applied = blocking(ctx, self.step, on_progress, move |worker| {
            deps.set_status(job_id, RestoreJobStatus::ReplayLog)?;
            let sources = deps.sources(&params.plan)?;
            let applied =
                deps.replay_log(&sources.archive, &params.plan, tenant_id, ls, from, worker)?;
            deps.finish_ls(job_id, tenant_id, ls, restore_scn)?;
            let patch = RestoreJobPatch {
                recover_scn: Some(restore_scn),
                ..RestoreJobPatch::default()
            };
            deps.cluster
                .update_restore_job(job_id, &patch)
                .map_err(err)?;
            crash_point("after-set-recover-scn");
            Ok(applied)
        })
        .await?;
        ctx.info(format!(
            "log stream {ls}: replayed {applied} log entries after {from} up to {last}"
        ));
        Ok(())
    }

    /// "Post check": every log stream is at restore_scn; records the tenant digest.
    async fn post_check(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let tenant_id = input_u64(ctx, "tenant_id")?;
        let job_id = input_u64(ctx, "job_id")?;
        let restore_scn = params.plan.restore_scn.as_u64();
        let mut expected_ls = vec![SYS_LS];
        expected_ls.extend(params.user_ls.iter().copied());
        let digest = blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                // Every data round and replay of the restore is over.
                deps.batches.release();
                deps.set_status(job_id, RestoreJobStatus::PostCheck)?;
                let tenant = deps
                    .cluster
                    .tenant_by_id(tenant_id)
                    .map_err(err)?
                    .ok_or_else(|| err(format!("tenant {tenant_id} disappeared")))?;
                for ls in &expected_ls {
                    let scn = tenant.ls_sync_scn.get(ls).copied().unwrap_or(0);
                    if scn != restore_scn {
                        return Err(err(format!(
                        "log stream {ls} is at sync_scn {scn}, expected restore_scn {restore_scn}"
                    )));
                    }
                }
                deps.cluster.tenant_digest(tenant_id).map_err(err)
            },
        )
        .await?;
        ctx.info(format!(
            "every log stream is at restore_scn {restore_scn}; tenant digest {digest}"
        ));
        ctx.set_additional_data(
            "tenant_digest",
            json!({"rows": digest.rows, "sha256": digest.sha256_hex}),
        );
        Ok(())
    }

    async fn activate(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let tenant_id = input_u64(ctx, "tenant_id")?;
        let job_id = input_u64(ctx, "job_id")?;
        blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                deps.set_status(job_id, RestoreJobStatus::Activate)?;
                deps.cluster.activate_tenant(tenant_id).map_err(err)?;
                crash_point("after-activate");
                Ok(())
            },
        )
        .await?;
        ctx.info("tenant activated: STANDBY → PRIMARY");
        Ok(())
    }

    async fn upgrade(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let tenant_id = input_u64(ctx, "tenant_id")?;
        let job_id = input_u64(ctx, "job_id")?;
        blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                // A re-run after the job was finished (the process died before this
                // step's SUCCEED was committed) finds the work done: the upgrade
                // precedes the finish, which is idempotent.
                match deps.cluster.restore_job(job_id).map_err(err)? {
                    Some(job) if job.status == RestoreJobStatus::Success => return Ok(job),
                    Some(job) if job.finish_time.is_some() => {
                        return Err(err(format!(
                            "restore job {job_id} already ended as {}",
                            job.status
                        )))
                    }
                    _ => {}
                }
                deps.set_status(job_id, RestoreJobStatus::Upgrade)?;
                deps.cluster
                    .upgrade_tenant(tenant_id, CURRENT_DATA_VERSION)
                    .map_err(err)?;
                crash_point("after-upgrade");
                let job = deps
                    .cluster
                    .finish_restore_job(job_id, RestoreOutcome::Success, None)
                    .map_err(err)?;
                crash_point("after-finish-job");
                Ok(job)
            },
        )
        .await?;
        ctx.info(format!(
            "tenant upgraded to data version {CURRENT_DATA_VERSION}; restore finished"
        ));
        Ok(())
    }
}

/// Rollbacks of the undoable steps.
impl RestoreStep {
    /// Rollback of "Pre restore check": closes this restore's job as FAIL.
    async fn close_restore_job(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let creator = creator(ctx);
        let tenant = params.restore.restore_tenant_name;
        blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                if let Some(job) = deps.cluster.active_restore_job(&tenant).map_err(err)? {
                    if job.creator == creator {
                        deps.cluster
                            .finish_restore_job(
                                job.job_id,
                                RestoreOutcome::Fail,
                                Some("restore rolled back"),
                            )
                            .map_err(err)?;
                        crash_point("after-close-job");
                    }
                }
                Ok(())
            },
        )
        .await?;
        ctx.info("restore job closed");
        Ok(())
    }

    /// Rollback of "Create resource pools".
    async fn drop_pools(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let names = pool_names(&params);
        let dropped = blocking(
            ctx,
            self.step,
            |()| {},
            move |_| {
                let dropped = deps.cluster.drop_pools(&names).map_err(err)?;
                crash_point("after-drop-pools");
                Ok(dropped)
            },
        )
        .await?;
        ctx.info(format!("dropped {dropped} resource pools"));
        Ok(())
    }

    /// Rollback of "Create restoring tenant": drops the tenant if this restore made it.
    async fn drop_restoring_tenant(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let creator = creator(ctx);
        let tenant = params.restore.restore_tenant_name;
        let dropped = blocking(
            ctx,
            self.step,
            |()| {},
            move |_| match deps.cluster.tenant(&tenant).map_err(err)? {
                Some(existing) if existing.creator.as_deref() == Some(creator.as_str()) => {
                    let dropped = deps.cluster.drop_tenant(&tenant).map_err(err)?;
                    crash_point("after-drop-tenant");
                    Ok(dropped)
                }
                _ => Ok(false),
            },
        )
        .await?;
        ctx.info(if dropped {
            "dropped the restoring tenant and its rows"
        } else {
            "no tenant of this restore to drop"
        });
        Ok(())
    }
}

/// Restore-job bookkeeping shared by the steps (blocking).
impl Deps {
    /// Moves the restore job to `status`.
    fn set_status(&self, job_id: u64, status: RestoreJobStatus) -> Result<(), TaskError> {
        let patch = RestoreJobPatch {
            status: Some(status),
            ..RestoreJobPatch::default()
        };
        self.cluster
            .update_restore_job(job_id, &patch)
            .map_err(err)?;
        crash_point("after-set-status");
        Ok(())
    }

    /// Records a restored data group in the job's progress.
    fn record_group(&self, job_id: u64, group: &DataGroup) -> Result<(), TaskError> {
        let progress = PartProgress {
            bytes: group.bytes,
            tablets: group.tablets.len() as u64,
        };
        self.cluster
            .record_restore_part(
                job_id,
                &format!("data/{}/{}", group.ls, group.name),
                progress,
            )
            .map_err(err)?;
        crash_point("after-record-group");
        Ok(())
    }

    /// Marks log stream `ls` as replayed to `restore_scn`.
    fn finish_ls(
        &self,
        job_id: u64,
        tenant_id: u64,
        ls: u64,
        restore_scn: u64,
    ) -> Result<(), TaskError> {
        self.cluster
            .set_ls_sync_scn(tenant_id, ls, restore_scn)
            .map_err(err)?;
        crash_point("after-set-sync-scn");
        self.cluster.finish_restore_ls(job_id, ls).map_err(err)?;
        crash_point("after-finish-ls");
        Ok(())
    }
}

pub(super) fn err(message: impl std::fmt::Display) -> TaskError {
    TaskError::new(message.to_string())
}

fn params_of(ctx: &TaskContext) -> Result<RestoreDagParams, TaskError> {
    serde_json::from_value(ctx.dag_params().clone())
        .map_err(|e| err(format!("restore parameters are unreadable: {e}")))
}

fn input_u64(ctx: &TaskContext, key: &str) -> Result<u64, TaskError> {
    ctx.input()
        .get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| err(format!("upstream output '{key}' is missing")))
}

/// The sub-task parameter `ls` of a per-log-stream step.
fn ls_param(ctx: &TaskContext) -> Result<u64, TaskError> {
    ctx.params()
        .get("ls")
        .and_then(Value::as_u64)
        .ok_or_else(|| err("sub-task parameter 'ls' is missing"))
}

fn creator(ctx: &TaskContext) -> String {
    format!("dag:{}", ctx.dag_id())
}

/// The names of the restore's resource pools.
fn pool_names(params: &RestoreDagParams) -> Vec<String> {
    params
        .restore
        .pool_specs(params.task_time)
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// The log line of "Pre restore check": the plan's SCNs, sets and pieces.
fn plan_summary(plan: &obrestore_backup::RestorePlan) -> String {
    format!(
        "restore_scn {} ({}), from restore_start_scn {}; sets {:?}; pieces {:?}",
        plan.restore_scn.as_u64(),
        plan.restore_scn,
        plan.restore_start_scn.as_u64(),
        plan.sets
            .iter()
            .map(|s| s.info.backup_set_id)
            .collect::<Vec<_>>(),
        plan.pieces
            .iter()
            .map(|p| p.info.piece_id)
            .collect::<Vec<_>>(),
    )
}

/// Runs blocking work off the async threads, as `step` (its crash points name it).
/// Progress the work reports is delivered to `on_progress` while it runs; cancellation
/// of the sub-task (or dropping this future) sets the worker's flag, which stops it
/// between blocks.
async fn blocking<T, P, F>(
    ctx: &TaskContext,
    step: Step,
    mut on_progress: impl FnMut(P),
    work: F,
) -> Result<T, TaskError>
where
    T: Send + 'static,
    P: Send + 'static,
    F: FnOnce(&Worker<P>) -> Result<T, TaskError> + Send + 'static,
{
    let (progress, mut rx) = mpsc::unbounded_channel();
    let flag = CancelFlag::default();
    let worker = Worker {
        progress,
        cancel: flag.clone(),
    };
    let step = step.label();
    let mut handle =
        tokio::task::spawn_blocking(move || super::failpoint::in_step(step, || work(&worker)));
    // If this future is dropped (cancellation, timeout), the worker sees the flag.
    struct SetOnDrop(CancelFlag);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.set();
        }
    }
    let _guard = SetOnDrop(flag.clone());
    loop {
        tokio::select! {
            Some(progress) = rx.recv() => on_progress(progress),
            () = ctx.cancelled().cancelled() => flag.set(),
            result = &mut handle => {
                while let Ok(progress) = rx.try_recv() {
                    on_progress(progress);
                }
                return result.map_err(|e| err(format!("restore worker failed: {e}")))?;
            }
        }
    }
}
