//! Fuzz target `log_file_list`: see `obrestore_backup::fuzz::log_file_list` for what it reads.
//! Run: `cargo +nightly fuzz run log_file_list` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::log_file_list(data));
