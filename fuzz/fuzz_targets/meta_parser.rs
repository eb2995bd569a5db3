//! Fuzz target `meta_parser`: see `obrestore_backup::fuzz::meta_parser` for what it reads.
//! Run: `cargo +nightly fuzz run meta_parser` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::meta_parser(data));
