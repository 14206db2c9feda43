//! The DNSSEC and provider preflight (issue 19) on the lab: `dane-roll config check --online`
//! against BIND serving a signed zone (`example.test`) and an unsigned one (`insecure.test`),
//! through the validating Unbound; and the deploy path refusing a service's first publish into
//! the unsigned zone unless `--force` is given.
//!
//! Each test starts its own lab (skipped outside CI when a server is missing) and runs the real
//! binary. Nothing is written to DNS by the preflight: the tests check the zone is unchanged.

use std::path::{Path, PathBuf};
use std::process::Output;

use dane_roll_lab::LabDir;
use dane_roll_lab::conf::{quote, rfc2136};
use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::pki::{KeyKind, TestPki};
use dane_roll_lab::require;
use dane_roll_lab::world::World;

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

const TOOLS: &[&str] = &[
    "named",
    "unbound",
    "tsig-keygen",
    "dnssec-dsfromkey",
    "dig",
    "nsupdate",
    "ip",
];

struct Lab {
    dns: DnsLab,
    dir: LabDir,
}

fn start() -> Option<Lab> {
    if !require(TOOLS) {
        return None;
    }
    let dir = LabDir::new().unwrap();
    let dns = DnsLab::builder()
        .knot(false)
        .dir(dir.path())
        .start()
        .expect("DNS lab starts");
    Some(Lab { dns, dir })
}

impl Lab {
    /// A configuration with service `mx` at `host:25` (and `also:25`), optionally with a
    /// `zone`, through the lab's BIND with the TSIG key file `key`.
    fn config(&self, host: &str, zone: Option<&str>, key: &Path) -> PathBuf {
        self.config_with(host, None, zone, key)
    }

    fn config_with(
        &self,
        host: &str,
        also: Option<&str>,
        zone: Option<&str>,
        key: &Path,
    ) -> PathBuf {
        let d = self.dir.path();
        std::fs::create_dir_all(d.join("state")).unwrap();
        let zone = zone.map_or_else(String::new, |z| format!("zone = {}\n", quote(z)));
        let text = format!(
            "version = 1\nstate-dir = {}\n\n[resolver]\naddress = {}\n\n[[service]]\nname = \"mx\"\n\
             endpoints = [{}]\nchain-file = {}\nreload = [\"/bin/true\"]\nttl = 60\n{zone}\
             provider = \"lab\"\n\n[provider.lab]\n{}",
            quote(&d.join("state").display().to_string()),
            quote(&self.dns.resolver_addr().to_string()),
            std::iter::once(host)
                .chain(also)
                .map(|h| quote(&format!("{h}:25/smtp")))
                .collect::<Vec<_>>()
                .join(", "),
            quote(&d.join("chain.pem").display().to_string()),
            rfc2136(self.dns.addr(Server::Bind), key),
        );
        let path = d.join("dane-roll.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn run(&self, config: &Path, args: &[&str]) -> Output {
        std::process::Command::new(BIN)
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("DANE_ROLL_CONFIG")
            .output()
            .unwrap()
    }

    fn check(&self, config: &Path) -> (Option<i32>, String) {
        let out = self.run(config, &["config", "check", "--online", "--quiet"]);
        (out.status.code(), text(&out))
    }

    /// The serial of `zone` at BIND: unchanged means nothing was written.
    fn serial(&self, zone: &str) -> u32 {
        self.dns.serial(self.dns.addr(Server::Bind), zone).unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn problems(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("dane-roll: error:"))
        .collect()
}

#[test]
fn a_signed_zone_passes_and_an_unsigned_one_fails_with_the_reason() {
    let Some(lab) = start() else { return };
    let key = lab.dns.tsig().file.clone();

    let signed = lab.config(&lab.dns.mx_host(), None, &key);
    let before = lab.serial(lab.dns.zone());
    let (code, out) = lab.check(&signed);
    assert_eq!(code, Some(0), "{out}");
    assert!(problems(&out).is_empty(), "{out}");
    assert_eq!(lab.serial(lab.dns.zone()), before, "nothing written");

    let host = format!("mail.{}", lab.dns.insecure_zone());
    let unsigned = lab.config(&host, None, &key);
    let before = lab.serial(lab.dns.insecure_zone());
    let (code, out) = lab.check(&unsigned);
    assert_eq!(code, Some(2), "{out}");
    let lines = problems(&out);
    assert_eq!(lines.len(), 1, "one line per problem: {out}");
    assert!(
        lines[0].contains("does not sign zone insecure.test")
            && lines[0].contains("DANE needs DNSSEC"),
        "{out}"
    );
    assert_eq!(
        lab.serial(lab.dns.insecure_zone()),
        before,
        "nothing written"
    );
}

#[test]
fn a_wrong_tsig_key_and_an_owner_outside_the_zone_fail_the_check() {
    let Some(lab) = start() else { return };
    let wrong = lab.dir.path().join("wrong.key");
    let good = std::fs::read_to_string(&lab.dns.tsig().file).unwrap();
    // The same key name with another secret: BIND answers BADSIG to the signed listing.
    let secret = lab.dns.tsig().secret.clone();
    let other = if secret.starts_with('A') {
        secret.replacen('A', "B", 1)
    } else {
        format!("A{}", &secret[1..])
    };
    std::fs::write(&wrong, good.replace(&secret, &other)).unwrap();
    let config = lab.config(&lab.dns.mx_host(), None, &wrong);
    let (code, out) = lab.check(&config);
    assert_eq!(code, Some(2), "{out}");
    let lines = problems(&out);
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains("provider lab: the read-only listing")
            && lines[0].contains("fix the provider's credentials"),
        "{out}"
    );
    assert!(!out.contains(&other) && !out.contains(&secret), "no secret");

    let key = lab.dns.tsig().file.clone();
    // The zone is found from the first owner name (example.test); the second endpoint's owner
    // name is in another zone, which only the online check can tell.
    let outside = lab.config_with(
        &lab.dns.mx_host(),
        Some(&format!("mail.{}", lab.dns.insecure_zone())),
        None,
        &key,
    );
    let (code, out) = lab.check(&outside);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        problems(&out).iter().any(|l| l
            .contains("owner name _25._tcp.mail.insecure.test. is not inside zone example.test.")),
        "{out}"
    );
}

#[test]
fn the_first_deploy_into_an_unsigned_zone_is_refused_unless_forced() {
    let Some(lab) = start() else { return };
    let key = lab.dns.tsig().file.clone();
    let host = format!("mail.{}", lab.dns.insecure_zone());
    let config = lab.config(&host, None, &key);
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let leaf = ca.leaf(&[&host], KeyKind::EcdsaP256).unwrap();
    let cert = lab.dir.path().join("new.crt");
    let keyf = lab.dir.path().join("new.key");
    std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
    std::fs::write(&keyf, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let deploy = |extra: &[&str]| lab.run(&config, &World::deploy_args(&cert, &keyf, extra));
    let owner = format!("_25._tcp.{host}");
    let before = lab.serial(lab.dns.insecure_zone());

    let out = deploy(&[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("nothing staged, its zone cannot carry DANE")
            && said.contains("does not sign zone insecure.test"),
        "{said}"
    );
    assert_eq!(
        lab.serial(lab.dns.insecure_zone()),
        before,
        "nothing published"
    );
    let status = lab.run(&config, &["status", "--json"]);
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("staged"),
        "nothing staged: {}",
        text(&status)
    );

    let out = deploy(&["--force"]);
    let said = text(&out);
    assert!(
        said.contains("--force: service mx is published although its zone cannot carry DANE"),
        "{said}"
    );
    let served = lab
        .dns
        .query(lab.dns.addr(Server::Bind), &owner, "TLSA")
        .unwrap();
    assert!(
        served.contains("TLSA", &leaf.tlsa_311().unwrap()),
        "forced: the record went out: {said}"
    );
}
