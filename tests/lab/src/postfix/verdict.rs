//! Reading the sender's maillog: the queue ID a test mail got and what became of it (verified,
//! sent unverified, deferred, bounced), pairing TLS lines with deliveries by smtp process ID.

/// What became of one test mail at the DANE-enforcing sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered over a DANE-verified session: the "Verified TLS connection established" line.
    Verified(String),
    /// Delivered, but not over a verified session (no usable TLSA, so plain opportunistic TLS):
    /// the TLS line, or the status line if there was none.
    SentUnverified(String),
    /// Deferred: the reason in the status line (e.g. "Server certificate not verified").
    Deferred(String),
    /// Bounced: the reason.
    Bounced(String),
    /// No delivery attempt logged yet.
    Pending,
}

impl Verdict {
    /// Whether the mail went out over a DANE-verified session.
    pub fn is_verified(&self) -> bool {
        matches!(self, Verdict::Verified(_))
    }

    /// Whether the mail was deferred.
    pub fn is_deferred(&self) -> bool {
        matches!(self, Verdict::Deferred(_))
    }
}

/// The queue ID of the mail with `message_id` in a maillog.
pub(super) fn queue_id_in(log: &str, message_id: &str) -> Option<String> {
    let needle = format!("message-id=<{message_id}>");
    log.lines().find(|l| l.contains(&needle)).and_then(|l| {
        let (_, rest) = l.split_once("]: ")?;
        let (qid, _) = rest.split_once(": ")?;
        Some(qid.to_string())
    })
}

/// The first outcome logged for queue ID `qid`.
pub(super) fn verdict_in(log: &str, qid: &str) -> Verdict {
    let lines: Vec<&str> = log.lines().collect();
    let prefix = format!("]: {qid}: ");
    (0..lines.len())
        .filter(|&i| lines[i].contains(&prefix))
        .find_map(|i| attempt(&lines, i))
        .unwrap_or(Verdict::Pending)
}

/// The process tag of a log line: `postfix/smtp[1234]`.
fn proc_tag(line: &str) -> Option<&str> {
    let end = line.find("]: ")?;
    let start = line[..end].rfind(' ')? + 1;
    Some(&line[start..=end])
}

/// The outcome the status line `lines[i]` reports; for a delivery, the TLS line of the same smtp
/// process before it says whether the session was verified.
pub(crate) fn attempt(lines: &[&str], i: usize) -> Option<Verdict> {
    let l = lines[i];
    let pos = l.find(" status=")?;
    let status = &l[pos + 8..];
    let (word, reason) = status.split_once(' ').unwrap_or((status, ""));
    let reason = reason
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .to_string();
    match word {
        "sent" => {
            let tag = proc_tag(l);
            let tls = lines[..i]
                .iter()
                .rev()
                .find(|t| proc_tag(t) == tag && t.contains("TLS connection established to"));
            Some(match tls {
                Some(t) if t.contains("]: Verified TLS connection") => {
                    Verdict::Verified(t.to_string())
                }
                Some(t) => Verdict::SentUnverified(t.to_string()),
                None => Verdict::SentUnverified(l.to_string()),
            })
        }
        "deferred" => Some(Verdict::Deferred(reason)),
        "bounced" => Some(Verdict::Bounced(reason)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Nov 23 08:50:10 sender postfix/cleanup[6988]: 9A6CF98C1BF: message-id=<lab.1.2.3@sender.example.test>
Nov 23 08:50:10 sender postfix/smtp[7001]: Verified TLS connection established to mail.example.test[127.53.9.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 23 08:50:10 sender postfix/smtp[7002]: Untrusted TLS connection established to other.test[127.0.0.9]:25: TLSv1.3
Nov 23 08:50:10 sender postfix/smtp[7001]: 9A6CF98C1BF: to=<someone@example.test>, relay=mail.example.test[127.53.9.10]:25, delay=0.1, status=sent (250 2.0.0 Ok: queued as 1234)
Nov 23 08:50:11 sender postfix/cleanup[6988]: ABC: message-id=<lab.1.3.3@sender.example.test>
Nov 23 08:50:11 sender postfix/smtp[7003]: ABC: to=<someone@example.test>, relay=mail.example.test[127.53.9.10]:25, delay=0.1, status=deferred (Server certificate not verified)
";

    #[test]
    fn parses_verdicts() {
        assert_eq!(
            queue_id_in(LOG, "lab.1.2.3@sender.example.test").as_deref(),
            Some("9A6CF98C1BF")
        );
        assert!(verdict_in(LOG, "9A6CF98C1BF").is_verified());
        assert_eq!(
            verdict_in(LOG, "ABC"),
            Verdict::Deferred("Server certificate not verified".into())
        );
        assert_eq!(verdict_in(LOG, "NOPE"), Verdict::Pending);
    }
}
