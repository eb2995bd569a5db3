//! The tenant digest of a row scan: the one digest `docs/backup-format.md` §5 defines
//! ([`obrestore_backup::DigestBuilder`]), which the restore's Post check records and
//! `verify` compares with the source. The cluster has no digest scheme of its own.
//!
//! The scan hands each live row's `(tablet_id, key, SHA-256 of the value)`: the run files
//! store every value's SHA-256, computed when the row was written (`rowstore.rs`), so the
//! digest hashes about 60 bytes a row here, not the values again. The scan still reads
//! every run to its end and checks its CRC, which covers the values and their hashes.
//! Invariant: a scan error wins over the digest (a broken row file is reported as the
//! scan's error, never as a digest), and rows that do not come in strictly ascending
//! `(tablet_id, key)` order are an error, never a digest.

use obrestore_backup::truth::TenantDigest;
use obrestore_backup::DigestBuilder;

use super::error::{ClusterError, ClusterResult};

/// What a hashed row scan calls per live row: `(tablet_id, key, SHA-256 of the value)`.
pub(super) type HashedRowVisitor<'a> = dyn FnMut(u64, &[u8], &[u8; 32]) -> ClusterResult<()> + 'a;

/// The [`TenantDigest`] of the rows `scan` visits (in `(tablet_id, key)` order) for
/// tenant `tenant_id`.
///
/// # Errors
/// `scan`'s error; `Corrupt` when the rows come out of order.
pub(super) fn digest_scan(
    tenant_id: u64,
    scan: impl FnOnce(&mut HashedRowVisitor<'_>) -> ClusterResult<()>,
) -> ClusterResult<TenantDigest> {
    let mut builder = DigestBuilder::new();
    let mut in_order = true;
    let scanned = scan(&mut |tablet_id, key, value_sha| {
        // After a row out of order the scan goes on (its own errors win), adding nothing.
        in_order = in_order && builder.add_hashed(tablet_id, key, value_sha).is_ok();
        Ok(())
    });
    scanned?;
    if !in_order {
        return Err(ClusterError::Corrupt {
            tree: "rows".to_string(),
            reason: format!(
                "the scan of tenant {tenant_id} returned rows out of (tablet_id, key) order"
            ),
        });
    }
    Ok(builder.finish())
}
