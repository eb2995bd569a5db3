//! Archived log entries are applied in the order they are read, so the reader refuses
//! an order it cannot trust: a piece that lists a log stream's files out of file id
//! order or twice, and a log file whose blocks or entries go back in SCN (which the
//! writer refuses to write, so the test forges it).

mod common;

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use common::fixture;
use obrestore_backup::block::forge::{forge_file, ForgedBlock};
use obrestore_backup::block::{decode_log_entries, BlockReader, BlockWriter, FileKind};
use obrestore_backup::meta::{read_meta, write_meta, TenantArchivePieceInfos};
use obrestore_backup::{layout, BackupError, LsId, RestorePlan, RestoreTarget, Scn};

/// The latest-point plan of a fresh small backup, and the piece-infos file and log
/// stream of its first planned piece that has at least two log files.
fn plan_with_a_multi_file_stream() -> (common::Fixture, RestorePlan, PathBuf, LsId) {
    let fx = fixture(|_| {});
    let plan = fx.plan(RestoreTarget::Latest, &[]).unwrap();
    for piece in plan.piece_infos() {
        let infos_path = fx
            .archive
            .piece_dir(&piece)
            .join(layout::TENANT_PIECE_INFOS);
        let infos: TenantArchivePieceInfos = read_meta(&infos_path).unwrap();
        if let Some((ls_id, _)) = infos.log_files.iter().find(|(_, files)| files.len() >= 2) {
            let ls_id = *ls_id;
            return (fx, plan, infos_path, ls_id);
        }
    }
    panic!("no planned piece has a log stream with two log files");
}

/// Every entry of log stream `ls_id` over the plan's pieces, or the first error.
fn replay(fx: &common::Fixture, plan: &RestorePlan, ls_id: LsId) -> Result<usize, BackupError> {
    let entries = fx.archive.log_entries(
        &plan.piece_infos(),
        ls_id,
        plan.restore_start_scn,
        plan.restore_scn,
    )?;
    let mut count = 0;
    for entry in entries {
        entry?;
        count += 1;
    }
    Ok(count)
}

/// The entries `next_entry` lends, block after block and file after file (each block's
/// payload buffer recycled for the next read), are exactly the entries of the piece's
/// log files decoded block by block on their own.
#[test]
fn borrowed_entries_are_the_files_entries_in_order() {
    let (fx, plan, _, ls_id) = plan_with_a_multi_file_stream();
    let piece = plan
        .piece_infos()
        .into_iter()
        .find(|piece| fx.archive.log_files(piece, ls_id).unwrap().len() >= 2)
        .unwrap();
    let mut expected = Vec::new();
    let mut blocks = 0;
    for file in fx.archive.log_files(&piece, ls_id).unwrap() {
        let input = BufReader::new(File::open(&file.path).unwrap());
        let mut reader = BlockReader::new(input, &file.path, FileKind::Log, None).unwrap();
        while let Some(block) = reader.next_block().unwrap() {
            expected.extend(decode_log_entries(&block).unwrap());
            blocks += 1;
        }
    }
    assert!(blocks >= 2 && expected.len() > blocks, "{blocks} blocks");
    let mut entries = fx
        .archive
        .log_entries(std::slice::from_ref(&piece), ls_id, Scn(0), Scn::MAX)
        .unwrap();
    let mut borrowed = Vec::new();
    while let Some(entry) = entries.next_entry() {
        borrowed.push(entry.unwrap().to_owned_entry());
    }
    assert_eq!(borrowed, expected);
    assert!(entries.next_entry().is_none(), "the end is final");
}

#[test]
fn a_file_list_out_of_file_id_order_is_refused() {
    let (fx, plan, infos_path, ls_id) = plan_with_a_multi_file_stream();
    assert!(
        replay(&fx, &plan, ls_id).unwrap() > 0,
        "the untouched backup replays"
    );
    let mut infos: TenantArchivePieceInfos = read_meta(&infos_path).unwrap();
    infos.log_files.get_mut(&ls_id).unwrap().reverse();
    write_meta(&infos_path, &infos).unwrap();
    match replay(&fx, &plan, ls_id) {
        Err(BackupError::BadMetadata { path, reason }) => {
            assert_eq!(path, infos_path);
            assert!(reason.contains("ascending file id order"), "{reason}");
            let named = layout::ls_log_dir(infos_path.parent().unwrap(), ls_id);
            assert!(reason.contains(&named.display().to_string()), "{reason}");
        }
        other => panic!("expected BadMetadata, got {other:?}"),
    }
}

#[test]
fn a_file_listed_twice_is_refused_naming_it() {
    let (fx, plan, infos_path, ls_id) = plan_with_a_multi_file_stream();
    let mut infos: TenantArchivePieceInfos = read_meta(&infos_path).unwrap();
    let files = infos.log_files.get_mut(&ls_id).unwrap();
    let (file_id, _) = files[0];
    files.insert(1, files[0]);
    write_meta(&infos_path, &infos).unwrap();
    match replay(&fx, &plan, ls_id) {
        Err(BackupError::BadMetadata { path, reason }) => {
            assert_eq!(path, infos_path);
            let named = layout::ls_log_dir(infos_path.parent().unwrap(), ls_id)
                .join(layout::log_file_name(file_id));
            assert!(reason.contains(&named.display().to_string()), "{reason}");
            assert!(reason.contains("listed twice"), "{reason}");
        }
        other => panic!("expected BadMetadata, got {other:?}"),
    }
}

#[test]
fn a_log_file_going_back_in_scn_is_corrupt() {
    let (fx, plan, infos_path, ls_id) = plan_with_a_multi_file_stream();
    let mut infos: TenantArchivePieceInfos = read_meta(&infos_path).unwrap();
    let (file_id, _) = infos.log_files[&ls_id][0];
    let piece_dir = infos_path.parent().unwrap().to_path_buf();
    let path = layout::ls_log_dir(&piece_dir, ls_id).join(layout::log_file_name(file_id));
    // The same entries, written newest first: every block is CRC-valid.
    let mut reader = BlockReader::new(
        BufReader::new(File::open(&path).unwrap()),
        &path,
        FileKind::Log,
        None,
    )
    .unwrap();
    let mut entries = Vec::new();
    while let Some(block) = reader.next_block().unwrap() {
        entries.extend(decode_log_entries(&block).unwrap());
    }
    assert!(entries.len() > 1);
    entries.reverse();
    // The writer refuses to go back in SCN, so the file is forged: one block per entry,
    // newest first, every CRC valid.
    let mut writer =
        BlockWriter::new(Vec::new(), FileKind::Log, ls_id, file_id, None, 4096).unwrap();
    let e = &entries[0];
    writer
        .push_log_entry(e.scn, e.tablet_id, e.op, &e.key, &e.value)
        .unwrap();
    let e = &entries[1];
    let err = writer
        .push_log_entry(e.scn, e.tablet_id, e.op, &e.key, &e.value)
        .unwrap_err();
    assert!(
        err.to_string().contains("non-decreasing SCN order"),
        "{err}"
    );
    let blocks: Vec<ForgedBlock> = entries
        .iter()
        .map(|e| {
            let mut one =
                BlockWriter::new(Vec::new(), FileKind::Log, ls_id, file_id, None, 4096).unwrap();
            one.push_log_entry(e.scn, e.tablet_id, e.op, &e.key, &e.value)
                .unwrap();
            let (_, bytes) = one.finish().unwrap();
            let mut reader = BlockReader::new(&bytes[..], &path, FileKind::Log, None).unwrap();
            let block = reader.next_block().unwrap().unwrap();
            ForgedBlock {
                record_count: block.record_count,
                min_scn: block.min_scn,
                max_scn: block.max_scn,
                payload: block.payload,
            }
        })
        .collect();
    let forged = forge_file(FileKind::Log, ls_id, file_id, None, &blocks);
    std::fs::write(&path, &forged).unwrap();
    infos.log_files.get_mut(&ls_id).unwrap()[0].1 = forged.len() as u64;
    write_meta(&infos_path, &infos).unwrap();
    match replay(&fx, &plan, ls_id) {
        Err(BackupError::Corrupt {
            path: named,
            reason,
            ..
        }) => {
            assert_eq!(named, path);
            assert!(reason.contains("out of SCN order"), "{reason}");
        }
        other => panic!("expected a corruption error naming the file, got {other:?}"),
    }
}
