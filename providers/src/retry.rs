//! How HTTP providers retry: 429 and 5xx answers (and lost connections) are tried again with a
//! bounded exponential backoff that honours `Retry-After`, then fail clearly.

use std::time::Duration;

/// Tries per request, the first included.
pub const DEFAULT_MAX_TRIES: u32 = 4;
/// The most time spent waiting between tries of one request.
pub const DEFAULT_MAX_TOTAL: Duration = Duration::from_secs(30);
/// The wait before the second try; doubled for each following one.
pub const DEFAULT_FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest single wait; a larger `Retry-After` is [`crate::ProviderError::RateLimited`].
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(15);

/// The retry policy of HTTP providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per request, the first included (at least 1).
    pub max_tries: u32,
    /// The most time spent waiting between tries of one request.
    pub max_total: Duration,
    /// The wait before the second try; doubled for each following one.
    pub first_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_tries: DEFAULT_MAX_TRIES,
            max_total: DEFAULT_MAX_TOTAL,
            first_delay: DEFAULT_FIRST_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    /// The wait before try number `next_try` (2 for the first retry), given the server's
    /// `Retry-After` and the time already waited; `None` when the budget is spent.
    pub fn delay(
        &self,
        next_try: u32,
        retry_after: Option<Duration>,
        waited: Duration,
    ) -> Option<Duration> {
        if next_try > self.max_tries.max(1) {
            return None;
        }
        let backoff = self
            .first_delay
            .saturating_mul(1u32 << (next_try.saturating_sub(2)).min(16));
        let delay = retry_after.unwrap_or(backoff).min(self.max_delay);
        (waited + delay <= self.max_total).then_some(delay)
    }
}

/// Parse a `Retry-After` value given in seconds (an HTTP date falls back to the backoff).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_backoff() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(2, None, Duration::ZERO),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            p.delay(3, None, Duration::ZERO),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            p.delay(4, None, Duration::ZERO),
            Some(Duration::from_secs(4))
        );
        assert_eq!(p.delay(5, None, Duration::ZERO), None, "4 tries at most");
        assert_eq!(
            p.delay(2, Some(Duration::from_secs(100)), Duration::ZERO),
            Some(DEFAULT_MAX_DELAY)
        );
        assert_eq!(
            p.delay(2, None, Duration::from_secs(30)),
            None,
            "30 s budget"
        );
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
