//! The checks of the live chain on each address: does it match a record, when do its
//! certificates expire; and what an endpoint's addresses add up to.

use std::time::SystemTime;

use crate::config::Endpoint;
use crate::notify::Severity;
use crate::probe::{AddressReport, KeyAlgorithm, KeyReport, Verdict};
use crate::tlsa::Usage;

use super::{Check, CheckKind, DAY, epoch_secs, short, worst};

/// The live chain on one address: the probe's verdict, with the words for each key.
pub fn tlsa_match(ep: &Endpoint, report: &AddressReport) -> Check {
    let addr = report.address.ip();
    let keys: Vec<String> = report.keys.iter().map(key_words).collect();
    let (status, message) = match report.verdict {
        Verdict::Pass => (Severity::Ok, format!("{addr}: {}", keys.join("; "))),
        Verdict::Fail => {
            let reason = report.reason.as_deref().unwrap_or("not verified");
            // A mismatch only when a key was seen and compared; a refused STARTTLS or a failed
            // handshake is a protocol failure (senders defer all the same, for another reason).
            let message = if report.keys.iter().any(|k| !k.matched) {
                format!("no TLSA record matches the certificate on {addr}: {reason}")
            } else if report.keys.is_empty() {
                format!("TLS cannot be established on {addr}: {reason}")
            } else {
                format!("DANE verification failed on {addr}: {reason}")
            };
            (Severity::Critical, message)
        }
        Verdict::Unknown => (
            Severity::Unknown,
            format!(
                "cannot probe {addr}: {}",
                report.reason.as_deref().unwrap_or("no answer")
            ),
        ),
    };
    Check::endpoint(CheckKind::TlsaMatch, ep, Some(addr), status, message)
}

fn key_words(key: &KeyReport) -> String {
    let algorithms: Vec<&str> = key.algorithms.iter().map(|a| a.as_str()).collect();
    match (&key.matched_record, key.match_depth) {
        (Some(record), Some(depth)) if key.matched => format!(
            "{} key ({}) matches {} at depth {depth}",
            key.key_type,
            algorithms.join(", "),
            short(record)
        ),
        _ => format!(
            "{} key ({}) does not match: {}",
            key.key_type,
            algorithms.join(", "),
            key.reason.as_deref().unwrap_or("not verified")
        ),
    }
}

/// The certificate expiry of a key's leaf, as seconds since the epoch, from its RFC 3339 UTC
/// `not_after` (`2026-11-23T08:00:00Z`).
pub fn not_after_secs(key: &KeyReport) -> Option<i64> {
    parse_rfc3339(&key.chain.first()?.not_after)
}

/// `YYYY-MM-DDTHH:MM:SSZ` as seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    crate::rfc3339::parse_secs(text)
}

/// The certificates served on one address: a warning within `warn_days` of expiry. Under
/// DANE-EE an expired certificate still matches (RFC 7672 §3.1.1: no date checks), so it is a
/// warning only; under DANE-TA an expired one is critical. Keys that matched nothing are left
/// to [`tlsa_match`].
pub fn cert_expiry(
    ep: &Endpoint,
    report: &AddressReport,
    warn_days: u32,
    now: SystemTime,
) -> Option<Check> {
    let now = epoch_secs(now);
    let mut worst_status = Severity::Ok;
    let mut parts = Vec::new();
    for key in report.keys.iter().filter(|k| k.matched) {
        let Some(end) = not_after_secs(key) else {
            continue;
        };
        let ee = key
            .matched_record
            .as_ref()
            .is_some_and(|r| r.usage == Usage::DaneEe);
        let left = end - now;
        let days = left as f64 / DAY as f64;
        let status = if left <= 0 {
            if ee {
                Severity::Warning
            } else {
                Severity::Critical
            }
        } else if left < i64::from(warn_days) * DAY as i64 {
            Severity::Warning
        } else {
            Severity::Ok
        };
        worst_status = worst([worst_status, status]);
        let algorithms: Vec<&str> = key.algorithms.iter().map(|a| a.as_str()).collect();
        parts.push(if left <= 0 {
            format!(
                "{} certificate ({}) expired {:.1} days ago{}",
                key.key_type,
                algorithms.join(", "),
                -days,
                if ee {
                    " (DANE-EE still matches: senders do not check dates)"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "{} certificate ({}) expires in {days:.1} days",
                key.key_type,
                algorithms.join(", ")
            )
        });
    }
    if parts.is_empty() {
        return None;
    }
    Some(Check::endpoint(
        CheckKind::CertExpiry,
        ep,
        Some(report.address.ip()),
        worst_status,
        format!("{}: {}", report.address.ip(), parts.join("; ")),
    ))
}

/// The verdict of an endpoint for `check`'s JSON (`pass` when every address passes).
pub fn endpoint_verdict(problem: bool, reports: &[AddressReport]) -> Verdict {
    if problem || reports.iter().any(|r| r.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if reports.is_empty() || reports.iter().any(|r| r.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Pass
    }
}

/// The key algorithm of each key found on an address, as `(algorithm, key)`.
pub fn keys_by_algorithm(report: &AddressReport) -> Vec<(KeyAlgorithm, &KeyReport)> {
    let mut out = Vec::new();
    for key in &report.keys {
        for algorithm in &key.algorithms {
            out.push((*algorithm, key));
        }
    }
    out
}
