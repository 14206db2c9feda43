//! OVHcloud's API (`/1.0`, DNS zones), with an application key, application secret and
//! consumer key, every request signed.
//!
//! Documented at <https://help.ovhcloud.com/csm/en-gb-api-getting-started-ovhcloud-api> (the
//! signature) and the API console (`/domain/zone`). Each request carries `X-Ovh-Application`,
//! `X-Ovh-Consumer`, `X-Ovh-Timestamp` (OVH's clock: `GET /auth/time` once, the offset kept) and
//! `X-Ovh-Signature` = `"$1$"` + hex SHA-1 of
//! `secret+consumer+METHOD+full URL+body+timestamp` (joined by `+`), computed with the `sha1`
//! crate (no hand-written crypto).
//!
//! OVH keeps each record as its own object: `GET /domain/zone/{zone}/record?fieldType=TLSA&
//! subDomain=…` gives the ids, `GET …/record/{id}` each record, `POST …/record` creates one,
//! `DELETE …/record/{id}` deletes one, so the other records at the owner name are never
//! touched (invariant 4); `POST /domain/zone/{zone}/refresh` then puts the change in the served
//! zone (a change is not served before). A reply that cannot be read is an error before
//! anything is written. The zone is the service's `zone`, else the longest ancestor of the owner
//! name that `GET /domain/zone/{zone}` knows (once per owner name). The id listing is one list
//! (OVH does not page it).

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tokio::sync::OnceCell;

use crate::http::{Http, Reply, encode};
use crate::listing::{records_only, ttl_field};
use crate::zones::{Zones, in_zone, longest_known, zone_name};
use crate::{ProviderError, Record, Secret, Settings};

/// The endpoints by name, as OVH's own clients name them.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("ovh-eu", "https://eu.api.ovh.com/1.0"),
    ("ovh-ca", "https://ca.api.ovh.com/1.0"),
    ("ovh-us", "https://api.us.ovhcloud.com/1.0"),
];
/// Records read at most at one owner name (a bound on a misbehaving API).
const MAX_RECORDS: usize = 1000;
/// What the consumer key's access rules must allow.
const RIGHTS: &str = "the consumer key needs the access rules GET, POST and DELETE on \
                      /domain/zone/* (create it with those)";

/// The credentials: the application key is sent as it is; the secret and the consumer key are
/// secrets.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The application key (`X-Ovh-Application`).
    pub application_key: String,
    /// The application secret.
    pub application_secret: Secret,
    /// The consumer key (`X-Ovh-Consumer`).
    pub consumer_key: Secret,
}

/// An OVHcloud account's DNS zones.
#[derive(Debug)]
pub struct Ovh {
    http: Http,
    base: String,
    credentials: Credentials,
    zones: Zones<String>,
    /// OVH's clock minus ours, in seconds.
    offset: OnceCell<i64>,
    settings: Settings,
}

impl Ovh {
    /// A client for `endpoint` (a name of [`ENDPOINTS`] or a URL) with `credentials`, for `zone`
    /// (found by name when `None`).
    pub fn new(
        endpoint: &str,
        credentials: Credentials,
        zone: Option<&str>,
        settings: Settings,
    ) -> Result<Ovh, ProviderError> {
        let base = ENDPOINTS
            .iter()
            .find(|(name, _)| *name == endpoint)
            .map_or(endpoint, |(_, url)| url)
            .trim_end_matches('/')
            .to_owned();
        // Messages are scrubbed of the secret and the consumer key (both, joined, are what
        // Http knows; each is scrubbed where errors are built here).
        let http = Http::signed("ovh", credentials.consumer_key.clone(), &settings)?;
        Ok(Ovh {
            http,
            base,
            credentials,
            zones: Zones::new(zone_name(zone)),
            offset: OnceCell::new(),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// OVH's clock offset, asked once (`GET /auth/time`, unsigned).
    async fn offset(&self) -> Result<i64, ProviderError> {
        self.offset
            .get_or_try_init(|| async {
                let url = format!("{}/auth/time", self.base);
                let reply = self
                    .http
                    .send_signed(Method::GET, &url, b"", "application/json", |_, _, _| {
                        Ok(Vec::new())
                    })
                    .await?;
                let reply = self.http.check(reply, "auth/time")?;
                let time = reply
                    .json()?
                    .as_i64()
                    .ok_or_else(|| reply.bad("/auth/time is not a number"))?;
                Ok(time - Ovh::now())
            })
            .await
            .copied()
    }

    /// The four `X-Ovh-*` headers of one request.
    fn sign(
        &self,
        offset: i64,
        method: &Method,
        url: &str,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, ProviderError> {
        let c = &self.credentials;
        let timestamp = (Ovh::now() + offset).to_string();
        let signature = signature(
            c.application_secret.expose(),
            c.consumer_key.expose(),
            method.as_str(),
            url,
            &String::from_utf8_lossy(body),
            &timestamp,
        );
        let value = |text: &str| {
            HeaderValue::from_str(text).map_err(|_| {
                ProviderError::Key(
                    "ovh: a key holds characters an HTTP header cannot carry".to_owned(),
                )
            })
        };
        Ok(vec![
            (
                HeaderName::from_static("x-ovh-application"),
                value(&c.application_key)?,
            ),
            (
                HeaderName::from_static("x-ovh-consumer"),
                value(c.consumer_key.expose())?,
            ),
            (
                HeaderName::from_static("x-ovh-timestamp"),
                value(&timestamp)?,
            ),
            (
                HeaderName::from_static("x-ovh-signature"),
                value(&signature)?,
            ),
            (
                HeaderName::from_static("accept"),
                HeaderValue::from_static("application/json"),
            ),
        ])
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ProviderError> {
        let offset = self.offset().await?;
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.http
            .send_signed(method, url, &bytes, "application/json", |m, u, b| {
                self.sign(offset, m, u, b)
            })
            .await
    }

    /// A non-2xx reply as an error, with OVH's words for wrong keys and missing rights.
    fn checked(&self, reply: Reply, what: &str) -> Result<Reply, ProviderError> {
        if reply.ok() {
            return Ok(reply);
        }
        let detail = self.scrub(&self.http.detail(&reply.body));
        let code = reply
            .json()
            .ok()
            .and_then(|v| {
                v.get("errorCode")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        match (reply.status, code.as_str()) {
            (_, "INVALID_SIGNATURE" | "INVALID_CREDENTIAL" | "INVALID_KEY") | (401, _) => {
                Err(ProviderError::Unauthorized {
                    provider: "ovh",
                    what: "the application key, application secret and consumer key \
                           (application-key, application-secret-file / -env, consumer-key-file / -env)",
                })
            }
            (403, _) => Err(ProviderError::Forbidden {
                provider: "ovh",
                detail: format!("{detail} ({RIGHTS})"),
            }),
            _ => self.http.check(reply, what),
        }
    }

    fn scrub(&self, text: &str) -> String {
        self.credentials.application_secret.scrub(text)
    }

    /// The zone holding `owner` and the owner's subdomain in it (empty for the apex).
    async fn locate(&self, owner: &str) -> Result<(String, String), ProviderError> {
        let zone = self.zones.get(owner, || self.look_up(owner)).await?;
        let sub = in_zone(owner, &zone, "zone")?;
        Ok((zone, sub))
    }

    async fn look_up(&self, owner: &str) -> Result<String, ProviderError> {
        longest_known(
            owner,
            "ovh API",
            "no DNS zone of this account holds the name; set the service's `zone`",
            |name| async move {
                let url = format!("{}/domain/zone/{}", self.base, encode(&name));
                let reply = self.call(Method::GET, &url, None).await?;
                if reply.status == 404 {
                    return Ok(None);
                }
                self.checked(reply, &format!("zone {name}"))?;
                Ok(Some(name))
            },
        )
        .await
    }

    /// The TLSA records at `owner` with their ids.
    async fn list_ids(&self, owner: &str) -> Result<(String, Vec<(u64, Record)>), ProviderError> {
        let (zone, sub) = self.locate(owner).await?;
        let url = format!(
            "{}/domain/zone/{}/record?fieldType=TLSA&subDomain={}",
            self.base,
            encode(&zone),
            encode(&sub)
        );
        let reply = self.call(Method::GET, &url, None).await?;
        let reply = self.checked(reply, &format!("zone {zone}"))?;
        let body = reply.json()?;
        let Some(ids) = body.as_array() else {
            return Err(reply.bad("the record list is not a list"));
        };
        let mut out = Vec::new();
        for id in ids.iter().take(MAX_RECORDS) {
            let Some(id) = id.as_u64() else {
                return Err(reply.bad("a record id is not a number"));
            };
            let url = format!("{}/domain/zone/{}/record/{id}", self.base, encode(&zone));
            let reply = self.call(Method::GET, &url, None).await?;
            if reply.status == 404 {
                continue; // deleted since the listing
            }
            let reply = self.checked(reply, &format!("record {id}"))?;
            let item = reply.json()?;
            let (Some(target), Some(kind), Some(name)) = (
                item.get("target").and_then(Value::as_str),
                item.get("fieldType").and_then(Value::as_str),
                item.get("subDomain").and_then(Value::as_str),
            ) else {
                return Err(reply.bad("a record lacks target, fieldType or subDomain"));
            };
            if kind != "TLSA" || !name.eq_ignore_ascii_case(&sub) {
                continue;
            }
            let ttl = ttl_field(&item, "ttl").unwrap_or_default();
            if let Ok(record) = Record::new(owner, ttl, target) {
                out.push((id, record));
            }
        }
        Ok((zone, out))
    }

    /// The TLSA records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        Ok(records_only(self.list_ids(owner).await?))
    }

    /// `POST /domain/zone/{zone}/refresh`: the change goes into the served zone.
    async fn refresh(&self, zone: &str) -> Result<(), ProviderError> {
        let url = format!("{}/domain/zone/{}/refresh", self.base, encode(zone));
        let reply = self.call(Method::POST, &url, None).await?;
        self.checked(reply, &format!("zone {zone}"))?;
        Ok(())
    }

    /// Create one record, then refresh the zone.
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        let (zone, sub) = self.locate(&record.owner).await?;
        let url = format!("{}/domain/zone/{}/record", self.base, encode(&zone));
        let body = json!({
            "fieldType": "TLSA",
            "subDomain": sub,
            "target": record.rdata,
            "ttl": record.ttl,
        });
        let reply = self.call(Method::POST, &url, Some(&body)).await?;
        self.checked(reply, &format!("zone {zone}"))?;
        self.refresh(&zone).await
    }

    /// Delete the record(s) with this data at the owner name, by id, then refresh the zone.
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        let (zone, existing) = self.list_ids(&record.owner).await?;
        for (id, existing) in existing {
            if !existing.same(record) {
                continue;
            }
            let url = format!("{}/domain/zone/{}/record/{id}", self.base, encode(&zone));
            let reply = self.call(Method::DELETE, &url, None).await?;
            if reply.status == 404 {
                continue; // gone already
            }
            self.checked(reply, &format!("record {id}"))?;
        }
        self.refresh(&zone).await
    }
}

/// `"$1$"` + hex SHA-1 of `secret+consumer+method+url+body+timestamp`.
pub fn signature(
    secret: &str,
    consumer: &str,
    method: &str,
    url: &str,
    body: &str,
    timestamp: &str,
) -> String {
    let digest = Sha1::digest(format!(
        "{secret}+{consumer}+{method}+{url}+{body}+{timestamp}"
    ));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("$1${hex}")
}
