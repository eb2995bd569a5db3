//! The fault point of the row store, compiled only with the `failpoints` cargo feature
//! (as sled's are): a full disk. With the feature, [`fail_row_writes_under`] makes every
//! write of a run file under a directory fail as a full disk does (`ENOSPC`, "No space
//! left on device") until [`clear_row_write_failure`]. Invariant: without the feature
//! [`check_write`] is a constant `Ok` and nothing is looked up.

use std::path::Path;

/// Directories under which run file writes fail.
#[cfg(feature = "failpoints")]
static FULL_DISKS: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Makes every write of a run file under `dir` (an agent's data directory, say) fail
/// with `ENOSPC` until [`clear_row_write_failure`].
#[cfg(feature = "failpoints")]
pub fn fail_row_writes_under(dir: &Path) {
    if let Ok(mut full) = FULL_DISKS.lock() {
        full.push(dir.to_path_buf());
    }
}

/// Undoes [`fail_row_writes_under`] for `dir`: the disk has room again.
#[cfg(feature = "failpoints")]
pub fn clear_row_write_failure(dir: &Path) {
    if let Ok(mut full) = FULL_DISKS.lock() {
        full.retain(|full| full != dir);
    }
}

/// `ENOSPC` if run file `path` is under a directory made full.
#[cfg(feature = "failpoints")]
pub(super) fn check_write(path: &Path) -> std::io::Result<()> {
    let full = FULL_DISKS
        .lock()
        .map(|full| full.iter().any(|dir| path.starts_with(dir)))
        .unwrap_or(false);
    if full {
        return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
    }
    Ok(())
}

/// Without the `failpoints` feature every write goes through.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(super) fn check_write(_path: &Path) -> std::io::Result<()> {
    Ok(())
}
