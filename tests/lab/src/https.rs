//! A small HTTPS server for the lab (openssl over std's TCP, one thread per connection): it
//! answers `GET path` with the [`Page`] set for that path, 404 otherwise. Made for MTA-STS
//! policies (`https://mta-sts.DOMAIN/.well-known/mta-sts.txt`, port 443 on a lab address),
//! with a certificate from [`crate::pki::TestPki`], so the client trusts only the test CA.
//! Stopped (and its port freed) when dropped.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslMethod};

use crate::pki::Leaf;

/// One answer.
#[derive(Debug, Clone)]
pub struct Page {
    /// The status line's code and words, e.g. `200 OK`.
    pub status: String,
    /// Extra header lines (`Name: value`), e.g. a `Location`.
    pub headers: Vec<String>,
    /// The body, sent as `text/plain` unless a header says otherwise.
    pub body: Vec<u8>,
}

impl Page {
    /// `200 OK`, `text/plain`, this body.
    pub fn text(body: impl Into<Vec<u8>>) -> Page {
        Page {
            status: "200 OK".into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A `301` to `location`.
    pub fn redirect(location: &str) -> Page {
        Page {
            status: "301 Moved Permanently".into(),
            headers: vec![format!("Location: {location}")],
            body: Vec::new(),
        }
    }
}

type Pages = Arc<Mutex<HashMap<String, Page>>>;

/// The running server.
pub struct HttpsServer {
    addr: SocketAddr,
    pages: Pages,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpsServer {
    /// Listen on `addr` with `leaf` (its chain sent) and serve the pages set later.
    pub fn start(addr: SocketAddr, leaf: &Leaf) -> io::Result<HttpsServer> {
        let ossl = |e: openssl::error::ErrorStack| io::Error::other(format!("lab https: {e}"));
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).map_err(ossl)?;
        acceptor.set_private_key(&leaf.key).map_err(ossl)?;
        acceptor.set_certificate(&leaf.cert).map_err(ossl)?;
        for c in &leaf.chain {
            acceptor.add_extra_chain_cert(c.clone()).map_err(ossl)?;
        }
        let acceptor = Arc::new(acceptor.build());
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let pages: Pages = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let pages = Arc::clone(&pages);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((tcp, _)) => {
                            let acceptor = Arc::clone(&acceptor);
                            let pages = Arc::clone(&pages);
                            std::thread::spawn(move || {
                                let _ = tcp.set_nonblocking(false);
                                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                                if let Ok(tls) = acceptor.accept(tcp) {
                                    let _ = answer(tls, &pages);
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        Ok(HttpsServer {
            addr,
            pages,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve `page` at `path` (replacing what was there).
    pub fn set(&self, path: &str, page: Page) {
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), page);
    }

    /// Serve nothing at `path` (404).
    pub fn remove(&self, path: &str) {
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
    }
}

fn answer<S: io::Read + Write>(stream: S, pages: &Pages) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let page = pages
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&path)
        .cloned()
        .unwrap_or(Page {
            status: "404 Not Found".into(),
            headers: Vec::new(),
            body: b"not found\n".to_vec(),
        });
    let mut head = format!("HTTP/1.1 {}\r\nConnection: close\r\n", page.status);
    if !page
        .headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("content-type:"))
    {
        head.push_str("Content-Type: text/plain\r\n");
    }
    for h in &page.headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", page.body.len()));
    let stream = reader.get_mut();
    stream.write_all(head.as_bytes())?;
    stream.write_all(&page.body)?;
    stream.flush()
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
