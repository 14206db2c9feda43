//! Whole rollovers driven by real ACME clients on the lab (issue 6): pebble issues, certbot and
//! dehydrated run their hooks (`dane-roll hook …`), acme.sh's reloadcmd environment is
//! reproduced (acme.sh is not packaged), and the lab's DANE-enforcing sender Postfix judges the
//! mail to the MX before, during and after each rollover: every mail `Verified`, none deferred.
//!
//! The configuration is written here: an rfc2136 provider with the lab's TSIG key file, the
//! lab's validating resolver, TTL 2 s (so 2×TTL is 4 s), the receiving Postfix's key+chain file
//! and its `postfix -c ETC reload`. The hooks find it through `DANE_ROLL_CONFIG`, as installed
//! hooks would.
//!
//! Each test skips (or fails in CI) when a server or client is not installed.

mod acme_mail;
mod acme_sh;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use acme_mail::*;
use acme_sh::acme_sh_issue;
use dane_roll::rollover::KeyHash;
use dane_roll_lab::acme::{Certbot, Dehydrated, Pebble};
use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::pki::{self, KeyKind, MX_HOST};
use dane_roll_lab::require;

#[test]
fn certbot_rollover_reuse_key_renewal_and_rotate() {
    if !require(&rollover_tools(true)) || !require(&["pebble", "curl", "certbot"]) {
        return;
    }
    let mail = Mail::start(|_| Some(MX_HOST.to_owned()));
    let pebble = Pebble::start(&mail.lab.sub("pebble").unwrap(), mail.block).unwrap();
    let cb = Certbot::new(&mail.lab.sub("certbot").unwrap(), &pebble).unwrap();
    let live = cb.live_dir(MX_HOST);
    // The hook finds the configuration through DANE_ROLL_CONFIG. certbot checks that the hook's
    // first word is a program in PATH: `env` is, an assignment is not.
    let hook = format!(
        "env DANE_ROLL_CONFIG={} {BIN} hook certbot --wait",
        mail.conf.display()
    );

    // 1. The first certificate: published, 2×TTL, installed, verified.
    let t0 = Instant::now();
    cb.certonly(&[MX_HOST], Some(&hook), &["--key-type", "ecdsa"])
        .unwrap();
    let k1 = cert_key(&live.join("cert.pem"));
    eprintln!("certonly + first rollover: {:?}", t0.elapsed());
    assert_eq!(mail.served(), k1, "the MX serves certbot's certificate");
    let records = mail.tlsa_everywhere();
    assert!(records.contains(&rdata(&k1)), "{records:?}");
    let (n1, _) = mail
        .next_key()
        .expect("a next key after the first rollover");
    assert!(
        records.contains(&rdata(&n1)),
        "the next key is published: {records:?}"
    );
    assert_eq!(mail.waits(), 1);
    mail.verified("before");

    // 2. A renewal with a new key (certbot's default): the hook rolls over with the full wait,
    //    mail keeps flowing during it, and K1's record goes only after the switch.
    let cb2 = cb.clone();
    let ((), sent) = mail.during("the certbot rollover", move || {
        cb2.renew(MX_HOST, &["--force-renewal"]).unwrap();
    });
    let k2 = cert_key(&live.join("cert.pem"));
    assert_ne!(k2, k1);
    assert_eq!(mail.served(), k2);
    let records = mail.tlsa_everywhere();
    assert!(records.contains(&rdata(&k2)), "{records:?}");
    assert!(!records.contains(&rdata(&k1)), "K1 retired: {records:?}");
    assert!(
        records.contains(&rdata(&n1)),
        "the next key stays: {records:?}"
    );
    assert_eq!(mail.waits(), 2);
    mail.verified("after the certbot rollover");
    eprintln!("{sent} mails verified during the certbot rollover");

    // 3. A renewal with the same key changes nothing in DNS.
    let before = mail.tlsa_everywhere();
    let serial = mail.serial();
    cb.renew(MX_HOST, &["--force-renewal", "--reuse-key"])
        .unwrap();
    assert_eq!(cert_key(&live.join("cert.pem")), k2, "same key");
    assert_eq!(mail.tlsa_everywhere(), before, "DNS unchanged");
    assert_eq!(mail.serial(), serial, "not even an UPDATE was sent");
    assert_eq!(mail.served(), k2);
    mail.verified("after the reuse-key renewal");

    // 4. rotate: certbot renews with the published next key; the rollover needs no wait.
    let (next, next_path) = mail.next_key().unwrap();
    assert_eq!(next, n1);
    assert!(next_path.is_some());
    let rotate_args = mail.rotate_args(&cb.config_dir(), &pebble);
    let conf = mail.conf.clone();
    let ca = pebble.ca_file().to_path_buf();
    let t0 = Instant::now();
    let (out, sent) = mail.during("rotate", move || {
        Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .args(&rotate_args)
            .env("REQUESTS_CA_BUNDLE", &ca)
            .output()
            .unwrap()
    });
    let text = ok(&out, "dane-roll rotate");
    eprintln!(
        "rotate took {:?} ({sent} mails during it):\n{text}",
        t0.elapsed()
    );
    assert!(
        text.contains("certbot issued a certificate for the next key"),
        "{text}"
    );
    assert_eq!(cert_key(&live.join("cert.pem")), n1);
    assert_eq!(key_of(&live.join("privkey.pem")), n1);
    assert_eq!(mail.served(), n1, "the MX serves the next key");
    assert_eq!(
        mail.waits(),
        2,
        "no new wait: the next key was published long ago"
    );
    let records = mail.tlsa_everywhere();
    assert!(records.contains(&rdata(&n1)), "{records:?}");
    assert!(!records.contains(&rdata(&k2)), "K2 retired: {records:?}");
    let (n2, _) = mail.next_key().expect("a new next key");
    assert_ne!(n2, n1);
    assert!(records.contains(&rdata(&n2)), "{records:?}");
    // The staged copy in certbot's archive is gone: certbot wrote its own version.
    let archive = cb.config_dir().join("archive").join(MX_HOST);
    let keys = std::fs::read_dir(&archive)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_string_lossy().starts_with("privkey")
        })
        .count();
    let certs = std::fs::read_dir(&archive)
        .unwrap()
        .filter(|e| {
            let n = e.as_ref().unwrap().file_name();
            n.to_string_lossy().starts_with("cert")
        })
        .count();
    assert_eq!(keys, certs, "one key per version in {}", archive.display());
    mail.verified("after rotate");
    mail.nothing_deferred();
}

#[test]
fn dehydrated_with_private_key_rollover() {
    if !require(&rollover_tools(true)) || !require(&["pebble", "curl", "dehydrated"]) {
        return;
    }
    let mail = Mail::start(|_| Some(MX_HOST.to_owned()));
    let pebble = Pebble::start(&mail.lab.sub("pebble").unwrap(), mail.block).unwrap();
    let dh = Dehydrated::new(&mail.lab.sub("dehydrated").unwrap(), &pebble).unwrap();
    // The installed shim, as its comment says to set it up; dehydrated sources its config with
    // bash, so the exports reach the hook.
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/dane-roll-dehydrated-hook");
    let mut config = std::fs::read_to_string(dh.config_file()).unwrap();
    config.push_str(&format!(
        "HOOK=\"{}\"\nPRIVATE_KEY_RENEW=\"yes\"\nPRIVATE_KEY_ROLLOVER=\"yes\"\n\
         export DANE_ROLL=\"{BIN}\"\nexport DANE_ROLL_CONFIG=\"{}\"\n",
        shim.display(),
        mail.conf.display()
    ));
    std::fs::write(dh.config_file(), config).unwrap();
    let dir = dh.cert_dir(MX_HOST);

    // 1. The first certificate: the hook stages it and publishes its key and the roll key;
    //    `run` finishes (as the timer would). Every other hook event passed (dehydrated
    //    stops at a non-zero exit).
    let out = dh.issue(&[MX_HOST], &[]).unwrap();
    let k1 = key_of(&dir.join("privkey.pem"));
    let r1 = key_of(&dir.join("privkey.roll.pem"));
    assert_ne!(k1, r1);
    let records = mail.tlsa_everywhere();
    assert!(
        records.contains(&rdata(&k1)) && records.contains(&rdata(&r1)),
        "the hook published the new key and dehydrated's next key: {records:?}\n{}",
        out.output
    );
    let t0 = Instant::now();
    ok(&mail.dane_roll(&["run", "--wait"]), "dane-roll run --wait");
    eprintln!("first rollover finished by run in {:?}", t0.elapsed());
    assert_eq!(mail.served(), k1);
    assert_eq!(
        mail.next_key().map(|n| n.0),
        Some(r1),
        "the roll key is the next key"
    );
    assert_eq!(mail.waits(), 1);
    mail.verified("before");

    // 2. A forced renewal: dehydrated takes privkey.roll.pem as its key and makes a new one.
    //    The rollover to it needs no wait; the new roll key is published at once.
    dh.issue(&[MX_HOST], &["--force"]).unwrap();
    let k2 = key_of(&dir.join("privkey.pem"));
    let r2 = key_of(&dir.join("privkey.roll.pem"));
    assert_eq!(k2, r1, "dehydrated used the pre-published roll key");
    assert_ne!(r2, r1);
    mail.run_wait_during("the dehydrated rollover");
    assert_eq!(mail.served(), r1);
    // As for acme.sh: the new roll key's record is in the same gate (see there).
    assert!(mail.waits() <= 2, "{}", mail.history());
    eprintln!(
        "dehydrated rollover to the roll key waited: {}",
        mail.waits() == 2
    );
    mail.assert_rolled(&r1, (&r2, "the new roll key"), &k1, "after");
}

#[test]
fn acme_sh_reloadcmd_with_pre_generated_next_key() {
    if !require(&rollover_tools(true)) || !require(&["pebble", "curl"]) {
        return;
    }
    let mail = Mail::start(|_| Some(MX_HOST.to_owned()));
    let ca = pki::TestPki::new(KeyKind::EcdsaP256).unwrap();
    let dir = mail.acme_sh_dir();
    let reloadcmd = format!("{BIN} hook acme.sh --wait");

    // 1. --issue --always-force-new-domain-key: key K1, next key N1 beside it.
    let n1 = pki::new_key(KeyKind::EcdsaP256).unwrap();
    let n1_hash = KeyHash::of_spki_der(&n1.public_key_to_der().unwrap());
    let k1 = acme_sh_issue(&ca, &dir, pki::new_key(KeyKind::EcdsaP256).unwrap(), &n1);
    mail.acme_sh_reloadcmd(&dir, &reloadcmd, true);
    assert_eq!(mail.served(), k1);
    let records = mail.tlsa_everywhere();
    assert!(records.contains(&rdata(&k1)), "{records:?}");
    assert!(
        records.contains(&rdata(&n1_hash)),
        "<key>.next published: {records:?}"
    );
    assert_eq!(mail.waits(), 1);
    mail.verified("before");

    // 2. The renewal: acme.sh makes N1 the key and pre-generates N2; no wait for N1.
    let n2 = pki::new_key(KeyKind::EcdsaP256).unwrap();
    let n2_hash = KeyHash::of_spki_der(&n2.public_key_to_der().unwrap());
    let k2 = acme_sh_issue(&ca, &dir, n1, &n2);
    assert_eq!(k2, n1_hash);
    let conf = mail.conf.clone();
    let d = dir.clone();
    let rc = reloadcmd.clone();
    let ((), sent) = mail.during("the acme.sh rollover", move || {
        // Owned paths, not the mail lab: the closure runs beside the mails sent.
        acme_sh_reloadcmd(&conf, &d, &rc, true);
    });
    eprintln!("{sent} mails verified during the acme.sh rollover");
    assert_eq!(mail.served(), n1_hash);
    // N1's records were confirmed long ago, but the same rollover publishes N2's record, and
    // the gate wants every record of the set validated: when the resolver still holds the
    // RRset without N2 the wait starts over (the rollover engine's rule, reported for issue 6).
    assert!(mail.waits() <= 2, "{}", mail.history());
    eprintln!(
        "acme.sh rollover to <key>.next waited: {}",
        mail.waits() == 2
    );
    mail.assert_rolled(&n1_hash, (&n2_hash, "the new <key>.next"), &k1, "after");
}
