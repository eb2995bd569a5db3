//! System change numbers (SPEC §5.2): nanoseconds since the Unix epoch.

use std::fmt;

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{BackupError, Result};

/// A system change number: nanoseconds since 1970-01-01T00:00:00Z.
///
/// `Display` renders `YYYY-MM-DD hh:mm:ss.ffffff` in the agent's local time zone, the
/// way OceanBase prints SCNs in its error messages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Scn(pub u64);

impl Scn {
    /// The smallest SCN.
    pub const MIN: Scn = Scn(0);
    /// The largest SCN.
    pub const MAX: Scn = Scn(u64::MAX);

    /// The raw nanosecond value.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Converts an RFC 3339 timestamp (with or without fractional seconds, any offset)
    /// exactly to nanoseconds. `YYYY-MM-DD hh:mm:ss[.fffffffff]` is also accepted and
    /// read in the local time zone, so a displayed SCN can be pasted back.
    ///
    /// # Errors
    /// [`BackupError::InvalidTarget`] if the text is not a timestamp or is before 1970.
    pub fn from_timestamp(text: &str) -> Result<Scn> {
        let trimmed = text.trim();
        let invalid = |reason: &str| BackupError::InvalidTarget {
            input: text.to_string(),
            reason: reason.to_string(),
        };
        let nanos = if let Ok(parsed) = DateTime::parse_from_rfc3339(trimmed) {
            parsed.timestamp_nanos_opt()
        } else if let Ok(naive) = NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%.f") {
            match Local.from_local_datetime(&naive).earliest() {
                Some(local) => local.timestamp_nanos_opt(),
                None => return Err(invalid("time does not exist in the local time zone")),
            }
        } else {
            return Err(invalid(
                "expected RFC 3339 (e.g. 2024-04-06T14:16:02.000000+08:00)",
            ));
        };
        let nanos = nanos.ok_or_else(|| invalid("timestamp out of range"))?;
        u64::try_from(nanos)
            .map(Scn)
            .map_err(|_| invalid("timestamp is before 1970-01-01"))
    }

    /// The SCN as a UTC date-time (saturating at the chrono range, which `u64` ns never leaves).
    pub fn to_utc(self) -> DateTime<Utc> {
        let secs = (self.0 / 1_000_000_000) as i64;
        let nanos = (self.0 % 1_000_000_000) as u32;
        DateTime::from_timestamp(secs, nanos).unwrap_or_default()
    }

    /// RFC 3339 with nanoseconds in the local time zone, e.g. for JSON DTOs.
    pub fn to_rfc3339(self) -> String {
        self.to_utc()
            .with_timezone(&Local)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
    }

    /// Compact UTC form used in listing-file names, `YYYYMMDDThhmmss`.
    pub fn to_file_stamp(self) -> String {
        self.to_utc().format("%Y%m%dT%H%M%S").to_string()
    }
}

impl fmt::Display for Scn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.to_utc().with_timezone(&Local);
        write!(f, "{}", local.format("%Y-%m-%d %H:%M:%S%.6f"))
    }
}

impl From<u64> for Scn {
    fn from(value: u64) -> Self {
        Scn(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert_exactly() {
        let scn = Scn::from_timestamp("2024-04-06T14:16:02.123456789+08:00").unwrap();
        assert_eq!(scn, Scn(1_712_384_162_123_456_789));
        let back = Scn::from_timestamp(&scn.to_rfc3339()).unwrap();
        assert_eq!(back, scn);
        assert_eq!(scn.to_file_stamp(), "20240406T061602");
        assert!(Scn::from_timestamp("yesterday").is_err());
        assert!(Scn::from_timestamp("1960-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn display_has_six_fraction_digits_and_round_trips_in_local_time() {
        let scn = Scn(1_712_384_162_123_456_000);
        let shown = scn.to_string();
        assert_eq!(shown.len(), "2024-04-06 14:16:02.123456".len());
        assert!(shown.ends_with(".123456"), "{shown}");
        assert_eq!(Scn::from_timestamp(&shown).unwrap(), scn);
    }
}
