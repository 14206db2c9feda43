//! The `transip` provider against a fake of TransIP's REST API v6: the fake verifies the
//! `Signature` of `POST /auth` (RSA-SHA512 of the body) with the account's public key before it
//! hands out a token, checks the documented shapes (`dnsEntry` with name, expire, type,
//! content), and removes exactly the entry it is given.

mod http_fake;

use std::sync::{Arc, Mutex};

use dane_roll_providers::transip::{self, Credentials};
use dane_roll_providers::{Change, Provider, ProviderError, Secret};
use http_fake::*;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde_json::{Value, json};

const LOGIN: &str = "postmaster";
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.transip-token";

#[derive(Default)]
struct State {
    entries: Vec<Value>,
    auths: usize,
    read_only_key: bool,
    faults: Vec<Answer>,
}

fn fake(state: Arc<Mutex<State>>, public: PKey<openssl::pkey::Public>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        if !st.faults.is_empty() {
            return st.faults.remove(0);
        }
        if req.path == "/v6/auth" {
            st.auths += 1;
            let b = &req.body;
            assert_eq!(b["login"], LOGIN);
            assert_eq!(b["read_only"], false);
            assert!(
                b["nonce"]
                    .as_str()
                    .is_some_and(|n| (6..=32).contains(&n.len())),
                "{b}"
            );
            assert!(
                b["expiration_time"].is_string()
                    && b["label"].is_string()
                    && b["global_key"].is_boolean(),
                "{b}"
            );
            let signature = openssl::base64::decode_block(
                req.headers.get("signature").map_or("", String::as_str),
            )
            .unwrap_or_default();
            let mut verifier = Verifier::new(MessageDigest::sha512(), &public).unwrap();
            verifier.update(req.raw_body.as_bytes()).unwrap();
            if !verifier.verify(&signature).unwrap_or(false) {
                return json_answer(
                    401,
                    json!({"error": "Provided signature is not valid for the body"}),
                );
            }
            return json_answer(201, json!({"token": TOKEN}));
        }
        if req.headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}"))
        {
            return json_answer(401, json!({"error": "Your access token is invalid"}));
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v6/domains/example.com") => {
                json_answer(200, json!({"domain": {"name": "example.com"}}))
            }
            ("GET", p) if p.starts_with("/v6/domains/") && !p.ends_with("/dns") => {
                json_answer(404, json!({"error": "Domain not found"}))
            }
            ("GET", "/v6/domains/example.com/dns") => {
                let mut all = st.entries.clone();
                all.push(json!({"name": "@", "expire": 86400, "type": "MX", "content": "10 mail.example.com."}));
                json_answer(200, json!({"dnsEntries": all}))
            }
            ("POST" | "DELETE", "/v6/domains/example.com/dns") if st.read_only_key => json_answer(
                403,
                json!({"error": "This action is not allowed in read only mode"}),
            ),
            ("POST", "/v6/domains/example.com/dns") => {
                let e = &req.body["dnsEntry"];
                assert_eq!(e["type"], "TLSA");
                assert_eq!(e["name"], "_25._tcp.mail");
                assert!(e["expire"].is_u64() && e["content"].is_string(), "{e}");
                st.entries.push(e.clone());
                json_answer(201, Value::Null)
            }
            ("DELETE", "/v6/domains/example.com/dns") => {
                let e = &req.body["dnsEntry"];
                let before = st.entries.len();
                st.entries.retain(|x| x != e);
                if st.entries.len() == before {
                    json_answer(404, json!({"error": "Dns entry not found"}))
                } else {
                    json_answer(204, Value::Null)
                }
            }
            _ => json_answer(404, json!({"error": "not found"})),
        }
    })
}

fn entry(byte: &str, expire: u64) -> Value {
    json!({"name": "_25._tcp.mail", "expire": expire, "type": "TLSA", "content": tlsa(byte)})
}

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn pem(key: &PKey<Private>) -> String {
    String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap()
}

async fn start(key: &PKey<Private>) -> (Fake, Arc<Mutex<State>>) {
    let st = Arc::new(Mutex::new(State {
        entries: vec![entry("0f", 3600)],
        ..State::default()
    }));
    let public = PKey::public_key_from_pem(&key.public_key_to_pem().unwrap()).unwrap();
    (Fake::start(fake(st.clone(), public)).await, st)
}

fn provider(fake: &Fake, key: &PKey<Private>) -> Provider {
    Provider::Transip(
        transip::Transip::new(
            Credentials {
                login: LOGIN.into(),
                private_key: Secret::new(pem(key)),
                global_key: false,
            },
            None,
            Some(&fake.url("/v6")),
            quick(),
        )
        .unwrap(),
    )
}

#[test]
fn transip_adds_and_removes_one_entry_with_a_signed_login() {
    rt().block_on(async {
        let key = key();
        let (fake, st) = start(&key).await;
        let p = provider(&fake, &key);
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
        assert_eq!(
            st.lock().unwrap().entries,
            [entry("0f", 3600)],
            "only our entry went"
        );
        assert_eq!(
            st.lock().unwrap().auths,
            1,
            "one token for the provider's lifetime"
        );
        assert!(!format!("{p:?}").contains("PRIVATE KEY"));
    });
}

#[test]
fn transip_errors_are_clear() {
    rt().block_on(async {
        let key = key();
        let (fake, st) = start(&key).await;
        // Another key than the account's: the signature does not verify.
        let err = provider(&fake, &self::key()).list(OWNER).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(err.to_string().contains("whitelisted"), "{err}");
        // Not a key at all: said before anything is sent.
        let err = transip::Transip::new(
            Credentials {
                login: LOGIN.into(),
                private_key: Secret::new("not a key"),
                global_key: false,
            },
            None,
            Some(&fake.url("/v6")),
            quick(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("PEM"), "{err}");

        let p = provider(&fake, &key);
        let err = p.list("_25._tcp.mail.example.org.").await.unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");
        st.lock().unwrap().read_only_key = true;
        let err = p.add(&rec(OWNER, 3600, &tlsa("ab"))).await.unwrap_err();
        assert!(matches!(err, ProviderError::Forbidden { .. }), "{err}");
        assert!(!format!("{err}").contains(TOKEN));
        st.lock().unwrap().read_only_key = false;

        let no_entries: fn() -> Answer = || json_answer(200, json!({"domain": "example.com"}));
        for (what, broken) in broken_bodies()
            .into_iter()
            .chain([("no \"dnsEntries\"", no_entries)])
        {
            st.lock().unwrap().faults.push(broken());
            let err = p.remove(&rec(OWNER, 3600, &tlsa("0f"))).await.unwrap_err();
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{what}: {err}"
            );
        }
        assert_eq!(st.lock().unwrap().entries.len(), 1);
        st.lock().unwrap().faults.push(Answer {
            status: 429,
            headers: vec![("retry-after".into(), "600".into())],
            body: Body::Json(json!({"error": "Rate limit exceeded"})),
        });
        let err = p.list(OWNER).await.unwrap_err();
        assert!(matches!(err, ProviderError::RateLimited { .. }), "{err}");
    });
}
