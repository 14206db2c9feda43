//! Test support for the ACME client tests (tests/acme.rs, tests/reconcile.rs): the lab's DNS,
//! the MX and the DANE-enforcing sender with a dane-roll configuration for service `mx`, what
//! acme.sh leaves in its domain directory, and the key and output helpers both use.

#![allow(dead_code)] // each test file uses its part

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dane_roll::rollover::KeyHash;
use dane_roll::store::{KeyRole, Store};
use dane_roll_lab::conf::RolloverConf;
use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::pki::{self, KeyKind, MX_HOST};
use dane_roll_lab::postfix::{Receiver, Sender};
use dane_roll_lab::{LabDir, LoopbackBlock, loopback_block};

pub const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
pub const OWNER: &str = "_25._tcp.mail.example.test.";
pub const JUDGE: Duration = Duration::from_secs(30);
/// The programs the mail lab needs (an ACME client test needs its client and pebble on top).
pub const NEEDS: &[&str] = &[
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
];

/// The servers of one test: DNS (BIND + Knot + Unbound), the MX and the DANE-enforcing sender.
pub struct Mail {
    // Field order is drop order: mail servers first, DNS last, the directory after all.
    pub tx: Sender,
    pub rx: Receiver,
    pub dns: DnsLab,
    pub block: LoopbackBlock,
    pub conf: PathBuf,
    pub state: PathBuf,
    pub lab: LabDir,
}

impl Mail {
    /// The lab, with a configuration for service `mx` (the MX's chain file, ACME name
    /// `mail.example.test`) whose `lineage` is what `lineage` makes of the lab directory.
    pub fn start(lineage: impl FnOnce(&Path) -> Option<String>) -> Mail {
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
        let mut settings = RolloverConf::new(lab.path(), &dns, &rx);
        settings.lineage = lineage(lab.path());
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

    /// `dane-roll -c CONF ARGS…`.
    pub fn dane_roll(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .unwrap()
    }

    /// The TLSA records at the MX's owner name on one authoritative server.
    pub fn tlsa(&self, server: Server) -> BTreeSet<String> {
        self.dns
            .query(self.dns.addr(server), OWNER, "TLSA")
            .unwrap()
            .records("TLSA")
            .iter()
            .map(|r| dane_roll_lab::dns::query::normalize_rdata(&r.rdata))
            .collect()
    }

    /// The same on BIND and Knot (Knot may lag a moment behind BIND's NOTIFY).
    pub fn tlsa_everywhere(&self) -> BTreeSet<String> {
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

    /// Send one test mail; it must go out over a DANE-verified session.
    pub fn verified(&self, when: &str) {
        let v = self.tx.send_and_judge(JUDGE).unwrap();
        assert!(
            v.is_verified(),
            "{when}: {v:?}\nsender:\n{}\nreceiver:\n{}",
            self.tx.instance().log_tail(30),
            self.rx.instance().log_tail(30)
        );
    }

    /// Nothing deferred, nothing bounced, the queue empty.
    pub fn nothing_deferred(&self) {
        assert_eq!(self.tx.deferred_count().unwrap(), 0);
        assert_eq!(self.tx.bounced_count(), 0);
    }

    /// The SPKI the MX serves now.
    pub fn served(&self) -> KeyHash {
        self.rx.served_spki().unwrap().parse().unwrap()
    }

    pub fn store(&self) -> Store {
        Store::open(&self.state).unwrap()
    }

    /// How many rollovers waited for their records (an "install due at" event each).
    pub fn waits(&self) -> usize {
        self.store()
            .events(Some("mx"), 10_000)
            .unwrap()
            .iter()
            .filter(|e| e.event.detail.contains("install due at"))
            .count()
    }

    /// The event history, for failure messages.
    pub fn history(&self) -> String {
        self.store()
            .events(Some("mx"), 10_000)
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} [{}] {}\n",
                    e.event.time,
                    e.event.phase.as_str(),
                    e.event.detail
                )
            })
            .collect()
    }

    /// The published next key of the service (one slot).
    pub fn next_key(&self) -> Option<(KeyHash, Option<PathBuf>)> {
        self.store()
            .keys("mx")
            .unwrap()
            .into_iter()
            .find(|k| k.role == KeyRole::Next)
            .map(|k| (k.hash, k.path))
    }
}

/// A command's stdout and stderr, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `out` succeeded (else fail the test naming `what`); its stdout and stderr.
pub fn ok(out: &Output, what: &str) -> String {
    let text = text(out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// The SPKI hash of the first certificate in a PEM file.
pub fn cert_key(path: &Path) -> KeyHash {
    let pem = std::fs::read(path).unwrap();
    let cert = openssl::x509::X509::from_pem(&pem).unwrap();
    KeyHash::of_spki_der(&cert.public_key().unwrap().public_key_to_der().unwrap())
}

/// The SPKI hash of a private key file.
pub fn key_of(path: &Path) -> KeyHash {
    let pem = std::fs::read(path).unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(&pem).unwrap();
    KeyHash::of_spki_der(&key.public_key_to_der().unwrap())
}

pub fn rdata(k: &KeyHash) -> String {
    format!("3 1 1 {}", k.to_hex())
}

/// What acme.sh's issue() leaves in its domain directory: key, leaf, CA, full chain, and (with
/// --always-force-new-domain-key) the pre-generated `<key>.next`.
pub fn acme_sh_issue(ca: &pki::TestPki, dir: &Path, key: pki::Key, next: &pki::Key) -> KeyHash {
    let leaf = ca
        .leaf_for_key(&[MX_HOST], key, pki::Validity::Days(90))
        .unwrap();
    let write = |name: &str, data: &[u8]| pki::write_atomic(&dir.join(name), data, 0o600).unwrap();
    write(
        &format!("{MX_HOST}.key"),
        &leaf.key.private_key_to_pem_pkcs8().unwrap(),
    );
    write(&format!("{MX_HOST}.cer"), &leaf.cert.to_pem().unwrap());
    let mut chain = Vec::new();
    for c in &leaf.chain {
        chain.extend(c.to_pem().unwrap());
    }
    write("ca.cer", &chain);
    write("fullchain.cer", &leaf.fullchain_pem().unwrap());
    write(
        &format!("{MX_HOST}.key.next"),
        &next.private_key_to_pem_pkcs8().unwrap(),
    );
    KeyHash::of_spki_der(&leaf.key.public_key_to_der().unwrap())
}
