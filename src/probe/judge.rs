//! From what the attempts showed to a verdict: which records SMTP uses, which records matched no
//! served certificate, and whether mail would flow.

use std::borrow::Cow;

use openssl::x509::X509;

use crate::tlsa::{Matching, Selector, TlsaRecord, Usage};

use super::ProbeTarget;
use super::report::{
    self, AddressReport, Attempt, AttemptOutcome, IgnoredRecord, KeyReport, Verdict,
};

/// Split the records into those SMTP uses and those it ignores.
pub(super) fn split_records(records: &[TlsaRecord]) -> (Vec<TlsaRecord>, Vec<IgnoredRecord>) {
    let mut usable = Vec::new();
    let mut ignored = Vec::new();
    for record in records {
        // RFC 7672 §3.1.3: SMTP clients treat PKIX-TA(0) and PKIX-EE(1) records as unusable;
        // a record set of only those means no DANE (the sender falls back to unauthenticated TLS).
        if record.usage.is_usable_for_smtp() {
            if !usable.contains(record) {
                usable.push(record.clone());
            }
        } else {
            ignored.push(IgnoredRecord {
                record: record.clone(),
                reason: format!(
                    "usage {} ({}) is ignored by SMTP (RFC 7672 §3.1.3)",
                    record.usage,
                    record.usage.acronym()
                ),
            });
        }
    }
    (usable, ignored)
}

/// Usable records that match no certificate served (for any key): stale records, or records
/// for a key not deployed yet. Informational only: the verdict is OpenSSL's.
pub(super) fn unmatched(
    usable: &[TlsaRecord],
    keys: &[KeyReport],
    chains: &[Vec<X509>],
) -> Vec<TlsaRecord> {
    // The DER of every served certificate and its depth, made only if a record needs it.
    let mut served: Option<Vec<(usize, Vec<u8>)>> = None;
    usable
        .iter()
        .filter(|record| {
            if keys
                .iter()
                .any(|k| k.matched_record.as_ref() == Some(*record))
            {
                return false;
            }
            let served = served.get_or_insert_with(|| {
                chains
                    .iter()
                    .flat_map(|chain| chain.iter().enumerate())
                    .filter_map(|(depth, cert)| Some((depth, cert.to_der().ok()?)))
                    .collect()
            });
            !served.iter().any(|(depth, der)| {
                // DANE-EE(3) is the server's own certificate; DANE-TA(2) a CA in the chain.
                let fits = match record.usage {
                    Usage::DaneEe => *depth == 0,
                    _ => *depth > 0,
                };
                fits && matches_record(record, der)
            })
        })
        .cloned()
        .collect()
}

/// Whether `record` matches the certificate `der` (selector and matching type applied).
fn matches_record(record: &TlsaRecord, der: &[u8]) -> bool {
    let selected = match record.selector {
        Selector::Cert => Cow::Borrowed(der),
        Selector::Spki => match report::spki_of_certificate(der) {
            Some(spki) => spki,
            None => return false,
        },
    };
    let selected: &[u8] = &selected;
    match record.matching {
        Matching::Full => selected == record.data.as_slice(),
        Matching::Sha256 => report::sha256(selected).as_slice() == record.data.as_slice(),
        Matching::Sha512 => openssl::sha::sha512(selected).as_slice() == record.data.as_slice(),
    }
}

/// The verdict for an address from its keys and attempts.
pub(super) fn judge(
    usable: &[TlsaRecord],
    keys: &[KeyReport],
    attempts: &[Attempt],
) -> (Verdict, Option<String>) {
    if usable.is_empty() {
        return (
            Verdict::Fail,
            Some("no usable TLSA record (DANE-TA or DANE-EE): DANE does not apply".into()),
        );
    }
    if let Some(key) = keys.iter().find(|k| !k.matched) {
        return (
            Verdict::Fail,
            Some(format!(
                "{} key {}…: {}",
                key.key_type,
                key.spki_sha256.get(..16).unwrap_or(&key.spki_sha256),
                key.reason.as_deref().unwrap_or("not verified")
            )),
        );
    }
    let errors = attempts.iter().filter_map(|a| match &a.outcome {
        AttemptOutcome::Error { error, definitive } => Some((error, *definitive)),
        _ => None,
    });
    let mut unknown = None;
    for (error, definitive) in errors {
        if definitive {
            return (Verdict::Fail, Some(error.clone()));
        }
        unknown.get_or_insert_with(|| error.clone());
    }
    if let Some(error) = unknown {
        return (Verdict::Unknown, Some(error));
    }
    if keys.is_empty() {
        let detail = attempts.iter().find_map(|a| match &a.outcome {
            AttemptOutcome::NoKey { detail } => Some(detail.as_str()),
            _ => None,
        });
        return (
            Verdict::Fail,
            Some(format!(
                "the TLS handshake failed with every key algorithm tried{}",
                detail.map(|d| format!(" ({d})")).unwrap_or_default()
            )),
        );
    }
    (Verdict::Pass, None)
}

/// A report for a probe that could not run (a panicked task).
pub(super) fn internal_failure(target: &ProbeTarget, why: &str) -> AddressReport {
    AddressReport::unknown(target, format!("internal error: {why}"))
}
