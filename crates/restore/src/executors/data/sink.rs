//! A worker's rows on their way to the cluster. [`BatchSink`] collects rows into a
//! [`RowBatch`]; when the batch is full it is applied (one durable cluster batch) on a
//! helper thread while the worker goes on reading and decoding the next one.
//!
//! Invariants: at most one batch is in flight, and a batch is handed over only after the
//! one before it was applied, so batches reach the cluster whole, in order and one at a
//! time, exactly as when the worker applied them itself; only the worker's reads and
//! decoding overlap the previous batch's run write and `fdatasync`. A batch's tag (a
//! replay's SCN) is returned only once that batch is durable, and [`BatchSink::finish`]
//! returns only when every row is. The helper threads are scoped: a worker that stops
//! early (an error, a cancellation) still waits for its batch in flight before it returns.

use std::thread::{Scope, ScopedJoinHandle};

use obrestore_dag::TaskError;

use super::{APPLY_BATCH_BYTES, APPLY_BATCH_ROWS};
use crate::cluster::RowBatch;
use crate::executors::failpoint::{apply_batch_rows, current_step, in_step};
use crate::executors::steps::err;
use crate::executors::Deps;

/// The batch being applied on a helper thread and its tag.
struct InFlight<'scope> {
    tag: u64,
    apply: ScopedJoinHandle<'scope, Result<RowBatch, TaskError>>,
}

/// Rows of one worker, applied in durable batches of at most [`APPLY_BATCH_ROWS`] rows /
/// [`APPLY_BATCH_BYTES`] bytes, the previous batch applied while the next one fills.
pub(in crate::executors) struct BatchSink<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    deps: &'env Deps,
    tenant_id: u64,
    batch: RowBatch,
    in_flight: Option<InFlight<'scope>>,
}

impl<'scope, 'env> BatchSink<'scope, 'env> {
    pub(in crate::executors) fn new(
        scope: &'scope Scope<'scope, 'env>,
        deps: &'env Deps,
        tenant_id: u64,
    ) -> Self {
        BatchSink {
            scope,
            deps,
            tenant_id,
            batch: RowBatch::new(),
            in_flight: None,
        }
    }

    /// The batch being filled.
    pub(in crate::executors) fn batch(&mut self) -> &mut RowBatch {
        &mut self.batch
    }

    /// Whether the batch being filled has reached a batch's limit.
    pub(in crate::executors) fn is_full(&self) -> bool {
        let rows = apply_batch_rows().unwrap_or(APPLY_BATCH_ROWS);
        self.batch.len() >= rows || self.batch.byte_len() >= APPLY_BATCH_BYTES
    }

    /// Waits for the batch in flight; returns its tag and its emptied buffer (for reuse).
    fn wait(&mut self) -> Result<Option<(u64, RowBatch)>, TaskError> {
        let Some(InFlight { tag, apply }) = self.in_flight.take() else {
            return Ok(None);
        };
        let emptied = apply
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok(Some((tag, emptied)))
    }

    /// Hands the batch being filled (tagged `tag`) to a helper thread once the batch in
    /// flight is applied. Returns the tag of that previous batch, now durable.
    ///
    /// # Errors
    /// The previous batch's apply failed (this one is then not applied).
    pub(in crate::executors) fn send(&mut self, tag: u64) -> Result<Option<u64>, TaskError> {
        let (previous, spare) = match self.wait()? {
            Some((previous, spare)) => (Some(previous), spare),
            None => (None, RowBatch::new()),
        };
        if self.batch.is_empty() {
            return Ok(previous);
        }
        let mut full = std::mem::replace(&mut self.batch, spare);
        let (deps, tenant_id, step) = (self.deps, self.tenant_id, current_step());
        let apply = std::thread::Builder::new()
            .name("restore-apply".to_string())
            .spawn_scoped(self.scope, move || {
                in_step(step, || {
                    deps.flush_rows(tenant_id, &mut full).map(|()| full)
                })
            })
            // The sub-task fails (and is retried: executors are idempotent); nothing of
            // this batch was applied.
            .map_err(|e| err(format!("cannot start a thread to apply rows: {e}")))?;
        self.in_flight = Some(InFlight { tag, apply });
        Ok(previous)
    }

    /// Applies what is left; `Ok` once every row handed to this sink is durable.
    ///
    /// # Errors
    /// An apply failed.
    pub(in crate::executors) fn finish(mut self) -> Result<(), TaskError> {
        self.wait()?;
        self.deps.flush_rows(self.tenant_id, &mut self.batch)
    }
}
