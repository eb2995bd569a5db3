//! A hashed scan of a tenant's runs on two threads (the Post check's digest and the row
//! count): the runs are split by sequence into an older and a newer half of about equal
//! bytes, each half is merged by [`merge`] on a thread of its own (reading its runs to
//! the end and checking their CRCs), and the calling thread merges the two sorted
//! streams, the newer half winning a key both hold. On two cores this halves the read +
//! CRC + heap merge that runs after the last log stream.
//!
//! Invariants: the result is what one [`merge`] of all the runs gives (a half keeps its
//! tombstones, so that a delete in the newer half still hides a row of the older one);
//! an error of either half is returned, never a digest of what was read so far; a half
//! that stops without saying it finished (a panic) is an error too; the halves stop
//! when the caller returns early (their channel is closed).

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::io_error;
use super::run_file::{merge, RunReader};
use crate::cluster::digest::HashedRowVisitor;
use crate::cluster::error::{ClusterError, ClusterResult};

/// Rows handed from a half to the calling thread at a time.
const CHUNK_ROWS: usize = 4096;
/// Chunks a half may be ahead of the calling thread.
const CHUNKS_AHEAD: usize = 2;

/// One row of a half's merged stream: tablet, key (a range of `Chunk::keys`), and the
/// value's SHA-256, or `None` for a tombstone.
struct Row {
    tablet_id: u64,
    key_start: usize,
    key_end: usize,
    sha: Option<[u8; 32]>,
}

#[derive(Default)]
struct Chunk {
    rows: Vec<Row>,
    keys: Vec<u8>,
}

enum Message {
    Rows(Chunk),
    /// The half's merge returned `Ok`: every row was sent.
    End,
    Failed(ClusterError),
}

/// Calls `visit(tablet_id, key, SHA-256 of the value)` for every live row of `readers`
/// (runs in ascending sequence order, at least two, read without values), in
/// `(tablet_id, key)` order.
///
/// # Errors
/// A half's I/O error or corrupt run; `visit`'s error. `dir` (the tenant's) names a
/// half that stopped without an answer.
pub(super) fn merge_hashed(
    dir: &Path,
    mut readers: Vec<RunReader>,
    bytes: &[u64],
    visit: &mut HashedRowVisitor<'_>,
) -> ClusterResult<()> {
    let newer = readers.split_off(split_point(bytes));
    let older = readers;
    std::thread::scope(|scope| {
        let (older_tx, older_rx) = sync_channel(CHUNKS_AHEAD);
        let (newer_tx, newer_rx) = sync_channel(CHUNKS_AHEAD);
        scope.spawn(move || send_half(older, &older_tx));
        scope.spawn(move || send_half(newer, &newer_tx));
        // The receivers are dropped when this returns, which stops a half still sending.
        merge_halves(
            Stream::new(dir, older_rx),
            Stream::new(dir, newer_rx),
            visit,
        )
    })
}

/// The index of the first run of the newer half: about half the bytes on each side,
/// and at least one run in each.
fn split_point(bytes: &[u64]) -> usize {
    let total: u64 = bytes.iter().sum();
    let mut sum = 0u64;
    for (index, run) in bytes.iter().enumerate() {
        if sum.saturating_add(*run / 2) >= total / 2 {
            return index.clamp(1, bytes.len().saturating_sub(1).max(1));
        }
        sum += run;
    }
    bytes.len().saturating_sub(1).max(1)
}

/// Merges one half and sends its rows, tombstones included, in chunks.
fn send_half(readers: Vec<RunReader>, tx: &SyncSender<Message>) {
    let mut chunk = Chunk::default();
    let merged = merge(readers, &mut |tablet_id, key, value| {
        let key_start = chunk.keys.len();
        chunk.keys.extend_from_slice(key);
        chunk.rows.push(Row {
            tablet_id,
            key_start,
            key_end: chunk.keys.len(),
            sha: value.map(|(_, sha)| *sha),
        });
        if chunk.rows.len() >= CHUNK_ROWS {
            let full = std::mem::take(&mut chunk);
            // The caller returned (its error wins): stop reading.
            tx.send(Message::Rows(full))
                .map_err(|_| io_error(Path::new(""), "the scan was stopped"))?;
        }
        Ok(())
    });
    // A failed send means the caller returned: nothing is waiting for these.
    let _ = match merged {
        Ok(()) => tx
            .send(Message::Rows(chunk))
            .and_then(|()| tx.send(Message::End)),
        Err(error) => tx.send(Message::Failed(error)),
    };
}

/// A half's stream of rows, one row at a time.
struct Stream<'a> {
    dir: &'a Path,
    rx: Receiver<Message>,
    chunk: Chunk,
    at: usize,
}

impl Stream<'_> {
    fn new(dir: &Path, rx: Receiver<Message>) -> Stream<'_> {
        Stream {
            dir,
            rx,
            chunk: Chunk::default(),
            at: 0,
        }
    }

    /// Moves to the next row; `false` once the half has sent all of them.
    fn advance(&mut self, first: bool) -> ClusterResult<bool> {
        if !first {
            self.at += 1;
        }
        while self.at >= self.chunk.rows.len() {
            match self.rx.recv() {
                Ok(Message::Rows(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Message::End) => return Ok(false),
                Ok(Message::Failed(error)) => return Err(error),
                Err(_) => {
                    return Err(io_error(
                        self.dir,
                        "a row scan thread stopped before the end of its runs",
                    ))
                }
            }
        }
        Ok(true)
    }

    fn row(&self) -> (u64, &[u8], Option<&[u8; 32]>) {
        let row = &self.chunk.rows[self.at];
        let key = &self.chunk.keys[row.key_start..row.key_end];
        (row.tablet_id, key, row.sha.as_ref())
    }
}

/// The two-way merge of the halves: a key in both takes the newer half's version.
fn merge_halves(
    mut older: Stream<'_>,
    mut newer: Stream<'_>,
    visit: &mut HashedRowVisitor<'_>,
) -> ClusterResult<()> {
    let mut older_live = older.advance(true)?;
    let mut newer_live = newer.advance(true)?;
    while older_live || newer_live {
        let order = match (older_live, newer_live) {
            (true, true) => {
                let (a_tablet, a_key, _) = older.row();
                let (b_tablet, b_key, _) = newer.row();
                (a_tablet, a_key).cmp(&(b_tablet, b_key))
            }
            (true, false) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (from_older, from_newer) = match order {
            std::cmp::Ordering::Less => (true, false),
            std::cmp::Ordering::Greater => (false, true),
            std::cmp::Ordering::Equal => (true, true),
        };
        let (tablet_id, key, sha) = if from_newer { newer.row() } else { older.row() };
        if let Some(sha) = sha {
            visit(tablet_id, key, sha)?;
        }
        if from_older {
            older_live = older.advance(false)?;
        }
        if from_newer {
            newer_live = newer.advance(false)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_point;

    #[test]
    fn the_split_leaves_runs_on_both_sides_and_about_half_the_bytes() {
        assert_eq!(split_point(&[10, 10]), 1);
        assert_eq!(split_point(&[1, 1, 1, 1]), 2);
        assert_eq!(split_point(&[100, 1, 1]), 1);
        assert_eq!(split_point(&[1, 1, 100]), 2);
        assert_eq!(split_point(&[0, 0, 0]), 1);
        assert_eq!(split_point(&[4, 4, 4, 4, 4, 4]), 3);
    }
}
