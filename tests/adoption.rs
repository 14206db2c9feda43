//! Issue 16's done-when, end to end on the lab: a Postfix and a Dovecot (Debian's) on a real
//! certbot lineage (from pebble) with the key's `3 1 1` published by hand; `dane-roll init`
//! writes a configuration that `config check` accepts; `init --apply` switches Postfix and
//! Dovecot to dane-roll's file with mail Verified throughout, registers certbot's deploy hook
//! and adopts the live key and record; then a certbot renewal under a bare environment
//! (`env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin`) rolls the key, and the timer's
//! `dane-roll run --wait` completes the first rollover (new key served on 25 and 993, the
//! adopted record retired, mail Verified).
//!
//! The program is `DANE_ROLL_BIN` (CI sets `/usr/bin/dane-roll`, the installed package's), else
//! this build. Each step's time is printed on one `ADOPTION` line (benches/adoption.sh reads it).

mod init_support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use dane_roll::rollover::KeyHash;
use dane_roll_lab::LoopbackBlock;
use dane_roll_lab::acme::{Certbot, Pebble};
use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::pki::MX_HOST;
use dane_roll_lab::require;
use dane_roll_lab::world::{JUDGE, OWNER, World, text};
use init_support::{
    BARE_PATH, BIN, LabDovecot, Sources, bare_run_wait, lab_tuned, postfix_on_pair,
};

/// The dane-roll under test: `DANE_ROLL_BIN`, else this build.
fn program() -> PathBuf {
    std::env::var_os("DANE_ROLL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BIN))
}

/// The SPKI hash of the certificate in `path`.
fn cert_key(path: &Path) -> KeyHash {
    let cert = openssl::x509::X509::from_pem(&std::fs::read(path).unwrap()).unwrap();
    KeyHash::of_spki_der(&cert.public_key().unwrap().public_key_to_der().unwrap())
}

fn ok(out: &Output, what: &str) -> String {
    let said = text(out);
    assert_eq!(out.status.code(), Some(0), "{what}: {said}");
    said
}

#[test]
fn adoption_from_certbot_postfix_and_dovecot_to_a_first_rollover() {
    let mut tools = rollover_tools(true);
    tools.extend(["dovecot", "doveconf", "doveadm", "certbot", "pebble"]);
    if !require(&tools) {
        return;
    }
    let bin = program();
    let t_lab = Instant::now();
    let w = World::start(&bin, 2);
    let etc = w.rx.instance().etc();
    let ip = *w.rx.addr().ip();
    let acme_ip = Ipv4Addr::new(127, 53, ip.octets()[2], LoopbackBlock::ACME);
    let pebble = Pebble::start_on(&w.files.join("pebble"), acme_ip).unwrap();
    let cb = Certbot::new(&w.files.join("certbot"), &pebble).unwrap();
    cb.certonly(&[MX_HOST], None, &["--key-type", "ecdsa"])
        .unwrap();
    let live = cb.live_dir(MX_HOST);
    let (cert, key) = (live.join("fullchain.pem"), live.join("privkey.pem"));
    let k1 = cert_key(&live.join("cert.pem"));
    // The operator published certbot's key by hand, then pointed Postfix and Dovecot at it.
    let k1_rr = format!("3 1 1 {}", k1.to_hex());
    w.dns.add_tlsa(OWNER, 2, &k1_rr).unwrap();
    w.dns.wait_served_everywhere(OWNER, &k1_rr, JUDGE).unwrap();
    w.dns.flush_resolver().unwrap();
    postfix_on_pair(&w, &cert, &key);
    let dovecot = LabDovecot::start(&w.files.join("dovecot"), ip, &cert, &key);
    assert_eq!(dovecot.served_spki(ip), k1.to_hex());
    w.assert_mail_verified("Postfix and Dovecot on certbot's files");
    let lab_s = t_lab.elapsed().as_secs_f64();

    // 1. init: discovery and the configuration.
    let conf = w.files.join("etc-dane-roll/dane-roll.toml");
    let tsig = w.tsig_file();
    let resolver = w.dns.resolver_addr().to_string();
    let mut sources = Sources::new(&etc, &w.files);
    sources.dovecot_config = Some(dovecot.config.clone());
    sources.letsencrypt = cb.config_dir();
    sources.dehydrated_config = Some(w.files.join("no-dehydrated/config"));
    let init = |extra: &[&str]| {
        sources
            .command(&bin, Some(&w.state), &conf)
            .args(["--resolver", &resolver])
            .args(extra)
            .output()
            .unwrap()
    };
    let t = Instant::now();
    let secret = tsig.display().to_string();
    let said = ok(&init(&["--provider-secret-file", &secret]), "init");
    let init_s = t.elapsed().as_secs_f64();
    for want in [
        "dovecot   found",
        "acme      found     certbot",
        "matches the live key",
    ] {
        assert!(said.contains(want), "missing {want:?} in\n{said}");
    }
    // What an operator tunes by hand here: the lab's primary has a name only the lab's
    // resolver knows, and its TTLs are seconds.
    let written = std::fs::read_to_string(&conf).unwrap();
    let tuned = lab_tuned(&written, &w);
    assert_ne!(tuned, written, "{written}");
    std::fs::write(&conf, tuned).unwrap();
    let t = Instant::now();
    let check = Command::new(&bin)
        .arg("-c")
        .arg(&conf)
        .args(["config", "check"])
        .output()
        .unwrap();
    ok(&check, "config check");
    let check_s = t.elapsed().as_secs_f64();

    // 2. init --apply: Postfix and Dovecot switched, the hook registered, the live adopted.
    let t = Instant::now();
    let said = ok(&init(&["--apply"]), "init --apply");
    let apply_s = t.elapsed().as_secs_f64();
    w.assert_mail_verified("after init --apply");
    let chain_file = etc.join("dane-roll/mx.pem");
    assert_eq!(
        dovecot.get("ssl_cert"),
        format!("<{}", chain_file.display())
    );
    assert_eq!(dovecot.served_spki(ip), k1.to_hex());
    let hook = cb.config_dir().join("renewal-hooks/deploy/dane-roll");
    assert!(
        said.contains(&format!(
            "hook     added certbot's deploy hook {}",
            hook.display()
        )),
        "{said}"
    );
    let status = Command::new(&bin)
        .arg("-c")
        .arg(&conf)
        .args(["status", "--json"])
        .output()
        .unwrap();
    ok(&status, "status --json");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let row = &status["services"][0];
    assert_eq!(
        row["keys"]["stored"]["current"].as_str(),
        Some(&*k1.to_hex())
    );
    assert!(
        row["records"]["published"]
            .to_string()
            .contains(&k1.to_hex()),
        "{status:#}"
    );

    // 3. A certbot renewal under the timer's bare environment: a new key, handed over by the
    //    deploy hook init registered.
    let hook_log = w.files.join("dane-roll-hook.log");
    let mut renew = cb.command("renew");
    renew.args([
        "--cert-name",
        MX_HOST,
        "--no-random-sleep-on-renew",
        "--force-renewal",
    ]);
    let t = Instant::now();
    let out = Command::new("env")
        .args(["-i", BARE_PATH])
        .arg(format!("REQUESTS_CA_BUNDLE={}", pebble.ca_file().display()))
        .arg(format!("DANE_ROLL_HOOK_LOG={}", hook_log.display()))
        .arg(renew.get_program())
        .args(renew.get_args())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = ok(&out, "certbot renew (bare environment)");
    let renew_s = t.elapsed().as_secs_f64();
    let k2 = cert_key(&live.join("cert.pem"));
    assert_ne!(k2, k1, "certbot renewed with a new key: {said}");
    let logged = std::fs::read_to_string(&hook_log).unwrap_or_default();
    assert!(
        logged.contains(MX_HOST),
        "the deploy hook ran: {logged}\n{said}"
    );
    w.assert_mail_verified("after the renewal, before the rollover");

    // 4. The timer's run completes the first rollover.
    let t = Instant::now();
    let out = bare_run_wait(&bin, &conf);
    ok(&out, "dane-roll run --wait");
    let roll_s = t.elapsed().as_secs_f64();
    assert_eq!(w.served_spki(), k2.to_hex());
    assert_eq!(dovecot.served_spki(ip), k2.to_hex());
    let (k1_rr, k2_rr) = (
        format!("3 1 1 {}", k1.to_hex()),
        format!("3 1 1 {}", k2.to_hex()),
    );
    w.wait_tlsa(
        OWNER,
        "the new key's record in, the adopted one out",
        |set| set.contains(&k2_rr) && !set.contains(&k1_rr),
    );
    w.assert_mail_verified("after the first rollover");
    w.assert_nothing_deferred();
    println!(
        "ADOPTION program {} lab {lab_s:.2} s, init {init_s:.2} s, config check {check_s:.2} s, init --apply {apply_s:.2} s, certbot renew {renew_s:.2} s, first rollover (TTL 2 s) {roll_s:.2} s, init to rollover done {:.2} s",
        bin.display(),
        init_s + check_s + apply_s + renew_s + roll_s
    );
}
