//! `check` beside DANE (issue 18): the TLSRPT record and MTA-STS (record, policy fetched over
//! HTTPS, its mode, `mx:` coverage, and each MX certificate under the Web PKI when the mode is
//! enforce) against the lab: the signed zone `example.test`, its MX (the lab's receiving
//! Postfix), the TXT records added by UPDATE, and the policy served by the lab's HTTPS server at
//! `mta-sts.example.test:443` with a certificate from a test CA given with
//! `--webpki-ca-file`.

use std::net::SocketAddr;

use dane_roll_lab::DnsLab;
use dane_roll_lab::dns::UpdateOutcome;
use dane_roll_lab::https::{HttpsServer, Page};
use dane_roll_lab::pki::{KeyKind, MX_HOST, TestPki, self_signed};
use serde_json::Value;

mod mx_lab;

use mx_lab::{MxLab, WAIT, check_json, checks_of, mx_tools, publish, replace};

const POLICY: &str = "/.well-known/mta-sts.txt";

/// `check example.test --format json` through the lab's resolver, trusting `ca`.
fn check(resolver: &str, ca: &std::path::Path) -> (Option<i32>, Value, String) {
    let ca = ca.display().to_string();
    let (out, json) = check_json(resolver, "example.test", "20", &["--webpki-ca-file", &ca]);
    (out.code, json, out.stderr)
}

/// The status and message of the one check of `kind`, if made.
fn check_of(json: &Value, kind: &str) -> Option<(String, String)> {
    let found = checks_of(json, kind);
    assert!(found.len() <= 1, "several {kind} checks: {json:#}");
    found.into_iter().next()
}

fn expect(json: &Value, kind: &str, status: &str, words: &str) {
    let (s, m) = check_of(json, kind).unwrap_or_else(|| panic!("no {kind} check: {json:#}"));
    assert_eq!(s, status, "{kind}: {m}\n{json:#}");
    assert!(m.contains(words), "{kind}: \"{words}\" not in \"{m}\"");
}

fn update(dns: &DnsLab, line: &str) {
    match dns.nsupdate(&["zone example.test.", line]).unwrap() {
        UpdateOutcome::Ok => {}
        other => panic!("UPDATE {line}: {}", other.text()),
    }
}

/// Replace the TXT RRset at `name` with `text` (none: delete it), wait until every server
/// serves that, and flush the resolver.
fn set_txt(dns: &DnsLab, name: &str, text: Option<&str>) {
    update(dns, &format!("update delete {name}. IN TXT"));
    if let Some(text) = text {
        update(dns, &format!("update add {name}. 300 IN TXT \"{text}\""));
    }
    dns.wait_everywhere(name, "TXT", WAIT, |a| {
        let has = a.answer.iter().any(|r| r.rtype == "TXT");
        match text {
            Some(t) => a
                .answer
                .iter()
                .any(|r| r.rtype == "TXT" && r.rdata.contains(t)),
            None => !has,
        }
    })
    .unwrap();
    dns.flush_resolver().unwrap();
}

fn policy(mode: &str, mx: &[&str]) -> String {
    let mut text = format!("version: STSv1\r\nmode: {mode}\r\n");
    for m in mx {
        text.push_str(&format!("mx: {m}\r\n"));
    }
    text.push_str("max_age: 604800\r\n");
    text
}

#[test]
fn tlsrpt_and_mta_sts_beside_dane() {
    if !mx_tools(&[]) {
        return;
    }
    let w = MxLab::start();
    let (lab, dns, pki, rx) = (&w.lab, &w.dns, &w.pki, &w.rx);
    let ca = lab.path().join("test-ca.pem");
    std::fs::write(&ca, pki.root_pem().unwrap()).unwrap();
    let current = w.leaf.tlsa_311().unwrap();
    publish(dns, &current);
    let resolver = w.resolver();

    // The HTTPS server of mta-sts.example.test, on the MX's address, port 443.
    let web_ip = *rx.addr().ip();
    let web_leaf = pki
        .leaf(&["mta-sts.example.test"], KeyKind::EcdsaP256)
        .unwrap();
    let web = HttpsServer::start(SocketAddr::new(web_ip.into(), 443), &web_leaf).unwrap();
    update(
        dns,
        &format!("update add mta-sts.example.test. 300 IN A {web_ip}"),
    );

    // No TLSRPT record: ok (the record is optional), saying what to publish; DANE itself is
    // fine. No MTA-STS: fine, and no MX is judged under it.
    set_txt(dns, "_smtp._tls.example.test", None);
    set_txt(dns, "_mta-sts.example.test", None);
    let (code, json, err) = check(&resolver, &ca);
    assert_eq!(code, Some(0), "{json:#}\n{err}");
    expect(
        &json,
        "tlsrpt",
        "ok",
        "no TLSRPT record at _smtp._tls.example.test",
    );
    expect(&json, "mta-sts", "ok", "no MTA-STS record");
    expect(&json, "tlsa-match", "ok", "");
    assert!(check_of(&json, "mta-sts-mx").is_none(), "{json:#}");

    // A TLSRPT record with an unusable rua: a warning naming it.
    set_txt(
        dns,
        "_smtp._tls.example.test",
        Some("v=TLSRPTv1; rua=http://r.example.test/"),
    );
    let (_, json, _) = check(&resolver, &ca);
    expect(&json, "tlsrpt", "warning", "neither mailto: nor https:");

    // A usable one: ok, all ok.
    set_txt(
        dns,
        "_smtp._tls.example.test",
        Some("v=TLSRPTv1; rua=mailto:tls@example.test"),
    );
    let (code, json, err) = check(&resolver, &ca);
    assert_eq!(code, Some(0), "{json:#}\n{err}");
    expect(&json, "tlsrpt", "ok", "mailto:tls@example.test");

    // The MTA-STS record without a policy (404): a warning, senders apply none.
    set_txt(dns, "_mta-sts.example.test", Some("v=STSv1; id=1"));
    let (code, json, _) = check(&resolver, &ca);
    assert_eq!(code, Some(1), "{json:#}");
    expect(&json, "mta-sts", "warning", "404");
    assert!(check_of(&json, "mta-sts-mx").is_none(), "{json:#}");

    // Testing mode, the MX covered, its certificate CA-issued: ok.
    web.set(POLICY, Page::text(policy("testing", &[MX_HOST])));
    let (code, json, err) = check(&resolver, &ca);
    assert_eq!(code, Some(0), "{json:#}\n{err}");
    expect(&json, "mta-sts", "ok", "mode testing");
    expect(&json, "mta-sts-mx", "ok", "valid under the Web PKI");
    assert_eq!(json["domains"][0]["mta_sts"]["mode"], "testing", "{json:#}");

    // Without the test CA the policy's certificate is not trusted: no policy.
    let system = lab.path().join("other-ca.pem");
    let other = TestPki::new(KeyKind::EcdsaP256).unwrap();
    std::fs::write(&system, other.root_pem().unwrap()).unwrap();
    let (_, json, _) = check(&resolver, &system);
    expect(&json, "mta-sts", "warning", "but no policy");

    // Enforce with a wildcard pattern that covers the MX: ok.
    web.set(POLICY, Page::text(policy("enforce", &["*.example.test"])));
    let (code, json, _) = check(&resolver, &ca);
    assert_eq!(code, Some(0), "{json:#}");
    expect(&json, "mta-sts-mx", "ok", "enforce");

    // Enforce, the MX not covered by any pattern: critical.
    web.set(POLICY, Page::text(policy("enforce", &["mx.other.test"])));
    let (code, json, _) = check(&resolver, &ca);
    assert_eq!(code, Some(2), "{json:#}");
    expect(
        &json,
        "mta-sts-mx",
        "critical",
        "not covered by the MTA-STS policy",
    );
    expect(&json, "tlsa-match", "ok", "");

    // An oversized policy (over 64 KiB): refused unread, a warning.
    let mut big = policy("enforce", &[MX_HOST]);
    while big.len() <= 70 * 1024 {
        big.push_str("# padding padding padding padding padding padding padding\r\n");
    }
    web.set(POLICY, Page::text(big));
    let (_, json, _) = check(&resolver, &ca);
    expect(&json, "mta-sts", "warning", "larger than 65536 bytes");

    // A redirect is not followed.
    web.set(
        POLICY,
        Page::redirect("https://mta-sts.example.test/other.txt"),
    );
    let (_, json, _) = check(&resolver, &ca);
    expect(
        &json,
        "mta-sts",
        "warning",
        "senders do not follow redirects",
    );

    // Enforce, the MX serving a self-signed DANE-EE certificate: DANE matches, MTA-STS
    // senders refuse it: critical.
    web.set(POLICY, Page::text(policy("enforce", &[MX_HOST])));
    let selfie = self_signed(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let selfie_rdata = selfie.tlsa_311().unwrap();
    replace(dns, &current, &selfie_rdata);
    rx.install_chain(&selfie.key_and_chain_pem().unwrap())
        .unwrap();
    rx.reload_settled().unwrap();
    rx.wait_serving(&selfie.spki_sha256_hex().unwrap(), WAIT)
        .unwrap();
    let (code, json, err) = check(&resolver, &ca);
    assert_eq!(code, Some(2), "{json:#}\n{err}");
    expect(&json, "tlsa-match", "ok", "");
    expect(
        &json,
        "mta-sts-mx",
        "critical",
        "not valid under the Web PKI",
    );

    // The same in testing mode: a warning.
    web.set(POLICY, Page::text(policy("testing", &[MX_HOST])));
    let (code, json, _) = check(&resolver, &ca);
    assert_eq!(code, Some(1), "{json:#}");
    expect(
        &json,
        "mta-sts-mx",
        "warning",
        "not valid under the Web PKI",
    );
}

/// The exporter shows the policy's mode and max_age per mail domain.
#[test]
fn exporter_shows_the_mta_sts_mode() {
    use dane_roll::monitor::beside::{Mode, Policy};
    use dane_roll::monitor::{DomainReport, RunReport};
    use dane_roll::notify::Severity;
    let run = RunReport {
        status: Severity::Ok,
        started: 1_738_324_800,
        elapsed_seconds: 0.1,
        resolver: None,
        rrsig_warn_days: 5,
        cert_warn_days: 14,
        domains: vec![DomainReport {
            domain: "example.com".into(),
            dns_status: "secure".into(),
            mx: Vec::new(),
            mta_sts: Some(Policy {
                mode: Mode::Enforce,
                max_age: 604_800,
                mx: vec!["mail.example.com".into()],
            }),
        }],
        endpoints: Vec::new(),
        checks: Vec::new(),
    };
    let text = dane_roll::monitor::exporter::encode_run(&run, None);
    for line in [
        "dane_mta_sts_policy{domain=\"example.com\",mode=\"enforce\"} 1",
        "dane_mta_sts_policy{domain=\"example.com\",mode=\"testing\"} 0",
        "dane_mta_sts_max_age_seconds{domain=\"example.com\"} 604800",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}
