//! Validated lookups through the configured resolver: TLSA, MX, A/AAAA, any type, each answer
//! classified as secure, insecure, bogus or missing ([`Status`]), with its TTL, the expiry of the
//! RRSIG over the answer, and the alias chain that led to it.
//!
//! The resolver's AD bit is what makes an answer secure: only a trusted validating resolver
//! (a local Unbound, say) should be configured, and [`Resolver::probe_validation`] tells one that
//! never sets AD from one that does. A TLSA owner that is a CNAME is followed (RFC 7671 §7): the
//! lookup is secure only when every hop is, which a single AD bit over the whole answer says.
//!
//! This file holds the lookups; reading one answer (status, TTL, RRSIG expiry, alias chain,
//! Extended DNS Errors) is in `resolve/answer.rs`.

mod answer;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::wire::{self, Transport};
use super::{DnsError, Ede, MAX_CNAME_HOPS, Status, parse_name};
use crate::config::ResolverSettings;
use crate::tlsa::TlsaRecord;

use answer::chain_incomplete;
#[cfg(test)]
pub(crate) use answer::classify_at;
pub use answer::{classify, rrsig_time};
pub(crate) use answer::{edes, merge_addresses, tlsa_from_rdata};

/// One answer from the resolver, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<T> {
    /// The name asked for.
    pub name: Name,
    /// The owner of the records: the name asked for, or the end of its CNAME chain.
    pub owner: Name,
    /// Every name from the one asked for to [`Lookup::owner`]; one element when there is no alias.
    pub chain: Vec<Name>,
    /// Secure, insecure, bogus or missing; for an alias chain, secure only if every hop is.
    pub status: Status,
    /// The records at the owner.
    pub records: Vec<T>,
    /// Records at the owner that could not be turned into `T` (e.g. TLSA with usage 4), as text.
    pub skipped: Vec<String>,
    /// The TTL of the answer RRset (the smallest), or the negative TTL of a denial.
    pub ttl: Option<u32>,
    /// When the RRSIG over the answer RRset expires (the earliest, if several).
    pub rrsig_expiry: Option<SystemTime>,
    /// Extended DNS Errors the resolver attached.
    pub ede: Vec<Ede>,
}

impl<T> Lookup<T> {
    /// Whether the records (or their absence) were validated, along the whole alias chain.
    pub fn is_secure(&self) -> bool {
        self.status.is_secure()
    }

    /// Whether the name asked for was an alias.
    pub fn is_alias(&self) -> bool {
        self.chain.len() > 1
    }

    fn map<U>(self, records: Vec<U>, skipped: Vec<String>) -> Lookup<U> {
        Lookup {
            name: self.name,
            owner: self.owner,
            chain: self.chain,
            status: self.status,
            records,
            skipped,
            ttl: self.ttl,
            rrsig_expiry: self.rrsig_expiry,
            ede: self.ede,
        }
    }
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MxHost {
    /// The preference (lower first).
    pub preference: u16,
    /// The exchange; the root name for a null MX (RFC 7505).
    pub host: Name,
}

/// What `_tcp.<host>` says: the empty non-terminal above the TLSA owner must exist, or
/// QNAME-minimising resolvers stop there and never see the TLSA record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpParent {
    /// NOERROR (NODATA, or records): fine.
    Exists(Status),
    /// NXDOMAIN although a name below exists: the nameserver gets empty non-terminals wrong.
    Nxdomain {
        /// Whether the NXDOMAIN was validated.
        secure: bool,
    },
    /// SERVFAIL.
    Bogus(Status),
}

impl TcpParent {
    /// Classify the status of a query at `_tcp.<host>`.
    pub fn from_status(status: &Status) -> TcpParent {
        match status {
            Status::Missing {
                nxdomain: true,
                secure,
            } => TcpParent::Nxdomain { secure: *secure },
            Status::Bogus { .. } => TcpParent::Bogus(status.clone()),
            other => TcpParent::Exists(other.clone()),
        }
    }

    /// Whether this is the pitfall (NXDOMAIN or SERVFAIL at the empty non-terminal).
    pub fn is_problem(&self) -> bool {
        !matches!(self, TcpParent::Exists(_))
    }
}

impl fmt::Display for TcpParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpParent::Exists(status) => write!(f, "exists ({status})"),
            TcpParent::Nxdomain { .. } => f.write_str(
                "NXDOMAIN: QNAME-minimising resolvers stop here and never find the TLSA record; \
                 the nameserver must answer NOERROR for empty non-terminals (RFC 8020)",
            ),
            TcpParent::Bogus(status) => write!(
                f,
                "{status}: resolvers cannot get past this name to the TLSA record"
            ),
        }
    }
}

/// Whether the configured resolver validates DNSSEC, from one query for a name known to be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationProbe {
    /// AD set: the resolver validates.
    Validating,
    /// The resolver does not recurse (RA clear): an authoritative server, not a resolver.
    NotRecursive,
    /// Signed data (RRSIGs) but no AD: the resolver passes DNSSEC records through without
    /// validating them.
    NoAdOnSignedData,
    /// Neither RRSIGs nor AD: the resolver strips DNSSEC, or the probe name is not signed.
    NoDnssec,
    /// SERVFAIL for the probe name: the resolver validates, but that name does not.
    Bogus(Status),
}

impl ValidationProbe {
    /// Whether AD bits from this resolver mean something.
    pub fn is_validating(&self) -> bool {
        matches!(
            self,
            ValidationProbe::Validating | ValidationProbe::Bogus(_)
        )
    }

    /// Classify the resolver's answer to the probe.
    pub fn from_answer(answer: &Message) -> ValidationProbe {
        if answer.metadata.response_code == ResponseCode::ServFail {
            return ValidationProbe::Bogus(Status::Bogus {
                ede: edes(answer).into_iter().next(),
            });
        }
        if answer.metadata.authentic_data {
            return ValidationProbe::Validating;
        }
        if !answer.metadata.recursion_available {
            return ValidationProbe::NotRecursive;
        }
        let signed = answer
            .answers
            .iter()
            .chain(&answer.authorities)
            .any(|r| r.record_type() == RecordType::RRSIG);
        if signed {
            ValidationProbe::NoAdOnSignedData
        } else {
            ValidationProbe::NoDnssec
        }
    }
}

impl fmt::Display for ValidationProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValidationProbe::Validating => "the resolver validates DNSSEC (AD set)",
            ValidationProbe::NotRecursive => {
                "the resolver does not recurse (RA clear): it is an authoritative server; \
                 configure a validating resolver"
            }
            ValidationProbe::NoAdOnSignedData => {
                "the resolver returns signed data without AD: it does not validate DNSSEC; \
                 enable validation (e.g. Unbound's auto-trust-anchor-file) or use another resolver"
            }
            ValidationProbe::NoDnssec => {
                "the resolver returned neither RRSIGs nor AD for a signed name: it does not do \
                 DNSSEC; use a validating resolver"
            }
            ValidationProbe::Bogus(_) => {
                "the resolver validates, but the probe name itself fails validation (SERVFAIL)"
            }
        })
    }
}

/// How answers are judged secure.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Validation {
    /// Trust the resolver's AD bit.
    ResolverAd,
}

/// A handle on the validating resolver: cheap to clone, construct once and reuse.
#[derive(Debug, Clone)]
pub struct Resolver {
    address: SocketAddr,
    timeout: Duration,
    validation: Validation,
}

impl Resolver {
    /// A resolver at `address` whose AD bit is trusted; each query may take `timeout`.
    pub fn new(address: SocketAddr, timeout: Duration) -> Resolver {
        Resolver {
            address,
            timeout,
            validation: Validation::ResolverAd,
        }
    }

    /// The resolver of the configuration. A trust anchor file (in-process validation) is not
    /// supported yet: [`DnsError::Unsupported`].
    pub fn from_settings(settings: &ResolverSettings) -> Result<Resolver, DnsError> {
        if let Some(path) = &settings.trust_anchor {
            return Err(unsupported(path.clone()));
        }
        Ok(Resolver::new(settings.address, settings.timeout))
    }

    /// Where queries go.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// How long one query may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Ask the resolver `name`/`rtype` and return its raw answer (for checks not covered here).
    pub async fn raw(&self, name: &Name, rtype: RecordType) -> Result<Message, DnsError> {
        debug_assert_eq!(self.validation, Validation::ResolverAd);
        let query = wire::build_query(name, rtype, true);
        let answer = wire::exchange_udp_tcp(self.address, query, self.timeout)
            .await
            .map_err(|t| self.transport_error(name, rtype, t))?;
        match answer.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain | ResponseCode::ServFail => Ok(answer),
            other => Err(DnsError::Refused {
                resolver: self.address,
                query: format!("{name} {rtype}"),
                rcode: super::rcode_name(other),
            }),
        }
    }

    fn transport_error(&self, name: &Name, rtype: RecordType, t: Transport) -> DnsError {
        let query = format!("{name} {rtype}");
        match t {
            Transport::Timeout => DnsError::Timeout {
                resolver: self.address,
                query,
                timeout: self.timeout,
            },
            Transport::Refused => DnsError::Unreachable {
                resolver: self.address,
                query,
                reason: "connection refused".into(),
            },
            Transport::Network(reason) | Transport::Unreachable(reason) => DnsError::Unreachable {
                resolver: self.address,
                query,
                reason,
            },
            Transport::Malformed(reason) => DnsError::Malformed {
                resolver: self.address,
                query,
                reason,
            },
        }
    }

    /// Look up `name`/`rtype`, following CNAMEs (unless `rtype` is CNAME), and classify.
    pub async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Lookup<RData>, DnsError> {
        let name = parse_name(name)?;
        self.lookup_name(&name, rtype).await
    }

    /// [`Resolver::lookup`] for a parsed name.
    pub async fn lookup_name(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> Result<Lookup<RData>, DnsError> {
        let answer = self.raw(name, rtype).await?;
        let mut lookup = classify(&answer, name, rtype);
        // A resolver completes alias chains itself; when one stops at a CNAME target with neither
        // data nor a denial for it, ask for the target. Each hop must be secure.
        let mut incomplete = chain_incomplete(&answer, &lookup, rtype);
        while incomplete {
            if lookup.chain.len() > MAX_CNAME_HOPS {
                return Err(DnsError::CnameChain {
                    name: name.to_string(),
                });
            }
            let target = lookup.owner.clone();
            let next_answer = self.raw(&target, rtype).await?;
            let next = classify(&next_answer, &target, rtype);
            incomplete = chain_incomplete(&next_answer, &next, rtype);
            let earlier_secure = lookup.status.is_secure();
            let mut chain = lookup.chain;
            for hop in next.chain.iter().skip(1) {
                if chain.contains(hop) {
                    return Err(DnsError::CnameChain {
                        name: name.to_string(),
                    });
                }
                chain.push(hop.clone());
            }
            lookup = Lookup {
                name: name.clone(),
                chain,
                status: next.status.clone().downgraded(earlier_secure),
                ..next
            };
        }
        Ok(lookup)
    }

    /// The TLSA records at `owner` (e.g. `_25._tcp.mail.example.com`), validated.
    pub async fn tlsa(&self, owner: &str) -> Result<Lookup<TlsaRecord>, DnsError> {
        Ok(tlsa_records(self.lookup(owner, RecordType::TLSA).await?))
    }

    /// The MX records of `domain`, sorted by preference.
    pub async fn mx(&self, domain: &str) -> Result<Lookup<MxHost>, DnsError> {
        let lookup = self.lookup(domain, RecordType::MX).await?;
        let mut records: Vec<MxHost> = lookup
            .records
            .iter()
            .filter_map(|r| match r {
                RData::MX(mx) => Some(MxHost {
                    preference: mx.preference,
                    host: mx.exchange.clone(),
                }),
                _ => None,
            })
            .collect();
        records.sort();
        Ok(lookup.map(records, Vec::new()))
    }

    /// The IPv4 and IPv6 addresses of `host` (A and AAAA asked concurrently). Secure only if both
    /// answers are; bogus if either is.
    pub async fn addresses(&self, host: &str) -> Result<Lookup<IpAddr>, DnsError> {
        let name = parse_name(host)?;
        let (v4, v6) = tokio::join!(
            self.lookup_name(&name, RecordType::A),
            self.lookup_name(&name, RecordType::AAAA)
        );
        Ok(merge_addresses(v4?, v6?))
    }

    /// Query `_tcp.<host>` (type A, as internet.nl does) and say whether the empty non-terminal
    /// above the TLSA owner exists.
    pub async fn tcp_parent(&self, host: &str) -> Result<(TcpParent, Lookup<RData>), DnsError> {
        let host = parse_name(host)?;
        let name = host.prepend_label("_tcp").map_err(|e| DnsError::BadName {
            name: format!("_tcp.{host}"),
            reason: e.to_string(),
        })?;
        let lookup = self.lookup_name(&name, RecordType::A).await?;
        Ok((TcpParent::from_status(&lookup.status), lookup))
    }

    /// Whether the resolver validates: ask for the SOA of `signed_name`, a name known to be in a
    /// signed zone (the zone of the TLSA owner, say). A resolver that does not validate makes
    /// every answer [`Status::Insecure`], so the monitor reports UNKNOWN rather than trusting it.
    pub async fn probe_validation(&self, signed_name: &str) -> Result<ValidationProbe, DnsError> {
        let name = parse_name(signed_name)?;
        let answer = self.raw(&name, RecordType::SOA).await?;
        Ok(ValidationProbe::from_answer(&answer))
    }
}

pub(crate) fn unsupported(path: PathBuf) -> DnsError {
    DnsError::Unsupported { path }
}

/// A TLSA lookup's records read as [`TlsaRecord`]s; what cannot be read is skipped, with why.
pub(crate) fn tlsa_records(lookup: Lookup<RData>) -> Lookup<TlsaRecord> {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for rdata in &lookup.records {
        match rdata {
            RData::TLSA(t) => match tlsa_from_rdata(t) {
                Ok(r) => records.push(r),
                Err(why) => skipped.push(why),
            },
            other => skipped.push(format!("{other}")),
        }
    }
    lookup.map(records, skipped)
}
