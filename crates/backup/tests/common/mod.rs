//! Shared helpers of the integration tests: small generated backups in tempdirs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use obrestore_backup::generate::{GapPlan, GenerateConfig};
use obrestore_backup::truth::TenantDigest;
use obrestore_backup::{
    generate, plan_restore, ArchiveStore, DataStore, GenerateSummary, RestorePlan, RestoreTarget,
    Scn,
};

pub const HOUR: u64 = 3600 * 1_000_000_000;

/// A fresh small backup: 256 KiB, 48 h, 6 h pieces, sets F I I F I at 8/16/24/32/40 h.
pub fn small_config(dir: &Path) -> GenerateConfig {
    let mut config = GenerateConfig::new(dir);
    config.target_bytes = 256 << 10;
    config.kdf_iterations = 1000;
    config.block_bytes = 4 << 10;
    config.data_file_bytes = 12 << 10;
    config.log_file_bytes = 2 << 10;
    config
}

pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub summary: GenerateSummary,
    pub data: DataStore,
    pub archive: ArchiveStore,
}

pub fn fixture(edit: impl FnOnce(&mut GenerateConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    edit(&mut config);
    let summary = generate(&config).unwrap();
    let data = DataStore::open(&summary.data_dir).unwrap();
    let archive = ArchiveStore::open(&summary.archive_dir).unwrap();
    Fixture {
        _dir: dir,
        summary,
        data,
        archive,
    }
}

pub fn gap(at: f64, length_ns: u64) -> GapPlan {
    GapPlan { at, length_ns }
}

impl Fixture {
    pub fn base(&self) -> u64 {
        self.summary.first_scn.as_u64()
    }

    pub fn at_hours(&self, hours: f64) -> Scn {
        Scn(self.base() + (hours * HOUR as f64) as u64)
    }

    pub fn plan(
        &self,
        target: RestoreTarget,
        passwords: &[&str],
    ) -> obrestore_backup::Result<RestorePlan> {
        let passwords: Vec<String> = passwords.iter().map(|p| p.to_string()).collect();
        plan_restore(&self.data, &self.archive, &target, &passwords)
    }

    /// Applies the plan with the backup readers and digests the result.
    pub fn restore_digest(&self, plan: &RestorePlan) -> TenantDigest {
        let mut rows: BTreeMap<(u64, Vec<u8>), Vec<u8>> = BTreeMap::new();
        let mut ls_ids = Vec::new();
        for set in &plan.sets {
            for ls in self.data.ls_attrs(&set.info).unwrap() {
                if !ls_ids.contains(&ls.ls_id) {
                    ls_ids.push(ls.ls_id);
                }
                for file in self.data.data_files(&set.info, ls.ls_id).unwrap() {
                    let blocks = self
                        .data
                        .read_data_file(&file, plan.key(set.info.backup_set_id))
                        .unwrap();
                    for block in blocks {
                        for row in block.unwrap().rows {
                            match row.value {
                                Some(value) => rows.insert((row.tablet_id, row.key), value),
                                None => rows.remove(&(row.tablet_id, row.key)),
                            };
                        }
                    }
                }
            }
        }
        let pieces = plan.piece_infos();
        for ls_id in ls_ids {
            let mut last = Scn(0);
            for entry in self
                .archive
                .log_entries(&pieces, ls_id, plan.restore_start_scn, plan.restore_scn)
                .unwrap()
            {
                let entry = entry.unwrap();
                assert!(entry.scn > plan.restore_start_scn && entry.scn <= plan.restore_scn);
                assert!(entry.scn > last, "log entries out of order");
                last = entry.scn;
                match entry.op {
                    obrestore_backup::LogOp::Delete => rows.remove(&(entry.tablet_id, entry.key)),
                    _ => rows.insert((entry.tablet_id, entry.key), entry.value),
                };
            }
        }
        obrestore_backup::truth::digest_map(&rows)
    }
}

/// Every file under `root`, relative path → bytes.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}
