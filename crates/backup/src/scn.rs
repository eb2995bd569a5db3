//! System change numbers (SPEC §5.2): nanoseconds since the Unix epoch.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, Offset, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// Restore planning does not use this for zone-less text: it reads such a time in the
    /// backup's time zone with [`Scn::from_timestamp_in`], as OceanBase does.
    ///
    /// # Errors
    /// [`BackupError::InvalidTarget`] if the text is not a timestamp or is before 1970.
    pub fn from_timestamp(text: &str) -> Result<Scn> {
        Scn::parse_timestamp(text, None)
    }

    /// Like [`Scn::from_timestamp`], but a timestamp without an offset
    /// (`YYYY-MM-DD hh:mm:ss[.fffffffff]`) is read in `zone`, the backup's system time zone
    /// (OceanBase converts a restore timestamp with the backup's `system_time_zone`). An
    /// RFC 3339 timestamp carries its own offset and converts exactly, whatever `zone` is.
    ///
    /// # Errors
    /// [`BackupError::InvalidTarget`] if the text is not a timestamp or is before 1970.
    pub fn from_timestamp_in(text: &str, zone: UtcOffset) -> Result<Scn> {
        Scn::parse_timestamp(text, Some(zone))
    }

    /// Parses `text`; a zone-less time is read in `zone`, or in the local zone for `None`.
    fn parse_timestamp(text: &str, zone: Option<UtcOffset>) -> Result<Scn> {
        let trimmed = text.trim();
        let invalid = |reason: &str| BackupError::InvalidTarget {
            input: text.to_string(),
            reason: reason.to_string(),
        };
        let nanos = if let Ok(parsed) = DateTime::parse_from_rfc3339(trimmed) {
            parsed.timestamp_nanos_opt()
        } else if let Ok(naive) = NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S%.f") {
            match zone {
                Some(zone) => match zone.to_fixed_offset().from_local_datetime(&naive).single() {
                    Some(zoned) => zoned.timestamp_nanos_opt(),
                    None => return Err(invalid("timestamp out of range")),
                },
                None => match Local.from_local_datetime(&naive).earliest() {
                    Some(local) => local.timestamp_nanos_opt(),
                    None => return Err(invalid("time does not exist in the local time zone")),
                },
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

/// A fixed offset from UTC, written `±hh:mm` (e.g. `+08:00`): the system time zone a
/// backup records, in which restore planning reads a timestamp that has no offset.
///
/// OceanBase keeps the tenant's `system_time_zone` in each backup set and converts a
/// restore timestamp with it (`ObRestoreUtil::convert_restore_timestamp_to_scn_`). Only
/// offsets are supported, not named zones such as `Asia/Shanghai`. As in OceanBase's MySQL
/// mode the sign is required, the hour has one or two digits, the minutes two, and the
/// offset lies between -12:59 and +13:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UtcOffset {
    seconds: i32,
}

impl UtcOffset {
    /// `+00:00`.
    pub const UTC: UtcOffset = UtcOffset { seconds: 0 };
    /// `+08:00`: OceanBase's default system time zone, the generator's default, and the
    /// zone of a backup whose metadata records none (OceanBase likewise reads a backup made
    /// before 4.2.0, which records no zone, as `+08:00`:
    /// `ObBackupDataStore::get_backup_sys_time_zone_wrap`).
    pub const OCEANBASE_DEFAULT: UtcOffset = UtcOffset { seconds: 8 * 3600 };
    /// The most westerly offset OceanBase accepts, -12:59, in seconds.
    pub const MIN_SECONDS: i32 = -(12 * 3600 + 59 * 60);
    /// The most easterly offset OceanBase accepts, +13:00, in seconds.
    pub const MAX_SECONDS: i32 = 13 * 3600;

    /// An offset of whole minutes east of UTC.
    ///
    /// # Errors
    /// [`BackupError::InvalidTimeZone`] outside -12:59..=+13:00 or not whole minutes.
    pub fn from_seconds(seconds: i32) -> Result<UtcOffset> {
        if seconds % 60 != 0 {
            return Err(BackupError::InvalidTimeZone {
                input: format!("{seconds}s"),
                reason: "an offset must be whole minutes".to_string(),
            });
        }
        if !(UtcOffset::MIN_SECONDS..=UtcOffset::MAX_SECONDS).contains(&seconds) {
            return Err(BackupError::InvalidTimeZone {
                input: UtcOffset { seconds }.to_string(),
                reason: "the offset must lie between -12:59 and +13:00".to_string(),
            });
        }
        Ok(UtcOffset { seconds })
    }

    /// Seconds east of UTC.
    pub fn seconds(self) -> i32 {
        self.seconds
    }

    /// The chrono offset.
    pub fn to_fixed_offset(self) -> FixedOffset {
        // The range was checked on construction, so `east_opt` always succeeds.
        FixedOffset::east_opt(self.seconds).unwrap_or_else(|| Utc.fix())
    }
}

impl Default for UtcOffset {
    fn default() -> Self {
        UtcOffset::OCEANBASE_DEFAULT
    }
}

impl fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.seconds < 0 { '-' } else { '+' };
        let minutes = self.seconds.unsigned_abs() / 60;
        write!(f, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

impl FromStr for UtcOffset {
    type Err = BackupError;

    /// Parses `+08:00`, `+8:00`, `-05:30`, `+00:00`.
    fn from_str(text: &str) -> Result<UtcOffset> {
        let invalid = |reason: &str| BackupError::InvalidTimeZone {
            input: text.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        let (negative, rest) = if let Some(rest) = trimmed.strip_prefix('+') {
            (false, rest)
        } else if let Some(rest) = trimmed.strip_prefix('-') {
            (true, rest)
        } else {
            return Err(invalid(
                "expected a UTC offset such as +08:00 (named zones are not supported)",
            ));
        };
        let Some((hours, minutes)) = rest.split_once(':') else {
            return Err(invalid("expected a UTC offset such as +08:00"));
        };
        // One or two hour digits and exactly two minute digits.
        let digits = |part: &str, lengths: std::ops::RangeInclusive<usize>| -> Option<i32> {
            if !lengths.contains(&part.len()) || !part.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (Some(hours), Some(minutes)) = (digits(hours, 1..=2), digits(minutes, 2..=2)) else {
            return Err(invalid("expected a UTC offset such as +08:00"));
        };
        if minutes >= 60 {
            return Err(invalid("minutes must be 00 to 59"));
        }
        let magnitude = hours * 3600 + minutes * 60;
        let seconds = if negative { -magnitude } else { magnitude };
        if !(UtcOffset::MIN_SECONDS..=UtcOffset::MAX_SECONDS).contains(&seconds) {
            return Err(invalid("the offset must lie between -12:59 and +13:00"));
        }
        Ok(UtcOffset { seconds })
    }
}

impl Serialize for UtcOffset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UtcOffset, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
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
    fn zone_less_timestamps_are_read_in_the_given_zone() {
        let plus_eight: UtcOffset = "+08:00".parse().unwrap();
        let minus_five: UtcOffset = "-05:00".parse().unwrap();
        let exact = Scn(1_712_384_162_123_456_789);
        let text = "2024-04-06 14:16:02.123456789";
        assert_eq!(Scn::from_timestamp_in(text, plus_eight).unwrap(), exact);
        assert_eq!(
            Scn::from_timestamp_in(text, UtcOffset::UTC).unwrap(),
            Scn(exact.as_u64() + 8 * 3600 * 1_000_000_000)
        );
        assert_eq!(
            Scn::from_timestamp_in(text, minus_five).unwrap(),
            Scn(exact.as_u64() + 13 * 3600 * 1_000_000_000)
        );
        // An explicit offset wins over the zone.
        let rfc = "2024-04-06T14:16:02.123456789+08:00";
        assert_eq!(Scn::from_timestamp_in(rfc, minus_five).unwrap(), exact);
        assert_eq!(
            Scn::from_timestamp_in(" 2024-04-06 14:16:02 ", plus_eight).unwrap(),
            Scn(1_712_384_162_000_000_000)
        );
        assert!(Scn::from_timestamp_in("2024-04-06", plus_eight).is_err());
        assert!(Scn::from_timestamp_in("1970-01-01 07:59:59", plus_eight).is_err());
        assert_eq!(
            Scn::from_timestamp_in("1970-01-01 08:00:00", plus_eight).unwrap(),
            Scn(0)
        );
    }

    #[test]
    fn utc_offsets_parse_print_and_refuse_what_oceanbase_refuses() {
        let cases = [
            ("+08:00", 8 * 3600, "+08:00"),
            ("+8:00", 8 * 3600, "+08:00"),
            ("-05:30", -(5 * 3600 + 30 * 60), "-05:30"),
            ("+00:00", 0, "+00:00"),
            ("-00:00", 0, "+00:00"),
            ("-12:59", UtcOffset::MIN_SECONDS, "-12:59"),
            ("+13:00", UtcOffset::MAX_SECONDS, "+13:00"),
            (" +05:45 ", 5 * 3600 + 45 * 60, "+05:45"),
        ];
        for (text, seconds, shown) in cases {
            let offset: UtcOffset = text.parse().unwrap();
            assert_eq!(offset.seconds(), seconds, "{text}");
            assert_eq!(offset.to_string(), shown, "{text}");
            assert_eq!(
                offset.to_fixed_offset().local_minus_utc(),
                seconds,
                "{text}"
            );
            assert_eq!(UtcOffset::from_seconds(seconds).unwrap(), offset);
        }
        for bad in [
            "",
            "08:00",
            "+08",
            "+08:0",
            "+008:00",
            "+08:60",
            "+13:01",
            "-13:00",
            "+8:00:00",
            "Asia/Shanghai",
            "UTC",
            "Z",
            "+0a:00",
        ] {
            let err = bad.parse::<UtcOffset>().unwrap_err();
            assert!(
                matches!(&err, BackupError::InvalidTimeZone { input, .. } if input == bad),
                "{bad}: {err}"
            );
        }
        assert!(UtcOffset::from_seconds(13 * 3600 + 60).is_err());
        assert!(UtcOffset::from_seconds(30).is_err());
        assert_eq!(UtcOffset::default(), UtcOffset::OCEANBASE_DEFAULT);
        assert_eq!(UtcOffset::OCEANBASE_DEFAULT.to_string(), "+08:00");
        let json = serde_json::to_string(&"-05:30".parse::<UtcOffset>().unwrap()).unwrap();
        assert_eq!(json, r#""-05:30""#);
        assert_eq!(
            serde_json::from_str::<UtcOffset>(r#""+8:00""#).unwrap(),
            UtcOffset::OCEANBASE_DEFAULT
        );
        assert!(serde_json::from_str::<UtcOffset>(r#""+14:00""#).is_err());
        assert!(serde_json::from_str::<UtcOffset>("28800").is_err());
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
