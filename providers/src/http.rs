//! The HTTP client the API providers share: one credential header (marked sensitive), JSON
//! bodies, a per-request timeout, and retries of 429 and 5xx answers by [`RetryPolicy`].
//!
//! Answers are returned with their status; `Reply::check` turns 401, 403, 404 and other
//! refusals into [`ProviderError`]s whose text comes from the API but never holds the secret.
//!
//! A body is read to at most [`MAX_BODY`] bytes: a peer that sends more (or for ever) gets an
//! error, not our memory. A body that cannot be read to its end is an error, never an empty one.
//! A `Retry-After` longer than the retry budget is [`ProviderError::RateLimited`]: the caller keeps
//! its state and tries again on its next run. Writes that rest on a read ([`Http::once`] with a
//! [`Backoff`]) are not resent as they were: the caller reads again before each try.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use crate::retry::parse_retry_after;
use crate::{ProviderError, RetryPolicy, Secret, Settings};

/// How much of an error body goes into a message.
const DETAIL_MAX: usize = 300;
/// The largest body read from an API (the answers read here are one owner name's records or a
/// page of them: kilobytes).
pub const MAX_BODY: usize = 4 << 20;

/// An API client.
#[derive(Debug)]
pub struct Http {
    client: reqwest::Client,
    provider: &'static str,
    /// The credential header sent with each request; `None` for APIs whose requests are each
    /// signed ([`Http::send_signed`]).
    credential: Option<(HeaderName, HeaderValue)>,
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
    /// The `name=value` of the first `Set-Cookie` header (a session), when present.
    pub cookie: Option<String>,
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
        let mut value =
            HeaderValue::from_str(&format!("{prefix}{}", secret.expose())).map_err(|_| {
                ProviderError::Key(format!(
                    "{provider}: the credential holds characters an HTTP header cannot carry"
                ))
            })?;
        value.set_sensitive(true);
        let mut http = Http::signed(provider, secret, settings)?;
        http.credential = Some((HeaderName::from_static(header), value));
        Ok(http)
    }

    /// A client without a fixed credential header: each request is signed by the caller
    /// ([`Http::send_signed`]). `secret` is what messages are scrubbed of.
    pub fn signed(
        provider: &'static str,
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
        Ok(Http {
            client,
            provider,
            credential: None,
            secret,
            retry: settings.retry,
            timeout: settings.timeout,
        })
    }

    /// Send a request whose headers `sign` computes for each try (a signature covers the time,
    /// so a retry is signed again), retrying 429, 5xx and lost connections.
    pub async fn send_signed<F>(
        &self,
        method: Method,
        url: &str,
        body: &[u8],
        content_type: &str,
        sign: F,
    ) -> Result<Reply, ProviderError>
    where
        F: Fn(&Method, &str, &[u8]) -> Result<Vec<(HeaderName, HeaderValue)>, ProviderError>,
    {
        let mut backoff = self.backoff();
        loop {
            let headers = sign(&method, url, body)?;
            match self
                .once_signed(method.clone(), url, body, content_type, headers)
                .await?
            {
                Attempt::Done(reply) => return Ok(reply),
                Attempt::Transient(t) => backoff.wait(t).await?,
            }
        }
    }

    /// Send a signed request once (see [`Http::once`]); `headers` are its signature headers.
    pub async fn once_signed(
        &self,
        method: Method,
        url: &str,
        body: &[u8],
        content_type: &str,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Attempt, ProviderError> {
        let mut request = self.client.request(method, url);
        for (name, mut value) in headers {
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request
                .header("content-type", content_type)
                .body(body.to_vec());
        }
        self.exchange(request).await
    }

    /// Send a request, retrying 429, 5xx and lost connections; the last answer otherwise.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, ProviderError> {
        let mut backoff = self.backoff();
        loop {
            match self.once(method.clone(), url, body).await? {
                Attempt::Done(reply) => return Ok(reply),
                Attempt::Transient(t) => backoff.wait(t).await?,
            }
        }
    }

    /// The retry state for a sequence of [`Http::once`] tries.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            provider: self.provider,
            retry: self.retry,
            tries: 0,
            waited: Duration::ZERO,
        }
    }

    /// Send a request once: the answer, or a failure worth another try (429, 5xx, a lost
    /// connection, a timeout).
    pub async fn once(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Attempt, ProviderError> {
        let mut request = self
            .client
            .request(method, url)
            .header("accept", "application/json");
        if let Some((name, value)) = &self.credential {
            request = request.header(name.clone(), value.clone());
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        self.exchange(request).await
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Attempt, ProviderError> {
        match request.send().await {
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
                let cookie = response
                    .headers()
                    .get("set-cookie")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split(';').next())
                    .map(|v| v.trim().to_owned());
                let body = self.read_body(response).await?;
                if !retryable(status) {
                    return Ok(Attempt::Done(Reply {
                        status: status.as_u16(),
                        link,
                        cookie,
                        body,
                        provider: self.provider,
                    }));
                }
                Ok(Attempt::Transient(Transient {
                    status: status.as_u16(),
                    retry_after,
                    detail: self.detail(&body),
                }))
            }
            Err(err) if err.is_timeout() => Ok(Attempt::Transient(Transient {
                status: 0,
                retry_after: None,
                detail: format!("no answer within {}s", self.timeout_secs()),
            })),
            Err(err) if err.is_connect() => Ok(Attempt::Transient(Transient {
                status: 0,
                retry_after: None,
                detail: format!("cannot connect: {}", self.scrub_err(&err)),
            })),
            Err(err) => Err(ProviderError::Connect {
                server: format!("{} API", self.provider),
                detail: self.scrub_err(&err),
            }),
        }
    }

    /// The body, to at most [`MAX_BODY`] bytes; an error when it is longer or cut off.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
        let too_long = || ProviderError::BadReply {
            server: format!("{} API", self.provider),
            detail: format!("the body is longer than {} MiB; not read", MAX_BODY >> 20),
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(too_long());
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(too_long());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(err) => {
                    return Err(ProviderError::BadReply {
                        server: format!("{} API", self.provider),
                        detail: format!(
                            "the body could not be read to its end ({} bytes read): {}",
                            body.len(),
                            self.scrub_err(&err)
                        ),
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

/// What one try of a request gave.
#[derive(Debug)]
pub enum Attempt {
    /// A final answer (any status but 429 and 5xx).
    Done(Reply),
    /// A failure worth another try.
    Transient(Transient),
}

/// A 429, a 5xx, a lost connection or a timeout.
#[derive(Debug)]
pub struct Transient {
    status: u16,
    retry_after: Option<Duration>,
    detail: String,
}

impl Transient {
    /// A failure worth another try that the status alone does not show (an API that answers
    /// 400 with a throttling code): `detail` must hold no secret.
    pub fn new(status: u16, retry_after: Option<Duration>, detail: String) -> Transient {
        Transient {
            status,
            retry_after,
            detail,
        }
    }
}

/// The retry state of one request (or of one read-modify-write, whose tries each read again).
#[derive(Debug)]
pub struct Backoff {
    provider: &'static str,
    retry: RetryPolicy,
    tries: u32,
    waited: Duration,
}

impl Backoff {
    /// Wait before the next try, or say why there is none: [`ProviderError::RateLimited`] when
    /// the server asks for a longer pause than the budget holds, else
    /// [`ProviderError::RetriesExhausted`] once the tries or the time are spent.
    pub async fn wait(&mut self, failed: Transient) -> Result<(), ProviderError> {
        self.tries += 1;
        if let Some(after) = failed.retry_after
            && (after > self.retry.max_delay || self.waited + after > self.retry.max_total)
        {
            return Err(ProviderError::RateLimited {
                provider: self.provider,
                retry_after: after,
                detail: failed.detail,
            });
        }
        match self
            .retry
            .delay(self.tries + 1, failed.retry_after, self.waited)
        {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                self.waited += delay;
                Ok(())
            }
            None => Err(ProviderError::RetriesExhausted {
                provider: self.provider,
                tries: self.tries,
                status: failed.status,
                detail: failed.detail,
            }),
        }
    }
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON; an empty body is an error (every body read as JSON carries data the
    /// caller needs: read as nothing, it would look like an empty record set).
    pub fn json(&self) -> Result<serde_json::Value, ProviderError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(self.bad("the body is empty"));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| self.bad(&format!("the body is not JSON: {e}")))
    }

    /// An error naming what is wrong with this reply.
    pub fn bad(&self, detail: &str) -> ProviderError {
        ProviderError::BadReply {
            server: format!("{} API", self.provider),
            detail: detail.to_owned(),
        }
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
        "route53" => "the access key (access-key-id and secret-key-file / secret-key-env)",
        _ => "the API token (token-file / token-env)",
    }
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The API's base URL: `base` when given (a test's fake, another endpoint), else `default`;
/// without a final `/`, so paths are appended as `{base}/…`.
pub(crate) fn base_url(base: Option<&str>, default: &str) -> String {
    base.unwrap_or(default).trim_end_matches('/').to_owned()
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
