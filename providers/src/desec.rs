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

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{Attempt, Http, Reply, encode, next_link};
use crate::{ProviderError, Record, Secret, Settings, relative_to};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://desec.io/api/v1";
/// Pages read at most.
const MAX_PAGES: usize = 1000;

/// A deSEC account.
#[derive(Debug)]
pub struct Desec {
    http: Http,
    base: String,
    domain: Option<String>,
    /// Domains deSEC named, by owner name.
    domains: Mutex<HashMap<String, String>>,
    settings: Settings,
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
            http: Http::new("desec", "authorization", "Token ", token, &settings)?,
            base: base
                .unwrap_or(DEFAULT_BASE_URL)
                .trim_end_matches('/')
                .to_owned(),
            domain: domain.map(|d| d.trim_end_matches('.').to_ascii_lowercase()),
            domains: Mutex::new(HashMap::new()),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The domain holding `owner` and the owner's subname in it.
    async fn locate(&self, owner: &str) -> Result<(String, String), ProviderError> {
        let cached = self.domains.lock().ok().and_then(|d| d.get(owner).cloned());
        let domain = match (&self.domain, cached) {
            (Some(d), _) => d.clone(),
            (None, Some(d)) => d,
            (None, None) => {
                let url = format!(
                    "{}/domains/?owns_qname={}",
                    self.base,
                    encode(owner.trim_end_matches('.'))
                );
                let reply = self.http.send(Method::GET, &url, None).await?;
                let reply = self.http.check(reply, "domains")?;
                let body = reply.json()?;
                let Some(domains) = body.as_array() else {
                    return Err(reply.bad("the domain list is not a list"));
                };
                let found = domains
                    .first()
                    .and_then(|d| d.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| ProviderError::NoZone {
                        server: "desec API".into(),
                        zone: owner.to_owned(),
                        detail: "no domain of this account holds the name".into(),
                    })?;
                if let Ok(mut domains) = self.domains.lock() {
                    domains.insert(owner.to_owned(), found.clone());
                }
                found
            }
        };
        let sub = relative_to(owner, &domain).ok_or_else(|| {
            ProviderError::InvalidRecord(format!("{owner} is not in domain {domain}"))
        })?;
        Ok((domain, sub))
    }

    fn rrset_url(&self, domain: &str, sub: &str) -> String {
        let sub = if sub.is_empty() { "@" } else { sub };
        format!(
            "{}/domains/{}/rrsets/{}/TLSA/",
            self.base,
            encode(domain),
            encode(sub)
        )
    }

    /// The TLSA records at `owner`, following the pages of the RRset listing.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let (domain, sub) = self.locate(owner).await?;
        let mut url = format!(
            "{}/domains/{}/rrsets/?subname={}&type=TLSA&cursor=",
            self.base,
            encode(&domain),
            encode(&sub)
        );
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.http.send(Method::GET, &url, None).await?;
            let reply = self.http.check(reply, &format!("domain {domain}"))?;
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
            .http
            .send(Method::GET, &self.rrset_url(domain, sub), None)
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let reply = self.http.check(reply, &format!("domain {domain}"))?;
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
        let url = format!("{}/domains/{}/", self.base, encode(domain));
        let reply = self.http.send(Method::GET, &url, None).await?;
        let reply = self.http.check(reply, &format!("domain {domain}"))?;
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
        let mut backoff = self.http.backoff();
        let mut checked_ttl = false;
        loop {
            // Read before every try: a retried write is built from what is there now.
            let (method, url, body) = match self.current(&domain, &sub).await? {
                None if !add => return Ok(()),
                None => {
                    if !checked_ttl {
                        self.check_ttl(&domain, record.ttl).await?;
                        checked_ttl = true;
                    }
                    let body = json!({
                        "subname": sub, "type": "TLSA", "ttl": record.ttl,
                        "records": [record.rdata],
                    });
                    let url = format!("{}/domains/{}/rrsets/", self.base, encode(&domain));
                    (Method::POST, url, body)
                }
                Some(mut records) => {
                    let present = records
                        .iter()
                        .any(|r| crate::rrset::same_rdata(r, &record.rdata));
                    match (add, present) {
                        (true, true) | (false, false) => return Ok(()),
                        (true, false) => records.push(record.rdata.clone()),
                        (false, true) => {
                            records.retain(|r| !crate::rrset::same_rdata(r, &record.rdata))
                        }
                    }
                    let body = json!({ "records": records });
                    (Method::PATCH, self.rrset_url(&domain, &sub), body)
                }
            };
            match self.http.once(method, &url, Some(&body)).await? {
                Attempt::Done(reply) => {
                    self.http.check(reply, &format!("domain {domain}"))?;
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
    let ttl = rrset
        .get("ttl")
        .and_then(Value::as_u64)
        .and_then(|t| u32::try_from(t).ok())
        .unwrap_or_default();
    let list = rrset
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| reply.bad("an RRset has no \"records\" list"))?;
    Ok(list
        .iter()
        .filter_map(|r| Record::new(owner, ttl, r.as_str()?).ok())
        .collect())
}
