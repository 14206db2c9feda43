//! Amazon Route 53 (REST API `2013-04-01`, XML), signed with AWS Signature Version 4 by the
//! maintained `aws-sigv4` crate (no hand-written crypto).
//!
//! Documented at <https://docs.aws.amazon.com/Route53/latest/APIReference/>:
//! `GET /2013-04-01/hostedzonesbyname?dnsname=…` (ListHostedZonesByName) finds the public hosted
//! zone, `GET /2013-04-01/hostedzone/{Id}/rrset?name=…&type=TLSA` (ListResourceRecordSets,
//! following `IsTruncated`/`NextRecordName` while the next set is still ours) lists, and
//! `POST /2013-04-01/hostedzone/{Id}/rrset/` (ChangeResourceRecordSets) writes.
//!
//! Route 53 changes whole RRsets only, so an add or remove is a read-modify-write guarded by
//! Route 53 itself: one change batch `DELETE`s the RRset exactly as read (TTL and every value)
//! and `CREATE`s the new one; a batch is applied all or nothing, and a `DELETE` that does not
//! match the current RRset fails (`InvalidChangeBatch`). So a concurrent writer's change makes
//! our batch fail instead of being lost; we read again and build a new batch (a few times). A
//! new RRset is a lone `CREATE` (which fails if one appeared meanwhile), the last record's
//! removal a lone `DELETE`. An existing RRset keeps its TTL. `Throttling` and
//! `PriorRequestNotComplete` (HTTP 400) are retried like 429. An RRset with a routing policy
//! (`SetIdentifier`) is refused: which of them to change is not ours to guess.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};

use crate::http::{Attempt, Http, Reply, Transient, base_url, encode};
use crate::rrset::{RrSet, changed, records};
use crate::zones::Zones;
use crate::{ProviderError, Record, Secret, Settings, ancestors, same_name};

/// The API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://route53.amazonaws.com/2013-04-01";
/// The region Route 53 requests are signed for (it is a global service).
pub const SIGNING_REGION: &str = "us-east-1";
/// The service name in the signature.
pub const SIGNING_SERVICE: &str = "route53";
/// The longest TTL Route 53 takes.
pub const MAX_TTL: u32 = 2_147_483_647;
/// Change batches rebuilt after a concurrent change before giving up.
const MAX_CONFLICTS: u32 = 3;
/// Pages read at most.
const MAX_PAGES: u32 = 100;
/// The XML namespace of requests.
const XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";
/// What an IAM policy must allow.
const RIGHTS: &str = "the IAM policy needs route53:ListHostedZonesByName, \
                      route53:ListResourceRecordSets and route53:ChangeResourceRecordSets \
                      (the last two on the hosted zone)";

/// A hosted zone: its bare id (`Z…`).
#[derive(Debug, Clone)]
struct Zone {
    id: String,
}

/// An AWS account's Route 53 hosted zones.
#[derive(Debug)]
pub struct Route53 {
    http: Http,
    base: String,
    key_id: String,
    secret: Secret,
    zones: Zones<Zone>,
    settings: Settings,
}

impl Route53 {
    /// A client with the access key `key_id` and its `secret`, for hosted zone `zone_id`
    /// (found by name when `None`), at `base` ([`DEFAULT_BASE_URL`] unless testing).
    pub fn new(
        key_id: &str,
        secret: Secret,
        zone_id: Option<&str>,
        base: Option<&str>,
        settings: Settings,
    ) -> Result<Route53, ProviderError> {
        Ok(Route53 {
            http: Http::signed("route53", secret.clone(), &settings)?,
            base: base_url(base, DEFAULT_BASE_URL),
            key_id: key_id.trim().to_owned(),
            secret,
            zones: Zones::new(zone_id.map(|z| Zone {
                id: z.trim().trim_start_matches("/hostedzone/").to_owned(),
            })),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The SigV4 headers (`x-amz-date`, `authorization`) for one request.
    fn sign(
        &self,
        method: &Method,
        url: &str,
        body: &[u8],
    ) -> Result<Vec<(HeaderName, HeaderValue)>, ProviderError> {
        let failed = |e: &dyn std::fmt::Display| {
            ProviderError::Key(
                self.secret
                    .scrub(&format!("route53: the request cannot be signed: {e}")),
            )
        };
        let identity: Identity = Credentials::new(
            self.key_id.clone(),
            self.secret.expose(),
            None,
            None,
            "dane-roll",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(SIGNING_REGION)
            .name(SIGNING_SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url,
            std::iter::empty(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| failed(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(&e))?
            .into_parts();
        instructions
            .headers()
            .map(|(name, value)| {
                Ok((
                    HeaderName::from_bytes(name.as_bytes()).map_err(|e| failed(&e))?,
                    HeaderValue::from_str(value).map_err(|e| failed(&e))?,
                ))
            })
            .collect()
    }

    async fn get(&self, url: &str) -> Result<Reply, ProviderError> {
        self.http
            .send_signed(Method::GET, url, b"", "text/xml", |m, u, b| {
                self.sign(m, u, b)
            })
            .await
    }

    /// A non-2xx reply as an error, by Route 53's error code.
    fn fail(&self, reply: Reply, what: &str) -> ProviderError {
        let (code, message) = aws_error(&reply.body);
        let detail = self.http.detail(format!("{code}: {message}").as_bytes());
        match code.as_str() {
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "UnrecognizedClientException" => ProviderError::Unauthorized {
                provider: "route53",
                what: "the access key (access-key-id and secret-key-file / secret-key-env)",
            },
            "AccessDenied" | "AccessDeniedException" => ProviderError::Forbidden {
                provider: "route53",
                detail: format!("{detail} ({RIGHTS})"),
            },
            "NoSuchHostedZone" => ProviderError::NoZone {
                server: "route53 API".into(),
                zone: what.to_owned(),
                detail: format!("{detail}: check `hosted-zone-id`"),
            },
            _ => match self.http.check(reply, what) {
                Err(e) => e,
                Ok(reply) => reply.bad("an error without an error status"),
            },
        }
    }

    /// The hosted zone holding `owner`, found once per owner name.
    async fn zone(&self, owner: &str) -> Result<Zone, ProviderError> {
        self.zones.get(owner, || self.look_up(owner)).await
    }

    /// ListHostedZonesByName from each ancestor of the owner, longest first: the first public
    /// zone of exactly that name.
    async fn look_up(&self, owner: &str) -> Result<Zone, ProviderError> {
        for candidate in ancestors(owner) {
            let url = format!(
                "{}/hostedzonesbyname?dnsname={}&maxitems=10",
                self.base,
                encode(&candidate)
            );
            let reply = self.get(&url).await?;
            if !reply.ok() {
                return Err(self.fail(reply, "hosted zones"));
            }
            let text = xml_text(&reply)?;
            let doc = parse(&reply, &text)?;
            let Some(zones) = child(doc.root_element(), "HostedZones") else {
                return Err(reply.bad("the answer has no HostedZones"));
            };
            let found = zones
                .children()
                .filter(|n| n.tag_name().name() == "HostedZone")
                .filter(|z| {
                    child(*z, "Config")
                        .and_then(|c| text_of(c, "PrivateZone"))
                        .is_none_or(|p| p != "true")
                })
                .find_map(|z| {
                    let name = text_of(z, "Name")?;
                    let id = text_of(z, "Id")?;
                    same_name(name, &candidate).then(|| Zone {
                        id: id.trim_start_matches("/hostedzone/").to_owned(),
                    })
                });
            if let Some(zone) = found {
                return Ok(zone);
            }
        }
        Err(ProviderError::NoZone {
            server: "route53 API".into(),
            zone: owner.to_owned(),
            detail: "no public hosted zone of this account holds the name; set `hosted-zone-id`"
                .into(),
        })
    }

    /// The owner's TLSA RRset, `None` when there is none.
    async fn rrset(&self, zone: &Zone, owner: &str) -> Result<Option<RrSet>, ProviderError> {
        let mut found: Option<RrSet> = None;
        let mut start = owner.to_owned();
        for _ in 0..MAX_PAGES {
            let url = format!(
                "{}/hostedzone/{}/rrset?name={}&type=TLSA&maxitems=100",
                self.base,
                encode(&zone.id),
                encode(&start)
            );
            let reply = self.get(&url).await?;
            if !reply.ok() {
                return Err(self.fail(reply, &format!("hosted zone {}", zone.id)));
            }
            let text = xml_text(&reply)?;
            let doc = parse(&reply, &text)?;
            let root = doc.root_element();
            let Some(sets) = child(root, "ResourceRecordSets") else {
                return Err(reply.bad("the listing has no ResourceRecordSets"));
            };
            for set in sets
                .children()
                .filter(|n| n.tag_name().name() == "ResourceRecordSet")
            {
                let ours = text_of(set, "Name")
                    .is_some_and(|n| same_name(&unescape_name(n), owner))
                    && text_of(set, "Type") == Some("TLSA");
                if !ours {
                    // Sorted by name and type: past ours, nothing more of ours follows.
                    return Ok(found);
                }
                if child(set, "SetIdentifier").is_some() || child(set, "AliasTarget").is_some() {
                    return Err(ProviderError::Unsupported {
                        provider: "route53",
                        action: "change this TLSA RRset",
                        why: "it has a routing policy (SetIdentifier) or is an alias: publish \
                              through a simple RRset, or with the `manual` provider",
                    });
                }
                let ttl = text_of(set, "TTL")
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| reply.bad("an RRset has no TTL"))?;
                let Some(records) = child(set, "ResourceRecords") else {
                    return Err(reply.bad("an RRset has no ResourceRecords"));
                };
                let values = records
                    .children()
                    .filter(|n| n.tag_name().name() == "ResourceRecord")
                    .filter_map(|r| text_of(r, "Value").map(str::to_owned))
                    .collect();
                found = Some(RrSet { ttl, values });
            }
            let truncated = text_of(root, "IsTruncated") == Some("true");
            let next_name = text_of(root, "NextRecordName").map(unescape_name);
            match next_name {
                Some(next)
                    if truncated
                        && same_name(&next, owner)
                        && text_of(root, "NextRecordType") == Some("TLSA") =>
                {
                    start = next;
                }
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
        if record.ttl > MAX_TTL {
            return Err(ProviderError::Ttl {
                provider: "route53",
                ttl: record.ttl,
                detail: format!("Route 53 accepts 0 to {MAX_TTL}: set the service's `ttl` lower"),
            });
        }
        self.change(record, true).await
    }

    /// Remove one record from the RRset (the RRset deleted when it was the last).
    pub async fn remove(&self, record: &Record) -> Result<(), ProviderError> {
        self.change(record, false).await
    }

    async fn change(&self, record: &Record, add: bool) -> Result<(), ProviderError> {
        let zone = self.zone(&record.owner).await?;
        let url = format!("{}/hostedzone/{}/rrset/", self.base, encode(&zone.id));
        let mut backoff = self.http.backoff();
        let mut conflicts = 0;
        loop {
            // Read before every try: the DELETE half of the batch must be what is there now.
            let current = self.rrset(&zone, &record.owner).await?;
            let Some(next) = changed(current.as_ref(), record, add) else {
                return Ok(());
            };
            let body = change_batch(&record.owner, current.as_ref(), &next);
            let headers = self.sign(&Method::POST, &url, body.as_bytes())?;
            let attempt = self
                .http
                .once_signed(Method::POST, &url, body.as_bytes(), "text/xml", headers)
                .await?;
            let reply = match attempt {
                Attempt::Transient(t) => {
                    backoff.wait(t).await?;
                    continue;
                }
                Attempt::Done(reply) if reply.ok() => return Ok(()),
                Attempt::Done(reply) => reply,
            };
            let (code, message) = aws_error(&reply.body);
            match code.as_str() {
                "Throttling" | "PriorRequestNotComplete" => {
                    let detail = self.http.detail(format!("{code}: {message}").as_bytes());
                    backoff
                        .wait(Transient::new(reply.status, None, detail))
                        .await?;
                }
                "InvalidChangeBatch" if conflicts < MAX_CONFLICTS => {
                    // The RRset changed since it was read (or the batch is wrong): read again.
                    conflicts += 1;
                }
                _ => return Err(self.fail(reply, &format!("hosted zone {}", zone.id))),
            }
        }
    }
}

/// The ChangeResourceRecordSets body: DELETE of the RRset as read, CREATE of the new one.
fn change_batch(owner: &str, current: Option<&RrSet>, next: &RrSet) -> String {
    let set = |action: &str, s: &RrSet| {
        let records: String = s
            .values
            .iter()
            .map(|v| {
                format!(
                    "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                    escape(v)
                )
            })
            .collect();
        format!(
            "<Change><Action>{action}</Action><ResourceRecordSet><Name>{}</Name><Type>TLSA</Type>\
             <TTL>{}</TTL><ResourceRecords>{records}</ResourceRecords></ResourceRecordSet></Change>",
            escape(owner),
            s.ttl
        )
    };
    let mut changes = String::new();
    if let Some(current) = current {
        changes.push_str(&set("DELETE", current));
    }
    if !next.values.is_empty() {
        changes.push_str(&set("CREATE", next));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ChangeResourceRecordSetsRequest xmlns=\"{XMLNS}\">\
         <ChangeBatch><Comment>dane-roll</Comment><Changes>{changes}</Changes></ChangeBatch>\
         </ChangeResourceRecordSetsRequest>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Route 53 lists names with some characters as `\NNN` octal escapes (`*` as `\052`).
fn unescape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match code {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn xml_text(reply: &Reply) -> Result<String, ProviderError> {
    if reply.body.is_empty() {
        return Err(reply.bad("the body is empty"));
    }
    String::from_utf8(reply.body.clone()).map_err(|_| reply.bad("the body is not UTF-8"))
}

fn parse<'a>(reply: &Reply, text: &'a str) -> Result<roxmltree::Document<'a>, ProviderError> {
    roxmltree::Document::parse(text).map_err(|e| reply.bad(&format!("the body is not XML: {e}")))
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.tag_name().name() == name)
}

fn text_of<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|n| n.text()).map(str::trim)
}

/// The `Code` and `Message` of an error answer (`<ErrorResponse><Error>…`), empty when absent.
fn aws_error(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let Ok(doc) = roxmltree::Document::parse(&text) else {
        return (String::new(), String::new());
    };
    let field = |name: &str| {
        doc.descendants()
            .find(|n| n.tag_name().name() == name)
            .and_then(|n| n.text())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    (field("Code"), field("Message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_batches() {
        assert_eq!(unescape_name("\\052.example.com."), "*.example.com.");
        assert_eq!(unescape_name("a\\b"), "a\\b");
        let body = change_batch(
            "_25._tcp.mail.example.com.",
            Some(&RrSet {
                ttl: 3600,
                values: vec!["3 1 1 0f".into()],
            }),
            &RrSet {
                ttl: 3600,
                values: vec!["3 1 1 0f".into(), "3 1 1 ab".into()],
            },
        );
        let delete = body.find("<Action>DELETE</Action>").unwrap();
        let create = body.find("<Action>CREATE</Action>").unwrap();
        assert!(delete < create, "{body}");
    }
}
