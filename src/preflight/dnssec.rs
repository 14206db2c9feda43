//! Whether a zone can carry DANE: its nameservers sign it and the configured resolver validates
//! it (a chain of trust from the parent's DS, or the resolver's trust anchor, to its DNSKEY).
//!
//! The resolver's answer for the zone's DNSKEY decides: AD set is secure. Without AD, the
//! authoritative servers tell an unsigned zone (no RRSIG: the provider does not sign it) from a
//! signed one the resolver cannot reach by a chain (no DS at the parent), and a probe of the
//! resolver tells a resolver that does not validate at all.

use crate::dns::{AuthorityView, Name, RecordType, Status, ValidationProbe};

use super::Check;

/// Check that `zone` is signed and validates through `view`'s resolver. `provider` names who
/// serves the zone, for the message (`Hetzner`, `the nameservers`).
pub async fn check_zone(view: &AuthorityView, zone: &Name, provider: &str) -> Result<(), Check> {
    let resolver = view.resolver();
    let zone_text = zone.to_ascii();
    let dns = |source: crate::dns::DnsError| Check::Dns {
        what: format!("zone {zone_text}: DNSKEY through the resolver"),
        source: Box::new(source),
    };
    let lookup = resolver
        .lookup(&zone_text, RecordType::DNSKEY)
        .await
        .map_err(dns)?;
    match lookup.status {
        Status::Secure => return Ok(()),
        Status::Bogus { .. } => {
            return Err(Check::Bogus {
                zone: zone_text,
                resolver: resolver.address(),
                status: lookup.status.to_string(),
            });
        }
        Status::Insecure | Status::Missing { .. } => {}
    }
    // Not secure: is the zone signed at all? Its own servers answer with RRSIGs if so.
    let report = view
        .served_in_zone(zone, zone, &[])
        .await
        .map_err(|source| Check::Dns {
            what: format!("zone {zone_text}: its nameservers"),
            source: Box::new(source),
        })?;
    if !report.zone_signed() {
        return Err(Check::Unsigned {
            provider: provider.to_owned(),
            zone: zone_text,
        });
    }
    let probe = resolver.probe_validation(&zone_text).await.map_err(dns)?;
    match probe {
        ValidationProbe::NotRecursive
        | ValidationProbe::NoAdOnSignedData
        | ValidationProbe::NoDnssec => Err(Check::ResolverNotValidating {
            resolver: resolver.address(),
            why: probe.to_string(),
        }),
        _ => Err(Check::NoChain {
            zone: zone_text,
            resolver: resolver.address(),
        }),
    }
}

/// Who serves a zone of provider kind `kind`, in words for [`Check::Unsigned`].
pub fn operator(kind: &str) -> &'static str {
    match kind {
        "cloudflare" => "Cloudflare",
        "desec" => "deSEC",
        "hetzner" => "Hetzner",
        "gandi" => "Gandi",
        "route53" => "Route 53",
        "ovh" => "OVHcloud",
        "inwx" => "INWX",
        "transip" => "TransIP",
        "google" => "Google Cloud DNS",
        "powerdns" => "PowerDNS",
        _ => "the zone's nameservers",
    }
}
