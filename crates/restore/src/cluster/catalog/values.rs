//! Value types of variables and parameters ([`ValueKind`]), and how a value given as
//! text is checked against its type and range and normalized to the form stored: the
//! catalogue's spelling of names, decimal integers, `1`/`0` or `True`/`False`.

use super::charsets::{charset, collation};
use super::DEFAULT_WHITELIST;
use crate::cluster::model::{format_capacity, parse_capacity};

/// The value type of a variable or parameter, with its range where it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ValueKind {
    /// A whole number in `[min, max]`.
    Int { min: i64, max: i64 },
    /// A number in `[min, max]`.
    Double { min: f64, max: f64 },
    /// `1`/`0`, `ON`/`OFF`, `TRUE`/`FALSE`, `YES`/`NO`, any case.
    Bool,
    /// One of the names, any case; stored with the catalogue's spelling.
    Enum(&'static [&'static str]),
    /// Any string.
    Str,
    /// A capacity such as `256K` ([`parse_capacity`]) in `[min, max]` bytes.
    Capacity { min: u64, max: u64 },
    /// A duration: a whole number with a unit `us`, `ms`, `s`, `m`, `h` or `d`, in
    /// `[min_us, max_us]` microseconds.
    Time { min_us: u64, max_us: u64 },
    /// `HH:MM` of a day, or `disable`.
    Moment,
    /// An IP whitelist: comma-separated addresses, CIDR blocks or `%`/`_` patterns.
    Whitelist,
    /// `SYSTEM`, an offset such as `+08:00`, or a named zone such as `Asia/Shanghai`.
    TimeZone,
    /// A character set of [`CHARSETS`](super::CHARSETS).
    Charset,
    /// A collation of one of [`CHARSETS`](super::CHARSETS).
    Collation,
    /// Comma-separated SQL mode names ([`SQL_MODES`]), possibly none.
    SqlMode,
}

/// SQL mode names `sql_mode` accepts.
pub static SQL_MODES: &[&str] = &[
    "ALLOW_INVALID_DATES",
    "ANSI",
    "ANSI_QUOTES",
    "ERROR_FOR_DIVISION_BY_ZERO",
    "HIGH_NOT_PRECEDENCE",
    "IGNORE_SPACE",
    "NO_AUTO_CREATE_USER",
    "NO_AUTO_VALUE_ON_ZERO",
    "NO_BACKSLASH_ESCAPES",
    "NO_DIR_IN_CREATE",
    "NO_ENGINE_SUBSTITUTION",
    "NO_UNSIGNED_SUBTRACTION",
    "NO_ZERO_DATE",
    "NO_ZERO_IN_DATE",
    "ONLY_FULL_GROUP_BY",
    "PAD_CHAR_TO_FULL_LENGTH",
    "PIPES_AS_CONCAT",
    "REAL_AS_FLOAT",
    "STRICT_ALL_TABLES",
    "STRICT_TRANS_TABLES",
    "TIME_TRUNCATE_FRACTIONAL",
    "TRADITIONAL",
];

/// One second in microseconds.
pub(super) const SECOND_US: u64 = 1_000_000;

/// How booleans are spelled when stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolStyle {
    /// `1` / `0`, as system variables.
    Digit,
    /// `True` / `False`, as parameters.
    Word,
}

impl ValueKind {
    /// Checks `value` against the type and range, and returns the form to store.
    ///
    /// # Errors
    /// Why the value does not fit, as a sentence fragment without the name.
    pub fn normalize(&self, value: &str, bools: BoolStyle) -> Result<String, String> {
        let trimmed = value.trim();
        match *self {
            ValueKind::Int { min, max } => normalize_int(value, min, max),
            ValueKind::Double { min, max } => normalize_double(value, min, max),
            ValueKind::Bool => normalize_bool(value, bools),
            ValueKind::Enum(names) => names
                .iter()
                .find(|name| name.eq_ignore_ascii_case(trimmed))
                .map(|name| name.to_string())
                .ok_or_else(|| format!("value '{value}' is not one of {}", names.join(", "))),
            ValueKind::Str => Ok(value.to_string()),
            ValueKind::Capacity { min, max } => normalize_capacity(value, min, max),
            ValueKind::Time { min_us, max_us } => normalize_time(value, min_us, max_us),
            ValueKind::Moment => normalize_moment(trimmed).ok_or_else(|| {
                format!("value '{value}' is not HH:MM in [00:00, 24:00) or disable")
            }),
            ValueKind::Whitelist => normalize_whitelist(value),
            ValueKind::TimeZone => normalize_time_zone(trimmed).ok_or_else(|| {
                format!("value '{value}' is not SYSTEM, an offset in [-12:59, +13:00] or a named time zone")
            }),
            ValueKind::Charset => charset(trimmed)
                .map(|charset| charset.name.to_string())
                .ok_or_else(|| format!("unknown character set '{value}'")),
            ValueKind::Collation => collation(trimmed)
                .map(|(_, spelled)| spelled.to_string())
                .ok_or_else(|| format!("unknown collation '{value}'")),
            ValueKind::SqlMode => normalize_sql_mode(trimmed),
        }
    }
}

fn normalize_int(value: &str, min: i64, max: i64) -> Result<String, String> {
    let number: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("value '{value}' is not an integer"))?;
    if number < min || number > max {
        return Err(format!("value '{value}' is out of range [{min}, {max}]"));
    }
    Ok(number.to_string())
}

fn normalize_double(value: &str, min: f64, max: f64) -> Result<String, String> {
    let number: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|number: &f64| number.is_finite())
        .ok_or_else(|| format!("value '{value}' is not a number"))?;
    if number < min || number > max {
        return Err(format!("value '{value}' is out of range [{min}, {max}]"));
    }
    Ok(number.to_string())
}

fn normalize_bool(value: &str, bools: BoolStyle) -> Result<String, String> {
    let on = match value.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => true,
        "0" | "off" | "false" | "no" => false,
        _ => return Err(format!("value '{value}' is not a boolean")),
    };
    Ok(match (bools, on) {
        (BoolStyle::Digit, true) => "1",
        (BoolStyle::Digit, false) => "0",
        (BoolStyle::Word, true) => "True",
        (BoolStyle::Word, false) => "False",
    }
    .to_string())
}

fn normalize_capacity(value: &str, min: u64, max: u64) -> Result<String, String> {
    let trimmed = value.trim();
    let bytes = parse_capacity(trimmed)?;
    if bytes < min || bytes > max {
        return Err(format!(
            "value '{value}' is out of range [{}, {}]",
            format_capacity(min),
            format_capacity(max)
        ));
    }
    Ok(trimmed.to_ascii_uppercase())
}

fn normalize_time(value: &str, min_us: u64, max_us: u64) -> Result<String, String> {
    let trimmed = value.trim();
    let micros = parse_time_us(trimmed).ok_or_else(|| {
        format!("value '{value}' is not a whole number with a unit (us, ms, s, m, h, d)")
    })?;
    if micros < min_us || micros > max_us {
        return Err(format!("value '{value}' is out of range"));
    }
    Ok(trimmed.to_ascii_lowercase())
}

/// Known SQL mode names in the catalogue's spelling, without repeats, in order.
fn normalize_sql_mode(trimmed: &str) -> Result<String, String> {
    let mut modes = Vec::new();
    for mode in trimmed
        .split(',')
        .map(str::trim)
        .filter(|mode| !mode.is_empty())
    {
        let Some(known) = SQL_MODES
            .iter()
            .find(|known| known.eq_ignore_ascii_case(mode))
        else {
            return Err(format!("unknown SQL mode '{mode}'"));
        };
        if !modes.contains(known) {
            modes.push(*known);
        }
    }
    Ok(modes.join(","))
}

fn parse_time_us(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = lower.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit_us: u64 = match unit {
        "us" => 1,
        "ms" => 1_000,
        "s" => SECOND_US,
        "m" => 60 * SECOND_US,
        "h" => 3600 * SECOND_US,
        "d" => 86_400 * SECOND_US,
        _ => return None,
    };
    number.checked_mul(unit_us)
}

fn normalize_moment(value: &str) -> Option<String> {
    if value.eq_ignore_ascii_case("disable") {
        return Some("disable".to_string());
    }
    let (hours, minutes) = value.split_once(':')?;
    let digits =
        |part: &str| (1..=2).contains(&part.len()) && part.chars().all(|c| c.is_ascii_digit());
    if !digits(hours) || minutes.len() != 2 || !digits(minutes) {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then(|| format!("{hours:02}:{minutes:02}"))
}

fn normalize_whitelist(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        // OceanBase accepts an empty whitelist: nobody may connect.
        return Ok(String::new());
    }
    let mut items = Vec::new();
    for item in value.split(',').map(str::trim) {
        let allowed = |c: char| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '%' | '_' | '/');
        if item.is_empty() || !item.chars().all(allowed) {
            return Err(format!(
                "'{item}' is not an IP address, a CIDR block or a %/_ pattern"
            ));
        }
        if !items.contains(&item) {
            items.push(item);
        }
    }
    Ok(items.join(","))
}

fn normalize_time_zone(value: &str) -> Option<String> {
    if value.eq_ignore_ascii_case("system") {
        return Some("SYSTEM".to_string());
    }
    if let Some(sign) = value.chars().next().filter(|c| matches!(c, '+' | '-')) {
        let (hours, minutes) = value[1..].split_once(':')?;
        let digits = |part: &str, lengths: std::ops::RangeInclusive<usize>| {
            lengths.contains(&part.len()) && part.chars().all(|c| c.is_ascii_digit())
        };
        if !digits(hours, 1..=2) || !digits(minutes, 2..=2) {
            return None;
        }
        let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
        let total = hours * 60 + minutes;
        let fits = minutes < 60
            && match sign {
                '+' => total <= 13 * 60,
                _ => total <= 12 * 60 + 59,
            };
        return fits.then(|| format!("{sign}{hours:02}:{minutes:02}"));
    }
    let named = value.split('/').count() >= 2
        && value.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
        && value.starts_with(|c: char| c.is_ascii_alphabetic());
    (named || value.eq_ignore_ascii_case("UTC")).then(|| value.to_string())
}

/// obshell's `mergeWhitelist`: `specific` plus `127.0.0.1`, without repeats, in order;
/// an empty `specific` is just `127.0.0.1`.
pub fn merge_whitelist(specific: &str) -> String {
    if specific.is_empty() {
        return DEFAULT_WHITELIST.to_string();
    }
    let mut merged: Vec<&str> = Vec::new();
    for item in specific.split(',').chain([DEFAULT_WHITELIST]) {
        if !merged.contains(&item) {
            merged.push(item);
        }
    }
    merged.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_normalized_by_kind() {
        let ints = ValueKind::Int { min: 0, max: 100 };
        let time = ValueKind::Time {
            min_us: 5 * SECOND_US,
            max_us: u64::MAX,
        };
        let capacity = ValueKind::Capacity {
            min: 0,
            max: 512 << 20,
        };
        let cases: &[(ValueKind, BoolStyle, &str, Result<&str, &str>)] = &[
            (ints, BoolStyle::Digit, " 42 ", Ok("42")),
            (ints, BoolStyle::Digit, "101", Err("value '101' is out of range [0, 100]")),
            (ints, BoolStyle::Digit, "-1", Err("value '-1' is out of range [0, 100]")),
            (ints, BoolStyle::Digit, "4.5", Err("value '4.5' is not an integer")),
            (ints, BoolStyle::Digit, "", Err("value '' is not an integer")),
            (ValueKind::Double { min: 1.0, max: 20.0 }, BoolStyle::Word, "4.50", Ok("4.5")),
            (ValueKind::Double { min: 1.0, max: 20.0 }, BoolStyle::Word, "0.5", Err("value '0.5' is out of range [1, 20]")),
            (ValueKind::Bool, BoolStyle::Digit, "ON", Ok("1")),
            (ValueKind::Bool, BoolStyle::Digit, "false", Ok("0")),
            (ValueKind::Bool, BoolStyle::Word, "1", Ok("True")),
            (ValueKind::Bool, BoolStyle::Word, "off", Ok("False")),
            (ValueKind::Bool, BoolStyle::Word, "maybe", Err("value 'maybe' is not a boolean")),
            (ValueKind::Enum(&["FROZEN", "WEAK", "STRONG"]), BoolStyle::Digit, "weak", Ok("WEAK")),
            (ValueKind::Enum(&["order", "noorder"]), BoolStyle::Word, "NOORDER", Ok("noorder")),
            (ValueKind::Enum(&["A", "B"]), BoolStyle::Digit, "C", Err("value 'C' is not one of A, B")),
            (capacity, BoolStyle::Word, "1m", Ok("1M")),
            (capacity, BoolStyle::Word, "1G", Err("value '1G' is out of range [0B, 512M]")),
            (time, BoolStyle::Word, "10S", Ok("10s")),
            (time, BoolStyle::Word, "4s", Err("value '4s' is out of range")),
            (time, BoolStyle::Word, "10", Err("value '10' is not a whole number with a unit (us, ms, s, m, h, d)")),
            (ValueKind::Moment, BoolStyle::Word, "2:05", Ok("02:05")),
            (ValueKind::Moment, BoolStyle::Word, "DISABLE", Ok("disable")),
            (ValueKind::Moment, BoolStyle::Word, "24:00", Err("value '24:00' is not HH:MM in [00:00, 24:00) or disable")),
            (ValueKind::Whitelist, BoolStyle::Digit, "10.0.0.0/8, %", Ok("10.0.0.0/8,%")),
            (ValueKind::Whitelist, BoolStyle::Digit, "", Ok("")),
            (ValueKind::Whitelist, BoolStyle::Digit, "1.2.3.4,,5.6.7.8", Err("'' is not an IP address, a CIDR block or a %/_ pattern")),
            (ValueKind::Whitelist, BoolStyle::Digit, "host;rm", Err("'host;rm' is not an IP address, a CIDR block or a %/_ pattern")),
            (ValueKind::TimeZone, BoolStyle::Digit, "+8:00", Ok("+08:00")),
            (ValueKind::TimeZone, BoolStyle::Digit, "-12:59", Ok("-12:59")),
            (ValueKind::TimeZone, BoolStyle::Digit, "system", Ok("SYSTEM")),
            (ValueKind::TimeZone, BoolStyle::Digit, "Asia/Shanghai", Ok("Asia/Shanghai")),
            (ValueKind::TimeZone, BoolStyle::Digit, "+13:01", Err("value '+13:01' is not SYSTEM, an offset in [-12:59, +13:00] or a named time zone")),
            (ValueKind::TimeZone, BoolStyle::Digit, "Mars", Err("value 'Mars' is not SYSTEM, an offset in [-12:59, +13:00] or a named time zone")),
            (ValueKind::Charset, BoolStyle::Digit, "GBK", Ok("gbk")),
            (ValueKind::Charset, BoolStyle::Digit, "ascii", Err("unknown character set 'ascii'")),
            (ValueKind::Collation, BoolStyle::Digit, "UTF8MB4_BIN", Ok("utf8mb4_bin")),
            (ValueKind::Collation, BoolStyle::Digit, "klingon_ci", Err("unknown collation 'klingon_ci'")),
            (ValueKind::SqlMode, BoolStyle::Digit, "strict_all_tables, ansi_quotes,STRICT_ALL_TABLES", Ok("STRICT_ALL_TABLES,ANSI_QUOTES")),
            (ValueKind::SqlMode, BoolStyle::Digit, "", Ok("")),
            (ValueKind::SqlMode, BoolStyle::Digit, "NO_SUCH_MODE", Err("unknown SQL mode 'NO_SUCH_MODE'")),
        ];
        for (kind, bools, input, expected) in cases {
            assert_eq!(
                kind.normalize(input, *bools),
                expected.map(str::to_string).map_err(str::to_string),
                "{kind:?} {input:?}"
            );
        }
    }

    #[test]
    fn whitelist_merge_follows_obshell() {
        let cases = [
            ("", "127.0.0.1"),
            ("10.0.0.1", "10.0.0.1,127.0.0.1"),
            ("127.0.0.1,10.0.0.1", "127.0.0.1,10.0.0.1"),
            ("%,%", "%,127.0.0.1"),
        ];
        for (input, expected) in cases {
            assert_eq!(merge_whitelist(input), expected, "{input}");
        }
    }
}
