//! Metadata parses straight into its typed record, so a hostile file costs memory in
//! proportion to its size: here a 16 MiB `ls_attr_info.obbak` of one-digit tablet ids,
//! the worst case (8 bytes of `u64` per 2 bytes of text), peaks at about 5 times the
//! file (17 times when it went through a generic JSON value first). Alone in its test
//! binary, because it reads the process's peak RSS (`VmHWM`).
//! `examples/meta_memory.rs` measures the other shapes and sizes.

use std::io::Write;

use obrestore_backup::meta::{read_meta, LsAttrInfo};

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim();
    kb.parse::<u64>().unwrap() * 1024
}

#[test]
fn a_metadata_file_of_zeros_peaks_at_a_small_multiple_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ls_attr_info.obbak");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    out.write_all(br#"{"magic":"OBRESTORE-META","version":1,"kind":"ls_attr_info","body":{"log_streams":[{"ls_id":1,"tablet_ids":[0"#)
        .unwrap();
    let zeros = 8 << 20;
    for _ in 1..zeros {
        out.write_all(b",0").unwrap();
    }
    out.write_all(b"]}]}}").unwrap();
    drop(out);
    let size = std::fs::metadata(&path).unwrap().len();
    let before = peak_rss();
    let info: LsAttrInfo = read_meta(&path).unwrap();
    let growth = peak_rss().saturating_sub(before);
    assert_eq!(info.log_streams[0].tablet_ids.len(), zeros);
    // The record itself is 4 times the file, the file's bytes 1 more.
    assert!(
        growth < 7 * size,
        "parsing {size} bytes grew the peak RSS by {growth} bytes ({:.1}x)",
        growth as f64 / size as f64
    );
}
