//! The tenant digest of a row scan: the one digest `docs/backup-format.md` §5 defines
//! ([`obrestore_backup::DigestBuilder`]), which the restore's Post check records and
//! `verify` compares with the source. The cluster has no digest scheme of its own.
//!
//! Reading and hashing overlap: the scanning thread packs rows into 1 MiB chunks, a scoped
//! helper thread hashes them (each value's SHA-256, then the running digest). At most
//! four chunks exist at once; emptied chunks go back to the scanner for reuse.
//! Invariant: a scan error wins over the digest (a broken row file is reported as the
//! scan's error, never as a digest), and rows that do not come in strictly ascending
//! `(tablet_id, key)` order are an error, never a digest.

use std::sync::mpsc::{Receiver, SyncSender};

use obrestore_backup::truth::TenantDigest;
use obrestore_backup::DigestBuilder;

use super::error::{ClusterError, ClusterResult};
use super::service::RowVisitor;

/// Rows handed from the scanning thread to the hashing thread in one go.
const DIGEST_CHUNK_BYTES: usize = 1 << 20;

/// Rows packed into one buffer: `(tablet_id, key_end, value_end)` per row, each row's key
/// then value stored back to back in `bytes`.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    rows: Vec<(u64, usize, usize)>,
}

/// The [`TenantDigest`] of the rows `scan` visits (in `(tablet_id, key)` order) for
/// tenant `tenant_id`.
///
/// # Errors
/// `scan`'s error; `Corrupt` when the rows come out of order.
pub(super) fn digest_scan(
    tenant_id: u64,
    scan: impl FnOnce(&mut RowVisitor<'_>) -> ClusterResult<()>,
) -> ClusterResult<TenantDigest> {
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Chunk>(2);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Chunk>(4);
        let hasher = scope.spawn(move || hash_chunks(&full_rx, &empty_tx));
        let mut packer = ChunkPacker {
            chunk: Chunk::default(),
            full_tx,
            empty_rx,
            hasher_gone: false,
        };
        let scanned = scan(&mut |tablet_id, key, value| packer.push(tablet_id, key, value));
        packer.finish();
        let digest = hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        scanned?;
        digest.ok_or_else(|| ClusterError::Corrupt {
            tree: "rows".to_string(),
            reason: format!(
                "the scan of tenant {tenant_id} returned rows out of (tablet_id, key) order"
            ),
        })
    })
}

/// The hashing thread: digests the chunks in the order they come, hands each emptied
/// chunk back. `None` when the rows are out of order.
fn hash_chunks(full_rx: &Receiver<Chunk>, empty_tx: &SyncSender<Chunk>) -> Option<TenantDigest> {
    let mut builder = DigestBuilder::new();
    for mut chunk in full_rx {
        let mut start = 0;
        for &(tablet_id, key_end, value_end) in &chunk.rows {
            let key = &chunk.bytes[start..key_end];
            let value = &chunk.bytes[key_end..value_end];
            builder.add(tablet_id, key, value).ok()?;
            start = value_end;
        }
        chunk.bytes.clear();
        chunk.rows.clear();
        let _ = empty_tx.try_send(chunk);
    }
    Some(builder.finish())
}

/// The scanning thread's side: fills a chunk, sends it when full, takes an emptied one
/// back (or a new one).
struct ChunkPacker {
    chunk: Chunk,
    full_tx: SyncSender<Chunk>,
    empty_rx: Receiver<Chunk>,
    /// The hashing thread stopped (rows out of order); the remaining rows are skipped.
    hasher_gone: bool,
}

impl ChunkPacker {
    fn push(&mut self, tablet_id: u64, key: &[u8], value: &[u8]) {
        if self.hasher_gone {
            return;
        }
        let chunk = &mut self.chunk;
        chunk.bytes.extend_from_slice(key);
        let key_end = chunk.bytes.len();
        chunk.bytes.extend_from_slice(value);
        chunk.rows.push((tablet_id, key_end, chunk.bytes.len()));
        if chunk.bytes.len() >= DIGEST_CHUNK_BYTES {
            let next = self.empty_rx.try_recv().unwrap_or_default();
            let full = std::mem::replace(&mut self.chunk, next);
            self.hasher_gone = self.full_tx.send(full).is_err();
        }
    }

    /// Sends the last, partly filled chunk; dropping the sender ends the hashing thread.
    fn finish(self) {
        if !self.chunk.rows.is_empty() && !self.hasher_gone {
            let _ = self.full_tx.send(self.chunk);
        }
    }
}
