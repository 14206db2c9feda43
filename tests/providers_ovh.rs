//! The `ovh` provider against a fake of OVHcloud's API (`/1.0/domain/zone/…`): the fake
//! recomputes each request's `X-Ovh-Signature` ("$1$" + SHA-1 of
//! secret+consumer+METHOD+URL+body+timestamp) with its own SHA-1, checks the timestamp against
//! its own clock (one hour ahead of ours: the client must use `/auth/time`), keeps each record
//! as its own object, and serves a change only after `POST …/refresh`.

mod http_fake;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use dane_roll_providers::ovh::{self, Credentials};
use dane_roll_providers::{Change, Provider, ProviderError, Secret};
use http_fake::*;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

const APP_KEY: &str = "7kbG7Bk7S9Nt7ZSV";
const APP_SECRET: &str = "EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF";
const CONSUMER: &str = "MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1";
const NO_RIGHTS: &str = "ConsumerKeyWithoutDomainRights00";
/// The fake's clock runs this far ahead of ours.
const SKEW: i64 = 3600;

#[derive(Default)]
struct State {
    records: BTreeMap<u64, Value>,
    next_id: u64,
    refreshes: usize,
    faults: Vec<Answer>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn ovh_error(status: u16, code: &str, message: &str) -> Answer {
    json_answer(
        status,
        json!({"errorCode": code, "httpCode": format!("{status}"), "message": message}),
    )
}

fn check_signature(req: &Request, base: &str) -> Result<(), Answer> {
    let h = |k: &str| req.headers.get(k).cloned().unwrap_or_default();
    if h("x-ovh-application") != APP_KEY {
        return Err(ovh_error(403, "INVALID_KEY", "Invalid application key"));
    }
    let consumer = h("x-ovh-consumer");
    if consumer != CONSUMER && consumer != NO_RIGHTS {
        return Err(ovh_error(
            403,
            "INVALID_CREDENTIAL",
            "This credential does not exist",
        ));
    }
    let timestamp = h("x-ovh-timestamp");
    let t: i64 = timestamp
        .parse()
        .map_err(|_| ovh_error(400, "INVALID_SIGNATURE", "Invalid timestamp"))?;
    assert!(
        (t - (now() + SKEW)).abs() <= 5,
        "the timestamp is OVH's time: {t}"
    );
    let url = format!("{base}{}", req.target);
    let digest = Sha1::digest(format!(
        "{APP_SECRET}+{consumer}+{}+{url}+{}+{timestamp}",
        req.method, req.raw_body
    ));
    let expected: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if h("x-ovh-signature") != format!("$1${expected}") {
        return Err(ovh_error(400, "INVALID_SIGNATURE", "Invalid signature"));
    }
    Ok(())
}

fn fake(state: Arc<Mutex<State>>, base: Arc<Mutex<String>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        if !st.faults.is_empty() {
            return st.faults.remove(0);
        }
        if req.path == "/1.0/auth/time" {
            assert!(
                !req.headers.contains_key("x-ovh-signature"),
                "auth/time is not signed"
            );
            return json_answer(200, json!(now() + SKEW));
        }
        if let Err(answer) = check_signature(req, &base.lock().unwrap()) {
            return answer;
        }
        let writes = matches!(req.method.as_str(), "POST" | "DELETE");
        if writes && req.headers["x-ovh-consumer"] == NO_RIGHTS {
            return ovh_error(403, "NOT_GRANTED_CALL", "This call has not been granted");
        }
        let zone = "/1.0/domain/zone/example.com";
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", p) if p == zone => json_answer(
                200,
                json!({"name": "example.com", "dnssecSupported": true, "hasDnsAnycast": false}),
            ),
            ("GET", p) if p.starts_with("/1.0/domain/zone/") && !p.contains("/record") => {
                ovh_error(404, "", "This service does not exist")
            }
            ("GET", p) if p == format!("{zone}/record") => {
                assert_eq!(req.query.get("fieldType").map(String::as_str), Some("TLSA"));
                let sub = req.query["subDomain"].clone();
                let ids: Vec<u64> = st
                    .records
                    .iter()
                    .filter(|(_, r)| r["subDomain"] == sub.as_str() && r["fieldType"] == "TLSA")
                    .map(|(id, _)| *id)
                    .collect();
                json_answer(200, json!(ids))
            }
            ("GET", p) if p.starts_with(&format!("{zone}/record/")) => {
                let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                match st.records.get(&id) {
                    Some(r) => json_answer(200, r.clone()),
                    None => ovh_error(404, "", "The requested object (id = x) does not exist"),
                }
            }
            ("POST", p) if p == format!("{zone}/record") => {
                let b = &req.body;
                assert_eq!(b["fieldType"], "TLSA");
                assert_eq!(b["subDomain"], "_25._tcp.mail");
                assert!(
                    b["target"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("3 1 1 ")),
                    "{b}"
                );
                assert!(b["ttl"].is_u64(), "{b}");
                st.next_id += 1;
                let id = st.next_id;
                let record = json!({"id": id, "zone": "example.com", "subDomain": b["subDomain"],
                                    "fieldType": "TLSA", "target": b["target"], "ttl": b["ttl"]});
                st.records.insert(id, record.clone());
                json_answer(200, record)
            }
            ("DELETE", p) if p.starts_with(&format!("{zone}/record/")) => {
                let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap();
                match st.records.remove(&id) {
                    Some(_) => json_answer(200, Value::Null),
                    None => ovh_error(404, "", "The requested object does not exist"),
                }
            }
            ("POST", p) if p == format!("{zone}/refresh") => {
                st.refreshes += 1;
                json_answer(200, Value::Null)
            }
            _ => ovh_error(404, "", "no such route"),
        }
    })
}

fn record(id: u64, byte: &str, ttl: u64) -> Value {
    json!({"id": id, "zone": "example.com", "subDomain": "_25._tcp.mail", "fieldType": "TLSA", "target": tlsa(byte), "ttl": ttl})
}

async fn start(records: Vec<Value>) -> (Fake, Arc<Mutex<State>>) {
    let st = Arc::new(Mutex::new(State {
        next_id: 100,
        records: records
            .into_iter()
            .map(|r| (r["id"].as_u64().unwrap(), r))
            .collect(),
        ..State::default()
    }));
    let base = Arc::new(Mutex::new(String::new()));
    let fake = Fake::start(fake(st.clone(), base.clone())).await;
    *base.lock().unwrap() = format!("http://{}", fake.addr);
    (fake, st)
}

fn provider(fake: &Fake, secret: &str, consumer: &str) -> Provider {
    Provider::Ovh(
        ovh::Ovh::new(
            &fake.url("/1.0"),
            Credentials {
                application_key: APP_KEY.into(),
                application_secret: Secret::new(secret),
                consumer_key: Secret::new(consumer),
            },
            None,
            quick(),
        )
        .unwrap(),
    )
}

#[test]
fn ovh_adds_and_removes_one_record_with_signed_requests() {
    rt().block_on(async {
        let (fake, st) = start(vec![record(1, "0f", 3600)]).await;
        let p = provider(&fake, APP_SECRET, CONSUMER);
        let ours = rec(OWNER, 300, &tlsa("ab"));

        let report = p.publish(&ours).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(
            report.ttl.as_ref().map(|n| n.served),
            Some(3600),
            "added with the RRset's TTL"
        );
        let post = fake
            .writes()
            .into_iter()
            .find(|r| r.path.ends_with("/record"))
            .unwrap();
        assert_eq!(post.body["ttl"], 3600);
        assert_eq!(
            st.lock().unwrap().refreshes,
            1,
            "the zone is refreshed after the change"
        );
        assert_eq!(p.add(&ours).await.unwrap(), Change::AlreadyPresent);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        let left: Vec<u64> = st.lock().unwrap().records.keys().copied().collect();
        assert_eq!(left, [1], "only our record went");
        assert_eq!(st.lock().unwrap().refreshes, 2);
        let times = fake
            .requests()
            .iter()
            .filter(|r| r.path == "/1.0/auth/time")
            .count();
        assert_eq!(times, 1, "OVH's clock is asked once");
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| {
                r.method == "GET"
                    && !r.path.contains("/record")
                    && r.path.starts_with("/1.0/domain/zone/")
            })
            .count();
        assert_eq!(
            lookups, 4,
            "the zone is looked up once, walking up from the owner"
        );
        assert!(!format!("{p:?}").contains(APP_SECRET) && !format!("{p:?}").contains(CONSUMER));
    });
}

#[test]
fn ovh_errors_are_clear() {
    rt().block_on(async {
        let (fake, st) = start(vec![record(1, "0f", 3600)]).await;
        let ours = rec(OWNER, 3600, &tlsa("ab"));

        let err = provider(&fake, "wrong-application-secret", CONSUMER)
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("wrong-application-secret"));
        let err = provider(&fake, APP_SECRET, "UnknownConsumerKey00000000000000")
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");

        let err = provider(&fake, APP_SECRET, NO_RIGHTS)
            .add(&ours)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Forbidden { .. }), "{err}");
        assert!(err.to_string().contains("/domain/zone/*"), "{err}");
        assert!(!err.to_string().contains(NO_RIGHTS), "{err}");

        let err = provider(&fake, APP_SECRET, CONSUMER)
            .list("_25._tcp.mail.example.org.")
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");

        let p = provider(&fake, APP_SECRET, CONSUMER);
        p.list(OWNER).await.unwrap();
        st.lock().unwrap().faults.push(Answer {
            status: 429,
            headers: vec![("retry-after".into(), "900".into())],
            body: Body::Json(json!({"message": "Too many requests"})),
        });
        let err = p.list(OWNER).await.unwrap_err();
        assert!(matches!(err, ProviderError::RateLimited { .. }), "{err}");
        // Unreadable answers: errors, nothing written.
        for broken in broken_bodies() {
            st.lock().unwrap().faults.push((broken.1)());
            let before = fake.writes().len();
            let err = p.remove(&rec(OWNER, 3600, &tlsa("0f"))).await.unwrap_err();
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{}: {err}",
                broken.0
            );
            assert_eq!(fake.writes().len(), before, "{}", broken.0);
        }
        assert_eq!(st.lock().unwrap().records.len(), 1);
    });
}
