//! Test support for the ACME client tests (tests/acme.rs, tests/reconcile.rs): the lab's DNS,
//! the MX and the DANE-enforcing sender with a dane-roll configuration for service `mx`, and
//! the key and output helpers both use (what acme.sh leaves on disk: tests/acme_sh).

#![allow(dead_code)] // each test file uses its part

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dane_roll::rollover::KeyHash;
use dane_roll::store::{KeyRole, Store};
use dane_roll_lab::acme::Pebble;
use dane_roll_lab::conf::RolloverConf;
use dane_roll_lab::dns::{DnsLab, Server};
use dane_roll_lab::pki::{self, KeyKind, MX_HOST};
use dane_roll_lab::postfix::{Receiver, Sender};
use dane_roll_lab::{LabDir, LoopbackBlock, loopback_block};

pub const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
pub const OWNER: &str = "_25._tcp.mail.example.test.";
pub const JUDGE: Duration = Duration::from_secs(30);

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

    /// Run `work` on another thread; meanwhile send mails, each of which must be Verified.
    /// Returns what `work` returned and how many mails went out while it ran.
    pub fn during<T: Send + 'static>(
        &self,
        what: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> (T, usize) {
        let handle = std::thread::spawn(work);
        let mut sent = 0;
        while !handle.is_finished() {
            self.verified(&format!("during {what}"));
            sent += 1;
        }
        (handle.join().unwrap(), sent)
    }

    /// `dane-roll run --wait` on another thread while mails go out, each of which must be
    /// Verified ([`Mail::during`]); it must succeed. Its stdout and stderr.
    pub fn run_wait_during(&self, what: &str) -> String {
        let conf = self.conf.clone();
        let (out, sent) = self.during(what, move || {
            Command::new(BIN)
                .arg("-c")
                .arg(&conf)
                .args(["run", "--wait"])
                .output()
                .unwrap()
        });
        let out = ok(&out, "dane-roll run --wait");
        eprintln!("{sent} mails verified during {what}");
        out
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

    /// The serial of `example.test` on BIND (it changes with every UPDATE).
    pub fn serial(&self) -> u32 {
        self.dns
            .serial(self.dns.addr(Server::Bind), "example.test")
            .unwrap()
    }

    /// `rotate mx` with certbot's arguments: its directories under the lab's `certbot`, the
    /// configuration directory `config_dir`, `pebble`'s directory URL, non-interactive.
    pub fn rotate_args(&self, config_dir: &Path, pebble: &Pebble) -> Vec<String> {
        let certbot_dir = self.lab.path().join("certbot");
        vec![
            "rotate".to_owned(),
            "mx".to_owned(),
            format!("--certbot-arg=--config-dir={}", config_dir.display()),
            format!(
                "--certbot-arg=--work-dir={}",
                certbot_dir.join("work").display()
            ),
            format!(
                "--certbot-arg=--logs-dir={}",
                certbot_dir.join("logs").display()
            ),
            format!("--certbot-arg=--server={}", pebble.directory_url()),
            "--certbot-arg=--non-interactive".to_owned(),
        ]
    }

    /// A new domain directory of acme.sh for the MX (`.acme.sh/mail.example.test_ecc` in the
    /// lab).
    pub fn acme_sh_dir(&self) -> PathBuf {
        let dir = self
            .lab
            .sub(".acme.sh")
            .unwrap()
            .join(format!("{MX_HOST}_ecc"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// [`acme_sh_reloadcmd`] with this lab's configuration.
    pub fn acme_sh_reloadcmd(&self, domain_path: &Path, reloadcmd: &str, force_new_key: bool) {
        acme_sh_reloadcmd(&self.conf, domain_path, reloadcmd, force_new_key);
    }

    /// After a rollover: `live`'s record and that of the new next key (`next`, named in the
    /// failure as `next_what`) served, `retired`'s gone; a mail Verified (`when`); nothing
    /// deferred or bounced.
    pub fn assert_rolled(
        &self,
        live: &KeyHash,
        (next, next_what): (&KeyHash, &str),
        retired: &KeyHash,
        when: &str,
    ) {
        let records = self.tlsa_everywhere();
        assert!(records.contains(&rdata(live)), "{records:?}");
        assert!(records.contains(&rdata(next)), "{next_what}: {records:?}");
        assert!(
            !records.contains(&rdata(retired)),
            "K1 retired: {records:?}"
        );
        self.verified(when);
        self.nothing_deferred();
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

/// acme.sh's `_installcert`: export its paths (with `force_new_key`, those of
/// `--always-force-new-domain-key` too) and run `reloadcmd` from the domain directory, with
/// the configuration `conf`; it must succeed.
pub fn acme_sh_reloadcmd(conf: &Path, domain_path: &Path, reloadcmd: &str, force_new_key: bool) {
    let key = domain_path.join(format!("{MX_HOST}.key"));
    let mut next = key.as_os_str().to_owned();
    next.push(".next");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("cd \"$DOMAIN_PATH\" && eval \"$RELOADCMD\"")
        .env("DOMAIN_PATH", domain_path)
        .env("RELOADCMD", reloadcmd)
        .env("CERT_PATH", domain_path.join(format!("{MX_HOST}.cer")))
        .env("CERT_KEY_PATH", &key)
        .env("CA_CERT_PATH", domain_path.join("ca.cer"))
        .env("CERT_FULLCHAIN_PATH", domain_path.join("fullchain.cer"))
        .env("Le_Domain", MX_HOST)
        .env("DANE_ROLL_CONFIG", conf);
    if force_new_key {
        cmd.env("Le_ForceNewDomainKey", "1")
            .env("Le_Next_Domain_Key", &next);
    }
    let out = cmd.output().unwrap();
    ok(&out, "the reloadcmd");
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
