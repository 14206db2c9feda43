//! One incident, one alert (issue 18): a wrong TLSA record makes several checks of one
//! endpoint fail at once (`tlsa-stale` and `tlsa-match`); the postmaster gets one alert naming
//! every failing check, nothing new while the set of failing checks changes at the same
//! severity, and one recovery when all clear. Runs the monitor's real `notify` with a webhook
//! channel to a sink on loopback.

mod run_report;

use std::net::IpAddr;

use dane_roll::config::{Config, Endpoint};
use dane_roll::monitor::alerts::{self, Scope};
use dane_roll::monitor::{Check, CheckKind, RunReport};
use dane_roll::notify::{MemoryAlerts, Notifier, Severity};
use dane_roll::probe::Verdict;
use dane_roll_lab::sink::Sink;
use run_report::smtp_endpoint;

const HOST: &str = "mail.example.com";
const ADDR: &str = "192.0.2.1";

/// A run of one endpoint whose checks have these statuses (the others ok).
fn run(stale: Severity, matched: Severity, expiry: Severity) -> RunReport {
    let ep = Endpoint::new(HOST, None, None).unwrap();
    let ip: IpAddr = ADDR.parse().unwrap();
    let checks = vec![
        Check::name(
            CheckKind::Resolver,
            "127.0.0.1:53",
            Severity::Ok,
            "validates",
        ),
        Check::endpoint(CheckKind::Addresses, &ep, None, Severity::Ok, "1 address"),
        Check::endpoint(CheckKind::TlsaSecure, &ep, None, Severity::Ok, "secure"),
        Check::endpoint(
            CheckKind::TlsaStale,
            &ep,
            None,
            stale,
            "3 1 1 ab12… matches no key served",
        ),
        Check::endpoint(
            CheckKind::TlsaMatch,
            &ep,
            Some(ip),
            matched,
            format!("the live chain at {ip} matches no record"),
        ),
        Check::endpoint(
            CheckKind::CertExpiry,
            &ep,
            Some(ip),
            expiry,
            "the certificate expires in 3 days",
        ),
    ];
    let status = dane_roll::monitor::worst([stale, matched, expiry]);
    run_report::run(
        status,
        checks,
        vec![smtp_endpoint(HOST, ip, status, Verdict::Pass)],
    )
}

/// A webhook sink, a notifier with one webhook channel to it, and a runtime to send with.
fn webhook_notifier() -> (Sink, Notifier, tokio::runtime::Runtime) {
    let sink = Sink::start();
    let text = format!(
        "version = 1\n[resolver]\naddress = \"127.0.0.1:53\"\n\
         [alerts.channel.ops]\nkind = \"webhook\"\nurl = \"http://{}/hook\"\n",
        sink.addr
    );
    let config = Config::from_str_named(&text, "incidents.toml").unwrap();
    let notifier = Notifier::new(&config.alerts).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (sink, notifier, rt)
}

#[test]
fn one_incident_one_alert_one_recovery() {
    let (sink, notifier, rt) = webhook_notifier();
    let mut memory = MemoryAlerts::new();
    let mut notify = |run: &RunReport| {
        rt.block_on(alerts::notify(
            &notifier,
            &mut memory,
            run,
            Scope::Everything,
        ))
        .unwrap()
    };
    let (ok, warn, crit) = (Severity::Ok, Severity::Warning, Severity::Critical);

    // A wrong record: stale and no match on the same endpoint. One alert, naming both.
    notify(&run(warn, crit, ok));
    let sent = sink.all();
    assert_eq!(sent.len(), 1, "one incident, one alert: {sent:#?}");
    assert_eq!(sent[0]["check"], format!("endpoint/{HOST}:25"));
    assert_eq!(sent[0]["severity"], "critical");
    let detail = sent[0]["detail"].as_str().unwrap();
    let summary = sent[0]["summary"].as_str().unwrap();
    for kind in ["tlsa-stale", "tlsa-match"] {
        assert!(summary.contains(kind), "{kind} not in {summary:?}");
        assert!(detail.contains(kind), "{kind} not in {detail:?}");
    }
    assert!(!summary.contains("cert-expiry"), "{summary}");

    // The same again: nothing.
    notify(&run(warn, crit, ok));
    assert_eq!(sink.all().len(), 1);

    // The set of failing checks changes at the same severity (the stale record removed, the
    // certificate now near expiry): no new page.
    notify(&run(ok, crit, warn));
    assert_eq!(sink.all().len(), 1, "{:#?}", sink.all());

    // All clear: one recovery.
    notify(&run(ok, ok, ok));
    let sent = sink.all();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1]["check"], format!("endpoint/{HOST}:25"));
    assert_eq!(sent[1]["recovered"], true);

    // And quiet after.
    notify(&run(ok, ok, ok));
    assert_eq!(sink.all().len(), 2);
}

/// Alert states an earlier version stored per check are retired on the first run: silently
/// while the endpoint's incident is bad (its alert carries the failure), with one recovery once
/// the endpoint is fine.
#[test]
fn per_check_states_of_earlier_versions_are_retired() {
    use dane_roll::notify::{AlertMemory, AlertState};
    let (sink, notifier, rt) = webhook_notifier();
    let old = format!("tlsa-match/{HOST}:25/{ADDR}");
    let bad = AlertState {
        severity: Severity::Critical,
        since: std::time::SystemTime::now(),
        last_sent: Some(std::time::SystemTime::now()),
    };
    let (ok, crit) = (Severity::Ok, Severity::Critical);

    // Still failing: the old state goes without a word; the incident pages once.
    let mut memory = MemoryAlerts::new();
    memory.put(&old, bad).unwrap();
    rt.block_on(alerts::notify(
        &notifier,
        &mut memory,
        &run(ok, crit, ok),
        Scope::Everything,
    ))
    .unwrap();
    let sent = sink.all();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["check"], format!("endpoint/{HOST}:25"));
    assert_eq!(memory.get(&old).unwrap(), None);

    // Fixed meanwhile: the old state's recovery is sent, once.
    let mut memory = MemoryAlerts::new();
    memory.put(&old, bad).unwrap();
    rt.block_on(alerts::notify(
        &notifier,
        &mut memory,
        &run(ok, ok, ok),
        Scope::Everything,
    ))
    .unwrap();
    let about: Vec<_> = sink
        .all()
        .into_iter()
        .filter(|b| b["check"] == old)
        .collect();
    assert_eq!(about.len(), 1, "{about:#?}");
    assert_eq!(about[0]["recovered"], true);
    assert_eq!(memory.get(&old).unwrap(), None);
}
