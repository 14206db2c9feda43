//! The PowerDNS authoritative server's HTTP API.
//!
//! A change is a `PATCH` of one RRset (owner + TLSA). PowerDNS 4.9.12, 5.0.2 and 5.1 have
//! record-level changetypes, `EXTEND` (add one record unless present) and `PRUNE` (remove one
//! record if present), which touch nothing else: they are used when the server's version (asked
//! once, `GET /servers/{id}`) has them. Older servers only have `REPLACE`: to keep other hosts'
//! records (invariant 4), each add or remove reads the RRset fresh (`GET` of the zone), computes
//! the merged set (existing records, disabled ones included, plus or minus the one record), and
//! replaces with exactly that; the RRset's TTL is kept. A retried write reads again first (a stale
//! set is never resent). A reply without its `rrsets` list, or an RRset without `records`, is an
//! error before anything is written. Another writer adding a record between our read and our
//! write can still lose it there: [`crate::Provider::publish`] reports what vanished. 401, 404 and
//! 422 are mapped to clear errors.

use reqwest::Method;
use serde_json::{Value, json};

use tokio::sync::OnceCell;

use crate::http::{Attempt, Http, Reply, encode};
use crate::{ProviderError, Record, Secret, Settings, absolute, ancestors, same_name};

/// A PowerDNS API endpoint.
#[derive(Debug)]
pub struct PowerDns {
    http: Http,
    base: String,
    server_id: String,
    zone: Option<String>,
    settings: Settings,
    /// Whether the server has `EXTEND`/`PRUNE`, asked once.
    record_level: OnceCell<bool>,
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
            record_level: OnceCell::new(),
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
            zone_id(zone)
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
        let Some(rrsets) = body.get("rrsets").and_then(Value::as_array) else {
            return Err(reply.bad("the zone has no \"rrsets\" list"));
        };
        let Some(rrset) = rrsets.iter().find(|r| {
            r.get("type").and_then(Value::as_str) == Some("TLSA")
                && r.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| same_name(n, owner))
        }) else {
            return Ok(RrSet {
                ttl: None,
                entries: Vec::new(),
            });
        };
        let ttl = rrset
            .get("ttl")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok());
        let Some(records) = rrset.get("records").and_then(Value::as_array) else {
            return Err(reply.bad(&format!(
                "the TLSA RRset of {owner} has no \"records\" list"
            )));
        };
        let entries = records
            .iter()
            .map(|r| {
                Some(Entry {
                    content: r.get("content")?.as_str()?.to_owned(),
                    disabled: r.get("disabled").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect::<Option<Vec<Entry>>>()
            .ok_or_else(|| reply.bad(&format!("a record at {owner} has no \"content\"")))?;
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

    /// Whether the server has the `EXTEND` and `PRUNE` changetypes (asked once per run).
    async fn record_level(&self) -> Result<bool, ProviderError> {
        self.record_level
            .get_or_try_init(|| async {
                let url = format!("{}/servers/{}", self.base, encode(&self.server_id));
                let reply = self.http.send(Method::GET, &url, None).await?;
                let reply = self
                    .http
                    .check(reply, &format!("server {}", self.server_id))?;
                // No version, or one not understood: the read-modify-write, which every
                // version has.
                Ok(reply
                    .json()?
                    .get("version")
                    .and_then(Value::as_str)
                    .is_some_and(has_extend_prune))
            })
            .await
            .copied()
    }

    /// Add one record: `EXTEND` where the server has it, else replace the RRset with the fresh
    /// set plus this record.
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        self.change(record, true).await
    }

    /// Remove one record: `PRUNE` where the server has it, else replace the RRset with the
    /// fresh set minus this record (delete the RRset when nothing is left).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        self.change(record, false).await
    }

    async fn change(&self, record: &Record, add: bool) -> Result<(), ProviderError> {
        let zone = self.zone_for(&record.owner).await?;
        let record_level = self.record_level().await?;
        let mut backoff = self.http.backoff();
        loop {
            // Read before every try: a retried write is built from what is there now.
            let set = self.rrset(&zone, &record.owner).await?;
            let ttl = set.ttl.unwrap_or(record.ttl);
            let body = if record_level {
                record_change(record, ttl, add)
            } else {
                match merged(set.entries, record, add) {
                    Some(entries) => replace(&record.owner, ttl, &entries),
                    None => return Ok(()), // already as wanted
                }
            };
            match self
                .http
                .once(Method::PATCH, &self.zone_url(&zone), Some(&body))
                .await?
            {
                Attempt::Done(reply) => return self.patched(reply, &zone),
                Attempt::Transient(failed) => backoff.wait(failed).await?,
            }
        }
    }

    fn patched(&self, reply: Reply, zone: &str) -> Result<(), ProviderError> {
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

/// Whether a PowerDNS version has `EXTEND` and `PRUNE`: 4.9.12 and later 4.9, 5.0.2 and later
/// 5.0, 5.1 and later.
pub fn has_extend_prune(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) else {
        return false;
    };
    let patch = parts.next().flatten().unwrap_or(0);
    match (major, minor) {
        (4, 9) => patch >= 12,
        (5, 0) => patch >= 2,
        (major, minor) => (major, minor) >= (5, 1),
    }
}

/// One record added (`EXTEND`) or removed (`PRUNE`); nothing else at the owner name is touched.
/// The zone's id in API paths, escaped as PowerDNS escapes it (`apiZoneNameToId` in its
/// `ws-api.cc`): letters, digits, `.` and `-` kept, every other byte as `=XX` (upper-case hex),
/// so `0/26.2.0.192.in-addr.arpa.` is `0=2F26.2.0.192.in-addr.arpa.` and the root `=2E`.
pub fn zone_id(zone: &str) -> String {
    if zone == "." {
        return "=2E".to_owned();
    }
    let mut out = String::with_capacity(zone.len());
    for b in zone.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

fn record_change(record: &Record, ttl: u32, add: bool) -> Value {
    let changetype = if add { "EXTEND" } else { "PRUNE" };
    json!({ "rrsets": [{
        "name": record.owner, "type": "TLSA", "ttl": ttl, "changetype": changetype,
        "records": [{ "content": record.rdata, "disabled": false }],
    }]})
}

/// The RRset with the record added or removed, `None` when it is so already.
fn merged(mut entries: Vec<Entry>, record: &Record, add: bool) -> Option<Vec<Entry>> {
    let at = entries
        .iter()
        .position(|e| crate::rrset::same_rdata(&e.content, &record.rdata));
    match (add, at) {
        (true, Some(i)) if !entries[i].disabled => None,
        (true, Some(i)) => {
            entries[i].disabled = false;
            Some(entries)
        }
        (true, None) => {
            entries.push(Entry {
                content: record.rdata.clone(),
                disabled: false,
            });
            Some(entries)
        }
        (false, None) => None,
        (false, Some(_)) => {
            entries.retain(|e| !crate::rrset::same_rdata(&e.content, &record.rdata));
            Some(entries)
        }
    }
}

/// The body replacing the owner's TLSA RRset with `entries` (deleting it when empty).
fn replace(owner: &str, ttl: u32, entries: &[Entry]) -> Value {
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
    json!({ "rrsets": [rrset] })
}

#[cfg(test)]
mod tests {
    use super::has_extend_prune;

    #[test]
    fn versions_with_extend_and_prune() {
        for v in [
            "4.9.12",
            "4.9.13",
            "5.0.2",
            "5.0.10",
            "5.1.0",
            "5.1.0-alpha1",
            "6.0.0",
        ] {
            assert!(has_extend_prune(v), "{v}");
        }
        for v in [
            "4.7.3",
            "4.9.11",
            "4.8.5",
            "5.0.1",
            "5.0.0-rc1",
            "",
            "x",
            "4",
        ] {
            assert!(!has_extend_prune(v), "{v}");
        }
    }
}
