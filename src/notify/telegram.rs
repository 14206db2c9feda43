//! The Telegram channel: a bot posts the alert to a chat.
//!
//! `POST {api-url}/bot<token>/sendMessage` with a JSON body `{"chat_id", "text",
//! "disable_web_page_preview": true}`; the text is plain (no parse mode, so nothing needs
//! escaping) and cut to Telegram's 4096 characters. The bot token is part of the URL, so the URL is
//! never shown: errors name the API origin only, and every error text is scrubbed of the token.
//! Telegram's own error `description` is quoted, with a hint for the usual causes. The reply is
//! read up to [`super::reply::MAX_REPLY_BYTES`]; a longer one is an error.

use std::time::Duration;

use crate::config::{Channel, Secret};

use super::reply::{MAX_REPLY_BYTES, read_capped};
use super::{Alert, ChannelError, Sent, excerpt, http_exchange, scrub, url_origin};

/// The longest text `sendMessage` takes, in characters.
pub const MAX_TEXT: usize = 4096;

/// One Telegram channel.
#[derive(Debug, Clone)]
pub struct Telegram {
    token: Secret,
    chat_id: String,
    api_url: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl Telegram {
    /// The channel of a `kind = "telegram"` configuration; `None` for other kinds.
    pub fn from_channel(
        channel: &Channel,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Option<Telegram> {
        match channel {
            Channel::Telegram {
                token,
                chat_id,
                api_url,
            } => Some(Telegram {
                token: token.clone(),
                chat_id: chat_id.clone(),
                api_url: api_url.trim_end_matches('/').to_owned(),
                client,
                timeout,
            }),
            _ => None,
        }
    }

    /// Post the alert.
    pub async fn send(&self, alert: &Alert) -> Result<Sent, ChannelError> {
        let token = self.token.read().map_err(|source| ChannelError::Secret {
            what: "bot token",
            source,
        })?;
        let token = token.expose();
        if token.contains(['/', '?', '#', '%']) || token.contains(char::is_whitespace) {
            return Err(ChannelError::BadSecret {
                what: "bot token",
                problem: "holds a character a bot token never has (/ ? # % or white space)",
            });
        }
        let target = url_origin(&self.api_url);
        let secrets = [token];
        let url = format!("{}/bot{token}/sendMessage", self.api_url);
        // Integer chat ids go as numbers, "@channel" names as strings.
        let chat_id = match self.chat_id.parse::<i64>() {
            Ok(n) => serde_json::Value::from(n),
            Err(_) => serde_json::Value::from(self.chat_id.as_str()),
        };
        let text: String = alert.text().chars().take(MAX_TEXT).collect();
        let body = serde_json::json!({
            "chat_id": chat_id,
            "text": text,
            "disable_web_page_preview": true,
        });

        let exchange = async {
            let response = self.client.post(&url).json(&body).send().await?;
            let status = response.status();
            let reply = read_capped(response, MAX_REPLY_BYTES).await?;
            Ok::<_, reqwest::Error>((status, reply))
        };
        let (status, reply) = http_exchange(exchange, &target, self.timeout, &secrets).await?;
        if reply.truncated {
            return Err(ChannelError::ReplyTooLarge {
                target,
                limit: MAX_REPLY_BYTES,
            });
        }
        let reply = reply.text();
        let json: serde_json::Value = serde_json::from_str(&reply).unwrap_or_default();
        let ok = json["ok"].as_bool().unwrap_or(false);
        if status.is_success() && ok {
            return Ok(Sent::Telegram {
                message_id: json["result"]["message_id"].as_i64(),
            });
        }
        let description = json["description"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| excerpt(&reply, 200));
        let retry_after = json["parameters"]["retry_after"].as_u64();
        Err(ChannelError::HttpStatus {
            target,
            status: status.as_u16(),
            hint: hint(status.as_u16(), &description, retry_after),
            // Masked before it is cut: a secret cut in two would no longer match.
            message: excerpt(&scrub(&description, &secrets), 200),
        })
    }
}

/// What to do about a Telegram error.
fn hint(status: u16, description: &str, retry_after: Option<u64>) -> String {
    let d = description.to_ascii_lowercase();
    match status {
        401 => "Telegram refused the bot token; get the current token from @BotFather and put it \
                in the token file or variable"
            .to_owned(),
        404 => "no such bot or method; check the token and api-url".to_owned(),
        400 if d.contains("chat not found") => {
            "check chat-id, and that the bot was added to that chat".to_owned()
        }
        403 => "the bot may not post there (blocked by the user, or not a member); add the bot \
                to the chat"
            .to_owned(),
        429 => match retry_after {
            Some(secs) => format!("Telegram asks to wait {secs}s; the alert is retried later"),
            None => "Telegram asks to slow down; the alert is retried later".to_owned(),
        },
        500..=599 => "Telegram failed; the alert is retried at the next check".to_owned(),
        _ => "check chat-id and the bot's rights in the chat".to_owned(),
    }
}
