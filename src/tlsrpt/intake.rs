//! A parsed report taken in: stored once (by organisation and report id, with its session
//! counts), and, when it is new and holds DANE failures (`tlsa-invalid`, `dnssec-invalid`,
//! `dane-required`), one alert per sending organisation and day, tied to the journal, sent
//! through the configured channels. The alert's check id is `tlsrpt/<organisation>/<day>`; an
//! id the store already has a state for is not sent again (a second report of the same sender
//! and day, e.g. one per policy domain, adds nothing). Shared by `tlsrpt ingest` and `serve`'s
//! `POST /tlsrpt`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::notify::{Alert, AlertMemory, Notifier, Severity};
use crate::rollover::Timestamp;
use crate::store::{NewTlsReport, SessionCount, Store, StoreError};

use super::DANE_FAILURES;
use super::journal::Journal;
use super::parse::{Report, policy_name, result_name};
use super::tie::{Seen, tie};

/// What taking in one report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// The sending organisation.
    pub organization: String,
    /// The report's id.
    pub report_id: String,
    /// Whether it was new (false: stored before, nothing changed).
    pub stored: bool,
    /// Failed sessions in the report.
    pub failed: u64,
    /// The DANE alerts due for it (sent or not).
    pub alerts: Vec<Alert>,
}

/// The session counts of `report` by policy type and result (`successful` for the summary's
/// successful sessions).
pub fn sessions(report: &Report) -> Vec<SessionCount> {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for p in &report.tls.policies {
        let kind = policy_name(p.policy.policy_type).to_owned();
        *counts
            .entry((kind.clone(), "successful".to_owned()))
            .or_default() += u64::from(p.summary.total_success);
        let mut detailed = 0u64;
        for f in &p.failure_details {
            detailed += u64::from(f.failed_session_count);
            *counts
                .entry((kind.clone(), result_name(f.result_type).to_owned()))
                .or_default() += u64::from(f.failed_session_count);
        }
        // Failures the summary counts but no detail explains.
        let rest = u64::from(p.summary.total_failure).saturating_sub(detailed);
        if rest > 0 {
            *counts.entry((kind, "unexplained".to_owned())).or_default() += rest;
        }
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|((policy_type, result), sessions)| SessionCount {
            policy_type,
            result,
            sessions,
        })
        .collect()
}

/// Store `report` (from `source`) once, and work out its DANE alerts when it is new.
pub fn take(
    store: &mut Store,
    config: &Config,
    report: &Report,
    source: &str,
    now: Timestamp,
) -> Result<Taken, StoreError> {
    let stored = store.add_tls_report(
        &NewTlsReport {
            organization: report.organization.clone(),
            report_id: report.report_id.clone(),
            window: (report.begin, report.end),
            source: source.to_owned(),
            json: report.to_json(),
            sessions: sessions(report),
        },
        now,
    )?;
    let failed = report
        .tls
        .policies
        .iter()
        .map(|p| u64::from(p.summary.total_failure))
        .sum();
    let alerts = if stored {
        dane_alerts(&Journal::load(config, store)?, report, now)
    } else {
        Vec::new()
    };
    Ok(Taken {
        organization: report.organization.clone(),
        report_id: report.report_id.clone(),
        stored,
        failed,
        alerts,
    })
}

/// The most failure lines one alert carries.
const ALERT_LINES: usize = 20;

/// The alert check id of a sender's DANE failures on a day.
pub fn alert_check(organization: &str, day: &str) -> String {
    let org: String = organization
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("tlsrpt/{org}/{day}")
}

/// One alert for the DANE failures of `report`, if it has any, tied to `journal`.
pub fn dane_alerts(journal: &Journal, report: &Report, now: Timestamp) -> Vec<Alert> {
    let mut lines = Vec::new();
    let mut total = 0u64;
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut subjects: Vec<String> = Vec::new();
    for p in &report.tls.policies {
        for f in &p.failure_details {
            let name = result_name(f.result_type);
            if !DANE_FAILURES.contains(&name) {
                continue;
            }
            total += u64::from(f.failed_session_count);
            *kinds.entry(name).or_default() += u64::from(f.failed_session_count);
            let t = tie(
                journal,
                Seen {
                    organization: &report.organization,
                    window: (report.begin, report.end),
                    policy: &p.policy,
                    receiving_mx: f.receiving_mx_hostname.as_deref(),
                },
            );
            let subject = t
                .service
                .clone()
                .unwrap_or_else(|| p.policy.policy_domain.clone());
            if !subjects.contains(&subject) {
                subjects.push(subject);
            }
            let mx = f
                .receiving_mx_hostname
                .as_deref()
                .map(|m| format!(" at {m}"))
                .unwrap_or_default();
            lines.push(format!(
                "{name}: {} session(s){mx}: {}",
                f.failed_session_count, t.explanation
            ));
        }
    }
    if lines.is_empty() {
        return Vec::new();
    }
    // A report may list thousands of failures; the alert names the first few.
    if lines.len() > ALERT_LINES {
        let more = lines.len() - ALERT_LINES;
        lines.truncate(ALERT_LINES);
        lines.push(format!(
            "… and {more} more (dane-roll reports lists them all)"
        ));
    }
    let counts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let day = report.day();
    let summary = format!(
        "{} saw DANE failures on {day}: {}",
        report.organization,
        counts.join(", ")
    );
    let detail = format!(
        "{} reports {total} failed session(s) with DANE failure types in its TLS report {} \
         ({} to {}):\n{}\nSenders that validate DANE do not deliver while this lasts; \
         `dane-roll reports` shows the report tied to the rollovers.",
        report.organization,
        report.report_id,
        report.begin,
        report.end,
        lines.join("\n")
    );
    let time =
        SystemTime::UNIX_EPOCH + Duration::from_millis(now.as_millis().max(0).unsigned_abs());
    vec![
        Alert::new(
            alert_check(&report.organization, &day),
            subjects.join(", "),
            Severity::Critical,
            summary,
            detail,
        )
        .at(time),
    ]
}

/// Send each of `alerts` whose check id has no state in `store` yet (once per sending
/// organisation and day), through `notifier`; the failures of channels, in words.
pub fn deliver(notifier: &Notifier, store: &mut Store, alerts: &[Alert]) -> Vec<String> {
    let mut problems = Vec::new();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return vec![format!("cannot start the runtime to send alerts: {e}")],
    };
    for alert in alerts {
        match AlertMemory::get(store, &alert.check) {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        }
        match runtime.block_on(notifier.observe(store, alert)) {
            Ok(Some(delivery)) => {
                problems.extend(delivery.failures().map(|f| f.to_string()));
            }
            Ok(None) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    problems
}
