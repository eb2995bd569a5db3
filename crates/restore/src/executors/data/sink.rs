//! Where a worker's rows go: one [`RowBatch`] applied to the cluster when full, either on
//! the worker's own thread or "one behind" on a helper thread while the worker fills the
//! next batch.
//!
//! Why: a step that runs alone on the critical path (`Restore sys tablets`, the last
//! `Replay log`) used one core and alternated between decoding (reads, CRCs, entries into
//! the batch) and applying (sort, SHA-256 of the values, run write, `fdatasync`, rename,
//! directory `fsync`); one behind, the two overlap on both cores. The data workers of the
//! user log streams keep the inline sink: their rounds already keep both cores busy, and a
//! second batch per worker would raise the peak RSS by one batch per concurrent worker.
//!
//! Invariants: at most one batch is in flight per sink, and a batch is handed over only
//! after the one before it is durable, so batches get their sequence numbers (and win a
//! key) in the order they were filled, as inline; [`RowSink::apply`] returns the tag of a
//! batch only once that batch is durable (a replay reports its SCN from it, and a restarted
//! replay resumes there); [`RowSink::finish`] returns only when every row handed to the
//! sink is durable; a worker that stops early (an error, a cancellation) still waits for
//! its batch in flight (the helper is a scoped thread), whose result is then dropped; the
//! helper's crash points carry the worker's step name. Memory: a sink one behind holds two
//! batches, an inline one one.

use std::thread::{Scope, ScopedJoinHandle};

use obrestore_dag::TaskError;

use super::{APPLY_BATCH_BYTES, APPLY_BATCH_ROWS};
use crate::cluster::RowBatch;
use crate::executors::failpoint::{apply_batch_rows, current_step, in_step};
use crate::executors::Deps;

/// The batch on the helper thread and the tag to hand back once it is durable.
type InFlight<'scope, T> = (ScopedJoinHandle<'scope, Result<RowBatch, TaskError>>, T);

/// A worker's batch and how it is applied (module docs).
pub(in crate::executors) struct RowSink<'scope, 'env, T> {
    deps: &'env Deps,
    tenant_id: u64,
    /// The batch being filled.
    pub(in crate::executors) batch: RowBatch,
    behind: Option<Behind<'scope, 'env, T>>,
}

struct Behind<'scope, 'env, T> {
    scope: &'scope Scope<'scope, 'env>,
    /// The worker's step, for the crash points on the helper thread.
    step: &'static str,
    in_flight: Option<InFlight<'scope, T>>,
    /// An empty batch whose buffers the next fill reuses.
    spare: RowBatch,
}

impl<'scope, 'env, T: Send + 'scope> RowSink<'scope, 'env, T> {
    /// A sink applying on the calling thread.
    pub(in crate::executors) fn inline(deps: &'env Deps, tenant_id: u64) -> Self {
        RowSink {
            deps,
            tenant_id,
            batch: RowBatch::new(),
            behind: None,
        }
    }

    /// A sink applying one behind, on threads of `scope`.
    pub(in crate::executors) fn behind(
        deps: &'env Deps,
        tenant_id: u64,
        scope: &'scope Scope<'scope, 'env>,
    ) -> Self {
        RowSink {
            deps,
            tenant_id,
            batch: RowBatch::new(),
            behind: Some(Behind {
                scope,
                step: current_step(),
                in_flight: None,
                spare: RowBatch::new(),
            }),
        }
    }

    /// The batch holds [`APPLY_BATCH_ROWS`] rows or [`APPLY_BATCH_BYTES`] bytes.
    pub(in crate::executors) fn is_full(&self) -> bool {
        self.batch.len() >= apply_batch_rows(APPLY_BATCH_ROWS)
            || self.batch.byte_len() >= APPLY_BATCH_BYTES
    }

    /// Applies the batch as one durable cluster batch and empties it. Inline: returns
    /// `tag` (the batch is durable). One behind: waits for the batch in flight, hands this
    /// one to a helper thread, and returns the tag of the one waited for, now durable.
    pub(in crate::executors) fn apply(&mut self, tag: T) -> Result<Option<T>, TaskError> {
        let (deps, tenant_id) = (self.deps, self.tenant_id);
        let Some(behind) = self.behind.as_mut() else {
            deps.flush_rows(tenant_id, &mut self.batch)?;
            return Ok(Some(tag));
        };
        if self.batch.is_empty() {
            return Ok(None);
        }
        let durable = behind.wait()?;
        let mut full = std::mem::replace(&mut self.batch, std::mem::take(&mut behind.spare));
        let step = behind.step;
        let handle = behind.scope.spawn(move || {
            in_step(step, || deps.flush_rows(tenant_id, &mut full))?;
            Ok(full)
        });
        behind.in_flight = Some((handle, tag));
        Ok(durable)
    }

    /// Applies what the batch holds and waits for the batch in flight: every row handed
    /// to the sink is durable when this returns `Ok`.
    pub(in crate::executors) fn finish(&mut self) -> Result<(), TaskError> {
        if let Some(behind) = self.behind.as_mut() {
            behind.wait()?;
        }
        self.deps.flush_rows(self.tenant_id, &mut self.batch)
    }
}

impl<T> Behind<'_, '_, T> {
    /// Waits for the batch in flight (its buffers become the spare); its tag, `None` if
    /// there was none.
    fn wait(&mut self) -> Result<Option<T>, TaskError> {
        let Some((handle, tag)) = self.in_flight.take() else {
            return Ok(None);
        };
        match handle.join() {
            Ok(applied) => {
                self.spare = applied?;
                Ok(Some(tag))
            }
            // As a panic of the worker itself: the blocking task reports it.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
