//! Fuzz target `piece_listing`: see `obrestore_backup::fuzz::piece_listing` for what it reads.
//! Run: `cargo +nightly fuzz run piece_listing` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::piece_listing(data));
