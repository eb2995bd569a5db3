//! The run file format (module docs of [`super`]): [`RunWriter`] writes one run and
//! commits it (`.tmp`, `fdatasync`, rename, directory `fsync`), [`RunReader`] streams one
//! back checking its length, row count and CRC, and [`merge`] merges runs newest-wins.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{io_error, run_name, sync_dir, Run, RUN_FORMAT_VERSION};
use crate::cluster::error::{ClusterError, ClusterResult};

/// A row's value with its SHA-256 (stored after the value from format version 2 on).
pub(super) type HashedValue<'a> = (&'a [u8], &'a [u8; 32]);

const RUN_MAGIC: &[u8; 8] = b"OBRRUN01";
const FOOTER_MAGIC: &[u8; 8] = b"OBRRUNFT";
const HEADER_LEN: u64 = 40;
const FOOTER_LEN: u64 = 40;
const RECORD_HEADER_LEN: usize = 16;
const TOMBSTONE: u32 = u32::MAX;
const VALUE_SHA_LEN: usize = 32;
/// The oldest run format still read: version 1 has no value hashes (the reader computes
/// them).
const OLDEST_READ_VERSION: u32 = 1;
const WRITE_BUFFER: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
pub(super) struct Footer {
    pub(super) rows: u64,
    pub(super) tombstones: u64,
    pub(super) records_len: u64,
    crc: u32,
    /// The run's format version (header).
    version: u32,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

/// Checks a run file's header and footer against its name and length; leaves the file
/// positioned at the first record.
pub(super) fn read_frame(
    file: &mut File,
    path: &Path,
    tenant_id: u64,
    lo: u64,
    hi: u64,
) -> ClusterResult<Footer> {
    let len = file.metadata().map_err(|e| io_error(path, e))?.len();
    if len < HEADER_LEN + FOOTER_LEN {
        return Err(io_error(path, format!("truncated run ({len} bytes)")));
    }
    let mut footer = [0u8; FOOTER_LEN as usize];
    file.seek(SeekFrom::Start(len - FOOTER_LEN))
        .and_then(|_| file.read_exact(&mut footer))
        .map_err(|e| io_error(path, e))?;
    if &footer[..8] != FOOTER_MAGIC {
        return Err(io_error(path, "bad footer magic (truncated or not a run)"));
    }
    let mut footer = Footer {
        rows: u64_at(&footer, 8),
        tombstones: u64_at(&footer, 16),
        records_len: u64_at(&footer, 24),
        crc: u32_at(&footer, 32),
        version: 0,
    };
    if footer.records_len != len - HEADER_LEN - FOOTER_LEN {
        return Err(io_error(
            path,
            format!(
                "footer says {} record bytes, the file has {}",
                footer.records_len,
                len - HEADER_LEN - FOOTER_LEN
            ),
        ));
    }
    let mut header = [0u8; HEADER_LEN as usize];
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_exact(&mut header))
        .map_err(|e| io_error(path, e))?;
    if &header[..8] != RUN_MAGIC {
        return Err(io_error(path, "bad header magic"));
    }
    let version = u32_at(&header, 8);
    if !(OLDEST_READ_VERSION..=RUN_FORMAT_VERSION).contains(&version) {
        return Err(io_error(
            path,
            format!(
                "run format version {version} (expected {OLDEST_READ_VERSION} to {RUN_FORMAT_VERSION})"
            ),
        ));
    }
    footer.version = version;
    let (t, l, h) = (
        u64_at(&header, 16),
        u64_at(&header, 24),
        u64_at(&header, 32),
    );
    if (t, l, h) != (tenant_id, lo, hi) {
        return Err(io_error(
            path,
            format!("header names tenant {t} runs {l}..={h}, the path tenant {tenant_id} runs {lo}..={hi}"),
        ));
    }
    Ok(footer)
}

/// Writes one run: `push` rows in ascending order, then `commit`.
///
/// Dropped without a successful `commit`, it removes its `.tmp` file.
pub(super) struct RunWriter {
    dir: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<CrcWrite>>,
    committed: bool,
    run: Run,
    records_len: u64,
    last: Option<(u64, Vec<u8>)>,
}

impl RunWriter {
    pub(super) fn create(
        root: &Path,
        dir: &Path,
        tenant_id: u64,
        lo: u64,
        hi: u64,
    ) -> ClusterResult<RunWriter> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
            sync_dir(root)?;
        }
        let tmp = dir.join(run_name(lo, hi, "tmp"));
        let file = File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
        let mut writer = RunWriter {
            dir: dir.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(
                WRITE_BUFFER,
                CrcWrite {
                    file,
                    unhashed: HEADER_LEN,
                    crc: crc32fast::Hasher::new(),
                },
            )),
            committed: false,
            run: Run {
                lo,
                hi,
                rows: 0,
                tombstones: 0,
                bytes: 0,
            },
            records_len: 0,
            last: None,
        };
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(RUN_MAGIC);
        header.extend_from_slice(&RUN_FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&tenant_id.to_le_bytes());
        header.extend_from_slice(&lo.to_le_bytes());
        header.extend_from_slice(&hi.to_le_bytes());
        writer.write(&header)?;
        Ok(writer)
    }

    fn write(&mut self, bytes: &[u8]) -> ClusterResult<()> {
        super::failpoint::check_write(&self.tmp).map_err(|e| io_error(&self.tmp, e))?;
        match self.out.as_mut() {
            Some(out) => out.write_all(bytes).map_err(|e| io_error(&self.tmp, e)),
            None => Err(io_error(&self.tmp, "run already finished")),
        }
    }

    /// Appends a row (`None`: a tombstone), hashing its value.
    pub(super) fn push(
        &mut self,
        tablet_id: u64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> ClusterResult<()> {
        match value {
            Some(value) => {
                let sha: [u8; 32] = Sha256::digest(value).into();
                self.push_hashed(tablet_id, key, Some((value, &sha)))
            }
            None => self.push_hashed(tablet_id, key, None),
        }
    }

    /// Appends a row whose value's SHA-256 is known (a merge copying a run's rows).
    pub(super) fn push_hashed(
        &mut self,
        tablet_id: u64,
        key: &[u8],
        value: Option<HashedValue<'_>>,
    ) -> ClusterResult<()> {
        let too_big = |what: &str, len: usize| ClusterError::InvalidRow {
            tablet_id,
            reason: format!("{what} of {len} bytes (the limit is 4 GiB - 2)"),
        };
        let key_len = u32::try_from(key.len())
            .ok()
            .filter(|len| *len != TOMBSTONE)
            .ok_or_else(|| too_big("key", key.len()))?;
        let value_len = match value {
            None => TOMBSTONE,
            Some((value, _)) => u32::try_from(value.len())
                .ok()
                .filter(|len| *len != TOMBSTONE)
                .ok_or_else(|| too_big("value", value.len()))?,
        };
        if let Some((last_tablet, last_key)) = &self.last {
            if (*last_tablet, last_key.as_slice()) >= (tablet_id, key) {
                return Err(io_error(&self.tmp, "rows pushed out of order"));
            }
        }
        let mut head = [0u8; RECORD_HEADER_LEN];
        head[..8].copy_from_slice(&tablet_id.to_le_bytes());
        head[8..12].copy_from_slice(&key_len.to_le_bytes());
        head[12..].copy_from_slice(&value_len.to_le_bytes());
        let (value, sha): (&[u8], &[u8]) = match value {
            Some((value, sha)) => (value, sha),
            None => (&[], &[]),
        };
        for part in [&head[..], key, value, sha] {
            self.write(part)?;
        }
        self.records_len += (RECORD_HEADER_LEN + key.len() + value.len() + sha.len()) as u64;
        self.run.bytes = self.records_len;
        if value_len == TOMBSTONE {
            self.run.tombstones += 1;
        } else {
            self.run.rows += 1;
        }
        match &mut self.last {
            Some((last_tablet, last_key)) => {
                *last_tablet = tablet_id;
                last_key.clear();
                last_key.extend_from_slice(key);
            }
            None => self.last = Some((tablet_id, key.to_vec())),
        }
        Ok(())
    }

    /// Footer, `fdatasync`, rename to `.run`, `fsync` of the directory.
    pub(super) fn commit(mut self) -> ClusterResult<Run> {
        super::failpoint::check_write(&self.tmp).map_err(|e| io_error(&self.tmp, e))?;
        let Some(out) = self.out.take() else {
            return Err(io_error(&self.tmp, "run already finished"));
        };
        // Every record byte goes through the CRC when the buffer is handed to the file.
        let CrcWrite { mut file, crc, .. } = out
            .into_inner()
            .map_err(|e| io_error(&self.tmp, e.error()))?;
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(FOOTER_MAGIC);
        footer.extend_from_slice(&self.run.rows.to_le_bytes());
        footer.extend_from_slice(&self.run.tombstones.to_le_bytes());
        footer.extend_from_slice(&self.records_len.to_le_bytes());
        footer.extend_from_slice(&crc.finalize().to_le_bytes());
        footer.extend_from_slice(&0u32.to_le_bytes());
        file.write_all(&footer)
            .map_err(|e| io_error(&self.tmp, e))?;
        file.sync_data().map_err(|e| io_error(&self.tmp, e))?;
        drop(file);
        let path = self.dir.join(run_name(self.run.lo, self.run.hi, "run"));
        std::fs::rename(&self.tmp, &path).map_err(|e| io_error(&path, e))?;
        self.committed = true;
        sync_dir(&self.dir)?;
        Ok(self.run)
    }
}

/// A run file being written under the writer's `BufWriter`: the record bytes are CRC'd
/// as whole buffers reach the file (the CRC's fast path), not field by field; the
/// header's `unhashed` bytes, first through, are not, and the footer is written to the
/// file itself after the CRC is taken. The same bytes in the same order as the reader's
/// [`CrcRead`] checks.
struct CrcWrite {
    file: File,
    unhashed: u64,
    crc: crc32fast::Hasher,
}

impl Write for CrcWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        let skip = written.min(usize::try_from(self.unhashed).unwrap_or(usize::MAX));
        self.unhashed -= skip as u64;
        self.crc.update(&buf[skip..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for RunWriter {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.out.take());
            // Best effort: the next open removes a `.tmp` left behind as well.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A run's record bytes, CRC'd as they are read from the file (whole buffers, not field
/// by field: the CRC's fast path); the `Take` ends at the footer, so once the records are
/// consumed the CRC covers exactly them.
struct CrcRead {
    file: std::io::Take<File>,
    crc: crc32fast::Hasher,
}

impl Read for CrcRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.file.read(buf)?;
        self.crc.update(&buf[..read]);
        Ok(read)
    }
}

/// Streams one run's records, checking the row count and CRC at its end.
pub(super) struct RunReader {
    path: PathBuf,
    input: BufReader<CrcRead>,
    footer: Footer,
    hi: u64,
    /// Record bytes not consumed yet.
    remaining: u64,
    seen: u64,
    // The current record.
    tablet_id: u64,
    key: Vec<u8>,
    value: Vec<u8>,
    /// SHA-256 of `value` (read from the run, or computed for a version 1 run).
    value_sha: [u8; 32],
    tombstone: bool,
    /// The previous record's key (a reused buffer, for the order check).
    previous_key: Vec<u8>,
    /// Values are checked (CRC) but not kept: `value` stays empty
    /// ([`RunReader::without_values`]).
    skip_values: bool,
}

impl RunReader {
    pub(super) fn open(
        path: &Path,
        tenant_id: u64,
        run: Run,
        buffer: usize,
    ) -> ClusterResult<RunReader> {
        let mut file = File::open(path).map_err(|e| io_error(path, e))?;
        let footer = read_frame(&mut file, path, tenant_id, run.lo, run.hi)?;
        let file_position = file.stream_position().map_err(|e| io_error(path, e))?;
        debug_assert_eq!(file_position, HEADER_LEN);
        Ok(RunReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(
                buffer,
                CrcRead {
                    file: file.take(footer.records_len),
                    crc: crc32fast::Hasher::new(),
                },
            ),
            footer,
            hi: run.hi,
            remaining: footer.records_len,
            seen: 0,
            tablet_id: 0,
            key: Vec::new(),
            value: Vec::new(),
            value_sha: [0; 32],
            tombstone: false,
            previous_key: Vec::new(),
            skip_values: false,
        })
    }

    /// This reader with values read and CRC-checked but not copied out (the records'
    /// value is then empty; the value hashes are still there). A version 1 run keeps its
    /// values: the reader hashes them.
    pub(super) fn without_values(mut self) -> RunReader {
        self.skip_values = self.footer.version >= 2;
        self
    }

    /// Consumes `len` value bytes (CRC'd as they were read) straight from the read buffer.
    fn skip_value(&mut self, len: u64) -> ClusterResult<()> {
        if len > self.remaining {
            return Err(self.corrupt("a record runs past the end of the records"));
        }
        let mut left = len;
        while left > 0 {
            let buffer = self.input.fill_buf().map_err(|e| io_error(&self.path, e))?;
            if buffer.is_empty() {
                return Err(io_error(&self.path, "the file ends inside a record"));
            }
            let n = buffer
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            self.input.consume(n);
            left -= n as u64;
        }
        self.remaining -= len;
        self.value.clear();
        Ok(())
    }

    fn corrupt(&self, reason: impl std::fmt::Display) -> ClusterError {
        io_error(&self.path, format!("corrupt run: {reason}"))
    }

    fn read_into(&mut self, len: u64, into_value: bool) -> ClusterResult<()> {
        if len > self.remaining {
            return Err(self.corrupt("a record runs past the end of the records"));
        }
        let buffer = if into_value {
            &mut self.value
        } else {
            &mut self.key
        };
        // `read_exact` overwrites every byte: only growth is zero-filled, not each record.
        buffer.resize(len as usize, 0);
        self.input
            .read_exact(buffer)
            .map_err(|e| io_error(&self.path, e))?;
        self.remaining -= len;
        Ok(())
    }

    /// The value's SHA-256 after the value (version 2 on), or computed (version 1).
    fn read_value_sha(&mut self) -> ClusterResult<()> {
        if self.footer.version < 2 {
            self.value_sha = Sha256::digest(&self.value).into();
            return Ok(());
        }
        if self.remaining < VALUE_SHA_LEN as u64 {
            return Err(self.corrupt("a value hash runs past the end of the records"));
        }
        self.input
            .read_exact(&mut self.value_sha)
            .map_err(|e| io_error(&self.path, e))?;
        self.remaining -= VALUE_SHA_LEN as u64;
        Ok(())
    }

    /// Moves to the next record; `false` at the end (after checking the footer's totals).
    fn advance(&mut self) -> ClusterResult<bool> {
        if self.remaining == 0 {
            // Every record byte is consumed, so the CRC has seen exactly the records.
            let crc = std::mem::take(&mut self.input.get_mut().crc).finalize();
            let expected = self.footer.rows + self.footer.tombstones;
            if self.seen != expected {
                return Err(
                    self.corrupt(format!("{} records, the footer says {expected}", self.seen))
                );
            }
            if crc != self.footer.crc {
                return Err(self.corrupt(format!(
                    "CRC {crc:08x}, the footer says {:08x}",
                    self.footer.crc
                )));
            }
            return Ok(false);
        }
        if self.remaining < RECORD_HEADER_LEN as u64 {
            return Err(self.corrupt("a record header runs past the end of the records"));
        }
        let mut head = [0u8; RECORD_HEADER_LEN];
        self.input
            .read_exact(&mut head)
            .map_err(|e| io_error(&self.path, e))?;
        self.remaining -= RECORD_HEADER_LEN as u64;
        let previous_tablet = self.tablet_id;
        std::mem::swap(&mut self.key, &mut self.previous_key);
        self.tablet_id = u64_at(&head, 0);
        let key_len = u32_at(&head, 8);
        let value_len = u32_at(&head, 12);
        self.read_into(u64::from(key_len), false)?;
        if self.seen > 0
            && (previous_tablet, self.previous_key.as_slice())
                >= (self.tablet_id, self.key.as_slice())
        {
            return Err(self.corrupt("records out of order"));
        }
        self.tombstone = value_len == TOMBSTONE;
        if self.tombstone {
            self.value.clear();
        } else {
            if self.skip_values {
                self.skip_value(u64::from(value_len))?;
            } else {
                self.read_into(u64::from(value_len), true)?;
            }
            self.read_value_sha()?;
        }
        self.seen += 1;
        Ok(true)
    }
}

/// What [`merge`] calls per key: `(tablet_id, key, newest value and its SHA-256, or None
/// for a tombstone)`.
pub(super) type MergeSink<'a> =
    dyn FnMut(u64, &[u8], Option<HashedValue<'_>>) -> ClusterResult<()> + 'a;

/// Merges `readers` (runs with disjoint sequence ranges), calling `emit` once per key in
/// ascending order with the newest version (`None` for a tombstone).
///
/// The readers sit in a binary min-heap ordered by `(tablet_id, key)`, then newest run
/// first, so each record costs O(log runs) comparisons whatever the number of runs.
pub(super) fn merge(mut readers: Vec<RunReader>, emit: &mut MergeSink<'_>) -> ClusterResult<()> {
    let mut heap: Vec<usize> = Vec::with_capacity(readers.len());
    for (index, reader) in readers.iter_mut().enumerate() {
        if reader.advance()? {
            heap.push(index);
        }
    }
    for at in (0..heap.len() / 2).rev() {
        sift_down(&readers, &mut heap, at);
    }
    let mut key: Vec<u8> = Vec::new();
    while let Some(&best) = heap.first() {
        let winner = &readers[best];
        let value = (!winner.tombstone).then_some((winner.value.as_slice(), &winner.value_sha));
        emit(winner.tablet_id, &winner.key, value)?;
        let tablet_id = winner.tablet_id;
        key.clear();
        key.extend_from_slice(&winner.key);
        // Every version of this key is at the top of the heap in turn: move past each.
        while let Some(&top) = heap.first() {
            let reader = &mut readers[top];
            if reader.tablet_id != tablet_id || reader.key != key {
                break;
            }
            if !reader.advance()? {
                heap.swap_remove(0);
            }
            sift_down(&readers, &mut heap, 0);
        }
    }
    Ok(())
}

/// Reader `a`'s record comes before reader `b`'s: smaller `(tablet_id, key)`, or the same
/// key in a newer run.
fn before(a: &RunReader, b: &RunReader) -> bool {
    match (a.tablet_id, a.key.as_slice()).cmp(&(b.tablet_id, b.key.as_slice())) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Equal => a.hi > b.hi,
        std::cmp::Ordering::Greater => false,
    }
}

fn sift_down(readers: &[RunReader], heap: &mut [usize], mut at: usize) {
    loop {
        let (left, right) = (2 * at + 1, 2 * at + 2);
        let mut first = at;
        if left < heap.len() && before(&readers[heap[left]], &readers[heap[first]]) {
            first = left;
        }
        if right < heap.len() && before(&readers[heap[right]], &readers[heap[first]]) {
            first = right;
        }
        if first == at {
            return;
        }
        heap.swap(at, first);
        at = first;
    }
}
