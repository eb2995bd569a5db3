//! A worker's rows on their way to the cluster. [`BatchSink`] collects rows into a
//! [`RowBatch`]; when the batch is full it is written as the tenant's next run (to the
//! page cache: [`SledCluster::stage_rows`](crate::SledCluster::stage_rows)) and emptied,
//! and a helper thread makes that run durable (`fdatasync`, rename, directory `fsync`:
//! [`SledCluster::commit_rows`](crate::SledCluster::commit_rows)) while the worker reads
//! and decodes the next batch into the same buffer.
//!
//! Invariants: at most one batch per worker is being committed, and a batch is committed
//! only after the one before it is durable, so batches become durable whole, in order and
//! one at a time, as when the worker applied them itself (each has its sequence number
//! from the moment it is written, so a later batch wins over an earlier one whatever
//! happens). A batch's tag (a replay's SCN) is returned only once that batch is durable,
//! and [`BatchSink::finish`] returns only when every row is. No row data is held twice:
//! the helper thread commits a written file, not a batch. The helper threads are scoped:
//! a worker that stops early (an error, a cancellation) still waits for its commit in
//! flight, and a written batch it gives up is removed.

use std::thread::{Scope, ScopedJoinHandle};

use obrestore_dag::TaskError;

use super::{APPLY_BATCH_BYTES, APPLY_BATCH_ROWS};
use crate::cluster::RowBatch;
use crate::executors::failpoint::{apply_batch_rows, crash_point, current_step, in_step};
use crate::executors::steps::err;
use crate::executors::Deps;

/// The batch being committed on a helper thread and its tag.
struct InFlight<'scope> {
    tag: u64,
    commit: ScopedJoinHandle<'scope, Result<(), TaskError>>,
}

/// Rows of one worker, applied in durable batches of at most [`APPLY_BATCH_ROWS`] rows /
/// [`APPLY_BATCH_BYTES`] bytes, the previous batch committed while the next one fills.
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

    /// Waits for the commit in flight; returns its tag once it is durable.
    fn wait(&mut self) -> Result<Option<u64>, TaskError> {
        let Some(InFlight { tag, commit }) = self.in_flight.take() else {
            return Ok(None);
        };
        commit
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok(Some(tag))
    }

    /// Writes the batch being filled (tagged `tag`) and empties it; once the batch in
    /// flight is durable, a helper thread commits this one. Returns the tag of that
    /// previous batch.
    ///
    /// # Errors
    /// Writing this batch or committing the previous one failed (this one is then
    /// removed, never applied).
    pub(in crate::executors) fn send(&mut self, tag: u64) -> Result<Option<u64>, TaskError> {
        let staged = self
            .deps
            .cluster
            .stage_rows(self.tenant_id, &self.batch)
            .map_err(err)?;
        self.batch.clear();
        let previous = self.wait()?;
        let Some(staged) = staged else {
            return Ok(previous);
        };
        let (deps, step) = (self.deps, current_step());
        let commit = std::thread::Builder::new()
            .name("restore-commit".to_string())
            .spawn_scoped(self.scope, move || {
                in_step(step, || {
                    deps.cluster.commit_rows(staged).map_err(err)?;
                    crash_point("after-apply-rows");
                    Ok(())
                })
            })
            // The sub-task fails (and is retried: executors are idempotent); the written
            // batch went with the closure and was removed.
            .map_err(|e| err(format!("cannot start a thread to commit rows: {e}")))?;
        self.in_flight = Some(InFlight { tag, commit });
        Ok(previous)
    }

    /// Applies what is left; `Ok` once every row handed to this sink is durable.
    ///
    /// # Errors
    /// A write or commit failed.
    pub(in crate::executors) fn finish(mut self) -> Result<(), TaskError> {
        self.wait()?;
        self.deps.flush_rows(self.tenant_id, &mut self.batch)
    }
}
