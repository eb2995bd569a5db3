//! Fuzz target `meta_bodies`: see `obrestore_backup::fuzz::meta_bodies` for what it reads.
//! Run: `cargo +nightly fuzz run meta_bodies` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::meta_bodies(data));
