//! Seed inputs of every fuzz target, derived from a generated backup: its real blocks,
//! files, listings and metadata bodies, encoded as each target reads its input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::fs_targets::{encode_log_entries_input, LogBlockInput, FUZZ_LS};
use super::{encode_block_input, encode_password_input, fuzz_key, META_KINDS};
use crate::block::forge::{forge_file, ForgedBlock};
use crate::block::{BlockReader, FileKind};
use crate::error::{BackupError, Result};
use crate::generate::{generate, sets_from_pattern, GenerateConfig, GenerateSummary};
use crate::layout;
use crate::meta::PieceInfo;
use crate::store::{ArchiveStore, DataStore};

/// The password of the seed backup's encrypted set.
pub const SEED_PASSWORD: &str = "fuzz-seed";

/// A small backup in `dir` to take seeds from (set 2 encrypted with [`SEED_PASSWORD`]).
///
/// # Errors
/// As [`generate`].
pub fn seed_backup(dir: &Path) -> Result<GenerateSummary> {
    let mut config = GenerateConfig::new(dir);
    config.target_bytes = 128 << 10;
    config.kdf_iterations = 1000;
    config.block_bytes = 4 << 10;
    config.data_file_bytes = 8 << 10;
    config.log_file_bytes = 2 << 10;
    config.sets = sets_from_pattern("FIF")?;
    config.sets[1].password = Some(SEED_PASSWORD.to_string());
    config.overwrite = true;
    generate(&config)
}

/// The seeds of every target: `(target name, input)`.
///
/// # Errors
/// Reading the backup failed.
pub fn seeds(summary: &GenerateSummary) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let data = DataStore::open(&summary.data_dir)?;
    let archive = ArchiveStore::open(&summary.archive_dir)?;
    let mut seeds = Vec::new();
    data_seeds(&data, &mut seeds)?;
    archive_seeds(&archive, &mut seeds)?;
    meta_seeds(&summary.tenant_dir, &mut seeds)?;
    Ok(seeds)
}

fn read_blocks(
    path: &Path,
    kind: FileKind,
    key: Option<crate::SetKey>,
) -> Result<Vec<ForgedBlock>> {
    let file = File::open(path).map_err(|err| BackupError::io(path, err))?;
    let mut reader = BlockReader::new(BufReader::new(file), path, kind, key)?;
    let mut blocks = Vec::new();
    while let Some(block) = reader.next_block()? {
        blocks.push(ForgedBlock {
            record_count: block.record_count,
            min_scn: block.min_scn,
            max_scn: block.max_scn,
            payload: block.payload,
        });
    }
    Ok(blocks)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| BackupError::io(path, err))
}

fn listing(dir: &Path) -> Result<Vec<u8>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|err| BackupError::io(dir, err))? {
        let entry = entry.map_err(|err| BackupError::io(dir, err))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names.join("\n").into_bytes())
}

/// The body of a metadata file, as text.
fn body_of(path: &Path) -> Result<Vec<u8>> {
    let value: serde_json::Value =
        serde_json::from_slice(&read_file(path)?).map_err(|err| BackupError::BadMetadata {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    Ok(value["body"].to_string().into_bytes())
}

fn data_seeds(data: &DataStore, seeds: &mut Vec<(&'static str, Vec<u8>)>) -> Result<()> {
    let sets = data.list_sets()?;
    let mut set_listing = listing(&data.root().join(layout::BACKUP_SETS_DIR))?;
    for set in &sets {
        set_listing.push(0);
        set_listing.extend(body_of(&data.set_dir(set).join(layout::SINGLE_SET_INFO))?);
        let key = data.unlock(set, &[SEED_PASSWORD.to_string()])?;
        if let Some(encryption) = &set.encryption {
            seeds.push((
                "password_check",
                encode_password_input(SEED_PASSWORD, encryption),
            ));
            seeds.push(("password_check", encode_password_input("wrong", encryption)));
        }
        for ls in data.ls_attrs(set)?.iter().take(2) {
            let index =
                layout::ls_data_dir(&data.set_dir(set), ls.ls_id).join(layout::MACRO_RANGE_INDEX);
            seeds.push(("macro_range_index", body_of(&index)?));
            for file in data.data_files(set, ls.ls_id)?.iter().take(2) {
                data_file_seeds(&file.path, key.clone(), file, seeds)?;
            }
        }
    }
    seeds.push(("set_listing", set_listing));
    Ok(())
}

fn data_file_seeds(
    path: &Path,
    key: Option<crate::SetKey>,
    file: &crate::DataFileRef,
    seeds: &mut Vec<(&'static str, Vec<u8>)>,
) -> Result<()> {
    let blocks = read_blocks(path, FileKind::Data, key.clone())?;
    for block in blocks.iter().take(2) {
        let input = encode_block_input(FileKind::Data, block);
        seeds.push(("block_records", input.clone()));
        seeds.push(("block_records_encrypted", input));
    }
    // Whole files: as written when plain, resealed under the fuzz key when encrypted.
    let (flags, bytes) = match key {
        None => (0u8, read_file(path)?),
        Some(_) => {
            let fuzz = Some(fuzz_key());
            (
                2u8,
                forge_file(FileKind::Data, file.ls_id, file.file_index, fuzz, &blocks),
            )
        }
    };
    seeds.push(("block_parser", bytes.clone()));
    let mut input = vec![flags, 255];
    input.extend(bytes);
    seeds.push(("block_reader", input));
    Ok(())
}

fn archive_seeds(archive: &ArchiveStore, seeds: &mut Vec<(&'static str, Vec<u8>)>) -> Result<()> {
    let pieces = archive.pieces()?;
    let mut piece_listing = listing(&archive.root().join(layout::PIECES_DIR))?;
    let mut checkpoint_body = Vec::new();
    if let Some(first) = pieces.first() {
        let dir = archive.piece_dir(first).join("checkpoint");
        let names = listing(&dir)?;
        piece_listing.push(b'\n');
        piece_listing.extend_from_slice(&names);
        if let Some(name) = String::from_utf8_lossy(&names).lines().next() {
            checkpoint_body = body_of(&dir.join(name))?;
        }
    }
    for piece in &pieces {
        piece_listing.push(0);
        piece_listing.extend(body_of(
            &archive.piece_dir(piece).join(layout::SINGLE_PIECE_INFO),
        )?);
        let infos = archive.piece_dir(piece).join(layout::TENANT_PIECE_INFOS);
        seeds.push(("log_file_list", body_of(&infos)?));
    }
    piece_listing.push(0);
    piece_listing.extend(checkpoint_body);
    seeds.push(("piece_listing", piece_listing));
    for pair in pieces.windows(2).take(3) {
        seeds.push(("log_entries", log_entries_seed(archive, pair)?));
    }
    Ok(())
}

/// The log blocks of [`FUZZ_LS`] in two consecutive pieces, replayed over both.
fn log_entries_seed(archive: &ArchiveStore, pair: &[PieceInfo]) -> Result<Vec<u8>> {
    let mut blocks = Vec::new();
    for (index, piece) in pair.iter().enumerate() {
        for (position, file) in archive
            .log_files(piece, FUZZ_LS)?
            .iter()
            .take(4)
            .enumerate()
        {
            for block in read_blocks(&file.path, FileKind::Log, None)? {
                blocks.push(LogBlockInput {
                    piece: index as u8,
                    file_id: position as u8,
                    block,
                });
            }
        }
    }
    let (from, to) = (pair[0].start_scn, pair[1].checkpoint_scn);
    Ok(encode_log_entries_input(from, to, &blocks))
}

/// Every metadata file's body under its kind's selector, and whole files as they are.
fn meta_seeds(tenant_dir: &Path, seeds: &mut Vec<(&'static str, Vec<u8>)>) -> Result<()> {
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut dirs = vec![tenant_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|err| BackupError::io(&dir, err))? {
            let path = entry.map_err(|err| BackupError::io(&dir, err))?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&read_file(&path)?) else {
                continue;
            };
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let Some(selector) = META_KINDS.iter().position(|known| *known == kind) else {
                continue;
            };
            let seen = by_kind.entry(kind).or_default();
            *seen += 1;
            if *seen > 3 {
                continue;
            }
            let mut input = vec![selector as u8];
            input.extend(value["body"].to_string().into_bytes());
            seeds.push(("meta_bodies", input));
            seeds.push(("meta_parser", read_file(&path)?));
        }
    }
    Ok(())
}
