//! The Cloudflare API (v4), with an API token (`Authorization: Bearer …`).
//!
//! Cloudflare keeps each record as its own object, so add is one `POST` and remove one `DELETE`
//! by record id: the other records at the owner name are never touched. Our records carry the
//! comment `dane-roll`; a removal takes only those when an identical unmarked one is there too. Listing follows the
//! pages (`page`, `per_page`, `result_info.total_pages`; without `total_pages`, until an empty
//! page) of the documented exact-name filter (`name.exact`, `GET /zones/{zone_id}/dns_records`,
//! <https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/list/>).
//! The zone id is configured or looked up by name (`GET /zones?name=…`, the owner's ancestors
//! from the longest), once per owner name for the provider's lifetime; a token that may not list
//! zones (HTTP 403) is told to set `zone-id`. A listing without its `result` list is an error
//! (read as empty, a removal would be "confirmed" that did not happen). The TTL is checked
//! first: 1 (automatic, 300 s) or 60 to 86400.

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{Http, base_url, encode};
use crate::listing::ttl_field;
use crate::zones::{Zones, longest_known};
use crate::{ProviderError, Record, Secret, Settings, same_name};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// Records asked for per page.
pub const PER_PAGE: u32 = 100;
/// Pages read at most, as a bound on a misbehaving API.
const MAX_PAGES: u32 = 1000;
/// The shortest TTL Cloudflare takes (besides 1, automatic).
pub const MIN_TTL: u32 = 60;
/// The longest TTL Cloudflare takes.
pub const MAX_TTL: u32 = 86400;
/// The `comment` our records carry (documented record field), so a removal can tell them from
/// an identical record made by hand.
pub const COMMENT: &str = "dane-roll";
/// Cloudflare's error codes for "the record already exists" (81057) and "an identical record
/// already exists" (81058): either way what we asked for is there.
const ALREADY_THERE: [i64; 2] = [81057, 81058];

/// A Cloudflare zone.
#[derive(Debug)]
pub struct Cloudflare {
    http: Http,
    base: String,
    /// The configured zone id, or those looked up, by owner name.
    zones: Zones<String>,
    settings: Settings,
}

impl Cloudflare {
    /// A client with `token`, for zone `zone_id` (looked up by name when `None`), at `base`
    /// ([`DEFAULT_BASE_URL`] unless testing).
    pub fn new(
        token: Secret,
        zone_id: Option<&str>,
        base: Option<&str>,
        settings: Settings,
    ) -> Result<Cloudflare, ProviderError> {
        Ok(Cloudflare {
            http: Http::new("cloudflare", "authorization", "Bearer ", token, &settings)?,
            base: base_url(base, DEFAULT_BASE_URL),
            zones: Zones::new(zone_id.map(str::to_owned)),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    async fn zone_id(&self, owner: &str) -> Result<String, ProviderError> {
        self.zones.get(owner, || self.look_up_zone(owner)).await
    }

    async fn look_up_zone(&self, owner: &str) -> Result<String, ProviderError> {
        longest_known(
            owner,
            "cloudflare API",
            "no zone this token can see holds the name; set zone-id",
            |name| async move {
                let url = format!("{}/zones?name={}", self.base, encode(&name));
                let reply = self.http.send(Method::GET, &url, None).await?;
                if reply.status == 403 {
                    return Err(ProviderError::Forbidden {
                        provider: "cloudflare",
                        detail: format!(
                            "the token may not list zones ({}): set `zone-id` in the provider's \
                             configuration (the zone's overview page shows it), or give the \
                             token Zone:Read",
                            self.http.detail(&reply.body)
                        ),
                    });
                }
                let body = self.http.check(reply, "zones")?.json()?;
                let found = body
                    .get("result")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|z| {
                        z.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| same_name(n, &name))
                    })
                    .and_then(|z| z.get("id").and_then(Value::as_str));
                Ok(found.map(str::to_owned))
            },
        )
        .await
    }

    /// The TLSA records at `owner` with their record ids.
    async fn list_ids(
        &self,
        zone: &str,
        owner: &str,
    ) -> Result<Vec<(String, Record, bool)>, ProviderError> {
        let name = owner.trim_end_matches('.');
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let url = format!(
                "{}/zones/{}/dns_records?type=TLSA&name.exact={}&page={page}&per_page={PER_PAGE}",
                self.base,
                encode(zone),
                encode(name)
            );
            let reply = self.http.send(Method::GET, &url, None).await?;
            let reply = self.http.check(reply, &format!("zone {zone}"))?;
            let body = reply.json()?;
            let Some(result) = body.get("result").and_then(Value::as_array) else {
                return Err(reply.bad("the listing has no \"result\" list"));
            };
            let empty = result.is_empty();
            for item in result {
                if item.get("type").and_then(Value::as_str) != Some("TLSA")
                    || !item
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| same_name(n, owner))
                {
                    continue;
                }
                let (Some(id), Some(record)) = (
                    item.get("id").and_then(Value::as_str),
                    record_of(owner, item),
                ) else {
                    continue;
                };
                let ours = item.get("comment").and_then(Value::as_str) == Some(COMMENT);
                out.push((id.to_owned(), record, ours));
            }
            let last = match body
                .pointer("/result_info/total_pages")
                .and_then(Value::as_u64)
            {
                Some(total) => u64::from(page) >= total,
                // Without a page count: until a page comes back empty.
                None => empty,
            };
            if last || page >= MAX_PAGES {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// The TLSA records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let zone = self.zone_id(owner).await?;
        Ok(self
            .list_ids(&zone, owner)
            .await?
            .into_iter()
            .map(|(_, r, _)| r)
            .collect())
    }

    /// Create one record.
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        check_ttl(record.ttl)?;
        let zone = self.zone_id(&record.owner).await?;
        let (usage, selector, matching, data) = record.fields()?;
        let body = json!({
            "type": "TLSA",
            "name": record.owner.trim_end_matches('.'),
            "ttl": record.ttl,
            "comment": COMMENT,
            "data": {
                "usage": usage,
                "selector": selector,
                "matching_type": matching,
                "certificate": data,
            },
        });
        let url = format!("{}/zones/{}/dns_records", self.base, encode(&zone));
        let reply = self.http.send(Method::POST, &url, Some(&body)).await?;
        if !reply.ok()
            && reply.json().ok().is_some_and(|v| {
                v.get("errors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|e| {
                        e.get("code")
                            .and_then(Value::as_i64)
                            .is_some_and(|c| ALREADY_THERE.contains(&c))
                    })
            })
        {
            // Created by an earlier try whose answer was lost: what we wanted is there.
            return Ok(());
        }
        self.http.check(reply, &format!("zone {zone}"))?;
        Ok(())
    }

    /// Delete the record(s) with this data at the owner name, by id: those marked ours when any
    /// is (an identical record someone made by hand stays), else every one (records written
    /// before dane-roll marked its own cannot be told from others).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        let zone = self.zone_id(&record.owner).await?;
        let twins: Vec<(String, Record, bool)> = self
            .list_ids(&zone, &record.owner)
            .await?
            .into_iter()
            .filter(|(_, existing, _)| existing.same(record))
            .collect();
        let any_marked = twins.iter().any(|(_, _, ours)| *ours);
        for (id, _, ours) in twins {
            if any_marked && !ours {
                continue;
            }
            let url = format!(
                "{}/zones/{}/dns_records/{}",
                self.base,
                encode(&zone),
                encode(&id)
            );
            let reply = self.http.send(Method::DELETE, &url, None).await?;
            if reply.status == 404 {
                continue; // gone already
            }
            self.http.check(reply, &format!("record {id}"))?;
        }
        Ok(())
    }
}

/// Cloudflare's TTL rule: 1 ("automatic", 300 s) or 60 to 86400 seconds.
pub fn check_ttl(ttl: u32) -> Result<(), ProviderError> {
    if ttl == 1 || (MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Ok(());
    }
    Err(ProviderError::Ttl {
        provider: "cloudflare",
        ttl,
        detail: format!(
            "Cloudflare accepts 1 (automatic, served as 300 s) or {MIN_TTL} to {MAX_TTL}: set the \
             service's `ttl` in that range"
        ),
    })
}

/// A listed record: from `data` (structured), else from `content` (`3 1 1 hex`).
fn record_of(owner: &str, item: &Value) -> Option<Record> {
    let ttl = ttl_field(item, "ttl").unwrap_or_default();
    if let Some(data) = item.get("data") {
        let field = |k: &str| {
            data.get(k)
                .and_then(Value::as_u64)
                .and_then(|v| u8::try_from(v).ok())
        };
        if let (Some(u), Some(s), Some(m), Some(cert)) = (
            field("usage"),
            field("selector"),
            field("matching_type"),
            data.get("certificate").and_then(Value::as_str),
        ) {
            return Record::from_fields(owner, ttl, u, s, m, cert).ok();
        }
    }
    let content = item.get("content").and_then(Value::as_str)?;
    Record::new(owner, ttl, content).ok()
}
