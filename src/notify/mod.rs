//! Alerts: telling a postmaster that a check went bad, stays bad, or is ok again.
//!
//! - [`alert`]: the [`Alert`] (check id, subject, severity, summary, detail, time) and its
//!   renderings, with the wording for the failures that stop mail;
//! - [`policy`]: when to send (pure): fire on a change into a bad state, repeat once per
//!   `repeat-interval` while it holds, a recovery message when it is over;
//! - [`store`]: the policy's memory in the SQLite store (`alert_state`);
//! - [`webhook`], [`email`], [`telegram`]: one module per channel kind; [`reply`] reads a
//!   peer's HTTP reply with a size limit;
//! - [`Notifier`]: sends one alert to every configured channel and reports per channel ([`Outcome`],
//!   in `delivery.rs`); one failing channel does not stop the others.
//!
//! Secrets (a webhook URL read from a secret, a bot token, SMTP credentials) are read when an alert
//! is sent and never appear in an error: channels are named by their configuration name and kind,
//! a webhook by its scheme and host only, Telegram by its API origin. Errors of the HTTP and mail
//! libraries are rendered without their URL and then scrubbed of every secret value
//! ([`scrub`], in `redact.rs`), because their text is not ours to trust.

pub mod alert;
mod delivery;
pub mod email;
pub mod policy;
mod redact;
pub mod reply;
pub mod store;
pub mod telegram;
pub mod webhook;

use std::time::Duration;

use crate::config::{Alerts, Channel};

pub use alert::{Alert, Severity, check_id, rfc3339};
pub use delivery::{ChannelError, ChannelFailure, Delivery, NotifyError, Outcome, Sent};
pub use policy::{AlertMemory, AlertState, Decision, MemoryAlerts, Notice, decide, retire};
pub use redact::{MASK, scrub, url_origin};
pub(crate) use redact::{error_chain, error_with_causes, excerpt, http_exchange};

/// The `User-Agent` of webhook and Telegram requests.
pub const USER_AGENT: &str = concat!("dane-roll/", env!("CARGO_PKG_VERSION"));

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

#[cfg(test)]
mod tests {
    use super::*;

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
