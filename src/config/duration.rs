//! Durations written as text: `30s`, `5m`, `6h`, `1d`, `2w`, or sums such as `1h30m`.

use std::time::Duration;

/// Seconds in each unit a duration may use.
const UNITS: &[(char, u64)] = &[
    ('s', 1),
    ('m', 60),
    ('h', 3600),
    ('d', 86_400),
    ('w', 604_800),
];

/// Parse a duration such as `30s`, `5m`, `6h`, `1d`, `2w` or `1h30m`.
///
/// The error says what is wrong in words meant to follow the key's name.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty; write a duration such as \"30s\", \"5m\", \"6h\" or \"1d\"".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(unit, _)| *unit == c) else {
            return Err(format!(
                "\"{text}\" has an unknown unit '{c}'; use s, m, h, d or w (\"30s\", \"5m\", \"6h\", \"1d\")"
            ));
        };
        if digits.is_empty() {
            return Err(format!("\"{text}\" has a unit without a number before it"));
        }
        let count: u64 = digits
            .parse()
            .map_err(|_| format!("\"{text}\" is too large"))?;
        digits.clear();
        total = count
            .checked_mul(scale)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| format!("\"{text}\" is too large"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "\"{text}\" needs a unit after the number, e.g. \"{digits}s\" or \"{digits}m\""
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Write a duration the way [`parse_duration`] reads it: `6h`, `1h30m`, `0s`.
pub fn format_duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for &(unit, scale) in UNITS.iter().rev() {
        if secs >= scale {
            out.push_str(&format!("{}{unit}", secs / scale));
            secs %= scale;
        }
    }
    out
}
