//! A fault-injecting HTTP/1.1 proxy, put between a provider and an HTTP API (PowerDNS's) so that
//! the provider's real code meets `500 Internal Server Error` and `429 Too Many Requests`.
//!
//! ```text
//! dane-roll (reqwest) ──▶ 127.0.0.1:P  FaultProxy ──▶ 127.53.N.4:8081  PowerDNS API
//!                                  └─ the next n requests answered 500 or 429 (Retry-After)
//! ```
//!
//! [`FaultProxy::fail_next`] arms n faults: the next n requests (any method) are answered by the
//! proxy itself with the status and never reach the API; every other request is passed on
//! unchanged and the API's answer relayed. Each exchange is one request per connection
//! (`Connection: close` both ways), so a client never reuses a connection the proxy closed.
//!
//! Plain std threads: one accepting, one per connection. Dropping the proxy stops the listener.
//! The small HTTP client here ([`request`]) also serves the lab's PowerDNS mirror.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the proxy waits on either side of an exchange.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the proxy did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests passed on to the API.
    pub forwarded: usize,
    /// Requests answered 500 by the proxy.
    pub injected_500: usize,
    /// Requests answered 429 by the proxy.
    pub injected_429: usize,
    /// Requests answered with another injected status.
    pub injected_other: usize,
    /// Forwarded requests that failed on the way (API unreachable, bad response).
    pub upstream_errors: usize,
}

/// One armed fault.
#[derive(Debug, Clone, Copy)]
struct Fault {
    status: u16,
    retry_after: Option<u32>,
}

#[derive(Debug, Default)]
struct Shared {
    faults: std::collections::VecDeque<Fault>,
    stats: ProxyStats,
}

/// A running proxy. See the [module docs](self).
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listen on `listen` (port 0 picks a free one) and pass requests on to `upstream`.
    pub fn start(listen: SocketAddr, upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (Arc::clone(&shared), Arc::clone(&stop));
        let accept = std::thread::Builder::new()
            .name("faultproxy".into())
            .spawn(move || accept_loop(&listener, upstream, &sh, &st))?;
        Ok(FaultProxy {
            addr,
            upstream,
            shared,
            stop,
            accept: Some(accept),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (a provider's base URL).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API behind it.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Answer the next `n` requests with `status` (and `Retry-After: secs` when given) instead
    /// of passing them on. Adds to faults already armed.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u32>) {
        let mut s = lock(&self.shared);
        for _ in 0..n {
            s.faults.push_back(Fault {
                status,
                retry_after,
            });
        }
    }

    /// Faults armed and not yet served.
    pub fn armed(&self) -> usize {
        lock(&self.shared).faults.len()
    }

    /// Drop every armed fault.
    pub fn disarm(&self) {
        lock(&self.shared).faults.clear();
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        lock(&self.shared).stats.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(
    listener: &TcpListener,
    upstream: SocketAddr,
    shared: &Arc<Mutex<Shared>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let sh = Arc::clone(shared);
                let _ = std::thread::Builder::new()
                    .name("faultproxy-conn".into())
                    .spawn(move || {
                        let _ = serve(stream, upstream, &sh);
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// One HTTP/1.1 request: its head (request line and headers, without the blank line) and body.
#[derive(Debug, Clone)]
struct Message {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The message again, with `Connection: close` instead of any Connection header.
    fn closing(&self) -> Vec<u8> {
        let mut out = String::new();
        for (i, l) in self.head.iter().enumerate() {
            let is_conn = i > 0
                && l.split_once(':').is_some_and(|(k, _)| {
                    let k = k.trim();
                    k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("keep-alive")
                });
            if !is_conn {
                out.push_str(l);
                out.push_str("\r\n");
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Read a request (Content-Length body; clients of JSON APIs send one).
fn read_request(rd: &mut impl BufRead) -> io::Result<Message> {
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "faultproxy: connection closed before a request",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if head.is_empty() {
                continue;
            }
            break;
        }
        head.push(line);
    }
    let mut msg = Message {
        head,
        body: Vec::new(),
    };
    let len: usize = msg
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    msg.body = vec![0; len];
    rd.read_exact(&mut msg.body)?;
    Ok(msg)
}

fn serve(stream: TcpStream, upstream: SocketAddr, shared: &Mutex<Shared>) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut rd = BufReader::new(stream.try_clone()?);
    let mut wr = stream;
    let req = read_request(&mut rd)?;
    let fault = {
        let mut s = lock(shared);
        let f = s.faults.pop_front();
        if let Some(f) = f {
            match f.status {
                500 => s.stats.injected_500 += 1,
                429 => s.stats.injected_429 += 1,
                _ => s.stats.injected_other += 1,
            }
        }
        f
    };
    if let Some(f) = fault {
        let body = format!(
            "{{\"error\": \"injected by the lab's fault proxy: {}\"}}",
            f.status
        );
        let reason = match f.status {
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Injected",
        };
        let mut resp = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n",
            f.status,
            body.len()
        );
        if let Some(secs) = f.retry_after {
            resp.push_str(&format!("Retry-After: {secs}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(&body);
        wr.write_all(resp.as_bytes())?;
        return wr.flush();
    }
    match exchange(upstream, &req.closing()) {
        Ok(raw) => {
            lock(shared).stats.forwarded += 1;
            wr.write_all(&response_closing(&raw))?;
            wr.flush()
        }
        Err(e) => {
            {
                let mut s = lock(shared);
                s.stats.forwarded += 1;
                s.stats.upstream_errors += 1;
            }
            let body = format!("faultproxy: upstream {upstream}: {e}");
            let resp = format!(
                "HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            wr.write_all(resp.as_bytes())?;
            wr.flush()
        }
    }
}

/// Send `raw` (a whole request with `Connection: close`) and read the response to the end.
fn exchange(upstream: SocketAddr, raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&upstream, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.write_all(raw)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    if out.is_empty() {
        return Err(io::Error::other("empty response"));
    }
    Ok(out)
}

/// A raw response with `Connection: close` instead of any Connection header (the body is kept
/// as it came: Content-Length, chunked, or up to the close).
fn response_closing(raw: &[u8]) -> Vec<u8> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return raw.to_vec();
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut out = String::new();
    for l in head.split("\r\n") {
        let conn = l
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !conn {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&raw[split + 4..]);
    bytes
}

/// An HTTP response: status and body (de-chunked).
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// One HTTP/1.1 request to `addr` (`Connection: close`), with `headers` added; the response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<Response> {
    let mut head = vec![
        format!("{method} {path} HTTP/1.1"),
        format!("Host: {addr}"),
        "Accept: application/json".to_string(),
        format!("Content-Length: {}", body.len()),
    ];
    if !body.is_empty() {
        head.push("Content-Type: application/json".into());
    }
    head.extend(headers.iter().map(|(k, v)| format!("{k}: {v}")));
    let msg = Message {
        head,
        body: body.as_bytes().to_vec(),
    };
    parse_response(&exchange(addr, &msg.closing())?)
}

fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("http: no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("http: bad status line"))?;
    let mut body = &raw[split + 4..];
    let mut out = Vec::new();
    if head.contains("transfer-encoding: chunked") {
        while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
            let size = String::from_utf8_lossy(&body[..eol]);
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::other("http: bad chunk size"))?;
            body = &body[eol + 2..];
            if size == 0 || body.len() < size {
                break;
            }
            out.extend_from_slice(&body[..size]);
            body = body.get(size + 2..).unwrap_or(&[]);
        }
    } else {
        out.extend_from_slice(body);
    }
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&out).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot upstream that answers every request 200 with the request line as the body.
    fn echo_upstream() -> (SocketAddr, JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            for s in l.incoming().take(2) {
                let s = s.unwrap();
                let mut rd = BufReader::new(s.try_clone().unwrap());
                let req = read_request(&mut rd).unwrap();
                assert_eq!(req.header("connection"), Some("close"));
                let body = req.head[0].clone();
                let mut w = s;
                write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        (addr, t)
    }

    #[test]
    fn injects_then_forwards() {
        let (up, t) = echo_upstream();
        let p = FaultProxy::start("127.0.0.1:0".parse().unwrap(), up).unwrap();
        p.fail_next(1, 500, None);
        p.fail_next(1, 429, Some(1));
        let r = request(p.addr(), "GET", "/a", &[], "").unwrap();
        assert_eq!(r.status, 500);
        let r = request(p.addr(), "PATCH", "/b", &[("X-API-Key", "k")], "{}").unwrap();
        assert_eq!(r.status, 429);
        let r = request(p.addr(), "GET", "/c", &[], "").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "GET /c HTTP/1.1"));
        let r = request(p.addr(), "PUT", "/d", &[], "x").unwrap();
        assert_eq!(r.status, 200);
        let s = p.stats();
        assert_eq!((s.injected_500, s.injected_429, s.forwarded), (1, 1, 2));
        assert_eq!(p.armed(), 0);
        t.join().unwrap();
    }
}
