//! One policy of a report, or one failure in it, tied to the journal: which service and owner
//! name it is about (the receiving MX, the policy's `mx-host` and `policy-domain` against the
//! configured endpoints; failing that, the service that published the records the sender
//! saw), the rollover under way in the report's window and its phases, and whether the TLSA set
//! the sender saw was ours at the time, put in one sentence, e.g. "Microsoft Corporation saw
//! only the old record after the install at 2026-12-07T10:02:00Z: the wait was too short".
//!
//! Pure: the journal in, the tie out.

use serde::Serialize;

use mail_auth::report::tlsrpt::PolicyDetails;

use crate::rollover::{KeyHash, PhaseName, Timestamp};
use crate::store::PublishedRecord;
use crate::tlsa::{OwnerName, TlsaRecord};

use super::journal::{Journal, Span};
use super::records::SeenSet;

/// What a report says about one policy (or one failure of it).
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The sending organisation.
    pub organization: &'a str,
    /// The report's window.
    pub window: (Timestamp, Timestamp),
    /// The policy the sender applied.
    pub policy: &'a PolicyDetails,
    /// The MX host of the failure, when one is named.
    pub receiving_mx: Option<&'a str>,
}

/// How the set the sender saw compares with ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The set held the old key's records but none of the new key's, in a window after the
    /// new key was installed: the sender's resolver held the old RRset past the wait.
    OldAfterInstall,
    /// Every record the sender saw was ours then.
    Ours,
    /// The sender saw records dane-roll had not published (or had retired) then.
    NotOurs,
    /// The report names no TLSA record (not a `tlsa` policy, or no `policy-string`).
    NotSaid,
}

/// A record the sender saw, and what the journal says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenRecord {
    /// The record, `3 1 1 <hex>`.
    pub record: String,
    /// Whether it was ours (published, not retired) at some time in the window.
    pub ours: bool,
    /// `old` or `new` for the rollover under way, when it is one of its keys' records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'static str>,
    /// When it was published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// When it was retired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

/// The rollover under way in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloverRef {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: String,
    /// When it began.
    pub started: String,
    /// The phases under way in the window, with when each was entered.
    pub phases: Vec<(String, String)>,
}

impl RolloverRef {
    /// `mx/ec begun 2026-12-07T09:00:00Z`: the rollover's name.
    pub fn label(&self) -> String {
        format!("{}/{} begun {}", self.service, self.slot, self.started)
    }
}

/// The tie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tie {
    /// The service, when one matched.
    pub service: Option<String>,
    /// The owner name, when known.
    pub owner: Option<OwnerName>,
    /// The rollover under way in the window.
    pub rollover: Option<RolloverRef>,
    /// The records the sender saw.
    pub seen: Vec<SeenRecord>,
    /// How they compare with ours.
    pub verdict: Verdict,
    /// The whole tie in a sentence.
    pub explanation: String,
}

/// Tie what the report says to the journal.
pub fn tie(journal: &Journal, seen: Seen<'_>) -> Tie {
    let (begin, end) = seen.window;
    let set = SeenSet::of(seen.policy);
    let (service, owner) = match_service(journal, &seen, &set);
    let span = service.as_deref().and_then(|name| {
        journal
            .spans
            .iter()
            .filter(|s| s.service == name && s.overlaps(begin, end))
            .max_by_key(|s| s.started)
    });
    let mine: Vec<&PublishedRecord> = journal
        .published
        .iter()
        .filter(|p| service.as_deref().is_none_or(|n| p.service == n))
        .collect();
    let installed = span.and_then(|s| s.entered(PhaseName::Installed));
    let (old, new) = span.map_or((Vec::new(), Vec::new()), |s| keys_of(s, &mine, installed));
    let records: Vec<SeenRecord> = set
        .records
        .iter()
        .map(|r| {
            let at_time = mine.iter().find(|p| {
                p.record.record == *r
                    && p.published_at <= end
                    && p.retired_at.is_none_or(|t| t >= begin)
            });
            SeenRecord {
                record: r.to_string(),
                ours: at_time.is_some(),
                key: label(r, span.and_then(|s| s.keys), &old, &new),
                published: at_time.map(|p| p.published_at.to_string()),
                retired: at_time.and_then(|p| p.retired_at).map(|t| t.to_string()),
            }
        })
        .collect();
    let saw_new = records.iter().any(|r| r.key == Some("new"));
    let saw_old = records.iter().any(|r| r.key == Some("old"));
    let org = seen.organization;
    let (verdict, mut explanation) = if records.is_empty() {
        (
            Verdict::NotSaid,
            format!("the report does not say which TLSA records {org} saw"),
        )
    } else if let Some(at) = installed.filter(|t| *t <= end && saw_old && !saw_new) {
        (
            Verdict::OldAfterInstall,
            format!(
                "{org} saw only the old record after the install at {at}: the wait was too short"
            ),
        )
    } else if records.iter().all(|r| r.ours) {
        (
            Verdict::Ours,
            format!(
                "{org} saw ours: {} as published then",
                short_list(
                    &records
                        .iter()
                        .map(|r| r.record.as_str())
                        .collect::<Vec<_>>()
                )
            ),
        )
    } else {
        let foreign: Vec<&str> = records
            .iter()
            .filter(|r| !r.ours)
            .map(|r| r.record.as_str())
            .collect();
        (
            Verdict::NotOurs,
            format!(
                "{org} saw records dane-roll had not published then: {}; another writer changes \
                 the RRset, or a resolver serves an old or forged one",
                short_list(&foreign)
            ),
        )
    };
    let rollover = span.map(|s| RolloverRef {
        service: s.service.clone(),
        slot: s.slot.as_str().to_owned(),
        started: s.started.to_string(),
        phases: s
            .phases_in(begin, end)
            .into_iter()
            .map(|(p, t)| (p.as_str().to_owned(), t.to_string()))
            .collect(),
    });
    let mut context = Vec::new();
    if let Some(name) = &service {
        context.push(format!("service {name}"));
    }
    if let Some(owner) = &owner {
        context.push(format!("owner {owner}"));
    }
    if let Some(r) = &rollover {
        let phases: Vec<String> = r
            .phases
            .iter()
            .map(|(p, t)| format!("{p} at {t}"))
            .collect();
        context.push(format!("rollover {} ({})", r.label(), phases.join(", ")));
    } else if service.is_some() {
        context.push("no rollover under way".to_owned());
    } else {
        context.push("no configured service matches".to_owned());
    }
    explanation = format!("{explanation} [{}]", context.join("; "));
    Tie {
        service,
        owner,
        rollover,
        seen: records,
        verdict,
        explanation,
    }
}

/// The service (and owner name) the report is about.
fn match_service(
    journal: &Journal,
    seen: &Seen<'_>,
    set: &SeenSet,
) -> (Option<String>, Option<OwnerName>) {
    let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
    let mut names: Vec<String> = Vec::new();
    if let Some(mx) = seen.receiving_mx {
        names.push(norm(mx));
    }
    names.extend(seen.policy.mx_host.iter().map(|m| norm(m)));
    names.push(norm(&seen.policy.policy_domain));
    for name in names.iter().filter(|n| !n.is_empty()) {
        for s in &journal.services {
            let hit = s
                .endpoints
                .iter()
                .find(|(host, _)| match name.strip_prefix("*.") {
                    Some(suffix) => host.ends_with(&format!(".{suffix}")),
                    None => host == name,
                });
            // Port 25 first: TLS reports are about SMTP to the MX.
            let hit = s
                .endpoints
                .iter()
                .find(|(h, p)| *p == 25 && Some(h) == hit.map(|(h, _)| h))
                .or(hit);
            if let Some((host, port)) = hit {
                return (
                    Some(s.name.clone()),
                    Some(OwnerName::for_endpoint(host, *port)),
                );
            }
        }
    }
    // No name matched (Microsoft names no MX host): the service that published what it saw.
    for r in &set.records {
        if let Some(p) = journal.published.iter().find(|p| p.record.record == *r) {
            return (Some(p.service.clone()), Some(p.record.owner.clone()));
        }
    }
    let domain = norm(&seen.policy.policy_domain);
    let by_domain = journal
        .services
        .iter()
        .find(|s| s.domains.contains(&domain));
    (by_domain.map(|s| s.name.clone()), None)
}

/// `old` or `new`: whose record `r` is in the rollover. By the keys of the stored rollover when
/// the store still holds it (the old key's record may have been published by hand, never by
/// us); otherwise by time ([`keys_of`]).
fn label(
    r: &TlsaRecord,
    keys: Option<(Option<KeyHash>, KeyHash)>,
    old: &[&TlsaRecord],
    new: &[&TlsaRecord],
) -> Option<&'static str> {
    let (is_new, is_old) = match keys {
        Some((old_key, new_key)) => (new_key.matches(r), old_key.is_some_and(|k| k.matches(r))),
        None => (new.contains(&r), old.contains(&r)),
    };
    if is_new {
        Some("new")
    } else if is_old {
        Some("old")
    } else {
        None
    }
}

/// The old key's and the new key's records of a rollover, by time: the records ours when it
/// began, and the ones it published before the install.
fn keys_of<'a>(
    span: &Span,
    mine: &[&'a PublishedRecord],
    installed: Option<Timestamp>,
) -> (Vec<&'a TlsaRecord>, Vec<&'a TlsaRecord>) {
    let of_slot = mine.iter().filter(|p| p.slot == span.slot);
    let old = of_slot
        .clone()
        .filter(|p| p.published_at < span.started && p.retired_at.is_none_or(|t| t > span.started))
        .map(|p| &p.record.record)
        .collect();
    let new = of_slot
        .filter(|p| p.published_at >= span.started && installed.is_none_or(|t| p.published_at <= t))
        .map(|p| &p.record.record)
        .collect();
    (old, new)
}

/// `3 1 1 0a1b2c3d…, 3 1 1 …`: records shortened to their first bytes.
fn short_list(records: &[&str]) -> String {
    records
        .iter()
        .map(|r| {
            let cut: String = r.chars().take(16).collect();
            if cut.len() < r.len() {
                format!("{cut}…")
            } else {
                cut
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
