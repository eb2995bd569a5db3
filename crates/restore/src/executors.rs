//! The restore DAG of SPEC §4.3 and its step executors.
//!
//! ```text
//! Pre restore check → Create resource pools → Create restoring tenant → Restore sys tablets
//!    → for each user log stream L: Restore tablets meta L → Restore data L → Replay log L
//!    → Post check → Activate tenant → Upgrade tenant
//! ```
//!
//! The per-log-stream branches are laid out at submit from the backup's `ls_attr_info`.
//! `Restore data L` is a dynamic fan-out: `Restore tablets meta L` groups L's data files
//! (across the whole set chain) into connected components of tablets and outputs one
//! sub-task per component, so no file is read twice and each tablet's sets are applied
//! in chain order. Every executor is idempotent (rows are upserts and deletes with full
//! values, creations carry a creator token), so a restart mid-stage re-runs it safely.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use obrestore_backup::{
    AllowedRoots, ArchiveStore, BackupError, BackupSetInfo, DataStore, LogOp, RestorePlan, Scn,
    SetKey,
};
use obrestore_dag::{
    DagSpec, Flags, Maintenance, NodeSpec, Scope, Task, TaskContext, TaskError, TaskRegistry,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::cluster::{
    NewRestoreJob, PartProgress, RestoreJobPatch, RestoreJobStatus, RestoreOutcome, RowBatch,
};
use crate::cluster::{SledCluster, TenantService};
use crate::keystore::Keystore;
use crate::param::ValidatedRestore;

/// The data version a restored tenant is upgraded to.
pub const CURRENT_DATA_VERSION: &str = "4.2.4.0";
/// The sys log stream.
pub const SYS_LS: u64 = 1;
/// Rows applied per cluster batch (one `apply_rows`: one run file, durable when it
/// returns).
const APPLY_BATCH_ROWS: usize = 16_384;
/// Bytes of row data applied per cluster batch. Each worker holds one `RowBatch`
/// (the run file is streamed from it), so this bounds memory per worker; larger batches
/// mean fewer `fsync`s and fewer runs to merge (`benches/restore_throughput.rs`).
const APPLY_BATCH_BYTES: usize = 4 << 20;

/// Test failpoint: with `OBRESTORE_FAILPOINT_BLOCK_DELAY_MS=N` in the environment (or
/// after [`set_block_delay_failpoint`]), `Restore data` sleeps N ms after each data
/// block, so that a test can reliably act in the middle of the stage however fast the
/// machine is. Off (0) by default, when it costs one atomic load per block.
pub const BLOCK_DELAY_FAILPOINT: &str = "OBRESTORE_FAILPOINT_BLOCK_DELAY_MS";

/// `u64::MAX` until first read from the environment.
static BLOCK_DELAY_MS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Sets the [`BLOCK_DELAY_FAILPOINT`] delay for the whole process (0 turns it off).
pub fn set_block_delay_failpoint(ms: u64) {
    BLOCK_DELAY_MS.store(ms, Ordering::Relaxed);
}

fn block_delay() -> Option<std::time::Duration> {
    let mut ms = BLOCK_DELAY_MS.load(Ordering::Relaxed);
    if ms == u64::MAX {
        ms = std::env::var(BLOCK_DELAY_FAILPOINT)
            .ok()
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .filter(|ms| *ms != u64::MAX)
            .unwrap_or(0);
        let _ = BLOCK_DELAY_MS.compare_exchange(u64::MAX, ms, Ordering::Relaxed, Ordering::Relaxed);
    }
    (ms > 0).then(|| std::time::Duration::from_millis(ms))
}

/// A cancellation flag the blocking workers poll between blocks.
#[derive(Clone, Default)]
pub struct CancelFlag(Arc<std::sync::atomic::AtomicBool>);

impl CancelFlag {
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What the executors share: the cluster, the confinement roots, the keystore and a
/// cache of derived set keys (PBKDF2 is deliberately slow).
pub struct Deps {
    pub cluster: Arc<SledCluster>,
    pub roots: AllowedRoots,
    pub keystore: Keystore,
    keys: Mutex<HashMap<(String, u64), SetKey>>,
}

impl Deps {
    pub fn new(cluster: Arc<SledCluster>, roots: AllowedRoots, keystore: Keystore) -> Deps {
        Deps {
            cluster,
            roots,
            keystore,
            keys: Mutex::new(HashMap::new()),
        }
    }
}

/// The restore DAG's persisted parameters. Passwords appear only sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreDagParams {
    pub restore: ValidatedRestore,
    pub decryption_sealed: Option<String>,
    /// obshell's task time, part of the pool names.
    pub task_time: i64,
    /// User log streams (LS 1 is restored by "Restore sys tablets").
    pub user_ls: Vec<u64>,
}

/// One sub-task of `Restore data L`: a connected group of tablets and the files that
/// hold them, in chain order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataGroup {
    pub name: String,
    pub ls: u64,
    pub tablets: Vec<u64>,
    /// `(set_id, file_index)` in apply order.
    pub files: Vec<(u64, u64)>,
    pub bytes: u64,
}

/// The DAG name of a tenant's restore.
pub fn dag_name(tenant: &str) -> String {
    format!("Restore backup_{tenant}")
}

/// Builds the restore DAG.
pub fn restore_dag(params: &RestoreDagParams) -> DagSpec {
    let restore = &params.restore;
    let mut spec = DagSpec::new(dag_name(&restore.restore_tenant_name))
        .scope(Scope::Cluster)
        .params(serde_json::to_value(params).unwrap_or(Value::Null))
        .maintenance(Maintenance::Tenant(restore.restore_tenant_name.clone()))
        .pool("restore_data", restore.concurrency.max(1))
        .pool("ha_high", restore.ha_high_threads.max(1));
    let sys = spec.chain(
        None,
        vec![
            NodeSpec::new("Pre restore check", PRE_CHECK),
            NodeSpec::new("Create resource pools", CREATE_POOLS),
            NodeSpec::new("Create restoring tenant", CREATE_TENANT),
            NodeSpec::new("Restore sys tablets", SYS_TABLETS),
        ],
    );
    let post = spec.add_node(NodeSpec::new("Post check", POST_CHECK));
    for ls in &params.user_ls {
        let meta = spec.add_node(
            NodeSpec::new(format!("Restore tablets meta {ls}"), TABLETS_META)
                .sub_tasks(vec![json!({"ls": ls})]),
        );
        let data = spec.add_node(
            NodeSpec::new(format!("Restore data {ls}"), RESTORE_DATA)
                .dynamic_sub_tasks(groups_key(*ls))
                .pool("restore_data"),
        );
        let replay = spec.add_node(
            NodeSpec::new(format!("Replay log {ls}"), REPLAY_LOG)
                .sub_tasks(vec![json!({"ls": ls})])
                .pool("ha_high"),
        );
        if let Some(sys) = sys {
            spec.add_edge(sys, meta);
        }
        spec.add_edge(meta, data);
        spec.add_edge(data, replay);
        spec.add_edge(replay, post);
    }
    if params.user_ls.is_empty() {
        if let Some(sys) = sys {
            spec.add_edge(sys, post);
        }
    }
    spec.chain(
        Some(post),
        vec![
            NodeSpec::new("Activate tenant", ACTIVATE),
            NodeSpec::new("Upgrade tenant", UPGRADE),
        ],
    );
    // As obshell's restore context (`FAILURE_EXIT_MAINTENANCE`): a failed restore
    // releases the tenant lock; an operator takes it back (or finds it `Task.Expired`).
    spec.map_nodes(NodeSpec::failure_exit_maintenance)
}

fn groups_key(ls: u64) -> String {
    format!("data_groups_{ls}")
}

const PRE_CHECK: &str = "restore.pre_check";
const CREATE_POOLS: &str = "restore.create_pools";
const CREATE_TENANT: &str = "restore.create_tenant";
const SYS_TABLETS: &str = "restore.sys_tablets";
const TABLETS_META: &str = "restore.tablets_meta";
const RESTORE_DATA: &str = "restore.data";
const REPLAY_LOG: &str = "restore.replay_log";
const POST_CHECK: &str = "restore.post_check";
const ACTIVATE: &str = "restore.activate";
const UPGRADE: &str = "restore.upgrade";

#[derive(Debug, Clone, Copy)]
enum Step {
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

/// Registers every restore task type.
pub fn register(registry: &mut TaskRegistry, deps: Arc<Deps>) {
    let steps = [
        (PRE_CHECK, Step::PreCheck),
        (CREATE_POOLS, Step::CreatePools),
        (CREATE_TENANT, Step::CreateTenant),
        (SYS_TABLETS, Step::SysTablets),
        (TABLETS_META, Step::TabletsMeta),
        (RESTORE_DATA, Step::RestoreData),
        (REPLAY_LOG, Step::ReplayLog),
        (POST_CHECK, Step::PostCheck),
        (ACTIVATE, Step::Activate),
        (UPGRADE, Step::Upgrade),
    ];
    for (name, step) in steps {
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
                deps: Arc::clone(&deps),
            }) as Box<dyn Task>)
        });
    }
}

struct RestoreStep {
    step: Step,
    deps: Arc<Deps>,
}

fn err(message: impl std::fmt::Display) -> TaskError {
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

fn plan_of(ctx: &TaskContext) -> Result<RestorePlan, TaskError> {
    let value = ctx
        .input()
        .get("plan")
        .cloned()
        .ok_or_else(|| err("upstream output 'plan' is missing"))?;
    serde_json::from_value(value).map_err(|e| err(format!("restore plan is unreadable: {e}")))
}

fn creator(ctx: &TaskContext) -> String {
    format!("dag:{}", ctx.dag_id())
}

/// Runs blocking work off the async threads. `progress` messages are delivered to
/// `on_progress` while it runs; cancellation of the sub-task stops it between blocks.
async fn blocking<T, P, F>(
    ctx: &TaskContext,
    mut on_progress: impl FnMut(P),
    work: F,
) -> Result<T, TaskError>
where
    T: Send + 'static,
    P: Send + 'static,
    F: FnOnce(&mpsc::UnboundedSender<P>, &CancelFlag) -> Result<T, TaskError> + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let flag = CancelFlag::default();
    let worker_flag = flag.clone();
    let mut handle = tokio::task::spawn_blocking(move || work(&tx, &worker_flag));
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

impl Deps {
    fn stores(&self, plan: &RestorePlan) -> Result<(DataStore, ArchiveStore), TaskError> {
        let data = DataStore::open_uri(&plan.data_uri, &self.roots).map_err(err)?;
        let archive = ArchiveStore::open_uri(&plan.archive_uri, &self.roots).map_err(err)?;
        Ok((data, archive))
    }

    fn passwords(&self, params: &RestoreDagParams) -> Result<Vec<String>, TaskError> {
        match &params.decryption_sealed {
            Some(sealed) => self.keystore.unseal_passwords(sealed).map_err(err),
            None => Ok(Vec::new()),
        }
    }

    /// The data key of an encrypted set (cached), `None` for a plain set.
    fn set_key(
        &self,
        data: &DataStore,
        set: &BackupSetInfo,
        params: &RestoreDagParams,
    ) -> Result<Option<SetKey>, TaskError> {
        if set.encryption.is_none() {
            return Ok(None);
        }
        let cache_key = (data.uri(), set.backup_set_id);
        if let Some(key) = self
            .keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(&cache_key).cloned())
        {
            return Ok(Some(key));
        }
        let passwords = self.passwords(params)?;
        let key = data.unlock(set, &passwords).map_err(err)?.ok_or_else(|| {
            err(BackupError::InvalidPassword {
                set_id: set.backup_set_id,
            })
        })?;
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(cache_key, key.clone());
        }
        Ok(Some(key))
    }

    /// Moves the restore job to `status`.
    fn set_status(&self, job_id: u64, status: RestoreJobStatus) -> Result<(), TaskError> {
        let patch = RestoreJobPatch {
            status: Some(status),
            ..RestoreJobPatch::default()
        };
        self.cluster
            .update_restore_job(job_id, &patch)
            .map(|_| ())
            .map_err(err)
    }

    /// Applies `batch` (one durable cluster batch) and clears it.
    fn flush_rows(&self, tenant_id: u64, batch: &mut RowBatch) -> Result<(), TaskError> {
        if !batch.is_empty() {
            self.cluster.apply_batch(tenant_id, batch).map_err(err)?;
            batch.clear();
        }
        Ok(())
    }

    /// Restores one data group: every file of the group, set by set in chain order.
    fn restore_group(
        &self,
        plan: &RestorePlan,
        params: &RestoreDagParams,
        tenant_id: u64,
        group: &DataGroup,
        progress: &mpsc::UnboundedSender<u64>,
        cancel: &CancelFlag,
    ) -> Result<(), TaskError> {
        let (data, _) = self.stores(plan)?;
        let tablets: BTreeSet<u64> = group.tablets.iter().copied().collect();
        let mut batch = RowBatch::new();
        let mut files_by_set: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (set_id, file_index) in &group.files {
            files_by_set.entry(*set_id).or_default().push(*file_index);
        }
        for planned in &plan.sets {
            let set = &planned.info;
            let Some(wanted) = files_by_set.get(&set.backup_set_id) else {
                continue;
            };
            let key = self.set_key(&data, set, params)?;
            for file in data.data_files(set, group.ls).map_err(err)? {
                if !wanted.contains(&file.file_index) {
                    continue;
                }
                let mut reader = data.read_data_file(&file, key.as_ref()).map_err(err)?;
                while let Some(block) = reader.next_raw() {
                    if cancel.is_set() {
                        return Err(err("sub task cancelled"));
                    }
                    let block = block.map_err(err)?;
                    for row in block.rows().map_err(err)? {
                        if tablets.contains(&row.tablet_id) {
                            batch.push(row.tablet_id, row.key, row.value);
                        }
                    }
                    if batch.len() >= APPLY_BATCH_ROWS || batch.byte_len() >= APPLY_BATCH_BYTES {
                        self.flush_rows(tenant_id, &mut batch)?;
                    }
                    let _ = progress.send(block.stored_bytes);
                    if let Some(delay) = block_delay() {
                        std::thread::sleep(delay);
                    }
                }
            }
        }
        self.flush_rows(tenant_id, &mut batch)
    }

    /// Replays L's archived log in `(from, restore_scn]`, reporting the SCN below which
    /// everything is applied.
    fn replay_log(
        &self,
        plan: &RestorePlan,
        tenant_id: u64,
        ls: u64,
        from: u64,
        progress: &mpsc::UnboundedSender<u64>,
        cancel: &CancelFlag,
    ) -> Result<u64, TaskError> {
        let (_, archive) = self.stores(plan)?;
        let entries = archive
            .log_entries(&plan.piece_infos(), ls, Scn(from), plan.restore_scn)
            .map_err(err)?;
        let mut batch = RowBatch::new();
        let mut last_scn;
        let mut applied = 0u64;
        for entry in entries {
            let entry = entry.map_err(err)?;
            match entry.op {
                LogOp::Insert | LogOp::Update => {
                    batch.put(entry.tablet_id, &entry.key, &entry.value)
                }
                LogOp::Delete => batch.delete(entry.tablet_id, &entry.key),
            }
            last_scn = entry.scn.as_u64();
            applied += 1;
            if batch.len() >= APPLY_BATCH_ROWS || batch.byte_len() >= APPLY_BATCH_BYTES {
                if cancel.is_set() {
                    return Err(err("sub task cancelled"));
                }
                self.flush_rows(tenant_id, &mut batch)?;
                // Entries at `last_scn` may continue in the next batch, so only what is
                // strictly below it is known to be complete.
                let _ = progress.send(last_scn.saturating_sub(1));
            }
        }
        self.flush_rows(tenant_id, &mut batch)?;
        let _ = progress.send(plan.restore_scn.as_u64());
        Ok(applied)
    }
}

/// The restore job of a plan: sources, log stream and tablet counts, data bytes.
///
/// # Errors
/// The set metadata cannot be read.
pub fn new_restore_job(
    data: &DataStore,
    plan: &RestorePlan,
    restore: &ValidatedRestore,
    task_time: i64,
) -> Result<NewRestoreJob, BackupError> {
    let mut total_bytes = 0u64;
    let mut tablets = BTreeSet::new();
    let mut ls_ids = BTreeSet::new();
    for planned in &plan.sets {
        for attr in data.ls_attrs(&planned.info)? {
            ls_ids.insert(attr.ls_id);
            tablets.extend(attr.tablet_ids.iter().copied());
            for file in data.data_files(&planned.info, attr.ls_id)? {
                total_bytes += file.size_bytes;
            }
        }
    }
    let first = plan.sets.first().map(|s| s.info.clone());
    Ok(NewRestoreJob {
        restore_tenant_name: restore.restore_tenant_name.clone(),
        restore_scn: plan.restore_scn.as_u64(),
        data_backup_uri: restore.data_backup_uri.clone(),
        archive_log_uri: restore.archive_log_uri.clone(),
        backup_tenant_name: first.as_ref().map(|s| s.tenant_name.clone()),
        backup_tenant_id: first.as_ref().map(|s| s.tenant_id),
        backup_cluster_version: first.as_ref().map(|s| s.cluster_version.clone()),
        backup_cluster_name: Some(data.format().cluster_name.clone()),
        restore_option: restore_option(restore, task_time),
        backup_set_list: plan.sets.iter().map(|s| s.backup_dest.clone()).collect(),
        backup_piece_list: plan.pieces.iter().map(|p| p.backup_dest.clone()).collect(),
        ls_count: ls_ids.len() as u64,
        tablet_count: tablets.len() as u64,
        total_bytes,
    })
}

/// OceanBase's `RESTORE_OPTION` of a restore: `pool_list=..&locality=..&primary_zone=..
/// &concurrency=..&ha_high_thread_score=..`.
pub fn restore_option(restore: &ValidatedRestore, task_time: i64) -> String {
    let pools: Vec<String> = restore
        .pool_specs(task_time)
        .into_iter()
        .map(|pool| pool.name)
        .collect();
    format!(
        "pool_list={}&locality={}&primary_zone={}&concurrency={}&ha_high_thread_score={}",
        pools.join(","),
        crate::cluster::locality(&restore.tenant_zones()),
        restore.primary_zone,
        restore.concurrency,
        restore.ha_high_thread_score
    )
}

/// Groups L's data files of the chain into connected components of tablets.
fn data_groups(
    data: &DataStore,
    plan: &RestorePlan,
    ls: u64,
) -> Result<Vec<DataGroup>, BackupError> {
    // Union-find over tablets: a file joins all the tablets it holds.
    let mut parent: BTreeMap<u64, u64> = BTreeMap::new();
    fn find(parent: &mut BTreeMap<u64, u64>, x: u64) -> u64 {
        let mut root = x;
        while let Some(&p) = parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        parent.insert(x, root);
        root
    }
    let mut files = Vec::new();
    for planned in &plan.sets {
        for file in data.data_files(&planned.info, ls)? {
            for tablet in &file.tablet_ids {
                parent.entry(*tablet).or_insert(*tablet);
            }
            if let Some((first, rest)) = file.tablet_ids.split_first() {
                for tablet in rest {
                    let (a, b) = (find(&mut parent, *first), find(&mut parent, *tablet));
                    if a != b {
                        parent.insert(a.max(b), a.min(b));
                    }
                }
            }
            files.push((planned.info.backup_set_id, file));
        }
    }
    let mut groups: BTreeMap<u64, DataGroup> = BTreeMap::new();
    let tablets: Vec<u64> = parent.keys().copied().collect();
    for tablet in tablets {
        let root = find(&mut parent, tablet);
        groups
            .entry(root)
            .or_insert_with(|| DataGroup {
                name: String::new(),
                ls,
                tablets: Vec::new(),
                files: Vec::new(),
                bytes: 0,
            })
            .tablets
            .push(tablet);
    }
    for (set_id, file) in files {
        let Some(first) = file.tablet_ids.first() else {
            continue;
        };
        let root = find(&mut parent, *first);
        if let Some(group) = groups.get_mut(&root) {
            group.files.push((set_id, file.file_index));
            group.bytes += file.size_bytes;
        }
    }
    Ok(groups
        .into_values()
        .enumerate()
        .map(|(index, mut group)| {
            group.name = format!("Restore data {ls} group {}", index + 1);
            group
        })
        .collect())
}

#[async_trait]
impl Task for RestoreStep {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let params = params_of(ctx)?;
        let deps = Arc::clone(&self.deps);
        match self.step {
            Step::PreCheck => self.pre_check(ctx, params).await,
            Step::CreatePools => {
                let specs = params.restore.pool_specs(params.task_time);
                let creator = creator(ctx);
                let pools = blocking(
                    ctx,
                    |()| {},
                    move |_, _| deps.cluster.create_pools(&specs, &creator).map_err(err),
                )
                .await?;
                let names: Vec<String> = pools.iter().map(|p| p.name.clone()).collect();
                ctx.info(format!("created resource pools {}", names.join(", ")));
                ctx.set_output("pool_names", json!(names));
                Ok(())
            }
            Step::CreateTenant => {
                let names: Vec<String> = params
                    .restore
                    .pool_specs(params.task_time)
                    .into_iter()
                    .map(|p| p.name)
                    .collect();
                let plan = plan_of(ctx)?;
                let job_id = input_u64(ctx, "job_id")?;
                let version = plan
                    .sets
                    .first()
                    .map(|s| s.info.cluster_version.clone())
                    .unwrap_or_default();
                let tenant = params.restore.restoring_tenant(names, &version);
                let creator = creator(ctx);
                let created = blocking(
                    ctx,
                    |()| {},
                    move |_, _| {
                        let tenant = deps.cluster.create_tenant(&tenant, &creator).map_err(err)?;
                        let patch = RestoreJobPatch {
                            status: Some(RestoreJobStatus::CreateTenant),
                            restore_tenant_id: Some(tenant.id),
                            ..RestoreJobPatch::default()
                        };
                        deps.cluster
                            .update_restore_job(job_id, &patch)
                            .map_err(err)?;
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
            Step::SysTablets => {
                let plan = plan_of(ctx)?;
                let tenant_id = input_u64(ctx, "tenant_id")?;
                let job_id = input_u64(ctx, "job_id")?;
                let restore_scn = plan.restore_scn.as_u64();
                let start = plan.restore_start_scn.as_u64();
                let (data, _) = deps.stores(&plan)?;
                let groups = data_groups(&data, &plan, SYS_LS).map_err(err)?;
                let total: u64 = groups.iter().map(|g| g.bytes).sum();
                let mut done = 0u64;
                blocking(
                    ctx,
                    |bytes: u64| done += bytes,
                    move |progress, cancel| {
                        deps.set_status(job_id, RestoreJobStatus::RestoreSysTablets)?;
                        let (scn_tx, _scn_rx) = mpsc::unbounded_channel();
                        for group in &groups {
                            deps.restore_group(&plan, &params, tenant_id, group, progress, cancel)?;
                            let tablets = group.tablets.len() as u64;
                            deps.cluster
                                .record_restore_part(
                                    job_id,
                                    &format!("data/{SYS_LS}/{}", group.name),
                                    PartProgress {
                                        bytes: group.bytes,
                                        tablets,
                                    },
                                )
                                .map_err(err)?;
                        }
                        deps.replay_log(&plan, tenant_id, SYS_LS, start, &scn_tx, cancel)?;
                        deps.cluster
                            .set_ls_sync_scn(tenant_id, SYS_LS, restore_scn)
                            .map_err(err)?;
                        deps.cluster
                            .finish_restore_ls(job_id, SYS_LS)
                            .map_err(err)?;
                        Ok(())
                    },
                )
                .await?;
                ctx.info(format!(
                    "restored sys tablets: {done} of {total} bytes, log replayed to {restore_scn}"
                ));
                Ok(())
            }
            Step::TabletsMeta => {
                let plan = plan_of(ctx)?;
                let ls = ctx
                    .params()
                    .get("ls")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| err("sub-task parameter 'ls' is missing"))?;
                let job_id = input_u64(ctx, "job_id")?;
                let groups = blocking(
                    ctx,
                    |()| {},
                    move |_, _| {
                        let (data, _) = deps.stores(&plan)?;
                        let groups = data_groups(&data, &plan, ls).map_err(err)?;
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
            Step::RestoreData => {
                let plan = plan_of(ctx)?;
                let tenant_id = input_u64(ctx, "tenant_id")?;
                let job_id = input_u64(ctx, "job_id")?;
                let group: DataGroup = serde_json::from_value(ctx.params().clone())
                    .map_err(|e| err(format!("data group is unreadable: {e}")))?;
                let part = format!("data/{}/{}", group.ls, group.name);
                let mut done = 0u64;
                let worker_group = group.clone();
                blocking(
                    ctx,
                    |bytes: u64| done += bytes,
                    move |progress, cancel| {
                        deps.restore_group(
                            &plan,
                            &params,
                            tenant_id,
                            &worker_group,
                            progress,
                            cancel,
                        )?;
                        let tablets = worker_group.tablets.len() as u64;
                        deps.cluster
                            .record_restore_part(
                                job_id,
                                &part,
                                PartProgress {
                                    bytes: worker_group.bytes,
                                    tablets,
                                },
                            )
                            .map_err(err)
                    },
                )
                .await?;
                ctx.set_additional_data(
                    "restored_bytes",
                    json!({ group.name.clone(): group.bytes }),
                );
                ctx.info(format!(
                    "{}: {} tablets, {} bytes",
                    group.name,
                    group.tablets.len(),
                    done
                ));
                Ok(())
            }
            Step::ReplayLog => {
                let plan = plan_of(ctx)?;
                let tenant_id = input_u64(ctx, "tenant_id")?;
                let job_id = input_u64(ctx, "job_id")?;
                let ls = ctx
                    .params()
                    .get("ls")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| err("sub-task parameter 'ls' is missing"))?;
                let restore_scn = plan.restore_scn.as_u64();
                // Resume after the last complete SCN of an interrupted run.
                let from = ctx
                    .local("replayed_scn")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
                    .max(plan.restore_start_scn.as_u64());
                let mut last = from;
                let applied = blocking(
                    ctx,
                    |scn: u64| {
                        last = scn;
                        ctx.set_local("replayed_scn", json!(scn));
                    },
                    move |progress, cancel| {
                        deps.set_status(job_id, RestoreJobStatus::ReplayLog)?;
                        let applied =
                            deps.replay_log(&plan, tenant_id, ls, from, progress, cancel)?;
                        deps.cluster
                            .set_ls_sync_scn(tenant_id, ls, restore_scn)
                            .map_err(err)?;
                        deps.cluster.finish_restore_ls(job_id, ls).map_err(err)?;
                        deps.cluster
                            .update_restore_job(
                                job_id,
                                &RestoreJobPatch {
                                    recover_scn: Some(restore_scn),
                                    ..RestoreJobPatch::default()
                                },
                            )
                            .map_err(err)?;
                        Ok(applied)
                    },
                )
                .await?;
                ctx.info(format!(
                    "log stream {ls}: replayed {applied} log entries after {from} up to {last}"
                ));
                Ok(())
            }
            Step::PostCheck => {
                let plan = plan_of(ctx)?;
                let tenant_id = input_u64(ctx, "tenant_id")?;
                let job_id = input_u64(ctx, "job_id")?;
                let restore_scn = plan.restore_scn.as_u64();
                let mut expected_ls = vec![SYS_LS];
                expected_ls.extend(params.user_ls.iter().copied());
                let name = params.restore.restore_tenant_name.clone();
                let digest = blocking(ctx, |()| {}, move |_, _| {
                    deps.set_status(job_id, RestoreJobStatus::PostCheck)?;
                    let tenant = deps.cluster.tenant_by_id(tenant_id).map_err(err)?.ok_or_else(|| err(format!("tenant {tenant_id} disappeared")))?;
                    for ls in &expected_ls {
                        let scn = tenant.ls_sync_scn.get(ls).copied().unwrap_or(0);
                        if scn != restore_scn {
                            return Err(err(format!("log stream {ls} is at sync_scn {scn}, expected restore_scn {restore_scn}")));
                        }
                    }
                    crate::verify::restored_digest(&deps.cluster, &name).map_err(err)
                })
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
            Step::Activate => {
                let tenant_id = input_u64(ctx, "tenant_id")?;
                let job_id = input_u64(ctx, "job_id")?;
                blocking(
                    ctx,
                    |()| {},
                    move |_, _| {
                        deps.set_status(job_id, RestoreJobStatus::Activate)?;
                        deps.cluster.activate_tenant(tenant_id).map_err(err)
                    },
                )
                .await?;
                ctx.info("tenant activated: STANDBY → PRIMARY");
                Ok(())
            }
            Step::Upgrade => {
                let tenant_id = input_u64(ctx, "tenant_id")?;
                let job_id = input_u64(ctx, "job_id")?;
                blocking(
                    ctx,
                    |()| {},
                    move |_, _| {
                        deps.set_status(job_id, RestoreJobStatus::Upgrade)?;
                        deps.cluster
                            .upgrade_tenant(tenant_id, CURRENT_DATA_VERSION)
                            .map_err(err)?;
                        deps.cluster
                            .finish_restore_job(job_id, RestoreOutcome::Success, None)
                            .map_err(err)
                    },
                )
                .await?;
                ctx.info(format!(
                    "tenant upgraded to data version {CURRENT_DATA_VERSION}; restore finished"
                ));
                Ok(())
            }
        }
    }

    async fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let params = params_of(ctx)?;
        let deps = Arc::clone(&self.deps);
        let creator = creator(ctx);
        let tenant = params.restore.restore_tenant_name.clone();
        match self.step {
            Step::PreCheck => {
                blocking(
                    ctx,
                    |()| {},
                    move |_, _| {
                        if let Some(job) = deps.cluster.active_restore_job(&tenant).map_err(err)? {
                            if job.creator == creator {
                                deps.cluster
                                    .finish_restore_job(
                                        job.job_id,
                                        RestoreOutcome::Fail,
                                        Some("restore rolled back"),
                                    )
                                    .map_err(err)?;
                            }
                        }
                        Ok(())
                    },
                )
                .await?;
                ctx.info("restore job closed");
            }
            Step::CreatePools => {
                let names: Vec<String> = params
                    .restore
                    .pool_specs(params.task_time)
                    .into_iter()
                    .map(|p| p.name)
                    .collect();
                let dropped = blocking(
                    ctx,
                    |()| {},
                    move |_, _| deps.cluster.drop_pools(&names).map_err(err),
                )
                .await?;
                ctx.info(format!("dropped {dropped} resource pools"));
            }
            Step::CreateTenant => {
                let dropped = blocking(
                    ctx,
                    |()| {},
                    move |_, _| match deps.cluster.tenant(&tenant).map_err(err)? {
                        Some(existing) if existing.creator.as_deref() == Some(creator.as_str()) => {
                            deps.cluster.drop_tenant(&tenant).map_err(err)
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
            }
            _ => {}
        }
        Ok(())
    }
}

impl RestoreStep {
    async fn pre_check(
        &self,
        ctx: &TaskContext,
        params: RestoreDagParams,
    ) -> Result<(), TaskError> {
        let deps = Arc::clone(&self.deps);
        let creator = creator(ctx);
        let (plan, job_id) = blocking(
            ctx,
            |()| {},
            move |_, _| {
                let restore = &params.restore;
                let passwords = deps.passwords(&params)?;
                let data =
                    DataStore::open_uri(&restore.data_backup_uri, &deps.roots).map_err(err)?;
                let archive =
                    ArchiveStore::open_uri(&restore.archive_log_uri, &deps.roots).map_err(err)?;
                let target = match restore.target.scn() {
                    Some(scn) => obrestore_backup::RestoreTarget::Scn(Scn(scn)),
                    None => obrestore_backup::RestoreTarget::Latest,
                };
                let plan = obrestore_backup::plan_restore(&data, &archive, &target, &passwords)
                    .map_err(err)?;
                let job = new_restore_job(&data, &plan, restore, params.task_time).map_err(err)?;
                let job = deps
                    .cluster
                    .start_restore_job(&job, &creator)
                    .map_err(err)?;
                Ok((plan, job.job_id))
            },
        )
        .await?;
        ctx.info(format!(
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
        ));
        ctx.set_additional_data("restore_job_id", json!(job_id));
        ctx.set_output("job_id", json!(job_id));
        ctx.set_output("restore_scn", json!(plan.restore_scn.as_u64()));
        ctx.set_output("plan", serde_json::to_value(&plan).map_err(err)?);
        Ok(())
    }
}
