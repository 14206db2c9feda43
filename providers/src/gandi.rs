//! Gandi LiveDNS (API v5, `https://api.gandi.net/v5/livedns`), with a personal access token
//! (`Authorization: Bearer …`).
//!
//! Documented at <https://api.gandi.net/docs/livedns/>. LiveDNS stores RRsets and has no
//! record-level change nor a concurrency check (no version or etag), so an add or remove reads
//! the owner's TLSA RRset fresh (`GET /domains/{fqdn}/records/{name}/TLSA`) and writes the merged
//! value list back (`PUT` of the same path with `rrset_values` and the RRset's own `rrset_ttl`;
//! a new RRset gets the record's TTL; `DELETE` when our record was the last): other hosts'
//! records at the owner name are kept (invariant 4). Every try of a write reads again first (a
//! retry never resends a stale list), a reply without its `rrset_values` list is an error before
//! anything is written, and the caller's read-back reports any record of another writer that a
//! concurrent write lost. One RRset is one object: no listing to page through.
//!
//! The domain is the service's `zone`, else the longest ancestor of the owner name that
//! `GET /domains/{fqdn}` knows (asked once per owner name). TTLs: 300 to 2592000 s.

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{Attempt, Reply, encode};
use crate::listing::ttl_field;
use crate::rrset::{RrSet, changed, records};
use crate::token_api::TokenApi;
use crate::zones::{apex_as_at, in_zone, longest_known};
use crate::{ProviderError, Record, Secret, Settings};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.gandi.net/v5/livedns";
/// The shortest TTL LiveDNS takes.
pub const MIN_TTL: u32 = 300;
/// The longest TTL LiveDNS takes (30 days).
pub const MAX_TTL: u32 = 2_592_000;

/// A Gandi LiveDNS account (the domains its token may manage).
#[derive(Debug)]
pub struct Gandi {
    api: TokenApi,
}

impl Gandi {
    /// A client with `token`, for `domain` (found by name when `None`), at `base`
    /// ([`DEFAULT_BASE_URL`] unless testing).
    pub fn new(
        token: Secret,
        domain: Option<&str>,
        base: Option<&str>,
        settings: Settings,
    ) -> Result<Gandi, ProviderError> {
        Ok(Gandi {
            api: TokenApi::new(
                "gandi",
                "Bearer ",
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

    /// A non-2xx reply as an error, with what a token without the right permission lacks.
    fn checked(&self, reply: Reply, what: &str) -> Result<Reply, ProviderError> {
        if reply.status == 403 {
            return Err(ProviderError::Forbidden {
                provider: "gandi",
                detail: format!(
                    "{} (the personal access token needs \"Manage domain name technical \
                     configurations\" for the organization that owns the domain)",
                    self.api.http.detail(&reply.body)
                ),
            });
        }
        self.api.http.check(reply, what)
    }

    /// The domain holding `owner` and the owner's name in it (`@` for the apex).
    async fn locate(&self, owner: &str) -> Result<(String, String), ProviderError> {
        let domain = self.api.zones.get(owner, || self.look_up(owner)).await?;
        let sub = apex_as_at(in_zone(owner, &domain, "domain")?);
        Ok((domain, sub))
    }

    /// `GET /domains/{fqdn}` for the owner's ancestors, longest first.
    async fn look_up(&self, owner: &str) -> Result<String, ProviderError> {
        longest_known(
            owner,
            "gandi API",
            "no LiveDNS domain this token may see holds the name; set the service's `zone`",
            |name| async move {
                let url = format!("{}/domains/{}", self.api.base, encode(&name));
                let reply = self.api.http.send(Method::GET, &url, None).await?;
                if reply.status == 404 {
                    return Ok(None);
                }
                self.checked(reply, &format!("domain {name}"))?;
                Ok(Some(name))
            },
        )
        .await
    }

    fn rrset_url(&self, domain: &str, sub: &str) -> String {
        format!(
            "{}/domains/{}/records/{}/TLSA",
            self.api.base,
            encode(domain),
            encode(sub)
        )
    }

    /// The RRset, `None` when there is none.
    async fn current(&self, domain: &str, sub: &str) -> Result<Option<RrSet>, ProviderError> {
        let reply = self
            .api
            .http
            .send(Method::GET, &self.rrset_url(domain, sub), None)
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let reply = self.checked(reply, &format!("domain {domain}"))?;
        let body = reply.json()?;
        let values = body
            .get("rrset_values")
            .and_then(Value::as_array)
            .ok_or_else(|| reply.bad("the RRset has no \"rrset_values\" list"))?
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| reply.bad("a value of the RRset is not a string"))?;
        let ttl = ttl_field(&body, "rrset_ttl").unwrap_or_default();
        Ok(Some(RrSet { ttl, values }))
    }

    /// The TLSA records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let (domain, sub) = self.locate(owner).await?;
        Ok(records(owner, self.current(&domain, &sub).await?.as_ref()))
    }

    /// Add one record: the fresh value list plus this one.
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        check_ttl(record.ttl)?;
        self.change(record, true).await
    }

    /// Remove one record: the fresh value list minus this one (the RRset deleted when empty).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        self.change(record, false).await
    }

    async fn change(&self, record: &Record, add: bool) -> Result<(), ProviderError> {
        let (domain, sub) = self.locate(&record.owner).await?;
        let url = self.rrset_url(&domain, &sub);
        let mut backoff = self.api.http.backoff();
        loop {
            // Read before every try: a retried write is built from what is there now.
            let current = self.current(&domain, &sub).await?;
            let Some(next) = changed(current.as_ref(), record, add) else {
                return Ok(()); // already there, or already gone
            };
            let (method, body) = if next.values.is_empty() {
                (Method::DELETE, None)
            } else {
                // An RRset read without a TTL gets the record's.
                let ttl = if next.ttl > 0 { next.ttl } else { record.ttl };
                (
                    Method::PUT,
                    Some(json!({"rrset_ttl": ttl, "rrset_values": next.values})),
                )
            };
            match self.api.http.once(method, &url, body.as_ref()).await? {
                Attempt::Done(reply) => {
                    if reply.status == 404 && body.is_none() {
                        return Ok(()); // deleted meanwhile
                    }
                    self.checked(reply, &format!("domain {domain}"))?;
                    return Ok(());
                }
                Attempt::Transient(failed) => backoff.wait(failed).await?,
            }
        }
    }
}

/// LiveDNS's TTL rule: 300 to 2592000 seconds.
pub fn check_ttl(ttl: u32) -> Result<(), ProviderError> {
    if (MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Ok(());
    }
    Err(ProviderError::Ttl {
        provider: "gandi",
        ttl,
        detail: format!(
            "Gandi LiveDNS accepts {MIN_TTL} to {MAX_TTL} s: set the service's `ttl` in that range"
        ),
    })
}
