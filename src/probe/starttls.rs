//! The clear-text dialogues that lead to TLS: SMTP `STARTTLS` (RFC 3207), IMAP `STARTTLS`
//! (RFC 3501), POP3 `STLS` (RFC 2595), and nothing for implicit TLS.
//!
//! Every read and write is bounded in time ([`Limits::step`]) and size ([`Limits::max_line`],
//! [`Limits::max_lines`]); nothing is pipelined; and bytes the server sends after its reply to
//! STARTTLS are refused (they would be read as if they came through TLS: the CVE-2011-0411
//! injection). The caller owns the TCP stream and starts TLS on it when [`start_tls`] returns.

use std::fmt;
use std::io;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use crate::config::Protocol;

/// The longest reply line accepted, CRLF included (RFC 5321 §4.5.3.1.5 says 512; servers send
/// longer EHLO lines, so 4 KiB).
pub const MAX_LINE: usize = 4096;
/// The most lines accepted in one reply (a multi-line EHLO reply, untagged IMAP lines).
pub const MAX_LINES: usize = 100;
/// How long to wait for the server's reply to `QUIT` once TLS is up: a courtesy, not a check.
pub const QUIT_WAIT: Duration = Duration::from_millis(500);

/// The bounds of one dialogue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The time allowed for each step: one write, or one whole reply.
    pub step: Duration,
    /// The longest line accepted.
    pub max_line: usize,
    /// The most lines in one reply.
    pub max_lines: usize,
}

/// A step of a dialogue, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Opening the TCP connection.
    Connect,
    /// Waiting for the server's greeting.
    Greeting,
    /// SMTP `EHLO`.
    Ehlo,
    /// `STARTTLS` or `STLS`.
    Starttls,
    /// The TLS handshake.
    Handshake,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::Greeting => "greeting",
            Step::Ehlo => "EHLO",
            Step::Starttls => "STARTTLS",
            Step::Handshake => "TLS handshake",
        })
    }
}

/// What went wrong before TLS could start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DialogueError {
    /// The server did not answer in time.
    #[error("timed out after {}s waiting for the {step}", after.as_secs_f64())]
    Timeout {
        /// The step.
        step: Step,
        /// The limit.
        after: Duration,
    },
    /// A network error.
    #[error("{step}: {source}")]
    Io {
        /// The step.
        step: Step,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The server closed the connection.
    #[error("the server closed the connection during the {step}")]
    Closed {
        /// The step.
        step: Step,
    },
    /// A line longer than the limit: a broken or hostile server.
    #[error("reply line too long (over {limit} bytes) during the {step}")]
    LineTooLong {
        /// The step.
        step: Step,
        /// The limit.
        limit: usize,
    },
    /// A reply with more lines than the limit.
    #[error("reply with more than {limit} lines during the {step}")]
    TooManyLines {
        /// The step.
        step: Step,
        /// The limit.
        limit: usize,
    },
    /// Something that is not the protocol's reply.
    #[error("not a {protocol} reply during the {step}: \"{line}\"")]
    Garbage {
        /// The protocol expected.
        protocol: Protocol,
        /// The step.
        step: Step,
        /// The line, shortened and escaped.
        line: String,
    },
    /// The server refused the session or a command (SMTP 4xx/5xx, IMAP `BYE`/`NO`, POP3 `-ERR`).
    #[error("the server refused the {step}: \"{reply}\"")]
    Refused {
        /// The step.
        step: Step,
        /// The reply, shortened and escaped.
        reply: String,
        /// Whether the refusal says it is temporary (SMTP 4xx).
        temporary: bool,
    },
    /// The EHLO reply does not list STARTTLS (or IMAP PREAUTH, where STARTTLS is not allowed).
    #[error("STARTTLS not offered: {detail}")]
    StarttlsNotOffered {
        /// What the server said instead.
        detail: String,
    },
    /// The server answered STARTTLS with something other than "go ahead".
    #[error("STARTTLS refused: \"{reply}\"")]
    StarttlsRefused {
        /// The reply, shortened and escaped.
        reply: String,
    },
    /// Bytes after the reply to STARTTLS, before TLS started (a command injection attempt or a
    /// broken server).
    #[error("the server sent data after its reply to STARTTLS, before TLS started")]
    DataAfterStarttls,
}

impl DialogueError {
    /// Whether the error is a definite "mail would not flow" (the server said or sent something
    /// wrong), rather than "cannot tell" (timeouts, network errors, temporary refusals).
    pub fn is_definitive(&self) -> bool {
        match self {
            DialogueError::Timeout { .. }
            | DialogueError::Io { .. }
            | DialogueError::Closed { .. } => false,
            DialogueError::Refused { temporary, .. } => !temporary,
            DialogueError::LineTooLong { .. }
            | DialogueError::TooManyLines { .. }
            | DialogueError::Garbage { .. }
            | DialogueError::StarttlsNotOffered { .. }
            | DialogueError::StarttlsRefused { .. }
            | DialogueError::DataAfterStarttls => true,
        }
    }
}

/// Run the dialogue that leads to TLS on `stream`, if the protocol has one. When this returns
/// `Ok`, the next bytes on the stream belong to the TLS handshake. Generic over the stream so the
/// fuzz target (`fuzz/fuzz_targets/smtp_reply.rs`) can feed it bytes; the probe passes a TCP stream.
pub async fn start_tls<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    protocol: Protocol,
    helo: &str,
    limits: &Limits,
) -> Result<(), DialogueError> {
    let mut lines = Lines::new(stream, *limits, protocol);
    match protocol {
        Protocol::Tls => return Ok(()),
        Protocol::Smtp | Protocol::Submission => smtp(&mut lines, helo).await?,
        Protocol::Imap => imap(&mut lines).await?,
        Protocol::Pop3 => pop3(&mut lines).await?,
    }
    if lines.has_pending() {
        return Err(DialogueError::DataAfterStarttls);
    }
    Ok(())
}

/// Say `QUIT` over TLS and read the first bytes of the answer, briefly; errors are ignored
/// (the probe's verdict is already made).
pub async fn smtp_quit<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, limits: &Limits) {
    let wait = limits.step.min(QUIT_WAIT);
    let _ = timeout(wait, async {
        stream.write_all(b"QUIT\r\n").await?;
        stream.flush().await?;
        let mut buf = [0u8; 512];
        let _ = stream.read(&mut buf).await?;
        stream.shutdown().await
    })
    .await;
}

/// SMTP: greeting, EHLO, STARTTLS (RFC 3207).
async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut Lines<'_, S>,
    helo: &str,
) -> Result<(), DialogueError> {
    let greeting = lines.smtp_reply(Step::Greeting).await?;
    if greeting.code != 220 {
        return Err(greeting.refused(Step::Greeting));
    }
    lines
        .send(Step::Ehlo, format!("EHLO {helo}\r\n").as_bytes())
        .await?;
    let ehlo = lines.smtp_reply(Step::Ehlo).await?;
    if ehlo.code != 250 {
        return Err(ehlo.refused(Step::Ehlo));
    }
    // The first line is the server's name; each further line starts with an extension keyword.
    let offered = ehlo.texts.iter().skip(1).any(|text| {
        text.split_ascii_whitespace()
            .next()
            .is_some_and(|keyword| keyword.eq_ignore_ascii_case("STARTTLS"))
    });
    if !offered {
        return Err(DialogueError::StarttlsNotOffered {
            detail: "the EHLO reply does not list it".into(),
        });
    }
    lines.send(Step::Starttls, b"STARTTLS\r\n").await?;
    let reply = lines.smtp_reply(Step::Starttls).await?;
    if reply.code != 220 {
        return Err(DialogueError::StarttlsRefused {
            reply: reply.first_line(),
        });
    }
    Ok(())
}

/// IMAP: `* OK` greeting, `a1 STARTTLS`, `a1 OK` (RFC 3501 §6.2.1).
async fn imap<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut Lines<'_, S>,
) -> Result<(), DialogueError> {
    let greeting = lines.line(Step::Greeting).await?;
    let upper = greeting.to_ascii_uppercase();
    if upper.starts_with("* PREAUTH") {
        return Err(DialogueError::StarttlsNotOffered {
            detail: "the IMAP server greets with PREAUTH, after which STARTTLS is not allowed"
                .into(),
        });
    }
    lines.greeted(&greeting, &upper, "* OK", "* BYE")?;
    lines.send(Step::Starttls, b"a1 STARTTLS\r\n").await?;
    for _ in 0..lines.limits.max_lines {
        let line = lines.line(Step::Starttls).await?;
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("* ") {
            continue; // untagged data before the tagged answer
        }
        if upper.starts_with("A1 OK") {
            return Ok(());
        }
        if upper.starts_with("A1 ") {
            return Err(DialogueError::StarttlsRefused {
                reply: shown(&line),
            });
        }
        return Err(lines.garbage(Step::Starttls, &line));
    }
    Err(DialogueError::TooManyLines {
        step: Step::Starttls,
        limit: lines.limits.max_lines,
    })
}

/// POP3: `+OK` greeting, `STLS`, `+OK` (RFC 2595 §4).
async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut Lines<'_, S>,
) -> Result<(), DialogueError> {
    let greeting = lines.line(Step::Greeting).await?;
    lines.greeted(&greeting, &greeting, "+OK", "-ERR")?;
    lines.send(Step::Starttls, b"STLS\r\n").await?;
    let reply = lines.line(Step::Starttls).await?;
    if reply.starts_with("+OK") {
        Ok(())
    } else if reply.starts_with("-ERR") {
        Err(DialogueError::StarttlsRefused {
            reply: shown(&reply),
        })
    } else {
        Err(lines.garbage(Step::Starttls, &reply))
    }
}

/// `work` within the step time `limit`, else a timeout of `step`.
async fn within<T>(
    limit: Duration,
    step: Step,
    work: impl Future<Output = Result<T, DialogueError>>,
) -> Result<T, DialogueError> {
    match timeout(limit, work).await {
        Err(_) => Err(DialogueError::Timeout { step, after: limit }),
        Ok(result) => result,
    }
}

/// One SMTP reply: its code and the text of each line.
struct SmtpReply {
    code: u16,
    texts: Vec<String>,
}

impl SmtpReply {
    /// This reply refusing `step`: for now when it is a 4xx, for good otherwise.
    fn refused(&self, step: Step) -> DialogueError {
        DialogueError::Refused {
            step,
            reply: self.first_line(),
            temporary: self.code / 100 == 4,
        }
    }

    fn first_line(&self) -> String {
        shown(&format!(
            "{} {}",
            self.code,
            self.texts.first().map(String::as_str).unwrap_or("")
        ))
    }
}

/// A line reader over the clear-text stream that never reads past what it needs more than one
/// read's worth, and remembers whether bytes are left over.
struct Lines<'a, S> {
    stream: &'a mut S,
    buf: Vec<u8>,
    limits: Limits,
    protocol: Protocol,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Lines<'a, S> {
    fn new(stream: &'a mut S, limits: Limits, protocol: Protocol) -> Lines<'a, S> {
        Lines {
            stream,
            buf: Vec::new(),
            limits,
            protocol,
        }
    }

    fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    fn garbage(&self, step: Step, line: &str) -> DialogueError {
        DialogueError::Garbage {
            protocol: self.protocol,
            step,
            line: shown(line),
        }
    }

    /// A one-line greeting, read as `compared`: refused for good when it starts with `refused`,
    /// garbage unless it starts with `ok`.
    fn greeted(
        &self,
        greeting: &str,
        compared: &str,
        ok: &str,
        refused: &str,
    ) -> Result<(), DialogueError> {
        if compared.starts_with(refused) {
            return Err(DialogueError::Refused {
                step: Step::Greeting,
                reply: shown(greeting),
                temporary: false,
            });
        }
        if !compared.starts_with(ok) {
            return Err(self.garbage(Step::Greeting, greeting));
        }
        Ok(())
    }

    /// Write one command, whole, within the step time.
    async fn send(&mut self, step: Step, bytes: &[u8]) -> Result<(), DialogueError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match timeout(self.limits.step, write).await {
            Err(_) => Err(DialogueError::Timeout {
                step,
                after: self.limits.step,
            }),
            Ok(Err(source)) => Err(DialogueError::Io { step, source }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// One line without its CRLF, within the step time.
    async fn line(&mut self, step: Step) -> Result<String, DialogueError> {
        within(self.limits.step, step, self.line_unbounded(step)).await
    }

    async fn line_unbounded(&mut self, step: Step) -> Result<String, DialogueError> {
        let mut chunk = [0u8; 1024];
        let mut searched = 0;
        let limit = self.limits.max_line;
        let too_long = || DialogueError::LineTooLong { step, limit };
        loop {
            if let Some(pos) = self.buf[searched..].iter().position(|&b| b == b'\n') {
                let end = searched + pos;
                if end + 1 > limit {
                    return Err(too_long());
                }
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            searched = self.buf.len();
            if self.buf.len() >= limit {
                return Err(too_long());
            }
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|source| DialogueError::Io { step, source })?;
            if n == 0 {
                return Err(DialogueError::Closed { step });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One SMTP reply, all its lines, within the step time.
    async fn smtp_reply(&mut self, step: Step) -> Result<SmtpReply, DialogueError> {
        within(self.limits.step, step, self.smtp_reply_unbounded(step)).await
    }

    async fn smtp_reply_unbounded(&mut self, step: Step) -> Result<SmtpReply, DialogueError> {
        let mut texts = Vec::new();
        for _ in 0..self.limits.max_lines {
            let line = self.line_unbounded(step).await?;
            let bytes = line.as_bytes();
            let code = match bytes.get(..3) {
                Some(digits) if digits.iter().all(u8::is_ascii_digit) => {
                    u16::from(digits[0] - b'0') * 100
                        + u16::from(digits[1] - b'0') * 10
                        + u16::from(digits[2] - b'0')
                }
                _ => return Err(self.garbage(step, &line)),
            };
            let text = line.get(4..).unwrap_or("").to_string();
            match bytes.get(3) {
                Some(b'-') => texts.push(text),
                None | Some(b' ') => {
                    texts.push(text);
                    return Ok(SmtpReply { code, texts });
                }
                Some(_) => return Err(self.garbage(step, &line)),
            }
        }
        Err(DialogueError::TooManyLines {
            step,
            limit: self.limits.max_lines,
        })
    }
}

/// A line as shown in messages: at most 120 characters, control characters escaped.
pub(crate) fn shown(line: &str) -> String {
    const MAX: usize = 120;
    let mut out: String = line
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if line.chars().count() > MAX {
        out.push('…');
    }
    out
}
