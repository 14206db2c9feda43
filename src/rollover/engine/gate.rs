//! The gate of invariant 1 and its two halves: every nameserver serves the expected records
//! ([`served_everywhere`], where the 2×TTL wait starts) and the resolver validates them
//! ([`validated`]).

use std::collections::BTreeSet;

use crate::rollover::{OwnerName, TlsaAt};
use crate::tlsa::TlsaRecord;

use super::protocol::{DnsReport, OwnerReport, ResolverAnswer};

/// The gate of invariant 1: every expected record is served by every nameserver that answered
/// (at least one per owner name, and none failing; an address not checkable from here aside)
/// and the resolver validated all of them.
/// `Err` lists what holds it.
pub fn gate(expected: &[TlsaAt], dns: &DnsReport) -> Result<(), Vec<String>> {
    let mut reasons = served_everywhere(expected, dns).err().unwrap_or_default();
    reasons.extend(validated(expected, dns).err().unwrap_or_default());
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// The expected records of each owner name, with that owner's report (a reason when the
/// owner was not checked).
fn by_owner<'a>(
    expected: &'a [TlsaAt],
    dns: &'a DnsReport,
    reasons: &mut Vec<String>,
) -> Vec<(&'a OwnerName, Vec<&'a TlsaRecord>, &'a OwnerReport)> {
    let owners: BTreeSet<&OwnerName> = expected.iter().map(|r| &r.owner).collect();
    let mut out = Vec::new();
    for owner in owners {
        let want: Vec<&TlsaRecord> = expected
            .iter()
            .filter(|r| r.owner == *owner)
            .map(|r| &r.record)
            .collect();
        match dns.owners.iter().find(|o| o.owner == *owner) {
            Some(report) => out.push((owner, want, report)),
            None => reasons.push(format!("{owner}: not checked")),
        }
    }
    out
}

/// The first half of the gate, the one the 2×TTL wait counts from (wait until every
/// authoritative server serves the records, then at least 2×TTL more): every nameserver serves
/// every expected record.
pub fn served_everywhere(expected: &[TlsaAt], dns: &DnsReport) -> Result<(), Vec<String>> {
    let mut reasons = Vec::new();
    for (owner, want, report) in by_owner(expected, dns, &mut reasons) {
        if report.nameservers.is_empty() {
            reasons.push(format!("{owner}: no nameserver answered"));
        }
        // An address not checkable from here does not hold the gate: its nameserver answered
        // at another address (a host without IPv6 still rolls; see `dns::authority`).
        for ns in report.nameservers.iter().filter(|ns| !ns.not_waited_for) {
            match &ns.records {
                Err(err) => reasons.push(format!("{owner}: {} failed: {err}", ns.nameserver)),
                Ok(served) => {
                    let lacking = want.iter().filter(|w| !served.contains(w)).count();
                    if lacking > 0 {
                        reasons.push(format!(
                            "{owner}: {} lags ({lacking} record(s) missing)",
                            ns.nameserver
                        ));
                    }
                }
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// The nameserver addresses the gate does not wait for (not checkable from here), as shown:
/// a waiting reason names them so that the operator knows what was not looked at.
pub(super) fn not_waited_for(dns: &DnsReport) -> Vec<&str> {
    let mut out: Vec<&str> = dns
        .owners
        .iter()
        .flat_map(|o| &o.nameservers)
        .filter(|ns| ns.not_waited_for)
        .map(|ns| ns.nameserver.as_str())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A waiting reason with the addresses not waited for appended.
pub(super) fn with_not_waited_for(reason: String, dns: &DnsReport) -> String {
    let skipped = not_waited_for(dns);
    if skipped.is_empty() {
        reason
    } else {
        format!("{reason}; not waited for: {}", skipped.join(", "))
    }
}

/// The second half of the gate: the resolver validates every expected record. Needed before
/// the install, but not the start of the wait: a resolver's cache of the RRset without the
/// new record expires within one TTL of the records being served everywhere, inside the wait.
pub fn validated(expected: &[TlsaAt], dns: &DnsReport) -> Result<(), Vec<String>> {
    let mut reasons = Vec::new();
    for (owner, want, report) in by_owner(expected, dns, &mut reasons) {
        match &report.validation {
            ResolverAnswer::Secure(records) => {
                let lacking = want.iter().filter(|w| !records.contains(w)).count();
                if lacking > 0 {
                    reasons.push(format!(
                        "{owner}: {} not in the resolver's answer yet",
                        crate::output::count(lacking, "record")
                    ));
                }
            }
            ResolverAnswer::Insecure => reasons.push(format!(
                "{owner}: the resolver's answer is not DNSSEC-validated (no AD)"
            )),
            ResolverAnswer::Bogus(why) => {
                reasons.push(format!(
                    "{owner}: the resolver says bogus (SERVFAIL): {why}"
                ));
            }
            ResolverAnswer::Missing => {
                reasons.push(format!("{owner}: the resolver has no TLSA records"))
            }
            ResolverAnswer::Failed(why) => reasons.push(format!("{owner}: lookup failed: {why}")),
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}
