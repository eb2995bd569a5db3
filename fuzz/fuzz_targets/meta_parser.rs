//! Fuzzes the metadata envelope parser with every metadata body type.
//! Run: `cargo +nightly fuzz run meta_parser` from `fuzz/`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use obrestore_backup::meta::{
    parse_meta, BackupSetInfo, CheckpointInfo, FormatInfo, ListingMarker, LsAttrInfo,
    MacroRangeIndex, PieceInfo, TenantArchivePieceInfos, TenantBackupSetInfos,
};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.obbak");
    let _ = parse_meta::<FormatInfo>(data, path);
    let _ = parse_meta::<BackupSetInfo>(data, path);
    let _ = parse_meta::<TenantBackupSetInfos>(data, path);
    let _ = parse_meta::<LsAttrInfo>(data, path);
    let _ = parse_meta::<MacroRangeIndex>(data, path);
    let _ = parse_meta::<ListingMarker>(data, path);
    let _ = parse_meta::<PieceInfo>(data, path);
    let _ = parse_meta::<TenantArchivePieceInfos>(data, path);
    let _ = parse_meta::<CheckpointInfo>(data, path);
    let name = String::from_utf8_lossy(data);
    let _ = obrestore_backup::layout::parse_set_marker(&name);
    let _ = obrestore_backup::layout::parse_piece_marker(&name);
});
