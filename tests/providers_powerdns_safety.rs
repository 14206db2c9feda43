//! PowerDNS never loses another writer's record (issue #12), against a local fake of its HTTP
//! API: an unreadable zone is an error before any write, a retried REPLACE reads again, and
//! `EXTEND`/`PRUNE` are used on the versions that have them (4.9.12, 5.0.2, 5.1). The real
//! PowerDNS of the lab (4.7.3, REPLACE only) is in `providers.rs`.

mod http_fake;

use std::sync::{Arc, Mutex};

use dane_roll_providers::{Change, Provider, ProviderError, Secret, powerdns};
use http_fake::*;
use serde_json::{Value, json};

const PDNS_KEY: &str = "pdns-key-safety";

#[derive(Default)]
struct PdnsState {
    version: String,
    ttl: u64,
    records: Vec<String>,
    /// The zone GET with this number (1 = first) is answered with this instead of the truth.
    broken_get: Option<(usize, fn() -> Answer)>,
    gets: usize,
    racing_writer: Option<String>,
}

fn pdns_fake(state: Arc<Mutex<PdnsState>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        let zone = "/api/v1/servers/localhost/zones/example.com.";
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/v1/servers/localhost") => json_answer(
                200,
                json!({"type": "Server", "id": "localhost", "daemon_type": "authoritative", "version": st.version}),
            ),
            ("GET", p) if p == zone => {
                st.gets += 1;
                if let Some((n, broken)) = st.broken_get
                    && n == st.gets
                {
                    return broken();
                }
                let rrsets = if st.records.is_empty() {
                    json!([])
                } else {
                    let records: Vec<Value> = st
                        .records
                        .iter()
                        .map(|c| json!({"content": c, "disabled": false}))
                        .collect();
                    json!([{"name": OWNER, "type": "TLSA", "ttl": st.ttl, "records": records, "comments": []}])
                };
                json_answer(200, json!({"name": "example.com.", "rrsets": rrsets}))
            }
            ("PATCH", p) if p == zone => {
                if let Some(theirs) = st.racing_writer.take() {
                    st.records.push(theirs);
                    return json_answer(503, json!({"error": "backend busy"}));
                }
                let rrset = &req.body["rrsets"][0];
                let contents: Vec<String> = rrset["records"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| r["content"].as_str().unwrap().to_owned())
                    .collect();
                let changetype = rrset["changetype"].as_str().unwrap().to_ascii_uppercase();
                let record_level = powerdns::has_extend_prune(&st.version);
                match changetype.as_str() {
                    "REPLACE" => st.records = contents,
                    "DELETE" => st.records.clear(),
                    "EXTEND" | "PRUNE" if record_level && contents.len() == 1 => {
                        if changetype == "EXTEND" {
                            if !st.records.contains(&contents[0]) {
                                st.records.push(contents[0].clone());
                            }
                        } else {
                            st.records.retain(|c| *c != contents[0]);
                        }
                    }
                    _ => return json_answer(422, json!({"error": "Changetype not understood"})),
                }
                json_answer(204, Value::Null)
            }
            _ => json_answer(404, json!({"error": "Not Found"})),
        }
    })
}

fn pdns_state(version: &str, records: &[String]) -> Arc<Mutex<PdnsState>> {
    Arc::new(Mutex::new(PdnsState {
        version: version.to_owned(),
        ttl: 3600,
        records: records.to_vec(),
        ..PdnsState::default()
    }))
}

fn pdns_with(fake: &Fake) -> Provider {
    Provider::PowerDns(
        powerdns::PowerDns::new(
            &fake.url(""),
            Secret::new(PDNS_KEY),
            "localhost",
            Some("example.com."),
            quick(),
        )
        .unwrap(),
    )
}

#[test]
fn powerdns_unreadable_zone_is_an_error_and_nothing_is_written() {
    rt().block_on(async {
        let no_rrsets: fn() -> Answer = || json_answer(200, json!({"name": "example.com."}));
        let no_records: fn() -> Answer = || {
            json_answer(
                200,
                json!({"name": "example.com.", "rrsets": [{"name": OWNER, "type": "TLSA", "ttl": 3600}]}),
            )
        };
        for (what, broken) in broken_bodies()
            .into_iter()
            .chain([("no \"rrsets\"", no_rrsets), ("an RRset without \"records\"", no_records)])
        {
            let (ours, other) = (tlsa("ab"), tlsa("0f"));
            let state = pdns_state("4.7.3", &[other.clone(), ours.clone()]);
            let fake = Fake::start(pdns_fake(state.clone())).await;
            let provider = pdns_with(&fake);
            // The first look (is it there?) is sound; the read the write rests on is not.
            state.lock().unwrap().broken_get = Some((2, broken));
            let err = provider.remove(&rec(OWNER, 3600, &ours)).await.expect_err(what);
            assert!(matches!(err, ProviderError::BadReply { .. }), "{what}: {err}");
            state.lock().unwrap().gets = 0;
            let err = provider.add(&rec(OWNER, 3600, &tlsa("cd"))).await.expect_err(what);
            assert!(matches!(err, ProviderError::BadReply { .. }), "{what}: {err}");
            assert!(fake.writes().is_empty(), "{what}: {:?}", fake.writes());
            assert_eq!(state.lock().unwrap().records, [other, ours], "{what}");
        }
    });
}

#[test]
fn powerdns_retried_replace_reads_again() {
    rt().block_on(async {
        let (ours, other, theirs) = (tlsa("ab"), tlsa("0f"), tlsa("77"));
        let state = pdns_state("4.7.3", std::slice::from_ref(&other));
        let fake = Fake::start(pdns_fake(state.clone())).await;
        let provider = pdns_with(&fake);
        state.lock().unwrap().racing_writer = Some(theirs.clone());
        assert_eq!(
            provider.add(&rec(OWNER, 3600, &ours)).await.unwrap(),
            Change::Added
        );
        assert_eq!(state.lock().unwrap().records, [other, theirs, ours]);
        let writes = fake.writes();
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert_eq!(writes[1].body["rrsets"][0]["changetype"], "REPLACE");
    });
}

#[test]
fn powerdns_uses_extend_and_prune_where_the_server_has_them() {
    rt().block_on(async {
        for version in ["4.9.12", "5.0.2", "5.1.0"] {
            let (ours, other) = (tlsa("ab"), tlsa("0f"));
            let state = pdns_state(version, std::slice::from_ref(&other));
            let fake = Fake::start(pdns_fake(state.clone())).await;
            let provider = pdns_with(&fake);
            // A writer racing ours cannot lose its record: EXTEND names only ours.
            state.lock().unwrap().racing_writer = Some(tlsa("77"));
            assert_eq!(
                provider.add(&rec(OWNER, 3600, &ours)).await.unwrap(),
                Change::Added
            );
            assert_eq!(
                provider.remove(&rec(OWNER, 3600, &ours)).await.unwrap(),
                Change::Removed
            );
            assert_eq!(
                state.lock().unwrap().records,
                [other.clone(), tlsa("77")],
                "{version}"
            );
            let writes = fake.writes();
            let kinds: Vec<&str> = writes
                .iter()
                .map(|w| w.body["rrsets"][0]["changetype"].as_str().unwrap())
                .collect();
            assert_eq!(kinds, ["EXTEND", "EXTEND", "PRUNE"], "{version}");
            for w in &writes {
                let records = w.body["rrsets"][0]["records"].as_array().unwrap();
                assert_eq!(records.len(), 1, "{version}: {w:?}");
                assert_eq!(records[0]["content"], ours.as_str());
            }
            let version_asks = fake
                .requests()
                .iter()
                .filter(|r| r.path == "/api/v1/servers/localhost")
                .count();
            assert_eq!(version_asks, 1, "the version is asked once");
        }
    });
}
