//! The fault point of the backup readers, compiled only with the `failpoints` cargo
//! feature (as sled's are): a read error in the middle of a named backup file.
//!
//! Every data and log file a store reads is opened as a [`SourceFile`]. With the feature,
//! [`fail_reads_after`] makes each later open of one file fail its reads with an I/O
//! error once `bytes` bytes of it were read, until [`clear_read_failure`]: what a
//! storage that breaks mid-file looks like to a restore. Invariant: without the feature
//! a `SourceFile` is a plain `File` and nothing is looked up.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// A backup file opened for reading (with the feature: and its armed failure, if any).
pub(crate) struct SourceFile {
    file: File,
    #[cfg(feature = "failpoints")]
    failure: Option<ReadFailure>,
}

#[cfg(feature = "failpoints")]
struct ReadFailure {
    after: u64,
    read: u64,
}

/// Files whose reads fail, by canonical path, with the bytes read before they do.
#[cfg(feature = "failpoints")]
static FAILING_READS: std::sync::Mutex<Vec<(std::path::PathBuf, u64)>> =
    std::sync::Mutex::new(Vec::new());

/// Makes reads of the backup file at `path` fail with an I/O error once `bytes` bytes of
/// it were read, for every open from now until [`clear_read_failure`].
#[cfg(feature = "failpoints")]
pub fn fail_reads_after(path: &Path, bytes: u64) {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(mut armed) = FAILING_READS.lock() {
        armed.retain(|(armed_path, _)| *armed_path != path);
        armed.push((path, bytes));
    }
}

/// Undoes [`fail_reads_after`] for `path`; files already open keep failing.
#[cfg(feature = "failpoints")]
pub fn clear_read_failure(path: &Path) {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(mut armed) = FAILING_READS.lock() {
        armed.retain(|(armed_path, _)| *armed_path != path);
    }
}

impl SourceFile {
    /// Opens the file at `resolved`, a canonical path.
    pub(crate) fn open(resolved: &Path) -> std::io::Result<SourceFile> {
        let file = File::open(resolved)?;
        #[cfg(feature = "failpoints")]
        let failure = FAILING_READS.lock().ok().and_then(|armed| {
            armed
                .iter()
                .find(|(path, _)| path == resolved)
                .map(|(_, after)| ReadFailure {
                    after: *after,
                    read: 0,
                })
        });
        Ok(SourceFile {
            file,
            #[cfg(feature = "failpoints")]
            failure,
        })
    }
}

impl Read for SourceFile {
    #[cfg(not(feature = "failpoints"))]
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }

    #[cfg(feature = "failpoints")]
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(failure) = self.failure.as_mut() else {
            return self.file.read(buf);
        };
        let left = failure.after.saturating_sub(failure.read);
        if left == 0 && !buf.is_empty() {
            return Err(std::io::Error::other(format!(
                "failpoint: read error after {} bytes",
                failure.after
            )));
        }
        let len = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = self.file.read(&mut buf[..len])?;
        failure.read += read as u64;
        Ok(read)
    }
}

impl Seek for SourceFile {
    fn seek(&mut self, position: SeekFrom) -> std::io::Result<u64> {
        self.file.seek(position)
    }
}
