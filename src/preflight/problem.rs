//! What the preflight found: one [`Finding`] per problem or notice, each naming what to fix.

use std::fmt;
use std::net::SocketAddr;

use dane_roll_providers::{ProviderError, TtlNotice};

use crate::dns::{AliasError, DnsError};
use crate::tlsa::OwnerName;

/// Whether a finding refuses publishing or only informs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Publishing would not give working DANE, or would fail: fix it first.
    Problem,
    /// Worth knowing (a CNAME followed, a TTL the provider applies); nothing to fix.
    Notice,
}

/// One finding of the preflight, for one service.
#[derive(Debug)]
pub struct Finding {
    /// The service it concerns.
    pub service: String,
    /// A problem or a notice.
    pub severity: Severity,
    /// What was found and what to do.
    pub what: Check,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {}: {}", self.service, self.what)
    }
}

/// What one check found. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Check {
    /// The zone's nameservers serve no signatures.
    #[error(
        "{provider} does not sign zone {zone}: DANE needs DNSSEC; turn on DNSSEC signing for the \
         zone (and publish its DS at the registrar) or move the zone to a provider that signs it"
    )]
    Unsigned {
        /// Who serves the zone, in words (`Hetzner`, `the nameservers`).
        provider: String,
        /// The zone.
        zone: String,
    },
    /// Signed, but the resolver does not validate it: no chain of trust (no DS at the parent).
    #[error(
        "zone {zone} is signed but does not validate through the resolver {resolver} (no AD): \
         publish the zone's DS record at the parent (the registrar), then run this check again"
    )]
    NoChain {
        /// The zone.
        zone: String,
        /// The resolver.
        resolver: SocketAddr,
    },
    /// Validation fails.
    #[error(
        "zone {zone} fails DNSSEC validation at the resolver {resolver} ({status}): fix the \
         zone's signatures or its DS at the parent before publishing TLSA records"
    )]
    Bogus {
        /// The zone.
        zone: String,
        /// The resolver.
        resolver: SocketAddr,
        /// What it said.
        status: String,
    },
    /// The resolver does not validate, so nothing can be judged secure.
    #[error("resolver {resolver}: {why}")]
    ResolverNotValidating {
        /// The resolver.
        resolver: SocketAddr,
        /// What the probe found, and what to do.
        why: String,
    },
    /// A DNS lookup needed by a check failed.
    #[error("{what}: {source}")]
    Dns {
        /// What was being checked.
        what: String,
        /// Why it failed (boxed: the error is large).
        source: Box<DnsError>,
    },
    /// The provider could not be set up (a secret missing, a malformed key).
    #[error("{0}")]
    Setup(String),
    /// The provider's read-only list failed: credentials, rights or zone.
    #[error(
        "provider {provider}: the read-only listing at {owner} failed: {source}; fix the \
         provider's credentials or rights"
    )]
    Credentials {
        /// The provider's name in the configuration.
        provider: String,
        /// The owner name listed.
        owner: OwnerName,
        /// What the provider said (boxed: the error is large).
        source: Box<ProviderError>,
    },
    /// The provider's server does not serve the zone the public NS set delegates.
    #[error(
        "provider {provider}: its server {server} {served} for zone {zone}, the delegated \
         nameservers serve serial(s) {public}: point the provider at the primary of the zone the \
         parent delegates (or fix the delegation)"
    )]
    OtherZone {
        /// The provider's name.
        provider: String,
        /// Its server.
        server: String,
        /// What the server said (`serves SOA serial N`, `answers REFUSED`).
        served: String,
        /// The zone.
        zone: String,
        /// The serials of the delegated nameservers.
        public: String,
    },
    /// An owner name outside the service's zone.
    #[error(
        "owner name {owner} is not inside zone {zone}: set the service's `zone` to the zone that \
         holds it, or fix the endpoint"
    )]
    OutsideZone {
        /// The owner name.
        owner: OwnerName,
        /// The zone.
        zone: String,
    },
    /// The owner name's CNAME chain cannot be followed (a loop, too long).
    #[error(transparent)]
    Alias(Box<AliasError>),
    /// The owner name is a CNAME: the records go where it ends.
    #[error("{alias}: the TLSA records are written, gated and retired at {target}")]
    Cname {
        /// The owner name and chain, in words.
        alias: String,
        /// Where the records go.
        target: OwnerName,
    },
    /// A wildcard answers beside the owner name.
    #[error(
        "a wildcard in zone {zone} answers at {probe} ({serves}): it also answers at {owner} \
         until a record of ours exists there, and changes what the gate sees; remove the wildcard \
         or give {owner} its own records"
    )]
    Wildcard {
        /// The zone.
        zone: String,
        /// The owner name.
        owner: OwnerName,
        /// The name asked (which does not exist).
        probe: String,
        /// What it serves there.
        serves: String,
    },
    /// The provider will serve the records with another TTL.
    #[error("{0}")]
    Ttl(TtlNotice),
}
