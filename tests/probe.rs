//! The live DANE probe (issue 5): its verdicts against `openssl s_client -dane_tlsa_*` on the same
//! server, the STARTTLS dialogues, and servers that misbehave on purpose (no hang, no panic, a
//! clear verdict within the time limit). Everything runs on 127.0.0.1 with certificates made at
//! test time.

mod mx_lab;
mod probe_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dane_roll::config::Protocol;
use dane_roll::probe::{
    AddressReport, AttemptOutcome, KeyAlgorithm, ProbeOptions, ProbeTarget, Prober, Verdict,
};
use dane_roll::tlsa::{Matching, Selector, Subject, TlsaRecord, Usage};
use openssl::x509::X509;
use probe_support::{FakeServer, HOST, Mode, Pki, Served, s_client};

fn record(usage: Usage, selector: Selector, matching: Matching, cert: &X509) -> TlsaRecord {
    TlsaRecord::compute(usage, selector, matching, &Subject::Certificate(cert)).unwrap()
}

fn r311(cert: &X509) -> TlsaRecord {
    record(Usage::DaneEe, Selector::Spki, Matching::Sha256, cert)
}

fn r211(cert: &X509) -> TlsaRecord {
    record(Usage::DaneTa, Selector::Spki, Matching::Sha256, cert)
}

fn prober(step: Duration) -> Prober {
    Prober::new(ProbeOptions {
        step_timeout: step,
        address_timeout: step * 4,
        ..ProbeOptions::default()
    })
    .unwrap()
}

fn target(addr: SocketAddr, host: &str, protocol: Protocol) -> ProbeTarget {
    ProbeTarget {
        host: host.to_string(),
        addr,
        protocol,
    }
}

async fn probe(
    addr: SocketAddr,
    host: &str,
    protocol: Protocol,
    records: &[TlsaRecord],
) -> AddressReport {
    prober(Duration::from_secs(5))
        .probe_address(&target(addr, host, protocol), records)
        .await
}

fn key_for(
    report: &AddressReport,
    algorithm: KeyAlgorithm,
) -> Option<&dane_roll::probe::KeyReport> {
    report
        .keys
        .iter()
        .find(|k| k.algorithms.contains(&algorithm))
}

/// One case of the corpus: which server, which host name, which records, and for each key
/// algorithm the server has, whether the chain must verify.
struct Case {
    name: &'static str,
    addr: SocketAddr,
    host: &'static str,
    records: Vec<TlsaRecord>,
    keys: Vec<(KeyAlgorithm, bool)>,
}

/// The corpus: each case judged by the probe and by `openssl s_client` (docs/LAB.md's command, with
/// `-sigalgs` limited to the same family), which must agree with each other and with the
/// expected outcome. The agreement table is printed (`--nocapture` to see it).
#[tokio::test]
async fn corpus_agrees_with_openssl_s_client() {
    let pki = Pki::new();
    let inter = pki.inter.cert.clone();
    let root = pki.root.cert.clone();
    let ec = |leaf: &probe_support::Issued, chain: Vec<X509>| Served {
        leaf: leaf.clone(),
        chain,
    };
    // A: EC leaf + intermediate (root not sent). B: root sent too. C: expired leaf.
    // D: RSA and EC side by side.
    let a = FakeServer::start(Mode::Smtp, vec![ec(&pki.leaf_ec, vec![inter.clone()])]);
    let b = FakeServer::start(
        Mode::Smtp,
        vec![ec(&pki.leaf_ec, vec![inter.clone(), root.clone()])],
    );
    let c = FakeServer::start(Mode::Smtp, vec![ec(&pki.leaf_expired, vec![inter.clone()])]);
    let d = FakeServer::start(
        Mode::Smtp,
        vec![
            ec(&pki.leaf_rsa, vec![inter.clone()]),
            ec(&pki.leaf_ec, vec![inter.clone()]),
        ],
    );
    let e = FakeServer::start(
        Mode::Smtp,
        vec![
            ec(&pki.leaf_rsa, vec![inter.clone()]),
            ec(&pki.leaf_ec, vec![inter.clone()]),
            ec(&pki.leaf_ed25519, vec![inter.clone()]),
        ],
    );
    let leaf = &pki.leaf_ec.cert;
    let wrong = TlsaRecord::new(
        Usage::DaneEe,
        Selector::Spki,
        Matching::Sha256,
        vec![0x42; 32],
    )
    .unwrap();
    use KeyAlgorithm::{Ecdsa, Eddsa, Rsa};
    let cases = vec![
        Case {
            name: "RSA+ECDSA+Ed25519, records for ECDSA and Ed25519",
            addr: e.addr,
            host: HOST,
            records: vec![r311(leaf), r311(&pki.leaf_ed25519.cert)],
            keys: vec![(Rsa, false), (Ecdsa, true), (Eddsa, true)],
        },
        Case {
            name: "3 1 1 leaf",
            addr: a.addr,
            host: HOST,
            records: vec![r311(leaf)],
            keys: vec![(Ecdsa, true)],
        },
        Case {
            name: "3 0 1 leaf",
            addr: a.addr,
            host: HOST,
            records: vec![record(
                Usage::DaneEe,
                Selector::Cert,
                Matching::Sha256,
                leaf,
            )],
            keys: vec![(Ecdsa, true)],
        },
        Case {
            name: "3 1 2 leaf",
            addr: a.addr,
            host: HOST,
            records: vec![record(
                Usage::DaneEe,
                Selector::Spki,
                Matching::Sha512,
                leaf,
            )],
            keys: vec![(Ecdsa, true)],
        },
        Case {
            name: "2 1 1 intermediate",
            addr: a.addr,
            host: HOST,
            records: vec![r211(&inter)],
            keys: vec![(Ecdsa, true)],
        },
        Case {
            name: "2 1 1 root, root sent",
            addr: b.addr,
            host: HOST,
            records: vec![r211(&root)],
            keys: vec![(Ecdsa, true)],
        },
        Case {
            name: "2 1 1 root, root not sent",
            addr: a.addr,
            host: HOST,
            records: vec![r211(&root)],
            keys: vec![(Ecdsa, false)],
        },
        Case {
            name: "3 1 1 wrong digest",
            addr: a.addr,
            host: HOST,
            records: vec![wrong.clone()],
            keys: vec![(Ecdsa, false)],
        },
        Case {
            name: "stale + current 3 1 1",
            addr: a.addr,
            host: HOST,
            records: vec![r311(&pki.other_ec.cert), r311(leaf)],
            keys: vec![(Ecdsa, true)],
        },
        Case {
            name: "2 1 1 intermediate, wrong host name",
            addr: a.addr,
            host: "other.example.test",
            records: vec![r211(&inter)],
            keys: vec![(Ecdsa, false)],
        },
        Case {
            name: "3 1 1 leaf, wrong host name (no name checks)",
            addr: a.addr,
            host: "other.example.test",
            records: vec![r311(leaf)],
            keys: vec![(Ecdsa, true)],
        },
        Case {
            name: "3 1 1 expired leaf",
            addr: c.addr,
            host: HOST,
            records: vec![r311(&pki.leaf_expired.cert)],
            keys: vec![(Ecdsa, true)],
        },
        Case {
            name: "2 1 1 intermediate, expired leaf",
            addr: c.addr,
            host: HOST,
            records: vec![r211(&inter)],
            keys: vec![(Ecdsa, false)],
        },
        Case {
            name: "RSA+ECDSA, record for ECDSA only",
            addr: d.addr,
            host: HOST,
            records: vec![r311(leaf)],
            keys: vec![(Rsa, false), (Ecdsa, true)],
        },
        Case {
            name: "RSA+ECDSA, record for RSA only",
            addr: d.addr,
            host: HOST,
            records: vec![r311(&pki.leaf_rsa.cert)],
            keys: vec![(Rsa, true), (Ecdsa, false)],
        },
        Case {
            name: "RSA+ECDSA, records for both",
            addr: d.addr,
            host: HOST,
            records: vec![r311(leaf), r311(&pki.leaf_rsa.cert)],
            keys: vec![(Rsa, true), (Ecdsa, true)],
        },
        Case {
            name: "RSA+ECDSA, 2 1 1 intermediate",
            addr: d.addr,
            host: HOST,
            records: vec![r211(&inter)],
            keys: vec![(Rsa, true), (Ecdsa, true)],
        },
    ];

    let (table, disagreements) = judge_corpus(&cases).await;
    println!("{TABLE_HEAD}\n{table}");
    assert!(
        disagreements.is_empty(),
        "disagreements:\n{}",
        disagreements.join("\n")
    );
}

/// The head of the agreement table.
const TABLE_HEAD: &str = "| case | key | expected | dane-roll | s_client | codes (ours / s_client) |\n\
                          | --- | --- | --- | --- | --- | --- |";

/// Probe every case, run `openssl s_client` on it per key algorithm, and return the rows of the
/// agreement table (Markdown, see [`TABLE_HEAD`]) and the disagreements (with the expectation, and with each other,
/// including the verification code).
async fn judge_corpus(cases: &[Case]) -> (String, Vec<String>) {
    let mut table = Vec::new();
    let mut disagreements = Vec::new();
    for case in cases {
        let report = probe(case.addr, case.host, Protocol::Smtp, &case.records).await;
        let rdata: Vec<String> = case.records.iter().map(ToString::to_string).collect();
        for &(algorithm, expected) in &case.keys {
            let key = key_for(&report, algorithm)
                .unwrap_or_else(|| panic!("{}: no {algorithm} key in {report:#?}", case.name));
            let theirs = s_client(
                case.addr,
                Some("smtp"),
                case.host,
                &rdata,
                algorithm.sigalgs(),
            );
            let word = |ok: bool| if ok { "pass" } else { "fail" };
            table.push(format!(
                "| {} | {algorithm} | {} | {} | {} | {} / {} |",
                case.name,
                word(expected),
                word(key.matched),
                word(theirs.ok),
                key.verify_code,
                theirs
                    .code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
            ));
            if key.matched != expected || theirs.ok != expected {
                disagreements.push(format!(
                    "{} ({algorithm}): expected {expected}, dane-roll {} ({:?}), s_client {theirs:?}",
                    case.name, key.matched, key.reason
                ));
            }
            if let Some(code) = theirs.code
                && code != key.verify_code
            {
                disagreements.push(format!(
                    "{} ({algorithm}): verify code {} vs s_client {code}",
                    case.name, key.verify_code
                ));
            }
        }
        let all = case.keys.iter().all(|(_, ok)| *ok);
        let want = if all { Verdict::Pass } else { Verdict::Fail };
        if report.verdict != want {
            disagreements.push(format!(
                "{}: verdict {:?}, want {want:?}: {:?}",
                case.name, report.verdict, report.reason
            ));
        }
    }
    (table.join("\n"), disagreements)
}

/// The details of a match: which record, at which depth, and the served chain.
#[tokio::test]
async fn report_names_the_record_depth_and_chain() {
    let pki = Pki::new();
    let server = FakeServer::start(
        Mode::Smtp,
        vec![Served {
            leaf: pki.leaf_ec.clone(),
            chain: vec![pki.inter.cert.clone()],
        }],
    );
    let stale = r311(&pki.other_ec.cert);
    let pkix =
        TlsaRecord::new(Usage::PkixEe, Selector::Spki, Matching::Sha256, vec![7; 32]).unwrap();
    let by_ta = r211(&pki.inter.cert);
    let report = probe(
        server.addr,
        HOST,
        Protocol::Smtp,
        &[stale.clone(), pkix.clone(), by_ta.clone()],
    )
    .await;
    assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    assert_eq!(report.keys.len(), 1);
    let key = &report.keys[0];
    assert_eq!(key.matched_record.as_ref(), Some(&by_ta));
    assert_eq!(key.match_depth, Some(1));
    assert_eq!(key.key_type, "EC P-256");
    assert_eq!(key.chain.len(), 2);
    assert!(key.chain[0].subject.contains(HOST));
    assert!(key.chain[1].subject.contains("Intermediate"));
    assert_eq!(key.chain[0].issuer, key.chain[1].subject);
    assert_eq!(
        hex::decode(&key.spki_sha256).unwrap(),
        r311(&pki.leaf_ec.cert).data
    );
    assert!(key.tls_version.starts_with("TLS"));
    assert!(!key.cipher.is_empty());
    // The PKIX record is ignored with its reason; the stale record is listed.
    assert_eq!(report.ignored_records.len(), 1);
    assert_eq!(report.ignored_records[0].record, pkix);
    assert!(report.ignored_records[0].reason.contains("RFC 7672"));
    assert_eq!(report.unmatched_records, vec![stale]);
    // The server has no RSA or EdDSA key: that is "no key", not an error.
    for attempt in &report.attempts {
        match attempt.algorithm {
            KeyAlgorithm::Ecdsa => {
                assert!(matches!(attempt.outcome, AttemptOutcome::Key { key: 0 }))
            }
            _ => assert!(
                matches!(attempt.outcome, AttemptOutcome::NoKey { .. }),
                "{attempt:?}"
            ),
        }
    }
    // JSON for scripts.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["protocol"], "smtp");
    assert_eq!(json["keys"][0]["matched_record"], by_ta.to_string());
    assert_eq!(json["attempts"][0]["outcome"], "no-key");
}

/// Only PKIX records: DANE does not apply, and the probe says so.
#[tokio::test]
async fn only_pkix_records_means_no_dane() {
    let pki = Pki::new();
    let server = FakeServer::start(
        Mode::Smtp,
        vec![Served {
            leaf: pki.leaf_ec.clone(),
            chain: vec![],
        }],
    );
    let pkix = record(
        Usage::PkixEe,
        Selector::Spki,
        Matching::Sha256,
        &pki.leaf_ec.cert,
    );
    let report = probe(server.addr, HOST, Protocol::Smtp, &[pkix]).await;
    assert_eq!(report.verdict, Verdict::Fail);
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains("no usable TLSA record"),
        "{report:#?}"
    );
    assert_eq!(report.keys.len(), 1, "the chain is still reported");
}

/// IMAP STARTTLS, POP3 STLS and implicit TLS reach the same verdict as SMTP.
#[tokio::test]
async fn imap_pop3_and_implicit_tls() {
    let pki = Pki::new();
    let served = vec![Served {
        leaf: pki.leaf_ec.clone(),
        chain: vec![pki.inter.cert.clone()],
    }];
    for (mode, protocol) in [
        (Mode::Imap, Protocol::Imap),
        (Mode::Pop3, Protocol::Pop3),
        (Mode::Tls, Protocol::Tls),
    ] {
        let server = FakeServer::start(mode, served.clone());
        let good = probe(server.addr, HOST, protocol, &[r311(&pki.leaf_ec.cert)]).await;
        assert_eq!(good.verdict, Verdict::Pass, "{protocol}: {good:#?}");
        let bad = probe(server.addr, HOST, protocol, &[r311(&pki.other_ec.cert)]).await;
        assert_eq!(bad.verdict, Verdict::Fail, "{protocol}: {bad:#?}");
        assert!(bad.reason.unwrap().contains("no TLSA record matched"));
    }
}

/// A misbehaving server: the verdict, a reason containing `words`, within the time limit.
async fn misbehaving(mode: Mode, verdict: Verdict, words: &str) {
    let pki = Pki::new();
    let server = FakeServer::start(
        mode,
        vec![Served {
            leaf: pki.leaf_ec.clone(),
            chain: vec![],
        }],
    );
    let step = Duration::from_secs(1);
    let started = Instant::now();
    let report = prober(step)
        .probe_address(
            &target(server.addr, HOST, Protocol::Smtp),
            &[r311(&pki.leaf_ec.cert)],
        )
        .await;
    let took = started.elapsed();
    assert_eq!(report.verdict, verdict, "{mode:?}: {report:#?}");
    let reason = report.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(words),
        "{mode:?}: reason {reason:?} lacks {words:?}"
    );
    assert!(
        took < step * 4 + Duration::from_millis(500),
        "{mode:?} took {took:?}"
    );
    assert!(report.keys.is_empty());
}

#[tokio::test]
async fn starttls_not_offered() {
    misbehaving(Mode::NoStarttls, Verdict::Fail, "STARTTLS not offered").await;
}

#[tokio::test]
async fn starttls_refused_with_454() {
    misbehaving(
        Mode::Refuse454,
        Verdict::Fail,
        "STARTTLS refused: \"454 4.7.0",
    )
    .await;
}

#[tokio::test]
async fn garbage_greeting() {
    misbehaving(
        Mode::GarbageGreeting,
        Verdict::Fail,
        "not a smtp reply during the greeting",
    )
    .await;
}

#[tokio::test]
async fn dripping_server_times_out() {
    misbehaving(
        Mode::Drip,
        Verdict::Unknown,
        "timed out after 1s waiting for the greeting",
    )
    .await;
}

#[tokio::test]
async fn silent_server_times_out() {
    misbehaving(Mode::Silent, Verdict::Unknown, "timed out").await;
}

#[tokio::test]
async fn close_in_the_middle_of_the_handshake() {
    misbehaving(
        Mode::CloseMidHandshake,
        Verdict::Unknown,
        "closed during the TLS handshake",
    )
    .await;
}

#[tokio::test]
async fn hundred_kilobyte_reply_line() {
    misbehaving(
        Mode::LongLine,
        Verdict::Fail,
        "reply line too long (over 4096 bytes)",
    )
    .await;
}

#[tokio::test]
async fn data_after_the_starttls_reply_is_refused() {
    misbehaving(
        Mode::DataAfterStarttls,
        Verdict::Fail,
        "sent data after its reply to STARTTLS",
    )
    .await;
}

/// After a failure in the clear-text dialogue, the other algorithms are not tried again.
#[tokio::test]
async fn dialogue_failure_skips_the_other_attempts() {
    let server = FakeServer::start(Mode::NoStarttls, vec![]);
    let report = prober(Duration::from_secs(1))
        .probe_address(&target(server.addr, HOST, Protocol::Smtp), &[])
        .await;
    assert!(matches!(
        report.attempts[0].outcome,
        AttemptOutcome::Error {
            definitive: true,
            ..
        }
    ));
    assert!(
        report.attempts[1..]
            .iter()
            .all(|a| matches!(a.outcome, AttemptOutcome::Skipped))
    );
}

#[tokio::test]
async fn connection_refused_is_unknown() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let started = Instant::now();
    let report = prober(Duration::from_secs(1))
        .probe_address(&target(addr, HOST, Protocol::Smtp), &[])
        .await;
    // No usable record is a failure whatever the network says; with a record, refused is unknown.
    assert_eq!(report.verdict, Verdict::Fail);
    let wrong =
        TlsaRecord::new(Usage::DaneEe, Selector::Spki, Matching::Sha256, vec![1; 32]).unwrap();
    let report = prober(Duration::from_secs(1))
        .probe_address(&target(addr, HOST, Protocol::Smtp), &[wrong])
        .await;
    assert_eq!(report.verdict, Verdict::Unknown, "{report:#?}");
    assert!(report.reason.unwrap().contains("connect"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Many addresses at once: bounded concurrency, reports in the order asked, mixed verdicts.
#[tokio::test]
async fn probe_many_keeps_order() {
    let pki = Pki::new();
    let good = FakeServer::start(
        Mode::Smtp,
        vec![Served {
            leaf: pki.leaf_ec.clone(),
            chain: vec![],
        }],
    );
    let bad = FakeServer::start(Mode::NoStarttls, vec![]);
    let targets: Vec<ProbeTarget> = (0..12)
        .map(|i| {
            target(
                if i % 3 == 2 { bad.addr } else { good.addr },
                HOST,
                Protocol::Smtp,
            )
        })
        .collect();
    let reports = prober(Duration::from_secs(5))
        .probe_many(targets.clone(), &[r311(&pki.leaf_ec.cert)], 4)
        .await;
    assert_eq!(reports.len(), 12);
    for (i, (report, target)) in reports.iter().zip(&targets).enumerate() {
        assert_eq!(report.address, target.addr);
        let want = if i % 3 == 2 {
            Verdict::Fail
        } else {
            Verdict::Pass
        };
        assert_eq!(report.verdict, want, "#{i}: {report:#?}");
    }
}

/// `dane-roll check` end to end: exit codes 0, 2 and 3, text and JSON.
#[test]
fn check_command_exit_codes() {
    let pki = Pki::new();
    let server = FakeServer::start(
        Mode::Smtp,
        vec![Served {
            leaf: pki.leaf_ec.clone(),
            chain: vec![],
        }],
    );
    let port = server.addr.port();
    let run = |records: &[String], address: &str, port: u16, json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dane-roll"));
        cmd.args([
            "check",
            &format!("{HOST}:{port}"),
            "--protocol",
            "smtp",
            "--address",
            address,
            "--timeout",
            "2",
        ]);
        for r in records {
            cmd.args(["--tlsa", r]);
        }
        if json {
            cmd.args(["--format", "json"]);
        }
        cmd.output().unwrap()
    };
    let good = vec![r311(&pki.leaf_ec.cert).to_string()];
    let out = run(&good, "127.0.0.1", port, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("PASS"), "{text}");
    assert!(text.contains("no rsa key"), "{text}");

    // --key-algorithm limits the attempts.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dane-roll"));
    cmd.args(["check", &format!("{HOST}:{port}"), "--protocol", "smtp"])
        .args([
            "--address",
            "127.0.0.1",
            "--key-algorithm",
            "ecdsa",
            "--format",
            "json",
        ])
        .args(["--tlsa", &good[0]]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attempts = json["addresses"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{json:#}");
    assert_eq!(attempts[0]["algorithm"], "ecdsa");
    assert_eq!(attempts[0]["outcome"], "key");

    let bad = vec![r311(&pki.other_ec.cert).to_string()];
    let out = run(&bad, "127.0.0.1", port, true);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["tlsa"]["source"], "command-line");
    assert_eq!(
        json["addresses"][0]["keys"][0]["reason"],
        "no TLSA record matched the certificate chain"
    );

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = run(&good, "127.0.0.1", closed, false);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Wait until new sessions get one of `spkis` (after a reload: idle smtpd processes keep the old
/// certificate until they go).
fn wait_serving_any(rx: &dane_roll_lab::postfix::Receiver, spkis: &[String]) {
    let started = Instant::now();
    loop {
        let served = rx.served_spki().unwrap_or_default();
        if spkis.contains(&served) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the receiver still serves {served}, not one of {spkis:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The corpus against the lab's real receiving Postfix (127.53.N.10:25, `smtpd_tls_chain_files`),
/// one chain configuration after the other (install + reload), each case judged by the probe and
/// by `openssl s_client`.
#[tokio::test]
async fn corpus_against_lab_postfix() {
    use dane_roll_lab::pki::{KeyKind, MX_HOST, TestPki};
    use dane_roll_lab::postfix::Receiver;
    if !dane_roll_lab::require(&["postfix", "postqueue", "postsuper", "script", "openssl"]) {
        return;
    }
    use KeyAlgorithm::{Ecdsa, Rsa};
    let lab = dane_roll_lab::LabDir::new().unwrap();
    let block = dane_roll_lab::loopback_block();
    let pki = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let inter = pki.intermediate.cert.clone();
    let root = pki.root.cert.clone();
    let ec = pki.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let other = pki.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let rx = Receiver::start(
        &lab.sub("receiver").unwrap(),
        block,
        &ec.key_and_chain_pem().unwrap(),
    )
    .unwrap();
    let addr = SocketAddr::V4(rx.addr());
    let wrong = TlsaRecord::new(
        Usage::DaneEe,
        Selector::Spki,
        Matching::Sha256,
        vec![0x42; 32],
    )
    .unwrap();
    let case = |name, host, records, keys| Case {
        name,
        addr,
        host,
        records,
        keys,
    };
    let mut tables = Vec::new();
    let mut disagreements = Vec::new();
    macro_rules! run {
        ($cases:expr) => {{
            let (table, found) = judge_corpus(&$cases).await;
            tables.push(table);
            disagreements.extend(found);
        }};
    }

    // 1. EC leaf + intermediate.
    run!([
        case(
            "3 1 1 leaf",
            MX_HOST,
            vec![r311(&ec.cert)],
            vec![(Ecdsa, true)]
        ),
        case(
            "3 0 1 leaf",
            MX_HOST,
            vec![record(
                Usage::DaneEe,
                Selector::Cert,
                Matching::Sha256,
                &ec.cert
            )],
            vec![(Ecdsa, true)],
        ),
        case(
            "3 1 2 leaf",
            MX_HOST,
            vec![record(
                Usage::DaneEe,
                Selector::Spki,
                Matching::Sha512,
                &ec.cert
            )],
            vec![(Ecdsa, true)],
        ),
        case(
            "2 1 1 intermediate",
            MX_HOST,
            vec![r211(&inter)],
            vec![(Ecdsa, true)]
        ),
        case(
            "2 1 1 root, root not sent",
            MX_HOST,
            vec![r211(&root)],
            vec![(Ecdsa, false)]
        ),
        case(
            "3 1 1 wrong digest",
            MX_HOST,
            vec![wrong],
            vec![(Ecdsa, false)]
        ),
        case(
            "stale + current 3 1 1",
            MX_HOST,
            vec![r311(&other.cert), r311(&ec.cert)],
            vec![(Ecdsa, true)],
        ),
        case(
            "2 1 1 intermediate, wrong host name",
            "other.example.test",
            vec![r211(&inter)],
            vec![(Ecdsa, false)],
        ),
    ]);

    // 2. The root sent too (a new leaf, so the switch can be seen).
    let mut with_root = pki.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    with_root.chain.push(root.clone());
    rx.install_chain(&with_root.key_and_chain_pem().unwrap())
        .unwrap();
    rx.reload().unwrap();
    wait_serving_any(&rx, &[with_root.spki_sha256_hex().unwrap()]);
    run!([case(
        "2 1 1 root, root sent",
        MX_HOST,
        vec![r211(&root)],
        vec![(Ecdsa, true)]
    )]);

    // 3. An expired leaf.
    let expired = pki.expired_leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    rx.install_chain(&expired.key_and_chain_pem().unwrap())
        .unwrap();
    rx.reload().unwrap();
    wait_serving_any(&rx, &[expired.spki_sha256_hex().unwrap()]);
    run!([
        case(
            "3 1 1 expired leaf",
            MX_HOST,
            vec![r311(&expired.cert)],
            vec![(Ecdsa, true)]
        ),
        case(
            "2 1 1 intermediate, expired leaf",
            MX_HOST,
            vec![r211(&inter)],
            vec![(Ecdsa, false)],
        ),
    ]);

    // 4. RSA and ECDSA side by side: two key+chain sequences in the one file.
    let rsa = pki.leaf(&[MX_HOST], KeyKind::Rsa2048).unwrap();
    let ec2 = pki.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let mut both = rsa.key_and_chain_pem().unwrap();
    both.extend(ec2.key_and_chain_pem().unwrap());
    rx.install_chain(&both).unwrap();
    rx.reload().unwrap();
    wait_serving_any(
        &rx,
        &[
            rsa.spki_sha256_hex().unwrap(),
            ec2.spki_sha256_hex().unwrap(),
        ],
    );
    run!([
        case(
            "RSA+ECDSA, record for ECDSA only",
            MX_HOST,
            vec![r311(&ec2.cert)],
            vec![(Rsa, false), (Ecdsa, true)],
        ),
        case(
            "RSA+ECDSA, records for both",
            MX_HOST,
            vec![r311(&ec2.cert), r311(&rsa.cert)],
            vec![(Rsa, true), (Ecdsa, true)],
        ),
        case(
            "RSA+ECDSA, 2 1 1 intermediate",
            MX_HOST,
            vec![r211(&inter)],
            vec![(Rsa, true), (Ecdsa, true)],
        ),
    ]);
    println!(
        "Postfix {}:\n{TABLE_HEAD}\n{}",
        rx.addr(),
        tables.join("\n")
    );
    assert!(
        disagreements.is_empty(),
        "disagreements:\n{}",
        disagreements.join("\n")
    );
}

/// `dane-roll check --resolver`: the records from the lab's validating Unbound (signed zone in
/// BIND), the address from its A record, the verdict from the lab's Postfix.
#[test]
fn check_through_the_lab_resolver() {
    use dane_roll_lab::pki::MX_HOST;
    use mx_lab::{MxLab, check_json, mx_tools, other_record, publish, replace};
    if !mx_tools(&[]) {
        return;
    }
    let w = MxLab::start();
    let (dns, leaf, rx) = (&w.dns, &w.leaf, &w.rx);
    let resolver = w.resolver();
    let check = || {
        let (out, json) = check_json(&resolver, MX_HOST, "5", &[]);
        (out.code, json)
    };

    // No TLSA record: DANE is not in effect for this host, a warning (issue 7's checklist).
    let (code, json) = check();
    assert_eq!(code, Some(1), "{json:#}");
    assert!(
        json["tlsa"]["problem"]
            .as_str()
            .unwrap()
            .contains("no TLSA records"),
        "{json:#}"
    );

    // The matching record, validated: pass, at the address from the signed A record.
    let current = leaf.tlsa_311().unwrap();
    publish(dns, &current);
    let (code, json) = check();
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["tlsa"]["source"], "dns-secure");
    assert_eq!(json["addresses"][0]["address"], rx.addr().to_string());
    assert_eq!(json["addresses"][0]["keys"][0]["matched_record"], current);

    // Only a record for another key: fail, with OpenSSL's reason.
    let other = other_record(&w.pki);
    replace(dns, &current, &other);
    let (code, json) = check();
    assert_eq!(code, Some(2), "{json:#}");
    assert_eq!(
        json["addresses"][0]["keys"][0]["reason"],
        "no TLSA record matched the certificate chain"
    );
}
