//! The authoritative view: the zone cut above an owner name, its NS set, every address of every
//! nameserver, and what each address serves, asked directly over TCP with RD=0 and DO set.
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

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::resolve::{Resolver, tlsa_from_rdata};
use super::wire::{self, Transport};
use super::{DnsError, Status, parse_name};
use crate::tlsa::TlsaRecord;

/// How many nameserver addresses are asked at once.
pub const DEFAULT_NAMESERVER_CONCURRENCY: usize = 16;

/// What a report says of an address that is [not checkable](AuthorityReport::not_checkable).
pub const NOT_WAITED_FOR: &str = "not waited for: the same nameserver answered at another address";

/// The DNS port nameservers are asked on.
pub const NAMESERVER_PORT: u16 = 53;

/// One nameserver of a zone, with its addresses as the resolver gave them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nameserver {
    /// The NS name.
    pub name: Name,
    /// Its A and AAAA addresses.
    pub addresses: Vec<IpAddr>,
    /// Why there are none, when there are none.
    pub address_problem: Option<String>,
}

/// What one nameserver address serves for the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The zone's SOA serial at this server.
    pub serial: u32,
    /// The TLSA records it serves at the owner.
    pub records: Vec<TlsaRecord>,
    /// The TTL of the TLSA RRset as this server serves it (the zone's TTL: what a resolver
    /// caches it with; the largest, should the records of the RRset disagree). `None` without
    /// TLSA records.
    pub ttl: Option<u32>,
    /// Whether the TLSA RRset (or the denial) came with an RRSIG.
    pub signed: bool,
    /// Whether it said NXDOMAIN for the owner.
    pub nxdomain: bool,
    /// A CNAME at the owner, if it serves one instead of TLSA records.
    pub alias: Option<Name>,
    /// TLSA records it serves that are not valid for us (e.g. usage 4), as text.
    pub skipped: Vec<String>,
}

/// Why a nameserver address gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerFailure {
    /// No answer in time.
    #[error("no answer within {0:?}: is it up, and reachable over TCP port 53?")]
    Timeout(Duration),
    /// The TCP connection was refused.
    #[error("refused the TCP connection: is the nameserver running and listening on TCP?")]
    ConnectionRefused,
    /// An error code (REFUSED, SERVFAIL, NOTAUTH, …).
    #[error("answered {rcode}: it does not serve the zone {zone} (check its configuration)")]
    Rcode {
        /// The response code.
        rcode: String,
        /// The zone asked about.
        zone: String,
    },
    /// An answer without the AA bit: the server does not consider itself authoritative.
    #[error("answered without AA: it is not authoritative for {zone} (a stale NS record?)")]
    NotAuthoritative {
        /// The zone asked about.
        zone: String,
    },
    /// An answer with no SOA for the zone.
    #[error("sent no SOA for {zone}: cannot tell which version of the zone it serves")]
    NoSerial {
        /// The zone asked about.
        zone: String,
    },
    /// The NS name has no address.
    #[error("has no address: {0}")]
    NoAddress(String),
    /// No route to the address from this host (ENETUNREACH, EHOSTUNREACH): e.g. an IPv6
    /// address on a host without IPv6. Not checkable from here; see
    /// [`AuthorityReport::not_checkable`] for when it holds the gate.
    #[error("is not checkable from here: no route to it from this host ({0})")]
    Unreachable(String),
    /// Another network error.
    #[error("network error: {0}")]
    Network(String),
    /// An answer that does not answer the question.
    #[error("sent an unusable answer: {0}")]
    Malformed(String),
}

impl ServerFailure {
    /// Whether the server refused: the TCP connection, or the query (REFUSED).
    pub fn is_refused(&self) -> bool {
        match self {
            ServerFailure::ConnectionRefused => true,
            ServerFailure::Rcode { rcode, .. } => rcode.eq_ignore_ascii_case("REFUSED"),
            _ => false,
        }
    }

    fn from_transport(t: Transport, timeout: Duration) -> ServerFailure {
        match t {
            Transport::Timeout => ServerFailure::Timeout(timeout),
            Transport::Refused => ServerFailure::ConnectionRefused,
            Transport::Unreachable(e) => ServerFailure::Unreachable(e),
            Transport::Network(e) => ServerFailure::Network(e),
            Transport::Malformed(e) => ServerFailure::Malformed(e),
        }
    }
}

/// One nameserver address and what it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    /// The NS name.
    pub nameserver: Name,
    /// The address asked (none when the NS name has no address).
    pub address: Option<IpAddr>,
    /// What it serves, or why it could not tell.
    pub result: Result<Served, ServerFailure>,
}

impl ServerReport {
    /// What it serves, if it answered.
    pub fn served(&self) -> Option<&Served> {
        self.result.as_ref().ok()
    }

    /// The failure, if it did not answer usefully.
    pub fn failure(&self) -> Option<&ServerFailure> {
        self.result.as_ref().err()
    }

    /// Its SOA serial, if it answered.
    pub fn serial(&self) -> Option<u32> {
        self.served().map(|s| s.serial)
    }
}

impl fmt::Display for ServerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            Some(a) => write!(f, "nameserver {} ({a})", self.nameserver)?,
            None => write!(f, "nameserver {}", self.nameserver)?,
        }
        match &self.result {
            Ok(s) => write!(
                f,
                ": serial {}, {} TLSA record(s){}",
                s.serial,
                s.records.len(),
                if s.signed { ", signed" } else { ", unsigned" }
            ),
            Err(e) => write!(f, " {e}"),
        }
    }
}

/// What every authoritative server serves for one owner, against the records expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityReport {
    /// The TLSA owner.
    pub owner: Name,
    /// The zone it is in.
    pub zone: Name,
    /// The records that must be served.
    pub expected: Vec<TlsaRecord>,
    /// One report per nameserver address (and per NS name without an address).
    pub servers: Vec<ServerReport>,
}

impl AuthorityReport {
    /// Whether any server signs its answers: then every server must.
    pub fn zone_signed(&self) -> bool {
        self.servers
            .iter()
            .any(|s| s.served().is_some_and(|s| s.signed))
    }

    fn complete(&self, served: &Served) -> bool {
        self.expected.iter().all(|e| served.records.contains(e))
            && (served.signed || !self.zone_signed())
    }

    /// Whether `server` is not checkable from here and so does not count: this host has no route
    /// to its address (another address family than the host reaches) and another address of
    /// the same nameserver answered. A nameserver none of whose addresses answered counts
    /// (it is down, or unreachable from here altogether, and holds the gate).
    pub fn not_checkable(&self, server: &ServerReport) -> bool {
        matches!(server.failure(), Some(ServerFailure::Unreachable(_)))
            && self
                .servers
                .iter()
                .any(|o| o.nameserver == server.nameserver && o.result.is_ok())
    }

    /// The servers that count for the gate: all but the [not checkable](Self::not_checkable).
    fn counted(&self) -> impl Iterator<Item = &ServerReport> {
        self.servers.iter().filter(|s| !self.not_checkable(s))
    }

    /// The servers not checkable from here (and not waited for).
    pub fn unchecked(&self) -> Vec<&ServerReport> {
        self.servers
            .iter()
            .filter(|s| self.not_checkable(s))
            .collect()
    }

    /// Whether every server that counts answered and serves every expected record (signed, in a
    /// signed zone). The gate's first half.
    pub fn all_serve(&self) -> bool {
        self.counted().next().is_some()
            && self
                .counted()
                .all(|s| s.served().is_some_and(|served| self.complete(served)))
    }

    /// Whether every server that counts answered and serves `record` (signed, in a signed
    /// zone): the gate's first half for one record, whatever else is expected.
    pub fn serves_everywhere(&self, record: &TlsaRecord) -> bool {
        self.serves_everywhere_but(record, &[])
    }

    /// [`Self::serves_everywhere`], not counting the nameservers named in `skip` (the
    /// operator's `--skip-nameserver`).
    pub fn serves_everywhere_but(&self, record: &TlsaRecord, skip: &[String]) -> bool {
        let signed = self.zone_signed();
        let name = |s: &ServerReport| s.nameserver.to_string();
        let counted = || {
            self.counted().filter(|s| {
                !skip
                    .iter()
                    .any(|k| dane_roll_providers::same_name(k, &name(s)))
            })
        };
        counted().next().is_some()
            && counted().all(|s| {
                s.served().is_some_and(|served| {
                    served.records.contains(record) && (served.signed || !signed)
                })
            })
    }

    /// Servers that answered but miss an expected record (or serve it unsigned): lagging.
    pub fn lagging(&self) -> Vec<&ServerReport> {
        self.servers
            .iter()
            .filter(|s| s.served().is_some_and(|served| !self.complete(served)))
            .collect()
    }

    /// Servers that gave no usable answer (the not checkable aside: see [`Self::unchecked`]).
    pub fn failed(&self) -> Vec<&ServerReport> {
        self.counted().filter(|s| s.result.is_err()).collect()
    }

    /// Servers that serve every expected record.
    pub fn serving(&self) -> Vec<&ServerReport> {
        self.servers
            .iter()
            .filter(|s| s.served().is_some_and(|served| self.complete(served)))
            .collect()
    }

    /// The highest serial seen.
    pub fn newest_serial(&self) -> Option<u32> {
        self.servers.iter().filter_map(ServerReport::serial).max()
    }

    /// The expected records `server` does not serve.
    pub fn missing_at<'a>(&'a self, server: &ServerReport) -> Vec<&'a TlsaRecord> {
        match server.served() {
            Some(s) => self
                .expected
                .iter()
                .filter(|e| !s.records.contains(e))
                .collect(),
            None => self.expected.iter().collect(),
        }
    }
}

impl fmt::Display for AuthorityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} (zone {}): {}",
            self.owner,
            self.zone,
            if self.all_serve() {
                "served by every nameserver"
            } else {
                "NOT served by every nameserver"
            }
        )?;
        for s in &self.servers {
            let missing = self.missing_at(s);
            write!(f, "  {s}")?;
            if s.result.is_ok() && !missing.is_empty() {
                write!(f, "; missing {} expected record(s)", missing.len())?;
            }
            if self.not_checkable(s) {
                write!(f, "; {NOT_WAITED_FOR}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

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
    /// over one TCP connection, RD=0, DO set.
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
        let result = match wire::exchange_tcp(server, &queries, self.timeout).await {
            Ok(answers) => match answers.as_slice() {
                [tlsa, soa] => classify_served(tlsa, soa, owner, zone),
                _ => Err(ServerFailure::Malformed("missing answers".into())),
            },
            Err(t) => Err(ServerFailure::from_transport(t, self.timeout)),
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
