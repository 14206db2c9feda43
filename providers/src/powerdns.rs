//! The PowerDNS authoritative server's HTTP API.
//!
//! The API has no per-record add or delete: a change is a `PATCH` of one RRset (owner + TLSA)
//! with `changetype: REPLACE`. To keep other hosts' records (invariant 4), each add or remove reads
//! the RRset fresh (`GET` of the zone), computes the merged set (existing records, disabled ones
//! included, plus or minus the one record), and replaces with exactly that; the RRset's TTL is
//! kept. Another writer changing the same owner name between the read and the write could still
//! lose a record: the read-back after the write catches our half of it. 401, 404 and 422 are
//! mapped to clear errors.

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{Http, encode};
use crate::{ProviderError, Record, Secret, Settings, absolute, ancestors, same_name};

/// A PowerDNS API endpoint.
#[derive(Debug)]
pub struct PowerDns {
    http: Http,
    base: String,
    server_id: String,
    zone: Option<String>,
    settings: Settings,
}

/// One record of an RRset as the API shows it.
#[derive(Debug, Clone)]
struct Entry {
    content: String,
    disabled: bool,
}

/// The TLSA RRset at an owner name: TTL and records.
struct RrSet {
    ttl: Option<u32>,
    entries: Vec<Entry>,
}

impl PowerDns {
    /// A client for the API at `url` (`http://host:8081` or `…/api/v1`) with `api_key`, server
    /// `server_id` (usually `localhost`), zone `zone` (found by name when `None`).
    pub fn new(
        url: &str,
        api_key: Secret,
        server_id: &str,
        zone: Option<&str>,
        settings: Settings,
    ) -> Result<PowerDns, ProviderError> {
        let url = url.trim_end_matches('/');
        let base = if url.ends_with("/api/v1") {
            url.to_owned()
        } else {
            format!("{url}/api/v1")
        };
        Ok(PowerDns {
            http: Http::new("powerdns", "x-api-key", "", api_key, &settings)?,
            base,
            server_id: server_id.to_owned(),
            zone: zone.map(absolute),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn zone_url(&self, zone: &str) -> String {
        format!(
            "{}/servers/{}/zones/{}",
            self.base,
            encode(&self.server_id),
            encode(zone)
        )
    }

    /// The zone holding `owner`: the configured one, or the longest ancestor the server has.
    async fn zone_for(&self, owner: &str) -> Result<String, ProviderError> {
        if let Some(zone) = &self.zone {
            return Ok(zone.clone());
        }
        for candidate in ancestors(owner) {
            let url = format!("{}?rrsets=false", self.zone_url(&candidate));
            let reply = self.http.send(Method::GET, &url, None).await?;
            match reply.status {
                404 | 422 => continue,
                _ => {
                    self.http.check(reply, &candidate)?;
                    return Ok(candidate);
                }
            }
        }
        Err(ProviderError::NoZone {
            server: "powerdns API".into(),
            zone: owner.to_owned(),
            detail: "no zone on this server holds the name".into(),
        })
    }

    async fn rrset(&self, zone: &str, owner: &str) -> Result<RrSet, ProviderError> {
        // rrset_name/rrset_type filter on PowerDNS ≥ 4.8; older servers send the whole zone,
        // which is filtered here.
        let url = format!(
            "{}?rrset_name={}&rrset_type=TLSA",
            self.zone_url(zone),
            encode(owner)
        );
        let reply = self.http.send(Method::GET, &url, None).await?;
        let reply = self.http.check(reply, &format!("zone {zone}"))?;
        let body = reply.json()?;
        let Some(rrset) = body
            .get("rrsets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|r| {
                r.get("type").and_then(Value::as_str) == Some("TLSA")
                    && r.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| same_name(n, owner))
            })
        else {
            return Ok(RrSet {
                ttl: None,
                entries: Vec::new(),
            });
        };
        let ttl = rrset
            .get("ttl")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok());
        let entries = rrset
            .get("records")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some(Entry {
                    content: r.get("content")?.as_str()?.to_owned(),
                    disabled: r.get("disabled").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect();
        Ok(RrSet { ttl, entries })
    }

    /// The enabled TLSA records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let zone = self.zone_for(owner).await?;
        let set = self.rrset(&zone, owner).await?;
        set.entries
            .iter()
            .filter(|e| !e.disabled)
            .map(|e| Record::new(owner, set.ttl.unwrap_or_default(), &e.content))
            .collect()
    }

    /// Add one record: replace the RRset with the fresh set plus this record.
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        let zone = self.zone_for(&record.owner).await?;
        let set = self.rrset(&zone, &record.owner).await?;
        let mut entries = set.entries;
        match entries
            .iter_mut()
            .find(|e| same_content(&e.content, &record.rdata))
        {
            Some(entry) => entry.disabled = false,
            None => entries.push(Entry {
                content: record.rdata.clone(),
                disabled: false,
            }),
        }
        self.replace(
            &zone,
            &record.owner,
            set.ttl.unwrap_or(record.ttl),
            &entries,
        )
        .await
    }

    /// Remove one record: replace the RRset with the fresh set minus this record (delete the
    /// RRset when nothing is left).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        let zone = self.zone_for(&record.owner).await?;
        let set = self.rrset(&zone, &record.owner).await?;
        let entries: Vec<Entry> = set
            .entries
            .into_iter()
            .filter(|e| !same_content(&e.content, &record.rdata))
            .collect();
        self.replace(
            &zone,
            &record.owner,
            set.ttl.unwrap_or(record.ttl),
            &entries,
        )
        .await
    }

    async fn replace(
        &self,
        zone: &str,
        owner: &str,
        ttl: u32,
        entries: &[Entry],
    ) -> Result<(), ProviderError> {
        let rrset = if entries.is_empty() {
            json!({ "name": owner, "type": "TLSA", "changetype": "DELETE" })
        } else {
            let records: Vec<Value> = entries
                .iter()
                .map(|e| json!({ "content": e.content, "disabled": e.disabled }))
                .collect();
            json!({
                "name": owner, "type": "TLSA", "ttl": ttl,
                "changetype": "REPLACE", "records": records,
            })
        };
        let body = json!({ "rrsets": [rrset] });
        let reply = self
            .http
            .send(Method::PATCH, &self.zone_url(zone), Some(&body))
            .await?;
        if reply.status == 422 {
            // PowerDNS explains a refused change in {"error": "..."}.
            let detail = reply
                .json()
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| self.http.detail(&reply.body));
            return Err(ProviderError::Rejected {
                provider: "powerdns",
                status: 422,
                detail,
            });
        }
        self.http.check(reply, &format!("zone {zone}"))?;
        Ok(())
    }
}

fn same_content(a: &str, b: &str) -> bool {
    match (crate::normalize_rdata(a), crate::normalize_rdata(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
