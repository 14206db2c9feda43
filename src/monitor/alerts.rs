//! `check --notify`: one incident, one alert. The checks of one endpoint (its addresses
//! included) fold into one [`Alert`], `endpoint/HOST:PORT` ([`alerts_of`], [`incident_for`]):
//! its status is the worst of them, its summary names every failing check, so a wrong record
//! that makes `tlsa-stale` and `tlsa-match` fail at once pages once and recovers once. A check
//! about a name (the resolver, a mail domain) is an alert of its own, keyed by the check id.
//! Each alert goes through [`Notifier::observe`], whose firing policy (fire on a change of
//! status, repeat after the interval, recovery when ok again) decides whether anything is sent;
//! a change in which checks fail at the same status is no new page. The policy's memory is the
//! state store ([`crate::store::Store`] implements [`AlertMemory`]), so a second run that finds
//! the same failure sends nothing.
//!
//! An alert no longer made is retired ([`gone`], [`Notifier::retire`]): when its last state was
//! bad a recovery marked "no longer checked" is sent, and the state is forgotten. Which stored
//! states a run speaks for is its [`Scope`]: a run of every configured endpoint speaks for all
//! of them (an endpoint removed from the configuration is gone); a run of given targets only
//! for what it checked. A state is never retired on a run that could not see (the resolver
//! unusable, the run out of time). Alert states of the rollover driver (`rollover/…`) are not
//! the monitor's and are left alone.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use crate::notify::{Alert, AlertMemory, Notifier, Severity};

use super::{Check, CheckKind, RunReport};

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
    /// Forget the state without a message (a per-check state of an earlier version whose
    /// endpoint's incident alert is bad and carries it on).
    pub silent: bool,
}

const ENDPOINT_KINDS: [CheckKind; 12] = [
    CheckKind::Addresses,
    CheckKind::TlsaSecure,
    CheckKind::TcpParent,
    CheckKind::TlsaRecords,
    CheckKind::TlsaStale,
    CheckKind::RrsigExpiry,
    CheckKind::TlsaTtl,
    CheckKind::TlsaMatch,
    CheckKind::CertExpiry,
    CheckKind::TlsaAnchor,
    CheckKind::CertLifetime,
    CheckKind::MtaStsMx,
];
const NAME_KINDS: [CheckKind; 5] = [
    CheckKind::Resolver,
    CheckKind::Target,
    CheckKind::MxSecure,
    CheckKind::Tlsrpt,
    CheckKind::MtaSts,
];

/// The monitoring alert states among `stored` (ids with an alert state) that `run` no longer
/// speaks to and that `scope` lets it retire. Pure: the caller sends and forgets.
///
/// An endpoint's incident (`endpoint/HOST:PORT`) is made by every run that checks the endpoint,
/// so it goes only with the endpoint. A state stored per check by an earlier version
/// (`tlsa-match/HOST:PORT/ADDR`, …) is retired: silently when the endpoint's incident is bad
/// (its alert carries the failure on), with a recovery otherwise.
pub fn gone(run: &RunReport, stored: &[String], scope: Scope) -> Vec<Gone> {
    let blind = run.checks.iter().any(|c| {
        (c.kind == CheckKind::Resolver
            && matches!(c.status, Severity::Critical | Severity::Unknown))
            || (c.kind == CheckKind::Target && c.subject == "run")
    });
    if blind {
        return Vec::new();
    }
    let made: HashSet<String> = alerts_of(run).into_iter().map(|a| a.check).collect();
    let mut incidents: HashMap<String, Severity> = HashMap::new();
    for c in &run.checks {
        if let (Some(host), Some(port)) = (&c.host, c.port) {
            let worst = incidents
                .entry(format!("{host}:{port}"))
                .or_insert(Severity::Ok);
            *worst = super::worst([*worst, c.status]);
        }
    }
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
    let removed = |ep: &str| {
        format!("{ep} is no longer among the endpoints checked (removed from the configuration)")
    };
    let mut out = Vec::new();
    for id in stored {
        if made.contains(id) {
            continue;
        }
        let Some((kind, rest)) = id.split_once('/') else {
            continue;
        };
        if kind == "endpoint" {
            if scope == Scope::Everything && !incidents.contains_key(rest) {
                out.push(Gone {
                    check: id.clone(),
                    subject: rest.to_string(),
                    why: removed(rest),
                    silent: false,
                });
            }
        } else if ENDPOINT_KINDS.iter().any(|k| k.as_str() == kind) {
            let ep = rest.split_once('/').map_or(rest, |(ep, _)| ep);
            let (why, silent) = match incidents.get(ep) {
                Some(status) => (
                    format!(
                        "alerts for {ep} are now one per endpoint ({})",
                        incident_id_of(ep)
                    ),
                    status.is_bad(),
                ),
                None if scope == Scope::Everything => (removed(ep), false),
                None => continue,
            };
            out.push(Gone {
                check: id.clone(),
                subject: ep.to_string(),
                why,
                silent,
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
                silent: false,
            });
        }
    }
    out
}

fn incident_id_of(endpoint: &str) -> String {
    format!("endpoint/{endpoint}")
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
    let advice = advice(check.kind);
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

/// What a failing check of `kind` means for mail and what to do (empty: nothing to add).
fn advice(kind: CheckKind) -> &'static str {
    match kind {
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
        // Their message says what to do.
        CheckKind::Resolver
        | CheckKind::Target
        | CheckKind::Addresses
        | CheckKind::TlsaTtl
        | CheckKind::TlsaAnchor
        | CheckKind::CertLifetime => "",
    }
}

/// The id of an endpoint's incident: `endpoint/HOST:PORT`.
pub fn incident_id(host: &str, port: u16) -> String {
    incident_id_of(&format!("{host}:{port}"))
}

/// What a run says, as alerts: one per endpoint (its incident, every check of the endpoint
/// folded in, the worst status) and one per check about a name (the resolver, a mail domain).
pub fn alerts_of(run: &RunReport) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut endpoints: Vec<(String, Vec<&Check>)> = Vec::new();
    for check in &run.checks {
        match (&check.host, check.port) {
            (Some(host), Some(port)) => {
                let id = incident_id(host, port);
                match endpoints.iter_mut().find(|(i, _)| *i == id) {
                    Some((_, checks)) => checks.push(check),
                    None => endpoints.push((id, vec![check])),
                }
            }
            _ => out.push(alert_for(check)),
        }
    }
    out.extend(
        endpoints
            .into_iter()
            .map(|(id, checks)| incident_for(&id, &checks)),
    );
    out
}

/// The alert of one endpoint's incident: the worst status of `checks`; the summary names every
/// failing check, the detail gives each one's words and what to do.
pub fn incident_for(id: &str, checks: &[&Check]) -> Alert {
    let subject = checks
        .first()
        .map(|c| c.subject.clone())
        .unwrap_or_default();
    let status = super::worst(checks.iter().map(|c| c.status));
    let mut failing: Vec<&&Check> = checks.iter().filter(|c| c.status.is_bad()).collect();
    failing.sort_by_key(|c| std::cmp::Reverse(super::checks::rank(c.status)));
    if failing.is_empty() {
        return Alert::new(
            id,
            subject,
            Severity::Ok,
            format!("all {} checks ok", checks.len()),
            checks
                .iter()
                .map(|c| format!("{}: {}", c.kind.as_str(), c.message))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    let mut kinds: Vec<&str> = Vec::new();
    for c in &failing {
        if !kinds.contains(&c.kind.as_str()) {
            kinds.push(c.kind.as_str());
        }
    }
    let summary = format!(
        "{} failing ({}): {}",
        kinds.len(),
        kinds.join(", "),
        failing[0].message
    );
    let mut detail = String::new();
    for c in &failing {
        let single = alert_for(c);
        detail.push_str(&format!(
            "{} [{}]{}: {}\n",
            c.kind.as_str(),
            c.status.as_str(),
            c.address.map(|a| format!(" at {a}")).unwrap_or_default(),
            single.detail.split("\n\n").next().unwrap_or(""),
        ));
    }
    let mut advised: Vec<CheckKind> = Vec::new();
    for c in &failing {
        if advised.contains(&c.kind) {
            continue;
        }
        advised.push(c.kind);
        let advice = advice(c.kind);
        if !advice.is_empty() {
            detail.push_str(&format!("\n{}: {advice}\n", c.kind.as_str()));
        }
    }
    Alert::new(id, subject, status, summary, detail.trim_end().to_string())
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
    for alert in alerts_of(run) {
        if let Some(delivery) = notifier.observe(memory, &alert).await? {
            summary.record(&alert.check, alert.title(), &delivery);
        }
    }
    let stored = memory.checks()?;
    for gone in gone(run, &stored, scope) {
        if gone.silent {
            memory.forget(&gone.check)?;
            continue;
        }
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
