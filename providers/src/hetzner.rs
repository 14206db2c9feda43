//! The Hetzner Cloud DNS API (`https://api.hetzner.cloud/v1`, zones and RRsets), with a project's
//! API token (`Authorization: Bearer …`, Read & Write).
//!
//! Documented at <https://docs.hetzner.cloud/reference/cloud#zones> and
//! <https://docs.hetzner.cloud/reference/cloud#zone-rrsets>. Hetzner keeps RRsets, but has
//! record-level actions: `POST /zones/{zone}/rrsets/{name}/TLSA/actions/add_records` appends
//! records (creating the RRset when there is none) and `…/actions/remove_records` removes the
//! records whose value it is given, so the other records at the owner name are never rewritten
//! (invariant 4). A removal sends the value exactly as Hetzner lists it. An action answered as
//! `error` is an error; a `running` one is left to the read-back.
//!
//! The zone is configured (the service's `zone`) or found by name (`GET /zones?name=…`, the
//! owner's ancestors from the longest), once per owner name for the provider's lifetime; its
//! default TTL is what an RRset without its own TTL is served with. Listing is
//! `GET /zones/{zone}/rrsets?name=…&type=TLSA`, following `meta.pagination.next_page`; a reply
//! without its `rrsets` list, or an RRset without `records`, is an error. The TTL is checked
//! first (60 to 2147483647: Hetzner refuses shorter ones), and an existing RRset keeps its TTL
//! (the add sends none).
//!
//! Hetzner does not sign the zones it serves: DANE needs DNSSEC, so TLSA records published here
//! protect nothing until the zone is signed (docs/CONFIG.md says so with the kind).

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{Http, Reply, base_url, encode};
use crate::listing::{records_only, ttl_field};
use crate::zones::{Zones, apex_as_at, in_zone, longest_known, zone_name};
use crate::{ProviderError, Record, Secret, Settings, same_name};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.hetzner.cloud/v1";
/// RRsets asked for per page.
pub const PER_PAGE: u32 = 100;
/// Pages read at most.
const MAX_PAGES: u64 = 1000;
/// The shortest TTL Hetzner takes.
pub const MIN_TTL: u32 = 60;
/// The comment our records carry, so an operator sees who wrote them.
pub const COMMENT: &str = "dane-roll";

/// What a lookup that found no zone says.
const LOOKUP_FAILED: &str = "no zone of the token's project holds the name; check the token's \
                             project, or set the service's `zone`";

/// A zone found: its id (or name, which the API takes in paths too), name and default TTL.
#[derive(Debug, Clone)]
struct Zone {
    id: String,
    name: String,
    ttl: Option<u32>,
}

/// A Hetzner Cloud project's DNS zones.
#[derive(Debug)]
pub struct Hetzner {
    http: Http,
    base: String,
    zone: Option<String>,
    zones: Zones<Zone>,
    settings: Settings,
}

impl Hetzner {
    /// A client with `token`, for `zone` (found by name when `None`), at `base`
    /// ([`DEFAULT_BASE_URL`] unless testing).
    pub fn new(
        token: Secret,
        zone: Option<&str>,
        base: Option<&str>,
        settings: Settings,
    ) -> Result<Hetzner, ProviderError> {
        Ok(Hetzner {
            http: Http::new("hetzner", "authorization", "Bearer ", token, &settings)?,
            base: base_url(base, DEFAULT_BASE_URL),
            zone: zone_name(zone),
            zones: Zones::new(None),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The zone holding `owner`, looked up once per owner name.
    async fn zone(&self, owner: &str) -> Result<Zone, ProviderError> {
        // The configured zone is asked for too (its id and default TTL), once per owner name.
        self.zones
            .get(owner, || async {
                match &self.zone {
                    Some(name) => self.zone_named(name).await,
                    None => self.look_up(owner).await,
                }
            })
            .await
    }

    /// `GET /zones/{id_or_name}`: the configured zone, or a clear error when the project has none.
    async fn zone_named(&self, name: &str) -> Result<Zone, ProviderError> {
        let url = format!("{}/zones/{}", self.base, encode(name));
        let reply = self.http.send(Method::GET, &url, None).await?;
        if reply.status == 404 {
            return Err(no_zone(name, "the token's project has no such zone"));
        }
        let reply = self.checked(reply, &format!("zone {name}"))?;
        let body = reply.json()?;
        body.get("zone")
            .and_then(zone_of)
            .ok_or_else(|| reply.bad("the zone has no \"id\" and \"name\""))
    }

    /// `GET /zones?name=…` for the owner's ancestors, longest first.
    async fn look_up(&self, owner: &str) -> Result<Zone, ProviderError> {
        longest_known(owner, "hetzner API", LOOKUP_FAILED, |name| async move {
            let url = format!("{}/zones?name={}", self.base, encode(&name));
            let reply = self.http.send(Method::GET, &url, None).await?;
            let reply = self.checked(reply, "zones")?;
            let body = reply.json()?;
            let Some(zones) = body.get("zones").and_then(Value::as_array) else {
                return Err(reply.bad("the zone list has no \"zones\" list"));
            };
            Ok(zones
                .iter()
                .filter_map(zone_of)
                .find(|z| same_name(&z.name, &name)))
        })
        .await
    }

    /// A non-2xx reply as an error, with Hetzner's words for a read-only token.
    fn checked(&self, reply: Reply, what: &str) -> Result<Reply, ProviderError> {
        if reply.status == 403 {
            return Err(ProviderError::Forbidden {
                provider: "hetzner",
                detail: format!(
                    "{} (a read-only token cannot change records: create a Read & Write API \
                     token in the project that holds the zone)",
                    self.http.detail(&reply.body)
                ),
            });
        }
        self.http.check(reply, what)
    }

    /// The TLSA records at `owner`, each with the value as Hetzner holds it.
    async fn list_values(
        &self,
        owner: &str,
    ) -> Result<(Zone, Vec<(String, Record)>), ProviderError> {
        let zone = self.zone(owner).await?;
        let sub = relative(owner, &zone)?;
        let mut out = Vec::new();
        let mut page: u64 = 1;
        loop {
            let url = format!(
                "{}/zones/{}/rrsets?name={}&type=TLSA&page={page}&per_page={PER_PAGE}",
                self.base,
                encode(&zone.id),
                encode(&sub)
            );
            let reply = self.http.send(Method::GET, &url, None).await?;
            let reply = self.checked(reply, &format!("zone {}", zone.name))?;
            let body = reply.json()?;
            let Some(rrsets) = body.get("rrsets").and_then(Value::as_array) else {
                return Err(reply.bad("the listing has no \"rrsets\" list"));
            };
            for rrset in rrsets {
                if rrset.get("type").and_then(Value::as_str) != Some("TLSA")
                    || rrset.get("name").and_then(Value::as_str) != Some(sub.as_str())
                {
                    continue;
                }
                let ttl = ttl_field(rrset, "ttl").or(zone.ttl).unwrap_or_default();
                let Some(records) = rrset.get("records").and_then(Value::as_array) else {
                    return Err(reply.bad("an RRset has no \"records\" list"));
                };
                for value in records
                    .iter()
                    .filter_map(|r| r.get("value").and_then(Value::as_str))
                {
                    if let Ok(record) = Record::new(owner, ttl, value) {
                        out.push((value.to_owned(), record));
                    }
                }
            }
            match body
                .pointer("/meta/pagination/next_page")
                .and_then(Value::as_u64)
            {
                Some(next) if next > page && next <= MAX_PAGES => page = next,
                _ => return Ok((zone, out)),
            }
        }
    }

    /// The TLSA records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        Ok(records_only(self.list_values(owner).await?))
    }

    fn action_url(&self, zone: &Zone, sub: &str, action: &str) -> String {
        format!(
            "{}/zones/{}/rrsets/{}/TLSA/actions/{action}",
            self.base,
            encode(&zone.id),
            encode(if sub.is_empty() { "@" } else { sub })
        )
    }

    /// Append one record to the RRset (created with the record's TTL when there is none).
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        check_ttl(record.ttl)?;
        let (zone, existing) = self.list_values(&record.owner).await?;
        if existing.iter().any(|(_, r)| r.same(record)) {
            return Ok(());
        }
        let sub = relative(&record.owner, &zone)?;
        let mut body = json!({"records": [{"value": record.rdata, "comment": COMMENT}]});
        if existing.is_empty() {
            // Only for a new RRset: an existing one keeps its TTL (other hosts' records too).
            body["ttl"] = json!(record.ttl);
        }
        self.act(&zone, &sub, "add_records", &body).await
    }

    /// Remove the records with this data at the owner name, by the value Hetzner lists.
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        let (zone, existing) = self.list_values(&record.owner).await?;
        let values: Vec<Value> = existing
            .iter()
            .filter(|(_, r)| r.same(record))
            .map(|(v, _)| json!({ "value": v }))
            .collect();
        if values.is_empty() {
            return Ok(());
        }
        let sub = relative(&record.owner, &zone)?;
        self.act(&zone, &sub, "remove_records", &json!({ "records": values }))
            .await
    }

    async fn act(
        &self,
        zone: &Zone,
        sub: &str,
        action: &str,
        body: &Value,
    ) -> Result<(), ProviderError> {
        let url = self.action_url(zone, sub, action);
        let reply = self.http.send(Method::POST, &url, Some(body)).await?;
        let reply = self.checked(reply, &format!("zone {}", zone.name))?;
        let answer = reply.json()?;
        let Some(status) = answer.pointer("/action/status").and_then(Value::as_str) else {
            return Err(reply.bad("the answer has no \"action\" with a \"status\""));
        };
        if status == "error" {
            let detail = answer
                .pointer("/action/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(ProviderError::Rejected {
                provider: "hetzner",
                status: reply.status,
                detail: format!("the {action} action failed: {detail}"),
            });
        }
        Ok(())
    }
}

/// Hetzner's TTL rule: at least [`MIN_TTL`] seconds.
pub fn check_ttl(ttl: u32) -> Result<(), ProviderError> {
    if ttl >= MIN_TTL && ttl <= i32::MAX as u32 {
        return Ok(());
    }
    Err(ProviderError::Ttl {
        provider: "hetzner",
        ttl,
        detail: format!(
            "Hetzner accepts {MIN_TTL} s or more: set the service's `ttl` to {MIN_TTL} or more"
        ),
    })
}

fn zone_of(zone: &Value) -> Option<Zone> {
    let id = match zone.get("id")? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    Some(Zone {
        id,
        name: zone
            .get("name")
            .and_then(Value::as_str)?
            .to_ascii_lowercase(),
        ttl: ttl_field(zone, "ttl"),
    })
}

/// The owner relative to the zone, `@` for the apex, as Hetzner names RRsets.
fn relative(owner: &str, zone: &Zone) -> Result<String, ProviderError> {
    in_zone(owner, &zone.name, "zone").map(apex_as_at)
}

fn no_zone(name: &str, detail: &str) -> ProviderError {
    ProviderError::NoZone {
        server: "hetzner API".into(),
        zone: name.to_owned(),
        detail: detail.to_owned(),
    }
}
