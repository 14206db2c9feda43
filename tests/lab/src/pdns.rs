//! PowerDNS Authoritative with the gsqlite3 backend and its HTTP API, for the provider tests.
//!
//! Listens on `127.53.N.4:53` (DNS) and `127.53.N.4:8081` (API). The API key is made at run time
//! and never printed. Zones created through the API with `"dnssec": true` are signed at once.
//! The HTTP client is a few lines of std (HTTP/1.1, `Connection: close`): enough for the lab.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::Daemon;

/// The API port.
pub const API_PORT: u16 = 8081;

/// The SQLite schema shipped by pdns-backend-sqlite3.
const SCHEMA: &str = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql";

/// A running PowerDNS.
#[derive(Debug)]
pub struct Pdns {
    daemon: Daemon,
    addr: Ipv4Addr,
    api_key: String,
}

/// An HTTP response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code (201, 204, 401, 422…).
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

impl HttpResponse {
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl Pdns {
    /// Create the database in `dir`, start pdns_server on `addr`, wait until the API answers.
    pub fn start(dir: &Path, addr: Ipv4Addr, log: &Path) -> io::Result<Pdns> {
        std::fs::create_dir_all(dir)?;
        let db = dir.join("pdns.sqlite3");
        let out = Command::new(super::dns::tool("sqlite3"))
            .arg(&db)
            .arg(format!(".read {SCHEMA}"))
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab: sqlite3 schema: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let api_key = random_hex(16)?;
        let conf = format!(
            "launch=gsqlite3
gsqlite3-database={db}
gsqlite3-dnssec=yes
local-address={addr}
local-port=53
socket-dir={dir}
api=yes
api-key={api_key}
webserver=yes
webserver-address={addr}
webserver-port={API_PORT}
webserver-allow-from=127.0.0.0/8
daemon=no
guardian=no
disable-syslog=yes
security-poll-suffix=
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
distributor-threads=1
receiver-threads=1
loglevel=4
",
            db = db.display(),
            dir = dir.display(),
        );
        std::fs::write(dir.join("pdns.conf"), conf)?;
        let mut daemon = Daemon::spawn(
            "pdns_server",
            Command::new(super::dns::tool("pdns_server"))
                .arg(format!("--config-dir={}", dir.display())),
            log,
        )?;
        daemon.wait_ready("API answering", Duration::from_secs(30), || {
            http(addr, Some(&api_key), "GET", "/api/v1/servers/localhost", "")
                .is_ok_and(|r| r.status == 200)
        })?;
        Ok(Pdns {
            daemon,
            addr,
            api_key,
        })
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    pub(crate) fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Stop the server.
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// The DNS address (port 53).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The API's base URL, `http://127.53.N.4:8081/api/v1`.
    pub fn api_url(&self) -> String {
        format!("http://{}:{API_PORT}/api/v1", self.addr)
    }

    /// The API key (`X-API-Key`).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// `GET path` with the key.
    pub fn get(&self, path: &str) -> io::Result<HttpResponse> {
        self.request("GET", path, None, true)
    }

    /// An API request. `path` starts at `/api/v1/…`; `with_key` false leaves out `X-API-Key`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        with_key: bool,
    ) -> io::Result<HttpResponse> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let key = with_key.then_some(self.api_key.as_str());
        http(self.addr, key, method, path, &body)
    }

    /// Create a Native zone (`name` with or without the trailing dot) with one NS
    /// (`ns1.<zone>`), signed when `dnssec`. PowerDNS answers 201 on success.
    pub fn create_zone(&self, name: &str, dnssec: bool) -> io::Result<HttpResponse> {
        let zone = crate::dns::fqdn(name);
        let body = serde_json::json!({
            "name": zone,
            "kind": "Native",
            "dnssec": dnssec,
            "nameservers": [format!("ns1.{zone}")],
        });
        self.request("POST", "/api/v1/servers/localhost/zones", Some(&body), true)
    }

    /// Replace the rrset `name`/`rtype` in `zone` with `contents` (e.g. `["3 1 1 <hex>"]`);
    /// an empty list deletes it. PowerDNS answers 204 on success.
    pub fn patch_rrset(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
        ttl: u32,
        contents: &[&str],
    ) -> io::Result<HttpResponse> {
        let zone = crate::dns::fqdn(zone);
        let rrset = if contents.is_empty() {
            serde_json::json!({ "name": crate::dns::fqdn(name), "type": rtype, "changetype": "DELETE" })
        } else {
            let records: Vec<_> = contents
                .iter()
                .map(|c| serde_json::json!({ "content": c, "disabled": false }))
                .collect();
            serde_json::json!({
                "name": crate::dns::fqdn(name), "type": rtype, "ttl": ttl,
                "changetype": "REPLACE", "records": records,
            })
        };
        let body = serde_json::json!({ "rrsets": [rrset] });
        self.request(
            "PATCH",
            &format!("/api/v1/servers/localhost/zones/{zone}"),
            Some(&body),
            true,
        )
    }
}

impl Drop for Pdns {
    fn drop(&mut self) {
        self.daemon.stop();
    }
}

/// One HTTP/1.1 request to `addr`:8081, `Connection: close`.
fn http(
    addr: Ipv4Addr,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> io::Result<HttpResponse> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}:{API_PORT}\r\nConnection: close\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(key) = key {
        req.push_str(&format!("X-API-Key: {key}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let sa = SocketAddr::from((addr, API_PORT));
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Parse a raw HTTP/1.1 response (Content-Length, chunked, or read-to-close body).
fn parse_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("http: no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("http: bad status line in {head:?}")))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&rest[..eol]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::other("http: bad chunk size"))?;
            rest = &rest[eol + 2..];
            if size == 0 || rest.len() < size {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = rest.get(size + 2..).unwrap_or(&[]);
        }
        body = out;
    }
    Ok(HttpResponse {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// `n` random bytes from /dev/urandom, as hex.
fn random_hex(n: usize) -> io::Result<String> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
