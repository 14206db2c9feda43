//! Whether a service's owner names are what the gate expects: inside the zone, and neither a
//! CNAME nor a wildcard changing what is served there behind the gate's back.
//!
//! A CNAME is followed as the rollover does ([`AuthorityView::follow_cname`]): the records are
//! written where it ends, which is said as a notice; a loop or a chain that is too long is a
//! problem. A wildcard is found by asking the authoritative servers for a name beside the owner
//! name that cannot exist (its first label replaced): a wildcard TLSA or CNAME answering there
//! answers at the owner name too until a record of ours exists, so what senders see changes when
//! the first record is published.

use crate::dns::{AuthorityView, Name, parse_name};
use crate::tlsa::OwnerName;

use super::Check;

/// The label put in place of the owner name's first label to look for a wildcard.
const PROBE_LABEL: &str = "_dane-roll-preflight";

/// Whether `owner` is inside `zone`.
pub fn check_inside(owner: &OwnerName, zone: &Name) -> Result<(), Check> {
    let zone_text = zone.to_ascii();
    match dane_roll_providers::relative_to(owner.as_str(), &zone_text) {
        Some(_) => Ok(()),
        None => Err(Check::OutsideZone {
            owner: owner.clone(),
            zone: dane_roll_providers::absolute(&zone_text),
        }),
    }
}

/// The CNAME chain at `owner`: `Ok(None)` when there is none, a notice when there is one.
pub async fn check_cname(view: &AuthorityView, owner: &OwnerName) -> Result<Option<Check>, Check> {
    match view.follow_cname(owner).await {
        Ok(alias) if alias.is_alias() => Ok(Some(Check::Cname {
            target: alias.target().clone(),
            alias: alias.to_string(),
        })),
        Ok(_) => Ok(None),
        Err(err) => Err(Check::Alias(Box::new(err))),
    }
}

/// Whether a wildcard answers with TLSA records or a CNAME beside `owner` in `zone`.
pub async fn check_wildcard(
    view: &AuthorityView,
    owner: &OwnerName,
    zone: &Name,
) -> Result<(), Check> {
    let Some((_, parent)) = owner.as_str().split_once('.') else {
        return Ok(());
    };
    if dane_roll_providers::relative_to(parent, &zone.to_ascii()).is_none() {
        return Ok(());
    }
    let probe_text = format!("{PROBE_LABEL}.{parent}");
    let Ok(probe) = parse_name(&probe_text) else {
        return Ok(());
    };
    let Ok(report) = view.served_in_zone(zone, &probe, &[]).await else {
        // No server to ask: the other checks say so.
        return Ok(());
    };
    for server in &report.servers {
        let Some(served) = server.served() else {
            continue;
        };
        let serves = if let Some(target) = &served.alias {
            format!("CNAME {}", target.to_ascii())
        } else if !served.records.is_empty() {
            format!("{} TLSA record(s)", served.records.len())
        } else {
            continue;
        };
        return Err(Check::Wildcard {
            zone: zone.to_ascii(),
            owner: owner.clone(),
            probe: probe_text,
            serves,
        });
    }
    Ok(())
}
