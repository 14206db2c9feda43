//! `serve --targets FILE` (issue 17): the targets of a file are checked beside the configured
//! ones; after the file changes, SIGHUP makes `/metrics` show the new list; a file with a bad
//! line is reported (naming the line) and the previous list kept; at start a bad file is an
//! error. Against the lab's DNS (the signed zone `example.test`) with a real `serve`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dane_roll_lab::DnsLab;

struct Served(Option<Child>);

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn metrics(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// Wait until /metrics satisfies `ok`; its text.
fn wait_metrics(port: u16, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Some(body) = metrics(port)
            && ok(&body)
        {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{what}: not in /metrics after 40 s:\n{}",
            metrics(port).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hangup(child: &Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn has_host(body: &str, host: &str) -> bool {
    body.contains(&format!("host=\"{host}\""))
}

#[test]
fn targets_file_reloaded_on_sighup() {
    if !dane_roll_lab::require(&["named", "unbound", "unbound-control", "dig", "kill"])
        || !dane_roll_lab::require(&["nsupdate", "tsig-keygen", "dnssec-dsfromkey", "ip"])
    {
        return;
    }
    let lab = dane_roll_lab::LabDir::new().unwrap();
    let block = dane_roll_lab::loopback_block();
    let dns = DnsLab::builder()
        .block(block)
        .dir(lab.path())
        .knot(false)
        .start()
        .unwrap();
    let file = lab.path().join("targets");
    std::fs::write(&file, "# hosted\n\nacme.example.test:25   # first\n").unwrap();

    // At start, a bad file is an error naming the line, and serve does not run.
    let bad = lab.path().join("bad-targets");
    std::fs::write(&bad, "acme.example.test:25\n\nsender.example.test:99999\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dane-roll"))
        .args(["serve", "--resolver", &dns.resolver_addr().to_string()])
        .arg("--targets")
        .arg(&bad)
        .args(["--listen", "127.0.0.1:1"])
        .env("DANE_ROLL_CONFIG", "/nonexistent/dane-roll.toml")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", bad.display())) && stderr.contains("99999"),
        "{stderr}"
    );

    let port = dane_roll_lab::ports::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dane-roll"))
        .args(["serve", "--resolver", &dns.resolver_addr().to_string()])
        .arg("--targets")
        .arg(&file)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--interval",
            "3600",
            "--timeout",
            "10",
            "--key-algorithm",
            "ecdsa",
        ])
        .env("DANE_ROLL_CONFIG", "/nonexistent/dane-roll.toml")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let served = Served(Some(child));
    let child = served.0.as_ref().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            let mut stderr = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };

    let body = wait_metrics(port, "the file's first target", |b| {
        has_host(b, "acme.example.test")
    });
    assert!(!has_host(&body, "sender.example.test"), "{body}");

    // The file changes; SIGHUP: the next run (at once, not after the hour's interval) checks
    // the new list.
    std::fs::write(&file, "sender.example.test:25\n").unwrap();
    hangup(child);
    let body = wait_metrics(port, "the new target after SIGHUP", |b| {
        has_host(b, "sender.example.test")
    });
    assert!(!has_host(&body, "acme.example.test"), "{body}");

    // A bad line: reported with its line number, the previous list kept.
    std::fs::write(&file, "acme.example.test:25\nnot a target\n").unwrap();
    hangup(child);
    let started = Instant::now();
    while !log.lock().unwrap().contains(":2:") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no error for the bad line: {}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = log.lock().unwrap().clone();
    assert!(
        text.contains(&format!(
            "dane-roll: error: serve: SIGHUP: {}:2:",
            file.display()
        )) && text.contains("previous targets are kept"),
        "{text}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let body = metrics(port).unwrap();
    assert!(has_host(&body, "sender.example.test"), "{body}");
    assert!(!has_host(&body, "acme.example.test"), "{body}");
    drop(served);
    let _ = reader.join();
}
