//! The deSEC API, with a token (`Authorization: Token …`).
//!
//! deSEC stores RRsets, not records: an add or remove reads the owner's TLSA RRset fresh
//! (`GET …/rrsets/{subname}/TLSA/`) and writes the merged record list back (`PATCH` with
//! `records`, which keeps the RRset's TTL; `POST` for a new RRset; an empty list deletes it), so
//! other hosts' records at the owner name are kept (invariant 4). Every try of a write reads
//! again first (a retry never resends a stale list), and a reply without its `records` list is an
//! error before anything is written. A new RRset's TTL is checked against the domain's
//! `minimum_ttl` (`GET /domains/{name}/`) first. Listing follows `Link: <…>; rel="next"` pages.
//! The domain is the one deSEC says owns the name (`GET /domains/?owns_qname=…`), asked once per
//! owner name for the provider's lifetime (not on every call and read-back).

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{Attempt, Reply, encode, next_link};
use crate::listing::ttl_field;
use crate::rrset::{RrSet, changed};
use crate::token_api::TokenApi;
use crate::zones::in_zone;
use crate::{ProviderError, Record, Secret, Settings};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://desec.io/api/v1";
/// Pages read at most.
const MAX_PAGES: usize = 1000;

/// A deSEC account.
#[derive(Debug)]
pub struct Desec {
    api: TokenApi,
}

impl Desec {
    /// A client with `token`, for `domain` (asked from deSEC when `None`), at `base`
    /// ([`DEFAULT_BASE_URL`] unless testing).
    pub fn new(
        token: Secret,
        domain: Option<&str>,
        base: Option<&str>,
        settings: Settings,
    ) -> Result<Desec, ProviderError> {
        Ok(Desec {
            api: TokenApi::new(
                "desec",
                "Token ",
                token,
                domain,
                base,
                DEFAULT_BASE_URL,
                settings,
            )?,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.api.settings
    }

    /// The domain holding `owner` and the owner's subname in it.
    async fn locate(&self, owner: &str) -> Result<(String, String), ProviderError> {
        let domain = self.api.zones.get(owner, || self.look_up(owner)).await?;
        let sub = in_zone(owner, &domain, "domain")?;
        Ok((domain, sub))
    }

    /// `GET /domains/?owns_qname=…`: the domain deSEC says owns the name.
    async fn look_up(&self, owner: &str) -> Result<String, ProviderError> {
        let url = format!(
            "{}/domains/?owns_qname={}",
            self.api.base,
            encode(owner.trim_end_matches('.'))
        );
        let reply = self.api.http.send(Method::GET, &url, None).await?;
        let reply = self.api.http.check(reply, "domains")?;
        let body = reply.json()?;
        let Some(domains) = body.as_array() else {
            return Err(reply.bad("the domain list is not a list"));
        };
        domains
            .first()
            .and_then(|d| d.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::NoZone {
                server: "desec API".into(),
                zone: owner.to_owned(),
                detail: "no domain of this account holds the name".into(),
            })
    }

    fn rrset_url(&self, domain: &str, sub: &str) -> String {
        let sub = if sub.is_empty() { "@" } else { sub };
        format!(
            "{}/domains/{}/rrsets/{}/TLSA/",
            self.api.base,
            encode(domain),
            encode(sub)
        )
    }

    /// The TLSA records at `owner`, following the pages of the RRset listing.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let (domain, sub) = self.locate(owner).await?;
        let mut url = format!(
            "{}/domains/{}/rrsets/?subname={}&type=TLSA&cursor=",
            self.api.base,
            encode(&domain),
            encode(&sub)
        );
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.api.http.send(Method::GET, &url, None).await?;
            let reply = self.api.http.check(reply, &format!("domain {domain}"))?;
            let body = reply.json()?;
            let Some(rrsets) = body.as_array() else {
                return Err(reply.bad("the RRset list is not a list"));
            };
            for rrset in rrsets {
                if rrset.get("type").and_then(Value::as_str) != Some("TLSA")
                    || rrset.get("subname").and_then(Value::as_str) != Some(sub.as_str())
                {
                    continue;
                }
                out.extend(records_of(owner, rrset, &reply)?);
            }
            match reply.link.as_deref().and_then(next_link) {
                Some(next) => url = next,
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The current record list of the RRset, `None` when it does not exist.
    async fn current(&self, domain: &str, sub: &str) -> Result<Option<Vec<String>>, ProviderError> {
        let reply = self
            .api
            .http
            .send(Method::GET, &self.rrset_url(domain, sub), None)
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let reply = self.api.http.check(reply, &format!("domain {domain}"))?;
        let body = reply.json()?;
        let list = body
            .get("records")
            .and_then(Value::as_array)
            .ok_or_else(|| reply.bad("the RRset has no \"records\" list"))?;
        list.iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .map(Some)
            .ok_or_else(|| reply.bad("a record of the RRset is not a string"))
    }

    /// The domain's `minimum_ttl`, when deSEC says.
    async fn minimum_ttl(&self, domain: &str) -> Result<Option<u64>, ProviderError> {
        let url = format!("{}/domains/{}/", self.api.base, encode(domain));
        let reply = self.api.http.send(Method::GET, &url, None).await?;
        let reply = self.api.http.check(reply, &format!("domain {domain}"))?;
        Ok(reply.json()?.get("minimum_ttl").and_then(Value::as_u64))
    }

    /// Add one record: the fresh record list plus this one (a new RRset, with the record's TTL,
    /// when there is none).
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        self.change(record, true).await
    }

    /// Remove one record: the fresh record list minus this one (empty deletes the RRset).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        self.change(record, false).await
    }

    async fn change(&self, record: &Record, add: bool) -> Result<(), ProviderError> {
        let (domain, sub) = self.locate(&record.owner).await?;
        let mut backoff = self.api.http.backoff();
        let mut checked_ttl = false;
        loop {
            // Read before every try: a retried write is built from what is there now.
            let current = self
                .current(&domain, &sub)
                .await?
                .map(|values| RrSet { ttl: 0, values });
            let Some(next) = changed(current.as_ref(), record, add) else {
                return Ok(()); // already there, or already gone
            };
            let (method, url, body) = if current.is_none() {
                if !checked_ttl {
                    self.check_ttl(&domain, record.ttl).await?;
                    checked_ttl = true;
                }
                let body = json!({
                    "subname": sub, "type": "TLSA", "ttl": record.ttl,
                    "records": next.values,
                });
                let url = format!("{}/domains/{}/rrsets/", self.api.base, encode(&domain));
                (Method::POST, url, body)
            } else {
                // PATCH with `records` only: the RRset keeps its TTL.
                let body = json!({ "records": next.values });
                (Method::PATCH, self.rrset_url(&domain, &sub), body)
            };
            match self.api.http.once(method, &url, Some(&body)).await? {
                Attempt::Done(reply) => {
                    self.api.http.check(reply, &format!("domain {domain}"))?;
                    return Ok(());
                }
                Attempt::Transient(failed) => backoff.wait(failed).await?,
            }
        }
    }

    /// Refuse a TTL below the domain's `minimum_ttl` before anything is written.
    async fn check_ttl(&self, domain: &str, ttl: u32) -> Result<(), ProviderError> {
        match self.minimum_ttl(domain).await? {
            Some(minimum) if u64::from(ttl) < minimum => Err(ProviderError::Ttl {
                provider: "desec",
                ttl,
                detail: format!(
                    "domain {domain} has minimum_ttl {minimum}: set the service's `ttl` to \
                     {minimum} or more (deSEC lowers a domain's minimum only on request)"
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// The records of one listed RRset; an error when it has no `records` list.
fn records_of(owner: &str, rrset: &Value, reply: &Reply) -> Result<Vec<Record>, ProviderError> {
    let ttl = ttl_field(rrset, "ttl").unwrap_or_default();
    let list = rrset
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| reply.bad("an RRset has no \"records\" list"))?;
    Ok(list
        .iter()
        .filter_map(|r| Record::new(owner, ttl, r.as_str()?).ok())
        .collect())
}
