//! A service that serves an RSA and an ECDSA certificate side by side (Postfix
//! `smtpd_tls_chain_files = ec.pem, rsa.pem`): one key slot per algorithm, each with its own
//! records and its own chain file (`chain-files`). Rolling one slot must not touch the other's
//! file or records, and the DANE-enforcing sender delivers Verified throughout.
//!
//! Runs the real `dane-roll` binary on the lab (BIND + Knot, validating Unbound, two Postfix),
//! with service `ttl = 2`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dane_roll_lab::conf::{Chains, RolloverConf, rollover_tools};
use dane_roll_lab::dns::query::normalize_rdata;
use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::pki::{KeyKind, Leaf, MX_HOST, TestPki, write_key_and_chain};
use dane_roll_lab::postfix::{Receiver, Sender};
use dane_roll_lab::world::{World, rdata, text};
use dane_roll_lab::{LabDir, loopback_block, require};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;
const OWNER: &str = "_25._tcp.mail.example.test.";
const JUDGE: Duration = Duration::from_secs(30);

fn tlsa_set(dns: &DnsLab) -> BTreeSet<String> {
    let answer = dns.query(dns.addr(Server::Bind), OWNER, "TLSA").unwrap();
    answer
        .records("TLSA")
        .iter()
        .map(|r| normalize_rdata(&r.rdata))
        .collect()
}

/// The key in a key+chain file, as the `3 1 1` of its SPKI.
fn file_rdata(path: &Path) -> String {
    let out = Command::new(BIN)
        .args(["tlsa", "--format", "rdata"])
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    normalize_rdata(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn rsa_and_ecdsa_slots_roll_separately_into_their_own_files() {
    let mut needs = rollover_tools(true);
    needs.push("postconf");
    if !require(&needs) {
        return;
    }
    let lab = LabDir::new().unwrap();
    let block = loopback_block();
    let dns = DnsLab::builder()
        .block(block)
        .dir(lab.path())
        .start()
        .expect("DNS lab starts");
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let old_ec = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let old_rsa = ca.leaf(&[MX_HOST], KeyKind::Rsa2048).unwrap();
    for leaf in [&old_ec, &old_rsa] {
        dns.add_tlsa(OWNER, TTL, &leaf.tlsa_311().unwrap()).unwrap();
        dns.wait_served_everywhere(OWNER, &leaf.tlsa_311().unwrap(), JUDGE)
            .unwrap();
    }
    dns.flush_resolver().unwrap();

    // The receiver serves both: its chain.pem (ECDSA) and a second file (RSA).
    let rx = Receiver::start(
        &lab.sub("receiver").unwrap(),
        block,
        &old_ec.key_and_chain_pem().unwrap(),
    )
    .unwrap();
    let ec_file = rx.chain_file();
    let rsa_file: PathBuf = ec_file.with_file_name("rsa.pem");
    write_key_and_chain(&rsa_file, &old_rsa.key_and_chain_pem().unwrap()).unwrap();
    let etc = rx.instance().etc();
    let postconf = Command::new("postconf")
        .arg("-c")
        .arg(&etc)
        .arg("-e")
        .arg(format!(
            "smtpd_tls_chain_files = {}, {}",
            ec_file.display(),
            rsa_file.display()
        ))
        .output()
        .unwrap();
    assert!(postconf.status.success(), "{}", text(&postconf));
    rx.reload_settled().unwrap();
    let tx = Sender::start(&lab.sub("sender").unwrap(), block, dns.resolver_addr()).unwrap();

    let files = lab.sub("files").unwrap();
    let conf = lab.path().join("dane-roll.toml");
    let mut settings = RolloverConf::new(lab.path(), &dns, &rx);
    settings.chains = Chains::PerAlgorithm(vec![
        ("ec".to_owned(), ec_file.clone()),
        ("rsa".to_owned(), rsa_file.clone()),
    ]);
    settings.write(&conf).unwrap();
    let dane_roll = |args: &[&str]| -> Output {
        Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let judge = |when: &str| {
        let v = tx.send_and_judge(JUDGE).unwrap();
        assert!(
            v.is_verified(),
            "{when}: mail not verified: {v:?}\nsender log:\n{}",
            tx.instance().log_tail(20)
        );
    };
    judge("before");

    let deploy = |name: &str, leaf: &Leaf| {
        let cert = files.join(format!("{name}.crt"));
        let key = files.join(format!("{name}.key"));
        std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
        std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let t0 = Instant::now();
        let out = dane_roll(&World::deploy_args(&cert, &key, &["--wait"]));
        assert_eq!(out.status.code(), Some(0), "deploy {name}: {}", text(&out));
        eprintln!("deploy {name}: {:?}", t0.elapsed());
        judge(&format!("after deploying {name}"));
    };

    // Roll the ECDSA slot: the RSA file and records stay as they were.
    let new_ec = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    deploy("ec", &new_ec);
    assert_eq!(file_rdata(&ec_file), rdata(&new_ec));
    assert_eq!(
        file_rdata(&rsa_file),
        rdata(&old_rsa),
        "the RSA file was touched"
    );
    let set = tlsa_set(&dns);
    assert!(set.contains(&rdata(&old_rsa)), "{set:?}");
    assert!(set.contains(&rdata(&new_ec)), "{set:?}");
    assert!(
        !set.contains(&rdata(&old_ec)),
        "old ECDSA record not retired: {set:?}"
    );

    // Roll the RSA slot: the ECDSA file and records stay.
    let new_rsa = ca.leaf(&[MX_HOST], KeyKind::Rsa2048).unwrap();
    deploy("rsa", &new_rsa);
    assert_eq!(file_rdata(&rsa_file), rdata(&new_rsa));
    assert_eq!(
        file_rdata(&ec_file),
        rdata(&new_ec),
        "the ECDSA file was touched"
    );

    // Each slot: done, with its own next key published; exactly these records remain.
    let out = dane_roll(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = status["services"].as_array().unwrap();
    let mut want: BTreeSet<String> = [rdata(&new_ec), rdata(&new_rsa)].into();
    for slot in ["ec", "rsa"] {
        let row = rows
            .iter()
            .find(|r| r["slot"] == slot)
            .unwrap_or_else(|| panic!("no {slot} slot in {status:#}"));
        let next = row["keys"]["next"]
            .as_str()
            .unwrap_or_else(|| panic!("{slot}: no next key in {row:#}"));
        want.insert(format!("3 1 1 {next}"));
    }
    assert_eq!(tlsa_set(&dns), want);

    // The live check sees both algorithms match. (A warning is allowed: the resolver may
    // still hold the retired records for one TTL, which the check reports as stale.)
    let out = dane_roll(&["check"]);
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let matched = report
        .lines()
        .find(|l| l.contains("tlsa-match"))
        .unwrap_or_default();
    assert!(
        matched.starts_with("OK")
            && matched.contains("(rsa) matches")
            && matched.contains("(ecdsa) matches"),
        "{report}"
    );
    judge("after");
}

#[test]
fn a_key_algorithm_without_a_chain_file_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let leaf = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let cert = dir.path().join("ec.crt");
    let key = dir.path().join("ec.key");
    std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
    std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let state = dir.path().join("state");
    let conf = dir.path().join("dane-roll.toml");
    std::fs::write(
        &conf,
        format!(
            r#"version = 1
state-dir = "{state}"

[resolver]
address = "127.0.0.1"

[[service]]
name = "mx"
endpoints = ["{MX_HOST}:25/smtp"]
chain-files = {{ rsa = "{rsa}" }}
provider = "manual"

[provider.manual]
kind = "manual"
"#,
            state = state.display(),
            rsa = dir.path().join("rsa.pem").display(),
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .args(["deploy", "--service", "mx", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr.contains("no chain file for ec keys") && stderr.contains("chain-files"),
        "{stderr}"
    );
    assert!(!dir.path().join("rsa.pem").exists());
    // Nothing staged, no rollover recorded.
    assert!(
        !state.join("staged").exists(),
        "something was staged under {state:?}"
    );
}
