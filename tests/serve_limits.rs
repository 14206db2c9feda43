//! Issue 14 (bounded work against hostile peers): `dane-roll serve` against hostile clients, the
//! real binary on 127.0.0.1. Each test is an attack that worked before:
//!
//! - slowloris: hundreds of connections that never finish their request head kept every file
//!   descriptor and `/metrics` stopped answering; now connections are bounded (the longest idle
//!   gives way) and a head must arrive within `--header-timeout`;
//! - a stalled request head was held open forever; now it is closed after 10 s;
//! - `/probe` ran any number of checks at once; now at most `--max-probes` (4), and a request
//!   over it is answered 503 after waiting 5 s;
//! - `--listen 0.0.0.0:…` served the network without a word; now it needs `--allow-remote` and
//!   a bearer token, which every request must then carry (401 without).
//!
//! The refusal of private `/probe` targets needs a resolver that answers: tests/exporter.rs.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod serve_support;

use serve_support::{BIN, Served, get_with as get, mx_config, wait_listening};

/// `dane-roll serve` on 127.0.0.1:`port` for one configured endpoint, asking `resolver` (each
/// query may take 30 s); `shell_prefix` runs before it in `sh` (a `ulimit`).
fn serve(
    dir: &std::path::Path,
    port: u16,
    resolver: &str,
    shell_prefix: &str,
    extra: &[&str],
) -> Served {
    let config = mx_config(dir, resolver, Some("30s"), "mx.example.test", "");
    let mut script = format!(
        "{shell_prefix} exec \"$0\" -c {config} serve --listen 127.0.0.1:{port} \
         --interval 600 --timeout 30",
        config = config.display()
    );
    for arg in extra {
        script.push(' ');
        script.push_str(arg);
    }
    let served = Served::spawn(
        Command::new("sh")
            .args(["-c", &script, BIN])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_listening(port, Duration::from_secs(20));
    served
}

/// A port nothing listens on (for a resolver that refuses at once).
fn dead_port() -> u16 {
    dane_roll_lab::ports::free_port()
}

#[test]
fn slowloris_does_not_starve_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = dane_roll_lab::ports::free_port();
    let resolver = format!("127.0.0.1:{}", dead_port());
    // The file descriptors of a small service (systemd's default soft limit is 1024): more slow
    // connections than it has descriptors.
    let _served = serve(dir.path(), port, &resolver, "ulimit -n 512 &&", &[]);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    let mut slow = Vec::new();
    for _ in 0..600 {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            continue; // the backlog is full: the old server stopped accepting
        };
        let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        slow.push(s);
    }
    // A scraper every 500 ms for 6 s while the slow clients trickle a byte each second.
    let started = Instant::now();
    let mut last_trickle = Instant::now();
    let mut answers = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        if last_trickle.elapsed() > Duration::from_secs(1) {
            for s in &mut slow {
                let _ = s.write_all(b"X");
            }
            last_trickle = Instant::now();
        }
        let asked = Instant::now();
        let answer = get(port, "/metrics", "", Duration::from_secs(2));
        answers.push((asked.elapsed(), answer.map(|(status, _)| status)));
        std::thread::sleep(Duration::from_millis(500));
    }
    let failed: Vec<_> = answers
        .iter()
        .filter(|(took, status)| !matches!(status, Ok(200)) || *took > Duration::from_secs(2))
        .collect();
    assert!(
        failed.is_empty(),
        "/metrics under a {}-connection slowloris: {} of {} scrapes failed or took over 2 s: \
         {failed:?}",
        slow.len(),
        failed.len(),
        answers.len()
    );
}

#[test]
fn a_stalled_request_head_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let port = dane_roll_lab::ports::free_port();
    let resolver = format!("127.0.0.1:{}", dead_port());
    let _served = serve(dir.path(), port, &resolver, "", &[]);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut partial = TcpStream::connect(("127.0.0.1", port)).unwrap();
    partial.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    for (name, stream) in [("silent", &mut silent), ("partial", &mut partial)] {
        stream
            .set_read_timeout(Some(
                Duration::from_secs(15).saturating_sub(started.elapsed()),
            ))
            .unwrap();
        let mut buf = [0u8; 1024];
        // Closed: EOF (or a 408 and then EOF); held open: the read times out.
        let closed = loop {
            match stream.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(
            closed,
            "the {name} connection was still open {:?} after it stalled (header timeout 10 s)",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed too early"
    );
}

#[test]
fn probe_work_is_bounded_over_all_requests() {
    let dir = tempfile::tempdir().unwrap();
    let port = dane_roll_lab::ports::free_port();
    // A resolver that never answers: each /probe run lasts its whole ?timeout=.
    let blackhole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let resolver = blackhole.local_addr().unwrap().to_string();
    let _served = serve(dir.path(), port, &resolver, "", &[]);
    // Twice the default limit of 4 runs at once.
    let started = Instant::now();
    let askers: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let path = format!("/probe?target=mx{i}.example.test:25&timeout=9");
                let answer = get(port, &path, "", Duration::from_secs(30));
                (started.elapsed(), answer)
            })
        })
        .collect();
    let answers: Vec<_> = askers.into_iter().map(|t| t.join().unwrap()).collect();
    let busy: Vec<_> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Ok((503, _))))
        .collect();
    let ran = answers
        .iter()
        .filter(|(_, a)| matches!(a, Ok((200, _))))
        .count();
    assert_eq!(ran, 4, "want 4 runs, 4 refused: {answers:?}");
    assert_eq!(busy.len(), 4, "want 4 runs, 4 refused: {answers:?}");
    for (took, answer) in busy {
        let (_, body) = answer.as_ref().unwrap();
        assert!(body.contains("--max-probes"), "{body}");
        assert!(
            *took < Duration::from_secs(8),
            "a refused /probe waited {took:?}, more than its 5 s"
        );
    }
    drop(blackhole);
}

/// Run `serve` expecting it to refuse to start: its output.
fn refused_start(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("none.toml");
    let mut child = Command::new(BIN)
        .args(["-c", &config.display().to_string(), "serve"])
        .args(args)
        .arg("mx.example.test:25")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_non_loopback_listen_needs_the_flag_and_a_token() {
    let port = dane_roll_lab::ports::free_port().to_string();
    let listen = format!("0.0.0.0:{port}");

    let out = refused_start(&["--listen", &listen]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(c) if c != 0 && c != 101),
        "{stderr}"
    );
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("--allow-remote"), "{stderr}");

    let out = refused_start(&["--listen", &listen, "--allow-remote"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(c) if c != 0 && c != 101),
        "{stderr}"
    );
    assert!(stderr.contains("--token-file"), "{stderr}");
}

#[test]
fn with_a_token_every_route_needs_it() {
    const TOKEN: &str = "PLANTED-bearer-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let port = dane_roll_lab::ports::free_port();
    let resolver = format!("127.0.0.1:{}", dead_port());
    let token_arg = format!("--token-file {}", token.display());
    let _served = serve(dir.path(), port, &resolver, "", &[&token_arg]);
    let limit = Duration::from_secs(10);
    for path in ["/metrics", "/probe?target=mx.example.test:25", "/"] {
        let (status, body) = get(port, path, "", limit).unwrap();
        assert_eq!(status, 401, "{path} without the token: {body}");
        assert!(!body.contains(TOKEN), "{body}");
        let wrong = "Authorization: Bearer PLANTED-bearer-token-012345678X\r\n";
        let (status, _) = get(port, path, wrong, limit).unwrap();
        assert_eq!(status, 401, "{path} with a wrong token");
    }
    let right = format!("Authorization: Bearer {TOKEN}\r\n");
    let (status, body) = get(port, "/metrics", &right, limit).unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(port, "/", &right.replace("Bearer", "bearer"), limit).unwrap();
    assert_eq!(status, 200);
}
