//! How the commit log puts one record on the device: the one `pwrite` that, once it
//! returns, has the record durable.
//!
//! # Direct and synchronous where the OS allows it
//!
//! On Linux the log is opened a second time with `O_DIRECT | O_DSYNC`, and a record,
//! padded with zeros to whole pages (records start on a page boundary, so the padding
//! only overwrites the rest of the record's own pages), is written from a page-aligned
//! buffer at its page-aligned offset. The kernel returns from that `pwrite` only after
//! it did what `fdatasync` does for the written range (`O_DSYNC`: the data, the
//! metadata needed to read it back, and a flush of the device's cache, or a FUA write
//! where the device has it): the same durability as the buffered `pwrite` +
//! `fdatasync` it replaces, in one system call. What it saves is the page cache:
//! no page dirtied and then written back by the filesystem's writeback path
//! (`ext4_writepages` and its block mapping), which on the project's virtual disk cost
//! ~15 µs of the ~100 µs a buffered write + `fdatasync` took (`docs/performance.md`).
//!
//! # Fallback
//!
//! Elsewhere (another OS, or a filesystem that refuses `O_DIRECT` when the log is
//! opened, such as an older tmpfs), and for good once a direct write fails with
//! `EINVAL` (a filesystem that accepts the flag but not the write; such a write wrote
//! nothing), a record is a buffered `pwrite` followed by `fdatasync`, as before.
//!
//! The buffered descriptor stays the log's for everything else (creation, growth,
//! recovery's read): the kernel keeps the page cache coherent with direct writes of
//! the same file (it writes back and drops cached pages of a range before writing it
//! directly).

use std::fs::File;
use std::io;
use std::path::Path;

use super::commit_log::write_at;

/// Records start on this boundary, and direct writes are whole pages of it.
pub(super) const PAGE: u64 = 4096;

/// Writes records durably; see the module docs. Used under the log's lock. The default
/// writes through the page cache and `fdatasync`.
#[derive(Default)]
pub(super) struct RecordWriter {
    /// The log opened `O_DIRECT | O_DSYNC`, if the OS and filesystem take it.
    direct: Option<File>,
    /// Staging for direct writes: a page-aligned window of it holds the padded record.
    staging: Vec<u8>,
}

impl std::fmt::Debug for RecordWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordWriter")
            .field("direct", &self.is_direct())
            .finish_non_exhaustive()
    }
}

impl RecordWriter {
    /// A writer for the log at `path`: direct if it can be opened so.
    pub(super) fn open(path: &Path) -> RecordWriter {
        RecordWriter {
            direct: open_direct(path),
            staging: Vec::new(),
        }
    }

    /// Whether records are written directly (`O_DIRECT | O_DSYNC`).
    pub(super) fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Writes through the page cache and `fdatasync` from now on.
    #[cfg(any(test, feature = "failpoints"))]
    pub(super) fn buffered(&mut self) {
        self.direct = None;
        self.staging = Vec::new();
    }

    /// Writes `record` at `offset` (a page boundary) so that it is on the device when
    /// this returns: directly, or through `buffered` (the log's own descriptor) and
    /// `fdatasync`. `before_sync` runs between a buffered write and its sync (the
    /// failpoints inject a failed sync there); a direct write has no such moment, it
    /// runs after it.
    pub(super) fn write(
        &mut self,
        buffered: &File,
        record: &[u8],
        offset: u64,
        before_sync: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        if let Some(direct) = &self.direct {
            match write_direct(direct, &mut self.staging, record, offset) {
                Ok(()) => return before_sync(),
                Err(err) if err.kind() == io::ErrorKind::InvalidInput => {
                    tracing::warn!(error = %err, "direct writes refused: the commit log syncs with fdatasync");
                    self.direct = None;
                    self.staging = Vec::new();
                }
                Err(err) => return Err(err),
            }
        }
        write_at(buffered, record, offset)?;
        before_sync()?;
        buffered.sync_data()
    }
}

/// Copies `record` into a page-aligned window of `staging`, zero-padded to whole pages,
/// and writes that window at `offset`.
fn write_direct(file: &File, staging: &mut Vec<u8>, record: &[u8], offset: u64) -> io::Result<()> {
    let page = PAGE as usize;
    let len = record.len().div_ceil(page) * page;
    if staging.len() < len + page {
        *staging = vec![0; len + page];
    }
    let start = staging.as_ptr().align_offset(page);
    let window = staging
        .get_mut(start..start + len)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let (head, padding) = window.split_at_mut(record.len());
    head.copy_from_slice(record);
    padding.fill(0);
    write_at(file, window, offset)
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)
        .map_err(|error| {
            tracing::info!(log = %path.display(), %error, "no direct writes: the commit log syncs with fdatasync");
        })
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    /// A log file of `len` bytes of 0xEE in a temporary directory (kept alive by the
    /// returned guard), opened for reading and writing.
    fn scratch_log(len: usize) -> (tempfile::TempDir, std::path::PathBuf, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.write_all_at(&vec![0xEE; len], 0).unwrap();
        (dir, path, file)
    }

    /// A direct write is the record, then zeros to the end of its last page, from a
    /// page-aligned window, at the record's offset; nothing outside its pages changes.
    /// (Through a descriptor without `O_DIRECT`: the bytes are what counts here; the
    /// flags are the kernel's.)
    #[test]
    fn a_direct_write_pads_the_record_with_zeros_to_whole_pages() {
        let page = PAGE as usize;
        let (_dir, _path, file) = scratch_log(5 * page);
        let mut staging = Vec::new();
        for (len, offset) in [(700, PAGE), (page + 1, 3 * PAGE), (page, 0)] {
            let record: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            write_direct(&file, &mut staging, &record, offset).unwrap();
            let start = staging.as_ptr().align_offset(page);
            assert_eq!(
                (staging.as_ptr() as usize + start) % page,
                0,
                "an aligned window"
            );
            let pages = len.div_ceil(page) * page;
            let mut back = vec![0; pages];
            file.read_exact_at(&mut back, offset).unwrap();
            assert_eq!(&back[..len], record.as_slice(), "{len} bytes at {offset}");
            assert!(
                back[len..].iter().all(|byte| *byte == 0),
                "{len} bytes at {offset}"
            );
        }
        let mut untouched = vec![0; page];
        file.read_exact_at(&mut untouched, 2 * PAGE).unwrap();
        assert!(untouched.iter().all(|byte| *byte == 0xEE));
    }

    /// A writer without direct writes (the default, and after `buffered`) writes the
    /// record's own bytes through the page cache, and calls the failpoint hook between
    /// the write and the sync.
    #[test]
    fn a_buffered_write_is_the_record_alone_and_the_hook_runs_before_the_sync() {
        let (_dir, path, file) = scratch_log(2 * PAGE as usize);
        let mut writer = RecordWriter::open(&path);
        writer.buffered();
        assert!(!writer.is_direct());
        let refused = writer.write(&file, b"record", 0, || Err(io::Error::other("hook")));
        assert_eq!(refused.unwrap_err().to_string(), "hook");
        writer.write(&file, b"second", PAGE, || Ok(())).unwrap();
        let mut back = vec![0; 8];
        file.read_exact_at(&mut back, PAGE).unwrap();
        assert_eq!(&back, b"second\xEE\xEE");
    }
}
