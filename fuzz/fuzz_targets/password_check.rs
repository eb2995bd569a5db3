//! Fuzz target `password_check`: see `obrestore_backup::fuzz::password_check` for what it reads.
//! Run: `cargo +nightly fuzz run password_check` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::password_check(data));
