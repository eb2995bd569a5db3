//! Fuzz target `log_entries`: see `obrestore_backup::fuzz::log_entries` for what it reads.
//! Run: `cargo +nightly fuzz run log_entries` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::log_entries(data));
