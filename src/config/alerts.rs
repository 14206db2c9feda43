//! Alert channels and the monitoring thresholds (`[alerts]`, `[check]`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Secret;

/// How often an alert that still holds is sent again.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// How long one alert may take to reach one channel (connect, TLS, answer).
pub(super) const DEFAULT_ALERT_TIMEOUT: Duration = Duration::from_secs(30);

/// The Telegram Bot API base URL.
pub(super) const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// The program that hands mail to the local MTA.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// Warn when the TLSA RRset's signatures expire within this many days.
pub const DEFAULT_RRSIG_WARN_DAYS: u32 = 5;

/// Warn when a certificate expires within this many days (a warning only for DANE-EE).
pub const DEFAULT_CERT_WARN_DAYS: u32 = 14;

/// How many records one owner name may hold before they count as piling up.
pub const DEFAULT_MAX_RECORDS: usize = 4;

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alerts {
    /// How often an alert that still holds is sent again.
    pub repeat_interval: Duration,
    /// How long one alert may take to reach one channel.
    pub timeout: Duration,
    /// The channels, by name.
    pub channels: BTreeMap<String, Channel>,
}

impl Default for Alerts {
    fn default() -> Alerts {
        Alerts {
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            timeout: DEFAULT_ALERT_TIMEOUT,
            channels: BTreeMap::new(),
        }
    }
}

/// Where an alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Channel {
    /// An HTTP POST of a JSON body.
    Webhook {
        /// The URL: written out, or a secret when it holds a token (Slack-style URLs).
        url: WebhookUrl,
    },
    /// A mail.
    Email(EmailChannel),
    /// A Telegram bot message.
    Telegram {
        /// The bot token.
        token: Secret,
        /// The chat to post to.
        chat_id: String,
        /// The Bot API base URL, without a trailing `/`.
        api_url: String,
    },
}

impl Channel {
    /// The `kind` as written in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Webhook { .. } => "webhook",
            Channel::Email(_) => "email",
            Channel::Telegram { .. } => "telegram",
        }
    }

    /// The secrets this channel reads, each with the configuration key that names it.
    pub fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        match self {
            Channel::Webhook {
                url: WebhookUrl::Secret(secret),
            } => vec![(super::provider::secret_key("url", secret), secret)],
            Channel::Email(EmailChannel {
                credentials: Some(secret),
                ..
            }) => vec![(super::provider::secret_key("credentials", secret), secret)],
            Channel::Telegram { token, .. } => {
                vec![(super::provider::secret_key("token", token), token)]
            }
            _ => Vec::new(),
        }
    }
}

/// A `kind = "email"` channel: where the mail goes and how it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChannel {
    /// The recipients.
    pub to: Vec<String>,
    /// The sender address.
    pub from: String,
    /// How the mail leaves.
    pub via: MailVia,
    /// The sendmail program (for `via = "sendmail"`).
    pub sendmail: PathBuf,
    /// The SMTP server, `host:port` (for `via = "smtp"`).
    pub smtp_server: Option<super::ServerAddr>,
    /// `user:password` for SMTP AUTH, when needed.
    pub credentials: Option<Secret>,
    /// Extra CA certificates (PEM) trusted for the SMTP server's STARTTLS certificate, beside
    /// the system's (for a private CA).
    pub tls_ca_file: Option<PathBuf>,
}

/// A webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookUrl {
    /// Written in the configuration (`url`).
    Plain(String),
    /// Read from a file or the environment (`url-file`, `url-env`), for URLs that carry a token.
    Secret(Secret),
}

/// How an email alert leaves the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailVia {
    /// The local sendmail program.
    #[default]
    Sendmail,
    /// An SMTP server.
    Smtp,
}

impl fmt::Display for MailVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MailVia::Sendmail => "sendmail",
            MailVia::Smtp => "smtp",
        })
    }
}

/// `[check]`: thresholds for monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSettings {
    /// Warn when the TLSA RRset's signatures expire within this many days.
    pub rrsig_warn_days: u32,
    /// Warn when a certificate expires within this many days.
    pub cert_warn_days: u32,
    /// The record-count bound per owner name; also each service's default `max-records`.
    pub max_records: usize,
}

impl Default for CheckSettings {
    fn default() -> CheckSettings {
        CheckSettings {
            rrsig_warn_days: DEFAULT_RRSIG_WARN_DAYS,
            cert_warn_days: DEFAULT_CERT_WARN_DAYS,
            max_records: DEFAULT_MAX_RECORDS,
        }
    }
}
