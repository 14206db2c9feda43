//! The MTA-STS policy file (RFC 8461 §3.2), parsed by hand (a handful of `key: value` lines),
//! and its `mx:` patterns matched against MX hosts (§4.1).

use serde::Serialize;

/// The longest `max_age` RFC 8461 allows: one year.
pub const MAX_AGE_LIMIT: u64 = 31_557_600;
/// A `max_age` under this (one day) makes senders refetch often and forget the policy soon:
/// RFC 8461 §3.2 advises weeks or more.
pub const MAX_AGE_SHORT: u64 = 86_400;

/// What senders do with the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse delivery to an MX that fails the policy.
    Enforce,
    /// Deliver anyway, report failures (TLSRPT).
    Testing,
    /// No policy in effect.
    None,
}

impl Mode {
    /// The word in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A valid policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// The mode.
    pub mode: Mode,
    /// How long senders keep the policy, seconds.
    pub max_age: u64,
    /// The MX patterns: a host name, or `*.` and a parent name.
    pub mx: Vec<String>,
}

/// Parse a policy's text; an error in words when senders would not use it.
pub fn parse(text: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!(
                "line {}: \"{line}\" is not a key: value line",
                n + 1
            ));
        };
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_string()),
            "mode" => {
                mode = Some(match value {
                    "enforce" => Mode::Enforce,
                    "testing" => Mode::Testing,
                    "none" => Mode::None,
                    other => {
                        return Err(format!("mode \"{other}\" is not enforce, testing or none"));
                    }
                })
            }
            "max_age" => {
                let age: u64 = value
                    .parse()
                    .ok()
                    .filter(|_| value.len() <= 10 && value.chars().all(|c| c.is_ascii_digit()))
                    .ok_or_else(|| format!("max_age \"{value}\" is not a number of seconds"))?;
                if age > MAX_AGE_LIMIT {
                    return Err(format!(
                        "max_age {age} is over the limit of {MAX_AGE_LIMIT} s (a year)"
                    ));
                }
                max_age = Some(age);
            }
            "mx" => mx.push(value.to_ascii_lowercase()),
            // Unknown fields are ignored (§3.2).
            _ => {}
        }
    }
    match version.as_deref() {
        Some("STSv1") => {}
        Some(other) => return Err(format!("version \"{other}\" is not STSv1")),
        None => return Err("no version: STSv1 line".into()),
    }
    let mode = mode.ok_or("no mode: line")?;
    let max_age = max_age.ok_or("no max_age: line")?;
    if mx.is_empty() && mode != Mode::None {
        return Err(format!("mode {} without any mx: line", mode.as_str()));
    }
    Ok(Policy { mode, max_age, mx })
}

impl Policy {
    /// The pattern that covers `host`, if one does: exact, or `*.parent` for exactly one more
    /// label (RFC 8461 §4.1), without regard to case or a final dot.
    pub fn covering(&self, host: &str) -> Option<&str> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx
            .iter()
            .find(|pattern| {
                let pattern = pattern.trim_end_matches('.');
                match pattern.strip_prefix("*.") {
                    Some(parent) => host
                        .split_once('.')
                        .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                    None => host == pattern,
                }
            })
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_example() {
        let p = parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604_800);
        assert_eq!(p.covering("MAIL.example.com."), Some("mail.example.com"));
        assert_eq!(p.covering("a.example.net"), Some("*.example.net"));
        assert_eq!(p.covering("a.b.example.net"), None);
        assert_eq!(p.covering("example.net"), None);
        assert_eq!(p.covering("other.example.com"), None);
    }

    #[test]
    fn refuses_what_senders_refuse() {
        // (policy text, a word the error must name)
        let refused = [
            ("mode: enforce\nmx: a\nmax_age: 1", "version"),
            (
                "version: STSv2\nmode: enforce\nmx: a\nmax_age: 1",
                "version",
            ),
            ("version: STSv1\nmode: strict\nmx: a\nmax_age: 1", "mode"),
            ("version: STSv1\nmode: enforce\nmax_age: 1", "mx"),
            (
                "version: STSv1\nmode: enforce\nmx: a\nmax_age: 99999999999",
                "max_age",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a\nmax_age: -1",
                "max_age",
            ),
            ("version: STSv1\nmode: enforce\nmx: a", "max_age"),
            ("<html>", "key: value"),
        ];
        for (text, word) in refused {
            let err = parse(text).unwrap_err();
            assert!(err.contains(word), "{text:?}: {err}");
        }
        assert_eq!(
            parse("version: STSv1\nmode: none\nmax_age: 86400")
                .unwrap()
                .mode,
            Mode::None
        );
    }
}
