//! Fuzz target `block_reader`: see `obrestore_backup::fuzz::block_reader` for what it reads.
//! Run: `cargo +nightly fuzz run block_reader` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::block_reader(data));
