//! Test support for the provider fakes: a raw HTTP server on 127.0.0.1 (port 0) that answers
//! JSON, or bytes as they are (cut off, empty, endless), and logs every request; and the helpers
//! the provider tests share.

#![allow(dead_code)] // each test file uses its part

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dane_roll_providers::{Record, RetryPolicy, Settings};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The owner name the fakes serve.
pub const OWNER: &str = "_25._tcp.mail.example.com.";

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn tlsa(byte: &str) -> String {
    format!("3 1 1 {}", byte.repeat(32))
}

pub fn rec(owner: &str, ttl: u32, rdata: &str) -> Record {
    Record::new(owner, ttl, rdata).unwrap()
}

pub fn quick() -> Settings {
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
pub struct Request {
    pub method: String,
    pub path: String,
    /// The request target as sent (path and query).
    pub target: String,
    pub query: BTreeMap<String, String>,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as sent (for signatures over its bytes).
    pub raw_body: String,
    pub body: Value,
}

impl Request {
    pub fn writes(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
    }
}

pub enum Body {
    Json(Value),
    /// These bytes with this `content-length` (more than sent: cut off).
    Raw(Vec<u8>, usize),
    /// Spaces without end (no `content-length`), up to this many bytes.
    Endless(u64),
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

pub fn json_answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: Body::Json(body),
    }
}

pub fn raw(bytes: &[u8]) -> Answer {
    Answer {
        status: 200,
        headers: Vec::new(),
        body: Body::Raw(bytes.to_vec(), bytes.len()),
    }
}

pub type Handler = Box<dyn FnMut(&Request) -> Answer + Send>;

pub struct Fake {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Request>>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Fake {
    pub async fn start(handler: Handler) -> Fake {
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

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    pub fn writes(&self) -> Vec<Request> {
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

pub async fn respond(stream: &mut tokio::net::TcpStream, answer: Answer) -> std::io::Result<()> {
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

pub async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Request> {
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
    let raw_body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
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
        target,
        query,
        headers,
        raw_body,
        body,
    })
}

/// The bodies that must never read as "no records".
/// A named way of answering badly.
pub type Broken = (&'static str, fn() -> Answer);

pub fn broken_bodies() -> Vec<Broken> {
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
