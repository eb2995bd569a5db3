//! Every fuzz target's body (`obrestore_backup::fuzz`, the code the binaries in `fuzz/`
//! run) over its seed corpus from a generated backup, then over seeded random mutations
//! of it: what CI runs without cargo-fuzz. A panic in any body fails the test.

use obrestore_backup::fuzz::{seeds, TARGETS};
use rand::{Rng, SeedableRng};

/// Mutations of each seed per target (the fuzzer runs millions; this keeps CI short).
const MUTATIONS_PER_SEED: usize = 24;

fn mutate(rng: &mut rand_chacha::ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.gen_range(1..6) {
        match rng.gen_range(0..4) {
            0 if !bytes.is_empty() => {
                let at = rng.gen_range(0..bytes.len());
                bytes[at] = rng.gen();
            }
            1 if !bytes.is_empty() => {
                let at = rng.gen_range(0..bytes.len());
                bytes[at] ^= 1 << rng.gen_range(0..8);
            }
            2 => {
                let at = rng.gen_range(0..=bytes.len());
                bytes.truncate(at);
            }
            _ => {
                let at = rng.gen_range(0..=bytes.len());
                let byte = *[0u8, 0xff, b'9', b'"', b'\n']
                    .get(rng.gen_range(0..5))
                    .unwrap_or(&0);
                bytes.insert(at, byte);
            }
        }
    }
    bytes
}

#[test]
fn every_target_runs_its_seeds_and_their_mutations_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let summary = seeds::seed_backup(dir.path()).unwrap();
    let corpus = seeds::seeds(&summary).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for (name, body) in TARGETS {
        let inputs: Vec<&Vec<u8>> = corpus
            .iter()
            .filter(|(target, _)| target == name)
            .map(|(_, input)| input)
            .collect();
        assert!(!inputs.is_empty(), "target {name} has no seed");
        body(&[]);
        for input in inputs.iter().take(8) {
            body(input);
            for _ in 0..MUTATIONS_PER_SEED {
                body(&mutate(&mut rng, input));
            }
        }
    }
}

#[test]
fn seeds_reach_the_decoders_and_decode() {
    use obrestore_backup::block::forge::forge_file;
    use obrestore_backup::block::{parse_data_file, parse_log_file, FileKind};
    let dir = tempfile::tempdir().unwrap();
    let summary = seeds::seed_backup(dir.path()).unwrap();
    let corpus = seeds::seeds(&summary).unwrap();
    // A record seed is a real block: forged back into a file, it decodes.
    let mut decoded = 0;
    for (name, input) in &corpus {
        if *name != "block_records" {
            continue;
        }
        let record_count = u32::from_le_bytes(input[1..5].try_into().unwrap());
        let block = obrestore_backup::block::forge::ForgedBlock {
            record_count,
            min_scn: obrestore_backup::Scn(u64::from_le_bytes(input[5..13].try_into().unwrap())),
            max_scn: obrestore_backup::Scn(u64::from_le_bytes(input[13..21].try_into().unwrap())),
            payload: input[21..].to_vec(),
        };
        let kind = if input[0] == 1 {
            FileKind::Log
        } else {
            FileKind::Data
        };
        let file = forge_file(kind, 1001, 1, None, &[block]);
        let rows = match kind {
            FileKind::Data => parse_data_file(&file, None).unwrap().len(),
            FileKind::Log => parse_log_file(&file).unwrap().len(),
        };
        assert_eq!(rows as u32, record_count);
        decoded += 1;
    }
    assert!(decoded > 0);
}
