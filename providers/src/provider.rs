//! [`Provider`]: one configured provider of any kind, and the rules every kind publishes and
//! retires by (read the owner name before the write, leave others' records, read it back after,
//! report lost records and the TTL served).

use std::time::Duration;

use crate::report::vanished;
use crate::{
    Change, ProviderError, READBACK_FIRST, READBACK_INTERVAL, Record, Report, TtlNotice, absolute,
    cloudflare, desec, exec, gandi, google, hetzner, inwx, manual, ovh, powerdns, rfc2136, route53,
    transip,
};

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
