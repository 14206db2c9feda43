//! The email channel: a plain-text mail, through the local sendmail or an SMTP server.
//!
//! - `via = "sendmail"`: the configured program is run as `sendmail -i -f FROM -- TO…` with the
//!   message on its standard input (the interface every MTA's sendmail has), without the
//!   configuration's secret variables; killed with its process group when the timeout passes.
//! - `via = "smtp"`: a submission session that must upgrade with STARTTLS (lettre's
//!   `Tls::Required`: no STARTTLS, or a certificate that does not verify for the server's name,
//!   and nothing is sent), then AUTH when `credentials` (`user:password`) are configured. The
//!   server's certificate is checked against the system's CAs plus those in `tls-ca-file`.
//!
//! The mail says `Auto-Submitted: auto-generated` (RFC 3834, so vacation responders stay quiet),
//! and carries a Message-ID of our own, returned in [`Sent::Mail`] to find it in the mail logs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Channel, EmailChannel, MailVia};

use super::{Alert, ChannelError, Sent, USER_AGENT, error_chain, scrub};

/// Makes each Message-ID of this process unique.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// One email channel.
#[derive(Debug, Clone)]
pub struct Email {
    channel: EmailChannel,
    timeout: Duration,
}

impl Email {
    /// The channel of a `kind = "email"` configuration; `None` for other kinds.
    pub fn from_channel(channel: &Channel, timeout: Duration) -> Option<Email> {
        match channel {
            Channel::Email(channel) => Some(Email {
                channel: channel.clone(),
                timeout,
            }),
            _ => None,
        }
    }

    /// Send the alert as a mail.
    pub async fn send(&self, alert: &Alert) -> Result<Sent, ChannelError> {
        let (message, message_id) = self.message(alert)?;
        match self.channel.via {
            MailVia::Sendmail => self.via_sendmail(message).await?,
            MailVia::Smtp => self.via_smtp(message).await?,
        }
        Ok(Sent::Mail { message_id })
    }

    /// The mail and its Message-ID (without angle brackets).
    pub fn message(&self, alert: &Alert) -> Result<(Message, String), ChannelError> {
        let mailbox = |key: &'static str, address: &str| {
            address
                .parse::<Mailbox>()
                .map_err(|err| ChannelError::Address {
                    key,
                    address: address.to_owned(),
                    reason: err.to_string(),
                })
        };
        let from = mailbox("from", &self.channel.from)?;
        let mut builder = Message::builder()
            .from(from.clone())
            .subject(alert.title())
            .date_now()
            .user_agent(USER_AGENT.to_owned())
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.channel.to {
            builder = builder.to(mailbox("to", to)?);
        }
        let message_id = new_message_id(from.email.domain());
        let message = builder
            .message_id(Some(format!("<{message_id}>")))
            .body(alert.text())
            .map_err(|err| ChannelError::Message {
                reason: err.to_string(),
            })?;
        Ok((message, message_id))
    }

    /// `sendmail -i -f FROM -- TO…` with the formatted mail on its standard input, run through
    /// [`dane_roll_providers::child`]: without the configuration's secret variables (lettre's
    /// sendmail transport passes the whole environment on), killed with its process group at
    /// the timeout.
    async fn via_sendmail(&self, message: Message) -> Result<(), ChannelError> {
        use dane_roll_providers::child::{ChildError, EnvPolicy, Job};
        let envelope = message.envelope();
        let mut args: Vec<String> = vec!["-i".into()];
        if let Some(from) = envelope.from() {
            args.extend(["-f".into(), from.to_string()]);
        }
        args.push("--".into());
        args.extend(envelope.to().iter().map(ToString::to_string));
        let job = Job::new(&self.channel.sendmail, EnvPolicy::Inherit, self.timeout)
            .args(args)
            .input(message.formatted());
        let fail = |reason: String| ChannelError::Sendmail {
            program: self.channel.sendmail.clone(),
            reason: super::excerpt(&reason, 300),
        };
        let output = tokio::task::spawn_blocking(move || job.run())
            .await
            .map_err(|e| fail(e.to_string()))?;
        match output {
            Err(ChildError::Timeout(_)) => Err(ChannelError::Timeout {
                target: self.channel.sendmail.display().to_string(),
                after: self.timeout,
            }),
            Err(err) => Err(fail(err.to_string())),
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => {
                let said = String::from_utf8_lossy(&out.stderr);
                Err(fail(format!("{}: {}", out.status, said.trim())))
            }
        }
    }

    async fn via_smtp(&self, message: Message) -> Result<(), ChannelError> {
        let Some(server) = &self.channel.smtp_server else {
            return Err(ChannelError::Smtp {
                server: "(none)".to_owned(),
                reason: "no smtp-server is configured".to_owned(),
                hint: "set smtp-server in the channel",
            });
        };
        let server_text = server.to_string();
        let mut tls = TlsParameters::builder(server.host.clone());
        if let Some(path) = &self.channel.tls_ca_file {
            for cert in ca_certificates(path)? {
                tls = tls.add_root_certificate(cert);
            }
        }
        let tls = tls.build_native().map_err(|err| ChannelError::Smtp {
            server: server_text.clone(),
            reason: error_chain(&err),
            hint: "the TLS library could not be set up",
        })?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
            .port(server.port)
            .tls(Tls::Required(tls))
            .timeout(Some(self.timeout));

        let credentials = match &self.channel.credentials {
            Some(secret) => Some(secret.read().map_err(|source| ChannelError::Secret {
                what: "SMTP credentials",
                source,
            })?),
            None => None,
        };
        let mut secrets: Vec<&str> = Vec::new();
        if let Some(value) = &credentials {
            let Some((user, password)) = value.expose().split_once(':') else {
                return Err(ChannelError::BadSecret {
                    what: "SMTP credentials",
                    problem: "not `user:password` (no colon)",
                });
            };
            secrets.extend([value.expose(), password]);
            builder = builder.credentials(Credentials::new(user.to_owned(), password.to_owned()));
        }
        let transport = builder.build();

        // lettre bounds each read and write; this bounds the whole session.
        let outcome = tokio::time::timeout(self.timeout, transport.send(message)).await;
        let err = match outcome {
            Ok(Ok(_response)) => return Ok(()),
            Err(_) => {
                return Err(ChannelError::Timeout {
                    target: server_text,
                    after: self.timeout,
                });
            }
            Ok(Err(err)) => err,
        };
        if err.is_timeout() {
            return Err(ChannelError::Timeout {
                target: server_text,
                after: self.timeout,
            });
        }
        // Masked before it is cut: a secret cut in two would no longer match.
        let reason = super::excerpt(&scrub(&error_chain(&err), &secrets), 300);
        // lettre reports a failed STARTTLS handshake as a connection error, so its text is
        // looked at too; a refused or unreachable connection shows as an I/O error in the chain.
        let tls_failed = err.is_tls() || reason.contains("certificate") || reason.contains("SSL");
        if !tls_failed && io_kind(&err).is_some_and(is_connect_failure) {
            return Err(ChannelError::Connect {
                target: server_text,
                reason,
            });
        }
        let hint = if tls_failed {
            "STARTTLS failed or the server's certificate does not verify for its name; fix the \
             server's certificate, or name its CA in tls-ca-file"
        } else if reason.to_ascii_lowercase().contains("authentication") {
            "AUTH failed: check credentials, and that the server offers AUTH after STARTTLS"
        } else if err.is_permanent() {
            "the server refused; check from, to, the credentials, and that it relays for this host"
        } else if err.is_transient() {
            "the server deferred the mail; the alert is retried at the next check"
        } else {
            "check smtp-server, and that the server offers STARTTLS (required)"
        };
        Err(ChannelError::Smtp {
            server: server_text,
            reason,
            hint,
        })
    }
}

/// The kind of the first I/O error in an error's chain.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

fn is_connect_failure(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::ConnectionReset
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
    )
}

/// Every certificate in a PEM file.
fn ca_certificates(path: &std::path::Path) -> Result<Vec<Certificate>, ChannelError> {
    let fail = |reason: String| ChannelError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let data = crate::fsafe::read_regular(path).map_err(|err| fail(err.to_string()))?;
    let blocks = pem::parse_many(&data).map_err(|err| fail(err.to_string()))?;
    let certs: Vec<Certificate> = blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| Certificate::from_der(b.contents().to_vec()).map_err(|e| fail(error_chain(&e))))
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

/// `dane-roll.<seconds>.<nanos>.<pid>.<n>@<domain>`: unique per process and time.
fn new_message_id(domain: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    format!(
        "dane-roll.{}.{}.{}.{}@{domain}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::notify::Severity;

    fn email(from: &str, to: &[&str]) -> Email {
        Email {
            channel: EmailChannel {
                to: to.iter().map(|s| s.to_string()).collect(),
                from: from.to_owned(),
                via: MailVia::Sendmail,
                sendmail: PathBuf::from("/nonexistent/sendmail"),
                smtp_server: None,
                credentials: None,
                tls_ca_file: None,
            },
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn message_has_headers_and_body() {
        let alert = Alert::new(
            "tlsa-match/mail.example.com:25/192.0.2.1",
            "mail.example.com:25",
            Severity::Critical,
            "no match",
            "DANE senders will defer mail to mail.example.com.",
        );
        let (message, id) = email("dane-roll@example.com", &["postmaster@example.com"])
            .message(&alert)
            .unwrap();
        assert!(id.ends_with("@example.com"));
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains(&format!("Message-ID: <{id}>")), "{text}");
        assert!(text.contains("Auto-Submitted: auto-generated"));
        assert!(text.contains("Subject: [dane-roll] CRITICAL mail.example.com:25: no match"));
        assert!(text.contains("To: postmaster@example.com"));
        assert!(text.contains("DANE senders will defer mail"));
    }

    #[test]
    fn bad_address_names_the_key() {
        let alert = Alert::new("c", "s", Severity::Warning, "x", "y");
        let err = email("not an address", &["a@example.com"])
            .message(&alert)
            .unwrap_err();
        assert!(
            matches!(err, ChannelError::Address { key: "from", .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_sendmail_is_an_error_naming_the_program() {
        let alert = Alert::new("c", "s", Severity::Warning, "x", "y");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(email("a@example.com", &["b@example.com"]).send(&alert))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/sendmail"), "{err}");
    }
}
