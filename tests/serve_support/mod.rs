//! What the tests of `dane-roll serve` share: the binary started as an exporter (killed on
//! drop), a wait for its port, one HTTP/1.0 request at a time (status and body), the samples of
//! `/metrics`, scraping until a condition holds, signals, and the configuration of one manual
//! service `mx` with one SMTP endpoint.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

/// A started `dane-roll serve`: killed on drop unless the test took it to stop it itself.
pub struct Served(Option<Child>);

impl Served {
    /// Spawn `cmd` (a [`serve_command`] the test added to).
    pub fn spawn(cmd: &mut Command) -> Served {
        Served(Some(cmd.spawn().unwrap()))
    }

    /// Hold `child`.
    pub fn new(child: Child) -> Served {
        Served(Some(child))
    }

    /// The process, still held.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the served process was taken")
    }

    /// The process, no longer killed on drop.
    pub fn take(&mut self) -> Child {
        self.0.take().expect("the served process was taken")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `dane-roll [-c CONFIG] serve --listen 127.0.0.1:PORT`, output to /dev/null (a test that reads
/// stderr sets it again); without CONFIG no configuration file is read.
pub fn serve_command(config: Option<&Path>, port: u16) -> Command {
    let mut cmd = Command::new(BIN);
    match config {
        Some(config) => cmd.arg("-c").arg(config),
        None => cmd.env("DANE_ROLL_CONFIG", "/nonexistent/dane-roll.toml"),
    };
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Wait until something accepts connections on 127.0.0.1:`port`, at most `limit`.
pub fn wait_listening(port: u16, limit: Duration) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < limit,
            "serve did not listen on port {port} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` over HTTP/1.0, waiting up to 60 s: (status, body).
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    get_with(port, path, "", Duration::from_secs(60))
}

/// `GET path` with extra header lines (each ending in CRLF), every step bounded by `limit`:
/// (status, body).
pub fn get_with(
    port: u16,
    path: &str,
    headers: &str,
    limit: Duration,
) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, limit)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(response(&text))
}

/// The status (0 if none) and the body of an HTTP response.
pub fn response(text: &str) -> (u16, String) {
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample whose name and labels start with `prefix`.
pub fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Scrape `/metrics` until it answers 200 with a text that satisfies `ok`, at most `limit`
/// (`what` names it in the failure); that text.
pub fn scrape_until(port: u16, limit: Duration, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let last = get(port, "/metrics");
        if let Ok((200, body)) = &last
            && ok(body)
        {
            return body.clone();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not in /metrics after {limit:?}:\n{last:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Send `signal` (`-TERM`, `-HUP`) to `child` with kill(1).
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {}", child.id());
}

/// Write `DIR/dane-roll.toml`: state in `DIR/state`, the resolver at `resolver` (with its
/// `timeout` if given), one manual service `mx` with the endpoint `HOST:25/smtp`, and `extra`
/// after it (alert channels). Its path.
pub fn mx_config(
    dir: &Path,
    resolver: &str,
    timeout: Option<&str>,
    host: &str,
    extra: &str,
) -> PathBuf {
    let config = dir.join("dane-roll.toml");
    let timeout = timeout
        .map(|t| format!("timeout = \"{t}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            r#"version = 1
state-dir = "{dir}/state"

[resolver]
address = "{resolver}"
{timeout}
[[service]]
name = "mx"
endpoints = ["{host}:25/smtp"]
chain-file = "{dir}/chain.pem"
provider = "manual"

[provider.manual]
kind = "manual"
{extra}"#,
            dir = dir.display(),
        ),
    )
    .unwrap();
    config
}
