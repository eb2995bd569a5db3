//! The peers bench: the same DAG shapes of no-op tasks on obrestore's engine and on
//! other Rust DAG / durable-workflow engines, with the device's limits measured in the
//! same process. `src/main.rs` runs the rounds and prints one table (`report.rs`).
//!
//! Every peer's runner builds its shape, runs it once on the caller's tokio runtime and
//! returns the time and how many tasks actually executed (each no-op counts itself), so
//! a runner that skipped work cannot go unnoticed: `main` and the tests check the count.

pub mod apalis_peer;
pub mod dagrs_peer;
pub mod dagx_peer;
pub mod device;
pub mod duroxide_peer;
pub mod obrestore_peer;
pub mod report;
pub mod shape;

use std::path::Path;
use std::time::Duration;

use obrestore_peer::Kind;
use shape::Shape;

/// One run of one shape on one peer.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// From handing the DAG over until it was seen finished (see each peer's module for
    /// what exactly is timed).
    pub elapsed: Duration,
    /// How many no-op tasks executed.
    pub executed: usize,
}

/// An engine under test. The versions are pinned in `Cargo.toml` (`=x.y.z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    ObrestoreMemory,
    /// obrestore on `MemStore` with the no-op registered as a light task type (an
    /// async `Task` polled once where it starts).
    ObrestoreLight,
    /// obrestore on `MemStore` with the no-op registered as a synchronous task type
    /// (`SyncTask`, `TaskRegistry::register_shared_sync`: a plain function call where
    /// the attempt starts, no future). The same engine and guarantees (every
    /// transition through the store, results, logs, panics, fencing, retries,
    /// rollback), but the task cannot await: obshell's own tasks are of this kind.
    /// dagx's and dagrs's tasks are async.
    ObrestoreSync,
    Dagx,
    Dagrs,
    ObrestoreDurable,
    Duroxide,
    Apalis,
}

impl Peer {
    /// The in-memory group; the first is the obrestore the others are compared with.
    pub const MEMORY: [Peer; 5] = [
        Peer::ObrestoreMemory,
        Peer::ObrestoreLight,
        Peer::ObrestoreSync,
        Peer::Dagx,
        Peer::Dagrs,
    ];
    /// The durable group; the first is the obrestore the others are compared with.
    pub const DURABLE: [Peer; 3] = [Peer::ObrestoreDurable, Peer::Duroxide, Peer::Apalis];

    /// Whether this is obrestore itself (a variant of the group's reference).
    /// A durable peer whose runs take seconds: it runs only in the first rounds
    /// (`--duroxide-runs`).
    pub fn is_slow(self) -> bool {
        matches!(self, Peer::Duroxide | Peer::Apalis)
    }

    pub fn is_obrestore(self) -> bool {
        matches!(
            self,
            Peer::ObrestoreMemory
                | Peer::ObrestoreLight
                | Peer::ObrestoreSync
                | Peer::ObrestoreDurable
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Peer::ObrestoreMemory => "obrestore MemStore",
            Peer::ObrestoreLight => "obrestore MemStore light",
            Peer::ObrestoreSync => "obrestore MemStore sync",
            Peer::Dagx => "dagx 0.3.1",
            Peer::Dagrs => "dagrs 0.9.0",
            Peer::ObrestoreDurable => "obrestore SledStore",
            Peer::Duroxide => "duroxide 0.1.32 SQLite",
            Peer::Apalis => "apalis 0.7.4 SQLite",
        }
    }

    /// Runs `shape` once; durable peers keep their files in a fresh directory under
    /// `parent`, removed afterwards.
    pub async fn run(self, shape: Shape, parent: &Path) -> anyhow::Result<Run> {
        match self {
            Peer::ObrestoreMemory => obrestore_peer::run(shape, None, Kind::Spawned).await,
            Peer::ObrestoreLight => obrestore_peer::run(shape, None, Kind::Light).await,
            Peer::ObrestoreSync => obrestore_peer::run(shape, None, Kind::Sync).await,
            Peer::ObrestoreDurable => obrestore_peer::run(shape, Some(parent), Kind::Spawned).await,
            Peer::Dagx => dagx_peer::run(shape).await,
            Peer::Dagrs => dagrs_peer::run(shape).await,
            Peer::Duroxide => duroxide_peer::run(shape, parent).await,
            Peer::Apalis => apalis_peer::run(shape, parent).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every runner executes every task of every shape exactly once, at a tiny size.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_peer_runs_every_task() {
        let parent = std::env::temp_dir();
        let shapes = [
            Shape::Chain(5),
            Shape::FanOut(7),
            Shape::Layers {
                layers: 3,
                width: 4,
            },
        ];
        for peer in Peer::MEMORY.into_iter().chain(Peer::DURABLE) {
            for shape in shapes {
                let run = peer.run(shape, &parent).await.expect("run succeeds");
                assert_eq!(run.executed, shape.tasks(), "{} on {shape}", peer.label());
            }
        }
    }
}
