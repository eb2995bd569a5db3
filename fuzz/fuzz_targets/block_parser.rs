//! Fuzzes the binary block format (data and log files, plain and encrypted).
//! Run: `cargo +nightly fuzz run block_parser` from `fuzz/`. Seed the corpus with files
//! from `obagent backup generate --size 1MiB` (`macro_block_data.*.obbak`, `*.obarc`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use obrestore_backup::block::{parse_data_file, parse_log_file};
use obrestore_backup::crypto::new_encryption;

fuzz_target!(|data: &[u8]| {
    let _ = parse_log_file(data);
    let _ = parse_data_file(data, None);
    let (_, key) = new_encryption("fuzz", [0; 16], 1);
    let _ = parse_data_file(data, Some(key));
});
