//! Publishing never destroys what is not ours (issue #12) and every read from a provider is
//! capped (issue #14), against local fakes of the documented APIs (deSEC, PowerDNS, Cloudflare)
//! that model what goes wrong: an empty, cut-off or field-less 200 body, a writer racing ours, a
//! retried write, the providers' TTL rules, a long `Retry-After`, an endless body; and RFC 2136's
//! TTL rule against the lab's real BIND.
//!
//! The fakes log every request: "nothing was written" is asserted as "no POST, PATCH, PUT or
//! DELETE reached the fake".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::require;
use dane_roll_providers::rfc2136::{Rfc2136, TsigKey};
use dane_roll_providers::{
    Change, Provider, ProviderError, Record, RetryPolicy, Secret, Settings, cloudflare, desec,
    powerdns,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn tlsa(byte: &str) -> String {
    format!("3 1 1 {}", byte.repeat(32))
}

fn rec(owner: &str, ttl: u32, rdata: &str) -> Record {
    Record::new(owner, ttl, rdata).unwrap()
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
        readback: Duration::from_secs(2),
    }
}

// ----- a raw HTTP fake: JSON answers, or bytes as they are (cut off, empty, endless) -----

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    body: Value,
}

impl Request {
    fn writes(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
    }
}

enum Body {
    Json(Value),
    /// These bytes with this `content-length` (more than sent: cut off).
    Raw(Vec<u8>, usize),
    /// Spaces without end (no `content-length`), up to this many bytes.
    Endless(u64),
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

fn json_answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: Body::Json(body),
    }
}

fn raw(bytes: &[u8]) -> Answer {
    Answer {
        status: 200,
        headers: Vec::new(),
        body: Body::Raw(bytes.to_vec(), bytes.len()),
    }
}

type Handler = Box<dyn FnMut(&Request) -> Answer + Send>;

struct Fake {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    async fn start(handler: Handler) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(Mutex::new(handler));
        let l = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let Some(request) = read_request(&mut stream).await else {
                    continue;
                };
                l.lock().unwrap().push(request.clone());
                let answer = (handler.lock().unwrap())(&request);
                tokio::spawn(async move {
                    let _ = respond(&mut stream, answer).await;
                });
            }
        });
        Fake { addr, log, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::writes)
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn respond(stream: &mut tokio::net::TcpStream, answer: Answer) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\nconnection: close\r\n",
        answer.status
    );
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match answer.body {
        Body::Json(v) => {
            let body = if v.is_null() {
                String::new()
            } else {
                v.to_string()
            };
            head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
        }
        Body::Raw(bytes, declared) => {
            head.push_str(&format!("content-length: {declared}\r\n\r\n"));
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&bytes).await?;
        }
        Body::Endless(total) => {
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0u64;
            while sent < total {
                stream.write_all(&chunk).await?;
                sent += chunk.len() as u64;
            }
        }
    }
    stream.shutdown().await
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
    let len: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
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
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target.clone(), String::new()),
    };
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    Some(Request {
        method,
        path,
        query,
        body,
    })
}

/// The bodies that must never read as "no records".
/// A named way of answering badly.
type Broken = (&'static str, fn() -> Answer);

fn broken_bodies() -> Vec<Broken> {
    vec![
        ("an empty 200 body", || raw(b"")),
        ("a body cut off mid-JSON", || Answer {
            status: 200,
            headers: Vec::new(),
            body: Body::Raw(br#"{"records": ["3 1 1 0f0f"#.to_vec(), 400),
        }),
        ("a short body that is not JSON", || raw(br#"{"records": ["#)),
    ]
}

// ----- deSEC -----

const DESEC_TOKEN: &str = "desec-token-safety";
const DOMAIN_PREFIX: &str = "/api/v1/domains/example.com/";
const SUB: &str = "_25._tcp.mail";
const OWNER: &str = "_25._tcp.mail.example.com.";

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

// ----- PowerDNS -----

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

const BIND: &[&str] = &[
    "named",
    "tsig-keygen",
    "dnssec-dsfromkey",
    "dig",
    "nsupdate",
    "ip",
];

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
