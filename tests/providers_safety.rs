//! Publishing never destroys what is not ours (issue #12) and every read from a provider is
//! capped (issue #14), against local fakes of the documented APIs (deSEC, Cloudflare) that model
//! what goes wrong: an empty, cut-off or field-less 200 body, a writer racing ours, a retried
//! write, the providers' TTL rules, a long `Retry-After`, an endless body; and RFC 2136's TTL rule
//! against the lab's real BIND. PowerDNS: `providers_powerdns_safety.rs`.
//!
//! The fakes log every request: "nothing was written" is asserted as "no POST, PATCH, PUT or
//! DELETE reached the fake".

mod http_fake;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::require;
use dane_roll_providers::rfc2136::{Rfc2136, TsigKey};
use dane_roll_providers::{Change, Provider, ProviderError, Secret, Settings, cloudflare, desec};
use http_fake::*;
use serde_json::{Value, json};

// ----- deSEC -----

const DESEC_TOKEN: &str = "desec-token-safety";
const DOMAIN_PREFIX: &str = "/api/v1/domains/example.com/";
const SUB: &str = "_25._tcp.mail";

/// The deSEC fake's state and knobs.
#[derive(Default)]
struct DesecState {
    rrsets: BTreeMap<String, Value>,
    minimum_ttl: u64,
    /// Answer to the single-RRset GET instead of the truth.
    broken_get: Option<fn() -> Answer>,
    /// Answer the next write with 503, and meanwhile another writer adds this record.
    racing_writer: Option<String>,
    /// Another writer removes this record right after our listing.
    remover: Option<String>,
    /// Answer every request with 429 and this Retry-After.
    throttle: Option<u64>,
}

fn desec_fake(state: Arc<Mutex<DesecState>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        if let Some(after) = st.throttle {
            return Answer {
                status: 429,
                headers: vec![("retry-after".into(), after.to_string())],
                body: Body::Json(
                    json!({"detail": format!("Request was throttled. Expected available in {after} seconds.")}),
                ),
            };
        }
        let rrsets_path = format!("{DOMAIN_PREFIX}rrsets/");
        let one = format!("{rrsets_path}{SUB}/TLSA/");
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", p) if p == DOMAIN_PREFIX => json_answer(
                200,
                json!({"name": "example.com", "minimum_ttl": st.minimum_ttl}),
            ),
            ("GET", p) if p == rrsets_path => {
                let sub = req.query.get("subname").cloned().unwrap_or_default();
                let list: Vec<Value> = st.rrsets.get(&sub).cloned().into_iter().collect();
                if let Some(gone) = st.remover.take()
                    && let Some(r) = st.rrsets.get_mut(&sub)
                {
                    let kept: Vec<Value> = r["records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|x| x.as_str() != Some(gone.as_str()))
                        .cloned()
                        .collect();
                    r["records"] = json!(kept);
                }
                json_answer(200, json!(list))
            }
            ("GET", p) if p == one => {
                if let Some(broken) = st.broken_get {
                    return broken();
                }
                match st.rrsets.get(SUB) {
                    Some(r) => json_answer(200, r.clone()),
                    None => json_answer(404, json!({"detail": "Not found."})),
                }
            }
            (_, _) if req.writes() => {
                if let Some(theirs) = st.racing_writer.take() {
                    if let Some(r) = st.rrsets.get_mut(SUB) {
                        r["records"].as_array_mut().unwrap().push(json!(theirs));
                    }
                    return json_answer(503, json!({"detail": "Service Unavailable"}));
                }
                match (req.method.as_str(), req.path.as_str()) {
                    ("POST", p) if p == rrsets_path => {
                        let b = &req.body;
                        if b["ttl"].as_u64().unwrap_or(0) < st.minimum_ttl {
                            return json_answer(
                                400,
                                json!({"ttl": [format!("Ensure this value is greater than or equal to {}.", st.minimum_ttl)]}),
                            );
                        }
                        let sub = b["subname"].as_str().unwrap().to_owned();
                        let rrset = json!({"subname": sub, "type": "TLSA", "ttl": b["ttl"], "records": b["records"]});
                        st.rrsets.insert(sub, rrset.clone());
                        json_answer(201, rrset)
                    }
                    ("PATCH", p) if p == one => {
                        let records = req.body["records"].as_array().cloned().unwrap();
                        if records.is_empty() {
                            st.rrsets.remove(SUB);
                            return json_answer(204, Value::Null);
                        }
                        let r = st.rrsets.get_mut(SUB).unwrap();
                        r["records"] = json!(records);
                        json_answer(200, r.clone())
                    }
                    _ => json_answer(405, json!({"detail": "Method not allowed."})),
                }
            }
            _ => json_answer(404, json!({"detail": "Not found."})),
        }
    })
}

fn desec_with(fake: &Fake, settings: Settings) -> Provider {
    Provider::Desec(
        desec::Desec::new(
            Secret::new(DESEC_TOKEN),
            Some("example.com"),
            Some(&fake.url("/api/v1")),
            settings,
        )
        .unwrap(),
    )
}

fn desec_state(records: &[String], ttl: u64) -> Arc<Mutex<DesecState>> {
    Arc::new(Mutex::new(DesecState {
        rrsets: BTreeMap::from([(
            SUB.to_owned(),
            json!({"subname": SUB, "type": "TLSA", "ttl": ttl, "records": records}),
        )]),
        minimum_ttl: 3600,
        ..DesecState::default()
    }))
}

fn desec_records(state: &Arc<Mutex<DesecState>>) -> Vec<String> {
    state
        .lock()
        .unwrap()
        .rrsets
        .get(SUB)
        .map_or_else(Vec::new, |r| {
            r["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect()
        })
}

#[test]
fn desec_unreadable_rrset_is_an_error_and_nothing_is_written() {
    rt().block_on(async {
        for (what, broken) in broken_bodies().into_iter().chain([(
            "a body without \"records\"",
            (|| json_answer(200, json!({"subname": SUB, "type": "TLSA", "ttl": 3600})))
                as fn() -> Answer,
        )]) {
            let (ours, other) = (tlsa("ab"), tlsa("0f"));
            let state = desec_state(&[other.clone(), ours.clone()], 3600);
            state.lock().unwrap().broken_get = Some(broken);
            let fake = Fake::start(desec_fake(state.clone())).await;
            let provider = desec_with(&fake, quick());

            let err = provider
                .remove(&rec(OWNER, 3600, &ours))
                .await
                .expect_err(what);
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{what}: {err}"
            );
            let err = provider
                .add(&rec(OWNER, 3600, &tlsa("cd")))
                .await
                .expect_err(what);
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{what}: {err}"
            );
            assert!(fake.writes().is_empty(), "{what}: {:?}", fake.writes());
            assert_eq!(desec_records(&state), [other, ours], "{what}");
        }
    });
}

#[test]
fn desec_retried_write_reads_again_and_keeps_the_racing_writers_record() {
    rt().block_on(async {
        let (ours, other, theirs) = (tlsa("ab"), tlsa("0f"), tlsa("77"));
        let state = desec_state(std::slice::from_ref(&other), 3600);
        let fake = Fake::start(desec_fake(state.clone())).await;
        let provider = desec_with(&fake, quick());

        // Our PATCH gets a 503; meanwhile another writer adds its record.
        state.lock().unwrap().racing_writer = Some(theirs.clone());
        let report = provider.publish(&rec(OWNER, 3600, &ours)).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(
            desec_records(&state),
            [other.clone(), theirs.clone(), ours.clone()]
        );
        let patches: Vec<Request> = fake.writes();
        assert_eq!(patches.len(), 2, "{patches:?}");
        assert_eq!(patches[1].body["records"], json!([other, theirs, ours]));
        // Between the two writes, a read.
        let log = fake.requests();
        let first = log.iter().position(Request::writes).unwrap();
        assert!(
            log[first + 1..]
                .iter()
                .take_while(|r| !r.writes())
                .any(|r| r.method == "GET" && r.path.ends_with("/TLSA/")),
            "the retry reads first: {log:?}"
        );

        // The same on a removal.
        let late = tlsa("78");
        state.lock().unwrap().racing_writer = Some(late.clone());
        provider.retire(&rec(OWNER, 3600, &ours)).await.unwrap();
        assert_eq!(desec_records(&state), [other.clone(), theirs.clone(), late]);
    });
}

#[test]
fn desec_reports_a_record_that_vanished_with_our_write() {
    rt().block_on(async {
        let (ours, other) = (tlsa("ab"), tlsa("0f"));
        let state = desec_state(std::slice::from_ref(&other), 3600);
        let fake = Fake::start(desec_fake(state.clone())).await;
        let provider = desec_with(&fake, quick());
        // Another writer removes its record between our first look and our write.
        state.lock().unwrap().remover = Some(other.clone());
        let report = provider.publish(&rec(OWNER, 3600, &ours)).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(report.vanished, [rec(OWNER, 3600, &other)], "{report:?}");

        // Nothing vanishes: nothing reported.
        let report = provider.retire(&rec(OWNER, 3600, &ours)).await.unwrap();
        assert!(report.vanished.is_empty(), "{report:?}");
    });
}

#[test]
fn desec_ttl_rules() {
    rt().block_on(async {
        let other = tlsa("0f");
        let state = desec_state(std::slice::from_ref(&other), 7200);
        let fake = Fake::start(desec_fake(state.clone())).await;
        let provider = desec_with(&fake, quick());

        // A new RRset below the domain's minimum_ttl: refused before anything is sent, with
        // the key to set.
        let fresh = rec("_465._tcp.mail.example.com.", 300, &tlsa("cd"));
        let err = provider.add(&fresh).await.unwrap_err();
        assert!(matches!(err, ProviderError::Ttl { ttl: 300, .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("minimum_ttl 3600") && text.contains("`ttl`"),
            "{text}"
        );
        assert!(fake.writes().is_empty(), "{:?}", fake.writes());

        // Added to an RRset whose TTL differs from ours: the RRset keeps its TTL, and we are told.
        let report = provider
            .publish(&rec(OWNER, 3600, &tlsa("ab")))
            .await
            .unwrap();
        let notice = report.ttl.expect("a TTL notice");
        assert_eq!((notice.configured, notice.served), (3600, 7200));
        assert!(
            notice
                .to_string()
                .contains("set the service's `ttl` to 7200"),
            "{notice}"
        );
        assert_eq!(state.lock().unwrap().rrsets[SUB]["ttl"], 7200);
    });
}

#[test]
fn desec_long_retry_after_is_rate_limited_not_a_failure() {
    rt().block_on(async {
        let state = desec_state(&[tlsa("0f")], 3600);
        state.lock().unwrap().throttle = Some(60);
        let fake = Fake::start(desec_fake(state.clone())).await;
        let provider = desec_with(&fake, quick());
        let start = Instant::now();
        let err = provider.add(&rec(OWNER, 3600, &tlsa("ab"))).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(60)),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(1), "no waiting: {:?}", start.elapsed());
        assert!(err.to_string().contains("the next run retries"), "{err}");
        assert!(fake.writes().is_empty());
    });
}
// ----- Cloudflare -----

const CF_TOKEN: &str = "cf-token-safety";
const CF_ZONE: &str = "0123456789abcdef0123456789abcdef";

#[derive(Default)]
struct CfState {
    records: Vec<Value>,
    /// Listings after a DELETE are answered without `result`.
    list_without_result: bool,
    /// DELETEs are answered 200 but do nothing.
    lying_delete: bool,
    deleted: bool,
    /// Answer with 429 and this Retry-After (Cloudflare blocks for 5 minutes).
    throttle: Option<u64>,
}

fn cf_fake(state: Arc<Mutex<CfState>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        if let Some(after) = st.throttle {
            return Answer {
                status: 429,
                headers: vec![("retry-after".into(), after.to_string())],
                body: Body::Json(
                    json!({"success": false, "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}]}),
                ),
            };
        }
        let list = format!("/client/v4/zones/{CF_ZONE}/dns_records");
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", p) if p == list => {
                if st.list_without_result && st.deleted {
                    return json_answer(200, json!({"success": true, "errors": []}));
                }
                let result: Vec<Value> = st.records.clone();
                json_answer(
                    200,
                    json!({"success": true, "errors": [], "result": result,
                           "result_info": {"page": 1, "per_page": 100, "total_pages": 1}}),
                )
            }
            ("POST", p) if p == list => {
                let b = &req.body;
                let d = &b["data"];
                let record = json!({
                    "id": format!("r{}", st.records.len()), "type": "TLSA", "name": b["name"], "ttl": b["ttl"],
                    "data": d,
                });
                st.records.push(record.clone());
                json_answer(
                    200,
                    json!({"success": true, "errors": [], "result": record}),
                )
            }
            ("DELETE", p) if p.starts_with(&list) => {
                st.deleted = true;
                if !st.lying_delete {
                    let id = p.rsplit('/').next().unwrap().to_owned();
                    st.records.retain(|r| r["id"] != id.as_str());
                }
                json_answer(200, json!({"success": true, "errors": [], "result": {}}))
            }
            _ => json_answer(
                404,
                json!({"success": false, "errors": [{"code": 7003, "message": "no route"}]}),
            ),
        }
    })
}

fn cf_record(id: &str, byte: &str) -> Value {
    json!({"id": id, "type": "TLSA", "name": OWNER.trim_end_matches('.'), "ttl": 300,
           "data": {"usage": 3, "selector": 1, "matching_type": 1, "certificate": byte.repeat(32)}})
}

fn cf_with(fake: &Fake) -> Provider {
    Provider::Cloudflare(
        cloudflare::Cloudflare::new(
            Secret::new(CF_TOKEN),
            Some(CF_ZONE),
            Some(&fake.url("/client/v4")),
            quick(),
        )
        .unwrap(),
    )
}

#[test]
fn cloudflare_removal_is_not_confirmed_by_a_listing_without_result() {
    rt().block_on(async {
        let state = Arc::new(Mutex::new(CfState {
            records: vec![cf_record("o1", "0f"), cf_record("us", "ab")],
            list_without_result: true,
            lying_delete: true,
            ..CfState::default()
        }));
        let fake = Fake::start(cf_fake(state.clone())).await;
        let provider = cf_with(&fake);
        let err = provider
            .remove(&rec(OWNER, 300, &tlsa("ab")))
            .await
            .expect_err("a removal the API did not make is not confirmed");
        assert!(matches!(err, ProviderError::BadReply { .. }), "{err}");
        assert!(err.to_string().contains("\"result\""), "{err}");
    });
}

#[test]
fn cloudflare_ttl_rules() {
    rt().block_on(async {
        let state = Arc::new(Mutex::new(CfState::default()));
        let fake = Fake::start(cf_fake(state.clone())).await;
        let provider = cf_with(&fake);
        for bad in [0, 2, 30, 59, 86401] {
            let err = provider
                .add(&rec(OWNER, bad, &tlsa("ab")))
                .await
                .unwrap_err();
            assert!(
                matches!(err, ProviderError::Ttl { ttl, .. } if ttl == bad),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("60 to 86400"), "{err}");
        }
        assert!(fake.writes().is_empty(), "{:?}", fake.writes());
        // 1 is automatic, served as 300 s: said.
        let report = provider.publish(&rec(OWNER, 1, &tlsa("ab"))).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(report.ttl.map(|n| n.served), Some(300));
        let report = provider
            .publish(&rec(OWNER, 60, &tlsa("cd")))
            .await
            .unwrap();
        assert_eq!((report.change, report.ttl), (Change::Added, None));
    });
}

#[test]
fn cloudflare_five_minute_block_is_rate_limited() {
    rt().block_on(async {
        let state = Arc::new(Mutex::new(CfState {
            throttle: Some(300),
            ..CfState::default()
        }));
        let fake = Fake::start(cf_fake(state.clone())).await;
        let provider = cf_with(&fake);
        let start = Instant::now();
        let err = provider
            .add(&rec(OWNER, 300, &tlsa("ab")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(300)),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
        assert_eq!(fake.requests().len(), 1, "one try, no hammering");
    });
}

// ----- bounded reads -----

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn an_endless_body_is_cut_at_the_cap() {
    rt().block_on(async {
        // 1 GiB of spaces: "endless" for a client that reads it all.
        let fake = Fake::start(Box::new(|_req: &Request| Answer {
            status: 200,
            headers: Vec::new(),
            body: Body::Endless(1 << 30),
        }))
        .await;
        let settings = Settings {
            timeout: Duration::from_secs(60),
            ..quick()
        };
        let provider = Provider::Desec(
            desec::Desec::new(
                Secret::new(DESEC_TOKEN),
                Some("example.com"),
                Some(&fake.url("/api/v1")),
                settings,
            )
            .unwrap(),
        );
        let before = rss_kib();
        let start = Instant::now();
        let err = provider.list(OWNER).await.unwrap_err();
        let grown = rss_kib().saturating_sub(before);
        eprintln!(
            "endless body: {err}; RSS grew {grown} KiB in {:?}",
            start.elapsed()
        );
        assert!(matches!(err, ProviderError::BadReply { .. }), "{err}");
        assert!(err.to_string().contains("longer than 4 MiB"), "{err}");
        assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    });
}

// ----- RFC 2136: the RRset's TTL, against BIND -----

const BIND: &[&str] = dane_roll_lab::tools::BIND_TOOLS;

#[test]
fn rfc2136_adds_with_the_rrsets_ttl_so_other_records_keep_theirs() {
    if !require(BIND) {
        return;
    }
    let lab = DnsLab::builder()
        .knot(false)
        .resolver(false)
        .start()
        .expect("lab starts");
    let owner = format!("_25._tcp.{}.", lab.mx_host());
    let other = tlsa("0f");
    // (The lab's BIND caps TTLs at 300: max-zone-ttl.)
    lab.add_tlsa(&owner, 120, &other).unwrap();
    // BIND's inline signing serves the change a moment later.
    lab.wait_served_everywhere(&owner, &other, Duration::from_secs(20))
        .expect("the other host's record is served");
    let key = TsigKey::parse(&Secret::new(
        std::fs::read_to_string(&lab.tsig().file).unwrap(),
    ))
    .unwrap();
    let provider = Provider::Rfc2136(Rfc2136::new(
        &lab.addr(Server::Bind).to_string(),
        53,
        None,
        Some(key),
        quick(),
    ));
    rt().block_on(async {
        let report = provider
            .publish(&rec(&owner, 60, &tlsa("ab")))
            .await
            .unwrap();
        assert_eq!(report.change, Change::Added);
        let list = provider.list(&owner).await.unwrap();
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(
            list.iter().all(|r| r.ttl == 120),
            "the other host's TTL is kept: {list:?}"
        );
        let notice = report.ttl.expect("a TTL notice");
        assert_eq!((notice.configured, notice.served), (60, 120), "{notice}");
        assert!(report.vanished.is_empty());
    });
}
