//! The failpoints of the restore steps, compiled only with the `failpoints` cargo
//! feature (as sled's are): the block delay of `Restore data`, a cap on the rows of an
//! applied batch, the budget of a log stream's key set, a failure injected right after a
//! step's side effects, and the steps' crash points.
//!
//! With the feature, `OBRESTORE_FAILPOINT_BLOCK_DELAY_MS=N` in the environment (or
//! [`set_block_delay_failpoint`]) makes `Restore data` sleep N ms after each data block,
//! so that a test can reliably act in the middle of the stage however fast the machine
//! is; off (0) by default, when it costs one atomic load per block. Invariant: without
//! the feature [`block_delay`] is a constant `None` and nothing reads the environment.
//!
//! Crash points ([`obrestore_dag::crash_point`], armed by `OBRESTORE_CRASH_POINT`):
//! [`crash_point`] is called right after each cluster write a step makes, and names the
//! point `step:<step>:<write>` after the step whose blocking work runs on this thread
//! ([`in_step`]), e.g. `step:Create restoring tenant:after-create-tenant`.

use std::time::Duration;

/// The environment variable of the block delay, in milliseconds.
#[cfg(feature = "failpoints")]
pub const BLOCK_DELAY_FAILPOINT: &str = "OBRESTORE_FAILPOINT_BLOCK_DELAY_MS";

/// A process-wide failpoint value: the one a test set through its setter, else the one
/// read (once) from its environment variable; `None` when neither says anything.
#[cfg(feature = "failpoints")]
struct Knob {
    var: &'static str,
    /// [`Knob::UNREAD`], [`Knob::NONE`] or the value.
    value: std::sync::atomic::AtomicU64,
}

#[cfg(feature = "failpoints")]
impl Knob {
    const UNREAD: u64 = u64::MAX;
    const NONE: u64 = u64::MAX - 1;

    const fn new(var: &'static str) -> Knob {
        Knob {
            var,
            value: std::sync::atomic::AtomicU64::new(Knob::UNREAD),
        }
    }

    /// Sets the value for the whole process (values from `NONE` on are taken as
    /// `NONE - 1`).
    fn set(&self, value: Option<u64>) {
        let stored = value.map_or(Knob::NONE, |value| value.min(Knob::NONE - 1));
        self.value
            .store(stored, std::sync::atomic::Ordering::Relaxed);
    }

    fn get(&self) -> Option<u64> {
        use std::sync::atomic::Ordering;
        let mut value = self.value.load(Ordering::Relaxed);
        if value == Knob::UNREAD {
            value = std::env::var(self.var)
                .ok()
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map_or(Knob::NONE, |value| value.min(Knob::NONE - 1));
            let _ = self.value.compare_exchange(
                Knob::UNREAD,
                value,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        (value != Knob::NONE).then_some(value)
    }
}

#[cfg(feature = "failpoints")]
static BLOCK_DELAY_MS: Knob = Knob::new(BLOCK_DELAY_FAILPOINT);

/// Sets the [`BLOCK_DELAY_FAILPOINT`] delay for the whole process (0 turns it off).
#[cfg(feature = "failpoints")]
pub fn set_block_delay_failpoint(ms: u64) {
    BLOCK_DELAY_MS.set(Some(ms));
}

/// How long `Restore data` sleeps after a data block, if at all.
#[cfg(feature = "failpoints")]
pub(crate) fn block_delay() -> Option<Duration> {
    BLOCK_DELAY_MS
        .get()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

/// The environment variable capping the rows of one applied batch (at least 1), so a
/// small backup's workers apply many batches (tests of crashes between batches).
#[cfg(feature = "failpoints")]
pub const APPLY_BATCH_ROWS_FAILPOINT: &str = "OBRESTORE_FAILPOINT_APPLY_BATCH_ROWS";

/// Rows per applied batch: `rows`, or the [`APPLY_BATCH_ROWS_FAILPOINT`] cap if set.
#[cfg(feature = "failpoints")]
pub(crate) fn apply_batch_rows(rows: usize) -> usize {
    static CAP: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let cap = CAP.get_or_init(|| {
        std::env::var(APPLY_BATCH_ROWS_FAILPOINT)
            .ok()
            .and_then(|rows| rows.trim().parse::<usize>().ok())
            .filter(|rows| *rows > 0)
    });
    cap.map_or(rows, |cap| cap.min(rows))
}

/// Without the `failpoints` feature batches are not capped.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn apply_batch_rows(rows: usize) -> usize {
    rows
}

/// The environment variable overriding the byte budget of a log stream's key set
/// (`data/log_keys.rs`), so a test can make a stream fall back to writing every row.
#[cfg(feature = "failpoints")]
pub const LOG_KEYS_BUDGET_FAILPOINT: &str = "OBRESTORE_FAILPOINT_LOG_KEYS_BUDGET";

#[cfg(feature = "failpoints")]
static LOG_KEYS_BUDGET: Knob = Knob::new(LOG_KEYS_BUDGET_FAILPOINT);

/// Sets the [`LOG_KEYS_BUDGET_FAILPOINT`] budget for the whole process (`None`: the
/// built-in budget).
#[cfg(feature = "failpoints")]
pub fn set_log_keys_budget_failpoint(bytes: Option<usize>) {
    LOG_KEYS_BUDGET.set(bytes.map(|bytes| u64::try_from(bytes).unwrap_or(u64::MAX)));
}

/// The byte budget of a stream's key set: `budget`, or the failpoint's if set.
#[cfg(feature = "failpoints")]
pub(crate) fn log_keys_budget(budget: usize) -> usize {
    LOG_KEYS_BUDGET
        .get()
        .map_or(budget, |bytes| usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// Without the `failpoints` feature the budget is the built-in one.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn log_keys_budget(budget: usize) -> usize {
    budget
}

/// `(task type, tenant)` pairs whose next attempt fails after its side effects
/// ([`fail_after_step_once`]).
#[cfg(feature = "failpoints")]
static FAIL_AFTER: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Makes the next attempt of restore task type `task_type` (e.g. `restore.upgrade`) in the
/// restore of `tenant` fail once, *after* all its side effects: what a re-run sees when
/// the process died between the step's work and the commit of its SUCCEED. A re-run
/// (RETRY, or the restart after a crash) must then converge: every step is idempotent.
#[cfg(feature = "failpoints")]
pub fn fail_after_step_once(task_type: &str, tenant: &str) {
    if let Ok(mut armed) = FAIL_AFTER.lock() {
        armed.push((task_type.to_string(), tenant.to_string()));
    }
}

/// The injected failure of [`fail_after_step_once`], if armed for this step and tenant.
#[cfg(feature = "failpoints")]
pub(crate) fn after_step(task_type: &str, tenant: &str) -> Result<(), obrestore_dag::TaskError> {
    let Ok(mut armed) = FAIL_AFTER.lock() else {
        return Ok(());
    };
    match armed
        .iter()
        .position(|(t, n)| t == task_type && n == tenant)
    {
        Some(index) => {
            armed.swap_remove(index);
            Err(obrestore_dag::TaskError::new(format!(
                "failpoint: {task_type} failed after its side effects"
            )))
        }
        None => Ok(()),
    }
}

/// Without the `failpoints` feature nothing fails.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn after_step(_task_type: &str, _tenant: &str) -> Result<(), obrestore_dag::TaskError> {
    Ok(())
}

/// Without the `failpoints` feature there is no delay.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn block_delay() -> Option<Duration> {
    None
}

#[cfg(feature = "failpoints")]
thread_local! {
    /// The step whose blocking work runs on this thread ([`in_step`]).
    static STEP: std::cell::Cell<&'static str> = const { std::cell::Cell::new("") };
}

/// Runs `work` (a step's blocking work) with `step` as the step its crash points name.
#[cfg(feature = "failpoints")]
pub(crate) fn in_step<T>(step: &'static str, work: impl FnOnce() -> T) -> T {
    let outer = STEP.with(|current| current.replace(step));
    let result = work();
    STEP.with(|current| current.set(outer));
    result
}

/// The crash point `step:<step>:<write>` right after cluster write `write` of the
/// step running on this thread: the process aborts here if the point is armed.
#[cfg(feature = "failpoints")]
pub(crate) fn crash_point(write: &str) {
    let step = STEP.with(std::cell::Cell::get);
    obrestore_dag::crash_point::hit(&format!("step:{step}:{write}"));
}

/// Without the `failpoints` feature the work just runs.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn in_step<T>(_step: &'static str, work: impl FnOnce() -> T) -> T {
    work()
}

/// Without the `failpoints` feature there is no crash point.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn crash_point(_write: &str) {}
