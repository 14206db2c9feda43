//! The checks of the TLSA RRset: present, secure and usable; its size; records that match
//! nothing served (stale, retiring or pre-published); its RRSIG's expiry and its TTL.

use std::collections::HashSet;
use std::time::SystemTime;

use crate::config::{ADVISED_TTL, Endpoint};
use crate::dns::{Lookup, Status as DnsStatus};
use crate::notify::Severity;
use crate::probe::AddressReport;
use crate::rollover::KeyHash;
use crate::tlsa::TlsaRecord;

use super::{Check, CheckKind, DAY, epoch_secs, short};

/// The records SMTP uses (RFC 7672 §3.1.3: DANE-TA and DANE-EE only).
pub fn usable(records: &[TlsaRecord]) -> Vec<TlsaRecord> {
    records
        .iter()
        .filter(|r| r.usage.is_usable_for_smtp())
        .cloned()
        .collect()
}

/// The TLSA RRset exists, validates and holds a usable record. Returns the check and, when DANE
/// cannot apply, why (the record set's `problem`).
pub fn tlsa_secure(
    ep: &Endpoint,
    lookup: &Result<Lookup<TlsaRecord>, String>,
) -> (Check, Option<String>) {
    let owner = ep.owner_name();
    let lookup = match lookup {
        Ok(lookup) => lookup,
        Err(err) => {
            let message = format!("cannot look up {owner}: {err}");
            return (
                Check::endpoint(CheckKind::TlsaSecure, ep, None, Severity::Unknown, &message),
                Some(message),
            );
        }
    };
    let total = lookup.records.len() + lookup.skipped.len();
    let usable = usable(&lookup.records).len();
    let (status, message, problem) = match &lookup.status {
        DnsStatus::Secure if usable > 0 => (
            Severity::Ok,
            format!("{total} TLSA records at {owner}, DNSSEC-secure ({usable} usable for SMTP)"),
            false,
        ),
        DnsStatus::Secure => (
            Severity::Warning,
            format!(
                "DANE not in effect for this host: none of the {total} TLSA records at {owner} is \
                 usable for SMTP (only DANE-TA(2) and DANE-EE(3) count, RFC 7672 §3.1.3)"
            ),
            true,
        ),
        DnsStatus::Insecure => (
            Severity::Warning,
            format!(
                "DANE not in effect for this host: the TLSA records at {owner} are not \
                 DNSSEC-secure, so senders ignore them"
            ),
            true,
        ),
        DnsStatus::Bogus { .. } => (
            Severity::Critical,
            format!(
                "the TLSA lookup of {owner} fails ({}): DANE senders defer mail to this host",
                lookup.status
            ),
            true,
        ),
        DnsStatus::Missing { .. } => (
            Severity::Warning,
            format!(
                "DANE not in effect for this host: no TLSA records at {owner} ({})",
                lookup.status
            ),
            true,
        ),
    };
    let check = Check::endpoint(CheckKind::TlsaSecure, ep, None, status, &message);
    (check, problem.then_some(message))
}

/// The record count within `max`, and no record twice.
pub fn tlsa_records(ep: &Endpoint, records: &[TlsaRecord], max: usize) -> Check {
    let mut seen = HashSet::new();
    let duplicates: Vec<String> = records
        .iter()
        .filter(|r| !seen.insert((*r).clone()))
        .map(ToString::to_string)
        .collect();
    let count = records.len();
    let (status, message) = if !duplicates.is_empty() {
        (
            Severity::Warning,
            format!(
                "{count} TLSA records, some more than once: {}",
                duplicates.join(", ")
            ),
        )
    } else if count > max {
        (
            Severity::Warning,
            format!(
                "{count} TLSA records at {}, more than the bound of {max}: records pile up after \
                 rollovers; remove the stale ones",
                ep.owner_name()
            ),
        )
    } else {
        (Severity::Ok, format!("{count} TLSA records (bound {max})"))
    };
    Check::endpoint(CheckKind::TlsaRecords, ep, None, status, message)
}

/// How many TTLs after dane-roll retired a record it counts as "retiring", not stale: one TTL
/// for a resolver that fetched the RRset just before the removal, one more for a secondary
/// that served the old zone a while longer (the same margin as the rollover's 2×TTL wait).
pub const RETIRING_TTLS: u32 = 2;

/// Records that match nothing served on any address probed: stale, unless they are a key the
/// store knows as pre-published (`next` or `new`), which is how `current+next` works.
pub fn tlsa_stale(
    ep: &Endpoint,
    usable: &[TlsaRecord],
    reports: &[AddressReport],
    known: &[KeyHash],
) -> Option<Check> {
    tlsa_stale_retiring(ep, usable, reports, known, &[])
}

/// [`tlsa_stale`], where `retiring` are records dane-roll retired less than 2×TTL ago
/// ([`RETIRING_TTLS`]): resolvers (and a lagging secondary) may still serve them, so they are
/// "retiring", noted but not stale.
pub fn tlsa_stale_retiring(
    ep: &Endpoint,
    usable: &[TlsaRecord],
    reports: &[AddressReport],
    known: &[KeyHash],
    retiring: &[TlsaRecord],
) -> Option<Check> {
    let probed: Vec<&AddressReport> = reports.iter().filter(|r| !r.keys.is_empty()).collect();
    if probed.is_empty() || usable.is_empty() {
        return None;
    }
    let unmatched: Vec<&TlsaRecord> = usable
        .iter()
        .filter(|record| probed.iter().all(|r| r.unmatched_records.contains(record)))
        .collect();
    let (prepublished, unknown): (Vec<&TlsaRecord>, Vec<&TlsaRecord>) = unmatched
        .into_iter()
        .partition(|record| known.iter().any(|k| k.matches(record)));
    let (going, stale): (Vec<&TlsaRecord>, Vec<&TlsaRecord>) = unknown
        .into_iter()
        .partition(|record| retiring.contains(record));
    let mut check = if stale.is_empty() {
        Check::endpoint(
            CheckKind::TlsaStale,
            ep,
            None,
            Severity::Ok,
            "every record matches a certificate served",
        )
    } else {
        let list: Vec<String> = stale.iter().map(|r| short(r)).collect();
        Check::endpoint(
            CheckKind::TlsaStale,
            ep,
            None,
            Severity::Warning,
            format!(
                "{} stale TLSA records match no certificate served: {}",
                stale.len(),
                list.join(", ")
            ),
        )
    };
    let mut notes = Vec::new();
    if !prepublished.is_empty() {
        let list: Vec<String> = prepublished.iter().map(|r| short(r)).collect();
        notes.push(format!(
            "pre-published for the next key (known to the store): {}",
            list.join(", ")
        ));
    }
    if !going.is_empty() {
        let list: Vec<String> = going.iter().map(|r| short(r)).collect();
        notes.push(format!(
            "retiring (retired by dane-roll less than 2×TTL ago; caches may still hold it): {}",
            list.join(", ")
        ));
    }
    if !notes.is_empty() {
        check.note = Some(notes.join("; "));
    }
    Some(check)
}

/// The RRSIG over the TLSA RRset: critical when expired or under a day left, a warning under
/// `warn_days`.
pub fn rrsig_expiry(ep: &Endpoint, expiry: SystemTime, warn_days: u32, now: SystemTime) -> Check {
    let left = epoch_secs(expiry) - epoch_secs(now);
    let days = left as f64 / DAY as f64;
    let when = crate::notify::rfc3339(expiry);
    let (status, message) = if left <= 0 {
        (
            Severity::Critical,
            format!("the RRSIG over the TLSA RRset expired at {when}: validation fails"),
        )
    } else if left < DAY as i64 {
        (
            Severity::Critical,
            format!("the RRSIG over the TLSA RRset expires in {days:.1} days ({when}): re-sign"),
        )
    } else if left < i64::from(warn_days) * DAY as i64 {
        (
            Severity::Warning,
            format!("the RRSIG over the TLSA RRset expires in {days:.1} days ({when})"),
        )
    } else {
        (
            Severity::Ok,
            format!("the RRSIG over the TLSA RRset expires in {days:.1} days ({when})"),
        )
    };
    Check::endpoint(CheckKind::RrsigExpiry, ep, None, status, message)
}

/// The TTL in the advised 1800–3600 range; outside it only a note.
pub fn tlsa_ttl(ep: &Endpoint, ttl: u32) -> Check {
    let check = Check::endpoint(
        CheckKind::TlsaTtl,
        ep,
        None,
        Severity::Ok,
        format!("TTL {ttl}"),
    );
    if ADVISED_TTL.contains(&ttl) {
        check
    } else {
        check.with_note(format!(
            "TTL {ttl} is outside the advised {}–{}: short TTLs load resolvers, long ones slow \
             rollovers",
            ADVISED_TTL.start(),
            ADVISED_TTL.end()
        ))
    }
}
