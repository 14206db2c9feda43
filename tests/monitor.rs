//! `dane-roll check` as a monitor (issue 7) against the lab: the signed zone `example.test` (MX
//! `mail.example.test`, the lab's receiving Postfix), the unsigned `insecure.test`, the validating
//! Unbound and BIND's ns1 as a resolver that does not validate. Each scenario runs the real binary
//! and asserts the exit code and the checks it names; `--notify` goes to a webhook on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dane_roll_lab::DnsLab;
use dane_roll_lab::pki::MX_HOST;
use dane_roll_lab::sink::Sink;
use serde_json::Value;

mod mx_lab;
mod serve_support;

use mx_lab::{
    MxLab, OWNER, WAIT, check_json, checks_of, dane_roll, mx_tools, other_record, publish,
    unpublish,
};
use serve_support::mx_config;

/// `check --format json` of `target` through the lab's resolver, ECDSA only (the lab's key).
fn check(resolver: &str, target: &str) -> (mx_lab::Out, Value) {
    check_json(resolver, target, "10", &[])
}

fn status_of(json: &Value, kind: &str) -> String {
    let found = checks_of(json, kind);
    assert!(!found.is_empty(), "no {kind} check in {json:#}");
    found[0].0.clone()
}

/// `check example.test --format nagios` through `resolver`, ECDSA only.
fn nagios_check(resolver: &str) -> mx_lab::Out {
    dane_roll(&[
        "check",
        "example.test",
        "--resolver",
        resolver,
        "--key-algorithm",
        "ecdsa",
        "--format",
        "nagios",
    ])
}

/// The host `NAME.example.test` at `ip` with `rdata` at its `_25._tcp` owner, served
/// everywhere, the resolver flushed.
fn host_with_record(dns: &DnsLab, name: &str, ip: std::net::Ipv4Addr, rdata: &str) {
    let update = format!("update add {name}.example.test. 300 IN A {ip}");
    dns.nsupdate(&["zone example.test.", &update]).unwrap();
    let owner = format!("_25._tcp.{name}.example.test");
    dns.add_tlsa(&owner, 300, rdata).unwrap();
    dns.wait_served_everywhere(&owner, rdata, WAIT).unwrap();
    dns.flush_resolver().unwrap();
}

/// The whole checklist on the lab, one scenario after the other.
#[test]
fn checklist_against_the_lab() {
    if !mx_tools(&[]) {
        return;
    }
    let mut w = MxLab::start();
    let (dns, pki, leaf, rx, block) = (&mut w.dns, &w.pki, &w.leaf, &w.rx, w.block);
    let resolver = dns.resolver_addr().to_string();
    let mx_ip = rx.addr().ip().to_string();

    // No TLSA record: DANE is not in effect, a warning (not critical).
    let (out, json) = check(&resolver, "example.test");
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(status_of(&json, "tlsa-secure"), "warning");
    assert!(
        checks_of(&json, "tlsa-secure")[0]
            .1
            .contains("DANE not in effect for this host"),
        "{json:#}"
    );

    // The matching record: OK, every check listed.
    let current = leaf.tlsa_311().unwrap();
    publish(dns, &current);
    let (out, json) = check(&resolver, "example.test");
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["domains"][0]["domain"], "example.test");
    assert_eq!(json["domains"][0]["mx"][0]["host"], MX_HOST);
    assert_eq!(json["endpoints"][0]["host"], MX_HOST);
    assert_eq!(json["endpoints"][0]["mx_of"][0], "example.test");
    assert_eq!(json["endpoints"][0]["tlsa"]["source"], "dns-secure");
    for kind in [
        "resolver",
        "mx-secure",
        "addresses",
        "tlsa-secure",
        "tcp-parent",
        "tlsa-records",
        "tlsa-stale",
        "rrsig-expiry",
        "tlsa-ttl",
        "tlsa-match",
        "cert-expiry",
    ] {
        assert_eq!(status_of(&json, kind), "ok", "{kind}: {json:#}");
    }
    // BIND's max-zone-ttl serves 300: outside the advised range, a note only.
    let ttl = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "tlsa-ttl")
        .unwrap();
    assert!(ttl["note"].as_str().unwrap().contains("TTL 300"), "{ttl:#}");
    let matched = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "tlsa-match")
        .unwrap();
    assert_eq!(matched["address"], mx_ip);
    assert_eq!(
        matched["id"],
        format!("tlsa-match/{MX_HOST}:25/{mx_ip}"),
        "{matched:#}"
    );

    // Text: the status line first.
    let text = dane_roll(&[
        "check",
        "example.test",
        "--resolver",
        &resolver,
        "--key-algorithm",
        "ecdsa",
    ]);
    assert_eq!(text.code, Some(0), "{text}");
    assert!(
        text.stdout
            .starts_with("DANE OK - example.test: TLSA matches on 1 of 1 addresses"),
        "{text}"
    );
    assert!(
        !text.stdout.contains('\x1b'),
        "no colour when not a terminal: {text}"
    );

    // A stale extra record: WARNING.
    let stale = other_record(pki);
    publish(dns, &stale);
    let (out, json) = check(&resolver, "example.test");
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(status_of(&json, "tlsa-stale"), "warning");
    assert_eq!(status_of(&json, "tlsa-match"), "ok");

    // Records piled above the bound (4): WARNING; the Nagios output says so.
    let mut piled = Vec::new();
    for _ in 0..3 {
        let r = other_record(pki);
        dns.add_tlsa(OWNER, 300, &r).unwrap();
        piled.push(r);
    }
    dns.wait_served_everywhere(OWNER, piled.last().unwrap(), WAIT)
        .unwrap();
    dns.flush_resolver().unwrap();
    let nagios = nagios_check(&resolver);
    assert_eq!(nagios.code, Some(1), "{nagios}");
    let first = nagios.stdout.lines().next().unwrap();
    assert!(first.starts_with("DANE WARNING - "), "{nagios}");
    let (_, perf) = first.split_once(" | ").expect("perfdata after ' | '");
    let perf = parse_perfdata(perf);
    assert_eq!(perf["tlsa_records"], ("5".to_string(), "4".to_string()));
    assert_eq!(perf["matched_addresses"].0, "1");
    assert!(perf.contains_key("time"));
    assert!(
        nagios
            .stdout
            .lines()
            .any(|l| l.starts_with("[WARNING] ") && l.contains("more than the bound of 4")),
        "{nagios}"
    );
    for r in &piled {
        dns.delete_tlsa(OWNER, r).unwrap();
    }
    dns.delete_tlsa(OWNER, &stale).unwrap();

    // Only a record for another key: CRITICAL, the first line names the address.
    unpublish(dns, &current);
    publish(dns, &stale);
    let nagios = nagios_check(&resolver);
    assert_eq!(nagios.code, Some(2), "{nagios}");
    assert!(
        nagios.stdout.starts_with(&format!(
            "DANE CRITICAL - {MX_HOST}:25: no TLSA record matches the certificate on {mx_ip}"
        )),
        "{nagios}"
    );

    // A tampered TLSA RRset (SERVFAIL): CRITICAL, senders defer.
    publish(dns, &current);
    dns.tamper(OWNER, "TLSA", &stale).unwrap();
    let (out, json) = check(&resolver, "example.test");
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(status_of(&json, "tlsa-secure"), "critical");
    assert!(
        checks_of(&json, "tlsa-secure")[0].1.contains("SERVFAIL"),
        "{json:#}"
    );
    dns.untamper().unwrap();

    // The unsigned zone: DANE not in effect for the domain, a warning.
    let (out, json) = check(&resolver, "insecure.test");
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(status_of(&json, "mx-secure"), "warning");
    assert!(
        checks_of(&json, "mx-secure")[0]
            .1
            .contains("DANE not in effect for this domain"),
        "{json:#}"
    );

    // A domain that does not exist: CRITICAL with the reason.
    let (out, json) = check(&resolver, "nosuch.example.test");
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        checks_of(&json, "target")[0].1.contains("NXDOMAIN"),
        "{json:#}"
    );

    // An unreachable host (its records published, nothing listening): UNKNOWN within --timeout.
    host_with_record(dns, "dead", block.host(99), &current);
    let out = dane_roll(&[
        "check",
        "dead.example.test",
        "--resolver",
        &resolver,
        "--timeout",
        "3",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.elapsed < Duration::from_secs(6), "{out}");
    assert_eq!(status_of(&out.json(), "tlsa-match"), "unknown");

    // A server that accepts and never speaks: UNKNOWN at the deadline, not after it.
    let silent = std::net::TcpListener::bind((block.host(98), 25)).unwrap();
    host_with_record(dns, "silent", block.host(98), &current);
    let out = dane_roll(&[
        "check",
        "silent.example.test",
        "--resolver",
        &resolver,
        "--timeout",
        "2",
        "--format",
        "nagios",
    ]);
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.stdout.starts_with("DANE UNKNOWN - "), "{out}");
    assert!(out.elapsed < Duration::from_secs(4), "{out}");
    drop(silent);

    // A resolver that does not answer: UNKNOWN within the deadline.
    dns.pause(dane_roll_lab::dns::Server::Unbound).unwrap();
    let out = dane_roll(&[
        "check",
        "example.test",
        "--resolver",
        &resolver,
        "--timeout",
        "2",
        "--format",
        "json",
    ]);
    dns.resume(dane_roll_lab::dns::Server::Unbound).unwrap();
    assert_eq!(out.code, Some(3), "{out}");
    assert!(out.elapsed < Duration::from_secs(4), "{out}");
    assert_eq!(status_of(&out.json(), "resolver"), "unknown");

    // A resolver that does not validate (BIND's ns1, authoritative only): UNKNOWN for the run.
    let ns1 = dns.addr(dane_roll_lab::dns::Server::Bind).to_string();
    let (out, json) = check(&ns1, "example.test");
    assert_eq!(out.code, Some(3), "{out}");
    assert_eq!(json["status"], "unknown");
    assert_eq!(json["checks"].as_array().unwrap().len(), 1, "{json:#}");
    assert!(
        checks_of(&json, "resolver")[0]
            .1
            .contains("does not recurse"),
        "{json:#}"
    );
}

/// `label=value[UOM];warn;crit;min;max` items: label → (value without UOM, warn).
fn parse_perfdata(text: &str) -> std::collections::HashMap<String, (String, String)> {
    let mut out = std::collections::HashMap::new();
    for item in text.split_whitespace() {
        let (label, rest) = item.split_once('=').expect("label=value");
        let fields: Vec<&str> = rest.split(';').collect();
        assert!(
            (1..=5).contains(&fields.len()),
            "perfdata item {item}: 1 to 5 fields"
        );
        let value = fields[0].trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
        assert!(value.parse::<f64>().is_ok(), "perfdata value in {item}");
        for f in &fields[1..] {
            assert!(
                f.is_empty()
                    || f.trim_end_matches(':').parse::<f64>().is_ok()
                    || f.trim_start_matches('~')
                        .trim_start_matches(':')
                        .parse::<f64>()
                        .is_ok(),
                "perfdata range in {item}"
            );
        }
        out.insert(
            label.to_string(),
            (value.to_string(), fields.get(1).unwrap_or(&"").to_string()),
        );
    }
    out
}

/// `check --notify`: a failure fires once, not again on the next run, and recovery is sent once
/// it is fixed; the state lives in the store of the configured state directory.
#[test]
fn notify_fires_once_and_recovers() {
    if !mx_tools(&[]) {
        return;
    }
    let w = MxLab::start();
    let (lab, dns, pki, leaf, rx) = (&w.lab, &w.dns, &w.pki, &w.leaf, &w.rx);
    let hook = Sink::start();
    let dir = lab.sub("monitor").unwrap();
    let config = mx_config(
        &dir,
        &dns.resolver_addr().to_string(),
        None,
        MX_HOST,
        &format!(
            "\n[alerts.channel.hook]\nkind = \"webhook\"\nurl = \"http://{}/hook\"\n",
            hook.addr
        ),
    );
    let config = config.display().to_string();
    let run = || {
        dane_roll(&[
            "-c",
            &config,
            "check",
            "--notify",
            "--key-algorithm",
            "ecdsa",
            "--timeout",
            "10",
        ])
    };
    // One alert per endpoint: a wrong record fails tlsa-match and tlsa-stale at once.
    let id = format!("endpoint/{MX_HOST}:25");
    let _ = rx.addr();

    // Only a record for another key: critical, one alert.
    let other = other_record(pki);
    publish(dns, &other);
    let out = run();
    assert_eq!(out.code, Some(2), "{out}");
    let sent = hook.about(&id);
    assert_eq!(sent.len(), 1, "{out}\n{sent:#?}");
    assert_eq!(sent[0]["severity"], "critical");
    assert_eq!(sent[0]["recovered"], false);
    let summary = sent[0]["summary"].as_str().unwrap();
    assert!(summary.contains("tlsa-match"), "{summary}");
    assert_eq!(hook.all().len(), 1, "one incident, one alert: {out}");

    // The same failure again: nothing new.
    let out = run();
    assert_eq!(out.code, Some(2), "{out}");
    assert_eq!(hook.about(&id).len(), 1, "{out}");

    // Fixed: one recovery message.
    let current = leaf.tlsa_311().unwrap();
    publish(dns, &current);
    unpublish(dns, &other);
    let out = run();
    assert_eq!(out.code, Some(0), "{out}");
    let sent = hook.about(&id);
    assert_eq!(sent.len(), 2, "{out}\n{sent:#?}");
    assert_eq!(sent[1]["recovered"], true);
    assert_eq!(sent[1]["severity"], "ok");
    assert!(std::path::Path::new(&format!("{}/state/state.db", dir.display())).exists());
}

// ----- benchmark helpers (run by benches/monitor.sh) -----

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Hold a lab for `benches/monitor.sh`: the DNS lab and one receiving Postfix, plus N hosts
/// `bN.example.test` (A → the Postfix, TLSA `3 1 1` of its key) added by UPDATE in batches and
/// checked served signed. Writes `RESOLVER`, `MX`, `RDATA`, `N`, the host list and the Postfix
/// master's PID (`POSTFIX_PID`, to count its CPU), then waits until the file is removed.
#[test]
#[ignore = "benchmark: run by benches/monitor.sh"]
fn bench_monitor_lab_hold() {
    let Some(file) = env("DANE_ROLL_BENCH_LAB_FILE") else {
        eprintln!("DANE_ROLL_BENCH_LAB_FILE is not set: nothing to do");
        return;
    };
    if !mx_tools(&[]) {
        return;
    }
    let n: usize = env("N").and_then(|v| v.parse().ok()).unwrap_or(500);
    let w = MxLab::start();
    let (dns, leaf, rx) = (&w.dns, &w.leaf, &w.rx);
    let rdata = leaf.tlsa_311().unwrap();
    let mx = rx.addr().ip().to_string();
    let hosts = dns.publish_fleet(n, &mx, &rdata);
    let list = format!("{file}.hosts");
    std::fs::write(&list, hosts.join("\n") + "\n").unwrap();
    let text = format!(
        "RESOLVER={}\nMX={mx}\nRDATA='{rdata}'\nN={n}\nHOSTS={list}\nPOSTFIX_PID={}\n",
        dns.resolver_addr(),
        rx.instance().master_pid().unwrap_or(0)
    );
    let tmp = format!("{file}.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while std::path::Path::new(&file).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One minimal STARTTLS session with OpenSSL, no DNS and no DANE: connect, greeting, EHLO,
/// STARTTLS, handshake, QUIT.
fn starttls_session(addr: &str, connector: &openssl::ssl::SslConnector) -> std::io::Result<()> {
    fn reply(r: &mut BufReader<std::net::TcpStream>) -> std::io::Result<()> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("closed"));
            }
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(());
            }
        }
    }
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let mut r = BufReader::new(tcp.try_clone()?);
    let mut w = tcp;
    reply(&mut r)?;
    w.write_all(b"EHLO bench.invalid\r\n")?;
    reply(&mut r)?;
    w.write_all(b"STARTTLS\r\n")?;
    reply(&mut r)?;
    let config = connector.configure().map_err(std::io::Error::other)?;
    let mut tls = config
        .verify_hostname(false)
        .connect("mail.example.test", w)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    tls.write_all(b"QUIT\r\n")?;
    let mut buf = [0u8; 512];
    let _ = tls.read(&mut buf);
    let _ = tls.shutdown();
    Ok(())
}

/// The ceiling: STARTTLS sessions per second the lab's Postfix serves to a minimal OpenSSL client
/// (`starttls_session`), at each concurrency in `CONCS`; prints `BENCH ceiling conc=C rate=R`.
#[test]
#[ignore = "benchmark: run by benches/monitor.sh"]
fn bench_starttls_ceiling() {
    let Some(mx) = env("MX") else {
        eprintln!("MX is not set: nothing to do");
        return;
    };
    let n: usize = env("SESSIONS").and_then(|v| v.parse().ok()).unwrap_or(1000);
    let concs: Vec<usize> = env("CONCS")
        .unwrap_or_else(|| "1 2 4 8 16".into())
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    let addr = format!("{mx}:25");
    let mut b = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let connector = Arc::new(b.build());
    for conc in concs {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let threads: Vec<_> = (0..conc)
            .map(|_| {
                let (next, failed, connector, addr) = (
                    next.clone(),
                    failed.clone(),
                    connector.clone(),
                    addr.clone(),
                );
                std::thread::spawn(move || {
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        if starttls_session(&addr, &connector).is_err() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        let failed = failed.load(Ordering::Relaxed);
        println!(
            "BENCH ceiling conc={conc} rate={:.1} secs={secs:.3} failed={failed}",
            n as f64 / secs
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
