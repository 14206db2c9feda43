//! The hook is a hint; the timer reconciles (issue 13). Under cron an ACME client's hook can fail
//! before it reads anything (a bare environment, no configuration) and the client exits 0 all
//! the same: `dane-roll run` must find the new certificate where the client keeps it and start
//! the rollover itself, through the same gate.
//!
//! - On the lab: certbot against pebble, its deploy hook run under `env -i` (no configuration),
//!   and the DANE-enforcing sender Postfix as the judge: the first certificate, a renewal with a
//!   new key and one with the same key are each picked up by `run`; every mail Verified, none
//!   deferred.
//!
//! What `run` makes of each kind of source, without servers, is in tests/reconcile_sources.rs.

mod acme_mail;
mod acme_sh;

use std::path::Path;

use acme_mail::*;
use acme_sh::acme_sh_issue;
use dane_roll::rollover::KeyHash;
use dane_roll_lab::acme::{Certbot, Dehydrated, Pebble};
use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::pki::{self, KeyKind, MX_HOST};
use dane_roll_lab::require;

/// The DER of the first certificate in a PEM file (a key+chain file: the leaf).
fn leaf_der(path: &Path) -> Vec<u8> {
    let certs = openssl::x509::X509::stack_from_pem(&std::fs::read(path).unwrap()).unwrap();
    certs[0].to_der().unwrap()
}

// ----- on the lab -----

/// The lab; with `lineage`, service `mx`'s `lineage` is certbot's live directory under
/// `certbot/config/live/`.
fn start(lineage: bool) -> Mail {
    Mail::start(|lab| {
        lineage.then(|| {
            lab.join("certbot/config/live")
                .join(MX_HOST)
                .display()
                .to_string()
        })
    })
}

#[test]
fn certbot_with_a_failing_hook_is_picked_up_by_run() {
    if !require(&rollover_tools(true)) || !require(&["pebble", "curl", "certbot"]) {
        return;
    }
    let mail = start(true);
    let pebble = Pebble::start(&mail.lab.sub("pebble").unwrap(), mail.block).unwrap();
    let cb = Certbot::new(&mail.lab.sub("certbot").unwrap(), &pebble).unwrap();
    let live = cb.live_dir(MX_HOST);
    // The hook as cron runs it: a bare environment, so it cannot find its configuration
    // (certbot's own variables are passed on). certbot logs the failure and exits 0.
    let hook = format!(
        "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin RENEWED_LINEAGE=\"$RENEWED_LINEAGE\" \
         RENEWED_DOMAINS=\"$RENEWED_DOMAINS\" {BIN} hook certbot --wait"
    );
    assert!(
        !Path::new(dane_roll::cli::DEFAULT_CONFIG).exists(),
        "this test needs {} absent",
        dane_roll::cli::DEFAULT_CONFIG
    );
    let before = mail.served();

    // 1. The first certificate: the hook fails, certbot exits 0, nothing happened.
    let run = cb
        .certonly(&[MX_HOST], Some(&hook), &["--key-type", "ecdsa"])
        .unwrap();
    let k1 = cert_key(&live.join("cert.pem"));
    assert_eq!(
        mail.served(),
        before,
        "the hook did nothing:\n{}",
        run.output
    );
    assert!(!mail.tlsa_everywhere().contains(&rdata(&k1)));
    //    `run` notices it in the lineage, publishes, waits the gate, installs, verifies.
    let out = ok(&mail.dane_roll(&["run", "--wait"]), "dane-roll run --wait");
    eprintln!("{out}");
    assert!(out.contains("hook was missed"), "{out}");
    assert_eq!(
        mail.served(),
        k1,
        "run installed certbot's certificate:\n{out}"
    );
    assert!(mail.tlsa_everywhere().contains(&rdata(&k1)));
    assert_eq!(mail.waits(), 1, "the gate was waited");
    mail.verified("after the first certificate");

    // 2. A renewal with a new key, the hook failing again: mail goes on with K1 meanwhile; then
    //    `run --wait` rolls over, every mail Verified throughout.
    cb.renew(MX_HOST, &["--force-renewal"]).unwrap();
    let k2 = cert_key(&live.join("cert.pem"));
    assert_ne!(k2, k1);
    assert_eq!(mail.served(), k1, "the hook did nothing");
    mail.verified("after certbot renewed, before run");
    let out = mail.run_wait_during("the rollover run started");
    assert!(out.contains("hook was missed"), "{out}");
    assert!(out.contains(&k2.short()), "{out}");
    assert_eq!(mail.served(), k2);
    let records = mail.tlsa_everywhere();
    assert!(records.contains(&rdata(&k2)), "{records:?}");
    assert!(!records.contains(&rdata(&k1)), "K1 retired: {records:?}");
    assert_eq!(mail.waits(), 2, "the rollover to K2 waited the gate");
    mail.verified("after the rollover");

    // 3. A renewal with the same key: `run` installs the new certificate, DNS unchanged.
    let serial = mail.serial();
    cb.renew(MX_HOST, &["--force-renewal", "--reuse-key"])
        .unwrap();
    assert_eq!(cert_key(&live.join("cert.pem")), k2, "same key");
    assert_ne!(
        leaf_der(&mail.rx.chain_file()),
        leaf_der(&live.join("cert.pem"))
    );
    let out = ok(&mail.dane_roll(&["run"]), "dane-roll run");
    assert!(out.contains("same key"), "{out}");
    assert_eq!(
        leaf_der(&mail.rx.chain_file()),
        leaf_der(&live.join("cert.pem")),
        "the renewed certificate is installed"
    );
    assert_eq!(mail.serial(), serial, "DNS unchanged");
    assert_eq!(mail.served(), k2);
    mail.verified("after the same-key renewal");

    // 4. Nothing new: `run` does nothing.
    let out = ok(&mail.dane_roll(&["run"]), "dane-roll run");
    assert!(!out.contains("hook was missed"), "{out}");
    assert!(out.contains("no rollover pending"), "{out}");

    mail.verified("at the end");
    assert_eq!(mail.tx.deferred_count().unwrap(), 0, "nothing deferred");
    assert_eq!(mail.tx.bounced_count(), 0);
}

#[test]
fn dehydrated_with_a_failing_hook_is_picked_up_by_run() {
    if !require(&rollover_tools(true)) || !require(&["pebble", "curl", "dehydrated"]) {
        return;
    }
    let mail = start(false);
    let pebble = Pebble::start(&mail.lab.sub("pebble").unwrap(), mail.block).unwrap();
    let dh = Dehydrated::new(&mail.lab.sub("dehydrated").unwrap(), &pebble).unwrap();
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/dane-roll-dehydrated-hook");
    let base = std::fs::read_to_string(dh.config_file()).unwrap();
    let hook = format!(
        "{base}HOOK=\"{}\"\nPRIVATE_KEY_RENEW=\"yes\"\nPRIVATE_KEY_ROLLOVER=\"yes\"\n\
         export DANE_ROLL=\"{BIN}\"\n",
        shim.display()
    );
    let with_config = format!(
        "{hook}export DANE_ROLL_CONFIG=\"{}\"\n",
        mail.conf.display()
    );
    std::fs::write(dh.config_file(), &with_config).unwrap();
    let dir = dh.cert_dir(MX_HOST);

    // 1. The first certificate, the hook working: it records where dehydrated keeps it.
    dh.issue(&[MX_HOST], &[]).unwrap();
    ok(&mail.dane_roll(&["run", "--wait"]), "dane-roll run --wait");
    let k1 = key_of(&dir.join("privkey.pem"));
    let r1 = key_of(&dir.join("privkey.roll.pem"));
    assert_eq!(mail.served(), k1);
    mail.verified("before");

    // 2. The hook loses its configuration (cron's bare environment); dehydrated renews with its
    //    roll key all the same (and stops at the failing hook, after the links are in place).
    std::fs::write(dh.config_file(), &hook).unwrap();
    let renewal = dh.issue(&[MX_HOST], &["--force"]);
    eprintln!("dehydrated with the failing hook: {renewal:?}");
    assert_eq!(
        key_of(&dir.join("privkey.pem")),
        r1,
        "the roll key is the key"
    );
    let r2 = key_of(&dir.join("privkey.roll.pem"));
    assert_ne!(r2, r1);
    assert_eq!(mail.served(), k1, "the hook did nothing");
    mail.verified("after dehydrated renewed, before run");

    // 3. `run` finds it where the last hook said, and rolls over.
    let out = mail.run_wait_during("the rollover run started");
    assert!(out.contains("hook was missed"), "{out}");
    assert_eq!(mail.served(), r1);
    mail.assert_rolled(
        &r1,
        (&r2, "the new roll key is published"),
        &k1,
        "at the end",
    );
}

#[test]
fn acme_sh_renewal_without_its_reloadcmd_is_picked_up_by_run() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mail = start(false);
    let ca = pki::TestPki::new(KeyKind::EcdsaP256).unwrap();
    let dir = mail.acme_sh_dir();

    // 1. --issue with the reloadcmd: K1 installed, the next key N1 published, the paths recorded.
    let n1 = pki::new_key(KeyKind::EcdsaP256).unwrap();
    let n1_hash = KeyHash::of_spki_der(&n1.public_key_to_der().unwrap());
    let k1 = acme_sh_issue(&ca, &dir, pki::new_key(KeyKind::EcdsaP256).unwrap(), &n1);
    mail.acme_sh_reloadcmd(&dir, &format!("{BIN} hook acme.sh --wait"), true);
    assert_eq!(mail.served(), k1);
    mail.verified("before");

    // 2. acme.sh renews (N1 becomes the key, N2 is pre-generated); its reloadcmd never runs.
    let n2 = pki::new_key(KeyKind::EcdsaP256).unwrap();
    let n2_hash = KeyHash::of_spki_der(&n2.public_key_to_der().unwrap());
    assert_eq!(acme_sh_issue(&ca, &dir, n1, &n2), n1_hash);
    assert_eq!(mail.served(), k1);
    mail.verified("after acme.sh renewed, before run");

    // 3. `run` finds it at the recorded paths and rolls over.
    let out = mail.run_wait_during("the rollover run started");
    assert!(out.contains("hook was missed"), "{out}");
    assert_eq!(mail.served(), n1_hash);
    mail.assert_rolled(
        &n1_hash,
        (&n2_hash, "the new <key>.next is published"),
        &k1,
        "at the end",
    );
}
