//! INWX's DomRobot JSON-RPC API (`https://api.domrobot.com/jsonrpc/`), with the account's user
//! name and password, and its TOTP secret when the account has two-factor authentication.
//!
//! Documented at <https://www.inwx.com/en/help/apidoc>: every call is a `POST` of
//! `{"method": "…", "params": {…}}` answered `{"code": 1000, "msg": "…", "resData": {…}}` (codes
//! 1000–1500 are success). `account.login` opens a session (the `domrobot` cookie); when it
//! answers `tfa` other than `"0"`, `account.unlock` with the current TOTP code (computed by the
//! `totp-rs` crate from the configured secret) completes it. One session serves the provider's
//! lifetime. INWX keeps each record as its own object: `nameserver.info` (`domain`, `name`,
//! `type`) lists the records of a name with their ids, `nameserver.createRecord` adds one and
//! `nameserver.deleteRecord` (`id`) deletes one, so the other records at the owner name are
//! never touched (invariant 4). `nameserver.info` gives every record of the name at once (no
//! paging of one name). The zone is the service's `zone`, else the longest ancestor of the
//! owner name that `nameserver.info` knows (once per owner name). TTLs: 300 s or more.

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::http::{Http, Reply};
use crate::listing::{records_only, ttl_field};
use crate::zones::{Zones, longest_known, zone_name};
use crate::{ProviderError, Record, Secret, Settings, same_name};

/// The API's URL.
pub const DEFAULT_URL: &str = "https://api.domrobot.com/jsonrpc/";
/// The shortest TTL INWX takes.
pub const MIN_TTL: u32 = 300;
/// "Object does not exist".
const NO_OBJECT: i64 = 2303;
/// "Object exists".
const OBJECT_EXISTS: i64 = 2302;
/// "Authentication error".
const AUTHENTICATION: i64 = 2200;
/// "Authorization failed".
const AUTHORIZATION: i64 = 2201;

/// The credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The account's user name.
    pub user: String,
    /// Its password.
    pub password: Secret,
    /// The base32 TOTP secret of an account with two-factor authentication.
    pub totp: Option<Secret>,
}

/// An INWX account's nameserver zones.
#[derive(Debug)]
pub struct Inwx {
    http: Http,
    url: String,
    credentials: Credentials,
    zones: Zones<String>,
    /// The session cookie, after a login.
    session: OnceCell<Secret>,
    settings: Settings,
}

/// A DomRobot answer: its code, message and `resData`.
struct Answer {
    code: i64,
    msg: String,
    data: Value,
}

impl Inwx {
    /// A client with `credentials`, for `zone` (found by name when `None`), at `url`
    /// ([`DEFAULT_URL`] unless testing or using INWX's test system).
    pub fn new(
        credentials: Credentials,
        zone: Option<&str>,
        url: Option<&str>,
        settings: Settings,
    ) -> Result<Inwx, ProviderError> {
        if let Some(totp) = &credentials.totp {
            totp_code(totp)?; // a secret that is not base32 is an error now, not at login
        }
        Ok(Inwx {
            http: Http::signed("inwx", credentials.password.clone(), &settings)?,
            url: url.unwrap_or(DEFAULT_URL).to_owned(),
            credentials,
            zones: Zones::new(zone_name(zone)),
            session: OnceCell::new(),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// One call, in the session when `cookie` is given.
    async fn raw_call(
        &self,
        method: &str,
        params: Value,
        cookie: Option<&Secret>,
    ) -> Result<(Answer, Reply), ProviderError> {
        let body = json!({ "method": method, "params": params }).to_string();
        let headers = || -> Result<Vec<(HeaderName, HeaderValue)>, ProviderError> {
            let mut headers = vec![(
                HeaderName::from_static("accept"),
                HeaderValue::from_static("application/json"),
            )];
            if let Some(cookie) = cookie {
                let mut value = HeaderValue::from_str(cookie.expose()).map_err(|_| {
                    ProviderError::Key("inwx: the session cookie is not a header value".into())
                })?;
                value.set_sensitive(true);
                headers.push((HeaderName::from_static("cookie"), value));
            }
            Ok(headers)
        };
        let reply = self
            .http
            .send_signed(
                Method::POST,
                &self.url,
                body.as_bytes(),
                "application/json",
                |_, _, _| headers(),
            )
            .await?;
        let reply = self.http.check(reply, method)?;
        let value = reply.json()?;
        let Some(code) = value.get("code").and_then(Value::as_i64) else {
            return Err(reply.bad("the answer has no \"code\""));
        };
        let msg = value
            .get("msg")
            .and_then(Value::as_str)
            .map(|m| self.scrub(m))
            .unwrap_or_default();
        let data = value.get("resData").cloned().unwrap_or(Value::Null);
        Ok((Answer { code, msg, data }, reply))
    }

    fn scrub(&self, text: &str) -> String {
        let text = self.credentials.password.scrub(text);
        match &self.credentials.totp {
            Some(t) => t.scrub(&text),
            None => text,
        }
    }

    /// The session, logged in (and unlocked with a TOTP code) once.
    async fn session(&self) -> Result<&Secret, ProviderError> {
        self.session
            .get_or_try_init(|| async {
                let c = &self.credentials;
                let params = json!({"user": c.user, "pass": c.password.expose(), "lang": "en"});
                let (answer, reply) = self.raw_call("account.login", params, None).await?;
                if answer.code == AUTHENTICATION {
                    return Err(unauthorized());
                }
                check(&answer, "account.login")?;
                let cookie = Secret::new(
                    reply
                        .cookie
                        .clone()
                        .ok_or_else(|| reply.bad("the login set no session cookie"))?,
                );
                let tfa = answer
                    .data
                    .get("tfa")
                    .and_then(Value::as_str)
                    .unwrap_or("0");
                if tfa != "0" {
                    let Some(secret) = &c.totp else {
                        return Err(ProviderError::Unauthorized {
                            provider: "inwx",
                            what: "two-factor authentication: the account has it, so set \
                                   totp-secret-file or totp-secret-env to its TOTP secret",
                        });
                    };
                    let tan = totp_code(secret)?;
                    let (answer, _) = self
                        .raw_call("account.unlock", json!({ "tan": tan }), Some(&cookie))
                        .await?;
                    if answer.code != 1000 {
                        return Err(ProviderError::Unauthorized {
                            provider: "inwx",
                            what: "the TOTP secret (totp-secret-file / totp-secret-env): INWX \
                                   refused its code; check this machine's clock too",
                        });
                    }
                }
                Ok(cookie)
            })
            .await
    }

    async fn call(&self, method: &str, params: Value) -> Result<Answer, ProviderError> {
        let session = self.session().await?;
        let (answer, _) = self.raw_call(method, params, Some(session)).await?;
        if answer.code == AUTHORIZATION {
            return Err(ProviderError::Forbidden {
                provider: "inwx",
                detail: format!(
                    "{} ({method}: the account, or the sub-account's role, needs the right to \
                     manage the domain's nameserver records)",
                    answer.msg
                ),
            });
        }
        Ok(answer)
    }

    /// The zone holding `owner`.
    async fn locate(&self, owner: &str) -> Result<String, ProviderError> {
        self.zones.get(owner, || self.look_up(owner)).await
    }

    /// `nameserver.info` (SOA) for the owner's ancestors, longest first.
    async fn look_up(&self, owner: &str) -> Result<String, ProviderError> {
        longest_known(
            owner,
            "inwx API",
            "no nameserver zone of this account holds the name; set the service's `zone`",
            |name| async move {
                let answer = self
                    .call("nameserver.info", json!({"domain": name, "type": "SOA"}))
                    .await?;
                if answer.code == NO_OBJECT {
                    return Ok(None);
                }
                check(&answer, "nameserver.info")?;
                Ok(Some(name))
            },
        )
        .await
    }

    /// The TLSA records at `owner` with their ids.
    async fn list_ids(&self, owner: &str) -> Result<(String, Vec<(i64, Record)>), ProviderError> {
        let zone = self.locate(owner).await?;
        let name = owner.trim_end_matches('.');
        let answer = self
            .call(
                "nameserver.info",
                json!({"domain": zone, "name": name, "type": "TLSA"}),
            )
            .await?;
        check(&answer, "nameserver.info")?;
        let bad = |detail: &str| ProviderError::BadReply {
            server: "inwx API".into(),
            detail: detail.to_owned(),
        };
        if !answer.data.is_object() {
            return Err(bad("nameserver.info has no resData"));
        }
        // INWX leaves `record` out when the name has none; a reply that is not about the zone
        // asked for is not read as "none".
        let Some(records) = answer.data.get("record") else {
            let about = answer.data.get("domain").and_then(Value::as_str);
            return match about {
                Some(d) if same_name(d, &zone) => Ok((zone, Vec::new())),
                _ => Err(bad("nameserver.info has neither \"record\" nor \"domain\"")),
            };
        };
        let Some(records) = records.as_array() else {
            return Err(bad("\"record\" is not a list"));
        };
        let mut out = Vec::new();
        for item in records {
            if item.get("type").and_then(Value::as_str) != Some("TLSA")
                || !item
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| same_name(n, owner))
            {
                continue;
            }
            let (Some(id), Some(content)) = (
                item.get("id").and_then(|v| {
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                }),
                item.get("content").and_then(Value::as_str),
            ) else {
                return Err(bad("a record has no id or content"));
            };
            let ttl = ttl_field(item, "ttl").unwrap_or_default();
            if let Ok(record) = Record::new(owner, ttl, content) {
                out.push((id, record));
            }
        }
        Ok((zone, out))
    }

    /// The TLSA records at `owner`.
    pub async fn list(&self, owner: &str) -> Result<Vec<Record>, ProviderError> {
        Ok(records_only(self.list_ids(owner).await?))
    }

    /// Create one record.
    pub async fn add(&self, record: &Record) -> Result<(), ProviderError> {
        if record.ttl < MIN_TTL {
            return Err(ProviderError::Ttl {
                provider: "inwx",
                ttl: record.ttl,
                detail: format!(
                    "INWX accepts {MIN_TTL} s or more: set the service's `ttl` to {MIN_TTL} or more"
                ),
            });
        }
        let zone = self.locate(&record.owner).await?;
        let answer = self
            .call(
                "nameserver.createRecord",
                json!({
                    "domain": zone,
                    "name": record.owner.trim_end_matches('.'),
                    "type": "TLSA",
                    "content": record.rdata,
                    "ttl": record.ttl,
                }),
            )
            .await?;
        if answer.code == OBJECT_EXISTS {
            return Ok(()); // created by an earlier try whose answer was lost
        }
        check(&answer, "nameserver.createRecord")
    }

    /// Delete the record(s) with this data at the owner name, by id.
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        let (_, existing) = self.list_ids(&record.owner).await?;
        for (id, existing) in existing {
            if !existing.same(record) {
                continue;
            }
            let answer = self
                .call("nameserver.deleteRecord", json!({ "id": id }))
                .await?;
            if answer.code == NO_OBJECT {
                continue; // gone already
            }
            check(&answer, "nameserver.deleteRecord")?;
        }
        Ok(())
    }
}

/// The current TOTP code (SHA-1, 6 digits, 30 s: what INWX's two-factor authentication uses).
fn totp_code(secret: &Secret) -> Result<String, ProviderError> {
    let bad = || {
        ProviderError::Key(
            "inwx: the TOTP secret is not base32 (the text INWX shows when two-factor \
             authentication is set up)"
                .into(),
        )
    };
    let compact: String = secret
        .expose()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .collect::<String>()
        .to_ascii_uppercase();
    let bytes = totp_rs::Secret::Encoded(compact)
        .to_bytes()
        .map_err(|_| bad())?;
    if bytes.is_empty() {
        return Err(bad());
    }
    // new_unchecked: INWX's secrets are 80 bits, below the 128 that `TOTP::new` insists on.
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .generate_current()
        .map_err(|_| ProviderError::Key("inwx: this machine's clock is before 1970".into()))
}

fn unauthorized() -> ProviderError {
    ProviderError::Unauthorized {
        provider: "inwx",
        what: "the user name and password (user, password-file / password-env)",
    }
}

/// Success (1000–1500) or an error with INWX's message.
fn check(answer: &Answer, method: &str) -> Result<(), ProviderError> {
    if (1000..2000).contains(&answer.code) {
        return Ok(());
    }
    if answer.code == AUTHENTICATION {
        return Err(unauthorized());
    }
    Err(ProviderError::Rejected {
        provider: "inwx",
        status: 200,
        detail: format!("{method}: code {}: {}", answer.code, answer.msg),
    })
}
