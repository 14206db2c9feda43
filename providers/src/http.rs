//! The HTTP client the API providers share: one credential header (marked sensitive), JSON
//! bodies, a per-request timeout, and retries of 429 and 5xx answers by [`RetryPolicy`].
//!
//! Answers are returned with their status; [`Reply::check`] turns 401, 403, 404 and other
//! refusals into [`ProviderError`]s whose text comes from the API but never holds the secret.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::retry::parse_retry_after;
use crate::{ProviderError, RetryPolicy, Secret, Settings};

/// How much of an error body goes into a message.
const DETAIL_MAX: usize = 300;

/// An API client.
#[derive(Debug)]
pub struct Http {
    client: reqwest::Client,
    provider: &'static str,
    header: HeaderName,
    value: HeaderValue,
    secret: Secret,
    retry: RetryPolicy,
    timeout: Duration,
}

/// A final answer: status, the `Link` header, the body.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `Link` header, when present.
    pub link: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    provider: &'static str,
}

impl Http {
    /// A client sending `header: prefix+secret` (e.g. `Authorization: Bearer …`) with each request.
    pub fn new(
        provider: &'static str,
        header: &'static str,
        prefix: &str,
        secret: Secret,
        settings: &Settings,
    ) -> Result<Http, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("dane-roll/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Connect {
                server: provider.into(),
                detail: format!("cannot set up the HTTP client: {e}"),
            })?;
        let mut value =
            HeaderValue::from_str(&format!("{prefix}{}", secret.expose())).map_err(|_| {
                ProviderError::Key(format!(
                    "{provider}: the credential holds characters an HTTP header cannot carry"
                ))
            })?;
        value.set_sensitive(true);
        Ok(Http {
            client,
            provider,
            header: HeaderName::from_static(header),
            value,
            secret,
            retry: settings.retry,
            timeout: settings.timeout,
        })
    }

    /// Send a request, retrying 429, 5xx and lost connections; the last answer otherwise.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, ProviderError> {
        let mut tries = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            tries += 1;
            let mut request = self
                .client
                .request(method.clone(), url)
                .header(self.header.clone(), self.value.clone())
                .header("accept", "application/json");
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let (status, retry_after, detail) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let link = response
                        .headers()
                        .get("link")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body = response
                        .bytes()
                        .await
                        .map(|b| b.to_vec())
                        .unwrap_or_default();
                    if !retryable(status) {
                        return Ok(Reply {
                            status: status.as_u16(),
                            link,
                            body,
                            provider: self.provider,
                        });
                    }
                    (status.as_u16(), retry_after, self.detail(&body))
                }
                Err(err) if err.is_timeout() => (
                    0,
                    None,
                    format!("no answer within {}s", self.timeout_secs()),
                ),
                Err(err) if err.is_connect() => {
                    (0, None, format!("cannot connect: {}", self.scrub_err(&err)))
                }
                Err(err) => {
                    return Err(ProviderError::Connect {
                        server: format!("{} API", self.provider),
                        detail: self.scrub_err(&err),
                    });
                }
            };
            match self.retry.delay(tries + 1, retry_after, waited) {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    waited += delay;
                }
                None => {
                    return Err(ProviderError::RetriesExhausted {
                        provider: self.provider,
                        tries,
                        status,
                        detail,
                    });
                }
            }
        }
    }

    fn timeout_secs(&self) -> f64 {
        self.timeout.as_secs_f64()
    }

    fn scrub_err(&self, err: &reqwest::Error) -> String {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        crate::mask_credentials(&self.secret.scrub(&text))
    }

    /// The start of an error body, with the secret scrubbed.
    pub fn detail(&self, body: &[u8]) -> String {
        let text = crate::mask_credentials(&self.secret.scrub(&String::from_utf8_lossy(body)));
        // Masked before it is cut: a secret cut in two would no longer match.
        text.trim().chars().take(DETAIL_MAX).collect()
    }

    /// Turn a non-2xx reply into an error (401, 403, 404 with `what`, others with the API's text).
    pub fn check(&self, reply: Reply, what: &str) -> Result<Reply, ProviderError> {
        reply.check(self, what)
    }
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, ProviderError> {
        if self.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| ProviderError::BadReply {
            server: format!("{} API", self.provider),
            detail: format!("the body is not JSON: {e}"),
        })
    }

    fn check(self, http: &Http, what: &str) -> Result<Reply, ProviderError> {
        if self.ok() {
            return Ok(self);
        }
        let detail = http.detail(&self.body);
        Err(match self.status {
            401 => ProviderError::Unauthorized {
                provider: self.provider,
                what: credential(self.provider),
            },
            403 => ProviderError::Forbidden {
                provider: self.provider,
                detail,
            },
            404 => ProviderError::NotFound {
                provider: self.provider,
                what: what.to_owned(),
            },
            status => ProviderError::Rejected {
                provider: self.provider,
                status,
                detail,
            },
        })
    }
}

/// The credential a provider uses, for messages.
fn credential(provider: &str) -> &'static str {
    match provider {
        "powerdns" => "the API key (api-key-file / api-key-env)",
        _ => "the API token (token-file / token-env)",
    }
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// Percent-encode a query or path component (unreserved characters kept).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of `rel="next"` in a `Link` header, if any.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header() {
        let link = "<https://desec.io/api/v1/domains/x/rrsets/?cursor=>; rel=\"first\", <https://desec.io/api/v1/domains/x/rrsets/?cursor=abc>; rel=\"next\"";
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://desec.io/api/v1/domains/x/rrsets/?cursor=abc")
        );
        assert_eq!(next_link("<a>; rel=\"first\""), None);
        assert_eq!(encode("_25._tcp.a b"), "_25._tcp.a%20b");
    }
}
