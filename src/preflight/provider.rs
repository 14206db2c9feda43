//! Whether the service's provider works and serves the zone the public NS set delegates.
//!
//! Every provider lists the TLSA records at an owner name: that read-only call proves the
//! credentials and rights (an API answers 401/403 or "unknown zone"; an RFC 2136 server checks the
//! TSIG signature of the query). Where the provider kind names a server (rfc2136), its SOA serial
//! for the zone is compared with what the delegated nameservers serve: a server that answers for
//! another copy of the zone would take updates no sender ever sees.

use std::net::IpAddr;

use dane_roll_providers::{Provider, Record};

use crate::config::{ProviderKind, ServerAddr};
use crate::dns::{AuthorityReport, AuthorityView, Name};
use crate::tlsa::OwnerName;

use super::Check;

/// List the TLSA records at `owner` through `provider` (named `name` in the configuration).
pub async fn check_credentials(
    provider: &Provider,
    name: &str,
    owner: &OwnerName,
) -> Result<Vec<Record>, Check> {
    provider
        .list(owner.as_str())
        .await
        .map_err(|source| Check::Credentials {
            provider: name.to_owned(),
            owner: owner.clone(),
            source: Box::new(source),
        })
}

/// For a provider kind with a server of its own (rfc2136): whether that server serves the SOA
/// serial one of the delegated nameservers (`public`) serves for `zone`.
pub async fn check_served_zone(
    view: &AuthorityView,
    kind: &ProviderKind,
    name: &str,
    zone: &Name,
    public: &AuthorityReport,
) -> Result<(), Check> {
    let ProviderKind::Rfc2136 { server, .. } = kind else {
        return Ok(());
    };
    let Some(address) = server_address(view, server).await else {
        // A host name the resolver cannot resolve: the listing has already said so.
        return Ok(());
    };
    let own = view
        .clone()
        .with_port(server.port)
        .ask(zone, address, zone, zone)
        .await;
    let serials: Vec<u32> = public.servers.iter().filter_map(|s| s.serial()).collect();
    if serials.is_empty() {
        return Ok(());
    }
    let served = match own.serial() {
        Some(serial) if serials.contains(&serial) => return Ok(()),
        Some(serial) => format!("serves SOA serial {serial}"),
        None => match own.failure() {
            Some(failure) => format!("gives no SOA ({failure})"),
            None => "gives no SOA".to_owned(),
        },
    };
    let public = serials
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Err(Check::OtherZone {
        provider: name.to_owned(),
        server: server.to_string(),
        served,
        zone: zone.to_ascii(),
        public,
    })
}

async fn server_address(view: &AuthorityView, server: &ServerAddr) -> Option<IpAddr> {
    if let Ok(ip) = server.host.trim_matches(['[', ']']).parse() {
        return Some(ip);
    }
    let lookup = view.resolver().addresses(&server.host).await.ok()?;
    lookup.records.first().copied()
}
