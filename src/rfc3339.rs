//! Times as text: seconds (or milliseconds) since the Unix epoch written as RFC 3339 in UTC
//! (`2025-01-31T12:00:00Z`) and read back, through `chrono`.
//!
//! Years 0000 to 9999 (all an X.509 time can say) are written exactly as the hand-written
//! formatters this replaced wrote them. Outside that range chrono writes RFC 3339's extended
//! form (`+10000-01-01T00:00:00Z`), and a time beyond chrono's range (some 262,000 years either
//! side of year 0) is written as the nearest time in range: nothing the crate reads (clocks,
//! certificates, its own store) holds one.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// `ms` milliseconds since the epoch as a UTC date-time, clamped to chrono's range.
fn utc_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// Whole seconds since the epoch as RFC 3339 UTC: `2025-01-31T12:00:00Z`.
pub(crate) fn format_secs(secs: i64) -> String {
    format_millis(secs.saturating_mul(1000))
}

/// Milliseconds since the epoch as RFC 3339 UTC, with milliseconds only when the time is not on
/// a whole second: `2025-01-31T12:00:00Z`, `2025-01-31T12:00:00.250Z`.
pub(crate) fn format_millis(ms: i64) -> String {
    let digits = if ms.rem_euclid(1000) == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Millis
    };
    utc_millis(ms).to_rfc3339_opts(digits, true)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (what [`format_secs`] writes) as seconds since the epoch; anything
/// else (another form, an impossible date) is `None`.
pub(crate) fn parse_secs(text: &str) -> Option<i64> {
    if text.len() != 20 {
        return None; // chrono's `%Y` would take a sign or a fifth digit
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_times_both_ways() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(format_secs(secs), text);
            assert_eq!(parse_secs(text), Some(secs));
        }
        assert_eq!(format_millis(1_738_324_800_250), "2025-01-31T12:00:00.250Z");
        assert_eq!(format_millis(1_738_324_800_000), "2025-01-31T12:00:00Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn what_is_not_a_time_is_none_and_extremes_no_panic() {
        for text in [
            "Jan 1 2020",
            "2024-02-30T00:00:00Z",
            "2024-02-29T24:00:00Z",
            "2024-02-29 00:00:00Z",
            "2024-02-29T00:00:00+00:00",
            "+2024-02-29T00:00:00Z",
            "",
        ] {
            assert_eq!(parse_secs(text), None, "{text:?}");
        }
        for extreme in [i64::MIN, i64::MAX] {
            assert!(!format_secs(extreme).is_empty());
            assert!(!format_millis(extreme).is_empty());
        }
    }
}
