//! The authoritative view: the zone cut above an owner name, its NS set, every address of every
//! nameserver, and what each address serves, asked directly with RD=0 and DO set
//! (UDP first, TCP on truncation or when UDP brings no answer: [`transport`]).
//!
//! This is the first half of the rollover gate (invariant 1): a certificate is never installed
//! before its TLSA record is served by *every* authoritative server. A lagging secondary (an
//! older serial, the record missing) or an unreachable one holds the gate closed; the report
//! says which server and why. One exception, so that a host without IPv6 (or IPv4) can roll:
//! an address this host has no route to (the connection fails at once with ENETUNREACH or
//! EHOSTUNREACH) is *not checkable from here* and does not count while another address of the
//! same nameserver answered ([`AuthorityReport::not_checkable`]); a nameserver none of whose
//! addresses answered still holds the gate. The second half is the validated lookup
//! ([`super::Resolver::tlsa`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::resolve::{Resolver, tlsa_from_rdata};
use super::wire;
use super::{DnsError, Status, parse_name};
use crate::tlsa::TlsaRecord;

mod report;
pub mod transport;

pub use report::{AuthorityReport, Nameserver, Served, ServerFailure, ServerReport};

/// How many nameserver addresses are asked at once.
pub const DEFAULT_NAMESERVER_CONCURRENCY: usize = 16;

/// What a report says of an address that is [not checkable](AuthorityReport::not_checkable).
pub const NOT_WAITED_FOR: &str = "not waited for: the same nameserver answered at another address";

/// The DNS port nameservers are asked on.
pub const NAMESERVER_PORT: u16 = 53;

/// The authoritative view, reached through a [`Resolver`] (for the zone cut, NS set and
/// addresses). Cheap to clone; construct once and reuse.
#[derive(Debug, Clone)]
pub struct AuthorityView {
    resolver: Resolver,
    timeout: Duration,
    concurrency: usize,
    port: u16,
}

impl AuthorityView {
    /// A view using `resolver`; each nameserver gets the resolver's timeout.
    pub fn new(resolver: Resolver) -> AuthorityView {
        AuthorityView {
            timeout: resolver.timeout(),
            resolver,
            concurrency: DEFAULT_NAMESERVER_CONCURRENCY,
            port: NAMESERVER_PORT,
        }
    }

    /// How long one nameserver address may take (connection and both queries).
    pub fn with_timeout(mut self, timeout: Duration) -> AuthorityView {
        self.timeout = timeout;
        self
    }

    /// How many addresses are asked at once (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> AuthorityView {
        self.concurrency = n.max(1);
        self
    }

    /// The port nameservers are asked on (53 unless a test says otherwise).
    pub fn with_port(mut self, port: u16) -> AuthorityView {
        self.port = port;
        self
    }

    /// The resolver used for the zone cut, NS set and addresses.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// The zone `name` is in: the owner of the SOA the resolver returns for `name` (in the answer
    /// at an apex, in the authority section otherwise), walking up when no SOA above `name` comes
    /// back (e.g. the name is an alias into another zone).
    pub async fn zone_cut(&self, name: &str) -> Result<Name, DnsError> {
        let name = parse_name(name)?;
        self.zone_of(&name).await
    }

    async fn zone_of(&self, name: &Name) -> Result<Name, DnsError> {
        let mut probe = name.clone();
        loop {
            let answer = self.resolver.raw(&probe, RecordType::SOA).await?;
            if answer.metadata.response_code == ResponseCode::ServFail {
                let status = Status::Bogus {
                    ede: super::resolve::edes(&answer).into_iter().next(),
                };
                return Err(DnsError::NoZone {
                    name: format!("{name} ({status})"),
                    resolver: self.resolver.address(),
                });
            }
            if let Some(zone) = soa_owner_above(&answer, name) {
                return Ok(zone);
            }
            if probe.is_root() {
                return Err(DnsError::NoZone {
                    name: name.to_string(),
                    resolver: self.resolver.address(),
                });
            }
            probe = probe.base_name();
        }
    }

    /// The nameservers of `zone` (NS through the resolver) and their addresses (A and AAAA).
    pub async fn nameservers(&self, zone: &Name) -> Result<Vec<Nameserver>, DnsError> {
        let ns = self.resolver.lookup_name(zone, RecordType::NS).await?;
        let mut names: Vec<Name> = ns
            .records
            .iter()
            .filter_map(|r| match r {
                RData::NS(n) => Some(n.0.clone()),
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(DnsError::NoNameservers {
                zone: zone.to_string(),
                reason: format!("NS lookup: {}", ns.status),
            });
        }
        let mut set = JoinSet::new();
        for (i, name) in names.iter().enumerate() {
            let resolver = self.resolver.clone();
            let name = name.clone();
            set.spawn(async move {
                let r = resolver.addresses(&name.to_string()).await;
                (i, name, r)
            });
        }
        let mut found: Vec<(usize, Nameserver)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((i, name, r)) = joined else { continue };
            let ns = match r {
                Ok(lookup) if !lookup.records.is_empty() => Nameserver {
                    name,
                    addresses: lookup.records,
                    address_problem: None,
                },
                Ok(lookup) => Nameserver {
                    name,
                    addresses: Vec::new(),
                    address_problem: Some(format!("A/AAAA: {}", lookup.status)),
                },
                Err(e) => Nameserver {
                    name,
                    addresses: Vec::new(),
                    address_problem: Some(e.to_string()),
                },
            };
            found.push((i, ns));
        }
        found.sort_by_key(|(i, _)| *i);
        Ok(found.into_iter().map(|(_, ns)| ns).collect())
    }

    /// Ask one nameserver address for the TLSA RRset at `owner` and the SOA serial of `zone`,
    /// RD=0, DO set: over UDP first, TCP on truncation or when UDP brings no answer
    /// ([`transport`]).
    pub async fn ask(
        &self,
        nameserver: &Name,
        address: IpAddr,
        zone: &Name,
        owner: &Name,
    ) -> ServerReport {
        let server = SocketAddr::new(address, self.port);
        let queries = [
            wire::build_query(owner, RecordType::TLSA, false),
            wire::build_query(zone, RecordType::SOA, false),
        ];
        let result = match transport::exchange(server, &queries, self.timeout).await {
            Ok(answers) => match answers.as_slice() {
                [tlsa, soa] => classify_served(tlsa, soa, owner, zone),
                _ => Err(ServerFailure::Malformed("missing answers".into())),
            },
            Err(failure) => Err(failure),
        };
        ServerReport {
            nameserver: nameserver.clone(),
            address: Some(address),
            result,
        }
    }

    /// What every authoritative server of `owner`'s zone serves at `owner`, against `expected`.
    pub async fn served_everywhere(
        &self,
        owner: &str,
        expected: &[TlsaRecord],
    ) -> Result<AuthorityReport, DnsError> {
        let owner = parse_name(owner)?;
        let zone = self.zone_of(&owner).await?;
        self.served_in_zone(&zone, &owner, expected).await
    }

    /// What every authoritative server of `zone` serves at `owner`, against `expected`.
    pub async fn served_in_zone(
        &self,
        zone: &Name,
        owner: &Name,
        expected: &[TlsaRecord],
    ) -> Result<AuthorityReport, DnsError> {
        let (zone, owner) = (zone.clone(), owner.clone());
        let nameservers = self.nameservers(&zone).await?;
        let mut servers = Vec::new();
        let mut set = JoinSet::new();
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut index = 0usize;
        for ns in &nameservers {
            if ns.addresses.is_empty() {
                servers.push((
                    index,
                    ServerReport {
                        nameserver: ns.name.clone(),
                        address: None,
                        result: Err(ServerFailure::NoAddress(
                            ns.address_problem.clone().unwrap_or_default(),
                        )),
                    },
                ));
                index += 1;
            }
            for &address in &ns.addresses {
                let (view, name, zone, owner) =
                    (self.clone(), ns.name.clone(), zone.clone(), owner.clone());
                let permits = permits.clone();
                let i = index;
                index += 1;
                set.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    (i, view.ask(&name, address, &zone, &owner).await)
                });
            }
        }
        while let Some(joined) = set.join_next().await {
            if let Ok(done) = joined {
                servers.push(done);
            }
        }
        servers.sort_by_key(|(i, _)| *i);
        Ok(AuthorityReport {
            owner,
            zone,
            expected: expected.to_vec(),
            servers: servers.into_iter().map(|(_, s)| s).collect(),
        })
    }
}

/// The owner of an SOA record in `answer` that is `name` or one of its ancestors.
pub(crate) fn soa_owner_above(answer: &Message, name: &Name) -> Option<Name> {
    answer
        .answers
        .iter()
        .chain(&answer.authorities)
        .filter(|r| r.record_type() == RecordType::SOA)
        .map(|r| r.name.clone())
        .filter(|zone| zone.zone_of(name))
        .max_by_key(Name::num_labels)
}

/// Classify a nameserver's answers to the TLSA query at `owner` and the SOA query at `zone`.
pub fn classify_served(
    tlsa: &Message,
    soa: &Message,
    owner: &Name,
    zone: &Name,
) -> Result<Served, ServerFailure> {
    let zone_text = zone.to_string();
    for answer in [soa, tlsa] {
        let rcode = answer.metadata.response_code;
        if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
            return Err(ServerFailure::Rcode {
                rcode: super::rcode_name(rcode),
                zone: zone_text,
            });
        }
        if !answer.metadata.authoritative {
            return Err(ServerFailure::NotAuthoritative { zone: zone_text });
        }
    }
    let serial = soa
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(s) if r.name == *zone => Some(s.serial),
            _ => None,
        })
        .ok_or(ServerFailure::NoSerial { zone: zone_text })?;

    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let mut alias = None;
    let mut signed_rrset = false;
    let mut ttl: Option<u32> = None;
    for r in tlsa.answers.iter().filter(|r| r.name == *owner) {
        match &r.data {
            RData::TLSA(t) => match tlsa_from_rdata(t) {
                Ok(rec) => {
                    ttl = Some(ttl.map_or(r.ttl, |t| t.max(r.ttl)));
                    if !records.contains(&rec) {
                        records.push(rec);
                    }
                }
                Err(why) => skipped.push(why),
            },
            RData::CNAME(c) => alias = Some(c.0.clone()),
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(sig))
                if sig.input().type_covered == RecordType::TLSA =>
            {
                signed_rrset = true;
            }
            _ => {}
        }
    }
    let nxdomain = tlsa.metadata.response_code == ResponseCode::NXDomain;
    let signed = if records.is_empty() && skipped.is_empty() {
        // A denial is signed when its NSEC/NSEC3 proof (or the SOA) carries RRSIGs.
        tlsa.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::RRSIG)
            || tlsa
                .answers
                .iter()
                .any(|r| r.record_type() == RecordType::RRSIG)
    } else {
        signed_rrset
    };
    Ok(Served {
        serial,
        records,
        ttl,
        signed,
        nxdomain,
        alias,
        skipped,
    })
}
