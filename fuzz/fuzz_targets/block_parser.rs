//! Fuzz target `block_parser`: see `obrestore_backup::fuzz::block_parser` for what it reads.
//! Run: `cargo +nightly fuzz run block_parser` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::block_parser(data));
