//! `serve --targets FILE` (issue 17): the targets of a file are checked beside the configured
//! ones; after the file changes, SIGHUP makes `/metrics` show the new list; a file with a bad
//! line is reported (naming the line) and the previous list kept; at start a bad file is an
//! error. Against the lab's DNS (the signed zone `example.test`) with a real `serve`.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod mx_lab;
mod serve_support;

use mx_lab::{dns_tools, start_dns};
use serve_support::{Served, get, scrape_until, serve_command, signal};

/// Wait until /metrics satisfies `ok`; its text.
fn wait_metrics(port: u16, what: &str, ok: impl Fn(&str) -> bool) -> String {
    scrape_until(port, Duration::from_secs(40), what, ok)
}

fn has_host(body: &str, host: &str) -> bool {
    body.contains(&format!("host=\"{host}\""))
}

#[test]
fn targets_file_reloaded_on_sighup() {
    if !dns_tools(&["kill"]) {
        return;
    }
    let lab = dane_roll_lab::LabDir::new().unwrap();
    let dns = start_dns(&lab, dane_roll_lab::loopback_block());
    let file = lab.path().join("targets");
    std::fs::write(&file, "# hosted\n\nacme.example.test:25   # first\n").unwrap();

    // At start, a bad file is an error naming the line, and serve does not run.
    let bad = lab.path().join("bad-targets");
    std::fs::write(&bad, "acme.example.test:25\n\nsender.example.test:99999\n").unwrap();
    let out = serve_command(None, 1)
        .args(["--resolver", &dns.resolver_addr().to_string()])
        .arg("--targets")
        .arg(&bad)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", bad.display())) && stderr.contains("99999"),
        "{stderr}"
    );

    let port = dane_roll_lab::ports::free_port();
    let mut served = Served::spawn(
        serve_command(None, port)
            .args(["--resolver", &dns.resolver_addr().to_string()])
            .arg("--targets")
            .arg(&file)
            .args([
                "--interval",
                "3600",
                "--timeout",
                "10",
                "--key-algorithm",
                "ecdsa",
            ])
            .stderr(Stdio::piped()),
    );
    let stderr = served.child().stderr.take().unwrap();
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
    signal(served.child(), "-HUP");
    let body = wait_metrics(port, "the new target after SIGHUP", |b| {
        has_host(b, "sender.example.test")
    });
    assert!(!has_host(&body, "acme.example.test"), "{body}");

    // A bad line: reported with its line number, the previous list kept.
    std::fs::write(&file, "acme.example.test:25\nnot a target\n").unwrap();
    signal(served.child(), "-HUP");
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
    let (_, body) = get(port, "/metrics").unwrap();
    assert!(has_host(&body, "sender.example.test"), "{body}");
    assert!(!has_host(&body, "acme.example.test"), "{body}");
    drop(served);
    let _ = reader.join();
}
