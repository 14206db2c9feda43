//! The `current+issuer` scheme follows the issuer (issue 18), on the lab: real BIND + Knot, a
//! validating Unbound, the receiving Postfix and the DANE-enforcing sending Postfix as the
//! judge of every mail.
//!
//! A CA issues from several intermediates and rotates them. A renewal that keeps the key but
//! comes from another intermediate must publish the new issuer's `2 1 1` before its install
//! (the live `3 1 1` keeps matching, so mail flows throughout) and retire the old issuer's once
//! no served chain holds it; the intermediates named in `issuer-ahead-file` are published ahead.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dane_roll_lab::conf::{rfc2136, rollover_tools};
use dane_roll_lab::dns::Server;
use dane_roll_lab::dns::query::normalize_rdata;
use dane_roll_lab::pki::{self, Issued, KeyKind, MX_HOST, Validity};
use dane_roll_lab::require;
use dane_roll_lab::world::{OWNER, World, rdata, text};

mod mx_lab;
use mx_lab::checks_of;

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;

fn start() -> World {
    let mut w = World::start(BIN, TTL);
    let provider = rfc2136(w.dns.addr(Server::Bind), &w.dns.tsig().file);
    w.rewrite(|c| {
        c.provider = provider;
        c.service_extra = "scheme = \"current+issuer\"".to_owned();
    });
    w
}

/// The `2 1 1` rdata of a CA certificate, normalized.
fn ta(ca: &Issued) -> String {
    normalize_rdata(&format!(
        "2 1 1 {}",
        pki::spki_sha256_hex(&ca.cert).unwrap()
    ))
}

/// `run` until every authoritative server serves exactly `want` (or fail after a while).
fn run_until_set(w: &World, want: &BTreeSet<String>) {
    let t0 = Instant::now();
    loop {
        let out = w.run(&["run"]);
        // Every authoritative server (the Knot secondary may lag a moment behind BIND).
        let served: Vec<BTreeSet<String>> = w
            .dns
            .authoritative()
            .iter()
            .map(|s| w.served_by(*s, OWNER))
            .collect();
        if served.iter().all(|s| s == want) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the RRset never became {want:?}: {served:?}\n{}\n{:#?}",
            text(&out),
            w.history()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_renewal_with_the_same_key_from_another_intermediate_follows_the_issuer() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = start();
    w.assert_mail_verified("before");

    // A rollover to key A from the first intermediate: 3 1 1 A + 2 1 1 int1.
    let (a, cert, key) = w.new_leaf("a");
    let out = w.deploy(&cert, &key, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let int1 = ta(&w.ca.intermediate);
    let want: BTreeSet<String> = [rdata(&a), int1.clone()].into_iter().collect();
    w.wait_tlsa_set(&want);
    w.assert_mail_verified("after the rollover to A");

    // The CA's other intermediates, named to be published ahead.
    let int2 =
        w.ca.another_intermediate("dane-roll lab intermediate CA 2")
            .unwrap();
    let int3 =
        w.ca.another_intermediate("dane-roll lab intermediate CA 3")
            .unwrap();
    let ahead = w.files.join("ahead.pem");
    std::fs::write(&ahead, int3.cert.to_pem().unwrap()).unwrap();
    let ahead_line = format!("issuer-ahead-file = \"{}\"", ahead.display());
    w.rewrite(|c| {
        c.service_extra = format!("scheme = \"current+issuer\"\n{ahead_line}");
    });

    // The renewal: the same key A, issued by the second intermediate.
    let renewed =
        w.ca.leaf_from(&int2, &[MX_HOST], a.key.clone(), Validity::Days(90))
            .unwrap();
    assert_eq!(rdata(&renewed), rdata(&a), "same key");
    let (cert, key) = w.write_leaf("renewed", &renewed);
    let out = w.deploy(&cert, &key, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    w.assert_mail_verified("right after the renewal");
    // The served chain is the new one.
    let served = w.rx.served_chain().unwrap();
    assert_eq!(
        served.get(1).map(|c| pki::spki_sha256_hex(c).unwrap()),
        Some(pki::spki_sha256_hex(&int2.cert).unwrap()),
        "the receiver serves the chain from the second intermediate"
    );

    // The new issuer's record and the one published ahead are out, the old issuer's is gone
    // (no served chain holds it), and the key's record stayed throughout.
    let want: BTreeSet<String> = [rdata(&a), ta(&int2), ta(&int3)].into_iter().collect();
    run_until_set(&w, &want);
    assert!(!w.tlsa_set().contains(&int1));
    // In order: the new issuer's record out before the install, the old one's retired after.
    let history = w.history();
    let at = |needle: &str| {
        history
            .iter()
            .position(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the history:\n{history:#?}"))
    };
    let published = at("published before the install");
    let installed = at("renewal with the same key");
    let retired = at("old issuer record(s) retired");
    assert!(published < installed && installed < retired, "{history:#?}");
    assert!(history[published].contains(&ta(&int2)), "{history:#?}");
    assert!(history[retired].contains(&int1), "{history:#?}");
    w.assert_mail_verified("after the old issuer's record went");
    w.assert_nothing_deferred();

    // A later key change from the new intermediate needs no new issuer record: the rollover
    // to key B publishes 3 1 1 B beside, and the issuer records stay.
    let b =
        w.ca.leaf_from(
            &int2,
            &[MX_HOST],
            pki::new_key(KeyKind::EcdsaP256).unwrap(),
            Validity::Days(90),
        )
        .unwrap();
    let (cert, key) = w.write_leaf("b", &b);
    let out = w.deploy(&cert, &key, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let want: BTreeSet<String> = [rdata(&b), ta(&int2), ta(&int3)].into_iter().collect();
    w.wait_tlsa_set(&want);
    w.assert_mail_verified("after the rollover to B");

    // A new key from the intermediate published ahead: its 2 1 1 was out all along; the
    // rollover retires the second intermediate's once the new chain is served.
    let c =
        w.ca.leaf_from(
            &int3,
            &[MX_HOST],
            pki::new_key(KeyKind::EcdsaP256).unwrap(),
            Validity::Days(90),
        )
        .unwrap();
    let (cert, key) = w.write_leaf("c", &c);
    let out = w.deploy(&cert, &key, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let want: BTreeSet<String> = [rdata(&c), ta(&int3)].into_iter().collect();
    w.wait_tlsa_set(&want);
    w.assert_mail_verified("after the rollover to C from the intermediate published ahead");
    w.assert_nothing_deferred();
}

/// `check --format json` of the lab's domain through its resolver (ECDSA, the lab's key).
fn check_json(w: &World) -> serde_json::Value {
    let resolver = w.dns.resolver_addr().to_string();
    let out = w.run(&[
        "check",
        "example.test",
        "--resolver",
        &resolver,
        "--key-algorithm",
        "ecdsa",
        "--timeout",
        "10",
        "--format",
        "json",
    ]);
    assert_ne!(out.status.code(), Some(101), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn a_short_lived_certificate_without_a_next_key_and_a_pinned_intermediate_are_said() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = start();
    // A 6-day certificate (renewed every 2–3 days) under current+issuer: no next key.
    let six =
        w.ca.leaf_from(
            &w.ca.intermediate,
            &[MX_HOST],
            pki::new_key(KeyKind::EcdsaP256).unwrap(),
            Validity::Days(6),
        )
        .unwrap();
    let (cert, key) = w.write_leaf("six", &six);
    let out = w.deploy(&cert, &key, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    w.assert_mail_verified("after the rollover to the 6-day certificate");

    // status says so, with what to do.
    let st = w.status_json();
    let advice = st["services"][0]["short_lived"].as_str().unwrap_or("");
    assert!(
        advice.contains("no next key published ahead") && advice.contains("current+next"),
        "{st:#}"
    );
    let out = w.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("short-lived:"),
        "{}",
        text(&out)
    );

    // check too, and the DANE-TA record pins the lab's intermediate: a warning that says why.
    let json = check_json(&w);
    let lifetime = checks_of(&json, "cert-lifetime");
    assert!(
        lifetime
            .iter()
            .any(|(s, m)| s == "warning" && m.contains("current+next")),
        "{json:#}"
    );
    let anchor = checks_of(&json, "tlsa-anchor");
    assert!(
        anchor
            .iter()
            .any(|(s, m)| s == "warning" && m.contains("intermediate") && m.contains("rotate")),
        "{json:#}"
    );

    // The way out: scheme current+next and a next key published ahead. Neither says it then.
    w.rewrite(|c| c.service_extra = String::new());
    let out = w.run(&["next-key", "mx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st = w.status_json();
    assert!(st["services"][0]["short_lived"].is_null(), "{st:#}");
    // (the resolver may hold the RRset without it for a TTL)
    let t0 = Instant::now();
    loop {
        let json = check_json(&w);
        let lifetime = checks_of(&json, "cert-lifetime");
        if !lifetime.is_empty() && lifetime.iter().all(|(s, _)| s == "ok") {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{json:#}");
        std::thread::sleep(Duration::from_millis(500));
    }
    w.assert_mail_verified("after the next key was published");
}
