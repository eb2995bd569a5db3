//! The independent correctness oracle: the generator's complete workload as a plain text
//! file, and a digest of a tenant's rows that any restore can compute and compare.
//!
//! This module shares nothing with the backup readers: it parses its own text file and
//! hashes rows itself, so a bug in the block format or the planner cannot hide here.
//!
//! # `workload.tsv`
//! One header line `# obrestore truth v1`, then one line per operation in SCN order:
//! `scn \t ls_id \t tablet_id \t op \t key_hex \t value_sha256_hex` where `op` is `I`, `U`
//! or `D` and the value hash is `-` for `D`.
//!
//! # Digest
//! Over the live rows sorted by `(tablet_id, key)` (bytewise key order):
//! `SHA-256( Σ tablet_id:u64 BE ‖ key_len:u32 BE ‖ key ‖ SHA-256(value) )`,
//! reported as lowercase hex with the row count. An empty tenant's digest is SHA-256("").

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{BackupError, Result};
use crate::scn::Scn;

/// File name of the workload in the truth directory.
pub const WORKLOAD_FILE: &str = "workload.tsv";
const HEADER: &str = "# obrestore truth v1";

/// Digest of a tenant's rows (see the module docs for the exact definition).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TenantDigest {
    pub rows: u64,
    pub sha256_hex: String,
}

impl fmt::Display for TenantDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rows, sha256 {}", self.rows, self.sha256_hex)
    }
}

/// Rows were given out of `(tablet_id, key)` order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rows must be added in ascending (tablet_id, key) order without duplicates")]
pub struct OutOfOrder;

/// Incremental [`TenantDigest`] over rows given in ascending `(tablet_id, key)` order.
#[derive(Default)]
pub struct DigestBuilder {
    hasher: Sha256,
    rows: u64,
    last: Option<(u64, Vec<u8>)>,
}

impl DigestBuilder {
    /// An empty digest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a row by its value's SHA-256.
    ///
    /// # Errors
    /// [`OutOfOrder`] if `(tablet_id, key)` is not greater than the previous row's.
    pub fn add_hashed(
        &mut self,
        tablet_id: u64,
        key: &[u8],
        value_sha256: &[u8; 32],
    ) -> Result<(), OutOfOrder> {
        if let Some((last_tablet, last_key)) = &self.last {
            if (*last_tablet, last_key.as_slice()) >= (tablet_id, key) {
                return Err(OutOfOrder);
            }
        }
        self.hasher.update(tablet_id.to_be_bytes());
        self.hasher.update((key.len() as u32).to_be_bytes());
        self.hasher.update(key);
        self.hasher.update(value_sha256);
        self.rows += 1;
        // The previous key's buffer is reused: no allocation per row.
        match &mut self.last {
            Some((last_tablet, last_key)) => {
                *last_tablet = tablet_id;
                last_key.clear();
                last_key.extend_from_slice(key);
            }
            None => self.last = Some((tablet_id, key.to_vec())),
        }
        Ok(())
    }

    /// Adds a row by its value.
    ///
    /// # Errors
    /// As [`DigestBuilder::add_hashed`].
    pub fn add(&mut self, tablet_id: u64, key: &[u8], value: &[u8]) -> Result<(), OutOfOrder> {
        self.add_hashed(tablet_id, key, &Sha256::digest(value).into())
    }

    /// The digest.
    pub fn finish(self) -> TenantDigest {
        TenantDigest {
            rows: self.rows,
            sha256_hex: hex::encode(self.hasher.finalize()),
        }
    }
}

/// Digest of rows held in a map keyed by `(tablet_id, key)` with full values.
pub fn digest_map(rows: &BTreeMap<(u64, Vec<u8>), Vec<u8>>) -> TenantDigest {
    let mut builder = DigestBuilder::new();
    for ((tablet_id, key), value) in rows {
        // A BTreeMap iterates in ascending unique key order.
        let _ = builder.add(*tablet_id, key, value);
    }
    builder.finish()
}

/// The tenant's rows at an SCN according to the workload: `(tablet_id, key) -> SHA-256(value)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TruthRows {
    pub rows: BTreeMap<(u64, Vec<u8>), [u8; 32]>,
    /// Operations applied (those with `scn <= target`).
    pub ops_applied: u64,
}

impl TruthRows {
    /// The digest of these rows.
    pub fn digest(&self) -> TenantDigest {
        let mut builder = DigestBuilder::new();
        for ((tablet_id, key), hash) in &self.rows {
            let _ = builder.add_hashed(*tablet_id, key, hash);
        }
        builder.finish()
    }
}

/// Replays `truth_dir/workload.tsv` up to and including `scn`.
///
/// # Errors
/// I/O errors and malformed lines ([`BackupError::BadMetadata`] naming the line).
pub fn rows_at(truth_dir: &Path, scn: Scn) -> Result<TruthRows> {
    let path = truth_dir.join(WORKLOAD_FILE);
    let file = File::open(&path).map_err(|err| BackupError::io(&path, err))?;
    let mut lines = BufReader::with_capacity(1 << 20, file).lines();
    let bad = |line_no: usize, reason: &str| BackupError::BadMetadata {
        path: path.clone(),
        reason: format!("line {line_no}: {reason}"),
    };
    match lines.next() {
        Some(Ok(first)) if first == HEADER => {}
        Some(Err(err)) => return Err(BackupError::io(&path, err)),
        _ => return Err(bad(1, "missing header '# obrestore truth v1'")),
    }
    let mut truth = TruthRows::default();
    for (index, line) in lines.enumerate() {
        let line_no = index + 2;
        let line = line.map_err(|err| BackupError::io(&path, err))?;
        let fields: Vec<&str> = line.split('\t').collect();
        let [op_scn, _ls, tablet, op, key, value] = fields.as_slice() else {
            return Err(bad(line_no, "expected 6 tab-separated fields"));
        };
        let op_scn: u64 = op_scn.parse().map_err(|_| bad(line_no, "bad scn"))?;
        if op_scn > scn.as_u64() {
            break;
        }
        let tablet: u64 = tablet.parse().map_err(|_| bad(line_no, "bad tablet id"))?;
        let key = hex::decode(key).map_err(|_| bad(line_no, "bad key hex"))?;
        match *op {
            "I" | "U" => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(value, &mut hash)
                    .map_err(|_| bad(line_no, "bad value hash"))?;
                truth.rows.insert((tablet, key), hash);
            }
            "D" => {
                truth.rows.remove(&(tablet, key));
            }
            _ => return Err(bad(line_no, "op must be I, U or D")),
        }
        truth.ops_applied += 1;
    }
    Ok(truth)
}

/// Writes `workload.tsv` (used by the generator).
pub(crate) struct TruthWriter {
    out: BufWriter<File>,
    path: PathBuf,
    pub(crate) bytes: u64,
}

impl TruthWriter {
    pub(crate) fn create(truth_dir: &Path) -> Result<TruthWriter> {
        std::fs::create_dir_all(truth_dir).map_err(|err| BackupError::io(truth_dir, err))?;
        let path = truth_dir.join(WORKLOAD_FILE);
        let file = File::create(&path).map_err(|err| BackupError::io(&path, err))?;
        let mut writer = TruthWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            bytes: 0,
        };
        writer.line(format_args!("{HEADER}\n"))?;
        Ok(writer)
    }

    fn line(&mut self, args: fmt::Arguments<'_>) -> Result<()> {
        let text = args.to_string();
        self.bytes += text.len() as u64;
        self.out
            .write_all(text.as_bytes())
            .map_err(|err| BackupError::io(&self.path, err))
    }

    pub(crate) fn record(
        &mut self,
        scn: Scn,
        ls_id: u64,
        tablet_id: u64,
        op: char,
        key: &[u8],
        value_hash: Option<&[u8; 32]>,
    ) -> Result<()> {
        let value = value_hash.map_or_else(|| "-".to_string(), hex::encode);
        let key = hex::encode(key);
        self.line(format_args!(
            "{}\t{ls_id}\t{tablet_id}\t{op}\t{key}\t{value}\n",
            scn.as_u64()
        ))
    }

    pub(crate) fn finish(mut self) -> Result<u64> {
        self.out
            .flush()
            .map_err(|err| BackupError::io(&self.path, err))?;
        Ok(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_order_checked_and_stable() {
        let mut builder = DigestBuilder::new();
        builder.add(1, b"a", b"x").unwrap();
        builder.add(1, b"b", b"y").unwrap();
        assert_eq!(builder.add(1, b"b", b"z"), Err(OutOfOrder));
        builder.add(2, b"a", b"z").unwrap();
        let digest = builder.finish();
        let mut map = BTreeMap::new();
        map.insert((2, b"a".to_vec()), b"z".to_vec());
        map.insert((1, b"b".to_vec()), b"y".to_vec());
        map.insert((1, b"a".to_vec()), b"x".to_vec());
        assert_eq!(digest_map(&map), digest);
        assert_eq!(digest.rows, 3);
        assert_eq!(
            DigestBuilder::new().finish().sha256_hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// The digest is exactly the documented byte stream (module docs and
    /// `docs/backup-format.md` §5), so a change of the scheme is noticed.
    #[test]
    fn digest_is_the_documented_scheme() {
        let rows = [(1u64, "a", "x"), (1, "bc", "y"), (2, "", "")];
        let mut builder = DigestBuilder::new();
        let mut manual = Sha256::new();
        for (tablet_id, key, value) in rows {
            builder
                .add(tablet_id, key.as_bytes(), value.as_bytes())
                .unwrap();
            manual.update(tablet_id.to_be_bytes());
            manual.update((key.len() as u32).to_be_bytes());
            manual.update(key);
            manual.update(Sha256::digest(value));
        }
        let digest = builder.finish();
        assert_eq!(digest.sha256_hex, hex::encode(manual.finalize()));
        assert_eq!(digest.rows, 3);
        // The key length separates the key from the value.
        let one = |key: &[u8], value: &[u8]| {
            let mut builder = DigestBuilder::new();
            builder.add(1, key, value).unwrap();
            builder.finish()
        };
        assert_ne!(one(b"ab", b"c"), one(b"a", b"bc"));
    }

    #[test]
    fn rows_at_replays_up_to_the_scn() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = TruthWriter::create(dir.path()).unwrap();
        let hash_x: [u8; 32] = Sha256::digest(b"x").into();
        let hash_y: [u8; 32] = Sha256::digest(b"y").into();
        writer
            .record(Scn(10), 1001, 5, 'I', b"k", Some(&hash_x))
            .unwrap();
        writer
            .record(Scn(20), 1001, 5, 'U', b"k", Some(&hash_y))
            .unwrap();
        writer.record(Scn(30), 1001, 5, 'D', b"k", None).unwrap();
        writer.finish().unwrap();
        assert!(rows_at(dir.path(), Scn(9)).unwrap().rows.is_empty());
        assert_eq!(
            rows_at(dir.path(), Scn(10)).unwrap().rows[&(5, b"k".to_vec())],
            hash_x
        );
        assert_eq!(
            rows_at(dir.path(), Scn(29)).unwrap().rows[&(5, b"k".to_vec())],
            hash_y
        );
        let at_30 = rows_at(dir.path(), Scn(30)).unwrap();
        assert!(at_30.rows.is_empty());
        assert_eq!(at_30.ops_applied, 3);
    }
}
