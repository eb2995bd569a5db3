//! Fuzz target `block_records`: see `obrestore_backup::fuzz::block_records` for what it reads.
//! Run: `cargo +nightly fuzz run block_records` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::block_records(data));
