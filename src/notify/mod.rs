//! Alerts: telling a postmaster that a check went bad, stays bad, or is ok again.
//!
//! - [`alert`]: the [`Alert`] (check id, subject, severity, summary, detail, time) and its
//!   renderings, with the wording for the failures that stop mail;
//! - [`policy`]: when to send (pure): fire on a change into a bad state, repeat once per
//!   `repeat-interval` while it holds, a recovery message when it is over;
//! - [`store`]: the policy's memory in the SQLite store (`alert_state`);
//! - [`webhook`], [`email`], [`telegram`]: one module per channel kind; [`reply`] reads a
//!   peer's HTTP reply with a size limit;
//! - [`Notifier`]: sends one alert to every configured channel and reports per channel; one
//!   failing channel does not stop the others.
//!
//! Secrets (a webhook URL read from a secret, a bot token, SMTP credentials) are read when an alert
//! is sent and never appear in an error: channels are named by their configuration name and kind,
//! a webhook by its scheme and host only, Telegram by its API origin. Errors of the HTTP and mail
//! libraries are rendered without their URL and then scrubbed of every secret value
//! ([`scrub`]), because their text is not ours to trust.

pub mod alert;
pub mod email;
pub mod policy;
pub mod reply;
pub mod store;
pub mod telegram;
pub mod webhook;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Alerts, Channel, SecretError};

pub use alert::{Alert, Severity, check_id, rfc3339};
pub use policy::{AlertMemory, AlertState, Decision, MemoryAlerts, Notice, decide, retire};

/// The `User-Agent` of webhook and Telegram requests.
pub const USER_AGENT: &str = concat!("dane-roll/", env!("CARGO_PKG_VERSION"));

/// What a channel acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sent {
    /// The webhook answered with this 2xx status.
    Http {
        /// The HTTP status.
        status: u16,
    },
    /// The mail was accepted by sendmail or the SMTP server.
    Mail {
        /// The `Message-ID` it carries (without angle brackets), to find it in the mail logs.
        message_id: String,
    },
    /// Telegram accepted the message.
    Telegram {
        /// The message id Telegram gave, if it said.
        message_id: Option<i64>,
    },
}

/// Why one channel could not deliver one alert. The text never holds a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A secret could not be read.
    #[error("cannot read the {what} ({source}); fix the file or variable the configuration names")]
    Secret {
        /// Which secret (`bot token`, `webhook URL`, `SMTP credentials`).
        what: &'static str,
        /// Why.
        source: SecretError,
    },
    /// A secret was read but has the wrong form.
    #[error("the {what} is malformed: {problem}")]
    BadSecret {
        /// Which secret.
        what: &'static str,
        /// What is wrong with it (never the value).
        problem: &'static str,
    },
    /// No answer within the configured time.
    #[error(
        "{target} did not answer within {} s; check that it is reachable from this host \
         (or raise [alerts] timeout)",
        after.as_secs_f64()
    )]
    Timeout {
        /// The server (scheme and host, or host and port).
        target: String,
        /// The timeout.
        after: Duration,
    },
    /// No connection could be made.
    #[error("cannot connect to {target}: {reason}; check the address, DNS, firewall and TLS")]
    Connect {
        /// The server.
        target: String,
        /// What the connection library said (URL removed, secrets masked).
        reason: String,
    },
    /// The HTTP server answered with a status that is not 2xx.
    #[error("{target} answered HTTP {status}{}; {hint}", colon(message))]
    HttpStatus {
        /// The server.
        target: String,
        /// The status code.
        status: u16,
        /// What the server said (its error description, shortened, secrets masked).
        message: String,
        /// What to do.
        hint: String,
    },
    /// The reply was larger than anything an honest peer sends; it was not read further.
    #[error(
        "{target} sent a reply larger than {} MiB; it was not read further (check that the URL \
         is the receiver's)",
        limit >> 20
    )]
    ReplyTooLarge {
        /// The server.
        target: String,
        /// The limit, bytes.
        limit: usize,
    },
    /// Another HTTP failure (a reply that could not be read).
    #[error("request to {target} failed: {reason}")]
    Request {
        /// The server.
        target: String,
        /// What the HTTP library said (URL removed, secrets masked).
        reason: String,
    },
    /// A mail address in the configuration cannot be used.
    #[error("`{key}` address \"{address}\" cannot be used: {reason}")]
    Address {
        /// `from` or `to`.
        key: &'static str,
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The mail could not be put together.
    #[error("cannot build the mail: {reason}")]
    Message {
        /// Why.
        reason: String,
    },
    /// The `tls-ca-file` could not be used.
    #[error("cannot use tls-ca-file {}: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The SMTP server refused the mail or the session failed.
    #[error("SMTP server {server}: {reason}; {hint}")]
    Smtp {
        /// `host:port`.
        server: String,
        /// What happened (secrets masked).
        reason: String,
        /// What to do.
        hint: &'static str,
    },
    /// The sendmail program failed.
    #[error(
        "{} failed: {reason}; check that it is the MTA's sendmail and that the MTA accepts mail \
         for the recipients",
        program.display()
    )]
    Sendmail {
        /// The program.
        program: PathBuf,
        /// Why (its error output, secrets masked).
        reason: String,
    },
}

fn colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" ({message})")
    }
}

/// The outcome of one alert on one channel.
#[derive(Debug)]
pub struct Outcome {
    /// The channel's name in the configuration.
    pub channel: String,
    /// Its kind (`webhook`, `email`, `telegram`).
    pub kind: &'static str,
    /// What happened.
    pub result: Result<Sent, ChannelError>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(_) => write!(
                f,
                "alert channel \"{}\" ({}): sent",
                self.channel, self.kind
            ),
            Err(err) => write!(
                f,
                "alert channel \"{}\" ({}) failed: {err}",
                self.channel, self.kind
            ),
        }
    }
}

/// The outcomes of one alert on every channel, in configuration order.
#[derive(Debug, Default)]
pub struct Delivery {
    /// One per channel.
    pub outcomes: Vec<Outcome>,
}

impl Delivery {
    /// Whether at least one channel took the alert (then it counts as sent for the policy).
    pub fn delivered(&self) -> bool {
        self.outcomes.iter().any(|o| o.result.is_ok())
    }

    /// The channels that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| o.result.is_err())
    }

    /// `Ok` with what each channel acknowledged when all took it; otherwise every failure.
    pub fn into_result(self) -> Result<Vec<(String, Sent)>, NotifyError> {
        let total = self.outcomes.len();
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        for o in self.outcomes {
            match o.result {
                Ok(s) => sent.push((o.channel, s)),
                Err(error) => failed.push(ChannelFailure {
                    channel: o.channel,
                    kind: o.kind,
                    error,
                }),
            }
        }
        if failed.is_empty() {
            Ok(sent)
        } else {
            Err(NotifyError::Channels { total, failed })
        }
    }
}

/// One channel that failed, named.
#[derive(Debug)]
pub struct ChannelFailure {
    /// The channel's name.
    pub channel: String,
    /// Its kind.
    pub kind: &'static str,
    /// Why.
    pub error: ChannelError,
}

impl fmt::Display for ChannelFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "alert channel \"{}\" ({}): {}",
            self.channel, self.kind, self.error
        )
    }
}

/// Why alerts could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Some channels failed (the others, if any, delivered).
    #[error("{} of {total} alert channels failed: {}", failed.len(), list(failed))]
    Channels {
        /// How many channels there are.
        total: usize,
        /// The ones that failed.
        failed: Vec<ChannelFailure>,
    },
    /// The HTTP client could not be set up (TLS library initialisation).
    #[error("cannot set up the HTTP client for alerts: {reason}")]
    HttpClient {
        /// Why.
        reason: String,
    },
    /// The async runtime for [`Notifier::send_blocking`] could not start.
    #[error("cannot start the async runtime for alerts: {0}")]
    Runtime(#[source] std::io::Error),
}

fn list(failed: &[ChannelFailure]) -> String {
    failed
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One configured channel, ready to send.
#[derive(Debug)]
enum Sender {
    Webhook(webhook::Webhook),
    Email(email::Email),
    Telegram(telegram::Telegram),
}

impl Sender {
    fn kind(&self) -> &'static str {
        match self {
            Sender::Webhook(_) => "webhook",
            Sender::Email(_) => "email",
            Sender::Telegram(_) => "telegram",
        }
    }

    async fn send(&self, alert: &Alert) -> Result<Sent, ChannelError> {
        match self {
            Sender::Webhook(w) => w.send(alert).await,
            Sender::Email(e) => e.send(alert).await,
            Sender::Telegram(t) => t.send(alert).await,
        }
    }
}

/// Sends alerts to every configured channel.
#[derive(Debug)]
pub struct Notifier {
    channels: Vec<(String, Sender)>,
    repeat_interval: Duration,
}

impl Notifier {
    /// Set up every channel of `[alerts]`. Reads no secret yet: they are read at each send, so a
    /// rotated token is picked up and a missing one fails only its channel.
    pub fn new(alerts: &Alerts) -> Result<Notifier, NotifyError> {
        let needs_http = alerts
            .channels
            .values()
            .any(|c| matches!(c, Channel::Webhook { .. } | Channel::Telegram { .. }));
        let http = if needs_http {
            Some(http_client(alerts.timeout)?)
        } else {
            None
        };
        let mut channels = Vec::new();
        for (name, channel) in &alerts.channels {
            let t = alerts.timeout;
            let sender = match &http {
                Some(client) => webhook::Webhook::from_channel(channel, client.clone(), t)
                    .map(Sender::Webhook)
                    .or_else(|| {
                        telegram::Telegram::from_channel(channel, client.clone(), t)
                            .map(Sender::Telegram)
                    }),
                None => None,
            }
            .or_else(|| email::Email::from_channel(channel, t).map(Sender::Email));
            // A channel kind this build cannot send to is skipped.
            if let Some(sender) = sender {
                channels.push((name.clone(), sender));
            }
        }
        Ok(Notifier {
            channels,
            repeat_interval: alerts.repeat_interval,
        })
    }

    /// The channels, as `(name, kind)`, in configuration order.
    pub fn channels(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.channels.iter().map(|(n, s)| (n.as_str(), s.kind()))
    }

    /// Send `alert` to every channel, one after the other (each bounded by `[alerts] timeout`).
    pub async fn send(&self, alert: &Alert) -> Delivery {
        let mut outcomes = Vec::with_capacity(self.channels.len());
        for (name, sender) in &self.channels {
            outcomes.push(Outcome {
                channel: name.clone(),
                kind: sender.kind(),
                result: sender.send(alert).await,
            });
        }
        Delivery { outcomes }
    }

    /// [`Notifier::send`] for callers without a runtime: runs one on this thread.
    pub fn send_blocking(&self, alert: &Alert) -> Result<Delivery, NotifyError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NotifyError::Runtime)?;
        Ok(runtime.block_on(self.send(alert)))
    }

    /// Apply the firing policy to a new observation: look up the check's state in `memory`,
    /// send what [`decide`] says (an alert, a repeat or a recovery message), and store the new
    /// state. Returns the delivery when something was sent. The observation's time is "now".
    pub async fn observe<M: AlertMemory>(
        &self,
        memory: &mut M,
        alert: &Alert,
    ) -> Result<Option<Delivery>, M::Error> {
        let before = memory.get(&alert.check)?;
        let decision = decide(
            before.as_ref(),
            alert.severity,
            alert.time,
            self.repeat_interval,
        );
        let Some(notice) = decision.notice else {
            memory.put(&alert.check, decision.state_after(true))?;
            return Ok(None);
        };
        let message = message_for(alert, notice);
        let delivery = self.send(&message).await;
        memory.put(&alert.check, decision.state_after(delivery.delivered()))?;
        Ok(Some(delivery))
    }
}

impl Notifier {
    /// A check that is no longer made (`why`: what vanished, in words): when its stored state
    /// is bad, send its recovery, marked as "no longer checked", and forget the state once a
    /// channel took it (or there is no channel to tell); an ok state is forgotten at once.
    /// Returns the delivery when something was sent. See [`policy::retire`].
    pub async fn retire<M: AlertMemory>(
        &self,
        memory: &mut M,
        check: &str,
        subject: &str,
        why: &str,
        now: std::time::SystemTime,
    ) -> Result<Option<Delivery>, M::Error> {
        let Some(before) = memory.get(check)? else {
            return Ok(None);
        };
        let decision = retire(&before);
        let Some(Notice::Recovered { was, since }) = decision.notice else {
            memory.forget(check)?;
            return Ok(None);
        };
        let mut message = Alert::new(
            check,
            subject,
            Severity::Ok,
            format!("no longer checked: {why}"),
            format!(
                "{why}.\nThe check {check} was {was} since {}; it is no longer made, so this \
                 alert is closed. If the target should still be watched, add it back to the \
                 configuration (or the MX RRset) and the check resumes.",
                rfc3339(since)
            ),
        )
        .at(now);
        message.recovered = true;
        let delivery = self.send(&message).await;
        if delivery.delivered() || self.channels.is_empty() {
            memory.forget(check)?;
        } else {
            memory.put(check, decision.state_after(false))?;
        }
        Ok(Some(delivery))
    }
}

/// The alert to send for a notice: the observation itself, marked and annotated.
fn message_for(alert: &Alert, notice: Notice) -> Alert {
    let mut message = alert.clone();
    match notice {
        Notice::Fired { from: Some(from) } if from.is_bad() => {
            message.detail = format!("{}\n(It was {from} before.)", message.detail.trim_end());
        }
        Notice::Fired { .. } => {}
        Notice::Repeat { since } => {
            message.summary = format!("still {}: {}", alert.severity, alert.summary);
            message.detail = format!(
                "{}\n(This holds since {}; repeated every [alerts] repeat-interval.)",
                message.detail.trim_end(),
                rfc3339(since)
            );
        }
        Notice::Recovered { was, since } => {
            message.recovered = true;
            let note = format!("It was {was} since {}. Nothing to do.", rfc3339(since));
            message.detail = if message.detail.trim().is_empty() {
                note
            } else {
                format!("{}\n{note}", message.detail.trim_end())
            };
        }
    }
    message
}

/// The HTTP client shared by webhooks and Telegram: a timeout, no redirects (a redirect is an
/// error to fix, and must not carry a token elsewhere), our User-Agent.
fn http_client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| NotifyError::HttpClient {
            reason: error_chain(&e.without_url()),
        })
}

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

/// An error and its causes, `a: b: c`, skipping a cause whose text its parent already holds
/// and a part that repeats the one before (`Connection error: Connection error: …`).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
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

    #[test]
    fn messages_for_notices() {
        let alert = Alert::new("c", "s", Severity::Critical, "broken", "detail");
        let repeat = message_for(
            &alert,
            Notice::Repeat {
                since: std::time::UNIX_EPOCH,
            },
        );
        assert_eq!(repeat.summary, "still critical: broken");
        assert!(repeat.detail.contains("since 1970-01-01T00:00:00Z"));
        let ok = Alert::new("c", "s", Severity::Ok, "records match", "");
        let rec = message_for(
            &ok,
            Notice::Recovered {
                was: Severity::Critical,
                since: std::time::UNIX_EPOCH,
            },
        );
        assert!(rec.recovered && rec.title().contains("RECOVERED"));
        assert!(rec.detail.starts_with("It was critical since"));
    }
}
