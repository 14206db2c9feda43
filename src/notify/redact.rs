//! What a channel may say about a failure: an error and its causes on one line, with URLs
//! removed and every secret masked, and server replies quoted short.

use std::time::Duration;

use super::alert;
use super::delivery::ChannelError;

/// A failed HTTP exchange as a channel error: timeouts and connection failures told apart, the
/// URL removed and `secrets` masked.
pub(crate) fn http_error(
    err: reqwest::Error,
    target: String,
    timeout: Duration,
    secrets: &[&str],
) -> ChannelError {
    if err.is_timeout() {
        return ChannelError::Timeout {
            target,
            after: timeout,
        };
    }
    let connect = err.is_connect();
    let reason = scrub(&error_chain(&err.without_url()), secrets);
    if connect {
        ChannelError::Connect { target, reason }
    } else {
        ChannelError::Request { target, reason }
    }
}

/// An HTTP exchange with a channel's peer, bounded by `timeout` as a whole: its answer, or the
/// failure as a channel error naming `target` (see [`http_error`]).
pub(crate) async fn http_exchange<T>(
    exchange: impl Future<Output = Result<T, reqwest::Error>>,
    target: &str,
    timeout: Duration,
    secrets: &[&str],
) -> Result<T, ChannelError> {
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(ChannelError::Timeout {
            target: target.to_owned(),
            after: timeout,
        }),
        Ok(Err(err)) => Err(http_error(err, target.to_owned(), timeout, secrets)),
        Ok(Ok(answer)) => Ok(answer),
    }
}

/// An error and its causes, `a: b: c`, skipping a cause whose text its parents already hold
/// (reqwest's and lettre's own words are terse: the TLS or socket reason is in a source).
pub(crate) fn error_with_causes(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// [`error_with_causes`], also skipping a part that repeats the one before
/// (`Connection error: Connection error: …`).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let out = error_with_causes(err);
    let mut parts: Vec<&str> = Vec::new();
    for part in out.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// What a masked secret looks like in any text (as in [`crate::config::SecretValue`]).
pub const MASK: &str = "***";

/// Mask every occurrence of each secret in `text` with [`MASK`] (empty secrets are ignored),
/// then every credential a server may echo whatever it is ([`dane_roll_providers::mask_credentials`]:
/// `Authorization` header values, `user:password@` in URLs).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(secret) {
            out = out.replace(secret, MASK);
        }
    }
    dane_roll_providers::mask_credentials(&out)
}

/// Text cut to about `max` characters on one line (server replies quoted in errors).
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let line = alert::one_line(text.trim());
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}

/// `scheme://host[:port]` of a URL: what may be shown of a webhook or API URL.
pub fn url_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_path_query_and_userinfo() {
        assert_eq!(
            url_origin("https://user:pw@hooks.example.com:8443/T000/B000/XXXX?x=1"),
            "https://hooks.example.com:8443"
        );
        assert_eq!(url_origin("http://127.0.0.1:9/"), "http://127.0.0.1:9");
    }

    #[test]
    fn scrub_masks_every_occurrence() {
        assert_eq!(
            scrub("a 123:ABC b 123:ABC", &["123:ABC", ""]),
            "a *** b ***"
        );
    }

    #[test]
    fn excerpt_is_one_line_and_bounded() {
        assert_eq!(excerpt("a\nb", 10), "a b");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
