//! The block-delay failpoint of `Restore data`, compiled only with the `failpoints`
//! cargo feature (as sled's are).
//!
//! With the feature, `OBRESTORE_FAILPOINT_BLOCK_DELAY_MS=N` in the environment (or
//! [`set_block_delay_failpoint`]) makes `Restore data` sleep N ms after each data block,
//! so that a test can reliably act in the middle of the stage however fast the machine
//! is; off (0) by default, when it costs one atomic load per block. Invariant: without
//! the feature [`block_delay`] is a constant `None` and nothing reads the environment.

use std::time::Duration;

/// The environment variable of the block delay, in milliseconds.
#[cfg(feature = "failpoints")]
pub const BLOCK_DELAY_FAILPOINT: &str = "OBRESTORE_FAILPOINT_BLOCK_DELAY_MS";

/// `u64::MAX` until first read from the environment.
#[cfg(feature = "failpoints")]
static BLOCK_DELAY_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

/// Sets the [`BLOCK_DELAY_FAILPOINT`] delay for the whole process (0 turns it off).
#[cfg(feature = "failpoints")]
pub fn set_block_delay_failpoint(ms: u64) {
    BLOCK_DELAY_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

/// How long `Restore data` sleeps after a data block, if at all.
#[cfg(feature = "failpoints")]
pub(crate) fn block_delay() -> Option<Duration> {
    use std::sync::atomic::Ordering;
    let mut ms = BLOCK_DELAY_MS.load(Ordering::Relaxed);
    if ms == u64::MAX {
        ms = std::env::var(BLOCK_DELAY_FAILPOINT)
            .ok()
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .filter(|ms| *ms != u64::MAX)
            .unwrap_or(0);
        let _ = BLOCK_DELAY_MS.compare_exchange(u64::MAX, ms, Ordering::Relaxed, Ordering::Relaxed);
    }
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Without the `failpoints` feature there is no delay.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn block_delay() -> Option<Duration> {
    None
}
