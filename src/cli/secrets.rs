//! Passwords given to the CLI in files, so that they never appear on a command line
//! (where `ps` shows them): the agent password (`--password-file`), backup decryption
//! passwords (`--decryption-file`) and a generated backup's password
//! (`backup generate --password-file`); or in the environment (`OBAGENT_PASSWORD`,
//! `OBAGENT_DECRYPTION`, `OBAGENT_BACKUP_PASSWORD`).
//!
//! Invariant: a password read here is never printed; errors name the file, not its
//! contents.

use std::path::Path;

use anyhow::Context as _;
use clap::Args;

/// The contents of a one-password file, without one trailing line break.
///
/// # Errors
/// The file cannot be read.
pub fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    let trimmed = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(trimmed.to_string())
}

/// Decryption passwords of encrypted backup sets.
#[derive(Debug, Args)]
pub struct DecryptionArgs {
    /// Password of an encrypted backup set (repeat for several; in the environment
    /// variable, one per line). Prefer `--decryption-file` or the environment variable:
    /// a command line is visible to every user of the machine.
    #[arg(
        long = "decryption",
        value_name = "PW",
        env = "OBAGENT_DECRYPTION",
        hide_env_values = true,
        value_delimiter = '\n'
    )]
    decryption: Vec<String>,
    /// A file with one decryption password per line (blank lines are skipped).
    #[arg(long = "decryption-file", value_name = "FILE")]
    decryption_file: Option<std::path::PathBuf>,
}

impl DecryptionArgs {
    /// Every password given, the command line's first.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn passwords(&self) -> anyhow::Result<Vec<String>> {
        // From the environment, "a\r\nb\n" splits into "a\r", "b", "".
        let mut passwords: Vec<String> = self
            .decryption
            .iter()
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(path) = &self.decryption_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the decryption file {}", path.display()))?;
            passwords.extend(
                text.lines()
                    .map(|line| line.strip_suffix('\r').unwrap_or(line))
                    .filter(|line| !line.is_empty())
                    .map(str::to_string),
            );
        }
        Ok(passwords)
    }
}
