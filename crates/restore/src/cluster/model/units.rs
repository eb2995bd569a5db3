//! Quantities: byte sizes (KiB, MiB, GiB; OceanBase's capacity strings) and CPU
//! counts (decimals rounded to 6 places so accounting does not drift).

/// One KiB, MiB, GiB in bytes.
pub const KIB: u64 = 1 << 10;
/// One MiB in bytes.
pub const MIB: u64 = 1 << 20;
/// One GiB in bytes.
pub const GIB: u64 = 1 << 30;

/// Two CPU quantities closer than this are equal (CPU counts are decimals like 0.5).
pub(crate) const CPU_EPSILON: f64 = 1e-6;

/// Rounds a CPU quantity to 6 decimals so repeated add/subtract does not drift.
pub(crate) fn round_cpu(cpu: f64) -> f64 {
    (cpu * 1e6).round() / 1e6
}

/// Parses an OceanBase capacity string: a number with an optional unit `B`, `K`, `M`,
/// `G`, `T`, `P` (case-insensitive, optional trailing `B`, e.g. `8G`, `512MB`, `1024`).
/// A bare number is bytes.
///
/// # Errors
/// A message naming the input when it is empty, not a number, fractional in bytes,
/// or overflows u64.
pub fn parse_capacity(input: &str) -> Result<u64, String> {
    let trimmed = input.trim();
    let upper = trimmed.to_ascii_uppercase();
    let without_b = upper
        .strip_suffix('B')
        .filter(|rest| rest.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(&upper);
    let (number, multiplier) = match without_b.chars().last() {
        Some('K') => (&without_b[..without_b.len() - 1], KIB),
        Some('M') => (&without_b[..without_b.len() - 1], MIB),
        Some('G') => (&without_b[..without_b.len() - 1], GIB),
        Some('T') => (&without_b[..without_b.len() - 1], GIB * 1024),
        Some('P') => (&without_b[..without_b.len() - 1], GIB * 1024 * 1024),
        Some('B') => (&without_b[..without_b.len() - 1], 1),
        _ => (without_b, 1),
    };
    let number = number.trim();
    if number.is_empty() {
        return Err(format!("capacity '{input}' is empty or has no number"));
    }
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| format!("capacity '{input}' is too large"));
    }
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => {
            let bytes = value * multiplier as f64;
            if bytes > u64::MAX as f64 {
                Err(format!("capacity '{input}' is too large"))
            } else if bytes.fract() != 0.0 {
                Err(format!("capacity '{input}' is not a whole number of bytes"))
            } else {
                Ok(bytes as u64)
            }
        }
        _ => Err(format!(
            "capacity '{input}' is not a number with a unit (B, K, M, G, T, P)"
        )),
    }
}

/// Formats bytes the way OceanBase displays capacities: the largest unit that divides
/// exactly (`8G`, `1536M`, `100B`).
pub fn format_capacity(bytes: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (GIB * 1024 * 1024, "P"),
        (GIB * 1024, "T"),
        (GIB, "G"),
        (MIB, "M"),
        (KIB, "K"),
    ];
    for (size, suffix) in UNITS {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{suffix}", bytes / size);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_strings() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            ("8G", Ok(8 * GIB)),
            ("8g", Ok(8 * GIB)),
            ("8GB", Ok(8 * GIB)),
            ("512M", Ok(512 * MIB)),
            ("1.5G", Ok(1536 * MIB)),
            ("1024", Ok(1024)),
            ("100B", Ok(100)),
            ("2K", Ok(2048)),
            ("", Err("capacity '' is empty or has no number")),
            ("G", Err("capacity 'G' is empty or has no number")),
            (
                "x1G",
                Err("capacity 'x1G' is not a number with a unit (B, K, M, G, T, P)"),
            ),
            (
                "0.5B",
                Err("capacity '0.5B' is not a whole number of bytes"),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_capacity(input),
                expected.map_err(str::to_string),
                "{input}"
            );
        }
    }

    #[test]
    fn capacity_display() {
        assert_eq!(format_capacity(8 * GIB), "8G");
        assert_eq!(format_capacity(1536 * MIB), "1536M");
        assert_eq!(format_capacity(100), "100B");
        assert_eq!(format_capacity(0), "0B");
    }
}
