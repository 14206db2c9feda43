//! The TTL that governs the 2×TTL wait: the largest TTL resolvers may really hold the TLSA
//! RRset with, not only the one the service is configured with.
//!
//! Resolvers hold what the authorities *served*. When an owner's RRset was served with a larger
//! TTL before the rollover (set by hand, lowered in the configuration later, raised by the
//! provider's minimum), a resolver may keep the old RRset, without the new record, that long. So
//! the wait lasts 2× the largest TTL seen for the gate's owner names, at any nameserver or at the
//! resolver, from the look taken before the first record is published until the records are
//! confirmed served everywhere; never less than 2× the configured TTL. [`fold`] takes one DNS
//! report into the rollover's [`TtlSeen`]; [`served_after_change`] finds the TTL the nameservers
//! serve once our records are out, for the one warning when a provider changed it.

use serde::{Deserialize, Serialize};

use super::engine::{DnsReport, OwnerReport};
use super::{OwnerName, Timestamp};

/// The largest TTL seen for the rollover's TLSA RRsets, and where: what the wait counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TtlSeen {
    /// The TTL, seconds.
    pub ttl: u32,
    /// The owner name whose RRset carried it.
    pub owner: OwnerName,
    /// Who served it: a nameserver (name and address) or `resolver`.
    pub source: String,
    /// When it was seen.
    pub time: Timestamp,
}

/// The label of the validating resolver as a [`TtlSeen::source`].
pub const RESOLVER: &str = "resolver";

/// Every TTL in `dns` for the `owners`' TLSA RRsets: (owner, source, ttl).
///
/// A nameserver's answer carries the TTL the zone holds (what a resolver caches it with). A
/// resolver's answer carries the *remaining* TTL of its cached copy, counting down: no more than
/// the TTL it was served with, so it is a lower bound of what resolvers hold, and it says the
/// copy it holds now expires within that many seconds. It still counts: a resolver that capped
/// or kept an RRset longer than the authorities now say shows it here.
pub fn observed<'a>(
    owners: &'a [OwnerName],
    dns: &'a DnsReport,
) -> impl Iterator<Item = (&'a OwnerName, &'a str, u32)> + 'a {
    at_owners(owners, dns).flat_map(|o| {
        let servers = o
            .nameservers
            .iter()
            .filter_map(move |ns| ns.ttl.map(|t| (&o.owner, ns.nameserver.as_str(), t)));
        let resolver = o.resolver_ttl.map(|t| (&o.owner, RESOLVER, t));
        servers.chain(resolver)
    })
}

/// The reports in `dns` about the `owners`.
fn at_owners<'a>(
    owners: &'a [OwnerName],
    dns: &'a DnsReport,
) -> impl Iterator<Item = &'a OwnerReport> + 'a {
    dns.owners.iter().filter(|o| owners.contains(&o.owner))
}

/// `seen` with the TTLs of `dns` at `owners` folded in: the largest wins (the first seen of
/// equals stays). Returns whether it grew.
pub fn fold(
    seen: &mut Option<TtlSeen>,
    owners: &[OwnerName],
    dns: &DnsReport,
    now: Timestamp,
) -> bool {
    let mut grew = false;
    for (owner, source, ttl) in observed(owners, dns) {
        if seen.as_ref().is_none_or(|s| ttl > s.ttl) {
            *seen = Some(TtlSeen {
                ttl,
                owner: owner.clone(),
                source: source.to_owned(),
                time: now,
            });
            grew = true;
        }
    }
    grew
}

/// The TTL the nameservers serve the gate's owner names with once our records are out, when it
/// is not `configured`: the largest such, with where. `None` when every answer says `configured`.
pub fn served_after_change(
    owners: &[OwnerName],
    dns: &DnsReport,
    configured: u32,
) -> Option<(u32, OwnerName, String)> {
    at_owners(owners, dns)
        .flat_map(|o| {
            o.nameservers
                .iter()
                .filter_map(move |ns| ns.ttl.map(|t| (t, o.owner.clone(), ns.nameserver.clone())))
        })
        .filter(|(t, _, _)| *t != configured)
        .max_by_key(|(t, _, _)| *t)
}
