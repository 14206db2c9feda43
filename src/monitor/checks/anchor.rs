//! Two checks about how well the records survive the CA's and the ACME client's changes:
//! DANE-TA records that pin an intermediate the CA rotates ([`tlsa_anchor`]), and a wait that
//! is a large share of a short-lived certificate's lifetime with no next key published ahead
//! ([`cert_lifetime`]).

use std::time::Duration;

use crate::config::Endpoint;
use crate::notify::Severity;
use crate::probe::{AddressReport, CertInfo};
use crate::rollover::KeyHash;
use crate::rollover::lifetime::{LifetimeFacts, advice};
use crate::tlsa::{Matching, Selector, TlsaRecord, Usage};

use super::{Check, CheckKind, parse_rfc3339, short};

/// What a DANE-TA record pins in the served chains.
enum Pinned<'a> {
    /// A CA certificate that is not self-signed: an intermediate.
    Intermediate(&'a CertInfo),
    /// A self-signed CA certificate: a root.
    Root(&'a CertInfo),
}

/// The certificate of a served chain that `record` (DANE-TA) pins, when it can be told: a
/// `2 1 1` by the certificate's key hash, any other form by the probe's match and its depth.
fn pinned<'a>(record: &TlsaRecord, reports: &'a [AddressReport]) -> Option<Pinned<'a>> {
    let by_hash = |c: &CertInfo| {
        record.selector == Selector::Spki
            && record.matching == Matching::Sha256
            && c.spki_sha256.eq_ignore_ascii_case(&record.data_hex())
    };
    for key in reports.iter().flat_map(|r| &r.keys) {
        let by_match = key
            .matched_record
            .as_ref()
            .is_some_and(|m| m == record)
            .then_some(key.match_depth)
            .flatten()
            .and_then(|d| key.chain.get(usize::try_from(d).ok()?));
        let cert = key.chain.iter().skip(1).find(|c| by_hash(c)).or(by_match);
        if let Some(cert) = cert {
            return Some(if cert.self_signed {
                Pinned::Root(cert)
            } else {
                Pinned::Intermediate(cert)
            });
        }
    }
    None
}

/// DANE-TA records (`2 x x`) that pin an intermediate: a warning that says why and what to
/// publish instead; one that pins a root: a note. `None` when the RRset has no DANE-TA record
/// found in a served chain.
pub fn tlsa_anchor(
    ep: &Endpoint,
    usable: &[TlsaRecord],
    reports: &[AddressReport],
) -> Option<Check> {
    let mut intermediates = Vec::new();
    let mut roots = Vec::new();
    for record in usable.iter().filter(|r| r.usage == Usage::DaneTa) {
        match pinned(record, reports) {
            Some(Pinned::Intermediate(c)) => {
                intermediates.push(format!(
                    "{} pins the intermediate {}",
                    short(record),
                    c.subject
                ));
            }
            Some(Pinned::Root(c)) => {
                roots.push(format!("{} pins the root {}", short(record), c.subject));
            }
            None => {}
        }
    }
    if intermediates.is_empty() && roots.is_empty() {
        return None;
    }
    let ee_matches = reports.iter().flat_map(|r| &r.keys).any(|k| {
        k.matched_record
            .as_ref()
            .is_some_and(|m| m.usage == Usage::DaneEe)
    });
    let root_note = (!roots.is_empty()).then(|| {
        format!(
            "{}: roots change less often than intermediates, but they change too (and the \
             server must send the root in its chain)",
            roots.join("; ")
        )
    });
    if intermediates.is_empty() {
        let check = Check::endpoint(
            CheckKind::TlsaAnchor,
            ep,
            None,
            Severity::Ok,
            "the DANE-TA records pin a root, no intermediate",
        );
        return Some(match root_note {
            Some(note) => check.with_note(note),
            None => check,
        });
    }
    let message = format!(
        "{}: CAs rotate their intermediates (Let's Encrypt changed its own in 2024 and 2026), \
         and a certificate from another intermediate matches no such record{}; publish the \
         `3 1 1` records of the current and the next key instead (dane-roll scheme \
         \"current+next\")",
        intermediates.join("; "),
        if ee_matches {
            " (mail flows by the 3 1 1 record today; the DANE-TA record protects nothing once \
             the CA issues from another intermediate)"
        } else {
            ": DANE senders then defer mail"
        }
    );
    let check = Check::endpoint(CheckKind::TlsaAnchor, ep, None, Severity::Warning, message);
    Some(match root_note {
        Some(note) => check.with_note(note),
        None => check,
    })
}

/// A short-lived certificate (or a wait that is a large share of the lifetime) with no next
/// key published ahead, on one address: a warning with what to do ([`advice`]). `ttl` is the
/// TLSA RRset's TTL; `known` the keys the store knows as published ahead (as for
/// `tlsa-stale`: a record that matches nothing served and no known key is stale, not a next
/// key). `None` when there is no such certificate, or nothing to say.
pub fn cert_lifetime(
    ep: &Endpoint,
    report: &AddressReport,
    usable: &[TlsaRecord],
    known: &[KeyHash],
    ttl: u32,
) -> Option<Check> {
    let next_published = usable.iter().any(|r| {
        r.usage == Usage::DaneEe
            && report.unmatched_records.contains(r)
            && known.iter().any(|k| k.matches(r))
    });
    let wait = Duration::from_secs(2 * u64::from(ttl));
    let mut parts = Vec::new();
    let mut tight = false;
    for key in report.keys.iter() {
        let Some(leaf) = key.chain.first() else {
            continue;
        };
        let (Some(from), Some(until)) = (
            parse_rfc3339(&leaf.not_before),
            parse_rfc3339(&leaf.not_after),
        ) else {
            continue;
        };
        let Ok(secs) = u64::try_from(until - from) else {
            continue;
        };
        let facts = LifetimeFacts {
            lifetime: Duration::from_secs(secs),
            wait,
            next_published,
        };
        tight |= facts.is_tight();
        if let Some(text) = advice(&facts) {
            parts.push(format!("{} certificate: {text}", key.key_type));
        }
    }
    if parts.is_empty() {
        return tight.then(|| {
            Check::endpoint(
                CheckKind::CertLifetime,
                ep,
                Some(report.address.ip()),
                Severity::Ok,
                format!(
                    "{}: short-lived certificate, and a next key is published ahead",
                    report.address.ip()
                ),
            )
        });
    }
    Some(Check::endpoint(
        CheckKind::CertLifetime,
        ep,
        Some(report.address.ip()),
        Severity::Warning,
        format!("{}: {}", report.address.ip(), parts.join("; ")),
    ))
}
