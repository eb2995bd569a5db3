//! Fuzz target `set_listing`: see `obrestore_backup::fuzz::set_listing` for what it reads.
//! Run: `cargo +nightly fuzz run set_listing` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::set_listing(data));
