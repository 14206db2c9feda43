//! The `route53` provider against a fake of the Route 53 API
//! (<https://docs.aws.amazon.com/Route53/latest/APIReference/>): the fake recomputes each
//! request's AWS Signature Version 4 itself (HMAC-SHA256 here, independently of the signing
//! crate), answers XML as Route 53 does, and applies a change batch all or nothing, refusing a
//! DELETE that does not match the current RRset exactly, as Route 53 does.

mod http_fake;

use std::sync::{Arc, Mutex};

use dane_roll_providers::{Change, Provider, ProviderError, Secret, route53};
use hmac::{Hmac, Mac};
use http_fake::*;
use sha2::{Digest, Sha256};

const KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const READ_ONLY_ID: &str = "AKIAREADONLYEXAMPLE0";
const ZONE: &str = "Z0123456789ABCDEFGHIJ";

#[derive(Default)]
struct State {
    /// TTL and values of the TLSA RRset at the owner.
    rrset: Option<(u32, Vec<String>)>,
    /// A writer that adds its record just before our next change batch is applied.
    racing_writer: Option<String>,
    /// The next change batch is answered 400 Throttling first.
    throttle_once: bool,
    /// Listings split in two pages (the first empty, pointing at the owner).
    split_pages: bool,
    lists: usize,
    faults: Vec<Answer>,
}

fn xml(status: u16, body: String) -> Answer {
    Answer {
        status,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: Body::Raw(body.clone().into_bytes(), body.len()),
    }
}

fn aws_error(status: u16, code: &str, message: &str) -> Answer {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        ),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Recompute the request's SigV4 signature (service route53, region us-east-1) with `secret`:
/// `Ok(key id)` when it matches, else the Route 53 error code.
fn verify(req: &Request, secret: &str) -> Result<String, &'static str> {
    let auth = req
        .headers
        .get("authorization")
        .ok_or("MissingAuthenticationToken")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("IncompleteSignature")?;
    let mut credential = "";
    let mut signed = "";
    let mut signature = "";
    for part in rest.split(", ") {
        match part.split_once('=') {
            Some(("Credential", v)) => credential = v,
            Some(("SignedHeaders", v)) => signed = v,
            Some(("Signature", v)) => signature = v,
            _ => return Err("IncompleteSignature"),
        }
    }
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope[..] else {
        return Err("IncompleteSignature");
    };
    assert_eq!((region, service), ("us-east-1", "route53"), "{auth}");
    let names: Vec<&str> = signed.split(';').collect();
    assert!(
        names.contains(&"host") && names.contains(&"x-amz-date"),
        "{signed}"
    );
    let amz_date = &req.headers["x-amz-date"];
    assert!(amz_date.starts_with(date), "{amz_date} {date}");
    let mut query: Vec<(&String, &String)> = req.query.iter().collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let headers: String = names
        .iter()
        .map(|n| format!("{n}:{}\n", req.headers[*n].trim()))
        .collect();
    let canonical = format!(
        "{}\n{}\n{}\n{headers}\n{signed}\n{}",
        req.method,
        req.path,
        query.join("&"),
        hex(&Sha256::digest(req.raw_body.as_bytes()))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/us-east-1/route53/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date);
    for part in ["us-east-1", "route53", "aws4_request"] {
        key = hmac(&key, part);
    }
    if hex(&hmac(&key, &to_sign)) == signature {
        Ok(key_id.to_owned())
    } else {
        Err("SignatureDoesNotMatch")
    }
}

fn rrset_xml(name: &str, ttl: u32, values: &[String]) -> String {
    let records: String = values
        .iter()
        .map(|v| format!("<ResourceRecord><Value>{v}</Value></ResourceRecord>"))
        .collect();
    format!(
        "<ResourceRecordSet><Name>{name}</Name><Type>TLSA</Type><TTL>{ttl}</TTL><ResourceRecords>{records}</ResourceRecords></ResourceRecordSet>"
    )
}

/// (action, ttl, values) of each change of a batch.
fn changes(body: &str) -> Vec<(String, u32, Vec<String>)> {
    let doc = roxmltree::Document::parse(body).expect("the batch is XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "ChangeResourceRecordSetsRequest");
    assert_eq!(
        root.tag_name().namespace(),
        Some("https://route53.amazonaws.com/doc/2013-04-01/")
    );
    let text = |n: roxmltree::Node, name: &str| {
        n.descendants()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .unwrap_or_default()
            .to_owned()
    };
    doc.descendants()
        .filter(|n| n.tag_name().name() == "Change")
        .map(|c| {
            assert_eq!(text(c, "Name"), OWNER);
            assert_eq!(text(c, "Type"), "TLSA");
            let values = c
                .descendants()
                .filter(|n| n.tag_name().name() == "Value")
                .map(|n| n.text().unwrap().to_owned())
                .collect();
            (text(c, "Action"), text(c, "TTL").parse().unwrap(), values)
        })
        .collect()
}

fn fake(state: Arc<Mutex<State>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        if !st.faults.is_empty() {
            return st.faults.remove(0);
        }
        let key_id = match verify(req, SECRET) {
            Ok(id) if id == KEY_ID || id == READ_ONLY_ID => id,
            Ok(_) => {
                return aws_error(
                    403,
                    "InvalidClientTokenId",
                    "The security token included in the request is invalid.",
                );
            }
            Err(code) => {
                return aws_error(
                    403,
                    code,
                    "The request signature we calculated does not match the signature you provided.",
                );
            }
        };
        let rrset_path = format!("/2013-04-01/hostedzone/{ZONE}/rrset");
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/2013-04-01/hostedzonesbyname") => {
                let name = req.query["dnsname"].clone();
                // A private zone of the same name comes first; it is not the one to change.
                let zones = if name == "example.com." {
                    "<HostedZone><Id>/hostedzone/ZPRIVATE</Id><Name>example.com.</Name><CallerReference>p</CallerReference><Config><PrivateZone>true</PrivateZone></Config></HostedZone>\
                     <HostedZone><Id>/hostedzone/Z0123456789ABCDEFGHIJ</Id><Name>example.com.</Name><CallerReference>c</CallerReference><Config><PrivateZone>false</PrivateZone></Config><ResourceRecordSetCount>4</ResourceRecordSetCount></HostedZone>"
                        .to_owned()
                } else {
                    "<HostedZone><Id>/hostedzone/ZOTHER</Id><Name>zzz.example.net.</Name><CallerReference>o</CallerReference><Config><PrivateZone>false</PrivateZone></Config></HostedZone>".to_owned()
                };
                xml(
                    200,
                    format!(
                        "<?xml version=\"1.0\"?>\n<ListHostedZonesByNameResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><HostedZones>{zones}</HostedZones><DNSName>{name}</DNSName><IsTruncated>false</IsTruncated><MaxItems>10</MaxItems></ListHostedZonesByNameResponse>"
                    ),
                )
            }
            ("GET", p) if p == rrset_path => {
                assert_eq!(req.query["name"], OWNER);
                assert_eq!(req.query["type"], "TLSA");
                st.lists += 1;
                let head = "<?xml version=\"1.0\"?>\n<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">";
                if st.split_pages && st.lists % 2 == 1 {
                    return xml(
                        200,
                        format!(
                            "{head}<ResourceRecordSets></ResourceRecordSets><IsTruncated>true</IsTruncated><NextRecordName>{OWNER}</NextRecordName><NextRecordType>TLSA</NextRecordType><MaxItems>100</MaxItems></ListResourceRecordSetsResponse>"
                        ),
                    );
                }
                let mut sets = String::new();
                if let Some((ttl, values)) = &st.rrset {
                    sets.push_str(&rrset_xml(OWNER, *ttl, values));
                }
                // The next name's RRset follows: not ours.
                sets.push_str(&rrset_xml(
                    "_25._tcp.mail2.example.com.",
                    300,
                    &[tlsa("99")],
                ));
                xml(
                    200,
                    format!(
                        "{head}<ResourceRecordSets>{sets}</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems></ListResourceRecordSetsResponse>"
                    ),
                )
            }
            ("POST", p) if p == format!("{rrset_path}/") => {
                if key_id == READ_ONLY_ID {
                    return aws_error(
                        403,
                        "AccessDenied",
                        "User: arn:aws:iam::123456789012:user/ro is not authorized to perform: route53:ChangeResourceRecordSets",
                    );
                }
                assert_eq!(
                    req.headers.get("content-type").map(String::as_str),
                    Some("text/xml")
                );
                if std::mem::take(&mut st.throttle_once) {
                    return aws_error(400, "Throttling", "Rate exceeded");
                }
                if let Some(theirs) = st.racing_writer.take() {
                    st.rrset.as_mut().unwrap().1.push(theirs);
                }
                let mut next = st.rrset.clone();
                for (action, ttl, values) in changes(&req.raw_body) {
                    match action.as_str() {
                        "DELETE" => {
                            if next != Some((ttl, values)) {
                                return aws_error(
                                    400,
                                    "InvalidChangeBatch",
                                    "[Tried to delete resource record set [name='_25._tcp.mail.example.com.', type='TLSA'] but the values provided do not match the current values]",
                                );
                            }
                            next = None;
                        }
                        "CREATE" => {
                            if next.is_some() {
                                return aws_error(
                                    400,
                                    "InvalidChangeBatch",
                                    "[Tried to create resource record set but it already exists]",
                                );
                            }
                            next = Some((ttl, values));
                        }
                        other => panic!("unexpected action {other}"),
                    }
                }
                st.rrset = next;
                xml(200, "<?xml version=\"1.0\"?>\n<ChangeResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo><Id>/change/C1</Id><Status>PENDING</Status><SubmittedAt>2026-12-07T00:00:00Z</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>".into())
            }
            _ => aws_error(404, "NoSuchHostedZone", "No hosted zone found"),
        }
    })
}

fn provider(fake: &Fake, key_id: &str, secret: &str, zone: Option<&str>) -> Provider {
    Provider::Route53(
        route53::Route53::new(
            key_id,
            Secret::new(secret),
            zone,
            Some(&fake.url("/2013-04-01")),
            quick(),
        )
        .unwrap(),
    )
}

fn state(values: &[String], ttl: u32) -> Arc<Mutex<State>> {
    Arc::new(Mutex::new(State {
        rrset: Some((ttl, values.to_vec())),
        ..State::default()
    }))
}

fn values(st: &Arc<Mutex<State>>) -> Vec<String> {
    st.lock()
        .unwrap()
        .rrset
        .clone()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

#[test]
fn route53_adds_and_removes_one_record_with_signed_batches() {
    rt().block_on(async {
        let other = tlsa("0f");
        let st = state(std::slice::from_ref(&other), 3600);
        st.lock().unwrap().split_pages = true;
        let fake = Fake::start(fake(st.clone())).await;
        let p = provider(&fake, KEY_ID, SECRET, None);
        let ours = rec(OWNER, 300, &tlsa("ab"));

        assert_eq!(
            p.list(OWNER).await.unwrap().len(),
            1,
            "the second page read, the next name's RRset not"
        );
        let report = p.publish(&ours).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(
            report.ttl.as_ref().map(|n| n.served),
            Some(3600),
            "the RRset keeps its TTL"
        );
        assert_eq!(values(&st), [other.clone(), tlsa("ab")]);
        let batch = changes(&fake.writes()[0].raw_body);
        assert_eq!(
            batch[0],
            ("DELETE".into(), 3600, vec![other.clone()]),
            "the RRset as read"
        );
        assert_eq!(batch[1].0, "CREATE");
        assert_eq!(p.add(&ours).await.unwrap(), Change::AlreadyPresent);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(values(&st), [other], "only our record went");
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("hostedzonesbyname"))
            .count();
        assert_eq!(
            lookups, 4,
            "the zone is looked up once, walking up from the owner"
        );
        assert!(!format!("{p:?}").contains(SECRET));

        // The last record: a lone DELETE; then a lone CREATE with our TTL.
        st.lock().unwrap().rrset = Some((600, vec![tlsa("ab")]));
        assert_eq!(p.remove(&ours).await.unwrap(), Change::Removed);
        assert!(st.lock().unwrap().rrset.is_none());
        assert_eq!(p.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(st.lock().unwrap().rrset.as_ref().unwrap().0, 300);
    });
}

#[test]
fn route53_concurrent_change_fails_the_batch_and_is_kept() {
    rt().block_on(async {
        let other = tlsa("0f");
        let theirs = tlsa("77");
        let st = state(std::slice::from_ref(&other), 3600);
        st.lock().unwrap().racing_writer = Some(theirs.clone());
        st.lock().unwrap().throttle_once = true;
        let fake = Fake::start(fake(st.clone())).await;
        let p = provider(&fake, KEY_ID, SECRET, Some(ZONE));
        let report = p.publish(&rec(OWNER, 3600, &tlsa("ab"))).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(
            values(&st),
            [other, theirs, tlsa("ab")],
            "the racing writer's record kept"
        );
        assert_eq!(
            fake.writes().len(),
            3,
            "throttled, refused (changed meanwhile), applied"
        );
    });
}

#[test]
fn route53_errors_are_clear() {
    rt().block_on(async {
        let st = state(&[tlsa("0f")], 3600);
        let fake = Fake::start(fake(st.clone())).await;
        let ours = rec(OWNER, 3600, &tlsa("ab"));

        let err = provider(&fake, KEY_ID, "wrong-secret-key-xyz", Some(ZONE))
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("wrong-secret-key-xyz"));
        let err = provider(&fake, "AKIAUNKNOWN000000000", SECRET, Some(ZONE))
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");

        let err = provider(&fake, READ_ONLY_ID, SECRET, Some(ZONE))
            .add(&ours)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Forbidden { .. }), "{err}");
        assert!(
            err.to_string().contains("route53:ChangeResourceRecordSets"),
            "{err}"
        );

        let err = provider(&fake, KEY_ID, SECRET, Some("ZNOSUCHZONE"))
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");
        let err = provider(&fake, KEY_ID, SECRET, None)
            .list("_25._tcp.mail.example.org.")
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");

        let p = provider(&fake, KEY_ID, SECRET, Some(ZONE));
        for _ in 0..10 {
            st.lock()
                .unwrap()
                .faults
                .push(aws_error(503, "ServiceUnavailable", "down"));
        }
        let err = p.list(OWNER).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::RetriesExhausted { status: 503, .. }),
            "{err}"
        );
        st.lock().unwrap().faults.clear();

        // Unreadable listings: errors, nothing written.
        for broken in [
            "",
            "<ListResourceRecordSetsResponse>",
            "<ListResourceRecordSetsResponse/>",
        ] {
            st.lock().unwrap().faults.push(xml(200, broken.to_owned()));
            let before = fake.writes().len();
            let err = p.remove(&rec(OWNER, 3600, &tlsa("0f"))).await.unwrap_err();
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{broken:?}: {err}"
            );
            assert_eq!(fake.writes().len(), before);
        }
        assert_eq!(values(&st), [tlsa("0f")]);
    });
}
