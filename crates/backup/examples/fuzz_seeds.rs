//! Writes the seed corpus of every fuzz target: `cargo run -p obrestore-backup --features
//! fuzzing --example fuzz_seeds -- <corpus dir>` generates a small backup in a temporary
//! directory and writes `<corpus dir>/<target>/seed-<n>` for each target of
//! `obrestore_backup::fuzz::TARGETS` (`scripts/fuzz-backup.sh` calls it).

use std::path::PathBuf;

use obrestore_backup::fuzz::{seeds, TARGETS};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let corpus = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds <corpus dir>")?,
    );
    let scratch = std::env::temp_dir().join(format!("obrestore-fuzz-seeds-{}", std::process::id()));
    let summary = seeds::seed_backup(&scratch)?;
    let inputs = seeds::seeds(&summary);
    std::fs::remove_dir_all(&scratch)?;
    let inputs = inputs?;
    for (target, _) in TARGETS {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        let mine = inputs.iter().filter(|(name, _)| name == target);
        let mut count = 0;
        for (index, (_, input)) in mine.enumerate() {
            std::fs::write(dir.join(format!("seed-{index}")), input)?;
            count += 1;
        }
        println!("{target}: {count} seeds");
    }
    Ok(())
}
