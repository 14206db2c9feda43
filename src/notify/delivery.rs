//! What sending an alert gave: per channel, sent or why not ([`ChannelError`]); for one alert,
//! the [`Outcome`] over every channel; and the errors of the notifier itself.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::SecretError;

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
    /// The async runtime for [`super::Notifier::send_blocking`] could not start.
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
