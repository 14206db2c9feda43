//! The hook is a hint; the timer reconciles (issue 13). Under cron an ACME client's hook can fail
//! before it reads anything (a bare environment, no configuration) and the client exits 0 all
//! the same: `dane-roll run` must find the new certificate where the client keeps it and start
//! the rollover itself, through the same gate.
//!
//! - On the lab: certbot against pebble, its deploy hook run under `env -i` (no configuration),
//!   and the DANE-enforcing sender Postfix as the judge: the first certificate, a renewal with a
//!   new key and one with the same key are each picked up by `run`; every mail Verified, none
//!   deferred.
//! - Without servers: what `run` makes of a source (installed, unreadable, a new key recorded by
//!   an acme.sh or dehydrated hook, a renewal, an older certificate) and that a hook records its
//!   source.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dane_roll::config::Config;
use dane_roll::hooks::source::AcmeSource;
use dane_roll::hooks::{Client, Env};
use dane_roll::rollover::KeyHash;
use dane_roll::rollover::SystemClock;
use dane_roll::rollover::driver::Driver;
use dane_roll::rollover::driver::reconcile::{Look, Verdict};
use dane_roll::store::Store;
use dane_roll_lab::acme::{Certbot, Pebble};
use dane_roll_lab::conf::RolloverConf;
use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::pki::{self, KeyKind, MX_HOST, TestPki, Validity};
use dane_roll_lab::postfix::{Receiver, Sender};
use dane_roll_lab::{LabDir, LoopbackBlock, loopback_block, require};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const OWNER: &str = "_25._tcp.mail.example.test.";
const JUDGE: Duration = Duration::from_secs(30);
const NEEDS: &[&str] = &[
    "named",
    "tsig-keygen",
    "dnssec-dsfromkey",
    "dig",
    "nsupdate",
    "ip",
    "knotd",
    "knotc",
    "unbound",
    "unbound-control",
    "postfix",
    "sendmail",
    "postqueue",
    "postsuper",
    "unshare",
    "pebble",
    "curl",
    "certbot",
];

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output, what: &str) -> String {
    let text = text(out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// The SPKI hash of the first certificate in a PEM file.
fn cert_key(path: &Path) -> KeyHash {
    let cert = openssl::x509::X509::from_pem(&std::fs::read(path).unwrap()).unwrap();
    KeyHash::of_spki_der(&cert.public_key().unwrap().public_key_to_der().unwrap())
}

/// The DER of the first certificate in a PEM file (a key+chain file: the leaf).
fn leaf_der(path: &Path) -> Vec<u8> {
    let certs = openssl::x509::X509::stack_from_pem(&std::fs::read(path).unwrap()).unwrap();
    certs[0].to_der().unwrap()
}

fn rdata(k: &KeyHash) -> String {
    format!("3 1 1 {}", k.to_hex())
}

// ----- on the lab -----

/// DNS (BIND + Knot + Unbound), the MX and the DANE-enforcing sender.
struct Mail {
    // Field order is drop order: mail servers first, DNS last, the directory after all.
    tx: Sender,
    rx: Receiver,
    dns: DnsLab,
    block: LoopbackBlock,
    conf: PathBuf,
    state: PathBuf,
    lab: LabDir,
}

impl Mail {
    /// The lab, with a configuration whose service `mx` has certbot's live directory under
    /// `certbot/config/live/` as its `lineage`.
    fn start() -> Mail {
        let lab = LabDir::new().unwrap();
        let block = loopback_block();
        let dns = DnsLab::builder()
            .block(block)
            .dir(&lab.sub("dns").unwrap())
            .start()
            .unwrap();
        // Until the first rollover the MX serves a lab certificate no record names.
        let first = pki::self_signed(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
        let rx = Receiver::start(
            &lab.sub("receiver").unwrap(),
            block,
            &first.key_and_chain_pem().unwrap(),
        )
        .unwrap();
        let tx = Sender::start(&lab.sub("sender").unwrap(), block, dns.resolver_addr()).unwrap();
        let state = lab.path().join("state");
        let conf = lab.path().join("dane-roll.toml");
        let live = lab.path().join("certbot/config/live").join(MX_HOST);
        let mut settings = RolloverConf::new(lab.path(), &dns, &rx);
        settings.lineage = Some(live.display().to_string());
        settings.domains = vec![MX_HOST.to_owned()];
        settings.write(&conf).unwrap();
        Mail {
            tx,
            rx,
            dns,
            block,
            conf,
            state,
            lab,
        }
    }

    fn dane_roll(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .unwrap()
    }

    fn tlsa(&self, server: Server) -> BTreeSet<String> {
        self.dns
            .query(self.dns.addr(server), OWNER, "TLSA")
            .unwrap()
            .records("TLSA")
            .iter()
            .map(|r| dane_roll_lab::dns::query::normalize_rdata(&r.rdata))
            .collect()
    }

    /// The TLSA records on BIND, once Knot serves the same.
    fn tlsa_everywhere(&self) -> BTreeSet<String> {
        let t0 = Instant::now();
        loop {
            let bind = self.tlsa(Server::Bind);
            if bind == self.tlsa(Server::Knot) {
                return bind;
            }
            assert!(t0.elapsed() < JUDGE, "Knot never caught up with BIND");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One test mail; it must go out over a DANE-verified session.
    fn verified(&self, when: &str) {
        let v = self.tx.send_and_judge(JUDGE).unwrap();
        assert!(
            v.is_verified(),
            "{when}: {v:?}\nsender:\n{}\nreceiver:\n{}",
            self.tx.instance().log_tail(30),
            self.rx.instance().log_tail(30)
        );
    }

    fn served(&self) -> KeyHash {
        self.rx.served_spki().unwrap().parse().unwrap()
    }

    /// How many rollovers waited for their records.
    fn waits(&self) -> usize {
        Store::open(&self.state)
            .unwrap()
            .events(Some("mx"), 10_000)
            .unwrap()
            .iter()
            .filter(|e| e.event.detail.contains("install due at"))
            .count()
    }
}

/// `dane-roll run --wait` on another thread while mails go out, each of which must be Verified.
fn run_wait_during(mail: &Mail, what: &str) -> String {
    let conf = mail.conf.clone();
    let handle = std::thread::spawn(move || {
        Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .args(["run", "--wait"])
            .output()
            .unwrap()
    });
    let mut sent = 0;
    while !handle.is_finished() {
        mail.verified(&format!("during {what}"));
        sent += 1;
    }
    let out = ok(&handle.join().unwrap(), "dane-roll run --wait");
    eprintln!("{sent} mails verified during {what}");
    out
}

#[test]
fn certbot_with_a_failing_hook_is_picked_up_by_run() {
    if !require(NEEDS) {
        return;
    }
    let mail = Mail::start();
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
    let out = run_wait_during(&mail, "the rollover run started");
    assert!(out.contains("hook was missed"), "{out}");
    assert!(out.contains(&k2.short()), "{out}");
    assert_eq!(mail.served(), k2);
    let records = mail.tlsa_everywhere();
    assert!(records.contains(&rdata(&k2)), "{records:?}");
    assert!(!records.contains(&rdata(&k1)), "K1 retired: {records:?}");
    assert_eq!(mail.waits(), 2, "the rollover to K2 waited the gate");
    mail.verified("after the rollover");

    // 3. A renewal with the same key: `run` installs the new certificate, DNS unchanged.
    let serial = mail
        .dns
        .serial(mail.dns.addr(Server::Bind), "example.test")
        .unwrap();
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
    assert_eq!(
        mail.dns
            .serial(mail.dns.addr(Server::Bind), "example.test")
            .unwrap(),
        serial,
        "DNS unchanged"
    );
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

// ----- without servers -----

/// A configuration with service `mx` (no server behind it: its provider is a command that
/// fails), with `lineage` when given.
fn config(dir: &Path, lineage: Option<&Path>) -> PathBuf {
    let lineage = lineage
        .map(|l| format!("lineage = \"{}\"\n", l.display()))
        .unwrap_or_default();
    config_with(dir, &lineage)
}

/// The same with `lines` in the service table.
fn config_with(dir: &Path, lines: &str) -> PathBuf {
    let path = dir.join("dane-roll.toml");
    let lineage = lines;
    std::fs::write(
        &path,
        format!(
            r#"version = 1
state-dir = "{d}/state"

[resolver]
address = "127.0.0.1:9"

[[service]]
name = "mx"
{lineage}domains = ["{MX_HOST}"]
endpoints = ["{MX_HOST}:25/smtp"]
chain-file = "{d}/mx.pem"
ttl = 2
provider = "dns"

[provider.dns]
kind = "exec"
command = ["/bin/false"]
"#,
            d = dir.display()
        ),
    )
    .unwrap();
    path
}

fn driver(conf: &Path) -> Driver {
    let config = Config::load(conf).unwrap();
    let store = Store::open(&config.state_dir).unwrap();
    Driver::new(config, store, SystemClock).unwrap()
}

fn looks(conf: &Path) -> Vec<Look> {
    driver(conf).reconcile_look(None).unwrap()
}

/// The one look, for service `mx`.
fn look(conf: &Path) -> Look {
    let mut all = looks(conf);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn leaf(ca: &TestPki, validity: Validity) -> pki::Leaf {
    ca.leaf_for_key(
        &[MX_HOST],
        pki::new_key(KeyKind::EcdsaP256).unwrap(),
        validity,
    )
    .unwrap()
}

fn hash(l: &pki::Leaf) -> KeyHash {
    l.spki_sha256_hex().unwrap().parse().unwrap()
}

/// A certbot-like live directory: privkey.pem and fullchain.pem.
fn lineage(dir: &Path, l: &pki::Leaf) {
    std::fs::create_dir_all(dir).unwrap();
    let key = l.key.private_key_to_pem_pkcs8().unwrap();
    pki::write_atomic(&dir.join("privkey.pem"), &key, 0o600).unwrap();
    pki::write_atomic(
        &dir.join("fullchain.pem"),
        &l.fullchain_pem().unwrap(),
        0o644,
    )
    .unwrap();
}

/// A renewal with the same key as `l`, issued later than `l` was.
fn renewed(ca: &TestPki, l: &pki::Leaf) -> pki::Leaf {
    let key = openssl::pkey::PKey::private_key_from_pem(&l.key.private_key_to_pem_pkcs8().unwrap())
        .unwrap();
    ca.leaf_for_key(&[MX_HOST], key, Validity::Days(90))
        .unwrap()
}

/// The state a `run` must leave alone: the installed file and the stored rollovers and events.
fn snapshot(dir: &Path) -> (Vec<u8>, usize, usize) {
    let store = Store::open(&dir.join("state")).unwrap();
    (
        std::fs::read(dir.join("mx.pem")).unwrap(),
        store.rollovers().unwrap().len(),
        store.events(Some("mx"), 1000).unwrap().len(),
    )
}

#[test]
fn a_source_with_the_installed_certificate_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let installed = leaf(&ca, Validity::Days(90));
    installed
        .write_key_and_chain(&dir.path().join("mx.pem"))
        .unwrap();
    let live = dir.path().join("live/mx");
    lineage(&live, &installed);
    let conf = config(dir.path(), Some(&live));

    let l = look(&conf);
    assert_eq!(l.verdict, Verdict::Installed, "{l:?}");
    assert_eq!(l.client, Client::Certbot);
    assert!(!l.recorded);

    let before = snapshot(dir.path());
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .arg("run")
        .output()
        .unwrap();
    let text = ok(&out, "dane-roll run");
    assert!(text.contains("no rollover pending"), "{text}");
    assert!(!text.contains("hook was missed"), "{text}");
    assert_eq!(snapshot(dir.path()), before, "nothing changed");

    // An older certificate in the lineage (the installed one was deployed by hand since): left.
    let older = ca
        .leaf_for_key(
            &[MX_HOST],
            pki::new_key(KeyKind::EcdsaP256).unwrap(),
            Validity::Expired,
        )
        .unwrap();
    lineage(&live, &older);
    assert_eq!(look(&conf).verdict, Verdict::Older);
}

#[test]
fn an_unreadable_source_warns_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let installed = leaf(&ca, Validity::Days(90));
    installed
        .write_key_and_chain(&dir.path().join("mx.pem"))
        .unwrap();
    let live = dir.path().join("live/gone");
    let conf = config(dir.path(), Some(&live));

    let l = look(&conf);
    let Verdict::Unreadable(why) = &l.verdict else {
        panic!("{l:?}");
    };
    assert!(why.contains(&live.display().to_string()), "{why}");

    let before = snapshot(dir.path());
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .arg("run")
        .output()
        .unwrap();
    let text = text(&out);
    assert_eq!(out.status.code(), Some(1), "a warning: {text}");
    for want in [
        "warning: service mx",
        "cannot be read",
        "nothing was changed",
        &live.display().to_string(),
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    assert_eq!(snapshot(dir.path()), before, "nothing changed");

    // A key that is not the certificate's: unreadable too, and said so.
    let other = leaf(&ca, Validity::Days(90));
    lineage(&live, &other);
    let key = installed.key.private_key_to_pem_pkcs8().unwrap();
    pki::write_atomic(&live.join("privkey.pem"), &key, 0o600).unwrap();
    let l = look(&conf);
    assert!(
        matches!(&l.verdict, Verdict::Unreadable(why) if why.contains("privkey.pem")),
        "{l:?}"
    );
}

#[test]
fn recorded_acme_sh_and_dehydrated_sources_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let installed = leaf(&ca, Validity::Expired);
    installed
        .write_key_and_chain(&dir.path().join("mx.pem"))
        .unwrap();
    let conf = config(dir.path(), None);
    assert!(looks(&conf).is_empty(), "no lineage, nothing recorded");

    // acme.sh renewed with a new key; its last reloadcmd recorded where its files are.
    let acme = dir.path().join(format!(".acme.sh/{MX_HOST}_ecc"));
    std::fs::create_dir_all(&acme).unwrap();
    let new = leaf(&ca, Validity::Days(90));
    let key = new.key.private_key_to_pem_pkcs8().unwrap();
    pki::write_atomic(&acme.join(format!("{MX_HOST}.key")), &key, 0o600).unwrap();
    pki::write_atomic(
        &acme.join("fullchain.cer"),
        &new.fullchain_pem().unwrap(),
        0o644,
    )
    .unwrap();
    let env = Env::from_pairs([
        ("Le_Domain", MX_HOST.to_owned()),
        (
            "CERT_KEY_PATH",
            acme.join(format!("{MX_HOST}.key")).display().to_string(),
        ),
        (
            "CERT_FULLCHAIN_PATH",
            acme.join("fullchain.cer").display().to_string(),
        ),
    ]);
    let source = AcmeSource::from_acme_sh(&env).unwrap();
    driver(&conf).record_source("mx", &source).unwrap();
    let l = look(&conf);
    assert_eq!(l.verdict, Verdict::NewKey(hash(&new)), "{l:?}");
    assert_eq!(l.client, Client::AcmeSh);
    assert!(l.recorded);
    assert!(l.location.contains("fullchain.cer"), "{l:?}");

    // dehydrated, with the installed key and a later certificate: a renewal.
    let certs = dir.path().join(format!("dehydrated/certs/{MX_HOST}"));
    let later = renewed(&ca, &installed);
    lineage(&certs, &later);
    let args: Vec<std::ffi::OsString> = [
        "deploy_cert",
        MX_HOST,
        &certs.join("privkey.pem").display().to_string(),
        &certs.join("cert.pem").display().to_string(),
        &certs.join("fullchain.pem").display().to_string(),
        &certs.join("chain.pem").display().to_string(),
        "1700000000",
    ]
    .iter()
    .map(Into::into)
    .collect();
    let source = AcmeSource::from_dehydrated(&args).unwrap();
    driver(&conf).record_source("mx", &source).unwrap();
    let l = look(&conf);
    assert_eq!(l.verdict, Verdict::Renewal(hash(&installed)), "{l:?}");
    assert_eq!(l.client, Client::Dehydrated);

    // A recorded source wins over the configured lineage.
    let live = dir.path().join("live/mx");
    lineage(&live, &installed);
    let conf = config(dir.path(), Some(&live));
    assert_eq!(look(&conf).client, Client::Dehydrated);
}

#[test]
fn a_hook_records_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let installed = leaf(&ca, Validity::Expired);
    installed
        .write_key_and_chain(&dir.path().join("mx.pem"))
        .unwrap();
    let conf = config(dir.path(), None);
    let acme = dir.path().join(format!(".acme.sh/{MX_HOST}_ecc"));
    std::fs::create_dir_all(&acme).unwrap();
    let new = leaf(&ca, Validity::Days(90));
    let key_path = acme.join(format!("{MX_HOST}.key"));
    let key = new.key.private_key_to_pem_pkcs8().unwrap();
    pki::write_atomic(&key_path, &key, 0o600).unwrap();
    pki::write_atomic(
        &acme.join("fullchain.cer"),
        &new.fullchain_pem().unwrap(),
        0o644,
    )
    .unwrap();

    // The reloadcmd: the provider fails, so the rollover stays staged, but the source is kept.
    let out = Command::new(BIN)
        .args(["hook", "acme.sh"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DANE_ROLL_CONFIG", &conf)
        .env("Le_Domain", MX_HOST)
        .env("CERT_KEY_PATH", &key_path)
        .env("CERT_FULLCHAIN_PATH", acme.join("fullchain.cer"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stored = Store::open(&dir.path().join("state"))
        .unwrap()
        .acme_source("mx")
        .unwrap()
        .expect("the hook recorded its source");
    assert_eq!(stored.client, "acme.sh");
    assert!(
        stored.source.contains(&key_path.display().to_string()),
        "{}",
        stored.source
    );
    let l = look(&conf);
    assert_eq!(l.verdict, Verdict::UnderWay, "{l:?}");
    assert!(l.recorded);

    // A hook whose files are not a certificate and key records nothing.
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path(), None);
    std::fs::write(dir.path().join("k"), "not a key\n").unwrap();
    let out = Command::new(BIN)
        .args(["hook", "acme.sh"])
        .env("DANE_ROLL_CONFIG", &conf)
        .env("Le_Domain", MX_HOST)
        .env("CERT_KEY_PATH", dir.path().join("k"))
        .env("CERT_FULLCHAIN_PATH", dir.path().join("k"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!dir.path().join("state").exists(), "nothing recorded");
}

#[test]
fn acme_source_in_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let installed = leaf(&ca, Validity::Expired);
    installed
        .write_key_and_chain(&dir.path().join("mx.pem"))
        .unwrap();

    // dehydrated's certificate directory, relative to the configuration file.
    let certs = dir.path().join(format!("dehydrated/certs/{MX_HOST}"));
    let new = leaf(&ca, Validity::Days(90));
    lineage(&certs, &new);
    let conf = config_with(
        dir.path(),
        &format!(
            "acme-source = {{ client = \"dehydrated\", dir = \"dehydrated/certs/{MX_HOST}\" }}\n"
        ),
    );
    let l = look(&conf);
    assert_eq!(l.verdict, Verdict::NewKey(hash(&new)), "{l:?}");
    assert_eq!(l.client, Client::Dehydrated);
    assert!(!l.recorded);
    assert_eq!(l.location, certs.display().to_string());

    // acme.sh's key and full chain; it wins over a recorded source.
    let acme = dir.path().join(format!(".acme.sh/{MX_HOST}_ecc"));
    std::fs::create_dir_all(&acme).unwrap();
    let key = installed.key.private_key_to_pem_pkcs8().unwrap();
    pki::write_atomic(&acme.join(format!("{MX_HOST}.key")), &key, 0o600).unwrap();
    let later = renewed(&ca, &installed);
    pki::write_atomic(
        &acme.join("fullchain.cer"),
        &later.fullchain_pem().unwrap(),
        0o644,
    )
    .unwrap();
    let dehydrated = AcmeSource::from_config(&Config::load(&conf).unwrap().services[0]).unwrap();
    driver(&conf).record_source("mx", &dehydrated).unwrap();
    let conf = config_with(
        dir.path(),
        &format!(
            "acme-source = {{ client = \"acme.sh\", key-file = \"{}\", fullchain-file = \"{}\" }}\n",
            acme.join(format!("{MX_HOST}.key")).display(),
            acme.join("fullchain.cer").display()
        ),
    );
    let l = look(&conf);
    assert_eq!(l.verdict, Verdict::Renewal(hash(&installed)), "{l:?}");
    assert_eq!(l.client, Client::AcmeSh);
    assert!(!l.recorded);

    // An unknown client or key is refused by `config check`, naming the key.
    for bad in [
        "acme-source = { client = \"lego\", dir = \"/x\" }\n",
        "acme-source = { client = \"dehydrated\", path = \"/x\" }\n",
    ] {
        let conf = config_with(dir.path(), bad);
        let out = Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .args(["config", "check"])
            .output()
            .unwrap();
        let text = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {text}");
        assert!(text.contains("acme-source"), "{bad}: {text}");
    }
}
