//! `[alerts]`: the repeat interval, the timeout and each channel (mail, webhook, Telegram).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Builder;
use crate::config::alerts::{
    Alerts, Channel, DEFAULT_SENDMAIL, DEFAULT_TELEGRAM_API_URL, EmailChannel, MailVia, WebhookUrl,
};
use crate::config::provider::parse_server;
use crate::config::raw::RawChannel;
use crate::config::source::kpath;

/// The port an SMTP alert server uses when none is given (submission).
const DEFAULT_ALERT_SMTP_PORT: u16 = 587;

impl Builder<'_, '_> {
    pub(super) fn alerts(&mut self, raw: crate::config::raw::RawAlerts) -> Alerts {
        let defaults = Alerts::default();
        let repeat_interval = self.duration(
            kpath!["alerts", "repeat-interval"],
            raw.repeat_interval,
            defaults.repeat_interval,
        );
        let timeout = self.duration(kpath!["alerts", "timeout"], raw.timeout, defaults.timeout);
        let mut channels = BTreeMap::new();
        for (name, raw) in raw.channel {
            let table = kpath!["alerts", "channel", &name];
            self.name(table.clone(), "an alert channel", &name);
            let at = |key: &str| kpath!["alerts", "channel", &name, key];
            let channel = match raw {
                RawChannel::Webhook {
                    url,
                    url_file,
                    url_env,
                } => match (url, url_file.is_some() || url_env.is_some()) {
                    (Some(_), true) => {
                        self.error(table.clone(), "give one of `url`, `url-file` or `url-env`");
                        None
                    }
                    (Some(url), false) => self.url(at("url"), url).map(|url| Channel::Webhook {
                        url: WebhookUrl::Plain(url),
                    }),
                    (None, _) => self
                        .secret(&table, ("url-file", "url-env"), url_file, url_env, true)
                        .map(|s| Channel::Webhook {
                            url: WebhookUrl::Secret(s),
                        }),
                },
                RawChannel::Email {
                    to,
                    from,
                    via,
                    sendmail,
                    smtp_server,
                    credentials_file,
                    credentials_env,
                    tls_ca_file,
                } => {
                    let before = self.errors.len();
                    if to.0.is_empty() {
                        self.error(at("to"), "is empty; give at least one address");
                    }
                    for (j, addr) in to.0.iter().enumerate() {
                        if !addr.contains('@') {
                            self.error(
                                kpath!["alerts", "channel", &name, "to", j],
                                format!("\"{addr}\" is not a mail address"),
                            );
                        }
                    }
                    if !from.contains('@') {
                        self.error(at("from"), format!("\"{from}\" is not a mail address"));
                    }
                    let via = via.unwrap_or_default();
                    let smtp_server = match (via, smtp_server) {
                        (MailVia::Smtp, Some(server)) => {
                            parse_server(&server, DEFAULT_ALERT_SMTP_PORT)
                                .map_err(|message| self.error(at("smtp-server"), message))
                                .ok()
                        }
                        (MailVia::Smtp, None) => {
                            self.error(table.clone(), "has via = \"smtp\" but no `smtp-server`");
                            None
                        }
                        (MailVia::Sendmail, Some(_)) => {
                            self.error(at("smtp-server"), "is used only with via = \"smtp\"");
                            None
                        }
                        (MailVia::Sendmail, None) => None,
                    };
                    let tls_ca_file = match (via, tls_ca_file) {
                        (MailVia::Smtp, Some(path)) => {
                            Some(self.file_path(at("tls-ca-file"), path))
                        }
                        (MailVia::Sendmail, Some(_)) => {
                            self.error(at("tls-ca-file"), "is used only with via = \"smtp\"");
                            None
                        }
                        (_, None) => None,
                    };
                    let sendmail = sendmail
                        .map(|p| self.file_path(at("sendmail"), p))
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_SENDMAIL));
                    let credentials = self.secret(
                        &table,
                        ("credentials-file", "credentials-env"),
                        credentials_file,
                        credentials_env,
                        false,
                    );
                    (self.errors.len() == before).then_some(Channel::Email(EmailChannel {
                        to: to.0,
                        from,
                        via,
                        sendmail,
                        smtp_server,
                        credentials,
                        tls_ca_file,
                    }))
                }
                RawChannel::Telegram {
                    token_file,
                    token_env,
                    chat_id,
                    api_url,
                } => {
                    if chat_id.0.trim().is_empty() {
                        self.error(at("chat-id"), "is empty");
                    }
                    let api_url = match api_url {
                        Some(url) => self
                            .url(at("api-url"), url)
                            .map(|url| url.trim_end_matches('/').to_owned()),
                        None => Some(DEFAULT_TELEGRAM_API_URL.to_owned()),
                    };
                    let token = self.token(&table, token_file, token_env);
                    match (token, api_url) {
                        (Some(token), Some(api_url)) => Some(Channel::Telegram {
                            token,
                            chat_id: chat_id.0,
                            api_url,
                        }),
                        _ => None,
                    }
                }
            };
            if let Some(channel) = channel {
                channels.insert(name, channel);
            }
        }
        Alerts {
            repeat_interval,
            timeout,
            channels,
        }
    }
}
