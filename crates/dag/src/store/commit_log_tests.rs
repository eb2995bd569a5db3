//! The commit log's record format and scan: round trips, the ends of a run (zeros, a
//! torn or corrupt tail, an older round), and bytes that must not panic.

use rand::{Rng, SeedableRng};

use super::*;

fn writes(seq: u64) -> Writes {
    vec![
        (format!("k/{seq}").into_bytes(), Some(vec![seq as u8; 100])),
        (b"gone".to_vec(), None),
        (b"big".to_vec(), Some(vec![7; 5000 + seq as usize])),
    ]
}

/// A log image of `capacity` bytes with the records `seqs`, page-aligned, in order.
fn image(capacity: usize, seqs: impl IntoIterator<Item = u64>) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = vec![0; capacity];
    let mut offsets = Vec::new();
    let mut offset = 0;
    for seq in seqs {
        let record = encode(seq, &writes(seq));
        bytes[offset..offset + record.len()].copy_from_slice(&record);
        offsets.push(offset);
        offset += (record.len() as u64).div_ceil(PAGE) as usize * PAGE as usize;
    }
    (bytes, offsets)
}

fn seqs(run: &[(u64, Writes)]) -> Vec<u64> {
    run.iter().map(|(seq, _)| *seq).collect()
}

#[test]
fn records_round_trip_and_the_run_ends_at_zeros() {
    let (bytes, offsets) = image(1 << 16, 5..9);
    let (run, end) = scan(&bytes).unwrap();
    assert_eq!(seqs(&run), vec![5, 6, 7, 8]);
    for (seq, writes_back) in &run {
        assert_eq!(writes_back, &writes(*seq));
    }
    // Each record takes two pages (5 KiB of value): the run ends after the last one.
    assert_eq!(offsets, vec![0, 8192, 16384, 24576]);
    assert_eq!(end, 32768);
    assert!(check_continues(&bytes, &run, end, 4).is_ok());
}

#[test]
fn a_torn_or_corrupt_last_record_ends_the_run_before_it() {
    let (clean, offsets) = image(1 << 16, 1..5);
    let last = offsets[3];
    // Torn: the second half of the last record never reached the device.
    let mut torn = clean.clone();
    torn[last + 3000..last + 8192].fill(0);
    // Corrupt: one bit of its payload, one of its sequence, one of its length.
    let mut flipped = Vec::new();
    for at in [last + HEADER + 10, last + 9, last + 5] {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x10;
        flipped.push(bytes);
    }
    for bytes in std::iter::once(torn).chain(flipped) {
        let (run, end) = scan(&bytes).unwrap();
        assert_eq!(seqs(&run), vec![1, 2, 3]);
        assert_eq!(end, last);
        assert!(check_continues(&bytes, &run, end, 0).is_ok());
    }
}

#[test]
fn an_older_round_behind_the_run_ends_it_and_is_not_an_error() {
    // Round one wrote 1..=6; after a checkpoint at 6, round two wrote 7 and 8 over the
    // first two records' pages: the run is 7, 8, then record 3 of the older round.
    let (mut bytes, offsets) = image(1 << 16, 1..7);
    let (newer, _) = image(offsets[2], 7..9);
    bytes[..offsets[2]].copy_from_slice(&newer);
    let (run, end) = scan(&bytes).unwrap();
    assert_eq!(seqs(&run), vec![7, 8]);
    assert_eq!(end, offsets[2]);
    assert!(check_continues(&bytes, &run, end, 6).is_ok());
}

#[test]
fn a_damaged_record_in_the_middle_or_a_gap_to_the_store_is_corrupt() {
    let (clean, offsets) = image(1 << 16, 1..5);
    let mut middle = clean.clone();
    middle[offsets[1] + HEADER + 1] ^= 1;
    let (run, end) = scan(&middle).unwrap();
    assert_eq!(seqs(&run), vec![1]);
    let err = check_continues(&middle, &run, end, 0).unwrap_err();
    assert!(err.contains("record 3 at offset 16384"), "{err}");
    // The store holds up to 0, the log starts at 1: fine; at 3: records are missing.
    let (late, _) = image(1 << 16, 3..5);
    let (run, end) = scan(&late).unwrap();
    let err = check_continues(&late, &run, end, 1).unwrap_err();
    assert!(err.contains("records are missing"), "{err}");
    assert!(check_continues(&late, &run, end, 2).is_ok());
}

#[test]
fn a_whole_record_whose_payload_does_not_decode_is_an_error() {
    let mut record = encode(1, &writes(1));
    // Tag 2 is neither a put nor a delete; the crc is recomputed, as a writer would.
    let tag = HEADER + 4 + 4 + b"k/1".len();
    assert_eq!(record[tag], 1);
    record[tag] = 2;
    let crc = crc(&record[4..16], &record[HEADER..]);
    record[16..20].copy_from_slice(&crc.to_le_bytes());
    let mut bytes = vec![0; 1 << 14];
    bytes[..record.len()].copy_from_slice(&record);
    let err = scan(&bytes).unwrap_err();
    assert!(err.contains("does not decode"), "{err}");
}

#[test]
fn random_and_damaged_bytes_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let (clean, _) = image(1 << 15, 1..4);
    for round in 0..400 {
        let mut bytes = if round % 2 == 0 {
            clean.clone()
        } else {
            (0..1 << 13).map(|_| rng.gen()).collect()
        };
        for _ in 0..rng.gen_range(1..8) {
            let at = rng.gen_range(0..bytes.len());
            bytes[at] = rng.gen();
        }
        if let Ok((run, end)) = scan(&bytes) {
            let _ = check_continues(&bytes, &run, end, rng.gen_range(0..5));
        }
        // Payloads alone, of any length, with a plausible count.
        let len = rng.gen_range(0..64);
        let mut payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if payload.len() >= 4 {
            payload[..4].copy_from_slice(&(rng.gen_range(0..4u32)).to_le_bytes());
        }
        let _ = decode(&payload);
    }
}
