//! What to generate: [`GenerateConfig`] with its planned sets and archive gaps, the
//! parsers of the CLI's sizes, durations and set patterns, and the checks a config
//! passes before anything is written.

use std::path::PathBuf;

use crate::crypto;
use crate::error::{BackupError, Result};
use crate::meta::BackupType;
use crate::scn::{Scn, UtcOffset};

pub(super) const NANOS_PER_SEC: u64 = 1_000_000_000;

/// One backup set to take.
#[derive(Debug, Clone, PartialEq)]
pub struct SetPlan {
    pub backup_type: BackupType,
    /// When, as a fraction of the workload duration (0 < at < 1).
    pub at: f64,
    /// Encrypt the set with this password.
    pub password: Option<String>,
    /// Record the set as FAILED (`_end_failed_` marker); it does not join any chain.
    pub fail: bool,
    /// Mark the set DELETED afterwards and remove its data files.
    pub delete: bool,
}

/// A pause of archiving: the round stops at `at` and a new round starts `length_ns` later.
/// The stopped piece keeps its planned `end_scn` (as OceanBase does), so a short gap
/// overlaps the next round's first piece and a long one leaves a hole.
#[derive(Debug, Clone, PartialEq)]
pub struct GapPlan {
    pub at: f64,
    pub length_ns: u64,
}

/// Generator configuration. `GenerateConfig::new(dir)` gives the demo defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Output root; destinations go to `<dir>/<cluster_name>/<cluster_id>/incarnation_1/<tenant_id>/`.
    pub dir: PathBuf,
    pub cluster_name: String,
    pub cluster_id: u64,
    pub tenant_id: u64,
    pub tenant_name: String,
    pub cluster_version: String,
    pub seed: u64,
    /// Approximate total bytes of both destinations.
    pub target_bytes: u64,
    /// User log streams (1001, 1002, ...) besides the sys LS 1.
    pub user_log_streams: u32,
    pub tablets_per_ls: u32,
    /// SCN of the tenant's creation (the workload starts right after it).
    pub base_scn: Scn,
    pub duration_ns: u64,
    pub piece_len_ns: u64,
    pub sets: Vec<SetPlan>,
    pub gaps: Vec<GapPlan>,
    /// Piece ids whose files are marked DELETED (and removed).
    pub delete_pieces: Vec<u64>,
    pub data_file_bytes: u64,
    pub log_file_bytes: u64,
    pub block_bytes: usize,
    pub kdf_iterations: u32,
    /// The tenant's system time zone, recorded in both `format.obbak` files; restore
    /// planning reads a timestamp without an offset in it. Default `+08:00`.
    pub time_zone: UtcOffset,
    /// Remove existing `data`, `clog` and `truth` directories first.
    pub overwrite: bool,
}

/// 2024-04-01T00:00:00Z.
pub const DEFAULT_BASE_SCN: Scn = Scn(1_711_929_600 * NANOS_PER_SEC);

impl GenerateConfig {
    /// Demo defaults: 256 MiB, seed 42, LS 1 + 3 user LS × 4 tablets, 48 h of workload,
    /// 6 h pieces, sets FULL, INC, INC, FULL, INC evenly spread, time zone `+08:00`.
    pub fn new(dir: impl Into<PathBuf>) -> GenerateConfig {
        GenerateConfig {
            dir: dir.into(),
            cluster_name: "obcluster".to_string(),
            cluster_id: 1_704_259_760,
            tenant_id: 1002,
            tenant_name: "mysql_tenant".to_string(),
            cluster_version: "4.2.1.0".to_string(),
            seed: 42,
            target_bytes: 256 << 20,
            user_log_streams: 3,
            tablets_per_ls: 4,
            base_scn: DEFAULT_BASE_SCN,
            duration_ns: 48 * 3600 * NANOS_PER_SEC,
            piece_len_ns: 6 * 3600 * NANOS_PER_SEC,
            sets: sets_from_pattern("FIIFI").unwrap_or_default(),
            gaps: Vec::new(),
            delete_pieces: Vec::new(),
            data_file_bytes: 64 << 20,
            log_file_bytes: 64 << 20,
            block_bytes: 2 << 20,
            kdf_iterations: crypto::DEFAULT_KDF_ITERATIONS,
            time_zone: UtcOffset::OCEANBASE_DEFAULT,
            overwrite: false,
        }
    }

    /// `<dir>/<cluster_name>/<cluster_id>/incarnation_1/<tenant_id>`.
    pub fn tenant_dir(&self) -> PathBuf {
        self.dir
            .join(&self.cluster_name)
            .join(self.cluster_id.to_string())
            .join("incarnation_1")
            .join(self.tenant_id.to_string())
    }
}

/// Sets evenly spread over the workload from a pattern like `FIIFI` (F = FULL, I = INC).
///
/// # Errors
/// [`BackupError::InvalidConfig`] for other letters.
pub fn sets_from_pattern(pattern: &str) -> Result<Vec<SetPlan>> {
    let letters: Vec<char> = pattern
        .chars()
        .filter(|c| !matches!(c, ',' | ' '))
        .collect();
    let count = letters.len() as f64;
    letters
        .iter()
        .enumerate()
        .map(|(index, letter)| {
            let backup_type = match letter.to_ascii_uppercase() {
                'F' => BackupType::Full,
                'I' => BackupType::Incremental,
                other => {
                    return Err(BackupError::InvalidConfig(format!(
                        "set pattern letter '{other}' (use F for FULL, I for INCREMENTAL)"
                    )))
                }
            };
            Ok(SetPlan {
                backup_type,
                at: (index as f64 + 1.0) / (count + 1.0),
                password: None,
                fail: false,
                delete: false,
            })
        })
        .collect()
}

/// Parses sizes like `256MiB`, `4GiB`, `10MB`, `512k`, `1048576`.
///
/// # Errors
/// [`BackupError::InvalidConfig`] for anything else.
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        BackupError::InvalidConfig(format!("size '{text}' is not a number with a unit"))
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => {
            return Err(BackupError::InvalidConfig(format!(
                "unknown size unit '{other}' in '{text}'"
            )))
        }
    };
    Ok((number * factor as f64) as u64)
}

/// Parses durations like `6h`, `30m`, `90s`, `2d`, `1500ms`.
///
/// # Errors
/// [`BackupError::InvalidConfig`] for anything else.
pub fn parse_duration_ns(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        BackupError::InvalidConfig(format!("duration '{text}' is not a number with a unit"))
    })?;
    let factor: u64 = match unit.trim() {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "" | "s" => NANOS_PER_SEC,
        "m" | "min" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        other => {
            return Err(BackupError::InvalidConfig(format!(
                "unknown duration unit '{other}' in '{text}'"
            )))
        }
    };
    Ok((number * factor as f64) as u64)
}

/// Checks that `config` can be generated.
///
/// # Errors
/// [`BackupError::InvalidConfig`] naming the first problem.
pub(super) fn validate(config: &GenerateConfig) -> Result<()> {
    let invalid = |reason: String| Err(BackupError::InvalidConfig(reason));
    if !config.dir.is_absolute() {
        return invalid(format!(
            "output dir '{}' must be absolute",
            config.dir.display()
        ));
    }
    if config.duration_ns < 1_000_000 || config.piece_len_ns == 0 {
        return invalid("duration must be at least 1 ms and piece length positive".to_string());
    }
    if config.user_log_streams == 0 || config.tablets_per_ls == 0 {
        return invalid(
            "need at least one user log stream and one tablet per log stream".to_string(),
        );
    }
    if config
        .base_scn
        .as_u64()
        .checked_add(config.duration_ns.saturating_mul(2))
        .is_none()
    {
        return invalid("base scn + duration overflows".to_string());
    }
    let mut seen_full = false;
    let mut order: Vec<&SetPlan> = config.sets.iter().collect();
    order.sort_by(|a, b| a.at.total_cmp(&b.at));
    if order
        .iter()
        .zip(&config.sets)
        .any(|(a, b)| !std::ptr::eq(*a, b))
    {
        return invalid("sets must be listed in time order".to_string());
    }
    for plan in &config.sets {
        if !(plan.at > 0.0 && plan.at < 1.0) {
            return invalid(format!(
                "set position {} must be strictly between 0 and 1",
                plan.at
            ));
        }
        match plan.backup_type {
            BackupType::Full if !plan.fail => seen_full = true,
            BackupType::Incremental if !seen_full => {
                return invalid(
                    "an INCREMENTAL set needs an earlier successful FULL set".to_string(),
                )
            }
            _ => {}
        }
    }
    for gap in &config.gaps {
        if !(gap.at > 0.0 && gap.at < 1.0) {
            return invalid(format!(
                "gap position {} must be strictly between 0 and 1",
                gap.at
            ));
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_patterns_parse() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert!(parse_size("ten").is_err());
        assert_eq!(parse_duration_ns("6h").unwrap(), 6 * 3600 * NANOS_PER_SEC);
        assert_eq!(parse_duration_ns("30m").unwrap(), 1800 * NANOS_PER_SEC);
        assert!(parse_duration_ns("3 fortnights").is_err());
        let sets = sets_from_pattern("F,I,F").unwrap();
        assert_eq!(sets.len(), 3);
        assert_eq!(sets[1].backup_type, BackupType::Incremental);
        assert!((sets[0].at - 0.25).abs() < 1e-9);
        assert!(sets_from_pattern("FX").is_err());
    }
}
