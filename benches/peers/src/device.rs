//! The device's limits, measured in the bench's own process on the filesystem of the
//! durable stores: small synced appends per second, and sequential write bandwidth.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The size of one appended record of the sync-rate probe (a small log record).
pub const RECORD_BYTES: usize = 128;
/// The block size of the sequential-write probe.
const BLOCK_BYTES: usize = 1 << 20;

/// Appends `RECORD_BYTES` records to a fresh file in a temporary directory under
/// `parent`, each followed by `fdatasync`, for about `span`; returns syncs per second.
pub fn sync_rate(parent: &Path, span: Duration) -> anyhow::Result<f64> {
    let directory = tempfile::tempdir_in(parent).context("probe directory")?;
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(directory.path().join("log"))
        .context("probe file")?;
    let record = [b'r'; RECORD_BYTES];
    let started = Instant::now();
    let mut syncs = 0u64;
    while started.elapsed() < span || syncs == 0 {
        file.write_all(&record).context("append")?;
        file.sync_data().context("fdatasync")?;
        syncs += 1;
    }
    Ok(syncs as f64 / started.elapsed().as_secs_f64())
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
        let rate = sync_rate(&parent, Duration::from_millis(20)).expect("sync rate");
        assert!(rate.is_finite() && rate > 0.0);
        let speed = sequential_write(&parent, 1).expect("sequential write");
        assert!(speed.is_finite() && speed > 0.0);
    }
}
