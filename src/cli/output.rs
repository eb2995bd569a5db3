//! How `obagent` writes results and errors.
//!
//! Invariant: a command's JSON result is one document printed by [`print_json`], the
//! only thing such a command prints on stdout; an error chain is turned into one line
//! by [`error_text`], in which no cause's text appears twice.

use serde::Serialize;

/// Prints `value` as one pretty JSON document on stdout.
///
/// # Errors
/// `value` cannot be serialized.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The error and its causes joined by `": "`, skipping a cause whose text is already
/// shown. Some library errors both print their source in their own message and return
/// it as `source()` (e.g. a restore refused by the backup: "no full backup set ...");
/// anyhow's `{:#}` would print such a message twice.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    /// An error that shows its source in its own message and also returns it.
    #[derive(Debug)]
    struct Echoing(std::io::Error);

    impl std::fmt::Display for Echoing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "engine: {}", self.0)
        }
    }

    impl std::error::Error for Echoing {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_shown_once() {
        let cases = [
            (
                anyhow::Error::new(Echoing(std::io::Error::other("disk gone"))),
                "engine: disk gone",
            ),
            (
                anyhow::Error::new(Echoing(std::io::Error::other("disk gone")))
                    .context("opening the agent"),
                "opening the agent: engine: disk gone",
            ),
            (
                anyhow::Error::new(std::io::Error::other("denied")).context("reading F"),
                "reading F: denied",
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(error_text(&err), expected);
        }
    }
}
