//! Issue 18, TLS reports: `dane-roll tlsrpt ingest` (standard input, Maildir), `serve
//! --tlsrpt`'s `POST /tlsrpt`, `dane-roll reports`, and the DANE alert, with the real binary.
//!
//! The fixtures in `tests/data/tlsrpt/` are made from RFC 8460's example report and from the
//! shapes large senders' reports have in public samples: Google (a `multipart/report` mail, the
//! report one line of JSON in an `application/tlsrpt+gzip` attachment), Microsoft (pretty JSON,
//! gzip, in a mail or bare; a `tlsa` policy whose `policy-string` is one string holding a JSON
//! array of records; no `mx-host`, no `sending-mta-ip`), Mail.ru (plain JSON, no addresses) and
//! a reporter that writes unknown addresses as `""` and `contact-info` as null; and malformed
//! ones: not JSON, a mail without a report, gzip cut in half, a gzip bomb (12 MiB of zeros in
//! 12 KiB), JSON cut short, fields missing or of the wrong type, an unreadable date, and an input
//! over 10 MiB. The tie to a real rollover is tested on the lab (tests/tlsrpt_lab.rs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

mod serve_support;

use serve_support::{BIN, Served, response, serve_command, wait_listening};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tlsrpt")
        .join(name)
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A configuration with service `mx` at `mail.example.test:25` (manual provider), an empty
/// state directory, and `extra` appended.
fn setup(extra: &str) -> TempDir {
    let dir = TempDir::new().unwrap();
    let conf = format!(
        "state-dir = \"{state}\"\n\n[resolver]\naddress = \"127.0.0.1\"\n\n[[service]]\n\
         name = \"mx\"\nendpoints = [\"mail.example.test:25/smtp\"]\nchain-file = \"{chain}\"\n\
         provider = \"hand\"\n\n[provider.hand]\nkind = \"manual\"\n{extra}",
        state = dir.path().join("state").display(),
        chain = dir.path().join("mx.pem").display(),
    );
    std::fs::write(dir.path().join("c.toml"), conf).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Out {
    let mut child = Command::new(BIN)
        .env_remove("DANE_ROLL_CONFIG")
        .arg("-c")
        .arg(dir.join("c.toml"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A closed pipe (the command refused early) is not the test's failure.
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_ne!(out.code, 101, "panicked: {}", out.stderr);
    out
}

fn ingest(dir: &Path, file: &str) -> Out {
    run(
        dir,
        &["tlsrpt", "ingest"],
        &std::fs::read(data(file)).unwrap(),
    )
}

fn reports(dir: &Path) -> Value {
    let out = run(dir, &["reports", "--json"], b"");
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

const GOOD: [&str; 6] = [
    "rfc8460.json",
    "google.eml",
    "microsoft.eml",
    "microsoft.json.gz",
    "mailru.json",
    "empty-addresses.json",
];

#[test]
fn every_senders_format_is_stored_once() {
    let dir = setup("");
    let d = dir.path();
    for file in GOOD {
        let out = ingest(d, file);
        assert_eq!(out.code, 0, "{file}: {}{}", out.stdout, out.stderr);
        // Microsoft's mail and its bare attachment are the same report: stored once.
        let first = file != "microsoft.json.gz";
        assert_eq!(
            out.stdout.contains("stored report"),
            first,
            "{file}: {}",
            out.stdout
        );
        let again = ingest(d, file);
        assert_eq!(again.code, 0, "{file}: {}", again.stderr);
        assert!(
            again.stdout.contains("was stored before: nothing changed"),
            "{file}: {}",
            again.stdout
        );
    }
    let view = reports(d);
    assert_eq!(view["reports"], 5, "{view:#}");
    // --days: RFC 8460's example (2016) is older than ten years.
    let recent = run(d, &["reports", "--json", "--days", "3650"], b"");
    let recent: Value = serde_json::from_str(&recent.stdout).unwrap();
    assert_eq!(recent["reports"], 4, "{recent:#}");
    let orgs: Vec<&str> = view["by_organization"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        orgs,
        [
            "Company-X",
            "Google Inc.",
            "Mail.ru",
            "Microsoft Corporation",
            "Reporter Example"
        ]
    );
    // RFC 8460's example, counted once.
    assert_eq!(view["by_organization"]["Company-X"]["successful"], 5326);
    assert_eq!(view["by_organization"]["Company-X"]["failed"], 303);
    assert_eq!(view["by_result"]["certificate-expired"], 100);
    assert_eq!(view["by_result"]["tlsa-invalid"], 3);
    assert_eq!(view["by_result"]["dnssec-invalid"], 1);
    assert_eq!(view["by_result"]["sts-policy-fetch-error"], 1);
    // Microsoft's packed policy-string: two records seen, upper-case hex read.
    let failures = view["failures"].as_array().unwrap();
    let ms = failures
        .iter()
        .find(|f| f["organization"] == "Microsoft Corporation")
        .unwrap();
    assert_eq!(ms["policy_type"], "tlsa");
    let seen = ms["tie"]["seen"].as_array().unwrap();
    assert_eq!(seen.len(), 2, "{ms:#}");
    assert!(
        seen[0]["record"]
            .as_str()
            .unwrap()
            .starts_with("3 1 1 6007eee5")
    );
    // Tied to the configured service by the receiving MX; nothing of ours was published.
    assert_eq!(ms["tie"]["service"], "mx");
    assert_eq!(ms["tie"]["owner"], "_25._tcp.mail.example.test.");
    assert_eq!(ms["tie"]["verdict"], "not-ours");
    // The empty addresses were dropped, the report kept.
    let empty = failures
        .iter()
        .find(|f| f["organization"] == "Reporter Example")
        .unwrap();
    assert_eq!(empty["result"], "dnssec-invalid");
    // The text form says the same.
    let text = run(d, &["reports"], b"");
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("Microsoft Corporation"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("tlsa-invalid 3 session(s)"),
        "{}",
        text.stdout
    );
}

#[test]
fn bad_input_exits_2_says_what_is_wrong_and_stores_nothing() {
    let dir = setup("");
    let d = dir.path();
    let cases: [(&str, &str); 10] = [
        ("not-json.txt", "not a TLS report"),
        (
            "no-report.eml",
            "no application/tlsrpt+gzip or application/tlsrpt+json part",
        ),
        (
            "truncated.json.gz",
            "gzip data is damaged or cut short (truncated)",
        ),
        ("bomb.json.gz", "inflates to more than 10485760 bytes"),
        ("cut-short.json", "the JSON is cut short"),
        ("missing-date-range.json", "missing field `date-range`"),
        ("missing-report-id.json", "no report-id"),
        ("bad-date.json", "\"yesterday\" is not an RFC 3339 time"),
        ("wrong-type.json", "invalid type"),
        ("google.eml", ""),
    ];
    for (file, want) in &cases[..9] {
        let out = ingest(d, file);
        assert_eq!(out.code, 2, "{file}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains("standard input") && out.stderr.contains(want),
            "{file}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("nothing was stored"), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "{file}: {}", out.stdout);
    }
    // Over 10 MiB, whatever it is.
    let mut huge = b"{\"organization-name\":\"x\",\"pad\":\"".to_vec();
    huge.resize(10 * 1024 * 1024 + 10, b'a');
    let out = run(d, &["tlsrpt", "ingest"], &huge);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("larger than 10485760 bytes"),
        "{}",
        out.stderr
    );
    // Nothing of it reached the store.
    assert_eq!(reports(d)["reports"], 0);
    assert_eq!(cases[9].0, "google.eml");
}

#[test]
fn a_good_report_the_store_cannot_take_exits_75_for_the_mail_system_to_retry() {
    let dir = setup("");
    let d = dir.path();
    // The state directory is a file: the store cannot be opened.
    std::fs::write(d.join("state"), "not a directory").unwrap();
    let out = ingest(d, "microsoft.eml");
    assert_eq!(out.code, 75, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("the report of Microsoft Corporation was not stored (exit 75"),
        "{}",
        out.stderr
    );
    // Bad input stays exit 2 (not worth a retry).
    assert_eq!(ingest(d, "not-json.txt").code, 2);
}

fn maildir(root: &Path) -> PathBuf {
    let dir = root.join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    dir
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_maildir_is_read_once_per_message_and_bad_mail_is_flagged() {
    let dir = setup("");
    let d = dir.path();
    let md = maildir(d);
    for (name, file) in [
        ("1.a.host", "google.eml"),
        ("2.b.host", "microsoft.eml"),
        ("3.c.host", "no-report.eml"),
    ] {
        std::fs::copy(data(file), md.join("new").join(name)).unwrap();
    }
    let arg = md.to_str().unwrap();
    let out = run(d, &["tlsrpt", "ingest", "--maildir", arg], b"");
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("2 stored, 0 stored before, 1 not a report"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("3.c.host"), "{}", out.stderr);
    assert!(names(&md.join("new")).is_empty());
    assert_eq!(
        names(&md.join("cur")),
        ["1.a.host:2,S", "2.b.host:2,S", "3.c.host:2,F"]
    );
    // A second run reads nothing again.
    let again = run(d, &["tlsrpt", "ingest", "--maildir", arg], b"");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stdout
            .contains("0 stored, 0 stored before, 0 not a report")
    );
    assert_eq!(reports(d)["reports"], 2);
    // Not a Maildir: said so.
    let wrong = run(
        d,
        &["tlsrpt", "ingest", "--maildir", d.to_str().unwrap()],
        b"",
    );
    assert_eq!(wrong.code, 2);
    assert!(wrong.stderr.contains("not a Maildir"), "{}", wrong.stderr);
}

/// A webhook receiver on loopback that answers 200 and keeps every body.
fn hook() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            kept.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    (port, bodies)
}

#[test]
fn dane_failures_alert_once_per_sender_and_day() {
    let (port, bodies) = hook();
    let dir = setup(&format!(
        "\n[alerts.channel.ops]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"
    ));
    let d = dir.path();
    // Google's report has no DANE failure: no alert.
    let out = ingest(d, "google.eml");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("ALERT"), "{}", out.stderr);
    assert!(bodies.lock().unwrap().is_empty());
    // Microsoft's has tlsa-invalid: one alert, tied to the service.
    let out = ingest(d, "microsoft.eml");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "ALERT: Microsoft Corporation saw DANE failures on 2026-12-05: tlsa-invalid 3"
        ),
        "{}",
        out.stderr
    );
    {
        let sent = bodies.lock().unwrap();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let alert: Value = serde_json::from_str(&sent[0]).unwrap();
        assert_eq!(alert["check"], "tlsrpt/microsoft_corporation/2026-12-05");
        assert_eq!(alert["subject"], "mx");
        assert!(
            alert["detail"]
                .as_str()
                .unwrap()
                .contains("owner _25._tcp.mail.example.test."),
            "{alert:#}"
        );
    }
    // Another report of the same sender and day (another id): stored, not alerted again.
    let mut other: Value =
        serde_json::from_reader(flate2_json(&data("microsoft.json.gz"))).unwrap();
    other["report-id"] = Value::from("134096256009999999+example.test");
    let out = run(d, &["tlsrpt", "ingest"], other.to_string().as_bytes());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("stored report"), "{}", out.stdout);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(bodies.lock().unwrap().len(), 1);
    // The next day alerts again.
    other["report-id"] = Value::from("134097120001111111+example.test");
    other["date-range"]["start-datetime"] = Value::from("2026-12-06T00:00:00Z");
    other["date-range"]["end-datetime"] = Value::from("2026-12-06T23:59:59Z");
    let out = run(d, &["tlsrpt", "ingest"], other.to_string().as_bytes());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(bodies.lock().unwrap().len(), 2);
}

/// The JSON inside a gzip fixture (gunzipped by the system's gzip, not by the code under test).
fn flate2_json(path: &Path) -> std::io::Cursor<Vec<u8>> {
    let out = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
    assert!(out.status.success());
    std::io::Cursor::new(out.stdout)
}

/// One HTTP/1.1 request with the bearer token; the status and the body.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    http_as(port, method, path, body, Some(TOKEN))
}

const TOKEN: &str = "tlsrpt-test-token";

/// One HTTP/1.1 request, with `token` if given; the status and the body.
fn http_as(port: u16, method: &str, path: &str, body: &[u8], token: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/tlsrpt+gzip\r\n\
         {auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before the body is all sent.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    response(&String::from_utf8_lossy(&answer))
}

#[test]
fn serve_takes_posted_reports_within_its_limits_and_counts_their_sessions() {
    let (hook_port, bodies) = hook();
    let dir = setup(&format!(
        "\n[alerts.channel.ops]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n"
    ));
    let d = dir.path();
    let token = d.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let port = dane_roll_lab::ports::free_port();
    let _served = Served::spawn(serve_command(Some(&d.join("c.toml")), port).args([
        "--tlsrpt",
        "--interval",
        "1",
        "--timeout",
        "2",
        "--token-file",
        token.to_str().unwrap(),
    ]));
    wait_listening(port, Duration::from_secs(30));
    let report = std::fs::read(data("microsoft.json.gz")).unwrap();
    // The bearer token guards /tlsrpt like every route.
    let (status, _) = http_as(port, "POST", "/tlsrpt", &report, None);
    assert_eq!(status, 401);
    let (status, body) = http(port, "POST", "/tlsrpt", &report);
    assert_eq!(status, 201, "{body}");
    // Its tlsa-invalid alerted through the configured channel.
    assert_eq!(bodies.lock().unwrap().len(), 1);
    assert!(
        body.contains("stored report 134096256001234567+example.test"),
        "{body}"
    );
    let (status, body) = http(port, "POST", "/tlsrpt", &report);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("stored before"), "{body}");
    let (status, body) = http(
        port,
        "POST",
        "/tlsrpt",
        &std::fs::read(data("bomb.json.gz")).unwrap(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("POST /tlsrpt: the gzip data inflates"),
        "{body}"
    );
    let (status, _) = http(port, "POST", "/tlsrpt", &vec![b'{'; 11 * 1024 * 1024]);
    assert_eq!(status, 413);
    // The sessions appear in /metrics once the next run has read the store.
    let t0 = Instant::now();
    loop {
        let (_, metrics) = http(port, "GET", "/metrics", b"");
        if metrics
            .contains("dane_tlsrpt_sessions_total{result=\"tlsa-invalid\",policy_type=\"tlsa\"} 3")
        {
            assert!(
                metrics.contains(
                    "dane_tlsrpt_sessions_total{result=\"successful\",policy_type=\"tlsa\"} 7"
                ),
                "{metrics}"
            );
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "{metrics}");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(reports(d)["reports"], 1);
}
