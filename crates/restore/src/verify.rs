//! Checking a restored tenant against the source.
//!
//! The expected rows come from [`obrestore_backup::truth`], which reads the generator's
//! workload file and shares no code with the restore path. The restored side is the
//! cluster's rows, hashed here with the same digest definition.

use std::path::Path;

use obrestore_backup::truth::{self, TenantDigest};
use obrestore_backup::{DigestBuilder, Scn};

use crate::cluster::{ClusterError, SledCluster, TenantService};

/// Why a digest could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("tenant '{0}' does not exist")]
    NoTenant(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("{0}")]
    Backup(#[from] obrestore_backup::BackupError),
    #[error("the cluster returned rows out of (tablet, key) order")]
    OutOfOrder,
}

/// Rows handed from the merging thread to the hashing thread in one go.
const DIGEST_CHUNK_BYTES: usize = 1 << 20;

/// Rows packed into one buffer: `(tablet_id, key_end, value_end)` per row, each row's key
/// then value stored back to back in `bytes`.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    rows: Vec<(u64, usize, usize)>,
}

/// The [`TenantDigest`] of a tenant's rows in the cluster.
///
/// Two threads: this one merges the tenant's runs and packs rows into 1 MiB chunks, a
/// scoped helper hashes them (each value's SHA-256, then the running digest), so that
/// reading and hashing overlap. At most four chunks exist at once.
///
/// # Errors
/// The tenant is missing or the cluster cannot be read.
pub fn restored_digest(
    cluster: &SledCluster,
    tenant_name: &str,
) -> Result<TenantDigest, VerifyError> {
    let tenant = cluster
        .tenant(tenant_name)?
        .ok_or_else(|| VerifyError::NoTenant(tenant_name.to_string()))?;
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Chunk>(2);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Chunk>(4);
        let hasher = scope.spawn(move || {
            let mut builder = DigestBuilder::new();
            for mut chunk in full_rx {
                let mut start = 0;
                for &(tablet_id, key_end, value_end) in &chunk.rows {
                    let key = &chunk.bytes[start..key_end];
                    let value = &chunk.bytes[key_end..value_end];
                    if builder.add(tablet_id, key, value).is_err() {
                        return Err(VerifyError::OutOfOrder);
                    }
                    start = value_end;
                }
                chunk.bytes.clear();
                chunk.rows.clear();
                let _ = empty_tx.try_send(chunk);
            }
            Ok(builder.finish())
        });
        let mut chunk = Chunk::default();
        let mut hasher_gone = false;
        let scanned = cluster.for_each_row(tenant.id, &mut |tablet_id, key, value| {
            if hasher_gone {
                return;
            }
            chunk.bytes.extend_from_slice(key);
            let key_end = chunk.bytes.len();
            chunk.bytes.extend_from_slice(value);
            chunk.rows.push((tablet_id, key_end, chunk.bytes.len()));
            if chunk.bytes.len() >= DIGEST_CHUNK_BYTES {
                let next = empty_rx.try_recv().unwrap_or_default();
                hasher_gone = full_tx.send(std::mem::replace(&mut chunk, next)).is_err();
            }
        });
        if !chunk.rows.is_empty() && !hasher_gone {
            let _ = full_tx.send(chunk);
        }
        drop(full_tx);
        let digest = hasher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        scanned?;
        digest
    })
}

/// The outcome of comparing a restored tenant with the source at `scn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub expected: TenantDigest,
    pub actual: TenantDigest,
}

impl Verification {
    pub fn matches(&self) -> bool {
        self.expected == self.actual
    }
}

/// Compares the tenant's rows with the source's rows as of `scn` (from `truth_dir`).
///
/// # Errors
/// The truth files or the cluster cannot be read.
pub fn verify_tenant(
    cluster: &SledCluster,
    tenant_name: &str,
    truth_dir: &Path,
    scn: u64,
) -> Result<Verification, VerifyError> {
    let expected = truth::rows_at(truth_dir, Scn(scn))?.digest();
    let actual = restored_digest(cluster, tenant_name)?;
    Ok(Verification { expected, actual })
}
