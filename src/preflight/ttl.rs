//! The TTL the provider will apply to our records, from what it holds at the owner name now.
//!
//! The rule is the one [`dane_roll_providers::Provider::publish`] reports after a write: an
//! RRset has one TTL, so a record added to an existing RRset is served with the RRset's TTL (the
//! rollover's wait then uses the served TTL); Cloudflare serves its "automatic" TTL 1 as 300 s.
//! Here it is said before anything is written.

use dane_roll_providers::{CLOUDFLARE_AUTO_TTL, Record, TtlNotice};

use crate::tlsa::OwnerName;

/// The TTL notice for a record of TTL `configured` at `owner`, given the provider's current
/// listing there (`existing`); `None` when the configured TTL is what will be served.
pub fn ttl_notice(
    kind: &str,
    owner: &OwnerName,
    configured: u32,
    existing: &[Record],
) -> Option<TtlNotice> {
    let notice = |served: u32, why: &'static str| {
        (served != configured).then(|| TtlNotice {
            owner: owner.to_string(),
            configured,
            served,
            why,
        })
    };
    match kind {
        "exec" | "manual" => None,
        "cloudflare" if configured == 1 => notice(
            CLOUDFLARE_AUTO_TTL,
            "Cloudflare's TTL 1 means automatic, served as 300 s",
        ),
        "cloudflare" => None,
        _ => existing
            .iter()
            .map(|r| r.ttl)
            .find(|t| *t > 0)
            .and_then(|t| {
                notice(
                    t,
                    "the RRset exists with this TTL, and an RRset has one TTL",
                )
            }),
    }
}
