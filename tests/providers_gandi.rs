//! The `gandi` provider against a fake of Gandi LiveDNS v5 (<https://api.gandi.net/docs/livedns/>):
//! the fake checks the documented request shapes (`Authorization: Bearer` with a personal access
//! token, `GET`/`PUT`/`DELETE /domains/{fqdn}/records/{name}/TLSA` with `rrset_ttl` and
//! `rrset_values`), keeps other writers' records and answers errors as Gandi does.

mod http_fake;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dane_roll_providers::{Change, Provider, ProviderError, Secret, gandi};
use http_fake::*;
use serde_json::{Value, json};

const TOKEN: &str = "gandi-pat-0123456789abcdef";
const NO_RIGHTS: &str = "gandi-pat-without-dns-rights";
const RRSET: &str = "/v5/livedns/domains/example.com/records/_25._tcp.mail/TLSA";

#[derive(Default)]
struct State {
    /// The RRset's TTL and values; `None`: no RRset.
    rrset: Option<(u64, Vec<String>)>,
    faults: Vec<Answer>,
    /// RRset reads answered with a broken body (after the first).
    broken_get: Option<fn() -> Answer>,
    gets: usize,
    /// A writer that adds its record just before our next PUT is answered 503.
    racing_writer: Option<String>,
}

fn gandi_error(status: u16, message: &str) -> Answer {
    json_answer(
        status,
        json!({"code": status, "message": message, "object": "HTTPError", "cause": message}),
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
        let no_rights = auth == format!("Bearer {NO_RIGHTS}");
        if auth != format!("Bearer {TOKEN}") && !no_rights {
            return gandi_error(
                401,
                "The server could not verify that you authorized to access the document you requested.",
            );
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v5/livedns/domains/example.com") => json_answer(
                200,
                json!({"fqdn": "example.com", "automatic_snapshots": true}),
            ),
            ("GET", p) if p.starts_with("/v5/livedns/domains/") && !p.contains("/records") => {
                gandi_error(404, "The resource could not be found.")
            }
            ("GET", RRSET) => {
                st.gets += 1;
                if let Some(broken) = st.broken_get
                    && st.gets > 1
                {
                    return broken();
                }
                match &st.rrset {
                    None => gandi_error(404, "The resource could not be found."),
                    Some((ttl, values)) => json_answer(
                        200,
                        json!({"rrset_name": "_25._tcp.mail", "rrset_type": "TLSA", "rrset_ttl": ttl,
                               "rrset_values": values, "rrset_href": format!("https://api.gandi.net{RRSET}")}),
                    ),
                }
            }
            ("PUT", RRSET) | ("DELETE", RRSET) if no_rights => {
                gandi_error(403, "Access was denied to this resource.")
            }
            ("PUT", RRSET) => {
                if let Some(theirs) = st.racing_writer.take() {
                    st.rrset.as_mut().unwrap().1.push(theirs);
                    return gandi_error(503, "Service Unavailable");
                }
                let ttl = req.body["rrset_ttl"].as_u64().expect("rrset_ttl");
                let values: Vec<String> = req.body["rrset_values"]
                    .as_array()
                    .expect("rrset_values")
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                assert!(!values.is_empty(), "an empty RRset is deleted, not written");
                if let Some((old, _)) = &st.rrset {
                    assert_eq!(ttl, *old, "an existing RRset keeps its TTL");
                }
                st.rrset = Some((ttl, values));
                json_answer(201, json!({"message": "DNS Record Created"}))
            }
            ("DELETE", RRSET) => {
                st.rrset = None;
                json_answer(204, Value::Null)
            }
            _ => gandi_error(404, "The resource could not be found."),
        }
    })
}

fn provider(fake: &Fake, token: &str) -> Provider {
    Provider::Gandi(
        gandi::Gandi::new(
            Secret::new(token),
            None,
            Some(&fake.url("/v5/livedns")),
            quick(),
        )
        .unwrap(),
    )
}

fn state(values: &[String], ttl: u64) -> Arc<Mutex<State>> {
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
fn gandi_adds_and_removes_one_record_beside_others() {
    rt().block_on(async {
        let other = tlsa("0f");
        let st = state(std::slice::from_ref(&other), 10800);
        let fake = Fake::start(fake(st.clone())).await;
        let p = provider(&fake, TOKEN);
        let ours = rec(OWNER, 300, &tlsa("ab"));

        let report = p.publish(&ours).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(report.ttl.as_ref().map(|n| n.served), Some(10800));
        assert_eq!(values(&st), [other.clone(), tlsa("ab")]);
        assert_eq!(p.add(&ours).await.unwrap(), Change::AlreadyPresent);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        assert_eq!(values(&st), [other], "only our record went");
        for r in fake.requests() {
            assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
        }
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| !r.path.contains("/records"))
            .count();
        assert_eq!(
            lookups, 4,
            "the domain is looked up once, walking up from the owner"
        );

        // Our record the last one: the RRset is deleted, then created again with our TTL.
        st.lock().unwrap().rrset = Some((3600, vec![tlsa("ab")]));
        assert_eq!(p.remove(&ours).await.unwrap(), Change::Removed);
        assert!(st.lock().unwrap().rrset.is_none());
        assert_eq!(p.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(st.lock().unwrap().rrset.as_ref().unwrap().0, 300);
    });
}

#[test]
fn gandi_retried_write_reads_again_and_keeps_the_racing_writers_record() {
    rt().block_on(async {
        let other = tlsa("0f");
        let st = state(std::slice::from_ref(&other), 3600);
        let theirs = tlsa("77");
        st.lock().unwrap().racing_writer = Some(theirs.clone());
        let fake = Fake::start(fake(st.clone())).await;
        let p = provider(&fake, TOKEN);
        assert_eq!(
            p.add(&rec(OWNER, 3600, &tlsa("ab"))).await.unwrap(),
            Change::Added
        );
        assert_eq!(values(&st), [other, theirs, tlsa("ab")]);
    });
}

#[test]
fn gandi_errors_are_clear() {
    rt().block_on(async {
        let st = state(&[tlsa("0f")], 3600);
        let fake = Fake::start(fake(st.clone())).await;
        let ours = rec(OWNER, 3600, &tlsa("ab"));

        let err = provider(&fake, "wrong-token-xyz")
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("wrong-token-xyz"));

        let err = provider(&fake, NO_RIGHTS).add(&ours).await.unwrap_err();
        assert!(matches!(err, ProviderError::Forbidden { .. }), "{err}");
        assert!(
            err.to_string().contains("technical configurations"),
            "{err}"
        );

        let err = provider(&fake, TOKEN)
            .list("_25._tcp.mail.example.org.")
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");

        let before = fake.writes().len();
        for bad in [60, 299, 2_592_001] {
            let err = provider(&fake, TOKEN)
                .add(&rec(OWNER, bad, &tlsa("ab")))
                .await
                .unwrap_err();
            assert!(matches!(err, ProviderError::Ttl { .. }), "{err}");
        }
        assert_eq!(
            fake.writes().len(),
            before,
            "nothing written with a bad TTL"
        );

        let p = provider(&fake, TOKEN);
        st.lock().unwrap().faults.push(Answer {
            status: 429,
            headers: vec![("retry-after".into(), "1".into())],
            body: Body::Json(json!({"code": 429, "message": "Too Many Requests"})),
        });
        let start = Instant::now();
        p.list(OWNER).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(950));
        st.lock().unwrap().faults.push(Answer {
            status: 429,
            headers: vec![("retry-after".into(), "600".into())],
            body: Body::Json(json!({"code": 429, "message": "Too Many Requests"})),
        });
        let err = p.list(OWNER).await.unwrap_err();
        assert!(matches!(err, ProviderError::RateLimited { .. }), "{err}");
    });
}

#[test]
fn gandi_unreadable_rrset_is_an_error_and_nothing_is_written() {
    let no_values: fn() -> Answer = || {
        json_answer(
            200,
            json!({"rrset_name": "_25._tcp.mail", "rrset_ttl": 3600}),
        )
    };
    for (what, broken) in broken_bodies()
        .into_iter()
        .chain([("no \"rrset_values\"", no_values)])
    {
        rt().block_on(async {
            let ours = tlsa("ab");
            let st = state(&[tlsa("0f"), ours.clone()], 3600);
            st.lock().unwrap().broken_get = Some(broken);
            let fake = Fake::start(fake(st.clone())).await;
            let p = provider(&fake, TOKEN);
            // The first look (is it there?) is sound; the read the write rests on is not.
            let err = p.remove(&rec(OWNER, 3600, &ours)).await.unwrap_err();
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{what}: {err}"
            );
            assert!(fake.writes().is_empty(), "{what}: {:?}", fake.writes());
            assert_eq!(values(&st).len(), 2, "{what}");
        });
    }
}
