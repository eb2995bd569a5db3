//! The restore DAG of SPEC §4.3 and its step executors.
//!
//! ```text
//! Pre restore check → Create resource pools → Create restoring tenant → Restore sys tablets
//!    → for each user log stream L: Restore tablets meta L → Restore data L → Replay log L
//!    → Post check → Activate tenant → Upgrade tenant
//! ```
//!
//! - `executors/dag.rs`: the DAG's shape, laid out at submit from [`RestoreDagParams`];
//! - `executors/steps.rs`: one function per step (and per undoable step's rollback); the task type
//!   only dispatches to them;
//! - `executors/data.rs`: reading the backup into the cluster: data groups, `Restore data`, log
//!   replay; `data/log_keys.rs`: the rows a stream's log rewrites, which its data rounds skip.
//!
//! The plan is made once, at submit ([`crate::prepare`]), and stored in the DAG's
//! parameters; every step reads it from there. `Restore data L` is a dynamic fan-out:
//! `Restore tablets meta L` groups L's data files (across the whole set chain) into
//! connected components of tablets and outputs one sub-task per component, so no file is
//! read twice and each tablet's sets are applied in chain order. Every executor is
//! idempotent (rows are upserts and deletes with full values, creations carry a creator
//! token), so a restart mid-stage re-runs it safely. Blocking work (the backup's files,
//! the cluster) runs on the blocking pool, never on an async thread.

mod dag;
mod data;
mod failpoint;
mod read_ahead;
mod steps;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use obrestore_backup::{AllowedRoots, RestorePlan, SetKey};
use serde::{Deserialize, Serialize};

use crate::cluster::SledCluster;
use crate::keystore::Keystore;
use crate::param::ValidatedRestore;

pub use dag::{dag_name, restore_dag};
use data::{BatchPool, LogKeysCache};
pub use data::{CancelFlag, DataGroup};
#[cfg(feature = "failpoints")]
pub use failpoint::{
    fail_after_step_once, set_block_delay_failpoint, set_log_keys_budget_failpoint,
    APPLY_BATCH_ROWS_FAILPOINT, BLOCK_DELAY_FAILPOINT, LOG_KEYS_BUDGET_FAILPOINT,
};
pub use steps::register;

/// The data version a restored tenant is upgraded to.
pub const CURRENT_DATA_VERSION: &str = "4.2.4.0";
/// The sys log stream.
pub const SYS_LS: u64 = 1;

/// What the executors share: the cluster, the confinement roots, the keystore and a
/// cache of derived set keys (PBKDF2 is deliberately slow).
pub struct Deps {
    pub cluster: Arc<SledCluster>,
    pub roots: AllowedRoots,
    pub keystore: Keystore,
    keys: Mutex<HashMap<(String, u64), SetKey>>,
    /// The archive log read-aheads running, by restore DAG.
    read_aheads: Arc<read_ahead::ReadAheads>,
    /// Row batches reused by the data and replay workers.
    batches: BatchPool,
    /// The log streams' key sets the data rounds skip, while rounds hold them.
    log_keys: LogKeysCache,
}

impl Deps {
    pub fn new(cluster: Arc<SledCluster>, roots: AllowedRoots, keystore: Keystore) -> Deps {
        Deps {
            cluster,
            roots,
            keystore,
            keys: Mutex::new(HashMap::new()),
            read_aheads: Arc::default(),
            batches: BatchPool::default(),
            log_keys: LogKeysCache::default(),
        }
    }
}

/// The restore DAG's persisted parameters: the validated request and the plan made at
/// submit. Passwords appear only sealed (the plan's set keys are never serialized).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreDagParams {
    pub restore: ValidatedRestore,
    pub decryption_sealed: Option<String>,
    /// obshell's task time, part of the pool names.
    pub task_time: i64,
    /// User log streams (LS 1 is restored by "Restore sys tablets").
    pub user_ls: Vec<u64>,
    /// The sets and pieces, planned once at submit; "Pre restore check" checks that they
    /// are still there and every later step reads them from here.
    pub plan: RestorePlan,
}
