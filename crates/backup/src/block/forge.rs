//! Forging block files for tests and fuzzing (cargo feature `fuzzing`): a file whose
//! header, CRCs, AES-GCM seals and footer are all valid around payloads that need not
//! be. Tests use it to write what [`super::BlockWriter`] refuses to write (log entries
//! out of SCN order); fuzz targets use it to carry a mutated payload past the checksums
//! to the record decoders, and [`repair_checksums`] to fix the CRCs of a mutated file.

use super::writer::{encode_footer, seal_block, BlockRange};
use super::{
    le_u32, FileHeader, FileKind, BLOCK_FORMAT_VERSION, BLOCK_HEADER_LEN, BLOCK_MAGIC,
    FILE_HEADER_LEN, FLAG_ENCRYPTED, FOOTER_LEN, FOOTER_MAGIC,
};
use crate::crypto::SetKey;
use crate::meta::LsId;
use crate::scn::Scn;

/// One block to forge: what its header declares, and its plaintext payload as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgedBlock {
    pub record_count: u32,
    pub min_scn: Scn,
    pub max_scn: Scn,
    pub payload: Vec<u8>,
}

/// A whole block file of `kind` around `blocks`: valid header, block CRCs (and with `key`
/// valid encryption, at each block's real offset) and a footer with the true counts.
pub fn forge_file(
    kind: FileKind,
    ls_id: LsId,
    file_no: u64,
    key: Option<&SetKey>,
    blocks: &[ForgedBlock],
) -> Vec<u8> {
    let header = FileHeader {
        kind,
        version: BLOCK_FORMAT_VERSION,
        flags: if key.is_some() { FLAG_ENCRYPTED } else { 0 },
        ls_id,
        file_no,
    }
    .encode();
    let mut file = header.to_vec();
    let mut records = 0u64;
    for block in blocks {
        let mut payload = block.payload.clone();
        let block_header = seal_block(
            &header,
            file.len() as u64,
            key,
            BlockRange {
                records: block.record_count,
                min_scn: block.min_scn.as_u64(),
                max_scn: block.max_scn.as_u64(),
            },
            &mut payload,
        );
        file.extend_from_slice(&block_header);
        file.extend_from_slice(&payload);
        records += u64::from(block.record_count);
    }
    file.extend_from_slice(&encode_footer(blocks.len() as u64, records));
    file
}

/// Rewrites, in place, every CRC of a (mutated) block file that its structure still lets
/// a reader find: the file header's, then each block header's and payload's while block
/// magics follow one another, then the footer's. Lengths, counts, magics and payloads
/// are left as they are, so a reader gets past the checksums to check those.
pub fn repair_checksums(bytes: &mut [u8]) {
    if bytes.len() < FILE_HEADER_LEN {
        return;
    }
    let crc = crc32fast::hash(&bytes[0..28]);
    bytes[28..32].copy_from_slice(&crc.to_le_bytes());
    let mut offset = FILE_HEADER_LEN;
    while let Some(magic) = bytes.get(offset..offset + 4) {
        if magic == FOOTER_MAGIC && bytes.len() >= offset + FOOTER_LEN {
            let crc = crc32fast::hash(&bytes[offset..offset + 28]);
            bytes[offset + 28..offset + 32].copy_from_slice(&crc.to_le_bytes());
            return;
        }
        if magic != BLOCK_MAGIC || bytes.len() < offset + BLOCK_HEADER_LEN {
            return;
        }
        let stored_len = le_u32(&bytes[offset + 4..offset + 8]) as usize;
        let payload_start = offset + BLOCK_HEADER_LEN;
        if let Some(payload) = bytes.get(payload_start..payload_start.saturating_add(stored_len)) {
            let crc = crc32fast::hash(payload);
            bytes[offset + 40..offset + 44].copy_from_slice(&crc.to_le_bytes());
        }
        let crc = crc32fast::hash(&bytes[offset..offset + 44]);
        bytes[offset + 44..offset + 48].copy_from_slice(&crc.to_le_bytes());
        offset = payload_start.saturating_add(stored_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{parse_data_file, parse_log_file};
    use crate::crypto::new_encryption;

    #[test]
    fn a_forged_file_reaches_the_decoders_and_repair_undoes_a_crc_flip() {
        // A block whose single entry is truncated: CRCs are fine, the decoder refuses it.
        let block = ForgedBlock {
            record_count: 1,
            min_scn: Scn(5),
            max_scn: Scn(5),
            payload: vec![5, 0, 0],
        };
        let bytes = forge_file(FileKind::Log, 1001, 1, None, std::slice::from_ref(&block));
        let err = parse_log_file(&bytes).unwrap_err().to_string();
        assert!(err.contains("record overruns the payload"), "{err}");
        let (_, key) = new_encryption("pw", [2; 16], 1);
        let sealed = forge_file(FileKind::Data, 1001, 1, Some(&key), &[block]);
        let err = parse_data_file(&sealed, Some(key)).unwrap_err().to_string();
        assert!(err.contains("record overruns the payload"), "{err}");
        let mut flipped = bytes.clone();
        flipped[FILE_HEADER_LEN + 4] ^= 1; // stored_len: 3 becomes 2
        assert!(parse_log_file(&flipped)
            .unwrap_err()
            .to_string()
            .contains("checksum mismatch"));
        repair_checksums(&mut flipped);
        let err = parse_log_file(&flipped).unwrap_err().to_string();
        assert!(!err.contains("checksum mismatch"), "{err}");
    }
}
