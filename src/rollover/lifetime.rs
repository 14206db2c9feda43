//! Short-lived certificates against the wait: a key change waits until every nameserver serves
//! the new record, then 2×TTL, before its install. With 6-day certificates renewed every 2–3
//! days that wait is a large share of the time a renewal has, and a stuck wait (a nameserver
//! down, a provider refusing) eats the rest. A next key published ahead (scheme `current+next`)
//! makes a renewal with it need no wait at all. [`advice`] says when the wait is too large a
//! share and what to do; `status` and `check` show it.

use std::time::Duration;

/// The share of a certificate's lifetime above which the wait is too large (10 %).
pub const MAX_WAIT_SHARE: f64 = 0.10;

/// A certificate living this long or less renews every few days: each renewal with a new key
/// waits, unless a next key is published ahead.
pub const SHORT_LIVED: Duration = Duration::from_secs(7 * 86_400);

/// What is known of one certificate and the wait a key change would need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifetimeFacts {
    /// notAfter − notBefore.
    pub lifetime: Duration,
    /// The wait before an install: 2×TTL (propagation comes on top of it).
    pub wait: Duration,
    /// Whether a next key's record is published ahead (then a renewal with it needs no wait).
    pub next_published: bool,
}

impl LifetimeFacts {
    /// The wait as a share of the lifetime (0 for a lifetime of 0).
    pub fn share(&self) -> f64 {
        if self.lifetime.is_zero() {
            return 0.0;
        }
        self.wait.as_secs_f64() / self.lifetime.as_secs_f64()
    }

    /// Whether the certificate is short-lived or the wait a large share of its lifetime.
    pub fn is_tight(&self) -> bool {
        self.lifetime <= SHORT_LIVED || self.share() > MAX_WAIT_SHARE
    }
}

/// What to tell the operator, when the wait is a large share of a certificate's lifetime (or
/// the certificate is short-lived) and no next key is published ahead; `None` otherwise.
pub fn advice(facts: &LifetimeFacts) -> Option<String> {
    if !facts.is_tight() || facts.next_published {
        return None;
    }
    Some(format!(
        "the certificate lives {} and a key change waits 2×TTL ({}) plus propagation before its \
         install: {:.1} % of its lifetime, with no next key published ahead; pre-publish the \
         next key (scheme \"current+next\") so that a renewal with it needs no wait, or lower \
         the TTL",
        human(facts.lifetime),
        human(facts.wait),
        facts.share() * 100.0
    ))
}

/// A duration in days, hours, minutes or seconds, whichever reads best.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 2 * 86_400 {
        format!("{:.1} days", s as f64 / 86_400.0)
    } else if s >= 2 * 3600 {
        format!("{:.1} h", s as f64 / 3600.0)
    } else if s >= 120 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn facts(days: u64, ttl: u64, next: bool) -> LifetimeFacts {
        LifetimeFacts {
            lifetime: Duration::from_secs(days * DAY),
            wait: Duration::from_secs(2 * ttl),
            next_published: next,
        }
    }

    #[test]
    fn a_six_day_certificate_without_a_next_key_gets_the_advice() {
        let text = advice(&facts(6, 3600, false)).expect("advice");
        assert!(text.contains("6.0 days"), "{text}");
        assert!(text.contains("current+next"), "{text}");
        assert!(advice(&facts(6, 3600, true)).is_none(), "a next key is out");
    }

    #[test]
    fn a_wait_over_a_tenth_of_the_lifetime_gets_the_advice() {
        // 90 days, TTL 5 days: 10 days of wait, 11 %.
        assert!(advice(&facts(90, 5 * DAY, false)).is_some());
        // 90 days, TTL 1 h: 0.1 %.
        assert!(advice(&facts(90, 3600, false)).is_none());
    }
}
