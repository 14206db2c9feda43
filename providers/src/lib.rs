//! How dane-roll's TLSA records reach DNS.
//!
//! A [`Provider`] lists, adds and removes single records at an owner name; it never replaces a
//! whole RRset with one of its own making, so other hosts' records at a shared owner name survive
//! (safety invariant 4). [`Provider::add`] of a record already there and [`Provider::remove`] of one
//! that is not are no-ops, so the rollover engine can retry after a crash; after a write the
//! provider reads the owner name back and reports a change it cannot see ([`ProviderError::NotVisible`]).
//!
//! Publishing never destroys what is not ours: a reply that cannot be read or lacks its record
//! list is an error before anything is written; [`Provider::publish`] and [`Provider::retire`]
//! compare the owner name before and after the write and report, as [`Report::vanished`], any
//! record of another writer that the write lost; [`Report::ttl`] says when the record went out with
//! another TTL than the configured one (an existing RRset keeps its TTL).
//!
//! The kinds ([`Provider`] is an enum: async methods of a trait cannot be called through `dyn`):
//! - [`rfc2136`]: DNS UPDATE (RFC 2136) with TSIG: add by §2.5.1, delete ONE record by §2.5.4
//!   (class NONE, by RDATA), list by a TCP query to the same server;
//! - [`powerdns`], [`cloudflare`], [`desec`], [`hetzner`], [`gandi`], [`route53`], [`ovh`],
//!   [`inwx`], [`transip`], [`google`]: thin HTTP clients ([`http`]) with retries ([`retry`]);
//! - [`exec`]: the operator's command; [`manual`]: prints what to change and reports it pending.
//!
//! [`child`] runs every command dane-roll starts (the exec provider here; the reload command and
//! sendmail in the main crate, which cannot be a dependency of this one): scrubbed environment,
//! process group killed at the timeout, bounded output.
//!
//! Why not dns-update (the library first chosen, with its ~70 providers): its RFC 2136 code can
//! delete one record by RDATA, but it turns every failure into a string, so BADSIG, BADKEY,
//! BADTIME, REFUSED and NOTAUTH cannot be told apart or explained, and hickory's message for a
//! BADSIG reply (its MAC check fails first) is misleading. Its Cloudflare and deSEC clients keep the
//! base URL crate-private (they cannot be tested against local fakes), the Cloudflare listing reads
//! one page of 100, and the retry count is fixed. A generic `dns-update` kind for the other
//! providers is left out: their `add_to_rrset`/`remove_from_rrset` are built differently per
//! provider (several by rewriting the whole RRset from a listing), which could not be checked
//! against invariant 4 provider by provider.
//!
//! Reconsidered for the seven providers added since (Hetzner, Gandi, Route 53, OVH, INWX,
//! TransIP, Google Cloud DNS), all of which dns-update 0.6 lists: its `Error` (as published up to
//! 0.5) is still a handful of string-carrying variants (`Api(String)`, `Response(String)`, …) beside `Unauthorized`,
//! `NotFound` and `BadRequest`, so a 429 with its `Retry-After`, a missing right (403) and an
//! unknown zone cannot be told apart and acted on (rate-limited vs failed, "set zone-id"), and a
//! change built from a whole-RRset listing (Route 53, Google, Gandi) has no concurrency guard we
//! could check. Each provider here is its own module on the shared [`http`] client, tested
//! against a fake of its documented API.
#![warn(unreachable_pub, clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod child;
pub mod cloudflare;
pub mod desec;
mod error;
pub mod exec;
pub mod gandi;
pub mod google;
pub mod hetzner;
pub mod http;
pub mod inwx;
mod listing;
pub mod manual;
pub mod ovh;
pub mod powerdns;
pub mod retry;
pub mod rfc2136;
pub mod route53;
mod rrset;
mod secret;
mod token_api;
pub mod transip;
mod zones;

use std::fmt;
use std::time::Duration;

pub use error::ProviderError;
pub use retry::RetryPolicy;
pub use secret::{MASK, Secret, mask_credentials};

/// How long one request (DNS exchange, HTTP request, command) may take, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a write is read back for before it is reported as not visible, by default.
/// BIND's inline signing can lag behind an accepted UPDATE.
pub const DEFAULT_READBACK: Duration = Duration::from_secs(10);
/// The longest pause between two read-backs.
pub const READBACK_INTERVAL: Duration = Duration::from_millis(250);
/// The first pause between two read-backs; it doubles up to [`READBACK_INTERVAL`]. A primary
/// usually shows its write within tens of milliseconds; an API that lags gets few requests.
pub const READBACK_FIRST: Duration = Duration::from_millis(20);

/// Settings every provider shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long one request may take.
    pub timeout: Duration,
    /// How HTTP requests are retried.
    pub retry: RetryPolicy,
    /// How long a write is read back for.
    pub readback: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            readback: DEFAULT_READBACK,
        }
    }
}

/// One TLSA record as a provider sees it: where it lives and its presentation-format data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The owner name, absolute, e.g. `_25._tcp.mail.example.com.`.
    pub owner: String,
    /// The TTL in seconds.
    pub ttl: u32,
    /// The record data as `usage selector matching hex`, hex in lowercase.
    pub rdata: String,
}

impl Record {
    /// A record with its owner name made absolute and lower case and its data normalised
    /// (single spaces, lower-case hex); an error when the data is not `u s m hex`.
    pub fn new(owner: &str, ttl: u32, rdata: &str) -> Result<Record, ProviderError> {
        Ok(Record {
            owner: absolute(owner),
            ttl,
            rdata: normalize_rdata(rdata)?,
        })
    }

    /// The record from its fields (`data` as hex).
    pub fn from_fields(
        owner: &str,
        ttl: u32,
        usage: u8,
        selector: u8,
        matching: u8,
        data: &str,
    ) -> Result<Record, ProviderError> {
        Record::new(owner, ttl, &format!("{usage} {selector} {matching} {data}"))
    }

    /// The fields: usage, selector, matching type, data (hex).
    pub fn fields(&self) -> Result<(u8, u8, u8, String), ProviderError> {
        parse_rdata(&self.rdata)
    }

    /// Whether `other` is the same record (owner and data; the TTL is not compared).
    pub fn same(&self, other: &Record) -> bool {
        same_name(&self.owner, &other.owner)
            && normalize_rdata(&self.rdata).ok() == normalize_rdata(&other.rdata).ok()
    }

    /// `owner TTL IN TLSA rdata`, a zone-file line.
    pub fn zone_line(&self) -> String {
        format!("{} {} IN TLSA {}", self.owner, self.ttl, self.rdata)
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.zone_line())
    }
}

/// The name made absolute (final dot) and lower case.
pub fn absolute(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}

/// Whether two names are equal, case and final dot ignored.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// `name` and its ancestors, longest first, absolute, without the root: `a.b.c.`, `b.c.`, `c.`.
pub fn ancestors(name: &str) -> Vec<String> {
    let name = absolute(name);
    let mut out = Vec::new();
    let mut rest = name.as_str();
    while !rest.is_empty() && rest != "." {
        out.push(rest.to_owned());
        rest = match rest.split_once('.') {
            Some((_, tail)) => tail,
            None => "",
        };
    }
    out
}

/// `name` relative to `zone` (`_25._tcp.mail` for `_25._tcp.mail.example.com.` in
/// `example.com.`); empty for the apex; `None` when the name is not in the zone.
pub fn relative_to(name: &str, zone: &str) -> Option<String> {
    let name = absolute(name);
    let zone = absolute(zone);
    if name == zone {
        return Some(String::new());
    }
    name.strip_suffix(&format!(".{zone}")).map(str::to_owned)
}

fn parse_rdata(text: &str) -> Result<(u8, u8, u8, String), ProviderError> {
    let bad = || {
        ProviderError::InvalidRecord(format!(
            "\"{text}\" is not TLSA data: write \"usage selector matching hex\", e.g. \"3 1 1 ab…\""
        ))
    };
    let mut parts = text.split_whitespace();
    let mut number = || -> Result<u8, ProviderError> {
        parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)
    };
    let (usage, selector, matching) = (number()?, number()?, number()?);
    let data: String = parts.collect::<String>().to_ascii_lowercase();
    if data.is_empty()
        || !data.len().is_multiple_of(2)
        || !data.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad());
    }
    Ok((usage, selector, matching, data))
}

/// The record data normalised: `u s m hex`, single spaces, lower-case hex (data given in
/// several blocks, as zone files and some APIs show it, is joined).
pub fn normalize_rdata(text: &str) -> Result<String, ProviderError> {
    let (u, s, m, data) = parse_rdata(text)?;
    Ok(format!("{u} {s} {m} {data}"))
}

/// What an add or remove did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The record was added, and the provider shows it.
    Added,
    /// The record was there already; nothing was sent.
    AlreadyPresent,
    /// The record was removed, and the provider no longer shows it.
    Removed,
    /// The record was not there; nothing was sent.
    AlreadyAbsent,
    /// The operator has to make the change (the `manual` provider): these lines say how.
    Pending {
        /// Zone-file and nsupdate lines for the operator.
        instructions: String,
    },
}

/// What a publish or retire did, and what the caller should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The change.
    pub change: Change,
    /// Records at the owner name that are not the one written, seen before the write and missing
    /// after it: another writer's records lost (or removed by that writer meanwhile). Alert.
    pub vanished: Vec<Record>,
    /// The TTL the record is served with, when that is not the configured one.
    pub ttl: Option<TtlNotice>,
}

/// The record is served with another TTL than the configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlNotice {
    /// The owner name.
    pub owner: String,
    /// The configured TTL.
    pub configured: u32,
    /// The TTL the record is served with: the RRset's.
    pub served: u32,
    /// Why.
    pub why: &'static str,
}

impl fmt::Display for TtlNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: TLSA served with TTL {}, not the configured {}: {}",
            self.owner, self.served, self.configured, self.why
        )?;
        if self.served > self.configured {
            write!(
                f,
                "; resolvers may cache it for {} s: set the service's `ttl` to {} or more",
                self.served, self.served
            )?;
        }
        Ok(())
    }
}

/// Cloudflare's TTL 1: "automatic", served as 300 s.
pub const CLOUDFLARE_AUTO_TTL: u32 = 300;

/// A configured provider. See the [crate docs](crate).
#[derive(Debug)]
#[non_exhaustive]
pub enum Provider {
    /// RFC 2136 dynamic update with TSIG.
    Rfc2136(rfc2136::Rfc2136),
    /// The PowerDNS HTTP API.
    PowerDns(powerdns::PowerDns),
    /// The Cloudflare API.
    Cloudflare(cloudflare::Cloudflare),
    /// The deSEC API.
    Desec(desec::Desec),
    /// The Hetzner Cloud DNS API.
    Hetzner(hetzner::Hetzner),
    /// Gandi LiveDNS.
    Gandi(gandi::Gandi),
    /// Amazon Route 53 (SigV4).
    Route53(route53::Route53),
    /// OVHcloud's API (signed requests).
    Ovh(ovh::Ovh),
    /// INWX's JSON-RPC API.
    Inwx(inwx::Inwx),
    /// TransIP's REST API (a key-signed token).
    Transip(transip::Transip),
    /// Google Cloud DNS (a service account key).
    Google(google::Google),
    /// The operator's command.
    Exec(exec::Exec),
    /// Instructions for the operator.
    Manual(manual::Manual),
}

impl Provider {
    /// The kind, as in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            Provider::Rfc2136(_) => "rfc2136",
            Provider::PowerDns(_) => "powerdns",
            Provider::Cloudflare(_) => "cloudflare",
            Provider::Desec(_) => "desec",
            Provider::Hetzner(_) => "hetzner",
            Provider::Gandi(_) => "gandi",
            Provider::Route53(_) => "route53",
            Provider::Ovh(_) => "ovh",
            Provider::Inwx(_) => "inwx",
            Provider::Transip(_) => "transip",
            Provider::Google(_) => "google",
            Provider::Exec(_) => "exec",
            Provider::Manual(_) => "manual",
        }
    }

    fn readback(&self) -> Duration {
        match self {
            Provider::Rfc2136(p) => p.settings().readback,
            Provider::PowerDns(p) => p.settings().readback,
            Provider::Cloudflare(p) => p.settings().readback,
            Provider::Desec(p) => p.settings().readback,
            Provider::Hetzner(p) => p.settings().readback,
            Provider::Gandi(p) => p.settings().readback,
            Provider::Route53(p) => p.settings().readback,
            Provider::Ovh(p) => p.settings().readback,
            Provider::Inwx(p) => p.settings().readback,
            Provider::Transip(p) => p.settings().readback,
            Provider::Google(p) => p.settings().readback,
            Provider::Exec(p) => p.settings().readback,
            Provider::Manual(_) => Duration::ZERO,
        }
    }

    /// The TLSA records at `owner`, as the provider holds them.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let owner = absolute(owner);
        match self {
            Provider::Rfc2136(p) => p.list(&owner).await,
            Provider::PowerDns(p) => p.list(&owner).await,
            Provider::Cloudflare(p) => p.list(&owner).await,
            Provider::Desec(p) => p.list(&owner).await,
            Provider::Hetzner(p) => p.list(&owner).await,
            Provider::Gandi(p) => p.list(&owner).await,
            Provider::Route53(p) => p.list(&owner).await,
            Provider::Ovh(p) => p.list(&owner).await,
            Provider::Inwx(p) => p.list(&owner).await,
            Provider::Transip(p) => p.list(&owner).await,
            Provider::Google(p) => p.list(&owner).await,
            Provider::Exec(p) => p.list(&owner).await,
            Provider::Manual(_) => Err(ProviderError::Unsupported {
                provider: "manual",
                action: "list records",
                why: "nothing is automated; the records are checked in DNS",
            }),
        }
    }

    /// Add one record beside whatever the owner name holds. A no-op when it is there already.
    /// See [`Provider::publish`] for what else the caller should learn.
    pub async fn add(&self, record: &Record) -> Result<Change, ProviderError> {
        self.publish(record).await.map(|r| r.change)
    }

    /// Remove this one record; other records at the owner name stay. A no-op when it is absent.
    /// See [`Provider::retire`] for what else the caller should learn.
    pub async fn remove(&self, record: &Record) -> Result<Change, ProviderError> {
        self.retire(record).await.map(|r| r.change)
    }

    /// Add one record beside whatever the owner name holds (a no-op when it is there already),
    /// with the RRset's TTL when the RRset exists; report other writers' records the write lost
    /// and a TTL other than the configured one.
    pub async fn publish(&self, record: &Record) -> Result<Report, ProviderError> {
        let mut record = Record::new(&record.owner, record.ttl, &record.rdata)?;
        if let Provider::Manual(m) = self {
            return Ok(Report::plain(m.add(&record)));
        }
        let before = self.list(&record.owner).await?;
        let ttl = self.ttl_notice(&record, &before);
        if before.iter().any(|r| r.same(&record)) {
            return Ok(Report {
                ttl,
                ..Report::plain(Change::AlreadyPresent)
            });
        }
        if let (
            Provider::Rfc2136(_) | Provider::Ovh(_) | Provider::Inwx(_) | Provider::Transip(_),
            Some(notice),
        ) = (self, &ttl)
        {
            // BIND and Knot give the whole RRset the TTL of a record added to it (RFC 2136
            // §3.4.2.2), and OVH, INWX and TransIP keep a TTL per record of one RRset: add with the RRset's, so
            // other hosts' records keep theirs and the RRset one TTL.
            record.ttl = notice.served;
        }
        match self {
            Provider::Rfc2136(p) => p.add(&record).await?,
            Provider::PowerDns(p) => p.add(&record).await?,
            Provider::Cloudflare(p) => p.add(&record).await?,
            Provider::Desec(p) => p.add(&record).await?,
            Provider::Hetzner(p) => p.add(&record).await?,
            Provider::Gandi(p) => p.add(&record).await?,
            Provider::Route53(p) => p.add(&record).await?,
            Provider::Ovh(p) => p.add(&record).await?,
            Provider::Inwx(p) => p.add(&record).await?,
            Provider::Transip(p) => p.add(&record).await?,
            Provider::Google(p) => p.add(&record).await?,
            Provider::Exec(p) => p.run_change(exec::Action::Add, &record).await?,
            Provider::Manual(_) => {}
        }
        let after = self.confirm(&record, true).await?;
        Ok(Report {
            change: Change::Added,
            vanished: vanished(&before, &after, &record),
            ttl,
        })
    }

    /// Remove this one record (a no-op when it is absent); report other writers' records the
    /// write lost.
    pub async fn retire(&self, record: &Record) -> Result<Report, ProviderError> {
        let record = Record::new(&record.owner, record.ttl, &record.rdata)?;
        if let Provider::Manual(m) = self {
            return Ok(Report::plain(m.remove(&record)));
        }
        let before = self.list(&record.owner).await?;
        if !before.iter().any(|r| r.same(&record)) {
            return Ok(Report::plain(Change::AlreadyAbsent));
        }
        match self {
            Provider::Rfc2136(p) => p.remove(&record).await?,
            Provider::PowerDns(p) => p.remove(&record).await?,
            Provider::Cloudflare(p) => p.remove(&record).await?,
            Provider::Desec(p) => p.remove(&record).await?,
            Provider::Hetzner(p) => p.remove(&record).await?,
            Provider::Gandi(p) => p.remove(&record).await?,
            Provider::Route53(p) => p.remove(&record).await?,
            Provider::Ovh(p) => p.remove(&record).await?,
            Provider::Inwx(p) => p.remove(&record).await?,
            Provider::Transip(p) => p.remove(&record).await?,
            Provider::Google(p) => p.remove(&record).await?,
            Provider::Exec(p) => p.run_change(exec::Action::Remove, &record).await?,
            Provider::Manual(_) => {}
        }
        let after = self.confirm(&record, false).await?;
        Ok(Report {
            change: Change::Removed,
            vanished: vanished(&before, &after, &record),
            ttl: None,
        })
    }

    /// The TTL the record will be served with, when it is not the configured one: an existing
    /// RRset's (RFC 2136, PowerDNS and deSEC keep one TTL per RRset), or Cloudflare's automatic.
    fn ttl_notice(&self, record: &Record, existing: &[Record]) -> Option<TtlNotice> {
        let notice = |served: u32, why: &'static str| {
            (served != record.ttl).then(|| TtlNotice {
                owner: record.owner.clone(),
                configured: record.ttl,
                served,
                why,
            })
        };
        let rrset_ttl = existing.iter().map(|r| r.ttl).find(|t| *t > 0);
        match self {
            Provider::Rfc2136(_)
            | Provider::PowerDns(_)
            | Provider::Desec(_)
            | Provider::Hetzner(_)
            | Provider::Gandi(_)
            | Provider::Route53(_)
            | Provider::Google(_)
            | Provider::Ovh(_)
            | Provider::Inwx(_)
            | Provider::Transip(_) => rrset_ttl.and_then(|t| {
                notice(
                    t,
                    "the RRset exists with this TTL, and an RRset has one TTL",
                )
            }),
            Provider::Cloudflare(_) if record.ttl == 1 => notice(
                CLOUDFLARE_AUTO_TTL,
                "Cloudflare's TTL 1 means automatic, served as 300 s",
            ),
            _ => None,
        }
    }

    /// Read the owner name back until the record is (or is no longer) there; the last listing.
    async fn confirm(&self, record: &Record, present: bool) -> Result<Vec<Record>, ProviderError> {
        let limit = self.readback();
        let start = tokio::time::Instant::now();
        let mut pause = READBACK_FIRST;
        loop {
            let list = self.list(&record.owner).await?;
            if list.iter().any(|r| r.same(record)) == present {
                return Ok(list);
            }
            if start.elapsed() >= limit {
                return Err(ProviderError::NotVisible {
                    provider: self.kind(),
                    owner: record.owner.clone(),
                    rdata: record.rdata.clone(),
                    state: if present {
                        "still missing"
                    } else {
                        "still present"
                    },
                    after: start.elapsed(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(READBACK_INTERVAL);
        }
    }
}

impl Report {
    fn plain(change: Change) -> Report {
        Report {
            change,
            vanished: Vec::new(),
            ttl: None,
        }
    }
}

/// The records of `before` other than `ours` that `after` lacks.
fn vanished(before: &[Record], after: &[Record], ours: &Record) -> Vec<Record> {
    before
        .iter()
        .filter(|r| !r.same(ours) && !after.iter().any(|a| a.same(r)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_normalise_and_compare() {
        let a = Record::new("_25._tcp.Mail.Example.com", 300, "3 1 1 ABCD").unwrap();
        assert_eq!(a.owner, "_25._tcp.mail.example.com.");
        assert_eq!(a.rdata, "3 1 1 abcd");
        let b = Record::new("_25._tcp.mail.example.com.", 60, "3  1 1 ab cd").unwrap();
        assert!(a.same(&b));
        assert!(Record::new("x.", 1, "3 1 1 abc").is_err(), "odd hex");
        assert!(Record::new("x.", 1, "3 1 1").is_err(), "no data");
        assert!(Record::new("x.", 1, "3 1 x ab").is_err());
        assert_eq!(a.fields().unwrap(), (3, 1, 1, "abcd".into()));
    }

    #[test]
    fn names() {
        assert_eq!(
            ancestors("a.b.c"),
            vec!["a.b.c.".to_string(), "b.c.".into(), "c.".into()]
        );
        assert_eq!(
            relative_to("_25._tcp.mail.example.com.", "Example.com"),
            Some("_25._tcp.mail".into())
        );
        assert_eq!(
            relative_to("example.com", "example.com."),
            Some(String::new())
        );
        assert_eq!(relative_to("example.org.", "example.com."), None);
        assert_eq!(relative_to("badexample.com.", "example.com."), None);
    }
}
