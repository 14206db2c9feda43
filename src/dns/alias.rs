//! Where an owner name's TLSA RRset really lives: following a CNAME at the authorities.
//!
//! Many operators point `_25._tcp.<mx>` of several MX hosts at one name that holds the TLSA
//! RRset (`_25._tcp.mx3 CNAME _dane.example.com.`). No record can sit beside a CNAME, so an
//! update that adds a TLSA record at the CNAME's owner is dropped (BIND answers NOERROR and
//! ignores it): the records must be written where the chain ends. The chain is followed at the
//! authoritative servers of each name's zone (RD=0, never a cache, so a CNAME added or removed
//! a moment ago is seen), for at most [`MAX_CNAME_HOPS`] hops; a name that comes back is a loop.

use std::fmt;

use super::authority::AuthorityView;
use super::{DnsError, MAX_CNAME_HOPS};
use crate::tlsa::{OwnerName, OwnerNameError};

/// A configured owner name and the CNAME chain the authorities serve from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The configured owner name.
    pub owner: OwnerName,
    /// The CNAME targets in order; empty when the owner holds no CNAME.
    pub chain: Vec<OwnerName>,
}

impl Alias {
    /// Where the TLSA RRset lives: the end of the chain, or the owner name itself.
    pub fn target(&self) -> &OwnerName {
        self.chain.last().unwrap_or(&self.owner)
    }

    /// Whether the owner name is a CNAME.
    pub fn is_alias(&self) -> bool {
        !self.chain.is_empty()
    }
}

impl fmt::Display for Alias {
    /// `owner X (via CNAME → Y)`, or `owner X`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "owner {}", self.owner)?;
        if self.is_alias() {
            write!(f, " (via CNAME → {})", OwnerName::join(&self.chain, " → "))?;
        }
        Ok(())
    }
}

/// Why a CNAME chain could not be followed. Each names the owner name and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AliasError {
    /// The chain comes back to a name it passed.
    #[error(
        "owner name {owner}: the CNAME chain loops ({}); fix the CNAME records so the chain ends \
         at the name that holds the TLSA records",
        OwnerName::join(chain, " → ")
    )]
    Loop {
        /// The configured owner name.
        owner: OwnerName,
        /// The chain up to the repeated name.
        chain: Vec<OwnerName>,
    },
    /// More hops than [`MAX_CNAME_HOPS`].
    #[error(
        "owner name {owner}: the CNAME chain is longer than {MAX_CNAME_HOPS} hops ({}); point the \
         CNAME straight at the name that holds the TLSA records",
        OwnerName::join(chain, " → ")
    )]
    TooLong {
        /// The configured owner name.
        owner: OwnerName,
        /// The chain followed so far.
        chain: Vec<OwnerName>,
    },
    /// No authoritative server of a name's zone answered.
    #[error(
        "owner name {owner}: cannot tell whether {name} is a CNAME: no authoritative server \
         answered ({why}); check the zone's nameservers, then try again"
    )]
    NoAnswer {
        /// The configured owner name.
        owner: OwnerName,
        /// The name asked about.
        name: OwnerName,
        /// What the servers said.
        why: String,
    },
    /// The zone or nameservers of a name could not be found.
    #[error("owner name {owner}: {source}")]
    Dns {
        /// The configured owner name.
        owner: OwnerName,
        /// Why.
        source: DnsError,
    },
    /// A CNAME points at text that is not a DNS name.
    #[error(
        "owner name {owner}: its CNAME chain leads to {source}; fix the CNAME records so the \
         chain ends at the name that holds the TLSA records"
    )]
    BadTarget {
        /// The configured owner name.
        owner: OwnerName,
        /// Why the target is not a name.
        source: OwnerNameError,
    },
}

impl AuthorityView {
    /// What the authoritative servers serve at `name`. Its zone is the one the resolver names
    /// for it; when the resolver cannot say (a CNAME chain that loops or ends in a bogus answer
    /// makes it answer SERVFAIL), it is the zone of its parent: a CNAME is never at a zone apex.
    async fn served_at(&self, name: &str) -> Result<super::AuthorityReport, DnsError> {
        let parsed = super::parse_name(name)?;
        let zone = match self.zone_cut(name).await {
            Ok(zone) => zone,
            // Only when the resolver answered (SERVFAIL): one that does not answer at all would
            // only make the caller wait twice.
            Err(first @ DnsError::NoZone { .. }) if !parsed.is_root() => {
                match self.zone_cut(&parsed.base_name().to_string()).await {
                    Ok(zone) => zone,
                    Err(_) => return Err(first),
                }
            }
            Err(first) => return Err(first),
        };
        self.served_in_zone(&zone, &parsed, &[]).await
    }

    /// Follow the CNAME chain from `owner` at the authoritative servers (RD=0). A name at which
    /// any server that answers serves a CNAME is an alias (a server that lags behind a CNAME
    /// just added does not hide it); the chain ends at a name no server serves a CNAME for, or
    /// at a target whose zone cannot be asked.
    pub async fn follow_cname(&self, owner: &OwnerName) -> Result<Alias, AliasError> {
        let owner = owner.clone();
        let mut chain: Vec<OwnerName> = Vec::new();
        let mut current = owner.clone();
        loop {
            // Past the first hop the owner name is known to be an alias: a target whose zone
            // cannot be asked ends the chain (the provider then says whether it can write it).
            let report = match self.served_at(current.as_str()).await {
                Ok(report) => report,
                Err(_) if !chain.is_empty() => return Ok(Alias { owner, chain }),
                Err(source) => return Err(AliasError::Dns { owner, source }),
            };
            if report.servers.iter().all(|s| s.served().is_none()) {
                if !chain.is_empty() {
                    return Ok(Alias { owner, chain });
                }
                let why = report
                    .servers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(AliasError::NoAnswer {
                    owner,
                    name: current,
                    why: if why.is_empty() {
                        "no nameserver".to_owned()
                    } else {
                        why
                    },
                });
            }
            let Some(next) = report
                .servers
                .iter()
                .filter_map(|s| s.served().and_then(|s| s.alias.as_ref()))
                .map(|n| OwnerName::parse(&n.to_ascii()))
                .next()
            else {
                return Ok(Alias { owner, chain });
            };
            let next = match next {
                Ok(next) => next,
                Err(source) => return Err(AliasError::BadTarget { owner, source }),
            };
            let looped = next == owner || chain.contains(&next);
            chain.push(next.clone());
            if looped {
                return Err(AliasError::Loop { owner, chain });
            }
            if chain.len() > MAX_CNAME_HOPS {
                return Err(AliasError::TooLong { owner, chain });
            }
            current = next;
        }
    }
}
