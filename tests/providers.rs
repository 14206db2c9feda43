//! The providers against real servers (BIND + Knot for RFC 2136, pdns_server for PowerDNS) and
//! against local fakes that check the documented request shapes (Cloudflare, deSEC), plus the
//! `exec` and `manual` kinds. Safety invariant 4 is asserted throughout: another host's record
//! at the same owner name survives every add and remove.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::require;
use dane_roll_providers::rfc2136::{Rfc2136, TsigKey};
use dane_roll_providers::{
    Change, Provider, ProviderError, Record, RetryPolicy, Secret, Settings, cloudflare, desec,
    exec, manual, powerdns,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIND: &[&str] = dane_roll_lab::tools::BIND_TOOLS;
const KNOT: &[&str] = dane_roll_lab::tools::KNOT_TOOLS;
const PDNS: &[&str] = dane_roll_lab::tools::PDNS_TOOLS;
const WAIT: Duration = Duration::from_secs(20);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tlsa(byte: &str) -> String {
    format!("3 1 1 {}", byte.repeat(32))
}

fn rec(owner: &str, rdata: &str) -> Record {
    Record::new(owner, 300, rdata).unwrap()
}

fn has(list: &[Record], rdata: &str) -> bool {
    list.iter().any(|r| r.rdata == rdata)
}

fn quick() -> Settings {
    Settings {
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_tries: 4,
            max_total: Duration::from_secs(5),
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        },
        readback: Duration::from_secs(10),
    }
}

fn rfc2136(lab: &DnsLab, zone: Option<&str>, key: Option<TsigKey>, settings: Settings) -> Provider {
    Provider::Rfc2136(Rfc2136::new(
        &lab.addr(Server::Bind).to_string(),
        53,
        zone,
        key,
        settings,
    ))
}

fn lab_key(lab: &DnsLab) -> TsigKey {
    let text = std::fs::read_to_string(&lab.tsig().file).unwrap();
    TsigKey::parse(&Secret::new(text)).unwrap()
}

#[test]
fn rfc2136_one_record_at_a_time_against_bind_and_knot() {
    if !require(&[BIND, KNOT].concat()) {
        return;
    }
    let lab = DnsLab::builder()
        .resolver(false)
        .start()
        .expect("lab starts");
    let rt = rt();
    let owner = format!("_25._tcp.{}.", lab.mx_host());
    let provider = rfc2136(&lab, None, Some(lab_key(&lab)), quick());
    let secret = lab.tsig().secret.clone();

    // Another host's record at the same owner name, put there by someone else.
    let other = tlsa("0f");
    lab.add_tlsa(&owner, 300, &other).unwrap();

    rt.block_on(async {
        let ours = rec(&owner, &tlsa("ab"));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);
        let list = provider.list(&owner).await.unwrap();
        assert!(has(&list, &ours.rdata) && has(&list, &other), "{list:?}");
        assert_eq!(provider.add(&ours).await.unwrap(), Change::AlreadyPresent);

        let second = rec(&owner, &tlsa("cd"));
        assert_eq!(provider.add(&second).await.unwrap(), Change::Added);
        assert_eq!(provider.list(&owner).await.unwrap().len(), 3);
    });
    // The secondary gets it by NOTIFY + IXFR.
    lab.wait_served_everywhere(&owner, &tlsa("ab"), WAIT)
        .expect("the record reaches Knot");

    rt.block_on(async {
        let ours = rec(&owner, &tlsa("ab"));
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        let list = provider.list(&owner).await.unwrap();
        assert!(!has(&list, &ours.rdata), "{list:?}");
        assert!(
            has(&list, &other),
            "the other host's record survives: {list:?}"
        );
        assert!(
            has(&list, &tlsa("cd")),
            "our other record survives: {list:?}"
        );
    });
    lab.wait_gone_everywhere(&owner, &tlsa("ab"), WAIT).unwrap();
    let knot = lab.query(lab.addr(Server::Knot), &owner, "TLSA").unwrap();
    assert!(
        knot.contains("TLSA", &other),
        "Knot still serves the other record: {knot:?}"
    );

    rt.block_on(async {
        let record = rec(&owner, &tlsa("ee"));
        let no_secret = |err: &ProviderError| {
            let text = format!("{err} {err:?}");
            assert!(!text.contains(&secret), "secret leaked: {text}");
            text
        };

        // Right name, wrong secret: BADSIG, explained.
        let wrong = TsigKey::parse(&Secret::new(format!(
            "hmac-sha256:{}:{}",
            lab.tsig().name,
            "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE="
        )))
        .unwrap();
        let err = rfc2136(&lab, Some(lab.zone()), Some(wrong), quick())
            .add(&record)
            .await
            .unwrap_err();
        let text = no_secret(&err);
        assert!(matches!(err, ProviderError::TsigBadSig { .. }), "{text}");
        assert!(
            text.contains(
                "the server rejected the TSIG signature: the key secret differs from the server's"
            ),
            "{text}"
        );

        // A key the server does not know: BADKEY.
        let unknown = TsigKey::parse(&Secret::new(
            "hmac-sha256:no-such-key:d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE=",
        ))
        .unwrap();
        let err = rfc2136(&lab, Some(lab.zone()), Some(unknown), quick())
            .add(&record)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::TsigBadKey { .. }), "{err}");
        assert!(err.to_string().contains("no-such-key"), "{err}");

        // No key at all: REFUSED.
        let err = rfc2136(&lab, Some(lab.zone()), None, quick())
            .add(&record)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the server refused the update: check allow-update for this key/zone"),
            "{err}"
        );

        // A zone the server does not serve: the UPDATE gets NOTAUTH ...
        let stray = rec("_25._tcp.mail.nosuch.test.", &tlsa("ee"));
        let direct = Rfc2136::new(
            &lab.addr(Server::Bind).to_string(),
            53,
            Some("nosuch.test"),
            Some(lab_key(&lab)),
            quick(),
        );
        let err = direct.add(&stray).await.unwrap_err();
        let text = no_secret(&err);
        assert!(matches!(err, ProviderError::NotAuth { .. }), "{text}");
        assert!(
            text.contains("not authoritative for zone nosuch.test."),
            "{text}"
        );
        // ... and through the provider, whose listing comes first, the query is REFUSED.
        let err = rfc2136(&lab, Some("nosuch.test"), Some(lab_key(&lab)), quick())
            .add(&stray)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NoZone { .. }), "{err}");
        assert!(err.to_string().contains("not authoritative"), "{err}");

        // Nothing was written by the failures.
        let list = provider.list(&owner).await.unwrap();
        assert!(!has(&list, &tlsa("ee")), "{list:?}");
    });
}

#[test]
fn rfc2136_silent_server_times_out() {
    let rt = rt();
    rt.block_on(async {
        // Accepts connections (the kernel's backlog) and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = Settings {
            timeout: Duration::from_millis(700),
            ..quick()
        };
        let provider = Provider::Rfc2136(Rfc2136::new(
            "127.0.0.1",
            addr.port(),
            Some("example.test"),
            None,
            settings,
        ));
        let start = Instant::now();
        let err = provider
            .list("_25._tcp.mail.example.test.")
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, ProviderError::Timeout { .. }), "{err}");
        assert!(
            took >= Duration::from_millis(650) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert!(err.to_string().contains("no answer within 0.7s"), "{err}");
        drop(listener);
    });
}

#[test]
fn powerdns_merges_and_keeps_other_records() {
    if !require(PDNS) || !require(BIND) {
        return;
    }
    let lab = DnsLab::builder()
        .knot(false)
        .resolver(false)
        .pdns(true)
        .start()
        .expect("lab starts");
    let pdns = lab.pdns().expect("pdns runs");
    let zone = "pdns-example.test.";
    let created = pdns.create_zone(zone, false).unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let owner = format!("_25._tcp.mail.{zone}");
    let other = tlsa("0f");
    let patched = pdns
        .patch_rrset(zone, &owner, "TLSA", 300, &[other.as_str()])
        .unwrap();
    assert_eq!(patched.status, 204, "{}", patched.body);

    let provider = Provider::PowerDns(
        powerdns::PowerDns::new(
            &pdns.api_url(),
            Secret::new(pdns.api_key()),
            "localhost",
            None,
            quick(),
        )
        .unwrap(),
    );
    let rt = rt();
    rt.block_on(async {
        let ours = rec(&owner, &tlsa("ab"));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(provider.add(&ours).await.unwrap(), Change::AlreadyPresent);
        let list = provider.list(&owner).await.unwrap();
        assert!(has(&list, &ours.rdata) && has(&list, &other), "{list:?}");
        assert_eq!(list.len(), 2);

        assert_eq!(provider.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        let list = provider.list(&owner).await.unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        assert!(has(&list, &other), "the other record survives: {list:?}");

        let wrong = Provider::PowerDns(
            powerdns::PowerDns::new(
                &pdns.api_url(),
                Secret::new("not-the-key"),
                "localhost",
                Some(zone),
                quick(),
            )
            .unwrap(),
        );
        let err = wrong.add(&ours).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(err.to_string().contains("HTTP 401"), "{err}");
        assert!(!format!("{err:?}").contains("not-the-key"));
    });
    // The real DNS side agrees.
    let answer = lab.query(lab.addr(Server::Pdns), &owner, "TLSA").unwrap();
    assert!(
        answer.contains("TLSA", &other) && !answer.contains("TLSA", &tlsa("ab")),
        "{answer:?}"
    );
}

// ----- a tiny HTTP server for the API fakes -----

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Debug, Clone)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

fn answer(status: u16, body: Value) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body,
    }
}

type Handler = Box<dyn FnMut(&Request) -> Response + Send>;

/// Serves `handler` on 127.0.0.1:0 (one request per connection); scripted failures in `faults`
/// are answered first. Every request is logged.
struct Fake {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    faults: Arc<Mutex<VecDeque<Response>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    async fn start(handler: Handler) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let faults: Arc<Mutex<VecDeque<Response>>> = Arc::new(Mutex::new(VecDeque::new()));
        let handler = Arc::new(Mutex::new(handler));
        let (l, f) = (log.clone(), faults.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let Some(request) = read_request(&mut stream).await else {
                    continue;
                };
                l.lock().unwrap().push(request.clone());
                let fault = f.lock().unwrap().pop_front();
                let response = fault.unwrap_or_else(|| (handler.lock().unwrap())(&request));
                let body = if response.body.is_null() {
                    String::new()
                } else {
                    response.body.to_string()
                };
                let mut head = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    response.status,
                    body.len()
                );
                for (k, v) in &response.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        Fake {
            addr,
            log,
            faults,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn fail_next(&self, response: Response) {
        self.faults.lock().unwrap().push_back(response);
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q),
        None => (target.clone(), ""),
    };
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.replace("%40", "@")),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

// ----- Cloudflare -----

const CF_TOKEN: &str = "cf-token-abcdef123456";
const CF_ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
/// The fake's page size, small so that a listing spans pages.
const CF_PAGE: usize = 2;

fn cloudflare_fake(records: Arc<Mutex<Vec<Value>>>) -> Handler {
    let mut next_id = 100;
    Box::new(move |req: &Request| {
        if req.headers.get("authorization").map(String::as_str)
            != Some(&format!("Bearer {CF_TOKEN}"))
        {
            return answer(
                401,
                json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}], "result": null}),
            );
        }
        let ok = |result: Value, info: Option<Value>| {
            let mut body = json!({"success": true, "errors": [], "messages": [], "result": result});
            if let Some(info) = info {
                body["result_info"] = info;
            }
            answer(200, body)
        };
        let list_path = format!("/client/v4/zones/{CF_ZONE}/dns_records");
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/client/v4/zones") => {
                let name = req.query.get("name").cloned().unwrap_or_default();
                if name == "example.com" {
                    ok(json!([{"id": CF_ZONE, "name": "example.com"}]), None)
                } else {
                    ok(json!([]), None)
                }
            }
            ("GET", p) if p == list_path => {
                assert_eq!(
                    req.query.get("type").map(String::as_str),
                    Some("TLSA"),
                    "{req:?}"
                );
                assert_eq!(
                    req.query.get("per_page").map(String::as_str),
                    Some("100"),
                    "{req:?}"
                );
                let name = req
                    .query
                    .get("name.exact")
                    .cloned()
                    .expect("name.exact= in the listing");
                assert!(
                    !name.ends_with('.'),
                    "Cloudflare names have no final dot: {name}"
                );
                let page: usize = req
                    .query
                    .get("page")
                    .and_then(|p| p.parse().ok())
                    .expect("page=");
                let all: Vec<Value> = records
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|r| r["name"] == name.as_str())
                    .cloned()
                    .collect();
                let total_pages = all.len().div_ceil(CF_PAGE).max(1);
                let slice: Vec<Value> = all
                    .into_iter()
                    .skip((page - 1) * CF_PAGE)
                    .take(CF_PAGE)
                    .collect();
                ok(
                    json!(slice),
                    Some(json!({"page": page, "per_page": CF_PAGE, "total_pages": total_pages})),
                )
            }
            ("POST", p) if p == list_path => {
                let b = &req.body;
                assert_eq!(b["type"], "TLSA", "{b}");
                assert!(b["name"].as_str().is_some_and(|n| !n.ends_with('.')), "{b}");
                let d = &b["data"];
                for k in ["usage", "selector", "matching_type"] {
                    assert!(d[k].is_u64(), "data.{k} is a number: {b}");
                }
                assert!(
                    d["certificate"].as_str().is_some_and(|c| c.len() == 64),
                    "{b}"
                );
                next_id += 1;
                let record = json!({
                    "id": format!("rec{next_id}"), "type": "TLSA", "name": b["name"], "ttl": b["ttl"],
                    "content": format!("{} {} {} {}", d["usage"], d["selector"], d["matching_type"], d["certificate"].as_str().unwrap_or_default()),
                    "data": d,
                });
                records.lock().unwrap().push(record.clone());
                ok(record, None)
            }
            ("DELETE", p) if p.starts_with(&format!("{list_path}/")) => {
                let id = p.rsplit('/').next().unwrap_or_default().to_owned();
                let mut all = records.lock().unwrap();
                let before = all.len();
                all.retain(|r| r["id"] != id.as_str());
                if all.len() == before {
                    answer(
                        404,
                        json!({"success": false, "errors": [{"code": 81044, "message": "Record does not exist."}]}),
                    )
                } else {
                    ok(json!({"id": id}), None)
                }
            }
            _ => answer(
                404,
                json!({"success": false, "errors": [{"code": 7003, "message": format!("no route {} {}", req.method, req.path)}]}),
            ),
        }
    })
}

fn cf_record(id: &str, name: &str, byte: &str) -> Value {
    json!({
        "id": id, "type": "TLSA", "name": name, "ttl": 300, "content": tlsa(byte),
        "data": {"usage": 3, "selector": 1, "matching_type": 1, "certificate": byte.repeat(32)},
    })
}

#[test]
fn cloudflare_against_a_fake_api() {
    let rt = rt();
    rt.block_on(async {
        let name = "_25._tcp.mail.example.com";
        // Other hosts' records at the same owner: three, so the listing spans two pages.
        let records = Arc::new(Mutex::new(vec![
            cf_record("o1", name, "01"),
            cf_record("o2", name, "02"),
            cf_record("o3", name, "03"),
            cf_record("x1", "_25._tcp.other.example.com", "09"),
        ]));
        let fake = Fake::start(cloudflare_fake(records.clone())).await;
        let base = fake.url("/client/v4");
        let provider = Provider::Cloudflare(
            cloudflare::Cloudflare::new(Secret::new(CF_TOKEN), None, Some(&base), quick()).unwrap(),
        );
        let owner = format!("{name}.");

        let list = provider.list(&owner).await.unwrap();
        assert_eq!(list.len(), 3, "all pages read: {list:?}");
        assert!(has(&list, &tlsa("03")), "page 2 read: {list:?}");

        let ours = rec(&owner, &tlsa("ab"));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(provider.add(&ours).await.unwrap(), Change::AlreadyPresent);
        let posts = fake.requests().iter().filter(|r| r.method == "POST").count();
        assert_eq!(posts, 1, "one create only");
        for r in fake.requests() {
            assert_eq!(r.headers["authorization"], format!("Bearer {CF_TOKEN}"));
        }
        // The zone id was looked up by name, walking up from the owner.
        assert!(
            fake.requests()
                .iter()
                .any(|r| r.path == "/client/v4/zones" && r.query.get("name").map(String::as_str) == Some("example.com"))
        );

        assert_eq!(provider.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        let left: Vec<String> = records.lock().unwrap().iter().map(|r| r["id"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(left, ["o1", "o2", "o3", "x1"], "only our record went");
        let deletes: Vec<Request> = fake.requests().into_iter().filter(|r| r.method == "DELETE").collect();
        assert_eq!(deletes.len(), 1, "{deletes:?}");

        // 429 with Retry-After: waited for, then success.
        fake.fail_next(Response {
            status: 429,
            headers: vec![("retry-after".into(), "1".into())],
            body: json!({"success": false, "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}]}),
        });
        let start = Instant::now();
        assert_eq!(provider.list(&owner).await.unwrap().len(), 3);
        assert!(start.elapsed() >= Duration::from_millis(950), "Retry-After honoured: {:?}", start.elapsed());

        // 500 then success.
        fake.fail_next(answer(500, json!({"success": false})));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);

        // 5xx for ever: a clear failure after the configured tries.
        for _ in 0..10 {
            fake.fail_next(answer(503, json!({"success": false, "errors": [{"code": 1, "message": "down"}]})));
        }
        let err = provider.list(&owner).await.unwrap_err();
        assert!(matches!(err, ProviderError::RetriesExhausted { tries: 4, status: 503, .. }), "{err}");
        fake.faults.lock().unwrap().clear();

        // A wrong token: 401, explained, no token in the text.
        let wrong = Provider::Cloudflare(
            cloudflare::Cloudflare::new(Secret::new("wrong-token-xyz"), Some(CF_ZONE), Some(&base), quick()).unwrap(),
        );
        let err = wrong.list(&owner).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized { .. }), "{err}");
        assert!(err.to_string().contains("HTTP 401") && err.to_string().contains("token"), "{err}");
        assert!(!format!("{err} {err:?} {wrong:?}").contains("wrong-token-xyz"));
        assert!(!format!("{provider:?}").contains(CF_TOKEN), "Debug hides the token");
    });
}

// ----- deSEC -----

const DESEC_TOKEN: &str = "desec-token-4242abcd";

fn desec_fake(rrsets: Arc<Mutex<BTreeMap<String, Value>>>, base: Arc<Mutex<String>>) -> Handler {
    Box::new(move |req: &Request| {
        if req.headers.get("authorization").map(String::as_str)
            != Some(&format!("Token {DESEC_TOKEN}"))
        {
            return answer(401, json!({"detail": "Invalid token."}));
        }
        let prefix = "/api/v1/domains/example.com/rrsets/";
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/v1/domains/") => {
                let q = req.query.get("owns_qname").cloned().unwrap_or_default();
                if q == "example.com" || q.ends_with(".example.com") {
                    answer(200, json!([{"name": "example.com", "minimum_ttl": 300}]))
                } else {
                    answer(200, json!([]))
                }
            }
            ("GET", "/api/v1/domains/example.com/") => {
                answer(200, json!({"name": "example.com", "minimum_ttl": 300}))
            }
            ("GET", p) if p == prefix => {
                let cursor = req
                    .query
                    .get("cursor")
                    .cloned()
                    .expect("cursor= asks for pages");
                assert_eq!(req.query.get("type").map(String::as_str), Some("TLSA"));
                let sub = req.query.get("subname").cloned().unwrap_or_default();
                if cursor.is_empty() {
                    // First page: nothing, and a next link (the client must follow it).
                    let next = format!(
                        "<{}{prefix}?subname={sub}&type=TLSA&cursor=p2>; rel=\"next\"",
                        base.lock().unwrap()
                    );
                    let first =
                        format!("<{}{prefix}?cursor=>; rel=\"first\"", base.lock().unwrap());
                    return Response {
                        status: 200,
                        headers: vec![("link".into(), format!("{first}, {next}"))],
                        body: json!([]),
                    };
                }
                assert_eq!(cursor, "p2");
                let list: Vec<Value> = rrsets
                    .lock()
                    .unwrap()
                    .get(&sub)
                    .cloned()
                    .into_iter()
                    .collect();
                answer(200, json!(list))
            }
            ("POST", p) if p == prefix => {
                let b = &req.body;
                assert_eq!(b["type"], "TLSA", "{b}");
                assert!(
                    b["ttl"].is_u64() && b["records"].is_array() && b["subname"].is_string(),
                    "{b}"
                );
                let sub = b["subname"].as_str().unwrap_or_default().to_owned();
                let mut all = rrsets.lock().unwrap();
                if all.contains_key(&sub) {
                    return answer(
                        400,
                        json!({"non_field_errors": ["Another RRset with the same subdomain and type exists for this domain."]}),
                    );
                }
                let rrset = json!({"subname": sub, "type": "TLSA", "ttl": b["ttl"], "records": b["records"]});
                all.insert(sub, rrset.clone());
                answer(201, rrset)
            }
            (method, p) if p.starts_with(prefix) && p.ends_with("/TLSA/") => {
                let sub = p[prefix.len()..p.len() - "/TLSA/".len()].to_owned();
                let sub = if sub == "@" { String::new() } else { sub };
                let mut all = rrsets.lock().unwrap();
                match method {
                    "GET" => match all.get(&sub) {
                        Some(r) => answer(200, r.clone()),
                        None => answer(404, json!({"detail": "Not found."})),
                    },
                    "PATCH" => {
                        let records = req.body["records"]
                            .as_array()
                            .cloned()
                            .expect("records in PATCH");
                        if records.is_empty() {
                            all.remove(&sub);
                            return answer(204, Value::Null);
                        }
                        let Some(r) = all.get_mut(&sub) else {
                            return answer(404, json!({"detail": "Not found."}));
                        };
                        r["records"] = json!(records);
                        answer(200, r.clone())
                    }
                    _ => answer(405, json!({"detail": "Method not allowed."})),
                }
            }
            _ => answer(404, json!({"detail": "Not found."})),
        }
    })
}

#[test]
fn desec_against_a_fake_api() {
    let rt = rt();
    rt.block_on(async {
        let sub = "_25._tcp.mail";
        let other = tlsa("0f");
        let rrsets = Arc::new(Mutex::new(BTreeMap::from([(
            sub.to_owned(),
            json!({"subname": sub, "type": "TLSA", "ttl": 3600, "records": [other]}),
        )])));
        let base = Arc::new(Mutex::new(String::new()));
        let fake = Fake::start(desec_fake(rrsets.clone(), base.clone())).await;
        *base.lock().unwrap() = fake.url("");
        let provider = Provider::Desec(
            desec::Desec::new(
                Secret::new(DESEC_TOKEN),
                None,
                Some(&fake.url("/api/v1")),
                quick(),
            )
            .unwrap(),
        );
        let owner = "_25._tcp.mail.example.com.";

        let list = provider.list(owner).await.unwrap();
        assert_eq!(list.len(), 1, "found on the second page: {list:?}");
        assert!(
            fake.requests()
                .iter()
                .any(|r| r.query.get("cursor").map(String::as_str) == Some("p2"))
        );

        let ours = rec(owner, &tlsa("ab"));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(provider.add(&ours).await.unwrap(), Change::AlreadyPresent);
        let patch = fake
            .requests()
            .into_iter()
            .find(|r| r.method == "PATCH")
            .expect("a PATCH");
        assert_eq!(
            patch.path,
            "/api/v1/domains/example.com/rrsets/_25._tcp.mail/TLSA/"
        );
        assert_eq!(
            patch.body["records"],
            json!([other, tlsa("ab")]),
            "merged, other record kept"
        );

        assert_eq!(provider.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        assert_eq!(rrsets.lock().unwrap()[sub]["records"], json!([other]));

        // A new RRset is created by POST.
        let fresh = rec("_465._tcp.mail.example.com.", &tlsa("cd"));
        assert_eq!(provider.add(&fresh).await.unwrap(), Change::Added);
        assert!(
            fake.requests()
                .iter()
                .any(|r| r.method == "POST" && r.body["subname"] == "_465._tcp.mail")
        );
        assert_eq!(provider.remove(&fresh).await.unwrap(), Change::Removed);
        assert!(
            !rrsets.lock().unwrap().contains_key("_465._tcp.mail"),
            "empty list deletes the RRset"
        );

        for r in fake.requests() {
            assert_eq!(r.headers["authorization"], format!("Token {DESEC_TOKEN}"));
        }

        // Throttled: 429 + Retry-After, then fine.
        fake.fail_next(Response {
            status: 429,
            headers: vec![("retry-after".into(), "1".into())],
            body: json!({"detail": "Request was throttled. Expected available in 1 second."}),
        });
        let start = Instant::now();
        assert_eq!(provider.list(owner).await.unwrap().len(), 1);
        assert!(start.elapsed() >= Duration::from_millis(950));

        // 500, then fine.
        fake.fail_next(answer(500, json!({"detail": "oops"})));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);

        let wrong = Provider::Desec(
            desec::Desec::new(
                Secret::new("bad-token-0000"),
                Some("example.com"),
                Some(&fake.url("/api/v1")),
                quick(),
            )
            .unwrap(),
        );
        let err = wrong.list(owner).await.unwrap_err();
        assert!(
            matches!(
                err,
                ProviderError::Unauthorized {
                    provider: "desec",
                    ..
                }
            ),
            "{err}"
        );
        assert!(!format!("{err:?}").contains("bad-token-0000"));
    });
}

// ----- exec and manual -----

#[test]
fn exec_runs_the_operators_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("records");
    let script = dir.path().join("provider.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
set -e
db=$1; action=$2; owner=$3
[ "$action" = "$DANE_ROLL_ACTION" ] && [ "$owner" = "$DANE_ROLL_OWNER" ] || { echo "env differs from args" >&2; exit 3; }
touch "$db"
case $action in
  list) grep -F "$owner " "$db" | cut -d' ' -f2- || true ;;
  add) [ "$5" = "$DANE_ROLL_RDATA" ] && [ "$4" = "$DANE_ROLL_TTL" ] || exit 4
       echo "$owner $5" >> "$db" ;;
  remove) grep -vxF "$owner $5" "$db" > "$db.new" || true; mv "$db.new" "$db" ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
"#,
    )
    .unwrap();
    let owner = "_25._tcp.mail.example.com.";
    std::fs::write(&db, format!("{owner} {}\n", tlsa("0f"))).unwrap();
    let command = vec![
        "/bin/sh".to_string(),
        script.display().to_string(),
        db.display().to_string(),
    ];
    let provider = Provider::Exec(exec::Exec::new(command, quick()).unwrap());
    let rt = rt();
    rt.block_on(async {
        let ours = rec(owner, &tlsa("ab"));
        assert_eq!(provider.add(&ours).await.unwrap(), Change::Added);
        assert_eq!(provider.add(&ours).await.unwrap(), Change::AlreadyPresent);
        assert_eq!(provider.list(owner).await.unwrap().len(), 2);
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::Removed);
        assert_eq!(provider.remove(&ours).await.unwrap(), Change::AlreadyAbsent);
        let list = provider.list(owner).await.unwrap();
        assert_eq!(list.len(), 1);
        assert!(has(&list, &tlsa("0f")));

        let failing = Provider::Exec(
            exec::Exec::new(
                vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo 'zone is locked' >&2; exit 7".into(),
                    "sh".into(),
                ],
                quick(),
            )
            .unwrap(),
        );
        let err = failing.add(&ours).await.unwrap_err();
        assert!(err.to_string().contains("zone is locked"), "{err}");
        assert!(
            err.to_string().contains("list"),
            "the list comes first: {err}"
        );
    });
}

#[test]
fn manual_prints_the_lines_to_apply() {
    let provider = Provider::Manual(manual::Manual);
    let rt = rt();
    rt.block_on(async {
        let ours = rec("_25._tcp.mail.example.com", &tlsa("ab"));
        let Change::Pending { instructions } = provider.add(&ours).await.unwrap() else {
            panic!("manual is pending");
        };
        assert!(
            instructions.contains(&format!(
                "update add _25._tcp.mail.example.com. 300 IN TLSA {}",
                tlsa("ab")
            )),
            "{instructions}"
        );
        let Change::Pending { instructions } = provider.remove(&ours).await.unwrap() else {
            panic!("manual is pending");
        };
        assert!(
            instructions.contains(&format!(
                "update delete _25._tcp.mail.example.com. IN TLSA {}",
                tlsa("ab")
            )),
            "{instructions}"
        );
        assert!(provider.list("_25._tcp.mail.example.com.").await.is_err());
    });
}
