//! The webhook channel: the alert as JSON, POSTed to a URL.
//!
//! The body is [`Alert::json`]:
//! `{"check","subject","severity","summary","detail","time","recovered"}` with
//! `Content-Type: application/json`. Any 2xx status is success; every other status, a redirect
//! included, is an error. A 2xx reply's body is not read; an error's is read up to
//! [`super::reply::MAX_REPLY_BYTES`] and quoted shortened. The URL's path and query may carry a token (Slack-style URLs), so only
//! its scheme and host are ever shown, and both the URL and its path are masked in error text.

use std::time::Duration;

use crate::config::{Channel, WebhookUrl};

use super::reply::{MAX_REPLY_BYTES, read_capped};
use super::{Alert, ChannelError, Sent, excerpt, http_exchange, url_origin};

/// One webhook channel. Its `Debug` shows only where the URL comes from and its origin.
#[derive(Clone)]
pub struct Webhook {
    url: WebhookUrl,
    client: reqwest::Client,
    timeout: Duration,
}

impl Webhook {
    /// A webhook posting to `url` through `client`, each alert bounded by `timeout`.
    pub fn new(url: WebhookUrl, client: reqwest::Client, timeout: Duration) -> Webhook {
        Webhook {
            url,
            client,
            timeout,
        }
    }

    /// The webhook of a `kind = "webhook"` channel; `None` for other kinds.
    pub fn from_channel(
        channel: &Channel,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Option<Webhook> {
        match channel {
            Channel::Webhook { url } => Some(Webhook::new(url.clone(), client, timeout)),
            _ => None,
        }
    }

    /// POST the alert.
    pub async fn send(&self, alert: &Alert) -> Result<Sent, ChannelError> {
        let secret_value;
        let url: &str = match &self.url {
            WebhookUrl::Plain(url) => url,
            WebhookUrl::Secret(secret) => {
                secret_value = secret.read().map_err(|source| ChannelError::Secret {
                    what: "webhook URL",
                    source,
                })?;
                secret_value.expose()
            }
        };
        let target = url_origin(url);
        // The whole URL and the part after the origin are what must never be shown.
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let userinfo = authority.rsplit_once('@').map(|(u, _)| u);
        let tail = rest.get(authority.len()..).unwrap_or("");
        let tail = if tail.len() > 1 { tail } else { "" };
        // And each part of it that may be a token on its own (a receiver that quotes only the
        // token back must not show it either).
        let mut secrets = vec![url, tail];
        secrets.extend(token_parts(tail));
        // Basic auth in the URL goes out as `Authorization: Basic base64(user:password)`: the
        // password and that header value are secrets too.
        let basic = userinfo.map(|u| openssl::base64::encode_block(u.as_bytes()));
        if let Some(userinfo) = userinfo {
            secrets.push(userinfo);
            if let Some((_, password)) = userinfo.split_once(':') {
                secrets.push(password);
            }
        }
        if let Some(basic) = &basic {
            secrets.push(basic);
        }

        let exchange = async {
            let response = self.client.post(url).json(&alert.json()).send().await?;
            let status = response.status();
            // A 2xx says it all: the body is not read (dropping it closes the connection). An
            // error's body is quoted, so its start is read, never past the limit.
            if status.is_success() {
                return Ok((status, String::new()));
            }
            let body = read_capped(response, MAX_REPLY_BYTES)
                .await
                .map(|r| r.text())
                .unwrap_or_default();
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = http_exchange(exchange, &target, self.timeout, &secrets).await?;
        if status.is_success() {
            return Ok(Sent::Http {
                status: status.as_u16(),
            });
        }
        Err(ChannelError::HttpStatus {
            target,
            status: status.as_u16(),
            // Masked before it is cut: a secret cut in two would no longer match.
            message: excerpt(&super::scrub(&body, &secrets), 200),
            hint: hint(status.as_u16()).to_owned(),
        })
    }
}

/// The parts of a URL's path and query that may be tokens: every segment between `/`, `?`,
/// `&`, `=` and `#` of at least 8 characters (`/services/T000/B000/XXXX`, `?token=XXXX`).
fn token_parts(tail: &str) -> impl Iterator<Item = &str> {
    tail.split(['/', '?', '&', '=', '#'])
        .filter(|part| part.chars().count() >= 8)
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match &self.url {
            WebhookUrl::Plain(url) => url_origin(url),
            WebhookUrl::Secret(secret) => format!("from {secret}"),
        };
        f.debug_struct("Webhook")
            .field("url", &url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What to do about a webhook's status.
fn hint(status: u16) -> &'static str {
    match status {
        300..=399 => "the URL redirects; configure the final URL",
        401 | 403 => "the receiver refused the request; check the token in the URL",
        404 | 410 => "the receiver has no such hook; check the URL's path",
        413 => "the receiver refused the body size; check its limits",
        429 => "the receiver asks to slow down; the alert is retried at the next check",
        500..=599 => "the receiver failed; check its logs, the alert is retried at the next check",
        _ => "check the receiver's logs and the URL",
    }
}
