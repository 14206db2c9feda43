//! What DNS says about the mail domains: their MX hosts, the zone of a host (where the SOA
//! lookup answers from), its nameservers, a provider guessed from their names, and whether the
//! resolver validates. Lookups go through the validating [`Resolver`]; a failed one is a
//! finding (`None`), never an error.

use hickory_proto::rr::{RData, RecordType};

use crate::dns::Resolver;
use crate::dns::parse_name;

/// The zone that holds a name: its apex and primary (SOA MNAME).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The apex, without the final dot.
    pub apex: String,
    /// The SOA MNAME, without the final dot.
    pub primary: String,
}

/// The provider, guessed from the nameservers' names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderGuess {
    /// `*.ns.cloudflare.com`.
    Cloudflare,
    /// deSEC (`ns1.desec.io`, `ns2.desec.org`).
    Desec,
    /// Anything else: dynamic update to the primary.
    Rfc2136 {
        /// The SOA MNAME.
        server: String,
    },
}

impl ProviderGuess {
    /// The configuration's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderGuess::Cloudflare => "cloudflare",
            ProviderGuess::Desec => "desec",
            ProviderGuess::Rfc2136 { .. } => "rfc2136",
        }
    }
}

/// Guess the provider from the nameservers' names and the zone's primary.
pub fn guess_provider(nameservers: &[String], zone: &Zone) -> ProviderGuess {
    let all = |suffixes: &[&str]| {
        !nameservers.is_empty()
            && nameservers.iter().all(|ns| {
                let ns = ns.trim_end_matches('.').to_ascii_lowercase();
                suffixes.iter().any(|s| ns.ends_with(s))
            })
    };
    if all(&[".ns.cloudflare.com"]) {
        ProviderGuess::Cloudflare
    } else if all(&[".desec.io", ".desec.org"]) {
        ProviderGuess::Desec
    } else {
        ProviderGuess::Rfc2136 {
            server: zone.primary.clone(),
        }
    }
}

fn bare(name: &impl ToString) -> String {
    name.to_string().trim_end_matches('.').to_ascii_lowercase()
}

/// The MX hosts of `domain` (by preference), or why the lookup failed.
pub async fn mx_hosts(resolver: &Resolver, domain: &str) -> Result<Vec<String>, String> {
    let lookup = resolver.mx(domain).await.map_err(|e| e.to_string())?;
    Ok(lookup.records.iter().map(|m| bare(&m.host)).collect())
}

/// The zone holding `name`: the owner of the SOA in the answer (at an apex) or in the
/// authority section (below one).
pub async fn zone_of(resolver: &Resolver, name: &str) -> Option<Zone> {
    let name = parse_name(name).ok()?;
    let answer = resolver.raw(&name, RecordType::SOA).await.ok()?;
    answer
        .answers
        .iter()
        .chain(answer.authorities.iter())
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(Zone {
                apex: bare(&r.name),
                primary: bare(&soa.mname),
            }),
            _ => None,
        })
}

/// The NS RRset of `zone` (names, sorted); empty when the lookup failed.
pub async fn nameservers(resolver: &Resolver, zone: &str) -> Vec<String> {
    let Ok(lookup) = resolver.lookup(zone, RecordType::NS).await else {
        return Vec::new();
    };
    let mut names: Vec<String> = lookup
        .records
        .iter()
        .filter_map(|r| match r {
            RData::NS(ns) => Some(bare(&ns.0)),
            _ => None,
        })
        .collect();
    names.sort();
    names
}

/// Whether the resolver validates (asked for a name in `zone`); `None` when it did not answer.
pub async fn validates(resolver: &Resolver, zone: &str) -> Option<bool> {
    resolver
        .probe_validation(zone)
        .await
        .ok()
        .map(|p| p.is_validating())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        Zone {
            apex: "example.com".into(),
            primary: "ns1.example.com".into(),
        }
    }

    #[test]
    fn provider_from_nameserver_names() {
        let ns = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            guess_provider(
                &ns(&["ada.ns.cloudflare.com.", "bob.NS.cloudflare.com"]),
                &zone()
            ),
            ProviderGuess::Cloudflare
        );
        assert_eq!(
            guess_provider(&ns(&["ns1.desec.io", "ns2.desec.org"]), &zone()),
            ProviderGuess::Desec
        );
        // A mixed set is not one provider's: dynamic update to the primary.
        assert_eq!(
            guess_provider(&ns(&["ns1.desec.io", "ns2.example.net"]), &zone()),
            ProviderGuess::Rfc2136 {
                server: "ns1.example.com".into()
            }
        );
        assert_eq!(guess_provider(&[], &zone()).kind(), "rfc2136");
    }
}
