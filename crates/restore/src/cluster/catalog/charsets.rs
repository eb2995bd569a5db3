//! The character sets and collations OceanBase 4.x offers tenants, and how
//! `CREATE TENANT` resolves a charset and collation from either, both or neither.

use crate::cluster::error::{ClusterError, ClusterResult};

/// A character set with its collations; the first collation is its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charset {
    pub name: &'static str,
    pub collations: &'static [&'static str],
}

impl Charset {
    /// The collation a tenant of this character set gets when none is given.
    pub fn default_collation(&self) -> &'static str {
        self.collations[0]
    }
}

/// The character sets OceanBase 4.x offers tenants.
pub static CHARSETS: &[Charset] = &[
    Charset {
        name: "utf8mb4",
        collations: &[
            "utf8mb4_general_ci",
            "utf8mb4_bin",
            "utf8mb4_unicode_ci",
            "utf8mb4_0900_ai_ci",
        ],
    },
    Charset {
        name: "binary",
        collations: &["binary"],
    },
    Charset {
        name: "gbk",
        collations: &["gbk_chinese_ci", "gbk_bin"],
    },
    Charset {
        name: "gb18030",
        collations: &["gb18030_chinese_ci", "gb18030_bin"],
    },
    Charset {
        name: "latin1",
        collations: &["latin1_swedish_ci", "latin1_bin"],
    },
    Charset {
        name: "utf16",
        collations: &["utf16_general_ci", "utf16_bin"],
    },
];

/// The character set `name` (any case), if the catalogue has it.
pub fn charset(name: &str) -> Option<&'static Charset> {
    CHARSETS
        .iter()
        .find(|charset| charset.name.eq_ignore_ascii_case(name.trim()))
}

/// The character set of collation `name` (any case) and the collation's spelling.
pub fn collation(name: &str) -> Option<(&'static Charset, &'static str)> {
    CHARSETS.iter().find_map(|charset| {
        charset
            .collations
            .iter()
            .find(|collation| collation.eq_ignore_ascii_case(name.trim()))
            .map(|collation| (charset, *collation))
    })
}

/// The tenant's `(charset, collation)` from what `CREATE TENANT` was given: either
/// alone, both (they must match), or neither (`utf8mb4`, `utf8mb4_general_ci`). Empty
/// strings count as not given.
///
/// # Errors
/// `CharsetCollationInvalid` for an unknown name or a mismatch, with obshell's texts.
pub fn resolve_charset(
    charset_name: Option<&str>,
    collation_name: Option<&str>,
) -> ClusterResult<(String, String)> {
    fn given(value: Option<&str>) -> Option<&str> {
        value.map(str::trim).filter(|value| !value.is_empty())
    }
    let invalid = || ClusterError::CharsetCollationInvalid {
        charset: given(charset_name).map(str::to_string),
        collation: given(collation_name).map(str::to_string),
    };
    match (given(charset_name), given(collation_name)) {
        (None, None) => {
            let default = &CHARSETS[0];
            Ok((
                default.name.to_string(),
                default.default_collation().to_string(),
            ))
        }
        (Some(name), None) => {
            let found = charset(name).ok_or_else(invalid)?;
            Ok((
                found.name.to_string(),
                found.default_collation().to_string(),
            ))
        }
        (None, Some(name)) => {
            let (found, spelled) = collation(name).ok_or_else(invalid)?;
            Ok((found.name.to_string(), spelled.to_string()))
        }
        (Some(charset_name), Some(collation_name)) => {
            let found = charset(charset_name).ok_or_else(invalid)?;
            match collation(collation_name) {
                Some((owner, spelled)) if owner.name == found.name => {
                    Ok((found.name.to_string(), spelled.to_string()))
                }
                _ => Err(invalid()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_resolution() {
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a str>,
            Result<(&'a str, &'a str), &'a str>,
        );
        let cases: &[Case<'_>] = &[
            (None, None, Ok(("utf8mb4", "utf8mb4_general_ci"))),
            (Some(""), Some(""), Ok(("utf8mb4", "utf8mb4_general_ci"))),
            (Some("GBK"), None, Ok(("gbk", "gbk_chinese_ci"))),
            (None, Some("utf8mb4_bin"), Ok(("utf8mb4", "utf8mb4_bin"))),
            (
                Some("latin1"),
                Some("LATIN1_BIN"),
                Ok(("latin1", "latin1_bin")),
            ),
            (
                Some("gbk"),
                Some("utf8mb4_bin"),
                Err("Charset 'gbk' and Collation 'utf8mb4_bin' is not match."),
            ),
            (Some("ascii"), None, Err("Charset 'ascii' is not exist.")),
            (
                None,
                Some("klingon_ci"),
                Err("Collation 'klingon_ci' is not exist."),
            ),
        ];
        for (charset, collation, expected) in cases {
            let got = resolve_charset(*charset, *collation).map_err(|err| err.to_string());
            let expected = expected
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .map_err(str::to_string);
            assert_eq!(got, expected, "{charset:?} {collation:?}");
        }
    }
}
