//! What the authoritative view found: each nameserver, what each of its addresses served or
//! why it failed, and the report over all of them that the gate reads.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::rr::Name;

use super::NOT_WAITED_FOR;
use crate::tlsa::TlsaRecord;

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
    /// No answer in time, over UDP nor over TCP.
    #[error(
        "could be reached over neither UDP nor TCP port 53: no answer within {0:?} (is it up, \
         and does a firewall between this host and it drop DNS?)"
    )]
    Timeout(Duration),
    /// Refused over UDP (ICMP port unreachable) and the TCP connection refused.
    #[error(
        "could be reached over neither UDP nor TCP port 53: port unreachable over UDP and \
         refused the TCP connection (is the nameserver running and listening on port 53?)"
    )]
    ConnectionRefused,
    /// Neither UDP nor TCP brought an answer, each for its own reason.
    #[error(
        "could be reached over neither UDP ({udp}) nor TCP ({tcp}) port 53: is it up, and does \
         a firewall between this host and it drop DNS?"
    )]
    Unreached {
        /// Why UDP brought no answer.
        udp: String,
        /// Why TCP brought no answer.
        tcp: String,
    },
    /// UDP answered truncated (the answer needs TCP) and TCP brought no answer.
    #[error(
        "answered over UDP truncated (the whole answer needs TCP), and TCP port 53 failed: {0} \
         (allow outbound TCP port 53 to it)"
    )]
    TruncatedNoTcp(String),
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
