//! Records shared through a CNAME (issue 12): `_25._tcp.<mx> CNAME _dane.example.test.`, the
//! TLSA RRset at `_dane.example.test.`. dane-roll follows the CNAME at the authorities and
//! publishes, gates and retires at the target, once for every endpoint that shares it; the
//! DANE-enforcing sender Postfix is the judge. A target the provider cannot write is refused
//! with an error that names the CNAME and its target.
//!
//! Each test starts its own lab (skipped outside CI when a server is missing) and runs the real
//! `dane-roll` binary with service `ttl = 2`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dane_roll_lab::conf::{RolloverConf, rollover_tools};
use dane_roll_lab::dns::DnsLab;
use dane_roll_lab::dns::query::normalize_rdata;
use dane_roll_lab::pki::{KeyKind, Leaf, MX_HOST, TestPki};
use dane_roll_lab::postfix::{Receiver, Sender};
use dane_roll_lab::world::{self, rdata, text};
use dane_roll_lab::{LabDir, loopback_block, require};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;
const TARGET: &str = "_dane.example.test.";
const JUDGE: Duration = Duration::from_secs(30);
/// How long a whole rollover may take here (2×TTL is 4 s): on the code that writes at the
/// CNAME's owner it never completes, and the test fails after this long.
const ROLLOVER_TIMEOUT: &str = "90s";

struct World {
    tx: Sender,
    rx: Receiver,
    dns: DnsLab,
    ca: TestPki,
    conf: PathBuf,
    files: PathBuf,
    old: Leaf,
    _lab: LabDir,
}

fn owner_of(host: &str) -> String {
    format!("_25._tcp.{host}.")
}

impl World {
    /// The lab with the OLD certificate live, each of `hosts` (MX host names, all at the
    /// receiver's address) an endpoint whose `_25._tcp` owner name is a CNAME to [`TARGET`],
    /// and the OLD `3 1 1` at the target. `zone`: the service's `zone` setting, if any.
    fn start(hosts: &[&str], target: &str, zone: Option<&str>) -> World {
        let lab = LabDir::new().unwrap();
        let block = loopback_block();
        let dns = DnsLab::builder()
            .block(block)
            .dir(lab.path())
            .start()
            .expect("DNS lab starts");
        let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
        let old = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
        let rx = Receiver::start(
            &lab.sub("receiver").unwrap(),
            block,
            &old.key_and_chain_pem().unwrap(),
        )
        .unwrap();
        for host in hosts {
            let mut lines = vec!["zone example.test.".to_owned()];
            if *host != MX_HOST {
                lines.push(format!("update add {host}. {TTL} IN A {}", rx.addr().ip()));
            }
            lines.push(format!(
                "update add {} {TTL} IN CNAME {target}",
                owner_of(host)
            ));
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            assert!(
                dns.nsupdate(&lines).unwrap().is_ok(),
                "CNAME of {host} added"
            );
        }
        if target.starts_with("_dane.") && target.ends_with(".example.test.") {
            dns.add_tlsa(target, TTL, &old.tlsa_311().unwrap()).unwrap();
            dns.wait_served_everywhere(target, &old.tlsa_311().unwrap(), JUDGE)
                .unwrap();
        }
        for host in hosts {
            wait_cname(&dns, &owner_of(host), target);
        }
        dns.flush_resolver().unwrap();
        let tx = Sender::start(&lab.sub("sender").unwrap(), block, dns.resolver_addr()).unwrap();
        let files = lab.sub("files").unwrap();
        let conf = lab.path().join("dane-roll.toml");
        let mut c = RolloverConf::new(lab.path(), &dns, &rx);
        c.ttl = TTL;
        c.endpoints = hosts.iter().map(|h| format!("{h}:25/smtp")).collect();
        let mut text = c.text();
        if let Some(zone) = zone {
            text = text.replacen(
                &format!("ttl = {TTL}\n"),
                &format!("ttl = {TTL}\nzone = \"{zone}\"\n"),
                1,
            );
        }
        std::fs::write(&conf, text).unwrap();
        World {
            tx,
            rx,
            dns,
            ca,
            conf,
            files,
            old,
            _lab: lab,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn new_leaf(&self) -> (Leaf, PathBuf, PathBuf) {
        let leaf = self.ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
        let cert = self.files.join("new.crt");
        let key = self.files.join("new.key");
        std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
        std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (leaf, cert, key)
    }

    fn deploy_wait(&self, cert: &Path, key: &Path) -> Output {
        self.deploy_cmd(cert, key).output().unwrap()
    }

    fn deploy_cmd(&self, cert: &Path, key: &Path) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .args(world::World::deploy_args(
                cert,
                key,
                &["--wait", "--timeout", ROLLOVER_TIMEOUT],
            ));
        cmd
    }

    /// The TLSA RRset every authoritative server serves at `owner` (asserted to agree).
    fn tlsa_set(&self, owner: &str) -> BTreeSet<String> {
        let mut seen: Option<BTreeSet<String>> = None;
        for server in self.dns.authoritative() {
            let answer = self.dns.query(server, owner, "TLSA").unwrap();
            let set: BTreeSet<String> = answer
                .records("TLSA")
                .iter()
                .filter(|r| same_name(&r.name, owner))
                .map(|r| normalize_rdata(&r.rdata))
                .collect();
            if let Some(prev) = &seen {
                assert_eq!(prev, &set, "authoritative servers disagree at {owner}");
            }
            seen = Some(set);
        }
        seen.unwrap_or_default()
    }

    /// Wait until every authoritative server serves exactly `want` at `owner`.
    fn wait_tlsa_set(&self, owner: &str, want: &BTreeSet<String>) {
        let t0 = Instant::now();
        let served = |server| -> BTreeSet<String> {
            self.dns.query(server, owner, "TLSA").map_or_else(
                |_| BTreeSet::new(),
                |a| {
                    a.records("TLSA")
                        .iter()
                        .filter(|r| same_name(&r.name, owner))
                        .map(|r| normalize_rdata(&r.rdata))
                        .collect()
                },
            )
        };
        while !self
            .dns
            .authoritative()
            .into_iter()
            .all(|s| served(s) == *want)
        {
            assert!(
                t0.elapsed() < JUDGE,
                "TLSA at {owner} never became {want:?}: {:?}",
                self.tlsa_set(owner)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_mail_verified(&self, when: &str) {
        let v = self.tx.send_and_judge(JUDGE).unwrap();
        assert!(
            v.is_verified(),
            "{when}: mail not verified: {v:?}\nsender log:\n{}",
            self.tx.instance().log_tail(20)
        );
    }

    /// The `3 1 1` of the next key dane-roll generated, from the status.
    fn next_rdata(&self) -> String {
        let out = self.run(&["status", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let hex = json["services"][0]["keys"]["next"]
            .as_str()
            .expect("a next key");
        normalize_rdata(&format!("3 1 1 {hex}"))
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Wait until every authoritative server serves `owner CNAME target`.
fn wait_cname(dns: &DnsLab, owner: &str, target: &str) {
    let t0 = Instant::now();
    loop {
        let ok = dns.authoritative().iter().all(|s| {
            dns.query(*s, owner, "CNAME").is_ok_and(|a| {
                a.records("CNAME")
                    .iter()
                    .any(|r| same_name(&r.rdata, target))
            })
        });
        if ok {
            return;
        }
        assert!(
            t0.elapsed() < JUDGE,
            "CNAME {owner} → {target} never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `rollover staged: … (N records to publish at …)` line.
fn staged_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.contains("rollover staged"))
        .unwrap_or_else(|| panic!("no staged line:\n{out}"))
}

#[test]
fn a_rollover_at_a_cname_owner_publishes_gates_and_retires_at_the_target() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = World::start(&[MX_HOST], TARGET, None);
    w.assert_mail_verified("before");
    let (new, cert, key) = w.new_leaf();
    // The sender judges a mail as each phase is reached.
    let mut child = w
        .deploy_cmd(&cert, &key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen: Vec<String> = Vec::new();
    for phase in [
        "published: ",
        "aged: ",
        "installed: ",
        "verified: ",
        "retired: ",
        "done: ",
    ] {
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    let hit = line.contains(phase);
                    seen.push(line);
                    if hit {
                        break;
                    }
                }
                _ => {
                    let _ = child.wait();
                    let stderr = std::io::read_to_string(child.stderr.take().unwrap());
                    panic!("the rollover ended before {phase:?}:\n{seen:#?}\n{stderr:?}");
                }
            }
        }
        w.assert_mail_verified(phase);
    }
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    let all = format!("{}\nstderr:\n{stderr}", seen.join("\n"));
    assert!(status.success(), "the rollover completes:\n{all}");
    assert!(
        all.contains(&format!(
            "owner {} (via CNAME → {TARGET})",
            owner_of(MX_HOST)
        )),
        "the output says where the records go:\n{all}"
    );
    // Added and retired at the target; the CNAME is intact.
    assert!(
        staged_line(&all).ends_with(&format!("at {TARGET})")),
        "{all}"
    );
    let want = BTreeSet::from([rdata(&new), w.next_rdata()]);
    w.wait_tlsa_set(TARGET, &want);
    assert!(!w.tlsa_set(TARGET).contains(&rdata(&w.old)));
    wait_cname(&w.dns, &owner_of(MX_HOST), TARGET);
    assert!(
        !all.contains("ALERT"),
        "no alert during the rollover:\n{all}"
    );
    assert_eq!(w.rx.served_spki().unwrap(), new.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after");
    assert_eq!(w.tx.deferred_count().unwrap(), 0, "nothing deferred");
    // `status` and `plan` say where the owner name's records live, from the store.
    for args in [&["status"][..], &["plan"][..]] {
        let out = w.run(args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!(
                "owner {} (via CNAME → {TARGET})",
                owner_of(MX_HOST)
            )),
            "{args:?}:\n{stdout}"
        );
    }
    // The timer's `run` keeps every owner name deliverable at the target too: nothing is
    // written at the CNAME's owner (where BIND would drop it), the target's set stays.
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("ALERT"), "{}", text(&out));
    assert_eq!(w.tlsa_set(TARGET), want);
    wait_cname(&w.dns, &owner_of(MX_HOST), TARGET);
    w.assert_mail_verified("after the timer's run");
}

#[test]
fn two_endpoints_sharing_one_target_publish_once() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mx2 = "mx2.example.test";
    let w = World::start(&[MX_HOST, mx2], TARGET, None);
    w.assert_mail_verified("before");
    let (new, cert, key) = w.new_leaf();
    let out = w.deploy_wait(&cert, &key);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "the rollover completes:\n{all}");
    for host in [MX_HOST, mx2] {
        assert!(
            all.contains(&format!("owner {} (via CNAME → {TARGET})", owner_of(host))),
            "{all}"
        );
    }
    // One owner name for both endpoints: the new and next keys' records, once each (two
    // owner names would make it four).
    let staged = staged_line(&all);
    assert!(
        staged.ends_with(&format!("(2 records to publish at {TARGET})")),
        "{staged}"
    );
    let want = BTreeSet::from([rdata(&new), w.next_rdata()]);
    w.wait_tlsa_set(TARGET, &want);
    for host in [MX_HOST, mx2] {
        wait_cname(&w.dns, &owner_of(host), TARGET);
    }
    w.assert_mail_verified("after");
    assert_eq!(w.tx.deferred_count().unwrap(), 0, "nothing deferred");
}

#[test]
fn a_target_outside_the_providers_zone_is_refused_by_name() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let target = "_dane.insecure.test.";
    let w = World::start(&[MX_HOST], target, Some("example.test"));
    let (_new, cert, key) = w.new_leaf();
    let out = w.deploy_wait(&cert, &key);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        owner_of(MX_HOST).as_str(),
        "is a CNAME to _dane.insecure.test.",
        "outside zone example.test",
        "by hand",
        "configure a provider",
        "remove the CNAME",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing:\n{all}");
    }
    assert!(!stderr.contains("panicked"), "{all}");
    // Nothing was staged or written.
    assert!(w.tlsa_set(target).is_empty());
    assert_eq!(
        w.rx.served_spki().unwrap(),
        w.old.spki_sha256_hex().unwrap()
    );
}

#[test]
fn a_cname_loop_is_refused_by_name() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let target = "_loop.example.test.";
    let w = World::start(&[MX_HOST], target, None);
    let back = format!("update add {target} {TTL} IN CNAME {}", owner_of(MX_HOST));
    assert!(
        w.dns
            .nsupdate(&["zone example.test.", &back])
            .unwrap()
            .is_ok()
    );
    wait_cname(&w.dns, target, &owner_of(MX_HOST));
    let (_new, cert, key) = w.new_leaf();
    let out = w.deploy_wait(&cert, &key);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "owner name {}: the CNAME chain loops ({target} → {})",
            owner_of(MX_HOST),
            owner_of(MX_HOST)
        )),
        "{all}"
    );
    assert_eq!(
        w.rx.served_spki().unwrap(),
        w.old.spki_sha256_hex().unwrap()
    );
}
