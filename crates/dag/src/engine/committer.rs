//! The committer: makes the actor's batches durable, in order, and only then lets
//! their effects happen.
//!
//! # The commit protocol, committer side
//!
//! The actor hands over one [`Pending`] per batch of decisions (see `actor.rs` for how a
//! batch is decided). For each group of them the committer does, in order:
//!
//! 1. **Collect.** It waits for one pending batch, then takes every batch queued behind
//!    it (up to 256): the batches decided while the previous commit was flushing go to
//!    disk together (group commit), never more writes than the store commits
//!    atomically ([`KvStore::max_batch_writes`], etcd's `--max-txn-ops`). With a store whose commit blocks (sled) the
//!    committer is a thread of its own, so a commit blocks no tokio worker and needs no
//!    hand-off to a blocking pool and back, and the actor decides the next batch while
//!    one flushes. Except when there is nothing to overlap ([`Pipeline`]): if the
//!    committer's thread has released every batch handed to it and no sub-task runs
//!    but those the new batch starts (a chain between two stages), nothing can arrive
//!    while the batch flushes, so the actor commits it itself
//!    ([`Committer::process_one`]): the stage's commit, its sub-task's start and the
//!    actor's next turn then run on one tokio worker, without the two thread wake-ups (actor to committer, committer to
//!    the sub-task and back to the actor) a stage otherwise pays; the worker blocks for
//!    one device sync. With a store whose commit does not block (the in-memory store)
//!    there is no committer thread: the actor commits each batch itself the same way.
//!    A batch the actor commits itself comes back to it with its lists emptied, and
//!    its next batch reuses their buffers.
//! 2. **Merge.** The writes of the batches are merged in order into one [`Batch`]; a
//!    later write of a key replaces an earlier one, so the merged batch is exactly the
//!    state after the last of them.
//! 3. **Commit.** One [`KvStore::commit`]. It returns only once the batch is durable,
//!    and applies all of it or none.
//!    With the `failpoints` feature this is where the crash point
//!    [`crate::crash_point::ENGINE_COMMIT`] may abort the process.
//! 4. **Publish durability.** The highest sequence number of the group is stored in the
//!    shared counter the actor reads to decide early starts (see `actor.rs`, step 5).
//! 5. **Release effects, batch by batch, in order.** Replies to callers, then events to
//!    subscribers, then retry timers, then sub-task starts, then shutdown
//!    acknowledgements. Nothing a batch decided is observable before this step: a
//!    caller's `submit` or `operate` returns, a subscriber sees a transition, a
//!    non-continuable sub-task starts, only once the transition is on disk. A sub-task
//!    of a light type is polled once right here (`runner.rs`); if that finished it, its
//!    result is handed straight back to the actor when the actor commits inline (it
//!    decides it in its next turn, after the messages waiting then), and goes to the
//!    actor's channel like any other from the committer's thread.
//!
//! # When a commit fails
//!
//! The engine is poisoned and stops, like a crash, and tells everyone who waits:
//! - none of the group's effects happen: no event, no sub-task start, no timer;
//! - every reply of the group answers with [`crate::StoreError::Poisoned`] carrying the
//!   failure, so `submit` and `operate` callers get an error, never a success;
//! - [`Health`] records the failure: later calls on the handle, and `wait_settled`,
//!   return the same error instead of waiting for transitions that will never come;
//! - running sub-tasks are aborted, and the actor stops deciding.
//!
//! The store keeps the last durable state (the failed commit applied all of its batch
//! or none of it), and the next [`crate::Engine::open`] recovers from it as after a
//! crash (`recovery.rs`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::runtime::Handle;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::msg::{Msg, Reply, RetryTimer, RunResult};
use super::runner::{Job, Runner};
use crate::event::{Event, Subject};
use crate::store::{Batch, KvStore};

/// A decided batch on its way to disk, with what may happen once it is durable.
pub(crate) struct Pending {
    pub(crate) seq: u64,
    pub(crate) batch: Batch,
    pub(crate) replies: Vec<Reply>,
    pub(crate) events: Vec<Event>,
    pub(crate) spawns: Vec<Job>,
    pub(crate) timers: Vec<RetryTimer>,
    pub(crate) done: Vec<oneshot::Sender<()>>,
}

impl Pending {
    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty()
            && self.replies.is_empty()
            && self.events.is_empty()
            && self.spawns.is_empty()
            && self.timers.is_empty()
            && self.done.is_empty()
    }
}

/// Whether the engine still decides: shared by the handle, the actor and the committer.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Cancelled once the actor and the committer have both stopped, or a commit failed.
    stopped: CancellationToken,
    /// The failure that poisoned the engine, if a commit failed.
    poison: OnceLock<String>,
    /// Set by [`crate::Engine::abort`]: the committer commits nothing more.
    aborted: AtomicBool,
}

impl Health {
    /// A commit failed: the engine stops and every waiter learns why.
    pub(crate) fn poison(&self, reason: String) {
        let _ = self.poison.set(reason);
        self.stopped.cancel();
    }

    /// Why the engine stopped, if a commit failed.
    pub(crate) fn poisoned(&self) -> Option<&str> {
        self.poison.get().map(String::as_str)
    }

    /// The engine is stopped like a crash: no batch still queued is committed.
    pub(crate) fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
    }

    pub(crate) fn aborted(&self) -> bool {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Cancelled once the engine decides nothing more.
    pub(crate) fn stopped(&self) -> &CancellationToken {
        &self.stopped
    }
}

/// Held by the actor and by the committer; when the last one is dropped (both have
/// stopped, were aborted, or failed), the engine has stopped.
#[derive(Debug)]
pub(crate) struct StopGuard(Arc<Health>);

impl StopGuard {
    pub(crate) fn new(health: Arc<Health>) -> Arc<StopGuard> {
        Arc::new(StopGuard(health))
    }
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.stopped.cancel();
    }
}

/// Commits batches in order; see the module documentation.
pub(crate) struct Committer {
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) runner: Runner,
    pub(crate) events: broadcast::Sender<Event>,
    /// Bumped after the events of a batch with a DAG-level transition.
    pub(crate) dag_changes: watch::Sender<u64>,
    pub(crate) health: Arc<Health>,
    /// Highest batch sequence number durable, read by the actor.
    pub(crate) committed: Arc<AtomicU64>,
    /// Highest batch sequence number whose effects are all released.
    pub(crate) released: AtomicU64,
    pub(crate) _alive: Arc<StopGuard>,
}

/// The actor's way to a committer thread ([`Commit::Pipelined`](super::actor::Commit)):
/// batches go through the queue, or are committed by the actor itself when there is
/// nothing to overlap with their flush (module docs, step 1).
pub(crate) struct Pipeline {
    tx: mpsc::Sender<Pending>,
    committer: Arc<Committer>,
    /// Highest sequence number handed to the thread.
    handed: u64,
}

impl Pipeline {
    /// Starts the committer's thread on `committer`.
    ///
    /// # Errors
    /// The thread could not be started.
    pub(crate) fn start(
        committer: Committer,
        runtime: Handle,
    ) -> std::io::Result<(Pipeline, std::thread::JoinHandle<()>)> {
        let (tx, rx) = mpsc::channel(64);
        let committer = Arc::new(committer);
        let thread = Arc::clone(&committer);
        let thread = std::thread::Builder::new()
            .name("obrestore-committer".to_string())
            .spawn(move || thread.run(rx, runtime))?;
        let pipeline = Pipeline {
            tx,
            committer,
            handed: 0,
        };
        Ok((pipeline, thread))
    }

    /// Commits `pending` and releases its effects: on the actor's own worker when
    /// `alone` (no sub-task runs but those `pending` starts) and the thread has
    /// released everything handed to it (results of light attempts that finish at
    /// once then go to `inline`, see [`Committer::process`]), else through the thread.
    /// Returns false when the engine must stop (the thread is gone, or the inline
    /// commit failed).
    pub(crate) async fn hand_off(
        &mut self,
        pending: Pending,
        alone: bool,
        inline: &mut Vec<RunResult>,
        spent: &mut Option<Pending>,
    ) -> bool {
        if alone && self.committer.released.load(Ordering::Acquire) >= self.handed {
            return self.committer.process_one(pending, inline, spent);
        }
        self.handed = pending.seq;
        self.tx.send(pending).await.is_ok()
    }
}

impl Committer {
    /// The committer's own thread: group commits until the actor stops, the engine is
    /// aborted, or a commit fails. The commit blocks this thread, not a tokio worker,
    /// and no hand-off to a blocking pool sits between a batch and its effects; the
    /// effects (sub-task starts, timers) run on `runtime`.
    fn run(&self, mut rx: mpsc::Receiver<Pending>, runtime: Handle) {
        let _runtime = runtime.enter();
        let limit = self.kv.max_batch_writes().unwrap_or(usize::MAX);
        // A batch that would take the group past the store's limit starts the next one.
        let mut carried: Option<Pending> = None;
        while let Some(first) = carried.take().or_else(|| rx.blocking_recv()) {
            let mut writes = first.batch.writes.len();
            let mut items = vec![first];
            while items.len() < 256 {
                match rx.try_recv() {
                    Ok(item) if writes + item.batch.writes.len() > limit => {
                        carried = Some(item);
                        break;
                    }
                    Ok(item) => {
                        writes += item.batch.writes.len();
                        items.push(item);
                    }
                    Err(_) => break,
                }
            }
            if self.health.aborted() || !self.process(items, None) {
                return;
            }
        }
    }

    /// Commits `items` as one batch, then runs their effects in order. Returns false
    /// (and poisons the engine) when the commit failed.
    ///
    /// `inline` is given when the actor runs this itself: results of light attempts
    /// that finish on their first poll are then pushed there ([`Runner::start`]), for
    /// the actor to decide in its next turn without a message, as those of the attempts
    /// it starts early (`actor.rs`, step 1); from the committer's thread they go to the
    /// actor's channel ([`Runner::spawn`]).
    pub(crate) fn process(
        &self,
        mut items: Vec<Pending>,
        inline: Option<&mut Vec<RunResult>>,
    ) -> bool {
        self.process_all(&mut items, inline)
    }

    /// [`Committer::process`] of one batch the actor commits itself, with no list of
    /// one. The batch, its lists emptied (their buffers kept for the actor's next batch),
    /// ends up in `spent`.
    pub(crate) fn process_one(
        &self,
        mut item: Pending,
        inline: &mut Vec<RunResult>,
        spent: &mut Option<Pending>,
    ) -> bool {
        let released = self.process_all(std::slice::from_mut(&mut item), Some(inline));
        *spent = Some(item);
        released
    }

    /// Commits `items` as one batch and releases their effects, emptying their lists.
    fn process_all(&self, items: &mut [Pending], mut inline: Option<&mut Vec<RunResult>>) -> bool {
        let mut batch = Batch::default();
        let mut seq = 0;
        for item in items.iter_mut() {
            // Later batches overwrite earlier writes of the same key.
            batch.writes.append(&mut item.batch.writes);
            seq = seq.max(item.seq);
        }
        let committed = if batch.is_empty() {
            Ok(())
        } else {
            self.kv.commit(batch)
        };
        if let Err(err) = committed {
            tracing::error!(error = %err, "engine store commit failed; the engine stops");
            self.poison(items, err.to_string());
            return false;
        }
        let transitions = items.iter().map(|item| item.events.len() as u64).sum();
        crate::crash_point::hit_times(crate::crash_point::ENGINE_COMMIT, transitions);
        self.committed.fetch_max(seq, Ordering::AcqRel);
        if self.health.aborted() {
            // Aborted during the commit: like a crash right after it, nothing follows.
            return false;
        }
        for item in items {
            self.effects(item, inline.as_deref_mut());
        }
        self.released.fetch_max(seq, Ordering::Release);
        true
    }

    /// The commit failed: nothing of `items` happens, their callers get the failure,
    /// and the engine stops.
    fn poison(&self, items: &mut [Pending], reason: String) {
        self.health.poison(reason.clone());
        self.runner.abort_all();
        for item in items {
            for reply in item.replies.drain(..) {
                reply.fail(&reason);
            }
        }
    }

    /// What a durable batch lets happen, in this order.
    fn effects(&self, item: &mut Pending, mut inline: Option<&mut Vec<RunResult>>) {
        for reply in item.replies.drain(..) {
            reply.send();
        }
        // One look at the subscribers per batch, not a send (a lock of the channel's
        // tail) per event when nobody listens; one who subscribes meanwhile sees the
        // next batch's events, as one who subscribes a moment later would.
        let listened = !item.events.is_empty() && self.events.receiver_count() > 0;
        let mut dag_changed = false;
        for event in item.events.drain(..) {
            dag_changed |= event.subject == Subject::Dag;
            if listened {
                let _ = self.events.send(event);
            }
        }
        if dag_changed {
            self.dag_changes.send_modify(|changes| *changes += 1);
        }
        for timer in item.timers.drain(..) {
            let actor = self.runner.actor().clone();
            tokio::spawn(async move {
                tokio::time::sleep(timer.delay).await;
                let _ = actor.send(Msg::Wake(timer.attempt));
            });
        }
        for job in item.spawns.drain(..) {
            match inline.as_deref_mut() {
                Some(inline) => inline.extend(self.runner.start(job)),
                None => self.runner.spawn(job),
            }
        }
        for done in item.done.drain(..) {
            let _ = done.send(());
        }
    }
}
