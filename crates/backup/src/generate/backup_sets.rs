//! The data destination's backup sets: for each planned set, the start marker, one
//! directory of data files per log stream with its `macro_range_index.obbak`, the
//! set's info files and the end marker. A FULL set holds every live row; an
//! INCREMENTAL one the rows changed since the last successful set (deleted ones as
//! tombstones). A set with a password is encrypted with a key derived from it.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use super::config::{GenerateConfig, SetPlan, NANOS_PER_SEC};
use super::workload::Workload;
use super::{create_file, io_err, remove_ls_dirs};
use crate::block::{BlockWriter, FileKind, FILE_HEADER_LEN, FOOTER_LEN};
use crate::crypto::{self, SetKey};
use crate::error::Result;
use crate::layout;
use crate::meta::{
    write_meta, BackupSetInfo, BackupType, EncryptionInfo, FileStatus, ListingMarker, LsAttr,
    LsAttrInfo, LsId, MacroBlockEntry, MacroRangeEntry, MacroRangeIndex, RowBound, SetStatus,
    TabletId, TenantBackupSetInfos,
};
use crate::scn::Scn;

/// Writes the backup sets of one generation, in time order.
pub(super) struct SetWriter<'a> {
    config: &'a GenerateConfig,
    data_dir: PathBuf,
    ls_ids: Vec<LsId>,
    /// Infos of the sets taken so far, by id.
    sets: Vec<BackupSetInfo>,
    last_full: Option<u64>,
    last_success: Option<u64>,
    data_bytes: u64,
    value_buffer: Vec<u8>,
}

impl<'a> SetWriter<'a> {
    pub(super) fn new(config: &'a GenerateConfig, data_dir: PathBuf, ls_ids: &[LsId]) -> Self {
        SetWriter {
            config,
            data_dir,
            ls_ids: ls_ids.to_vec(),
            sets: Vec::new(),
            last_full: None,
            last_success: None,
            data_bytes: 0,
            value_buffer: Vec::new(),
        }
    }

    /// Takes planned set `index` (id `index + 1`) of `workload`'s rows at `snapshot`;
    /// a successful one starts the next incremental's changes afresh.
    pub(super) fn take_set(
        &mut self,
        snapshot: Scn,
        index: usize,
        rng: &mut ChaCha8Rng,
        workload: &mut Workload,
    ) -> Result<()> {
        let plan = &self.config.sets[index];
        let set_id = index as u64 + 1;
        let (prev_full, prev_inc) = match plan.backup_type {
            BackupType::Full => (0, 0),
            BackupType::Incremental => {
                (self.last_full.unwrap_or(0), self.last_success.unwrap_or(0))
            }
        };
        let (encryption, key) = set_encryption(plan, self.config.kdf_iterations, rng);
        let backup_window = (self.config.duration_ns / 200).clamp(1, 10 * 60 * NANOS_PER_SEC);
        let min_restore_scn = Scn(snapshot.as_u64() + backup_window);
        let set_dir = self
            .data_dir
            .join(layout::set_dir_name(set_id, plan.backup_type));
        self.write_marker(layout::set_start_marker(set_id, plan.backup_type), snapshot)?;
        let output_bytes =
            self.write_set_data(&set_dir, plan.backup_type, key.as_ref(), workload)?;
        self.data_bytes += output_bytes;
        let info = BackupSetInfo {
            backup_set_id: set_id,
            backup_type: plan.backup_type,
            prev_full_backup_set_id: prev_full,
            prev_inc_backup_set_id: prev_inc,
            start_replay_scn: snapshot,
            min_restore_scn,
            status: if plan.fail {
                SetStatus::Failed
            } else {
                SetStatus::Success
            },
            file_status: FileStatus::Available,
            encryption,
            output_bytes,
            tenant_id: self.config.tenant_id,
            tenant_name: self.config.tenant_name.clone(),
            cluster_version: self.config.cluster_version.clone(),
        };
        write_meta(&set_dir.join(layout::SINGLE_SET_INFO), &info)?;
        self.sets.push(info);
        write_meta(
            &set_dir.join(layout::TENANT_SET_INFOS),
            &TenantBackupSetInfos {
                backup_sets: self.sets.clone(),
            },
        )?;
        self.write_marker(
            layout::set_end_marker(set_id, plan.backup_type, !plan.fail, min_restore_scn),
            min_restore_scn,
        )?;
        if !plan.fail {
            workload.dirty.clear();
            self.last_success = Some(set_id);
            if plan.backup_type == BackupType::Full {
                self.last_full = Some(set_id);
            }
        }
        Ok(())
    }

    /// The set infos by id, those planned `delete` marked DELETED with their data files
    /// removed, and the data bytes written.
    pub(super) fn into_sets(self) -> Result<(Vec<BackupSetInfo>, u64)> {
        let mut sets = self.sets;
        for (set, plan) in sets.iter_mut().zip(&self.config.sets) {
            if plan.delete {
                set.file_status = FileStatus::Deleted;
                let set_dir = self.data_dir.join(set.dir_name());
                write_meta(&set_dir.join(layout::SINGLE_SET_INFO), &*set)?;
                remove_ls_dirs(&set_dir, &self.ls_ids)?;
            }
        }
        Ok((sets, self.data_bytes))
    }

    /// A listing marker `name` in `backup_sets/`.
    fn write_marker(&self, name: String, scn: Scn) -> Result<()> {
        let path = self.data_dir.join(layout::BACKUP_SETS_DIR).join(&name);
        write_meta(&path, &ListingMarker { name, scn })
    }

    /// Writes every LS of a set and its `ls_attr_info`. Returns the data bytes.
    fn write_set_data(
        &mut self,
        set_dir: &Path,
        backup_type: BackupType,
        key: Option<&SetKey>,
        workload: &Workload,
    ) -> Result<u64> {
        let mut output_bytes = 0;
        let mut ls_attrs = Vec::new();
        for ls_id in self.ls_ids.clone() {
            let tablet_indices: Vec<usize> = (0..workload.tablets.len())
                .filter(|&tablet| workload.tablets[tablet].ls_id == ls_id)
                .collect();
            ls_attrs.push(LsAttr {
                ls_id,
                tablet_ids: tablet_indices
                    .iter()
                    .map(|&tablet| workload.tablets[tablet].tablet_id)
                    .collect(),
            });
            output_bytes +=
                self.write_ls_data(set_dir, ls_id, &tablet_indices, backup_type, key, workload)?;
        }
        write_meta(
            &layout::ls_attr_info_path(set_dir),
            &LsAttrInfo {
                log_streams: ls_attrs,
            },
        )?;
        Ok(output_bytes)
    }

    /// Writes one LS of a set: its data files and `macro_range_index.obbak`. Returns bytes.
    fn write_ls_data(
        &mut self,
        set_dir: &Path,
        ls_id: LsId,
        tablet_indices: &[usize],
        backup_type: BackupType,
        key: Option<&SetKey>,
        workload: &Workload,
    ) -> Result<u64> {
        let dir = layout::ls_data_dir(set_dir, ls_id);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut files = DataFiles {
            dir,
            ls_id,
            key,
            file_bytes: self.config.data_file_bytes,
            block_bytes: self.config.block_bytes,
            current: None,
            entries: Vec::new(),
            bytes: 0,
        };
        for &tablet_index in tablet_indices {
            let tablet = &workload.tablets[tablet_index];
            let keys: Vec<u64> = match backup_type {
                BackupType::Full => {
                    let mut keys = tablet.live_keys.clone();
                    keys.sort_unstable();
                    keys
                }
                BackupType::Incremental => workload
                    .dirty
                    .range((tablet_index, 0)..=(tablet_index, u64::MAX))
                    .map(|&(_, key)| key)
                    .collect(),
            };
            for row_key in keys {
                let value = match tablet.rows.get(&row_key) {
                    Some(&(_, version)) => {
                        let buffer = &mut self.value_buffer;
                        workload
                            .values
                            .fill(tablet.tablet_id, row_key, version, buffer);
                        Some(buffer.as_slice())
                    }
                    None => None,
                };
                files.push(tablet.tablet_id, &row_key.to_be_bytes(), value)?;
            }
        }
        files.finish()
    }
}

/// The set's encryption info and key when `plan` has a password. The salt is drawn
/// either way, so the random sequence does not depend on passwords.
fn set_encryption(
    plan: &SetPlan,
    kdf_iterations: u32,
    rng: &mut ChaCha8Rng,
) -> (Option<EncryptionInfo>, Option<SetKey>) {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    match &plan.password {
        Some(password) => {
            let (info, key) = crypto::new_encryption(password, salt, kdf_iterations);
            (Some(info), Some(key))
        }
        None => (None, None),
    }
}

/// A data file being written, with the tablets and blocks it holds.
struct OpenDataFile {
    writer: BlockWriter<BufWriter<File>>,
    path: PathBuf,
    tablets: BTreeSet<TabletId>,
    /// The sealed blocks, for the macro range index.
    blocks: Vec<MacroBlockEntry>,
    /// The first row, last row and row count of the block being filled.
    open_block: Option<(RowBound, RowBound, u64)>,
}

impl OpenDataFile {
    /// Notes a row pushed into the current block, and the block if the push sealed it.
    fn note_row(&mut self, tablet_id: TabletId, key: &[u8]) {
        let row = RowBound {
            tablet_id,
            key: key.to_vec(),
        };
        match self.open_block.as_mut() {
            Some((_, last, rows)) => {
                *last = row;
                *rows += 1;
            }
            None => self.open_block = Some((row.clone(), row, 1)),
        }
        self.note_sealed();
    }

    /// Records the open block once the writer has sealed it.
    fn note_sealed(&mut self) {
        let sealed = self.writer.sealed();
        if sealed.blocks == self.blocks.len() as u64 {
            return;
        }
        let Some((first, last, row_count)) = self.open_block.take() else {
            return;
        };
        let offset = self.blocks.last().map_or(FILE_HEADER_LEN as u64, |block| {
            block.offset + block.stored_bytes
        });
        self.blocks.push(MacroBlockEntry {
            offset,
            stored_bytes: sealed.bytes - offset,
            row_count,
            first,
            last,
        });
    }
}

/// The data files of one LS of a set: rows go to the current file, a new one is started
/// once it holds `file_bytes`.
struct DataFiles<'k> {
    dir: PathBuf,
    ls_id: LsId,
    key: Option<&'k SetKey>,
    file_bytes: u64,
    block_bytes: usize,
    current: Option<OpenDataFile>,
    /// The finished files, by file index.
    entries: Vec<MacroRangeEntry>,
    bytes: u64,
}

impl DataFiles<'_> {
    /// Appends a row (`None`: a tombstone).
    fn push(&mut self, tablet_id: TabletId, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if self
            .current
            .as_ref()
            .is_some_and(|file| file.writer.bytes_written() >= self.file_bytes)
        {
            self.finish_current()?;
        }
        let file = match self.current.as_mut() {
            Some(file) => file,
            None => self.current.insert(self.open_next()?),
        };
        file.tablets.insert(tablet_id);
        file.writer
            .push_data_row(tablet_id, key, value)
            .map_err(io_err(&file.path))?;
        file.note_row(tablet_id, key);
        Ok(())
    }

    fn open_next(&self) -> Result<OpenDataFile> {
        let file_index = self.entries.len() as u64 + 1;
        let path = self.dir.join(layout::data_file_name(file_index));
        let out = create_file(&path)?;
        let writer = BlockWriter::new(
            out,
            FileKind::Data,
            self.ls_id,
            file_index,
            self.key.cloned(),
            self.block_bytes,
        )
        .map_err(io_err(&path))?;
        Ok(OpenDataFile {
            writer,
            path,
            tablets: BTreeSet::new(),
            blocks: Vec::new(),
            open_block: None,
        })
    }

    fn finish_current(&mut self) -> Result<()> {
        let Some(mut file) = self.current.take() else {
            return Ok(());
        };
        let (stats, _) = file.writer.finish().map_err(io_err(&file.path))?;
        if let Some((first, last, row_count)) = file.open_block.take() {
            let offset = file.blocks.last().map_or(FILE_HEADER_LEN as u64, |block| {
                block.offset + block.stored_bytes
            });
            file.blocks.push(MacroBlockEntry {
                offset,
                stored_bytes: stats.bytes - FOOTER_LEN as u64 - offset,
                row_count,
                first,
                last,
            });
        }
        self.entries.push(MacroRangeEntry {
            file_index: self.entries.len() as u64 + 1,
            size_bytes: stats.bytes,
            block_count: stats.blocks,
            row_count: stats.records,
            tablet_ids: file.tablets.into_iter().collect(),
            blocks: file.blocks,
        });
        self.bytes += stats.bytes;
        Ok(())
    }

    /// Finishes the last file and writes the LS's `macro_range_index.obbak`. Returns
    /// the bytes of its files.
    fn finish(mut self) -> Result<u64> {
        self.finish_current()?;
        write_meta(
            &self.dir.join(layout::MACRO_RANGE_INDEX),
            &MacroRangeIndex {
                ls_id: self.ls_id,
                files: self.entries,
            },
        )?;
        Ok(self.bytes)
    }
}
