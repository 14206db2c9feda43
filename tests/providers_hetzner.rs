//! The `hetzner` provider against a fake of the Hetzner Cloud DNS API (zones, RRsets and their
//! `add_records`/`remove_records` actions, <https://docs.hetzner.cloud/reference/cloud#zone-rrsets>):
//! the fake checks the documented request shapes, keeps other writers' records, pages its
//! listings, and answers errors as Hetzner does (`{"error": {"code", "message"}}`).

mod http_fake;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dane_roll_providers::{Change, Provider, ProviderError, Secret, hetzner};
use http_fake::*;
use serde_json::{Value, json};

const TOKEN: &str = "hcloud-token-0123456789";
const READ_ONLY: &str = "hcloud-read-only-token";
const ZONE_ID: u64 = 4711;

#[derive(Default)]
struct State {
    /// (value, comment) of the TLSA RRset at the owner; `None`: no RRset.
    records: Option<Vec<(String, String)>>,
    ttl: Option<u64>,
    /// Answer the next request with this first.
    faults: Vec<Answer>,
    /// Answer actions with status "error".
    failing_action: bool,
    /// Listings answered with a broken body (after the first).
    broken_list: Option<fn() -> Answer>,
    lists: usize,
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    json_answer(
        status,
        json!({"error": {"code": code, "message": message, "details": {}}}),
    )
}

fn fake(state: Arc<Mutex<State>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        if !st.faults.is_empty() {
            return st.faults.remove(0);
        }
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        let read_only = auth == format!("Bearer {READ_ONLY}");
        if auth != format!("Bearer {TOKEN}") && !read_only {
            return error(401, "unauthorized", "unable to authenticate");
        }
        let rrsets = format!("/v1/zones/{ZONE_ID}/rrsets");
        let action = format!("/v1/zones/{ZONE_ID}/rrsets/_25._tcp.mail/TLSA/actions/");
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v1/zones") => {
                let zones = match req.query.get("name").map(String::as_str) {
                    Some("example.com") => {
                        json!([{"id": ZONE_ID, "name": "example.com", "ttl": 3600, "mode": "primary"}])
                    }
                    _ => json!([]),
                };
                json_answer(
                    200,
                    json!({"zones": zones, "meta": {"pagination": {"page": 1, "per_page": 25, "next_page": null}}}),
                )
            }
            ("GET", p) if p == rrsets => {
                assert_eq!(
                    req.query.get("type").map(String::as_str),
                    Some("TLSA"),
                    "{req:?}"
                );
                assert_eq!(
                    req.query.get("name").map(String::as_str),
                    Some("_25._tcp.mail"),
                    "relative name: {req:?}"
                );
                st.lists += 1;
                if let Some(broken) = st.broken_list
                    && st.lists > 1
                {
                    return broken();
                }
                // Two pages: the first empty, pointing at the second.
                let page: u64 = req.query["page"].parse().unwrap();
                let meta = |next: Value| json!({"pagination": {"page": page, "per_page": 100, "next_page": next}});
                if page == 1 {
                    return json_answer(200, json!({"rrsets": [], "meta": meta(json!(2))}));
                }
                let list = match &st.records {
                    None => json!([]),
                    Some(records) => {
                        let records: Vec<Value> = records
                            .iter()
                            .map(|(v, c)| json!({"value": v, "comment": c}))
                            .collect();
                        json!([{"id": "_25._tcp.mail/TLSA", "name": "_25._tcp.mail", "type": "TLSA",
                                "ttl": st.ttl, "records": records, "zone": ZONE_ID}])
                    }
                };
                json_answer(200, json!({"rrsets": list, "meta": meta(Value::Null)}))
            }
            ("POST", p) if p.starts_with(&action) => {
                if read_only {
                    return error(
                        403,
                        "forbidden",
                        "insufficient permissions for this request",
                    );
                }
                let which = p.rsplit('/').next().unwrap();
                let values: Vec<(String, String)> = req.body["records"]
                    .as_array()
                    .expect("records list")
                    .iter()
                    .map(|r| {
                        (
                            r["value"].as_str().expect("value").to_owned(),
                            r["comment"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                match which {
                    "add_records" => {
                        let set = st.records.get_or_insert_with(Vec::new);
                        if set.is_empty() {
                            st.ttl = req.body["ttl"].as_u64();
                        } else {
                            assert!(
                                req.body.get("ttl").is_none(),
                                "an existing RRset keeps its TTL: {}",
                                req.body
                            );
                        }
                        st.records.as_mut().unwrap().extend(values);
                    }
                    "remove_records" => {
                        let set = st.records.get_or_insert_with(Vec::new);
                        for (v, _) in &values {
                            assert!(
                                set.iter().any(|(x, _)| x == v),
                                "removes by the stored value: {v}"
                            );
                        }
                        set.retain(|(x, _)| !values.iter().any(|(v, _)| v == x));
                    }
                    other => panic!("unknown action {other}"),
                }
                let status = if st.failing_action {
                    "error"
                } else {
                    "running"
                };
                json_answer(
                    201,
                    json!({"action": {"id": 13, "command": which, "status": status, "progress": 0,
                    "error": if st.failing_action { json!({"code": "action_failed", "message": "zone is locked"}) } else { Value::Null }}}),
                )
            }
            _ => error(404, "not_found", "not found"),
        }
    })
}

fn provider(fake: &Fake, token: &str) -> Provider {
    Provider::Hetzner(
        hetzner::Hetzner::new(Secret::new(token), None, Some(&fake.url("/v1")), quick()).unwrap(),
    )
}

fn state(records: &[(&str, &str)], ttl: u64) -> Arc<Mutex<State>> {
    Arc::new(Mutex::new(State {
        records: Some(
            records
                .iter()
                .map(|(v, c)| ((*v).to_owned(), (*c).to_owned()))
                .collect(),
        ),
        ttl: Some(ttl),
        ..State::default()
    }))
}

#[test]
fn hetzner_adds_and_removes_one_record_beside_others() {
    rt().block_on(async {
        let other = tlsa("0f");
        let st = state(&[(&other, "their host")], 3600);
        let fake = Fake::start(fake(st.clone())).await;
        let p = provider(&fake, TOKEN);
        let ours = rec(OWNER, 300, &tlsa("ab"));

        let report = p.publish(&ours).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert!(report.vanished.is_empty());
        assert_eq!(
            report.ttl.as_ref().map(|n| n.served),
            Some(3600),
            "the RRset's TTL is reported"
        );
        assert_eq!(p.add(&ours).await.unwrap(), Change::AlreadyPresent);
        let added = fake.writes();
        assert_eq!(added.len(), 1, "{added:?}");
        assert_eq!(added[0].body["records"][0]["comment"], "dane-roll");

        assert_eq!(p.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        let left = st.lock().unwrap().records.clone().unwrap();
        assert_eq!(
            left,
            [(other.clone(), "their host".to_owned())],
            "only our record went"
        );
        for r in fake.requests() {
            assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
        }
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/zones")
            .count();
        assert_eq!(
            lookups, 4,
            "the zone is looked up once, walking up from the owner"
        );
    });
}

#[test]
fn hetzner_creates_an_rrset_with_the_ttl_and_removes_by_stored_value() {
    rt().block_on(async {
        let st = Arc::new(Mutex::new(State::default()));
        let fake = Fake::start(fake(st.clone())).await;
        let p = provider(&fake, TOKEN);
        let report = p.publish(&rec(OWNER, 300, &tlsa("ab"))).await.unwrap();
        assert_eq!((report.change, report.ttl), (Change::Added, None));
        assert_eq!(fake.writes()[0].body["ttl"], 300);
        // A record someone wrote in upper case is ours by data: removed by its stored text.
        st.lock().unwrap().records = Some(vec![(tlsa("CD").to_uppercase(), String::new())]);
        assert_eq!(
            p.remove(&rec(OWNER, 300, &tlsa("cd"))).await.unwrap(),
            Change::Removed
        );
    });
}

#[test]
fn hetzner_errors_are_clear() {
    rt().block_on(async {
        let st = state(&[(&tlsa("0f"), "")], 3600);
        let fake = Fake::start(fake(st.clone())).await;
        let ours = rec(OWNER, 300, &tlsa("ab"));

        let err = provider(&fake, "wrong-token-xyz")
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("wrong-token-xyz"));

        let err = provider(&fake, READ_ONLY).add(&ours).await.unwrap_err();
        assert!(matches!(err, ProviderError::Forbidden { .. }), "{err}");
        assert!(err.to_string().contains("Read & Write"), "{err}");

        let err = provider(&fake, TOKEN)
            .list("_25._tcp.mail.example.org.")
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");

        let err = provider(&fake, TOKEN)
            .add(&rec(OWNER, 30, &tlsa("ab")))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Ttl { ttl: 30, .. }), "{err}");
        assert!(
            fake.writes()
                .iter()
                .all(|w| w.headers["authorization"].contains(READ_ONLY)),
            "nothing written with a bad TTL"
        );

        st.lock().unwrap().failing_action = true;
        let err = provider(&fake, TOKEN).add(&ours).await.unwrap_err();
        assert!(err.to_string().contains("zone is locked"), "{err}");
        st.lock().unwrap().failing_action = false;

        // 429 with Retry-After: waited for; a longer one than the run waits: rate-limited.
        let p = provider(&fake, TOKEN);
        st.lock().unwrap().faults.push(Answer {
            status: 429,
            headers: vec![("retry-after".into(), "1".into())],
            body: Body::Json(
                json!({"error": {"code": "rate_limit_exceeded", "message": "limit reached"}}),
            ),
        });
        let start = Instant::now();
        p.list(OWNER).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(950));
        st.lock().unwrap().faults.push(Answer {
            status: 429,
            headers: vec![("retry-after".into(), "3600".into())],
            body: Body::Json(
                json!({"error": {"code": "rate_limit_exceeded", "message": "limit reached"}}),
            ),
        });
        let err = p.list(OWNER).await.unwrap_err();
        assert!(matches!(err, ProviderError::RateLimited { .. }), "{err}");
        for _ in 0..10 {
            st.lock()
                .unwrap()
                .faults
                .push(error(503, "unavailable", "down"));
        }
        let err = p.list(OWNER).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::RetriesExhausted { status: 503, .. }),
            "{err}"
        );
    });
}

#[test]
fn hetzner_unreadable_listing_is_an_error_and_nothing_is_written() {
    let no_rrsets: fn() -> Answer = || json_answer(200, json!({"meta": {}}));
    let no_records: fn() -> Answer = || {
        json_answer(
            200,
            json!({"rrsets": [{"name": "_25._tcp.mail", "type": "TLSA", "ttl": 3600}], "meta": {}}),
        )
    };
    for (what, broken) in broken_bodies().into_iter().chain([
        ("no \"rrsets\"", no_rrsets),
        ("an RRset without \"records\"", no_records),
    ]) {
        rt().block_on(async {
            let ours = tlsa("ab");
            let st = state(&[(&tlsa("0f"), ""), (&ours, "dane-roll")], 3600);
            st.lock().unwrap().broken_list = Some(broken);
            let fake = Fake::start(fake(st.clone())).await;
            let p = provider(&fake, TOKEN);
            // The first page is sound; the second (and every later listing) is not.
            let err = p.remove(&rec(OWNER, 300, &ours)).await.unwrap_err();
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{what}: {err}"
            );
            assert!(fake.writes().is_empty(), "{what}: {:?}", fake.writes());
            assert_eq!(
                st.lock().unwrap().records.as_ref().unwrap().len(),
                2,
                "{what}"
            );
        });
    }
}
