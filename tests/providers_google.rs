//! The `google` provider against a fake of Google Cloud DNS v1 and its OAuth token endpoint:
//! the fake verifies the service account's JWT (RS256, with the public key, by OpenSSL here)
//! before it hands out a token, checks the documented shapes (`managedZones?dnsName=`,
//! `rrsets?name=&type=` with `nextPageToken`, `changes` with `deletions`/`additions`), and
//! applies a change all or nothing, refusing a deletion that does not match (412).

mod http_fake;

use std::sync::{Arc, Mutex};

use dane_roll_providers::{Change, Provider, ProviderError, Secret, google};
use http_fake::*;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use serde_json::{Value, json};

const EMAIL: &str = "dane-roll@proj-1.iam.gserviceaccount.com";
const READER: &str = "reader@proj-1.iam.gserviceaccount.com";
const TOKEN: &str = "ya29.fake-access-token";
const READER_TOKEN: &str = "ya29.reader-token";

#[derive(Default)]
struct State {
    rrset: Option<(u64, Vec<String>)>,
    racing_writer: Option<String>,
    tokens: usize,
    faults: Vec<Answer>,
}

fn b64url(text: &str) -> Vec<u8> {
    let mut t = text.replace('-', "+").replace('_', "/");
    while !t.len().is_multiple_of(4) {
        t.push('=');
    }
    openssl::base64::decode_block(&t).unwrap()
}

fn verify_jwt(jwt: &str, public: &PKey<Public>, aud: &str) -> Option<String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts[..] else { return None };
    let header: Value = serde_json::from_slice(&b64url(h)).ok()?;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "key-id-1");
    let claims: Value = serde_json::from_slice(&b64url(c)).ok()?;
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/ndev.clouddns.readwrite"
    );
    assert_eq!(claims["aud"], aud);
    assert_eq!(claims["exp"].as_u64()? - claims["iat"].as_u64()?, 3600);
    let mut verifier = Verifier::new(MessageDigest::sha256(), public).unwrap();
    verifier.update(format!("{h}.{c}").as_bytes()).unwrap();
    verifier
        .verify(&b64url(s))
        .ok()?
        .then(|| claims["iss"].as_str().unwrap().to_owned())
}

fn fake(state: Arc<Mutex<State>>, public: PKey<Public>, base: Arc<Mutex<String>>) -> Handler {
    Box::new(move |req: &Request| {
        let mut st = state.lock().unwrap();
        if !st.faults.is_empty() {
            return st.faults.remove(0);
        }
        if req.path == "/token" {
            assert_eq!(
                req.headers["content-type"],
                "application/x-www-form-urlencoded"
            );
            assert_eq!(req.query.len(), 0);
            let form: Vec<(&str, &str)> = req
                .raw_body
                .split('&')
                .filter_map(|p| p.split_once('='))
                .collect();
            assert_eq!(
                form[0],
                (
                    "grant_type",
                    "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                )
            );
            let aud = format!("{}/token", base.lock().unwrap());
            return match verify_jwt(form[1].1, &public, &aud) {
                Some(iss) => {
                    st.tokens += 1;
                    let token = if iss == READER { READER_TOKEN } else { TOKEN };
                    json_answer(
                        200,
                        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
                    )
                }
                None => json_answer(
                    400,
                    json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
                ),
            };
        }
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        if auth != format!("Bearer {TOKEN}") && auth != format!("Bearer {READER_TOKEN}") {
            return json_answer(
                401,
                json!({"error": {"code": 401, "message": "Request had invalid authentication credentials."}}),
            );
        }
        let project = "/dns/v1/projects/proj-1";
        let zone = format!("{project}/managedZones/example-com");
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", p) if p == format!("{project}/managedZones") => {
                let zones = if req.query["dnsName"] == "example.com." {
                    json!([{"name": "example-com-internal", "dnsName": "example.com.", "visibility": "private"},
                           {"name": "example-com", "dnsName": "example.com.", "visibility": "public", "dnssecConfig": {"state": "on"}}])
                } else {
                    json!([])
                };
                json_answer(
                    200,
                    json!({"kind": "dns#managedZonesListResponse", "managedZones": zones}),
                )
            }
            ("GET", p)
                if p.starts_with(&format!("{project}/managedZones/")) && !p.starts_with(&zone) =>
            {
                json_answer(
                    404,
                    json!({"error": {"code": 404, "message": "The 'parameters.managedZone' resource named 'x' does not exist."}}),
                )
            }
            ("GET", p) if p == format!("{zone}/rrsets") => {
                assert_eq!(req.query["name"], OWNER);
                assert_eq!(req.query["type"], "TLSA");
                // Two pages: the first empty, with a token for the second.
                if !req.query.contains_key("pageToken") {
                    return json_answer(200, json!({"rrsets": [], "nextPageToken": "page-2"}));
                }
                let sets = match &st.rrset {
                    Some((ttl, values)) => {
                        json!([{"name": OWNER, "type": "TLSA", "ttl": ttl, "rrdatas": values}])
                    }
                    None => json!([]),
                };
                json_answer(200, json!({"rrsets": sets}))
            }
            ("POST", p) if p == format!("{zone}/changes") => {
                if auth == format!("Bearer {READER_TOKEN}") {
                    return json_answer(
                        403,
                        json!({"error": {"code": 403, "message": "Forbidden", "errors": [{"reason": "forbidden"}]}}),
                    );
                }
                if let Some(theirs) = st.racing_writer.take() {
                    st.rrset.as_mut().unwrap().1.push(theirs);
                }
                let set = |v: &Value| {
                    assert_eq!(v["name"], OWNER);
                    assert_eq!(v["type"], "TLSA");
                    let values: Vec<String> = v["rrdatas"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().to_owned())
                        .collect();
                    (v["ttl"].as_u64().unwrap(), values)
                };
                let mut next = st.rrset.clone();
                for d in req.body["deletions"].as_array().into_iter().flatten() {
                    if next != Some(set(d)) {
                        return json_answer(
                            412,
                            json!({"error": {"code": 412, "message": "Precondition not met for 'entity.change.deletions[0]'", "errors": [{"reason": "conditionNotMet"}]}}),
                        );
                    }
                    next = None;
                }
                for a in req.body["additions"].as_array().into_iter().flatten() {
                    if next.is_some() {
                        return json_answer(
                            409,
                            json!({"error": {"code": 409, "message": "The resource 'entity.change.additions[0]' already exists", "errors": [{"reason": "alreadyExists"}]}}),
                        );
                    }
                    next = Some(set(a));
                }
                st.rrset = next;
                json_answer(
                    200,
                    json!({"kind": "dns#change", "id": "1", "status": "pending"}),
                )
            }
            _ => json_answer(404, json!({"error": {"code": 404, "message": "not found"}})),
        }
    })
}

fn credentials(key: &PKey<Private>, email: &str, token_uri: &str) -> Secret {
    let pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    Secret::new(
        json!({"type": "service_account", "project_id": "proj-1", "private_key_id": "key-id-1",
               "private_key": pem, "client_email": email, "token_uri": token_uri})
        .to_string(),
    )
}

async fn start() -> (Fake, Arc<Mutex<State>>, PKey<Private>) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let public = PKey::public_key_from_pem(&key.public_key_to_pem().unwrap()).unwrap();
    let st = Arc::new(Mutex::new(State {
        rrset: Some((3600, vec![tlsa("0f")])),
        ..State::default()
    }));
    let base = Arc::new(Mutex::new(String::new()));
    let fake = Fake::start(fake(st.clone(), public, base.clone())).await;
    *base.lock().unwrap() = format!("http://{}", fake.addr);
    (fake, st, key)
}

fn provider(fake: &Fake, key: &PKey<Private>, email: &str, zone: Option<&str>) -> Provider {
    Provider::Google(
        google::Google::new(
            &credentials(key, email, &fake.url("/token")),
            None,
            zone,
            Some(&fake.url("/dns/v1")),
            quick(),
        )
        .unwrap(),
    )
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
fn google_adds_and_removes_one_record_with_guarded_changes() {
    rt().block_on(async {
        let (fake, st, key) = start().await;
        let p = provider(&fake, &key, EMAIL, None);
        let ours = rec(OWNER, 300, &tlsa("ab"));
        let report = p.publish(&ours).await.unwrap();
        assert_eq!(report.change, Change::Added);
        assert_eq!(
            report.ttl.as_ref().map(|n| n.served),
            Some(3600),
            "the RRset keeps its TTL"
        );
        assert_eq!(values(&st), [tlsa("0f"), tlsa("ab")]);
        let change = fake
            .writes()
            .into_iter()
            .find(|r| r.path.ends_with("/changes"))
            .unwrap();
        assert_eq!(
            change.body["deletions"][0]["rrdatas"],
            json!([tlsa("0f")]),
            "the RRset as read"
        );
        assert_eq!(p.add(&ours).await.unwrap(), Change::AlreadyPresent);
        assert_eq!(p.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(values(&st), [tlsa("0f")], "only our record went");
        assert_eq!(
            st.lock().unwrap().tokens,
            1,
            "one token for the provider's lifetime"
        );
        let lookups = fake
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/managedZones"))
            .count();
        assert_eq!(
            lookups, 4,
            "the zone is looked up once, walking up from the owner"
        );
        assert!(!format!("{p:?}").contains("PRIVATE KEY"));

        // A concurrent writer: our change is refused (412), read again, and theirs kept.
        st.lock().unwrap().racing_writer = Some(tlsa("77"));
        assert_eq!(p.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(values(&st), [tlsa("0f"), tlsa("77"), tlsa("ab")]);
    });
}

#[test]
fn google_errors_are_clear() {
    rt().block_on(async {
        let (fake, st, key) = start().await;
        // A key Google does not know (another key pair): the JWT does not verify.
        let other = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let err = provider(&fake, &other, EMAIL, None)
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        // Not a service account key: said before anything is sent.
        let err = google::Google::new(
            &Secret::new("{\"type\": \"authorized_user\"}"),
            None,
            None,
            None,
            quick(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("service_account"), "{err}");

        let err = provider(&fake, &key, READER, None)
            .add(&rec(OWNER, 300, &tlsa("ab")))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Forbidden { .. }), "{err}");
        assert!(err.to_string().contains("roles/dns.admin"), "{err}");
        let err = provider(&fake, &key, EMAIL, Some("no-such-zone"))
            .list(OWNER)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");
        let err = provider(&fake, &key, EMAIL, None)
            .list("_25._tcp.mail.example.org.")
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");

        let p = provider(&fake, &key, EMAIL, Some("example-com"));
        p.list(OWNER).await.unwrap();
        let no_rrsets: fn() -> Answer =
            || json_answer(200, json!({"kind": "dns#resourceRecordSetsListResponse"}));
        for (what, broken) in broken_bodies()
            .into_iter()
            .chain([("no \"rrsets\"", no_rrsets)])
        {
            st.lock().unwrap().faults.push(broken());
            let before = fake.writes().len();
            let err = p.remove(&rec(OWNER, 3600, &tlsa("0f"))).await.unwrap_err();
            assert!(
                matches!(err, ProviderError::BadReply { .. }),
                "{what}: {err}"
            );
            assert_eq!(fake.writes().len(), before, "{what}");
        }
        st.lock().unwrap().faults.push(Answer {
            status: 429,
            headers: vec![("retry-after".into(), "120".into())],
            body: Body::Json(json!({"error": {"code": 429, "message": "Quota exceeded"}})),
        });
        let err = p.list(OWNER).await.unwrap_err();
        assert!(matches!(err, ProviderError::RateLimited { .. }), "{err}");
        assert_eq!(values(&st), [tlsa("0f")]);
    });
}
