//! Issue 7 (alerts): every channel against a real receiver on loopback.
//!
//! - webhook and Telegram: a small HTTP server on 127.0.0.1:0 (a thread, stopped and joined on
//!   drop) that records each request and answers as told, or never;
//! - email via SMTP: the lab's receiving Postfix (STARTTLS with a test PKI made at run time),
//!   the mail found in its maillog by Message-ID; skipped when Postfix is not installed;
//! - email via sendmail: a shell script that records its arguments and standard input.
//!
//! Every error and output is checked for the planted token and password.

mod run_report;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::net::IpAddr;

use dane_roll::config::{Alerts, Config, Endpoint};
use dane_roll::monitor::alerts::{self as monitor_alerts, Scope};
use dane_roll::monitor::{Check, CheckKind, RunReport};
use dane_roll::notify::{
    Alert, ChannelError, Delivery, MemoryAlerts, Notifier, Sent, Severity, check_id,
};
use dane_roll::probe::Verdict;
use run_report::smtp_endpoint;
use tempfile::TempDir;

/// A bot token planted in the token file; it must never be shown.
const TOKEN: &str = "123456789:AAPLANTED-bot-token-5f4e3d2c1b";
/// A password planted in the credentials file.
const PASSWORD: &str = "PLANTED-smtp-password-a1b2c3";
/// The secret path of a webhook URL read from a file.
const HOOK_PATH: &str = "/services/T000/PLANTEDHOOKPATH";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Fail if a planted secret shows in `text`.
fn assert_clean(text: &str) {
    for secret in [TOKEN, PASSWORD, "PLANTEDHOOKPATH", "AAPLANTED"] {
        assert!(
            !text.contains(secret),
            "secret {secret:?} leaked in:\n{text}"
        );
    }
}

/// Every rendering of a delivery: each error's Display and Debug, and the combined error.
fn rendered(delivery: Delivery) -> String {
    let mut out = String::new();
    for o in &delivery.outcomes {
        if let Err(e) = &o.result {
            out.push_str(&format!("{e}\n{e:?}\n"));
        }
    }
    if let Err(e) = delivery.into_result() {
        out.push_str(&format!("{e}\n{e:?}\n"));
    }
    out
}

struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: TempDir::new().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn secret(&self, name: &str, value: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, format!("{value}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

/// `[alerts]` from configuration text, through the real parser and validation.
fn alerts(toml: &str) -> Alerts {
    let text = format!("version = 1\n[resolver]\naddress = \"127.0.0.1:53\"\n{toml}");
    match Config::from_str_named(&text, "notify-test.toml") {
        Ok(config) => config.alerts,
        Err(e) => panic!("config rejected: {e}\n{text}"),
    }
}

fn alert() -> Alert {
    Alert::tlsa_mismatch(
        "mail.example.com",
        25,
        "192.0.2.1".parse().unwrap(),
        &["3 1 1 0123456789abcdef".to_owned()],
    )
    .at(UNIX_EPOCH + Duration::from_secs(1_738_324_800))
}

/// One recorded HTTP request.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// How the fake answers: a status and a body, or never (hold the connection).
type Answer = Option<(u16, String)>;

/// An HTTP/1.1 server on 127.0.0.1:0 in a thread; stopped and joined on drop.
struct FakeHttp {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHttp {
    fn start(answer: impl Fn(&Request) -> Answer + Send + 'static) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &r, &s, &answer),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeHttp {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Request>>,
    stop: &AtomicBool,
    answer: &dyn Fn(&Request) -> Answer,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let request = Request {
        method,
        target,
        headers,
        body,
    };
    requests.lock().unwrap().push(request.clone());
    let mut stream = stream;
    match answer(&request) {
        Some((status, body)) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
        }
        None => {
            // Hold the connection until the test ends (or 10 s).
            let t0 = Instant::now();
            while !stop.load(Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn ok(_: &Request) -> Answer {
    Some((200, "{}".to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Webhook

#[test]
fn webhook_posts_the_documented_json() {
    let server = FakeHttp::start(ok);
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts.channel.ops]\nkind = \"webhook\"\nurl = \"{}\"\n",
        server.url("/hooks/dane?x=1")
    )))
    .unwrap();
    assert!(
        !format!("{notifier:?}").contains("/hooks/dane"),
        "{notifier:?}"
    );
    let delivery = notifier.send_blocking(&alert()).unwrap();
    let sent = delivery.into_result().unwrap();
    assert_eq!(sent, vec![("ops".to_owned(), Sent::Http { status: 200 })]);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/hooks/dane?x=1");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        r.header("user-agent")
            .unwrap_or("")
            .starts_with("dane-roll/")
    );
    let body = r.json();
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "check",
            "detail",
            "recovered",
            "severity",
            "subject",
            "summary",
            "time"
        ]
    );
    assert_eq!(body["check"], "tlsa-match/mail.example.com:25/192.0.2.1");
    assert_eq!(body["subject"], "mail.example.com:25");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["time"], "2025-01-31T12:00:00Z");
    assert_eq!(body["recovered"], false);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("DANE senders will defer mail to mail.example.com")
    );
}

#[test]
fn webhook_500_names_the_channel_and_hides_the_secret_url() {
    let scratch = Scratch::new();
    let server = FakeHttp::start(|r| {
        // A receiver that echoes the URL path in its error must not leak it either.
        Some((500, format!("internal error at {}", r.target)))
    });
    let url_file = scratch.secret("hook-url", &server.url(HOOK_PATH));
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts.channel.ops]\nkind = \"webhook\"\nurl-file = \"{}\"\n",
        url_file.display()
    )))
    .unwrap();
    let delivery = notifier.send_blocking(&alert()).unwrap();
    assert!(!delivery.delivered());
    assert!(matches!(
        delivery.outcomes[0].result,
        Err(ChannelError::HttpStatus { status: 500, .. })
    ));
    let text = rendered(delivery);
    assert!(text.contains("alert channel \"ops\" (webhook)"), "{text}");
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(text.contains(&format!("http://{}", server.addr)), "{text}");
    assert!(text.contains("check its logs"), "{text}");
    assert_clean(&text);
    assert_eq!(server.requests().len(), 1, "the request was made");
}

#[test]
fn webhook_timeout_is_an_error_within_the_timeout() {
    let server = FakeHttp::start(|_| None);
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts]\ntimeout = \"1s\"\n[alerts.channel.slow]\nkind = \"webhook\"\nurl = \"{}\"\n",
        server.url("/hook")
    )))
    .unwrap();
    let t0 = Instant::now();
    let delivery = notifier.send_blocking(&alert()).unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(matches!(
        delivery.outcomes[0].result,
        Err(ChannelError::Timeout { .. })
    ));
    let text = rendered(delivery);
    assert!(text.contains("alert channel \"slow\" (webhook)"), "{text}");
    assert!(text.contains("did not answer within 1 s"), "{text}");
}

#[test]
fn webhook_connection_refused_says_so() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts.channel.ops]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/x\"\n"
    )))
    .unwrap();
    let delivery = notifier.send_blocking(&alert()).unwrap();
    assert!(
        matches!(
            delivery.outcomes[0].result,
            Err(ChannelError::Connect { .. })
        ),
        "{:?}",
        delivery.outcomes[0].result
    );
    let text = rendered(delivery);
    assert!(
        text.contains("cannot connect to http://127.0.0.1:"),
        "{text}"
    );
}

#[test]
fn one_failing_channel_does_not_stop_the_others() {
    let bad = FakeHttp::start(|_| Some((503, String::new())));
    let good = FakeHttp::start(ok);
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts.channel.a-bad]\nkind = \"webhook\"\nurl = \"{}\"\n\
         [alerts.channel.b-good]\nkind = \"webhook\"\nurl = \"{}\"\n",
        bad.url("/"),
        good.url("/")
    )))
    .unwrap();
    let delivery = notifier.send_blocking(&alert()).unwrap();
    assert!(delivery.delivered());
    assert_eq!(delivery.outcomes.len(), 2);
    assert_eq!(good.requests().len(), 1);
    let failed: Vec<&str> = delivery.failures().map(|o| o.channel.as_str()).collect();
    assert_eq!(failed, ["a-bad"]);
    let err = delivery.into_result().unwrap_err().to_string();
    assert!(err.starts_with("1 of 2 alert channels failed"), "{err}");
    assert!(
        err.contains("\"a-bad\"") && !err.contains("\"b-good\""),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Firing policy through the notifier

#[test]
fn observe_fires_once_stays_quiet_then_recovers() {
    let server = FakeHttp::start(ok);
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts]\nrepeat-interval = \"1h\"\n[alerts.channel.ops]\nkind = \"webhook\"\nurl = \"{}\"\n",
        server.url("/")
    )))
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut memory = MemoryAlerts::new();
    let t0 = SystemTime::now();
    let bad = |minutes: u64| alert().at(t0 + Duration::from_secs(minutes * 60));
    let check = check_id(
        "tlsa-match",
        "mail.example.com",
        25,
        Some("192.0.2.1".parse().unwrap()),
    );
    let good = |minutes: u64| {
        Alert::new(
            &check,
            "mail.example.com:25",
            Severity::Ok,
            "TLSA records match the certificate served at 192.0.2.1",
            "",
        )
        .at(t0 + Duration::from_secs(minutes * 60))
    };

    let sent = |d: Option<Delivery>| d.map(|d| d.delivered());
    assert_eq!(
        sent(rt.block_on(notifier.observe(&mut memory, &bad(0))).unwrap()),
        Some(true)
    );
    assert_eq!(
        sent(rt.block_on(notifier.observe(&mut memory, &bad(5))).unwrap()),
        None
    );
    assert_eq!(
        sent(
            rt.block_on(notifier.observe(&mut memory, &bad(61)))
                .unwrap()
        ),
        Some(true)
    );
    assert_eq!(
        sent(
            rt.block_on(notifier.observe(&mut memory, &good(62)))
                .unwrap()
        ),
        Some(true)
    );
    assert_eq!(
        sent(
            rt.block_on(notifier.observe(&mut memory, &good(63)))
                .unwrap()
        ),
        None
    );

    let bodies: Vec<serde_json::Value> = server.requests().iter().map(Request::json).collect();
    assert_eq!(bodies.len(), 3, "fire, repeat, recovery");
    assert_eq!(bodies[0]["severity"], "critical");
    assert!(
        bodies[1]["summary"]
            .as_str()
            .unwrap()
            .starts_with("still critical:")
    );
    assert_eq!(bodies[2]["severity"], "ok");
    assert_eq!(bodies[2]["recovered"], true);
    assert!(
        bodies[2]["detail"]
            .as_str()
            .unwrap()
            .starts_with("It was critical since")
    );
}

// ---------------------------------------------------------------------------------------------
// Checks that are no longer made: their alert is closed, their state forgotten

/// A run of `dane-roll check` as the monitor reports it: per endpoint `(host, address, status of
/// its tlsa-match check)`, with ok address and TLSA lookups; `resolver` is the resolver check's
/// status.
fn run_of(resolver: Severity, endpoints: &[(&str, &str, Severity)]) -> RunReport {
    let mut run = run_report::run(
        Severity::Ok,
        vec![Check::name(
            CheckKind::Resolver,
            "127.0.0.1:53",
            resolver,
            "the resolver validates",
        )],
        Vec::new(),
    );
    for (host, address, status) in endpoints {
        let ep = Endpoint::new(host, None, None).unwrap();
        let ip: IpAddr = address.parse().unwrap();
        let verdict = if *status == Severity::Ok {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        run.checks.extend([
            Check::endpoint(CheckKind::Addresses, &ep, None, Severity::Ok, "1 address"),
            Check::endpoint(CheckKind::TlsaSecure, &ep, None, Severity::Ok, "secure"),
            Check::endpoint(
                CheckKind::TlsaMatch,
                &ep,
                Some(ip),
                *status,
                format!("the live chain at {ip}: {status}"),
            ),
        ]);
        run.endpoints
            .push(smtp_endpoint(host, ip, *status, verdict));
    }
    run
}

#[test]
fn vanished_checks_recover_once_and_are_forgotten() {
    use dane_roll::notify::AlertMemory;
    let server = FakeHttp::start(ok);
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts.channel.ops]\nkind = \"webhook\"\nurl = \"{}\"\n",
        server.url("/")
    )))
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut memory = MemoryAlerts::new();
    let notify = |memory: &mut MemoryAlerts, run: &RunReport, scope: Scope| {
        rt.block_on(monitor_alerts::notify(&notifier, memory, run, scope))
            .unwrap()
    };
    // One alert per endpoint (its incident), whatever check or address fails.
    let a = "endpoint/a.example:25";
    let b2 = "endpoint/b.example:25";
    let bodies =
        || -> Vec<serde_json::Value> { server.requests().iter().map(Request::json).collect() };
    let (bad, good) = (Severity::Critical, Severity::Ok);

    // a fails and alerts; b is fine.
    let both = run_of(
        good,
        &[
            ("a.example", "192.0.2.1", bad),
            ("b.example", "192.0.2.2", good),
        ],
    );
    let summary = notify(&mut memory, &both, Scope::Everything);
    assert_eq!(summary.sent.len(), 1, "{summary:?}");
    assert_eq!(bodies()[0]["check"], a);

    // a is removed from the configuration: one recovery, "no longer checked", then its states go.
    let only_b = run_of(good, &[("b.example", "192.0.2.2", good)]);
    let summary = notify(&mut memory, &only_b, Scope::Everything);
    assert_eq!(summary.sent.len(), 1, "{summary:?}");
    let sent = bodies();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["check"], a);
    assert_eq!(sent[1]["recovered"], true);
    assert_eq!(sent[1]["severity"], "ok");
    let text = sent[1]["summary"].as_str().unwrap();
    assert!(
        text.contains("no longer checked") && text.contains("a.example:25"),
        "{text}"
    );
    assert!(
        sent[1]["detail"]
            .as_str()
            .unwrap()
            .contains("was critical since"),
        "{sent:#?}"
    );
    let left = memory.checks().unwrap();
    assert!(!left.iter().any(|id| id.contains("a.example")), "{left:?}");
    // ... and nothing more on the next runs.
    assert!(
        notify(&mut memory, &only_b, Scope::Everything)
            .sent
            .is_empty()
    );
    assert_eq!(bodies().len(), 2);

    // b's address fails, then b moves to another address that is fine: b's incident recovers,
    // also on a run of given targets (b was checked).
    notify(
        &mut memory,
        &run_of(good, &[("b.example", "192.0.2.2", bad)]),
        Scope::Checked,
    );
    assert_eq!(bodies().len(), 3);
    let moved = run_of(good, &[("b.example", "192.0.2.3", good)]);
    let summary = notify(&mut memory, &moved, Scope::Checked);
    assert_eq!(summary.sent.len(), 1, "{summary:?}");
    let sent = bodies();
    assert_eq!(sent[3]["check"], b2);
    assert_eq!(sent[3]["recovered"], true);
    assert_eq!(memory.get(b2).unwrap().unwrap().severity, good);

    // A run of other targets leaves c's failure alone; a blind run (the resolver unusable) and a
    // run whose address lookup failed retire nothing, even for everything.
    let c = "endpoint/c.example:25";
    notify(
        &mut memory,
        &run_of(good, &[("c.example", "192.0.2.4", bad)]),
        Scope::Checked,
    );
    assert_eq!(bodies().len(), 5);
    assert!(notify(&mut memory, &moved, Scope::Checked).sent.is_empty());
    let blind = notify(
        &mut memory,
        &run_of(Severity::Unknown, &[]),
        Scope::Everything,
    );
    assert!(
        blind
            .sent
            .iter()
            .all(|(id, _, _)| id.starts_with("resolver/")),
        "only the resolver's own alert: {blind:?}"
    );
    let mut lookup_failed = run_of(good, &[("c.example", "192.0.2.4", bad)]);
    lookup_failed
        .checks
        .retain(|c| c.kind != CheckKind::TlsaMatch);
    lookup_failed.endpoints[0].addresses.clear();
    for check in &mut lookup_failed.checks {
        if check.kind == CheckKind::Addresses {
            check.status = Severity::Unknown;
        }
    }
    // The lookup failed: the incident turns unknown (news), never a recovery.
    let summary = notify(&mut memory, &lookup_failed, Scope::Checked);
    assert!(
        !summary.sent.iter().any(
            |(id, title, _)| id == c && (title.contains("RECOVERED") || title.contains(" OK "))
        ),
        "{summary:?}"
    );
    assert_eq!(memory.get(c).unwrap().unwrap().severity, Severity::Unknown);
    // The rollover driver's alerts are not the monitor's.
    memory
        .put(
            "rollover/mx/default/installed",
            dane_roll::notify::AlertState {
                severity: bad,
                since: SystemTime::now(),
                last_sent: None,
            },
        )
        .unwrap();
    notify(&mut memory, &only_b, Scope::Everything);
    assert!(
        memory
            .get("rollover/mx/default/installed")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        memory.get(c).unwrap(),
        None,
        "c is gone for a run of everything"
    );
}

// ---------------------------------------------------------------------------------------------
// Telegram

fn telegram_alerts(scratch: &Scratch, api_url: &str, extra: &str) -> Alerts {
    let token = scratch.secret("bot-token", TOKEN);
    alerts(&format!(
        "{extra}[alerts.channel.phone]\nkind = \"telegram\"\ntoken-file = \"{}\"\n\
         chat-id = -1001234567890\napi-url = \"{api_url}\"\n",
        token.display()
    ))
}

#[test]
fn telegram_posts_to_the_bot_path() {
    let scratch = Scratch::new();
    let server = FakeHttp::start(|_| {
        Some((
            200,
            r#"{"ok":true,"result":{"message_id":42,"chat":{"id":-1001234567890}}}"#.to_owned(),
        ))
    });
    // A trailing slash on api-url is accepted.
    let notifier = Notifier::new(&telegram_alerts(&scratch, &server.url("/"), "")).unwrap();
    let sent = notifier
        .send_blocking(&alert())
        .unwrap()
        .into_result()
        .unwrap();
    assert_eq!(
        sent,
        vec![(
            "phone".to_owned(),
            Sent::Telegram {
                message_id: Some(42)
            }
        )]
    );
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["chat_id"], -1001234567890_i64);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("[dane-roll] CRITICAL mail.example.com:25: TLSA records match no"),
        "{text}"
    );
    assert!(text.contains("check:    tlsa-match/mail.example.com:25/192.0.2.1"));
    assert_eq!(body["disable_web_page_preview"], true);
    assert_clean(text);
}

#[test]
fn telegram_401_is_clear_and_never_shows_the_token() {
    let scratch = Scratch::new();
    let server = FakeHttp::start(|_| {
        Some((
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#.to_owned(),
        ))
    });
    let notifier = Notifier::new(&telegram_alerts(&scratch, &server.url(""), "")).unwrap();
    let delivery = notifier.send_blocking(&alert()).unwrap();
    assert!(matches!(
        delivery.outcomes[0].result,
        Err(ChannelError::HttpStatus { status: 401, .. })
    ));
    let text = rendered(delivery);
    assert!(
        text.contains("alert channel \"phone\" (telegram)"),
        "{text}"
    );
    assert!(text.contains("HTTP 401 (Unauthorized)"), "{text}");
    assert!(text.contains("@BotFather"), "{text}");
    assert_clean(&text);
    assert_eq!(
        server.requests()[0].target,
        format!("/bot{TOKEN}/sendMessage")
    );
}

#[test]
fn telegram_network_errors_never_show_the_token() {
    let scratch = Scratch::new();
    // Refused connection.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = telegram_alerts(&scratch, &format!("http://127.0.0.1:{port}"), "");
    let delivery = Notifier::new(&refused)
        .unwrap()
        .send_blocking(&alert())
        .unwrap();
    let text = rendered(delivery);
    assert!(
        text.contains("cannot connect to http://127.0.0.1:"),
        "{text}"
    );
    assert_clean(&text);
    // Timeout.
    let server = FakeHttp::start(|_| None);
    let slow = telegram_alerts(&scratch, &server.url(""), "[alerts]\ntimeout = \"1s\"\n");
    let delivery = Notifier::new(&slow)
        .unwrap()
        .send_blocking(&alert())
        .unwrap();
    let text = rendered(delivery);
    assert!(text.contains("did not answer within 1 s"), "{text}");
    assert_clean(&text);
    // A reply that is not HTTP at all.
    let junk = TcpListener::bind("127.0.0.1:0").unwrap();
    let junk_addr = junk.local_addr().unwrap();
    let junk_thread = std::thread::spawn(move || {
        if let Ok((mut s, _)) = junk.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(format!("garbage {TOKEN}\r\n\r\n").as_bytes());
        }
    });
    let delivery = Notifier::new(&telegram_alerts(
        &scratch,
        &format!("http://{junk_addr}"),
        "",
    ))
    .unwrap()
    .send_blocking(&alert())
    .unwrap();
    junk_thread.join().unwrap();
    assert!(!delivery.delivered());
    assert_clean(&rendered(delivery));
}

#[test]
fn missing_secret_fails_its_channel_only() {
    let scratch = Scratch::new();
    let server = FakeHttp::start(ok);
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts.channel.ops]\nkind = \"webhook\"\nurl = \"{}\"\n\
         [alerts.channel.phone]\nkind = \"telegram\"\ntoken-file = \"{}\"\nchat-id = \"@ops\"\n",
        server.url("/"),
        scratch.path("no-such-token").display()
    )))
    .unwrap();
    let delivery = notifier.send_blocking(&alert()).unwrap();
    assert!(delivery.delivered());
    let text = rendered(delivery);
    assert!(
        text.contains("alert channel \"phone\" (telegram): cannot read the bot token"),
        "{text}"
    );
    assert!(text.contains("no-such-token"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Email via sendmail

fn fake_sendmail(scratch: &Scratch, body: &str) -> PathBuf {
    let path = scratch.path("sendmail");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn email_via_sendmail_hands_the_mail_to_the_program() {
    let scratch = Scratch::new();
    let out = scratch.path("out");
    let program = fake_sendmail(
        &scratch,
        &format!(
            "printf '%s\\n' \"$@\" > '{o}.args'\ncat > '{o}.mail'",
            o = out.display()
        ),
    );
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts.channel.postmaster]\nkind = \"email\"\nto = [\"postmaster@example.com\", \
         \"ops@example.com\"]\nfrom = \"dane-roll@mail.example.com\"\nsendmail = \"{}\"\n",
        program.display()
    )))
    .unwrap();
    let sent = notifier
        .send_blocking(&alert())
        .unwrap()
        .into_result()
        .unwrap();
    let Sent::Mail { message_id } = &sent[0].1 else {
        panic!("{sent:?}")
    };
    let args = std::fs::read_to_string(out.with_extension("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "-i",
            "-f",
            "dane-roll@mail.example.com",
            "--",
            "postmaster@example.com",
            "ops@example.com"
        ]
    );
    let mail = std::fs::read_to_string(out.with_extension("mail")).unwrap();
    assert!(
        mail.contains(&format!("Message-ID: <{message_id}>")),
        "{mail}"
    );
    assert!(message_id.ends_with("@mail.example.com"));
    assert!(mail.contains("From: dane-roll@mail.example.com"), "{mail}");
    assert!(mail.contains("Auto-Submitted: auto-generated"), "{mail}");
    assert!(
        mail.contains("Subject: [dane-roll] CRITICAL mail.example.com:25: TLSA records match"),
        "{mail}"
    );
    assert!(
        mail.contains("DANE senders will defer mail to mail.example.com"),
        "{mail}"
    );
}

#[test]
fn email_via_failing_sendmail_reports_its_error() {
    let scratch = Scratch::new();
    let program = fake_sendmail(
        &scratch,
        "cat >/dev/null\necho 'queue file write error' >&2\nexit 75",
    );
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts.channel.postmaster]\nkind = \"email\"\nto = \"postmaster@example.com\"\n\
         from = \"dane-roll@example.com\"\nsendmail = \"{}\"\n",
        program.display()
    )))
    .unwrap();
    let text = rendered(notifier.send_blocking(&alert()).unwrap());
    assert!(
        text.contains("alert channel \"postmaster\" (email)"),
        "{text}"
    );
    assert!(text.contains("queue file write error"), "{text}");
    assert!(text.contains(&program.display().to_string()), "{text}");
}

#[test]
fn email_via_hanging_sendmail_times_out() {
    let scratch = Scratch::new();
    let program = fake_sendmail(&scratch, "exec sleep 30");
    let notifier = Notifier::new(&alerts(&format!(
        "[alerts]\ntimeout = \"1s\"\n[alerts.channel.postmaster]\nkind = \"email\"\n\
         to = \"postmaster@example.com\"\nfrom = \"dane-roll@example.com\"\nsendmail = \"{}\"\n",
        program.display()
    )))
    .unwrap();
    let t0 = Instant::now();
    let delivery = notifier.send_blocking(&alert()).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(matches!(
        delivery.outcomes[0].result,
        Err(ChannelError::Timeout { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Email via SMTP with STARTTLS: the lab's receiving Postfix

mod smtp {
    use super::*;
    use dane_roll_lab::pki::{KeyKind, MX_HOST, TestPki};
    use dane_roll_lab::postfix::Receiver;
    use dane_roll_lab::{LabDir, LoopbackBlock, loopback_block, require};

    const POSTFIX: &[&str] = &["postfix", "script"];

    struct Lab {
        _dir: LabDir,
        receiver: Receiver,
        root_pem: PathBuf,
        addr: String,
    }

    /// A receiving Postfix whose certificate names its loopback address, and the CA file.
    fn lab() -> Option<Lab> {
        if !require(POSTFIX) {
            return None;
        }
        let dir = LabDir::new().unwrap();
        let block = loopback_block();
        let ip = block.host(LoopbackBlock::MX).to_string();
        let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
        let leaf = ca.leaf(&[MX_HOST, &ip], KeyKind::EcdsaP256).unwrap();
        let receiver = Receiver::start(
            &dir.sub("receiver").unwrap(),
            block,
            &leaf.key_and_chain_pem().unwrap(),
        )
        .unwrap();
        let root_pem = dir.path().join("root.pem");
        std::fs::write(&root_pem, ca.root_pem().unwrap()).unwrap();
        Some(Lab {
            addr: format!("{ip}:25"),
            _dir: dir,
            receiver,
            root_pem,
        })
    }

    fn channel(lab: &Lab, extra: &str) -> Alerts {
        alerts(&format!(
            "[alerts]\ntimeout = \"10s\"\n[alerts.channel.postmaster]\nkind = \"email\"\n\
             to = \"someone@example.test\"\nfrom = \"dane-roll@example.test\"\nvia = \"smtp\"\n\
             smtp-server = \"{}\"\n{extra}",
            lab.addr
        ))
    }

    /// Wait for a maillog line holding every needle.
    fn wait_log(path: &Path, needles: &[&str]) -> Option<String> {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return Some(line.to_owned());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    #[test]
    fn email_via_smtp_starttls_reaches_postfix() {
        let Some(lab) = lab() else { return };
        let notifier = Notifier::new(&channel(
            &lab,
            &format!("tls-ca-file = \"{}\"\n", lab.root_pem.display()),
        ))
        .unwrap();
        let delivery = notifier.send_blocking(&alert()).unwrap();
        let sent = match delivery.into_result() {
            Ok(sent) => sent,
            Err(e) => panic!(
                "{e}\nreceiver log:\n{}",
                std::fs::read_to_string(lab.receiver.instance().maillog()).unwrap_or_default()
            ),
        };
        let Sent::Mail { message_id } = &sent[0].1 else {
            panic!("{sent:?}")
        };
        let log = lab.receiver.instance().maillog();
        let cleanup = wait_log(&log, &[&format!("message-id=<{message_id}>")])
            .expect("the receiver logged the Message-ID");
        let qid = cleanup
            .split("]: ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .expect("a queue id")
            .to_owned();
        let delivered = wait_log(
            &log,
            &[&format!("{qid}: to=<someone@example.test>"), "status=sent"],
        );
        assert!(delivered.is_some(), "no status=sent for {qid}");
        let all = std::fs::read_to_string(&log).unwrap();
        assert!(
            all.contains("TLS connection established from"),
            "the session used STARTTLS:\n{all}"
        );
    }

    #[test]
    fn email_via_smtp_refuses_an_untrusted_certificate() {
        let Some(lab) = lab() else { return };
        // No tls-ca-file: the test CA is not trusted, so nothing may be sent.
        let notifier = Notifier::new(&channel(&lab, "")).unwrap();
        let delivery = notifier.send_blocking(&alert()).unwrap();
        assert!(!delivery.delivered());
        assert!(matches!(
            delivery.outcomes[0].result,
            Err(ChannelError::Smtp { .. })
        ));
        let text = rendered(delivery);
        assert!(text.contains("tls-ca-file"), "{text}");
        assert!(text.contains(&lab.addr), "{text}");
        let log = std::fs::read_to_string(lab.receiver.instance().maillog()).unwrap_or_default();
        assert!(!log.contains("message-id=<dane-roll."), "{log}");
    }

    #[test]
    fn email_via_smtp_auth_failure_never_shows_the_password() {
        let Some(lab) = lab() else { return };
        let scratch = Scratch::new();
        let creds = scratch.secret("smtp-creds", &format!("alerts:{PASSWORD}"));
        // The lab receiver offers no AUTH: the session must fail, naming the server, not the password.
        let notifier = Notifier::new(&channel(
            &lab,
            &format!(
                "tls-ca-file = \"{}\"\ncredentials-file = \"{}\"\n",
                lab.root_pem.display(),
                creds.display()
            ),
        ))
        .unwrap();
        let delivery = notifier.send_blocking(&alert()).unwrap();
        assert!(!delivery.delivered());
        let text = rendered(delivery);
        assert!(
            text.contains("alert channel \"postmaster\" (email)"),
            "{text}"
        );
        assert!(text.contains(&lab.addr), "{text}");
        assert!(text.contains("authentication"), "{text}");
        assert!(text.contains("check credentials"), "{text}");
        assert_clean(&text);
    }
}

// ---------------------------------------------------------------------------------------------
// The configuration keys this issue added

#[test]
fn config_alert_keys_defaults_and_refusals() {
    use dane_roll::config::Channel;
    let a = alerts(
        "[alerts.channel.phone]\nkind = \"telegram\"\ntoken-env = \"T\"\nchat-id = \"@ops\"\n",
    );
    assert_eq!(a.timeout, Duration::from_secs(30));
    match &a.channels["phone"] {
        Channel::Telegram { api_url, .. } => assert_eq!(api_url, "https://api.telegram.org"),
        other => panic!("{other:?}"),
    }
    let refused = |toml: &str, needle: &str| {
        let text = format!("version = 1\n[resolver]\naddress = \"127.0.0.1:53\"\n{toml}");
        let err = Config::from_str_named(&text, "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    };
    refused(
        "[alerts.channel.p]\nkind = \"telegram\"\ntoken-env = \"T\"\nchat-id = 1\napi-url = \"ftp://x\"\n",
        "api-url",
    );
    refused(
        "[alerts.channel.m]\nkind = \"email\"\nto = \"a@example.com\"\nfrom = \"b@example.com\"\n\
         tls-ca-file = \"/etc/ssl/ca.pem\"\n",
        "tls-ca-file",
    );
    refused("[alerts]\ntimeout = \"0s\"\n", "timeout");
}
