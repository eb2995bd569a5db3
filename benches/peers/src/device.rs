//! The device's limits, measured in the bench's own process on the filesystem of the
//! durable stores: small synced appends per second, and sequential write bandwidth.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The size of one appended record of the sync-rate probe (a small log record).
pub const RECORD_BYTES: usize = 128;
/// The block size of the sequential-write probe.
const BLOCK_BYTES: usize = 1 << 20;

/// The size of the preallocated file of the in-place sync probe.
const PREALLOCATED_BYTES: usize = 4 << 20;

/// How the sync-rate probe writes its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncProbe {
    /// Appended to a growing file: every `fdatasync` also commits the new size (a
    /// filesystem journal commit on ext4/xfs).
    Append,
    /// Written one after the other into a file preallocated (written and synced)
    /// beforehand, as a log with preallocated segments (sled's) does: `fdatasync` only
    /// writes the data and flushes the device cache. The device's floor.
    InPlace,
}

/// Writes `RECORD_BYTES` records to a fresh file in a temporary directory under
/// `parent`, each followed by `fdatasync`, for about `span`; returns syncs per second.
pub fn sync_rate(parent: &Path, probe: SyncProbe, span: Duration) -> anyhow::Result<f64> {
    let directory = tempfile::tempdir_in(parent).context("probe directory")?;
    let path = directory.path().join("log");
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .context("probe file")?;
    if probe == SyncProbe::InPlace {
        file.write_all(&vec![0u8; PREALLOCATED_BYTES])
            .context("preallocate")?;
        file.sync_all().context("fsync")?;
        file.seek(SeekFrom::Start(0)).context("seek")?;
    }
    let record = [b'r'; RECORD_BYTES];
    let started = Instant::now();
    let mut syncs = 0u64;
    let mut offset = 0usize;
    while started.elapsed() < span || syncs == 0 {
        if probe == SyncProbe::InPlace && offset + RECORD_BYTES > PREALLOCATED_BYTES {
            file.seek(SeekFrom::Start(0)).context("seek")?;
            offset = 0;
        }
        file.write_all(&record).context("write")?;
        offset += RECORD_BYTES;
        file.sync_data().context("fdatasync")?;
        syncs += 1;
    }
    Ok(syncs as f64 / started.elapsed().as_secs_f64())
}

/// One 4 KiB page per record, each written at the next page of a file preallocated
/// (written and synced) beforehand, through a descriptor opened `O_DIRECT | O_DSYNC`:
/// every `pwrite` returns once its page is on the device, without the page cache, as
/// the engine's commit log writes its records on Linux (`crates/dag/src/store/log_write.rs`).
/// Syncs per second for about `span`; `None` where the OS or the filesystem has no
/// direct writes.
pub fn direct_sync_rate(parent: &Path, span: Duration) -> anyhow::Result<Option<f64>> {
    const PAGE: usize = 4096;
    let directory = tempfile::tempdir_in(parent).context("probe directory")?;
    let path = directory.path().join("log");
    {
        let mut file = File::create(&path).context("probe file")?;
        file.write_all(&vec![0u8; PREALLOCATED_BYTES])
            .context("preallocate")?;
        file.sync_all().context("fsync")?;
    }
    let Some(file) = open_direct(&path) else {
        return Ok(None);
    };
    let mut staging = vec![b'r'; 2 * PAGE];
    let start = staging.as_ptr().align_offset(PAGE);
    let page = &mut staging[start..start + PAGE];
    let started = Instant::now();
    let mut syncs = 0u64;
    let mut offset = 0u64;
    while started.elapsed() < span || syncs == 0 {
        if offset + PAGE as u64 > PREALLOCATED_BYTES as u64 {
            offset = 0;
        }
        match std::os::unix::fs::FileExt::write_all_at(&file, page, offset) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::InvalidInput && syncs == 0 => {
                return Ok(None);
            }
            Err(err) => return Err(err).context("direct write"),
        }
        offset += PAGE as u64;
        syncs += 1;
    }
    Ok(Some(syncs as f64 / started.elapsed().as_secs_f64()))
}

#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<File> {
    None
}

/// Writes `bytes` (rounded up to whole MiB) to a fresh file under `parent` and `fsync`s
/// it; returns MB/s (10^6 bytes) for the whole, sync included.
pub fn sequential_write(parent: &Path, bytes: usize) -> anyhow::Result<f64> {
    let directory = tempfile::tempdir_in(parent).context("probe directory")?;
    let mut file = File::create(directory.path().join("data")).context("probe file")?;
    let block: Vec<u8> = (0..BLOCK_BYTES).map(|i| (i % 251) as u8).collect();
    let blocks = bytes.div_ceil(BLOCK_BYTES).max(1);
    let started = Instant::now();
    for _ in 0..blocks {
        file.write_all(&block).context("write")?;
    }
    file.sync_all().context("fsync")?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok((blocks * BLOCK_BYTES) as f64 / 1e6 / elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_measure_something() {
        let parent = std::env::temp_dir();
        for probe in [SyncProbe::Append, SyncProbe::InPlace] {
            let rate = sync_rate(&parent, probe, Duration::from_millis(20)).expect("sync rate");
            assert!(rate.is_finite() && rate > 0.0, "{probe:?}: {rate}");
        }
        let direct = direct_sync_rate(&parent, Duration::from_millis(20)).expect("direct");
        assert!(
            direct.is_none_or(|rate| rate.is_finite() && rate > 0.0),
            "{direct:?}"
        );
        let speed = sequential_write(&parent, 1).expect("sequential write");
        assert!(speed.is_finite() && speed > 0.0);
    }
}
