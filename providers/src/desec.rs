//! The deSEC API, with a token (`Authorization: Token …`).
//!
//! deSEC stores RRsets, not records: an add or remove reads the owner's TLSA RRset fresh
//! (`GET …/rrsets/{subname}/TLSA/`) and writes the merged record list back (`PATCH` with
//! `records`; `POST` for a new RRset; an empty list deletes it), so other hosts' records at the
//! owner name are kept (invariant 4). Listing follows `Link: <…>; rel="next"` pages. The domain
//! is the one deSEC says owns the name (`GET /domains/?owns_qname=…`).

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{Http, encode, next_link};
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
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The domain holding `owner` and the owner's subname in it.
    async fn locate(&self, owner: &str) -> Result<(String, String), ProviderError> {
        let domain = match &self.domain {
            Some(d) => d.clone(),
            None => {
                let url = format!(
                    "{}/domains/?owns_qname={}",
                    self.base,
                    encode(owner.trim_end_matches('.'))
                );
                let reply = self.http.send(Method::GET, &url, None).await?;
                let body = self.http.check(reply, "domains")?.json()?;
                body.as_array()
                    .and_then(|a| a.first())
                    .and_then(|d| d.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| ProviderError::NoZone {
                        server: "desec API".into(),
                        zone: owner.to_owned(),
                        detail: "no domain of this account holds the name".into(),
                    })?
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
            for rrset in body.as_array().into_iter().flatten() {
                if rrset.get("type").and_then(Value::as_str) != Some("TLSA")
                    || rrset.get("subname").and_then(Value::as_str) != Some(sub.as_str())
                {
                    continue;
                }
                out.extend(records_of(owner, rrset));
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
        let body = self
            .http
            .check(reply, &format!("domain {domain}"))?
            .json()?;
        Ok(Some(
            body.get("records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
        ))
    }

    /// Add one record: the fresh record list plus this one.
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        let (domain, sub) = self.locate(&record.owner).await?;
        match self.current(&domain, &sub).await? {
            None => {
                let body = json!({
                    "subname": sub, "type": "TLSA", "ttl": record.ttl,
                    "records": [record.rdata],
                });
                let url = format!("{}/domains/{}/rrsets/", self.base, encode(&domain));
                let reply = self.http.send(Method::POST, &url, Some(&body)).await?;
                self.http.check(reply, &format!("domain {domain}"))?;
            }
            Some(mut records) => {
                if !records.iter().any(|r| same(r, &record.rdata)) {
                    records.push(record.rdata.clone());
                }
                self.write(&domain, &sub, records).await?;
            }
        }
        Ok(())
    }

    /// Remove one record: the fresh record list minus this one (empty deletes the RRset).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        let (domain, sub) = self.locate(&record.owner).await?;
        if let Some(records) = self.current(&domain, &sub).await? {
            let rest: Vec<String> = records
                .into_iter()
                .filter(|r| !same(r, &record.rdata))
                .collect();
            self.write(&domain, &sub, rest).await?;
        }
        Ok(())
    }

    async fn write(
        &self,
        domain: &str,
        sub: &str,
        records: Vec<String>,
    ) -> Result<(), ProviderError> {
        let body = json!({ "records": records });
        let reply = self
            .http
            .send(Method::PATCH, &self.rrset_url(domain, sub), Some(&body))
            .await?;
        self.http.check(reply, &format!("domain {domain}"))?;
        Ok(())
    }
}

fn records_of(owner: &str, rrset: &Value) -> Vec<Record> {
    let ttl = rrset
        .get("ttl")
        .and_then(Value::as_u64)
        .and_then(|t| u32::try_from(t).ok())
        .unwrap_or_default();
    rrset
        .get("records")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| Record::new(owner, ttl, r.as_str()?).ok())
        .collect()
}

fn same(a: &str, b: &str) -> bool {
    match (crate::normalize_rdata(a), crate::normalize_rdata(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
