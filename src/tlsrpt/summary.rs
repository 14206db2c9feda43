//! What `dane-roll reports` shows: the stored reports counted per day, per sending
//! organisation, per result type and per rollover, and every failure tied to the journal.
//! Pure: stored reports and the journal in, an [`Overview`] out (serialised as the `--json`
//! output; `cmd/reports.rs` writes the text).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::StoredTlsReport;

use super::journal::Journal;
use super::parse::{Report, policy_name, result_name};
use super::tie::{Seen, Tie, tie};

/// Successful and failed sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
}

/// One failure detail of a report, tied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureLine {
    /// The day the report's window begins (UTC).
    pub day: String,
    /// The sending organisation.
    pub organization: String,
    /// The report's id.
    pub report_id: String,
    /// The policy type.
    pub policy_type: &'static str,
    /// The policy domain.
    pub policy_domain: String,
    /// The result type.
    pub result: &'static str,
    /// Failed sessions.
    pub sessions: u64,
    /// The MX host named, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiving_mx: Option<String>,
    /// The sender's reason code, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The tie to the journal.
    pub tie: Tie,
}

/// The overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// How many reports.
    pub reports: usize,
    /// Sessions per day (UTC, of the report's window).
    pub by_day: BTreeMap<String, Counts>,
    /// Sessions per sending organisation.
    pub by_organization: BTreeMap<String, Counts>,
    /// Sessions per result type (`successful` for the successful ones).
    pub by_result: BTreeMap<String, u64>,
    /// Sessions per rollover under way (`service/slot begun TIME`; `none` outside any).
    pub by_rollover: BTreeMap<String, Counts>,
    /// Every failure, tied.
    pub failures: Vec<FailureLine>,
    /// Stored reports that no longer read (named by organisation and id).
    pub unreadable: Vec<String>,
}

/// The overview of `stored`, tied to `journal`.
pub fn overview(journal: &Journal, stored: &[StoredTlsReport]) -> Overview {
    let mut out = Overview::default();
    for s in stored {
        let input = format!("stored report {} of {}", s.report_id, s.organization);
        let report = match Report::from_stored(&s.json, &input) {
            Ok(r) => r,
            Err(e) => {
                out.unreadable.push(e.to_string());
                continue;
            }
        };
        out.reports += 1;
        let day = report.day();
        for p in &report.tls.policies {
            let seen = Seen {
                organization: &report.organization,
                window: (report.begin, report.end),
                policy: &p.policy,
                receiving_mx: None,
            };
            let policy_tie = tie(journal, seen);
            let rollover = policy_tie
                .rollover
                .as_ref()
                .map_or_else(|| "none".to_owned(), |r| r.label());
            let ok = u64::from(p.summary.total_success);
            let failed = u64::from(p.summary.total_failure);
            for key in [
                out.by_day.entry(day.clone()).or_default(),
                out.by_organization
                    .entry(report.organization.clone())
                    .or_default(),
                out.by_rollover.entry(rollover).or_default(),
            ] {
                key.successful += ok;
                key.failed += failed;
            }
            *out.by_result.entry("successful".to_owned()).or_default() += ok;
            for f in &p.failure_details {
                let result = result_name(f.result_type);
                *out.by_result.entry(result.to_owned()).or_default() +=
                    u64::from(f.failed_session_count);
                out.failures.push(FailureLine {
                    day: day.clone(),
                    organization: report.organization.clone(),
                    report_id: report.report_id.clone(),
                    policy_type: policy_name(p.policy.policy_type),
                    policy_domain: p.policy.policy_domain.clone(),
                    result,
                    sessions: u64::from(f.failed_session_count),
                    receiving_mx: f.receiving_mx_hostname.clone(),
                    reason: f.failure_reason_code.clone(),
                    tie: tie(
                        journal,
                        Seen {
                            receiving_mx: f.receiving_mx_hostname.as_deref(),
                            ..seen
                        },
                    ),
                });
            }
        }
    }
    out
}
