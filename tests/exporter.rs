//! `dane-roll serve` (issue 7): the real binary on 127.0.0.1 against a configuration pointing at
//! the lab; `/metrics` scraped for real (values asserted, `promtool check metrics` run on the
//! text), `/probe?target=` for an ad-hoc target (refused for the lab's loopback hosts without
//! `--allow-private-targets`), and a clean stop on SIGTERM; and
//! `dane_rollover_phase` following the phase of a rollover in the state store.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dane_roll::config::Scheme;
use dane_roll::rollover::{KeyHash, Phase, PhaseName, Slot, StageRequest, Timestamp, stage};
use dane_roll::store::Store;
use dane_roll_lab::pki::MX_HOST;

mod mx_lab;
mod serve_support;

use mx_lab::{MxLab, mx_tools, publish};
use serve_support::{
    Served, get, mx_config, sample, scrape_until, serve_command, signal, wait_listening,
};

#[test]
fn exporter_serves_metrics_probe_and_stops_on_sigterm() {
    if !mx_tools(&["kill"]) {
        return;
    }
    let w = MxLab::start();
    let (lab, dns, leaf, rx) = (&w.lab, &w.dns, &w.leaf, &w.rx);
    let current = leaf.tlsa_311().unwrap();
    publish(dns, &current);

    let dir = lab.sub("exporter").unwrap();
    let config = mx_config(&dir, &w.resolver(), None, MX_HOST, "");
    let port = dane_roll_lab::ports::free_port();
    let mut served = Served::spawn(
        serve_command(Some(&config), port)
            .args([
                "--interval",
                "2",
                "--timeout",
                "10",
                "--key-algorithm",
                "ecdsa",
                // The lab's hosts are on loopback (127.53.N.x).
                "--allow-private-targets",
            ])
            .stderr(Stdio::piped()),
    );

    // The first scheduled run lands in /metrics.
    let metrics = scrape_until(port, Duration::from_secs(30), "a run", |body| {
        body.contains("dane_last_check_timestamp_seconds")
    });
    let hp = format!("host=\"{MX_HOST}\",port=\"25\"");
    let addr = rx.addr().ip().to_string();
    assert_eq!(sample(&metrics, "dane_status "), Some(0.0), "{metrics}");
    assert_eq!(
        sample(&metrics, &format!("dane_tlsa_records{{{hp}}}")),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, &format!("dane_tlsa_secure{{{hp}}}")),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("dane_endpoint_match{{{hp},address=\"{addr}\",algorithm=\"ecdsa\"}}")
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            &format!("dane_check_status{{{hp},check=\"tlsa-match\"}}")
        ),
        Some(0.0),
        "{metrics}"
    );
    let rrsig = sample(
        &metrics,
        &format!("dane_rrsig_expiry_timestamp_seconds{{{hp}}}"),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(rrsig > now, "RRSIG expiry {rrsig} in the future");
    let cert = sample(
        &metrics,
        &format!(
            "dane_cert_expiry_timestamp_seconds{{{hp},address=\"{addr}\",algorithm=\"ecdsa\"}}"
        ),
    )
    .unwrap();
    assert!(cert > now, "{metrics}");
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");

    // promtool agrees with the format.
    match dane_roll_lab::tools::which("promtool") {
        Some(promtool) => {
            let mut child = Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(metrics.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}\n{metrics}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None if dane_roll_lab::tools::in_ci() => panic!("promtool is missing in CI"),
        None => eprintln!("promtool not installed: metrics format not checked by it"),
    }

    // /probe: the mail domain, checked now; only that target's metrics.
    let (status, body) = get(port, "/probe?target=example.test&timeout=10").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        sample(&body, &format!("dane_tlsa_records{{{hp}}}")),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "dane_check_status{host=\"example.test\",port=\"\",check=\"mx-secure\"}"
        ),
        Some(0.0),
        "{body}"
    );
    assert!(!body.contains("dane_rollover_phase"), "{body}");
    let (status, _) = get(port, "/probe").unwrap();
    assert_eq!(status, 400);
    let (status, body) = get(port, "/probe?target=nosuch.example.test&timeout=5").unwrap();
    assert_eq!(status, 200);
    assert_eq!(sample(&body, "dane_status "), Some(2.0), "{body}");

    // Without --allow-private-targets (issue 14), /probe does not connect to the lab's
    // loopback hosts: 403 naming the target, the address and the flag. Before, it probed them.
    let fenced_port = dane_roll_lab::ports::free_port();
    let _fenced = Served::spawn(serve_command(Some(&config), fenced_port).args([
        "--interval",
        "600",
        "--timeout",
        "10",
    ]));
    wait_listening(fenced_port, Duration::from_secs(20));
    let (status, body) = get(fenced_port, "/probe?target=example.test&timeout=10").unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"example.test\""), "{body}");
    assert!(
        body.contains(&format!("{MX_HOST} is {addr} (loopback")),
        "{body}"
    );
    assert!(body.contains("--allow-private-targets"), "{body}");
    assert!(!body.contains("dane_endpoint_match"), "{body}");

    // SIGTERM: a clean stop, exit 0.
    let mut child = served.take();
    signal(&child, "-TERM");
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("dane-roll serve did not stop within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        get(port, "/metrics").is_err(),
        "still listening after SIGTERM"
    );
}

/// The `dane_rollover_phase` samples of one service and slot: `(phase, value)`.
fn phases(text: &str, service: &str, slot: &str) -> Vec<(String, f64)> {
    let prefix = format!("dane_rollover_phase{{service=\"{service}\",slot=\"{slot}\",phase=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (phase, value) = rest.split_once("\"} ")?;
            Some((phase.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Write `service`'s rollover of the default slot into the store in `state`, in `phase`.
fn store_rollover(state: &Path, service: &str, phase: Phase) {
    let mut store = Store::open(state).unwrap();
    let step = stage(
        StageRequest {
            service: service.into(),
            slot: Slot::default(),
            scheme: Scheme::CurrentNext,
            ttl: 3600,
            owners: vec!["_25._tcp.mx.example.test.".parse().expect("an owner name")],
            endpoints: vec!["mx.example.test:25".into()],
            old: Some(KeyHash([1; 32])),
            new: KeyHash([2; 32]),
            next: None,
            issuers: vec![],
            chain: state.join("staged.pem"),
            previous_chain: Some(state.join("live.pem")),
            confirmed_since: None,
        },
        Timestamp::from_secs(1_700_000_000),
    )
    .unwrap();
    let mut rollover = step.next;
    rollover.phase = phase;
    store
        .save(
            &rollover,
            &step.events,
            &[],
            Timestamp::from_secs(1_700_000_100),
        )
        .unwrap();
}

/// `dane_rollover_phase` follows the store: 1 for the phase the rollover is in, 0 for every
/// other, and a later run shows the phase the rollover moved to. No lab: the resolver is a closed
/// port, so each run is quick (and UNKNOWN); the phases come from the store all the same.
#[test]
fn rollover_phase_metric_follows_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = published(dir.path());
    let (port, _served) = serve_each_second(&config);
    let every: Vec<&str> = PhaseName::ALL.iter().map(|p| p.as_str()).collect();
    let found = phase_shown(port, "published");
    let mut names: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    names.sort_unstable();
    let mut want = every.clone();
    want.sort_unstable();
    assert_eq!(names, want, "one sample per phase: {found:?}");
    assert_eq!(
        found.iter().filter(|(_, v)| *v == 1.0).count(),
        1,
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .all(|(p, v)| *v == if p == "published" { 1.0 } else { 0.0 }),
        "{found:?}"
    );

    // The rollover moves on in the store: the next run shows it.
    store_rollover(
        &state,
        "mx",
        Phase::Aged {
            since: Timestamp::from_secs(1_700_000_200),
            forced: false,
            install_failures: 0,
        },
    );
    let found = phase_shown(port, "aged");
    assert!(
        found
            .iter()
            .all(|(p, v)| *v == if p == "aged" { 1.0 } else { 0.0 }),
        "{found:?}"
    );
}

/// `/metrics` answers at once while a rollover holds the store's write lock and the store needs
/// a migration (an older dane-roll wrote it and its timer is mid-rollover as the upgraded
/// exporter starts): the store is read off the async runtime, so the wait for the lock does not
/// hold up the scrapes. No lab: the resolver is a closed port, each run is quick. Before the fix
/// the exporter opened the store (migrations, a 5 s busy timeout) on the runtime's only thread,
/// and every scrape during a run waited behind it.
#[test]
fn metrics_answer_while_a_rollover_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (config, state) = published(dir.path());
    // The schema of the release before (without its last migration), and a rollover of that
    // release holding the write lock.
    let holder = rusqlite::Connection::open(state.join(dane_roll::store::DB_FILE)).unwrap();
    holder
        .execute_batch(
            "DROP TABLE tlsrpt_sessions; DROP TABLE tlsrpt_reports; PRAGMA user_version = 4;",
        )
        .unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    holder
        .execute_batch("UPDATE rollovers SET updated = updated + 1")
        .unwrap();

    let (port, _served) = serve_each_second(&config);
    wait_listening(port, Duration::from_secs(30));

    // Scrapes over several runs (one a second) each answer well under the 5 s busy timeout.
    let mut slowest = Duration::ZERO;
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(8) {
        let asked = Instant::now();
        let (status, _) = get(port, "/metrics").unwrap();
        slowest = slowest.max(asked.elapsed());
        assert_eq!(status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a scrape took {slowest:?} while the store was locked"
    );

    // The lock released, the phases are read again.
    holder.execute_batch("ROLLBACK").unwrap();
    phase_shown(port, "published");
}

/// A configuration in `dir` whose resolver is a closed port (each run is quick, and UNKNOWN),
/// and `mx`'s rollover in its store in the phase Published: (configuration, state directory).
fn published(dir: &Path) -> (PathBuf, PathBuf) {
    let state = dir.join("state");
    let dead = dane_roll_lab::ports::free_port();
    let config = mx_config(
        dir,
        &format!("127.0.0.1:{dead}"),
        Some("1s"),
        "mx.example.test",
        "",
    );
    store_rollover(
        &state,
        "mx",
        Phase::Published {
            since: Timestamp::from_secs(1_700_000_100),
            confirmed_at: None,
            checks: 0,
        },
    );
    (config, state)
}

/// `serve` with `config`, a run every second: its port and process.
fn serve_each_second(config: &Path) -> (u16, Served) {
    let port = dane_roll_lab::ports::free_port();
    let served = Served::spawn(serve_command(Some(config), port).args([
        "--interval",
        "1",
        "--timeout",
        "3",
    ]));
    (port, served)
}

/// Scrape until `mx`'s rollover shows `want` (value 1): every `dane_rollover_phase` sample of it.
fn phase_shown(port: u16, want: &str) -> Vec<(String, f64)> {
    let body = scrape_until(
        port,
        Duration::from_secs(30),
        &format!("dane_rollover_phase showing {want}"),
        |body| {
            phases(body, "mx", Slot::DEFAULT)
                .iter()
                .any(|(p, v)| p == want && *v == 1.0)
        },
    );
    phases(&body, "mx", Slot::DEFAULT)
}
