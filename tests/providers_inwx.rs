//! The `inwx` provider against a fake of INWX's DomRobot JSON-RPC API: the fake checks the
//! documented call shapes (`{"method", "params"}`, the `domrobot` session cookie,
//! `nameserver.info`/`createRecord`/`deleteRecord`), and for an account with two-factor
//! authentication recomputes the TOTP code itself (RFC 6238 with its own HMAC-SHA1) before
//! `account.unlock` lets the session work.

mod http_fake;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use dane_roll_providers::inwx::{self, Credentials};
use dane_roll_providers::{Change, Provider, ProviderError, Secret};
use hmac::{Hmac, Mac};
use http_fake::*;
use serde_json::{Value, json};
use sha1::Sha1;

const USER: &str = "postmaster";
const PASSWORD: &str = "inwx-password-0123456789";
/// The TOTP secret, base32 `JBSWY3DPEHPK3PXP`, as bytes.
const TOTP_BYTES: &[u8] = b"Hello!\xde\xad\xbe\xef";
const COOKIE: &str = "domrobot=5a3c0ffee";

#[derive(Default)]
struct State {
    records: BTreeMap<i64, Value>,
    next_id: i64,
    /// The account has two-factor authentication.
    tfa: bool,
    unlocked: bool,
    logins: usize,
    faults: Vec<Answer>,
}

fn rpc(code: i64, msg: &str, data: Value) -> Answer {
    let mut body = json!({"code": code, "msg": msg});
    if !data.is_null() {
        body["resData"] = data;
    }
    json_answer(200, body)
}

/// RFC 6238 with SHA-1, 6 digits, 30 s steps: the code for step `step`.
fn totp(step: u64) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(TOTP_BYTES).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let value = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    format!("{:06}", value % 1_000_000)
}

fn fake(state: Arc<Mutex<State>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        if !st.faults.is_empty() {
            return st.faults.remove(0);
        }
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/jsonrpc/")
        );
        let method = req.body["method"].as_str().expect("method").to_owned();
        let p = &req.body["params"];
        let cookie = req.headers.get("cookie").cloned().unwrap_or_default();
        match method.as_str() {
            "account.login" => {
                st.logins += 1;
                let user = p["user"].as_str().unwrap_or_default();
                if p["pass"] != PASSWORD || user != USER {
                    return rpc(2200, "Authentication error", Value::Null);
                }
                let mut answer = rpc(
                    1000,
                    "Command completed successfully",
                    json!({"customerId": 1, "tfa": if st.tfa { "GOOGLE-AUTH" } else { "0" }}),
                );
                answer.headers.push((
                    "set-cookie".into(),
                    format!("{COOKIE}; path=/; secure; HttpOnly"),
                ));
                st.unlocked = !st.tfa;
                return answer;
            }
            "account.unlock" => {
                assert_eq!(cookie, COOKIE);
                let step = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
                    / 30;
                let tan = p["tan"].as_str().unwrap_or_default();
                if tan == totp(step) || tan == totp(step - 1) {
                    st.unlocked = true;
                    return rpc(1000, "Command completed successfully", Value::Null);
                }
                return rpc(2200, "Authentication error", Value::Null);
            }
            _ => {}
        }
        if cookie != COOKIE || !st.unlocked {
            return rpc(2200, "Authentication error", Value::Null);
        }
        match method.as_str() {
            "nameserver.info" => {
                if p["domain"] != "example.com" {
                    return rpc(2303, "Object does not exist", Value::Null);
                }
                let mut data = json!({"roId": 7, "domain": "example.com", "type": "MASTER"});
                if p["type"] == "TLSA" {
                    assert_eq!(p["name"], OWNER.trim_end_matches('.'), "{p}");
                    let records: Vec<Value> = st
                        .records
                        .values()
                        .filter(|r| r["name"] == p["name"])
                        .cloned()
                        .collect();
                    if !records.is_empty() {
                        data["record"] = json!(records);
                    }
                }
                rpc(1000, "Command completed successfully", data)
            }
            "nameserver.createRecord" => {
                // A role without the right to change records (the test's marker: data ending dd).
                if p["content"].as_str().is_some_and(|c| c.ends_with("dd")) {
                    return rpc(2201, "Authorization failed", Value::Null);
                }
                assert_eq!(p["domain"], "example.com");
                assert_eq!(p["type"], "TLSA");
                assert!(p["ttl"].as_u64().is_some_and(|t| t >= 300), "{p}");
                if st
                    .records
                    .values()
                    .any(|r| r["name"] == p["name"] && r["content"] == p["content"])
                {
                    return rpc(2302, "Object exists", Value::Null);
                }
                st.next_id += 1;
                let id = st.next_id;
                st.records.insert(id, json!({"id": id, "name": p["name"], "type": "TLSA", "content": p["content"], "ttl": p["ttl"], "prio": 0}));
                rpc(1000, "Command completed successfully", json!({"id": id}))
            }
            "nameserver.deleteRecord" => {
                let id = p["id"].as_i64().expect("id");
                match st.records.remove(&id) {
                    Some(_) => rpc(1000, "Command completed successfully", Value::Null),
                    None => rpc(2303, "Object does not exist", Value::Null),
                }
            }
            other => rpc(2000, &format!("Unknown command {other}"), Value::Null),
        }
    })
}

fn record(id: i64, byte: &str) -> Value {
    json!({"id": id, "name": OWNER.trim_end_matches('.'), "type": "TLSA", "content": tlsa(byte), "ttl": 3600, "prio": 0})
}

fn start_state(tfa: bool) -> Arc<Mutex<State>> {
    Arc::new(Mutex::new(State {
        records: [(1, record(1, "0f"))].into_iter().collect(),
        next_id: 100,
        tfa,
        ..State::default()
    }))
}

fn provider(fake: &Fake, user: &str, password: &str, totp: Option<&str>) -> Provider {
    Provider::Inwx(
        inwx::Inwx::new(
            Credentials {
                user: user.into(),
                password: Secret::new(password),
                totp: totp.map(Secret::new),
            },
            None,
            Some(&fake.url("/jsonrpc/")),
            quick(),
        )
        .unwrap(),
    )
}

#[test]
fn inwx_adds_and_removes_one_record_in_one_session() {
    rt().block_on(async {
        let st = start_state(false);
        let fake = Fake::start(fake(st.clone())).await;
        let p = provider(&fake, USER, PASSWORD, None);
        let ours = rec(OWNER, 300, &tlsa("ab"));
        let report = p.publish(&ours).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(
            report.ttl.as_ref().map(|n| n.served),
            Some(3600),
            "added with the RRset's TTL"
        );
        assert_eq!(p.add(&ours).await.unwrap(), Change::AlreadyPresent);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        let left: Vec<i64> = st.lock().unwrap().records.keys().copied().collect();
        assert_eq!(left, [1], "only our record went");
        assert_eq!(
            st.lock().unwrap().logins,
            1,
            "one session for the provider's lifetime"
        );
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| r.body["method"] == "nameserver.info" && r.body["params"]["type"] == "SOA")
            .count();
        assert_eq!(
            lookups, 4,
            "the zone is looked up once, walking up from the owner"
        );
        for r in fake.requests() {
            assert_eq!(
                r.headers.get("content-type").map(String::as_str),
                Some("application/json")
            );
        }
        assert!(!format!("{p:?}").contains(PASSWORD));
    });
}

#[test]
fn inwx_two_factor_accounts_unlock_with_the_totp_code() {
    rt().block_on(async {
        let st = start_state(true);
        let fake = Fake::start(fake(st.clone())).await;
        let p = provider(&fake, USER, PASSWORD, Some("jbsw y3dp ehpk 3pxp"));
        assert_eq!(p.list(OWNER).await.unwrap().len(), 1);
        let unlock = fake
            .requests()
            .into_iter()
            .find(|r| r.body["method"] == "account.unlock");
        assert!(unlock.is_some(), "account.unlock sent");

        // Without the secret: said what to set.
        let err = provider(&fake, USER, PASSWORD, None)
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(err.to_string().contains("totp-secret"), "{err}");
        // A wrong secret: refused, explained, not shown.
        let err = provider(&fake, USER, PASSWORD, Some("KRSXG5CTMVRXEZLU"))
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TOTP"), "{err}");
        assert!(!format!("{err:?}").contains("KRSXG5CTMVRXEZLU"));
        // Not base32: an error before anything is sent.
        assert!(
            inwx::Inwx::new(
                Credentials {
                    user: USER.into(),
                    password: Secret::new(PASSWORD),
                    totp: Some(Secret::new("not base32!"))
                },
                None,
                Some(&fake.url("/jsonrpc/")),
                quick()
            )
            .is_err()
        );
    });
}

#[test]
fn inwx_errors_are_clear() {
    rt().block_on(async {
        let st = start_state(false);
        let fake = Fake::start(fake(st.clone())).await;
        let err = provider(&fake, USER, "wrong-password-xyz", None)
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(!format!("{err} {err:?}").contains("wrong-password-xyz"));

        let err = provider(&fake, USER, PASSWORD, None)
            .list("_25._tcp.mail.example.org.")
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");

        let p = provider(&fake, USER, PASSWORD, None);
        // A new RRset with a TTL INWX refuses (an existing one lends its TTL: see lib.rs).
        let kept = std::mem::take(&mut st.lock().unwrap().records);
        let err = p.add(&rec(OWNER, 60, &tlsa("ab"))).await.unwrap_err();
        assert!(matches!(err, ProviderError::Ttl { ttl: 60, .. }), "{err}");
        st.lock().unwrap().records = kept;
        let err = p.add(&rec(OWNER, 3600, &tlsa("dd"))).await.unwrap_err();
        assert!(matches!(err, ProviderError::Forbidden { .. }), "{err}");

        // Unreadable answers: errors, nothing written.
        let not_about_the_zone: fn() -> Answer =
            || rpc(1000, "Command completed successfully", json!({}));
        for (what, broken) in broken_bodies()
            .into_iter()
            .chain([("resData without record or domain", not_about_the_zone)])
        {
            st.lock().unwrap().faults.push(broken());
            let before = st.lock().unwrap().records.len();
            let err = p.remove(&rec(OWNER, 3600, &tlsa("0f"))).await.unwrap_err();
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{what}: {err}"
            );
            assert_eq!(st.lock().unwrap().records.len(), before, "{what}");
        }
        st.lock().unwrap().faults.push(Answer {
            status: 429,
            headers: vec![("retry-after".into(), "3600".into())],
            body: Body::Json(json!({"code": 2502, "msg": "Rate limit exceeded"})),
        });
        let err = p.list(OWNER).await.unwrap_err();
        assert!(matches!(err, ProviderError::RateLimited { .. }), "{err}");
    });
}
