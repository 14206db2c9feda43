//! The alert itself: which check, about what, how bad, and the words a postmaster reads.
//!
//! An [`Alert`] is one observation of one check, made by the monitoring side. The same alert is
//! rendered for every channel: [`Alert::title`] (mail subject, first line), [`Alert::text`] (mail
//! body, Telegram message) and [`Alert::json`] (webhook body, documented in `docs/CONFIG.md`).
//! The constructors at the end ([`Alert::tlsa_mismatch`], …) hold the wording for the failures
//! that stop mail, so every channel says the same thing: what is wrong, what it means for mail,
//! and what to do.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::exit::Status;

/// How bad a check's outcome is (the Nagios scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// As it should be.
    Ok,
    /// Mail still flows, but something needs a look (an expiring signature, a stale record).
    Warning,
    /// DANE senders defer mail, or soon will.
    Critical,
    /// The check could not tell (a timeout, the resolver unreachable): its own state, not "ok".
    Unknown,
}

impl Severity {
    /// The word used in the store and the webhook body: `ok`, `warning`, `critical`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Unknown => "unknown",
        }
    }

    /// The upper-case word used in titles: `OK`, `WARNING`, …
    pub fn label(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
            Severity::Unknown => "UNKNOWN",
        }
    }

    /// Whether this state is worth an alert (everything but [`Severity::Ok`]).
    pub fn is_bad(self) -> bool {
        self != Severity::Ok
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity word that is not one of `ok`, `warning`, `critical`, `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a severity; expected ok, warning, critical or unknown")]
pub struct BadSeverity(pub String);

impl FromStr for Severity {
    type Err = BadSeverity;
    fn from_str(s: &str) -> Result<Severity, BadSeverity> {
        match s {
            "ok" => Ok(Severity::Ok),
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            "unknown" => Ok(Severity::Unknown),
            _ => Err(BadSeverity(s.to_owned())),
        }
    }
}

impl From<Status> for Severity {
    /// A command's exit status as an alert severity (`Failure` is `Critical`).
    fn from(status: Status) -> Severity {
        match status {
            Status::Ok => Severity::Ok,
            Status::Warning => Severity::Warning,
            Status::Failure => Severity::Critical,
            Status::Unknown | Status::Interrupted | Status::TryLater => Severity::Unknown,
        }
    }
}

/// One observation of one check, ready to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The check's stable key, e.g. `tlsa-match/mail.example.com:25/192.0.2.1` (see [`check_id`]).
    pub check: String,
    /// What the check is about: a service, host or endpoint (`mail.example.com:25`).
    pub subject: String,
    /// How bad.
    pub severity: Severity,
    /// One line: what is wrong.
    pub summary: String,
    /// What it means for mail and what to do; may span lines.
    pub detail: String,
    /// When the observation was made.
    pub time: SystemTime,
    /// Whether this is the message that a bad state is over (set by the firing policy).
    pub recovered: bool,
}

impl Alert {
    /// An alert observed now.
    pub fn new(
        check: impl Into<String>,
        subject: impl Into<String>,
        severity: Severity,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) -> Alert {
        Alert {
            check: check.into(),
            subject: subject.into(),
            severity,
            summary: summary.into(),
            detail: detail.into(),
            time: SystemTime::now(),
            recovered: false,
        }
    }

    /// The same alert, observed at `time`.
    pub fn at(mut self, time: SystemTime) -> Alert {
        self.time = time;
        self
    }

    /// One line for a mail subject or a message's first line:
    /// `[dane-roll] CRITICAL mail.example.com:25: TLSA records match no certificate`.
    pub fn title(&self) -> String {
        let label = if self.recovered {
            "RECOVERED"
        } else {
            self.severity.label()
        };
        one_line(&format!(
            "[dane-roll] {label} {}: {}",
            self.subject, self.summary
        ))
    }

    /// The plain-text body: title, detail, then the check id and time.
    pub fn text(&self) -> String {
        let mut out = self.title();
        out.push_str("\n\n");
        let detail = self.detail.trim();
        if !detail.is_empty() {
            out.push_str(detail);
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "check:    {}\nseverity: {}\ntime:     {}\n",
            self.check,
            self.severity,
            rfc3339(self.time)
        ));
        out
    }

    /// The webhook body: `{"check","subject","severity","summary","detail","time","recovered"}`,
    /// `time` in RFC 3339 (UTC).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "check": self.check,
            "subject": self.subject,
            "severity": self.severity.as_str(),
            "summary": self.summary,
            "detail": self.detail,
            "time": rfc3339(self.time),
            "recovered": self.recovered,
        })
    }

    /// The recovery message for this check: the same check and subject, severity `ok`, with
    /// `recovered` set. `was` is the bad state that ended.
    pub fn recovery_of(check: &str, subject: &str, was: Severity, since: SystemTime) -> Alert {
        let mut alert = Alert::new(
            check,
            subject,
            Severity::Ok,
            format!("back to ok after {was}"),
            format!(
                "The check {check} is ok again; it was {was} since {}. Nothing to do.",
                rfc3339(since)
            ),
        );
        alert.recovered = true;
        alert
    }

    /// The live certificate at `addr` matches none of the published TLSA records.
    pub fn tlsa_mismatch(host: &str, port: u16, addr: IpAddr, records: &[String]) -> Alert {
        let listed = if records.is_empty() {
            "(none)".to_owned()
        } else {
            records.join("\n  ")
        };
        Alert::new(
            check_id("tlsa-match", host, port, Some(addr)),
            format!("{host}:{port}"),
            Severity::Critical,
            format!("TLSA records match no certificate served at {addr}"),
            format!(
                "The certificate that {host} serves on {addr} port {port} matches none of the \
                 TLSA records published at _{port}._tcp.{host}.\n\
                 DANE senders will defer mail to {host}, and bounce it when their queue lifetime \
                 ends.\n\
                 What to do: publish a TLSA record for the key that is live now (dane-roll tlsa \
                 --cert <file>), or put back the certificate whose key is published; then run \
                 dane-roll check {host}:{port}.\n\
                 Published records:\n  {listed}"
            ),
        )
    }

    /// The TLSA lookup failed (SERVFAIL, bogus) or the answer is not DNSSEC-secure.
    pub fn tlsa_lookup_failed(host: &str, port: u16, problem: &str) -> Alert {
        Alert::new(
            check_id("tlsa-lookup", host, port, None),
            format!("{host}:{port}"),
            Severity::Critical,
            format!("TLSA lookup for _{port}._tcp.{host} failed: {problem}"),
            format!(
                "A validating resolver could not get a secure answer for _{port}._tcp.{host} \
                 ({problem}).\n\
                 DANE senders treat this as a failure and will defer mail to {host}.\n\
                 What to do: check the zone's DNSSEC signatures and every authoritative server \
                 (dig +dnssec _{port}._tcp.{host} TLSA), and that _tcp.{host} is not NXDOMAIN."
            ),
        )
    }

    /// The endpoint could not be probed at all: the outcome is unknown.
    pub fn unreachable(host: &str, port: u16, addr: IpAddr, problem: &str) -> Alert {
        Alert::new(
            check_id("tlsa-match", host, port, Some(addr)),
            format!("{host}:{port}"),
            Severity::Unknown,
            format!("cannot probe {addr}: {problem}"),
            format!(
                "dane-roll could not complete a STARTTLS handshake with {host} at {addr} port \
                 {port} ({problem}), so it cannot tell whether DANE senders can deliver.\n\
                 What to do: check that the server runs and accepts connections from this host; \
                 if senders cannot reach it either, mail to {host} waits in their queues."
            ),
        )
    }
}

/// A check's stable key: `KIND/HOST:PORT` or `KIND/HOST:PORT/ADDRESS`.
pub fn check_id(kind: &str, host: &str, port: u16, addr: Option<IpAddr>) -> String {
    match addr {
        Some(addr) => format!("{kind}/{host}:{port}/{addr}"),
        None => format!("{kind}/{host}:{port}"),
    }
}

/// A time in RFC 3339, UTC, whole seconds: `2025-01-31T12:00:00Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    crate::rfc3339::format_secs(secs)
}

/// Text on one line: line breaks and other control characters become spaces (mail subjects,
/// titles), so no header can be injected through a summary.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_of_known_times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_738_324_800);
        assert_eq!(rfc3339(t), "2025-01-31T12:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn severity_round_trips_and_maps_status() {
        for s in [
            Severity::Ok,
            Severity::Warning,
            Severity::Critical,
            Severity::Unknown,
        ] {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        assert!("bad".parse::<Severity>().is_err());
        assert_eq!(Severity::from(Status::Failure), Severity::Critical);
        assert_eq!(Severity::from(Status::Unknown), Severity::Unknown);
        assert!(!Severity::Ok.is_bad() && Severity::Unknown.is_bad());
    }

    #[test]
    fn title_is_one_line_and_json_has_the_documented_fields() {
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        let mut alert = Alert::tlsa_mismatch("mail.example.com", 25, addr, &["3 1 1 ab".into()])
            .at(UNIX_EPOCH + Duration::from_secs(60));
        alert.summary.push_str("\r\nBcc: evil@example.net");
        assert!(!alert.title().contains('\n') && !alert.title().contains('\r'));
        assert!(
            alert
                .title()
                .starts_with("[dane-roll] CRITICAL mail.example.com:25: ")
        );
        assert!(
            alert
                .detail
                .contains("DANE senders will defer mail to mail.example.com")
        );
        assert_eq!(alert.check, "tlsa-match/mail.example.com:25/192.0.2.1");
        let json = alert.json();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.len(),
            7,
            "check subject severity summary detail time recovered"
        );
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["time"], "1970-01-01T00:01:00Z");
        assert_eq!(json["recovered"], false);
        assert!(
            alert
                .text()
                .contains("check:    tlsa-match/mail.example.com:25/192.0.2.1")
        );
    }

    #[test]
    fn recovery_is_marked() {
        let r = Alert::recovery_of("c/x:25", "x:25", Severity::Critical, UNIX_EPOCH);
        assert!(r.recovered);
        assert_eq!(r.severity, Severity::Ok);
        assert!(
            r.title()
                .starts_with("[dane-roll] RECOVERED x:25: back to ok after critical")
        );
    }
}
