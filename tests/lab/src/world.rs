//! A rollover world for lab tests: DNS lab, MX, DANE sender, dane-roll configuration.
//!
//! [`World::start`] brings up the DNS lab (BIND + Knot, a validating Unbound), a CA, the
//! receiving Postfix with the OLD certificate live and its `3 1 1` published by hand at
//! [`OWNER`] (as an operator would have done before dane-roll), the DANE-enforcing sending
//! Postfix (the judge of whether mail would flow), and a configuration for service `mx`
//! ([`RolloverConf::new`], with the TTL asked for). A test changes the configuration with
//! [`World::rewrite`] and runs the real binary, whose path it passes in (only the test crate
//! knows `CARGO_BIN_EXE_dane-roll`), with [`World::run`] / [`World::cmd`].

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::LabDir;
use crate::conf::RolloverConf;
use crate::dns::DnsLab;
use crate::dns::query::normalize_rdata;
use crate::netns::FieldNet;
use crate::pki::{KeyKind, Leaf, MX_HOST, TestPki};
use crate::ports::loopback_block;
use crate::postfix::{Receiver, Sender, Verdict};

/// The MX's TLSA owner name.
pub const OWNER: &str = "_25._tcp.mail.example.test.";
/// How long a test waits for a mail's verdict or for DNS to settle.
pub const JUDGE: Duration = Duration::from_secs(30);

/// How a [`World`] starts.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `dane-roll` binary.
    pub bin: PathBuf,
    /// The service's configured `ttl`.
    pub ttl: u32,
    /// The TTL the OLD record is published with by hand (usually `ttl`).
    pub served_ttl: u32,
    /// Unbound's `cache-max-ttl`, set before anything is cached (the lab caps it at 5 s).
    pub resolver_max_ttl: Option<u32>,
}

impl Setup {
    /// `ttl` configured and served, the lab's resolver cache cap.
    pub fn new(bin: impl Into<PathBuf>, ttl: u32) -> Setup {
        Setup {
            bin: bin.into(),
            ttl,
            served_ttl: ttl,
            resolver_max_ttl: None,
        }
    }
}

/// One lab with the OLD certificate live and its `3 1 1` published by hand. Fields drop in
/// order: servers first, the directory last.
pub struct World {
    /// The DANE-enforcing sender.
    pub tx: Sender,
    /// The receiving MX, whose certificate is rolled.
    pub rx: Receiver,
    /// DNS.
    pub dns: DnsLab,
    /// The CA that signs every leaf.
    pub ca: TestPki,
    /// Where the configuration is written.
    pub conf_path: PathBuf,
    /// The configuration, as last written.
    pub conf: RolloverConf,
    /// `state-dir`.
    pub state: PathBuf,
    /// A directory for a test's files (certificates, keys, scripts).
    pub files: PathBuf,
    /// The leaf live when the world started.
    pub old: Leaf,
    bin: PathBuf,
    _lab: LabDir,
}

impl World {
    /// [`Setup::new`]: `ttl` configured and served.
    pub fn start(bin: impl Into<PathBuf>, ttl: u32) -> World {
        World::start_with(Setup::new(bin, ttl))
    }

    /// The world as `setup` says.
    pub fn start_with(setup: Setup) -> World {
        World::start_on(setup, None)
    }

    /// The world in the field lab's network ([`FieldNet`]): DNS and the receiver in the
    /// servers' namespace, the sender in the host's, and the calling thread left in the host's
    /// (where [`World::run`] runs `dane-roll`). `net` must outlive the world.
    pub fn start_in(setup: Setup, net: &FieldNet) -> World {
        World::start_on(setup, Some(net))
    }

    fn start_on(setup: Setup, net: Option<&FieldNet>) -> World {
        let lab = LabDir::new().unwrap();
        let block = match net {
            Some(net) => {
                net.enter_servers().unwrap();
                net.block()
            }
            None => loopback_block(),
        };
        let dns = DnsLab::builder()
            .block(block)
            .dir(lab.path())
            .start()
            .expect("DNS lab starts");
        if let Some(max) = setup.resolver_max_ttl {
            dns.unbound_control(&["set_option", "cache-max-ttl:", &max.to_string()])
                .unwrap();
        }
        let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
        let old = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
        dns.add_tlsa(OWNER, setup.served_ttl, &old.tlsa_311().unwrap())
            .unwrap();
        dns.wait_served_everywhere(OWNER, &old.tlsa_311().unwrap(), JUDGE)
            .unwrap();
        dns.flush_resolver().unwrap();
        let rx = Receiver::start(
            &lab.sub("receiver").unwrap(),
            block,
            &old.key_and_chain_pem().unwrap(),
        )
        .unwrap();
        if let Some(net) = net {
            net.enter_host().unwrap();
        }
        let tx = Sender::start(&lab.sub("sender").unwrap(), block, dns.resolver_addr()).unwrap();
        let files = lab.sub("files").unwrap();
        let mut conf = RolloverConf::new(lab.path(), &dns, &rx);
        conf.ttl = setup.ttl;
        let conf_path = lab.path().join("dane-roll.toml");
        conf.write(&conf_path).unwrap();
        World {
            tx,
            rx,
            dns,
            ca,
            conf_path,
            state: conf.state_dir.clone(),
            conf,
            files,
            old,
            bin: setup.bin,
            _lab: lab,
        }
    }

    /// Change the configuration and write it.
    pub fn rewrite(&mut self, change: impl FnOnce(&mut RolloverConf)) {
        change(&mut self.conf);
        self.conf.write(&self.conf_path).unwrap();
    }

    /// The lab's TSIG key copied to `files/tsig.key`, where a provider's secret file would be:
    /// its path.
    pub fn tsig_file(&self) -> PathBuf {
        let tsig = self.files.join("tsig.key");
        std::fs::copy(&self.dns.tsig().file, &tsig).unwrap();
        tsig
    }

    /// The provider: RFC 2136 UPDATEs to `primary` (BIND's address, or one that forwards to
    /// it) signed with the lab's TSIG key ([`World::tsig_file`]).
    pub fn provider_rfc2136(&mut self, primary: Ipv4Addr) {
        let provider = crate::conf::rfc2136(primary, &self.tsig_file());
        self.rewrite(|c| c.provider = provider);
    }

    /// `dane-roll -c <conf> <args>`, stdin closed.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c").arg(&self.conf_path).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run [`World::cmd`] to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// A new leaf (new key) with its certificate and key written to `files/<name>.crt|.key`.
    pub fn new_leaf(&self, name: &str) -> (Leaf, PathBuf, PathBuf) {
        let leaf = self.ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
        let (cert, key) = self.write_leaf(name, &leaf);
        (leaf, cert, key)
    }

    /// Write `leaf`'s full chain and key to `files/<name>.crt|.key`.
    pub fn write_leaf(&self, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        let cert = self.files.join(format!("{name}.crt"));
        let key = self.files.join(format!("{name}.key"));
        std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
        std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (cert, key)
    }

    /// `deploy --service mx --cert <cert> --key <key> <extra>`.
    pub fn deploy_args<'a>(cert: &'a Path, key: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "deploy",
            "--service",
            "mx",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        v
    }

    /// Run [`World::deploy_args`].
    pub fn deploy(&self, cert: &Path, key: &Path, extra: &[&str]) -> Output {
        self.run(&World::deploy_args(cert, key, extra))
    }

    /// The TLSA RRset at [`OWNER`], the same on every authoritative server (asserted).
    pub fn tlsa_set(&self) -> BTreeSet<String> {
        self.tlsa_set_at(OWNER)
    }

    /// The TLSA RRset at `owner`, the same on every authoritative server (asserted).
    pub fn tlsa_set_at(&self, owner: &str) -> BTreeSet<String> {
        let mut seen: Option<BTreeSet<String>> = None;
        for server in self.dns.authoritative() {
            let set = self.served_by(server, owner);
            if let Some(prev) = &seen {
                assert_eq!(prev, &set, "authoritative servers disagree at {owner}");
            }
            seen = Some(set);
        }
        seen.unwrap_or_default()
    }

    /// The TLSA RRset `server` serves at `owner` (empty when it answers none or fails).
    pub fn served_by(&self, server: Ipv4Addr, owner: &str) -> BTreeSet<String> {
        self.dns
            .query(server, owner, "TLSA")
            .map(|a| {
                a.records("TLSA")
                    .iter()
                    .map(|r| normalize_rdata(&r.rdata))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Wait until every authoritative server serves exactly `want` at [`OWNER`].
    pub fn wait_tlsa_set(&self, want: &BTreeSet<String>) {
        self.wait_tlsa_set_at(OWNER, want);
    }

    /// Wait until every authoritative server serves exactly `want` at `owner`.
    pub fn wait_tlsa_set_at(&self, owner: &str, want: &BTreeSet<String>) {
        let t0 = Instant::now();
        while !self
            .dns
            .authoritative()
            .iter()
            .all(|s| self.served_by(*s, owner) == *want)
        {
            assert!(
                t0.elapsed() < JUDGE,
                "TLSA set at {owner} never became {want:?}: {:?}",
                self.tlsa_set_at(owner)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until every authoritative server's set at `owner` passes `ok`.
    pub fn wait_tlsa(&self, owner: &str, what: &str, ok: impl Fn(&BTreeSet<String>) -> bool) {
        let t0 = Instant::now();
        while !self
            .dns
            .authoritative()
            .iter()
            .all(|s| ok(&self.served_by(*s, owner)))
        {
            assert!(
                t0.elapsed() < JUDGE,
                "{what}: TLSA set at {owner}: {:?}",
                self.dns
                    .authoritative()
                    .iter()
                    .map(|s| self.served_by(*s, owner))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send a test mail through the DANE-enforcing sender and return its verdict.
    pub fn judge(&self) -> Verdict {
        self.tx.send_and_judge(JUDGE).unwrap()
    }

    /// Send a test mail to `to` and wait for the sender's verdict.
    pub fn judge_to(&self, to: &str) -> Verdict {
        let mail = self.tx.send_test_mail(to).unwrap();
        self.tx.verdict(&mail, JUDGE)
    }

    /// A test mail is Verified (`when` names the moment in the failure).
    pub fn assert_mail_verified(&self, when: &str) {
        let v = self.judge();
        assert!(
            v.is_verified(),
            "{when}: mail not verified: {v:?}\nsender log:\n{}",
            self.tx.instance().log_tail(20)
        );
    }

    /// A test mail to `to` is Verified.
    pub fn assert_verified(&self, to: &str, when: &str) {
        let v = self.judge_to(to);
        assert!(
            v.is_verified(),
            "{when}: mail to {to} not verified: {v:?}\nsender log:\n{}",
            self.tx.instance().log_tail(20)
        );
    }

    /// The sender has deferred nothing.
    pub fn assert_nothing_deferred(&self) {
        assert_eq!(self.tx.deferred_count().unwrap(), 0, "mail deferred");
    }

    /// `status --json --history` (asserted to exit 0).
    pub fn status_json(&self) -> Value {
        let out = self.run(&["status", "--json", "--history"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The service's phase.
    pub fn phase(&self) -> String {
        self.status_json()["services"][0]["phase"]
            .as_str()
            .unwrap_or("?")
            .to_owned()
    }

    /// The history, one `[phase] detail` line an event.
    pub fn history(&self) -> Vec<String> {
        self.status_json()["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("[{}] {}", e["phase"], e["detail"].as_str().unwrap_or("")))
            .collect()
    }

    /// `run` (no wait) until the phase is `phase`; every run's output.
    pub fn run_until(&self, phase: &str, limit: Duration) -> Vec<Output> {
        let t0 = Instant::now();
        let mut outs = Vec::new();
        loop {
            outs.push(self.run(&["run"]));
            if self.phase() == phase {
                return outs;
            }
            assert!(
                t0.elapsed() < limit,
                "never reached {phase}: {}\n{}\n{:#?}",
                self.phase(),
                outs.last().map(text).unwrap_or_default(),
                self.history()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The SPKI SHA-256 of the certificate the receiver serves.
    pub fn served_spki(&self) -> String {
        self.rx.served_spki().unwrap()
    }
}

/// A leaf's `3 1 1` rdata, normalized.
pub fn rdata(leaf: &Leaf) -> String {
    normalize_rdata(&leaf.tlsa_311().unwrap())
}

/// A finished command's exit code, stdout and stderr, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Start `cmd` with stdout and stderr piped.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Read a child's stdout lines until one contains `needle`; all lines read so far.
pub fn read_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    needle: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let hit = line.contains(needle);
        seen.push(line);
        if hit {
            return seen;
        }
    }
    panic!("child ended before printing {needle:?}: {seen:#?}");
}

/// An RFC 3339 time (`YYYY-MM-DDTHH:MM:SS`, any fraction and zone ignored) in seconds since the
/// epoch.
pub fn rfc3339_secs(text: &str) -> i64 {
    let p = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (p(0..4), p(5..7), p(8..10));
    let (hh, mm, ss) = (p(11..13), p(14..16), p(17..19));
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// An RFC 3339 time with or without a fraction (`…:05Z`, `…:05.250Z`) in milliseconds since
/// the epoch.
pub fn rfc3339_millis(text: &str) -> i64 {
    let fraction: String = text[19..]
        .strip_prefix('.')
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .chain("000".chars())
        .take(3)
        .collect();
    rfc3339_secs(text) * 1000 + fraction.parse::<i64>().unwrap()
}

/// Nothing rounded: the history in `status --json --history` never runs backwards.
pub fn assert_history_in_order(status: &Value) {
    let times: Vec<(i64, String)> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let time = e["time"].as_str().unwrap();
            (rfc3339_millis(time), format!("{time} {}", e["detail"]))
        })
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[1].0 >= pair[0].0,
            "history runs backwards: {} then {}",
            pair[0].1,
            pair[1].1
        );
    }
}
