//! Peak memory of parsing one hostile metadata file: `cargo run --release -p
//! obrestore-backup --example meta_memory -- <zeros|streams|padding|nul> <MiB> [typed|value]`
//! writes an `ls_attr_info.obbak` of about `MiB` MiB (under the 64 MiB cap) to a
//! temporary directory, parses it with `read_meta` (`typed`, the reader's path) or into
//! a generic `serde_json::Value` (`value`, how metadata was parsed before), and prints
//! the growth of the process's peak RSS (`VmHWM`) as a multiple of the file's size.
//!
//! - `zeros`: `"tablet_ids":[0,0,0,...]`, the worst case (8 bytes parsed per 2 read);
//! - `streams`: many `{"ls_id":1,"tablet_ids":[]}` objects;
//! - `padding`: a valid body with one huge unknown string field (skipped);
//! - `nul`: NUL bytes (refused at the first byte).

use std::io::Write;

use obrestore_backup::meta::{read_meta, LsAttrInfo, MAX_META_BYTES};

/// The peak resident set of this process so far, in bytes (Linux `VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn write_file(path: &std::path::Path, shape: &str, size: u64) -> std::io::Result<u64> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let head =
        br#"{"magic":"OBRESTORE-META","version":1,"kind":"ls_attr_info","body":{"log_streams":["#;
    let (open, unit, close): (&[u8], &[u8], &[u8]) = match shape {
        "zeros" => (br#"{"ls_id":1,"tablet_ids":[0"#, b",0", b"]}]}}"),
        "streams" => (
            br#"{"ls_id":1,"tablet_ids":[]}"#,
            br#",{"ls_id":1,"tablet_ids":[]}"#,
            b"]}}",
        ),
        "padding" => (br#"],"padding":"a"#, b"aaaaaaaa", b"\"}}"),
        _ => (b"\0", b"\0", b"\0"),
    };
    let mut written = 0u64;
    for part in [&head[..], open] {
        out.write_all(part)?;
        written += part.len() as u64;
    }
    while written + (unit.len() + close.len()) as u64 <= size {
        out.write_all(unit)?;
        written += unit.len() as u64;
    }
    out.write_all(close)?;
    out.flush()?;
    Ok(written + close.len() as u64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let shape = args.get(1).map_or("zeros", String::as_str);
    let mib: u64 = args.get(2).map_or(Ok(63), |mib| mib.parse())?;
    let mode = args.get(3).map_or("typed", String::as_str);
    let dir = std::env::temp_dir().join(format!("obrestore-meta-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ls_attr_info.obbak");
    let size = write_file(&path, shape, (mib << 20).min(MAX_META_BYTES))?;
    let before = peak_rss();
    let outcome = if mode == "value" {
        let bytes = std::fs::read(&path)?;
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .map(|_| "parsed".to_string())
            .map_err(|err| err.to_string())
    } else {
        read_meta::<LsAttrInfo>(&path)
            .map(|info| format!("parsed {} log streams", info.log_streams.len()))
            .map_err(|err| err.to_string())
    };
    let after = peak_rss();
    std::fs::remove_dir_all(&dir)?;
    let outcome = outcome.unwrap_or_else(|err| format!("refused: {}", &err[..err.len().min(120)]));
    println!(
        "{shape} {mode}: file {:.1} MiB, peak RSS {:.1} -> {:.1} MiB (+{:.2}x the file); {outcome}",
        size as f64 / 1048576.0,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / size as f64
    );
    Ok(())
}
