//! Today's providers against their documentation (issue #19): Cloudflare's zone lookup without
//! zone-list rights, its error 81057, the `name.exact` filter and listings without
//! `total_pages`; the zone lookup made once per provider (Cloudflare, deSEC); PowerDNS zone ids
//! escaped as PowerDNS escapes them (`=XX`).

mod http_fake;

use std::sync::{Arc, Mutex};

use dane_roll_providers::{Change, Provider, ProviderError, Secret, cloudflare, desec, powerdns};
use http_fake::*;
use serde_json::{Value, json};

const CF_TOKEN: &str = "cf-token-docs-1234";
const CF_ZONE: &str = "0123456789abcdef0123456789abcdef";

#[derive(Default)]
struct Cf {
    records: Vec<Value>,
    /// The zone list is refused (a token without Zone:Read).
    zones_forbidden: bool,
    /// Creates are answered 400 with this error code (and the record made anyway).
    create_error: Option<i64>,
    /// Listings carry no `result_info` and pages of this size.
    no_info_page: Option<usize>,
}

fn cf_fake(state: Arc<Mutex<Cf>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        assert_eq!(
            req.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {CF_TOKEN}").as_str())
        );
        let list = format!("/client/v4/zones/{CF_ZONE}/dns_records");
        let ok = |result: Value| {
            json_answer(
                200,
                json!({"success": true, "errors": [], "result": result}),
            )
        };
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/client/v4/zones") => {
                if st.zones_forbidden {
                    return json_answer(
                        403,
                        json!({"success": false, "errors": [{"code": 9109, "message": "Unauthorized to access requested resource"}]}),
                    );
                }
                match req.query.get("name").map(String::as_str) {
                    Some("example.com") => ok(json!([{"id": CF_ZONE, "name": "example.com"}])),
                    _ => ok(json!([])),
                }
            }
            ("GET", p) if p == list => {
                // https://developers.cloudflare.com/api/resources/dns/subresources/records/methods/list/
                // `name.exact` is the documented exact-name filter.
                let name = req
                    .query
                    .get("name.exact")
                    .cloned()
                    .expect("the listing filters with name.exact");
                assert_eq!(req.query.get("type").map(String::as_str), Some("TLSA"));
                let page: usize = req.query["page"].parse().unwrap();
                let all: Vec<Value> = st
                    .records
                    .iter()
                    .filter(|r| r["name"] == name.as_str())
                    .cloned()
                    .collect();
                match st.no_info_page {
                    Some(size) => {
                        let slice: Vec<Value> =
                            all.into_iter().skip((page - 1) * size).take(size).collect();
                        ok(json!(slice))
                    }
                    None => json_answer(
                        200,
                        json!({"success": true, "errors": [], "result": all,
                               "result_info": {"page": page, "per_page": 100, "total_pages": 1}}),
                    ),
                }
            }
            ("POST", p) if p == list => {
                let b = &req.body;
                let record = json!({
                    "id": format!("r{}", st.records.len()), "type": "TLSA", "name": b["name"],
                    "ttl": b["ttl"], "data": b["data"],
                });
                st.records.push(record.clone());
                if let Some(code) = st.create_error {
                    return json_answer(
                        400,
                        json!({"success": false, "errors": [{"code": code, "message": "Record already exists."}]}),
                    );
                }
                ok(record)
            }
            ("DELETE", p) if p.starts_with(&list) => {
                let id = p.rsplit('/').next().unwrap().to_owned();
                st.records.retain(|r| r["id"] != id.as_str());
                ok(json!({"id": id}))
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

fn cf(fake: &Fake, zone_id: Option<&str>) -> Provider {
    Provider::Cloudflare(
        cloudflare::Cloudflare::new(
            Secret::new(CF_TOKEN),
            zone_id,
            Some(&fake.url("/client/v4")),
            quick(),
        )
        .unwrap(),
    )
}

#[test]
fn cloudflare_zone_lookup_without_zone_rights_says_to_set_zone_id() {
    rt().block_on(async {
        let state = Arc::new(Mutex::new(Cf {
            zones_forbidden: true,
            ..Cf::default()
        }));
        let fake = Fake::start(cf_fake(state)).await;
        let err = cf(&fake, None).list(OWNER).await.unwrap_err();
        assert!(matches!(err, ProviderError::Forbidden { .. }), "{err}");
        assert!(err.to_string().contains("zone-id"), "{err}");
        assert!(!err.to_string().contains(CF_TOKEN), "{err}");
    });
}

#[test]
fn cloudflare_81057_means_the_record_is_there() {
    rt().block_on(async {
        let state = Arc::new(Mutex::new(Cf {
            records: vec![cf_record("o1", "0f")],
            create_error: Some(81057),
            ..Cf::default()
        }));
        let fake = Fake::start(cf_fake(state.clone())).await;
        let provider = cf(&fake, Some(CF_ZONE));
        let change = provider.add(&rec(OWNER, 300, &tlsa("ab"))).await.unwrap();
        assert_eq!(change, Change::Added);
    });
}

#[test]
fn cloudflare_lists_by_exact_name_and_pages_without_total_pages() {
    rt().block_on(async {
        let state = Arc::new(Mutex::new(Cf {
            records: vec![
                cf_record("o1", "01"),
                cf_record("o2", "02"),
                cf_record("o3", "03"),
            ],
            no_info_page: Some(2),
            ..Cf::default()
        }));
        let fake = Fake::start(cf_fake(state)).await;
        let list = cf(&fake, Some(CF_ZONE)).list(OWNER).await.unwrap();
        assert_eq!(
            list.len(),
            3,
            "page 2 read though total_pages is absent: {list:?}"
        );
        let pages: Vec<String> = fake
            .requests()
            .iter()
            .map(|r| r.query["page"].clone())
            .collect();
        assert_eq!(pages, ["1", "2", "3"], "read until an empty page");
    });
}

#[test]
fn cloudflare_looks_the_zone_up_once() {
    rt().block_on(async {
        let state = Arc::new(Mutex::new(Cf {
            records: vec![cf_record("o1", "0f")],
            ..Cf::default()
        }));
        let fake = Fake::start(cf_fake(state)).await;
        let provider = cf(&fake, None);
        let ours = rec(OWNER, 300, &tlsa("ab"));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::Removed);
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| r.path == "/client/v4/zones")
            .count();
        // example.com is the fourth ancestor of the owner: four requests, once.
        assert_eq!(lookups, 4, "{:?}", fake.requests());
    });
}

// ----- deSEC -----

const DESEC_TOKEN: &str = "desec-token-docs-5678";

fn desec_fake(records: Arc<Mutex<Vec<String>>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut records = records.lock().unwrap();
        let rrset = "/api/v1/domains/example.com/rrsets/_25._tcp.mail/TLSA/";
        let set = |r: &[String]| json!({"subname": "_25._tcp.mail", "type": "TLSA", "ttl": 3600, "records": r});
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/v1/domains/") => json_answer(200, json!([{"name": "example.com"}])),
            ("GET", "/api/v1/domains/example.com/") => {
                json_answer(200, json!({"name": "example.com", "minimum_ttl": 300}))
            }
            ("GET", "/api/v1/domains/example.com/rrsets/") => json_answer(
                200,
                if records.is_empty() {
                    json!([])
                } else {
                    json!([set(&records)])
                },
            ),
            ("GET", p) if p == rrset => json_answer(200, set(&records)),
            ("PATCH", p) if p == rrset => {
                *records = req.body["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect();
                json_answer(200, set(&records))
            }
            _ => json_answer(404, json!({"detail": "Not found."})),
        }
    })
}

#[test]
fn desec_looks_the_domain_up_once() {
    rt().block_on(async {
        let records = Arc::new(Mutex::new(vec![tlsa("0f")]));
        let fake = Fake::start(desec_fake(records)).await;
        let provider = Provider::Desec(
            desec::Desec::new(
                Secret::new(DESEC_TOKEN),
                None,
                Some(&fake.url("/api/v1")),
                quick(),
            )
            .unwrap(),
        );
        let ours = rec(OWNER, 3600, &tlsa("ab"));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::Removed);
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| r.path == "/api/v1/domains/")
            .count();
        assert_eq!(lookups, 1, "{:?}", fake.requests());
    });
}

// ----- PowerDNS -----

#[test]
fn powerdns_zone_ids_are_escaped_as_powerdns_does() {
    rt().block_on(async {
        // A classless reverse zone (RFC 2317): PowerDNS's id for it is `0=2F26.2.0.192.in-addr.arpa.`.
        let zone = "0/26.2.0.192.in-addr.arpa.";
        let owner = "_25._tcp.mail.0/26.2.0.192.in-addr.arpa.";
        let fake = Fake::start(Box::new(|req: &Request| {
            if req.path == "/api/v1/servers/localhost/zones/0=2F26.2.0.192.in-addr.arpa." {
                json_answer(
                    200,
                    json!({"name": "0/26.2.0.192.in-addr.arpa.", "rrsets": []}),
                )
            } else {
                json_answer(404, json!({"error": "Not Found"}))
            }
        }))
        .await;
        let provider = Provider::PowerDns(
            powerdns::PowerDns::new(
                &fake.url(""),
                Secret::new("pdns-key-docs"),
                "localhost",
                Some(zone),
                quick(),
            )
            .unwrap(),
        );
        let list = provider.list(owner).await;
        assert!(
            list.as_ref().is_ok_and(Vec::is_empty),
            "{list:?} {:?}",
            fake.requests()
        );
        // Found by name too: the same escaping in the lookup.
        let provider = Provider::PowerDns(
            powerdns::PowerDns::new(
                &fake.url(""),
                Secret::new("pdns-key-docs"),
                "localhost",
                None,
                quick(),
            )
            .unwrap(),
        );
        let list = provider.list(owner).await;
        assert!(list.as_ref().is_ok_and(Vec::is_empty), "{list:?}");
    });
}

#[test]
fn cloudflare_marks_its_records_and_removes_only_marked_twins() {
    rt().block_on(async {
        let mut by_hand = cf_record("h1", "ab");
        by_hand["comment"] = json!("added by hand");
        let mut ours = cf_record("d1", "ab");
        ours["comment"] = json!("dane-roll");
        let state = Arc::new(Mutex::new(Cf {
            records: vec![by_hand, ours],
            ..Cf::default()
        }));
        let fake = Fake::start(cf_fake(state.clone())).await;
        let client = cloudflare::Cloudflare::new(
            Secret::new(CF_TOKEN),
            Some(CF_ZONE),
            Some(&fake.url("/client/v4")),
            quick(),
        )
        .unwrap();
        client.remove(&rec(OWNER, 300, &tlsa("ab"))).await.unwrap();
        let left: Vec<String> = state
            .lock()
            .unwrap()
            .records
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(left, ["h1"], "the identical record made by hand stays");
        client.add(&rec(OWNER, 300, &tlsa("cd"))).await.unwrap();
        let post = fake
            .writes()
            .into_iter()
            .find(|r| r.method == "POST")
            .unwrap();
        assert_eq!(post.body["comment"], "dane-roll", "{}", post.body);
    });
}
