//! What `dane-roll run` makes of an ACME client's current certificate (issue 13), without
//! servers: a source with the installed certificate or an older one, an unreadable source, a new
//! key or a renewal recorded by an acme.sh or dehydrated hook, `acme-source` in the
//! configuration, a hook recording its source, and a rolled-back key not retried. The rollovers
//! themselves, with the DANE-enforcing sender as the judge, are in tests/reconcile.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dane_roll::config::Config;
use dane_roll::hooks::source::AcmeSource;
use dane_roll::hooks::{Client, Env};
use dane_roll::rollover::KeyHash;
use dane_roll::rollover::driver::Driver;
use dane_roll::rollover::driver::reconcile::{Look, Verdict};
use dane_roll::rollover::{Phase, SystemClock};
use dane_roll::store::Store;
use dane_roll_lab::pki::{self, KeyKind, MX_HOST, TestPki, Validity};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

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

/// A new leaf of `ca`, installed in `dir/mx.pem` (the service's key+chain file).
fn install_leaf(dir: &Path, ca: &TestPki, validity: Validity) -> pki::Leaf {
    let installed = leaf(ca, validity);
    installed.write_key_and_chain(&dir.join("mx.pem")).unwrap();
    installed
}

/// `dane-roll -c CONF run`.
fn run(conf: &Path) -> Output {
    Command::new(BIN)
        .arg("-c")
        .arg(conf)
        .arg("run")
        .output()
        .unwrap()
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
    let installed = install_leaf(dir.path(), &ca, Validity::Days(90));
    let live = dir.path().join("live/mx");
    lineage(&live, &installed);
    let conf = config(dir.path(), Some(&live));

    let l = look(&conf);
    assert_eq!(l.verdict, Verdict::Installed, "{l:?}");
    assert_eq!(l.client, Client::Certbot);
    assert!(!l.recorded);

    let before = snapshot(dir.path());
    let out = run(&conf);
    let text = ok(&out, "dane-roll run");
    assert!(text.contains("no rollover pending"), "{text}");
    assert!(!text.contains("hook was missed"), "{text}");
    assert_eq!(snapshot(dir.path()), before, "nothing changed");

    // An older certificate in the lineage (the installed one was deployed by hand since): left.
    let older = leaf(&ca, Validity::Expired);
    lineage(&live, &older);
    assert_eq!(look(&conf).verdict, Verdict::Older);
}

#[test]
fn an_unreadable_source_warns_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let installed = install_leaf(dir.path(), &ca, Validity::Days(90));
    let live = dir.path().join("live/gone");
    let conf = config(dir.path(), Some(&live));

    let l = look(&conf);
    let Verdict::Unreadable(why) = &l.verdict else {
        panic!("{l:?}");
    };
    assert!(why.contains(&live.display().to_string()), "{why}");

    let before = snapshot(dir.path());
    let out = run(&conf);
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
    let installed = install_leaf(dir.path(), &ca, Validity::Expired);
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
    let _installed = install_leaf(dir.path(), &ca, Validity::Expired);
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

    // acme.sh renews again meanwhile: looked at once that rollover ends.
    let third = leaf(&ca, Validity::Days(90));
    let third_key = third.key.private_key_to_pem_pkcs8().unwrap();
    pki::write_atomic(&key_path, &third_key, 0o600).unwrap();
    let fullchain = acme.join("fullchain.cer");
    pki::write_atomic(&fullchain, &third.fullchain_pem().unwrap(), 0o644).unwrap();
    assert_eq!(look(&conf).verdict, Verdict::Queued { behind: hash(&new) });
    pki::write_atomic(&key_path, &key, 0o600).unwrap();
    pki::write_atomic(&fullchain, &new.fullchain_pem().unwrap(), 0o644).unwrap();

    // Had that rollover been rolled back, `run` would not start it again on its own (a failing
    // rollover every run): a warning, nothing changes.
    let mut store = Store::open(&dir.path().join("state")).unwrap();
    let mut r = store.rollovers().unwrap().remove(0);
    assert_eq!(r.request.new, hash(&new));
    r.phase = Phase::RolledBack {
        since: r.started,
        reason: "the live handshake did not match".to_owned(),
        reinstalled: true,
        reloaded: true,
        failures: 0,
    };
    store.save(&r, &[], &[], r.started).unwrap();
    drop(store);
    let l = look(&conf);
    assert!(
        matches!(&l.verdict, Verdict::Held(why) if why.contains("rolled back")),
        "{l:?}"
    );
    let before = snapshot(dir.path());
    let out = run(&conf);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("rolled back"), "{said}");
    assert!(!said.contains("hook was missed"), "{said}");
    assert_eq!(snapshot(dir.path()), before, "nothing changed");

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
    let installed = install_leaf(dir.path(), &ca, Validity::Expired);

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
    let dehydrated = AcmeSource::from_config(&Config::load(&conf).unwrap().services[0])
        .unwrap()
        .unwrap();
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

    // A certbot live directory; and `none`: never look, not even at a recorded source.
    let live = dir.path().join("live/mx");
    lineage(&live, &new);
    let conf = config_with(
        dir.path(),
        &format!(
            "acme-source = {{ client = \"certbot\", dir = \"{}\" }}\n",
            live.display()
        ),
    );
    let l = look(&conf);
    assert_eq!(l.verdict, Verdict::NewKey(hash(&new)), "{l:?}");
    assert_eq!(l.client, Client::Certbot);
    let conf = config_with(dir.path(), "acme-source = { client = \"none\" }\n");
    assert!(looks(&conf).is_empty(), "{:?}", looks(&conf));

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
