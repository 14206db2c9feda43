//! TransIP's REST API (v6, `https://api.transip.nl/v6`), with a token obtained by signing a
//! request with the account's RSA key pair.
//!
//! Documented at <https://api.transip.nl/rest/docs.html>: `POST /auth` with
//! `{"login", "nonce", "read_only": false, "expiration_time", "label", "global_key"}` and the
//! header `Signature: base64(RSA-SHA512 of the body)` answers `{"token": …}`, then sent as
//! `Authorization: Bearer …` (one token for the provider's lifetime, 30 minutes). The signature
//! is computed with OpenSSL (already how dane-roll does its crypto), not by hand.
//!
//! TransIP keeps each DNS entry as its own object: `GET /domains/{domain}/dns` lists the
//! entries (`dnsEntries`), `POST` of `{"dnsEntry": {name, expire, type, content}}` adds one and
//! `DELETE` with the same body removes exactly that one, so the other records at the owner name
//! are never touched (invariant 4). The listing is the domain's whole zone at once; a reply
//! without `dnsEntries` is an error. The domain is the service's `zone`, else the longest
//! ancestor of the owner name that `GET /domains/{domain}` knows (once per owner name).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::http::{Http, Reply, base_url, encode};
use crate::listing::{records_only, ttl_field};
use crate::zones::{Zones, apex_as_at, in_zone, longest_known, zone_name};
use crate::{ProviderError, Record, Secret, Settings};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.transip.nl/v6";
/// How long a token lives (a run is shorter).
const TOKEN_LIFETIME: &str = "30 minutes";

/// The credentials: the login name, the key pair's private key (PEM), and whether the key may
/// be used from any address (`global_key`) rather than the whitelisted ones only.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The account's login name.
    pub login: String,
    /// The private key, PEM.
    pub private_key: Secret,
    /// Ask for a token usable from any address.
    pub global_key: bool,
}

/// A TransIP account's domains.
#[derive(Debug)]
pub struct Transip {
    http: Http,
    base: String,
    login: String,
    global_key: bool,
    key: KeyPair,
    zones: Zones<String>,
    token: OnceCell<Secret>,
    settings: Settings,
}

/// The private key, parsed once; never shown.
struct KeyPair(PKey<Private>);

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::MASK)
    }
}

impl Transip {
    /// A client with `credentials`, for `zone` (found by name when `None`), at `base`
    /// ([`DEFAULT_BASE_URL`] unless testing).
    pub fn new(
        credentials: Credentials,
        zone: Option<&str>,
        base: Option<&str>,
        settings: Settings,
    ) -> Result<Transip, ProviderError> {
        let key = PKey::private_key_from_pem(credentials.private_key.expose().as_bytes()).map_err(
            |_| {
                ProviderError::Key(
                    "transip: the private key is not a PEM private key (the key pair TransIP's \
                     control panel generated, as saved)"
                        .into(),
                )
            },
        )?;
        Ok(Transip {
            http: Http::signed("transip", credentials.private_key.clone(), &settings)?,
            base: base_url(base, DEFAULT_BASE_URL),
            login: credentials.login,
            global_key: credentials.global_key,
            key: KeyPair(key),
            zones: Zones::new(zone_name(zone)),
            token: OnceCell::new(),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `base64(RSA-SHA512(body))`.
    fn signature(&self, body: &[u8]) -> Result<String, ProviderError> {
        let failed =
            |_| ProviderError::Key("transip: the request cannot be signed with the key".into());
        let mut signer = Signer::new(MessageDigest::sha512(), &self.key.0).map_err(failed)?;
        signer.update(body).map_err(failed)?;
        let signature = signer.sign_to_vec().map_err(failed)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(signature))
    }

    /// The access token, asked for once.
    async fn token(&self) -> Result<&Secret, ProviderError> {
        self.token
            .get_or_try_init(|| async {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let body = json!({
                    "login": self.login,
                    "nonce": format!("dr{nanos:x}"),
                    "read_only": false,
                    "expiration_time": TOKEN_LIFETIME,
                    "label": format!("dane-roll {nanos:x}"),
                    "global_key": self.global_key,
                })
                .to_string();
                let signature = self.signature(body.as_bytes())?;
                let url = format!("{}/auth", self.base);
                let reply = self
                    .http
                    .send_signed(
                        Method::POST,
                        &url,
                        body.as_bytes(),
                        "application/json",
                        |_, _, _| {
                            Ok(vec![(
                                HeaderName::from_static("signature"),
                                HeaderValue::from_str(&signature).map_err(|_| {
                                    ProviderError::Key("transip: bad signature header".into())
                                })?,
                            )])
                        },
                    )
                    .await?;
                if matches!(reply.status, 401 | 403) {
                    return Err(ProviderError::Unauthorized {
                        provider: "transip",
                        what: "the login and key pair (login, private-key-file / private-key-env): \
                               TransIP refused the signed login; a key that accepts only \
                               whitelisted addresses needs this machine's address whitelisted \
                               (or `global-key = true` with a key that allows it)",
                    });
                }
                let reply = self.http.check(reply, "auth")?;
                let token = reply
                    .json()?
                    .get("token")
                    .and_then(Value::as_str)
                    .map(Secret::new)
                    .ok_or_else(|| reply.bad("the answer has no \"token\""))?;
                Ok(token)
            })
            .await
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ProviderError> {
        let token = self.token().await?;
        let header = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| ProviderError::Key("transip: the token is not a header value".into()))?;
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let reply = self
            .http
            .send_signed(method, url, &bytes, "application/json", |_, _, _| {
                Ok(vec![
                    (HeaderName::from_static("authorization"), header.clone()),
                    (
                        HeaderName::from_static("accept"),
                        HeaderValue::from_static("application/json"),
                    ),
                ])
            })
            .await?;
        if reply.status == 403 {
            return Err(ProviderError::Forbidden {
                provider: "transip",
                detail: format!(
                    "{} (the key pair must not be read-only, and the domain must be this \
                     account's)",
                    token.scrub(&self.http.detail(&reply.body))
                ),
            });
        }
        Ok(reply)
    }

    /// The domain holding `owner` and the owner's name in it (`@` for the apex).
    async fn locate(&self, owner: &str) -> Result<(String, String), ProviderError> {
        let zone = self.zones.get(owner, || self.look_up(owner)).await?;
        let sub = apex_as_at(in_zone(owner, &zone, "domain")?);
        Ok((zone, sub))
    }

    async fn look_up(&self, owner: &str) -> Result<String, ProviderError> {
        longest_known(
            owner,
            "transip API",
            "no domain of this account holds the name; set the service's `zone`",
            |name| async move {
                let url = format!("{}/domains/{}", self.base, encode(&name));
                let reply = self.call(Method::GET, &url, None).await?;
                if reply.status == 404 {
                    return Ok(None);
                }
                self.http.check(reply, &format!("domain {name}"))?;
                Ok(Some(name))
            },
        )
        .await
    }

    /// The TLSA entries at `owner`, each with the entry as TransIP holds it.
    async fn entries(&self, owner: &str) -> Result<(String, Vec<(Value, Record)>), ProviderError> {
        let (zone, sub) = self.locate(owner).await?;
        let url = format!("{}/domains/{}/dns", self.base, encode(&zone));
        let reply = self.call(Method::GET, &url, None).await?;
        let reply = self.http.check(reply, &format!("domain {zone}"))?;
        let body = reply.json()?;
        let Some(entries) = body.get("dnsEntries").and_then(Value::as_array) else {
            return Err(reply.bad("the answer has no \"dnsEntries\" list"));
        };
        let mut out = Vec::new();
        for entry in entries {
            if entry.get("type").and_then(Value::as_str) != Some("TLSA")
                || !entry
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&sub))
            {
                continue;
            }
            let Some(content) = entry.get("content").and_then(Value::as_str) else {
                return Err(reply.bad("an entry has no \"content\""));
            };
            let ttl = ttl_field(entry, "expire").unwrap_or_default();
            if let Ok(record) = Record::new(owner, ttl, content) {
                out.push((entry.clone(), record));
            }
        }
        Ok((zone, out))
    }

    /// The TLSA records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        Ok(records_only(self.entries(owner).await?))
    }

    /// Add one entry.
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        let (zone, sub) = self.locate(&record.owner).await?;
        let url = format!("{}/domains/{}/dns", self.base, encode(&zone));
        let body = json!({"dnsEntry": {
            "name": sub, "expire": record.ttl, "type": "TLSA", "content": record.rdata,
        }});
        let reply = self.call(Method::POST, &url, Some(&body)).await?;
        self.http.check(reply, &format!("domain {zone}"))?;
        Ok(())
    }

    /// Remove the entries with this data at the owner name, each exactly as TransIP holds it.
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        let (zone, entries) = self.entries(&record.owner).await?;
        let url = format!("{}/domains/{}/dns", self.base, encode(&zone));
        for (entry, existing) in entries {
            if !existing.same(record) {
                continue;
            }
            let body = json!({ "dnsEntry": entry });
            let reply = self.call(Method::DELETE, &url, Some(&body)).await?;
            if reply.status == 404 {
                continue; // gone already
            }
            self.http.check(reply, &format!("domain {zone}"))?;
        }
        Ok(())
    }
}
