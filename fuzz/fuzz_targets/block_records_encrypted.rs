//! Fuzz target `block_records_encrypted`: see `obrestore_backup::fuzz::block_records_encrypted` for what it reads.
//! Run: `cargo +nightly fuzz run block_records_encrypted` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::block_records_encrypted(data));
