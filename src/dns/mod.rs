//! The DNS view of dane-roll: validated lookups through the configured resolver ([`resolve`]) and
//! the authoritative view, one query per nameserver address ([`authority`]), and where an owner
//! name's TLSA RRset really lives when the owner name is a CNAME ([`alias`]).
//!
//! Together they make the rollover gate (docs/ARCHITECTURE.md, safety invariant 1): a certificate goes live only
//! once its TLSA record is served by *every* authoritative server ([`AuthorityView`]) and
//! validates through the resolver ([`Resolver::tlsa`] says [`Status::Secure`]). The monitor uses
//! the same lookups for its checklist (MX RRset secure, TLSA present and secure, `_tcp.<host>` not
//! NXDOMAIN, RRSIG expiry, a resolver that does not validate).
//!
//! Queries go out with the DO bit and, to a resolver, the AD bit set (RFC 6840 §5.7), over UDP
//! with a TCP retry when the answer is truncated; nameservers are asked with RD=0, over UDP first
//! and TCP on truncation or when UDP brings no answer (`authority::transport`).
//! Everything is async, runs on one tokio runtime (current-thread is enough) and never panics on
//! what a server sends.

pub mod alias;
pub mod authority;
pub mod resolve;
mod wire;
mod zone_ttl;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use alias::{Alias, AliasError};
pub use authority::{
    AuthorityReport, AuthorityView, DEFAULT_NAMESERVER_CONCURRENCY, NOT_WAITED_FOR, Nameserver,
    Served, ServerFailure, ServerReport,
};
pub use hickory_proto::rr::{Name, RecordType};
pub use resolve::{Lookup, MxHost, Resolver, TcpParent, ValidationProbe, rrsig_time};

/// How many CNAME hops a lookup follows before it gives up (a loop, or a silly chain).
pub const MAX_CNAME_HOPS: usize = 8;

/// The EDNS UDP payload size offered (DNS Flag Day 2020).
pub const EDNS_PAYLOAD: u16 = 1232;

/// What a validating resolver said about an answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// Records, and the resolver set AD: DNSSEC-validated.
    Secure,
    /// Records without AD: the zone (or a hop of the alias chain) is unsigned, or the resolver
    /// does not validate (see [`Resolver::probe_validation`]).
    Insecure,
    /// SERVFAIL: for a validating resolver, most often a DNSSEC failure. Senders that do DANE
    /// defer mail to this host.
    Bogus {
        /// The Extended DNS Error (RFC 8914) the resolver gave, if any.
        ede: Option<Ede>,
    },
    /// No records of the type: NXDOMAIN or NODATA.
    Missing {
        /// Whether the denial was validated (AD).
        secure: bool,
        /// NXDOMAIN (the name does not exist) rather than NODATA (no records of this type).
        nxdomain: bool,
    },
}

impl Status {
    /// Whether the answer (records or denial) was validated.
    pub fn is_secure(&self) -> bool {
        matches!(self, Status::Secure | Status::Missing { secure: true, .. })
    }

    /// Whether the status is SERVFAIL.
    pub fn is_bogus(&self) -> bool {
        matches!(self, Status::Bogus { .. })
    }

    /// The same status when an earlier part of the answer (an alias hop) was not secure.
    pub(crate) fn downgraded(self, earlier_secure: bool) -> Status {
        if earlier_secure {
            return self;
        }
        match self {
            Status::Secure => Status::Insecure,
            Status::Missing { nxdomain, .. } => Status::Missing {
                secure: false,
                nxdomain,
            },
            other => other,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Secure => f.write_str("secure"),
            Status::Insecure => f.write_str("insecure (no AD)"),
            Status::Bogus { ede: Some(ede) } => write!(f, "bogus (SERVFAIL, {ede})"),
            Status::Bogus { ede: None } => f.write_str("bogus (SERVFAIL)"),
            Status::Missing { secure, nxdomain } => write!(
                f,
                "{} ({})",
                if *nxdomain { "NXDOMAIN" } else { "no data" },
                if *secure {
                    "secure denial"
                } else {
                    "not validated"
                }
            ),
        }
    }
}

/// An Extended DNS Error (RFC 8914): an info code and an optional text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ede {
    /// The INFO-CODE.
    pub code: u16,
    /// The EXTRA-TEXT (may be empty).
    pub text: String,
}

impl Ede {
    /// The registered name of the info code (RFC 8914 §4), if known.
    pub fn code_name(&self) -> Option<&'static str> {
        Some(match self.code {
            0 => "Other Error",
            1 => "Unsupported DNSKEY Algorithm",
            2 => "Unsupported DS Digest Type",
            3 => "Stale Answer",
            4 => "Forged Answer",
            5 => "DNSSEC Indeterminate",
            6 => "DNSSEC Bogus",
            7 => "Signature Expired",
            8 => "Signature Not Yet Valid",
            9 => "DNSKEY Missing",
            10 => "RRSIGs Missing",
            11 => "No Zone Key Bit Set",
            12 => "NSEC Missing",
            13 => "Cached Error",
            14 => "Not Ready",
            15 => "Blocked",
            16 => "Censored",
            17 => "Filtered",
            18 => "Prohibited",
            19 => "Stale NXDomain Answer",
            20 => "Not Authoritative",
            21 => "Not Supported",
            22 => "No Reachable Authority",
            23 => "Network Error",
            24 => "Invalid Data",
            _ => return None,
        })
    }
}

impl fmt::Display for Ede {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EDE {}", self.code)?;
        if let Some(name) = self.code_name() {
            write!(f, " {name}")?;
        }
        if !self.text.is_empty() {
            write!(f, ": {}", self.text)?;
        }
        Ok(())
    }
}

/// Why a lookup through the resolver could not be made at all. (What a nameserver did wrong in
/// the authoritative view is a [`ServerFailure`] in the report, not an error.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The name cannot be a domain name.
    #[error("\"{name}\" is not a valid domain name: {reason}")]
    BadName {
        /// What was given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No answer in time.
    #[error(
        "the resolver {resolver} did not answer {query} within {} s: check that it runs and \
         that [resolver] address in the configuration names it",
        timeout.as_secs_f64()
    )]
    Timeout {
        /// The resolver.
        resolver: SocketAddr,
        /// `name TYPE`.
        query: String,
        /// How long it had.
        timeout: Duration,
    },
    /// The resolver could not be reached (connection refused, no route, …).
    #[error(
        "the resolver {resolver} could not be reached for {query}: {reason}; check that it runs \
         and that [resolver] address in the configuration names it"
    )]
    Unreachable {
        /// The resolver.
        resolver: SocketAddr,
        /// `name TYPE`.
        query: String,
        /// The network error.
        reason: String,
    },
    /// The resolver answered with an error code other than SERVFAIL and NXDOMAIN.
    #[error(
        "the resolver {resolver} answered {query} with {rcode}: it does not resolve for this host; \
         allow this host in its access control or configure another resolver"
    )]
    Refused {
        /// The resolver.
        resolver: SocketAddr,
        /// `name TYPE`.
        query: String,
        /// REFUSED, NOTIMP, FORMERR, …
        rcode: String,
    },
    /// The answer could not be used (wrong question, undecodable).
    #[error("the resolver {resolver} sent an unusable answer to {query}: {reason}")]
    Malformed {
        /// The resolver.
        resolver: SocketAddr,
        /// `name TYPE`.
        query: String,
        /// What is wrong.
        reason: String,
    },
    /// An alias chain longer than [`MAX_CNAME_HOPS`] or looping.
    #[error(
        "the CNAME chain from {name} is longer than {MAX_CNAME_HOPS} hops or loops: fix the \
         aliases in DNS"
    )]
    CnameChain {
        /// Where the chain started.
        name: String,
    },
    /// No SOA found above a name.
    #[error(
        "no zone found for {name}: the resolver {resolver} returned no SOA for it or any parent"
    )]
    NoZone {
        /// The name.
        name: String,
        /// The resolver.
        resolver: SocketAddr,
    },
    /// The zone has no NS records, or none of them has an address.
    #[error("the zone {zone} has no nameserver with an address ({reason}): check its NS records")]
    NoNameservers {
        /// The zone.
        zone: String,
        /// What was found.
        reason: String,
    },
    /// In-process validation with a trust anchor file is not available.
    #[error(
        "in-process DNSSEC validation (trust anchor {path}) is not supported yet: remove \
         [resolver] trust-anchor and point [resolver] address at a validating resolver (e.g. a \
         local Unbound)"
    )]
    Unsupported {
        /// The configured trust anchor file.
        path: PathBuf,
    },
}

/// The mnemonic of a response code as dig prints it (`REFUSED`, `SERVFAIL`, …).
pub fn rcode_name(rcode: hickory_proto::op::ResponseCode) -> String {
    use hickory_proto::op::ResponseCode as R;
    match rcode {
        R::NoError => "NOERROR".into(),
        R::FormErr => "FORMERR".into(),
        R::ServFail => "SERVFAIL".into(),
        R::NXDomain => "NXDOMAIN".into(),
        R::NotImp => "NOTIMP".into(),
        R::Refused => "REFUSED".into(),
        R::YXDomain => "YXDOMAIN".into(),
        R::YXRRSet => "YXRRSET".into(),
        R::NXRRSet => "NXRRSET".into(),
        R::NotAuth => "NOTAUTH".into(),
        R::NotZone => "NOTZONE".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// Parse a name given by a user or a configuration into an absolute [`Name`].
pub fn parse_name(text: &str) -> Result<Name, DnsError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DnsError::BadName {
            name: text.to_string(),
            reason: "it is empty".into(),
        });
    }
    let mut name = Name::from_ascii(trimmed).map_err(|e| DnsError::BadName {
        name: text.to_string(),
        reason: e.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name)
}
