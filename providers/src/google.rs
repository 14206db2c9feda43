//! Google Cloud DNS (API v1), with a service account's JSON key: a JWT signed with its key
//! (RS256, by the `jsonwebtoken` crate) is exchanged at the key's `token_uri` for an OAuth access
//! token (`Authorization: Bearer …`), once per provider lifetime (tokens live an hour).
//!
//! Documented at <https://cloud.google.com/dns/docs/reference/rest/v1> and
//! <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>.
//! The managed zone is configured or the public one whose `dnsName` is the longest ancestor of
//! the owner name (`GET …/managedZones?dnsName=…`, once per owner name). Listing is
//! `GET …/managedZones/{zone}/rrsets?name=…&type=TLSA`, following `nextPageToken`.
//!
//! Cloud DNS changes whole RRsets: an add or remove is one change (`POST …/changes`) whose
//! `deletions` hold the RRset exactly as read and whose `additions` hold the new one. Cloud DNS
//! applies a change all or nothing and refuses a deletion that does not match the current RRset
//! (HTTP 412 `conditionNotMet`; an addition that exists is 409), so a concurrent writer's change
//! makes ours fail instead of being lost: we read again and build a new change (a few times).
//! An existing RRset keeps its TTL.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::http::{Attempt, Http, Reply, base_url, encode};
use crate::listing::ttl_field;
use crate::rrset::{RrSet, changed, records};
use crate::zones::Zones;
use crate::{ProviderError, Record, Secret, Settings, ancestors, same_name};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://dns.googleapis.com/dns/v1";
/// The OAuth scope asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/ndev.clouddns.readwrite";
/// Changes rebuilt after a concurrent change before giving up.
const MAX_CONFLICTS: u32 = 3;
/// Pages read at most.
const MAX_PAGES: usize = 100;
/// What the service account needs.
const RIGHTS: &str = "the service account needs the role DNS Administrator (roles/dns.admin) on \
                      the project, or dns.managedZones.list, dns.resourceRecordSets.list and \
                      dns.changes.create";

/// A service account's key, from its JSON file.
struct Key {
    email: String,
    key_id: Option<String>,
    token_uri: String,
    project: Option<String>,
    key: EncodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}, {})", self.email, crate::MASK)
    }
}

/// A Google Cloud project's DNS zones.
#[derive(Debug)]
pub struct Google {
    http: Http,
    base: String,
    project: String,
    key: Key,
    zones: Zones<String>,
    token: OnceCell<Secret>,
    settings: Settings,
}

impl Google {
    /// A client with the service account key `credentials` (the JSON file's text), for project
    /// `project` (the key's `project_id` when `None`) and managed zone `zone` (found by name
    /// when `None`), at `base` ([`DEFAULT_BASE_URL`] unless testing).
    pub fn new(
        credentials: &Secret,
        project: Option<&str>,
        zone: Option<&str>,
        base: Option<&str>,
        settings: Settings,
    ) -> Result<Google, ProviderError> {
        let bad = |what: &str| {
            ProviderError::Key(format!(
                "google: the credentials are not a service account key (JSON as downloaded from \
                 IAM → Service accounts → Keys): {what}"
            ))
        };
        let json: Value =
            serde_json::from_str(credentials.expose()).map_err(|_| bad("not JSON"))?;
        let field = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_owned);
        if field("type").as_deref() != Some("service_account") {
            return Err(bad("\"type\" is not \"service_account\""));
        }
        let pem = field("private_key").ok_or_else(|| bad("no \"private_key\""))?;
        let key = Key {
            email: field("client_email").ok_or_else(|| bad("no \"client_email\""))?,
            key_id: field("private_key_id"),
            token_uri: field("token_uri")
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".to_owned()),
            project: field("project_id"),
            key: EncodingKey::from_rsa_pem(pem.as_bytes())
                .map_err(|_| bad("\"private_key\" is not an RSA key in PEM"))?,
        };
        let project = project
            .map(str::to_owned)
            .or_else(|| key.project.clone())
            .ok_or_else(|| bad("no \"project_id\": set `project`"))?;
        Ok(Google {
            http: Http::signed("google", Secret::new(pem), &settings)?,
            base: base_url(base, DEFAULT_BASE_URL),
            project,
            key,
            zones: Zones::new(zone.map(str::to_owned)),
            token: OnceCell::new(),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The access token, asked for once: a signed JWT exchanged at `token_uri`.
    async fn token(&self) -> Result<&Secret, ProviderError> {
        self.token
            .get_or_try_init(|| async {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let claims = json!({
                    "iss": self.key.email, "scope": SCOPE, "aud": self.key.token_uri,
                    "iat": now, "exp": now + 3600,
                });
                let mut header = Header::new(Algorithm::RS256);
                header.kid = self.key.key_id.clone();
                let jwt = jsonwebtoken::encode(&header, &claims, &self.key.key).map_err(|_| {
                    ProviderError::Key("google: the JWT cannot be signed with the key".into())
                })?;
                let body = format!(
                    "grant_type={}&assertion={}",
                    encode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    encode(&jwt)
                );
                let reply = self
                    .http
                    .send_signed(
                        Method::POST,
                        &self.key.token_uri,
                        body.as_bytes(),
                        "application/x-www-form-urlencoded",
                        |_, _, _| Ok(Vec::new()),
                    )
                    .await?;
                if matches!(reply.status, 400 | 401 | 403) {
                    return Err(ProviderError::Unauthorized {
                        provider: "google",
                        what: "the service account key (credentials-file / credentials-env): \
                               Google refused it (deleted or disabled key, or this machine's \
                               clock is off)",
                    });
                }
                let reply = self.http.check(reply, "token")?;
                reply
                    .json()?
                    .get("access_token")
                    .and_then(Value::as_str)
                    .map(Secret::new)
                    .ok_or_else(|| reply.bad("the token answer has no \"access_token\""))
            })
            .await
    }

    fn headers(&self, token: &Secret) -> Result<Vec<(HeaderName, HeaderValue)>, ProviderError> {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| ProviderError::Key("google: the token is not a header value".into()))?;
        Ok(vec![
            (HeaderName::from_static("authorization"), value),
            (
                HeaderName::from_static("accept"),
                HeaderValue::from_static("application/json"),
            ),
        ])
    }

    async fn get(&self, url: &str) -> Result<Reply, ProviderError> {
        let token = self.token().await?;
        let reply = self
            .http
            .send_signed(Method::GET, url, b"", "application/json", |_, _, _| {
                self.headers(token)
            })
            .await?;
        self.checked(reply, url)
    }

    fn checked(&self, reply: Reply, what: &str) -> Result<Reply, ProviderError> {
        if reply.status == 403 {
            return Err(ProviderError::Forbidden {
                provider: "google",
                detail: format!("{} ({RIGHTS})", self.http.detail(&reply.body)),
            });
        }
        if reply.status == 401 {
            return Err(ProviderError::Unauthorized {
                provider: "google",
                what: "the service account key (credentials-file / credentials-env)",
            });
        }
        if reply.status == 404 {
            return Err(ProviderError::NoZone {
                server: "google API".into(),
                zone: what.to_owned(),
                detail: format!(
                    "{}: check `project` and `managed-zone`",
                    self.http.detail(&reply.body)
                ),
            });
        }
        self.http.check(reply, what)
    }

    fn project_url(&self) -> String {
        format!("{}/projects/{}", self.base, encode(&self.project))
    }

    /// The managed zone holding `owner`.
    async fn zone(&self, owner: &str) -> Result<String, ProviderError> {
        self.zones.get(owner, || self.look_up(owner)).await
    }

    /// The public managed zone whose `dnsName` is the longest ancestor of `owner`.
    async fn look_up(&self, owner: &str) -> Result<String, ProviderError> {
        for candidate in ancestors(owner) {
            let url = format!(
                "{}/managedZones?dnsName={}",
                self.project_url(),
                encode(&candidate)
            );
            let reply = self.get(&url).await?;
            let body = reply.json()?;
            let Some(zones) = body.get("managedZones").and_then(Value::as_array) else {
                return Err(reply.bad("the answer has no \"managedZones\" list"));
            };
            let found = zones.iter().find(|z| {
                z.get("visibility").and_then(Value::as_str) != Some("private")
                    && z.get("dnsName")
                        .and_then(Value::as_str)
                        .is_some_and(|n| same_name(n, &candidate))
            });
            if let Some(name) = found.and_then(|z| z.get("name")).and_then(Value::as_str) {
                return Ok(name.to_owned());
            }
        }
        Err(ProviderError::NoZone {
            server: "google API".into(),
            zone: owner.to_owned(),
            detail: format!(
                "no public managed zone of project {} holds the name; set `managed-zone`",
                self.project
            ),
        })
    }

    /// The owner's TLSA RRset, `None` when there is none.
    async fn rrset(&self, zone: &str, owner: &str) -> Result<Option<RrSet>, ProviderError> {
        let mut found = None;
        let mut page: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = format!(
                "{}/managedZones/{}/rrsets?name={}&type=TLSA",
                self.project_url(),
                encode(zone),
                encode(owner)
            );
            if let Some(token) = &page {
                url.push_str(&format!("&pageToken={}", encode(token)));
            }
            let reply = self.get(&url).await?;
            let body = reply.json()?;
            let Some(sets) = body.get("rrsets").and_then(Value::as_array) else {
                return Err(reply.bad("the listing has no \"rrsets\" list"));
            };
            for set in sets {
                if set.get("type").and_then(Value::as_str) != Some("TLSA")
                    || !set
                        .get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| same_name(n, owner))
                {
                    continue;
                }
                if set.get("routingPolicy").is_some() {
                    return Err(ProviderError::Unsupported {
                        provider: "google",
                        action: "change this TLSA RRset",
                        why: "it has a routing policy: publish through a plain RRset, or with \
                              the `manual` provider",
                    });
                }
                let Some(rrdatas) = set.get("rrdatas").and_then(Value::as_array) else {
                    return Err(reply.bad("an RRset has no \"rrdatas\" list"));
                };
                let ttl =
                    ttl_field(set, "ttl").ok_or_else(|| reply.bad("an RRset has no \"ttl\""))?;
                found = Some(RrSet {
                    ttl,
                    values: rrdatas
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                });
            }
            match body.get("nextPageToken").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => page = Some(next.to_owned()),
                _ => return Ok(found),
            }
        }
        Ok(found)
    }

    /// The TLSA records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        let zone = self.zone(owner).await?;
        Ok(records(owner, self.rrset(&zone, owner).await?.as_ref()))
    }

    /// Add one record to the RRset (a new RRset with the record's TTL when there is none).
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        self.change(record, true).await
    }

    /// Remove one record from the RRset (the RRset deleted when it was the last).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        self.change(record, false).await
    }

    async fn change(&self, record: &Record, add: bool) -> Result<(), ProviderError> {
        let zone = self.zone(&record.owner).await?;
        let url = format!(
            "{}/managedZones/{}/changes",
            self.project_url(),
            encode(&zone)
        );
        let mut backoff = self.http.backoff();
        let mut conflicts = 0;
        loop {
            // Read before every try: the deletion must be the RRset as it is now.
            let current = self.rrset(&zone, &record.owner).await?;
            let Some(next) = changed(current.as_ref(), record, add) else {
                return Ok(());
            };
            let set = |s: &RrSet| json!({"name": record.owner, "type": "TLSA", "ttl": s.ttl, "rrdatas": s.values});
            let mut body = json!({"kind": "dns#change"});
            if let Some(current) = &current {
                body["deletions"] = json!([set(current)]);
            }
            if !next.values.is_empty() {
                body["additions"] = json!([set(&next)]);
            }
            let token = self.token().await?;
            let attempt = self
                .http
                .once_signed(
                    Method::POST,
                    &url,
                    body.to_string().as_bytes(),
                    "application/json",
                    self.headers(token)?,
                )
                .await?;
            match attempt {
                Attempt::Transient(t) => backoff.wait(t).await?,
                Attempt::Done(reply) if reply.ok() => return Ok(()),
                Attempt::Done(reply)
                    if matches!(reply.status, 409 | 412) && conflicts < MAX_CONFLICTS =>
                {
                    // The RRset changed since it was read: read again.
                    conflicts += 1;
                }
                Attempt::Done(reply) => {
                    self.checked(reply, &format!("managed zone {zone}"))?;
                    return Ok(());
                }
            }
        }
    }
}
