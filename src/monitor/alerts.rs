//! `check --notify`: every check of a run becomes an [`Alert`] with the check's id, and goes
//! through [`Notifier::observe`], whose firing policy (fire on a change, repeat after the
//! interval, recovery when ok again) decides whether anything is sent. The policy's memory is the
//! state store ([`crate::store::Store`] implements [`AlertMemory`]), so a second run that finds
//! the same failure sends nothing.
//!
//! A check that is no longer made is retired ([`gone`], [`Notifier::retire`]): when its last
//! state was bad a recovery marked "no longer checked" is sent, and the state is forgotten. Which
//! stored states a run speaks for is its [`Scope`]: a run of every configured endpoint speaks for
//! all of them (an endpoint removed from the configuration is gone); a run of given targets only
//! for what it checked (an address that left a host's A/AAAA RRset, a check its endpoint no
//! longer needs). A state is never retired on a run that could not see: the resolver unusable,
//! the run out of time, or the endpoint's addresses or TLSA records not looked up cleanly
//! (a DNS failure is not a recovery). Alert states of the rollover driver (`rollover/…`) are not
//! the monitor's and are left alone.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use crate::notify::{Alert, AlertMemory, Notifier, Severity};

use super::{Check, CheckKind, EndpointReport, RunReport};

/// Which stored alert states a run speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every monitoring check in the store: the run checked every configured endpoint
    /// (`dane-roll check --notify` without targets), so a check it did not make is gone.
    Everything,
    /// Only the endpoints and names this run checked (`dane-roll check TARGET… --notify`):
    /// states of other targets belong to other runs.
    Checked,
}

/// A stored check that this run no longer makes: its id, its subject and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// The check id.
    pub check: String,
    /// What it was about (`host:port`, a domain, the resolver).
    pub subject: String,
    /// Why it is no longer made.
    pub why: String,
}

const ENDPOINT_KINDS: [CheckKind; 10] = [
    CheckKind::Addresses,
    CheckKind::TlsaSecure,
    CheckKind::TcpParent,
    CheckKind::TlsaRecords,
    CheckKind::TlsaStale,
    CheckKind::RrsigExpiry,
    CheckKind::TlsaTtl,
    CheckKind::TlsaMatch,
    CheckKind::CertExpiry,
    CheckKind::MtaStsMx,
];
const NAME_KINDS: [CheckKind; 5] = [
    CheckKind::Resolver,
    CheckKind::Target,
    CheckKind::MxSecure,
    CheckKind::Tlsrpt,
    CheckKind::MtaSts,
];

/// The monitoring checks among `stored` (check ids with an alert state) that `run` no longer
/// makes and that `scope` lets it retire. Pure: the caller sends and forgets.
pub fn gone(run: &RunReport, stored: &[String], scope: Scope) -> Vec<Gone> {
    let blind = run.checks.iter().any(|c| {
        (c.kind == CheckKind::Resolver
            && matches!(c.status, Severity::Critical | Severity::Unknown))
            || (c.kind == CheckKind::Target && c.subject == "run")
    });
    if blind {
        return Vec::new();
    }
    let made: HashSet<&str> = run.checks.iter().map(|c| c.id.as_str()).collect();
    let status: HashMap<&str, Severity> = run
        .checks
        .iter()
        .map(|c| (c.id.as_str(), c.status))
        .collect();
    let endpoints: HashMap<String, &EndpointReport> = run
        .endpoints
        .iter()
        .map(|ep| (format!("{}:{}", ep.host, ep.port), ep))
        .collect();
    let names: HashSet<&str> = run
        .domains
        .iter()
        .map(|d| d.domain.as_str())
        .chain(
            run.checks
                .iter()
                .filter(|c| c.kind == CheckKind::Target || c.kind == CheckKind::MxSecure)
                .map(|c| c.subject.as_str()),
        )
        .collect();
    let seen = |kind: CheckKind, ep: &str| {
        // Absent (records or addresses given on the command line): nothing failed to be seen.
        status
            .get(format!("{}/{ep}", kind.as_str()).as_str())
            .is_none_or(|s| matches!(s, Severity::Ok | Severity::Warning))
    };
    let mut out = Vec::new();
    for id in stored {
        if made.contains(id.as_str()) {
            continue;
        }
        let Some((kind, rest)) = id.split_once('/') else {
            continue;
        };
        if let Some(kind) = ENDPOINT_KINDS.iter().find(|k| k.as_str() == kind) {
            let (ep, address) = match rest.split_once('/') {
                Some((ep, address)) => (ep, Some(address)),
                None => (rest, None),
            };
            let why = match endpoints.get(ep) {
                Some(report) => {
                    if !seen(CheckKind::Addresses, ep) || !seen(CheckKind::TlsaSecure, ep) {
                        continue;
                    }
                    let probed = |address: &str| {
                        report
                            .addresses
                            .iter()
                            .any(|a| a.address.ip().to_string() == address)
                    };
                    // Still probed, but this run could not make the check (no key matched, so
                    // no certificate dates; no handshake completed, so nothing to call stale):
                    // the failure is reported by the checks that were made.
                    let blind_probe = !report.addresses.is_empty()
                        && report.addresses.iter().all(|a| a.keys.is_empty());
                    if address.is_some_and(probed) || (*kind == CheckKind::TlsaStale && blind_probe)
                    {
                        continue;
                    }
                    match (address, &report.tlsa.problem) {
                        (Some(address), None) => {
                            format!("{address} is no longer an address of {}", report.host)
                        }
                        (Some(_), Some(problem)) => {
                            format!("{ep} is no longer probed: {problem}")
                        }
                        _ => format!(
                            "{ep} no longer needs the {} check (what it looked at is gone)",
                            kind.as_str()
                        ),
                    }
                }
                None if scope == Scope::Everything => format!(
                    "{ep} is no longer among the endpoints checked (removed from the configuration)"
                ),
                None => continue,
            };
            out.push(Gone {
                check: id.clone(),
                subject: ep.to_string(),
                why,
            });
        } else if let Some(kind) = NAME_KINDS.iter().find(|k| k.as_str() == kind) {
            let why = if *kind != CheckKind::Resolver && names.contains(rest) {
                format!("{rest} was checked without the {} check", kind.as_str())
            } else if scope == Scope::Everything {
                match kind {
                    CheckKind::Resolver => format!("the resolver {rest} is no longer asked"),
                    _ => format!("{rest} is no longer among the targets checked"),
                }
            } else {
                continue;
            };
            out.push(Gone {
                check: id.clone(),
                subject: rest.to_string(),
                why,
            });
        }
    }
    out
}

/// What `--notify` did.
#[derive(Debug, Default)]
pub struct NotifySummary {
    /// Checks for which something was sent: `(check id, title, delivered to at least one
    /// channel)`.
    pub sent: Vec<(String, String, bool)>,
    /// Channel failures, as text (never holding a secret).
    pub failures: Vec<String>,
}

/// The alert for a check: its id, subject, status and message, and what it means for mail.
pub fn alert_for(check: &Check) -> Alert {
    let mut detail = check.message.clone();
    if let Some(note) = &check.note {
        detail.push_str("\n(");
        detail.push_str(note);
        detail.push(')');
    }
    let advice = match check.kind {
        CheckKind::TlsaMatch => {
            "DANE senders defer mail to this host while no record matches, and bounce it when \
             their queue lifetime ends. Publish a record for the key that is live (dane-roll tlsa \
             FILE), or put back the certificate whose key is published."
        }
        CheckKind::TlsaSecure | CheckKind::TcpParent => {
            "A SERVFAIL on the TLSA lookup makes DANE senders defer mail; no secure TLSA record \
             means DANE is not in effect (senders fall back to unauthenticated TLS). Check the \
             zone's signatures and every authoritative server (dig +dnssec _25._tcp.HOST TLSA)."
        }
        CheckKind::MxSecure => {
            "Without a DNSSEC-secure MX RRset senders do not look for TLSA records at all."
        }
        CheckKind::RrsigExpiry => {
            "When the signatures expire the TLSA lookup fails validation and DANE senders defer \
             mail: make sure the zone is re-signed."
        }
        CheckKind::TlsaStale | CheckKind::TlsaRecords => {
            "Records that match nothing pile up after rollovers; remove the stale ones once no \
             certificate with their key is served."
        }
        CheckKind::CertExpiry => {
            "Renew the certificate; under DANE-EE an expired certificate still matches, but other \
             senders (and DANE-TA) check dates."
        }
        CheckKind::MtaStsMx => {
            "Senders applying an MTA-STS policy in enforce mode refuse an MX its mx: lines do not \
             cover, or whose certificate is not valid under the Web PKI (a DANE-EE self-signed \
             certificate is not). Add the MX to the policy, serve a CA-issued certificate (its \
             key can stay the one the 3 1 1 record pins), or set the policy to testing."
        }
        CheckKind::MtaSts | CheckKind::Tlsrpt => {
            "Neither stops DANE senders; they let other senders secure and report delivery."
        }
        CheckKind::Resolver | CheckKind::Target | CheckKind::Addresses | CheckKind::TlsaTtl => "",
    };
    if !advice.is_empty() && check.status.is_bad() {
        detail.push_str("\n\n");
        detail.push_str(advice);
    }
    let summary = match check.status {
        crate::notify::Severity::Ok => format!("{}: {}", check.kind.as_str(), check.message),
        _ => check.message.clone(),
    };
    Alert::new(
        check.id.clone(),
        check.subject.clone(),
        check.status,
        summary,
        detail,
    )
}

/// Apply the firing policy to every check of `run`, sending through `notifier` and remembering
/// in `memory`; then retire the stored checks the run no longer makes, within `scope` ([`gone`]).
pub async fn notify<M: AlertMemory>(
    notifier: &Notifier,
    memory: &mut M,
    run: &RunReport,
    scope: Scope,
) -> Result<NotifySummary, M::Error> {
    let mut summary = NotifySummary::default();
    for check in &run.checks {
        let alert = alert_for(check);
        if let Some(delivery) = notifier.observe(memory, &alert).await? {
            summary.record(&check.id, alert.title(), &delivery);
        }
    }
    let stored = memory.checks()?;
    for gone in gone(run, &stored, scope) {
        let now = SystemTime::now();
        if let Some(delivery) = notifier
            .retire(memory, &gone.check, &gone.subject, &gone.why, now)
            .await?
        {
            let title = format!(
                "[dane-roll] RECOVERED {}: no longer checked: {}",
                gone.subject, gone.why
            );
            summary.record(&gone.check, title, &delivery);
        }
    }
    Ok(summary)
}

impl NotifySummary {
    fn record(&mut self, check: &str, title: String, delivery: &crate::notify::Delivery) {
        self.sent
            .push((check.to_string(), title, delivery.delivered()));
        for failure in delivery.failures() {
            if let Err(err) = &failure.result {
                self.failures.push(format!(
                    "alert channel \"{}\" ({}): {err}",
                    failure.channel, failure.kind
                ));
            }
        }
    }
}
