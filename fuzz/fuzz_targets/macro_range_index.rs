//! Fuzz target `macro_range_index`: see `obrestore_backup::fuzz::macro_range_index` for what it reads.
//! Run: `cargo +nightly fuzz run macro_range_index` from `fuzz/` (seeded by `scripts/fuzz-backup.sh`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| obrestore_backup::fuzz::macro_range_index(data));
