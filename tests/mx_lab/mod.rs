//! What the `check` and `serve` tests against the lab share: the DNS lab (the signed zone
//! `example.test`, BIND and a validating Unbound, no Knot) with the lab's receiving Postfix as
//! the MX `mail.example.test` serving an ECDSA leaf of a test PKI, its TLSA owner published
//! and changed, and the binary run with no configuration file.

#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use dane_roll_lab::pki::{KeyKind, Leaf, MX_HOST, TestPki};
use dane_roll_lab::postfix::Receiver;
use dane_roll_lab::tools::{BIND_TOOLS, UNBOUND_TOOLS};
use dane_roll_lab::{DnsLab, LabDir, LoopbackBlock};
use serde_json::Value;

/// The TLSA owner of the MX.
pub const OWNER: &str = "_25._tcp.mail.example.test";
/// How long the servers may take to serve a change.
pub const WAIT: Duration = Duration::from_secs(30);

/// The tools of the DNS lab and `extra`; false (the test skips) if one is missing.
pub fn dns_tools(extra: &[&str]) -> bool {
    dane_roll_lab::require_all(&[BIND_TOOLS, UNBOUND_TOOLS, extra])
}

/// The tools of [`MxLab`] and `extra`; false (the test skips) if one is missing.
pub fn mx_tools(extra: &[&str]) -> bool {
    let mut tools = vec!["postfix", "script"];
    tools.extend_from_slice(extra);
    dns_tools(&tools)
}

/// The DNS lab alone, in `lab`'s directory on `block`.
pub fn start_dns(lab: &LabDir, block: LoopbackBlock) -> DnsLab {
    DnsLab::builder()
        .block(block)
        .dir(lab.path())
        .knot(false)
        .start()
        .unwrap()
}

/// The DNS lab and the receiving Postfix. The fields are dropped in their order: Postfix
/// first, the lab's directory last.
pub struct MxLab {
    /// The MX, serving `leaf`.
    pub rx: Receiver,
    /// The certificate the MX serves (for `MX_HOST`, ECDSA P-256).
    pub leaf: Leaf,
    pub pki: TestPki,
    pub dns: DnsLab,
    pub block: LoopbackBlock,
    pub lab: LabDir,
}

impl MxLab {
    /// Start both; no TLSA record is published yet.
    pub fn start() -> MxLab {
        let lab = LabDir::new().unwrap();
        let block = dane_roll_lab::loopback_block();
        let dns = start_dns(&lab, block);
        let pki = TestPki::new(KeyKind::EcdsaP256).unwrap();
        let leaf = pki.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
        let rx = Receiver::start(
            &lab.sub("receiver").unwrap(),
            block,
            &leaf.key_and_chain_pem().unwrap(),
        )
        .unwrap();
        MxLab {
            rx,
            leaf,
            pki,
            dns,
            block,
            lab,
        }
    }

    /// The validating resolver's address.
    pub fn resolver(&self) -> String {
        self.dns.resolver_addr().to_string()
    }
}

/// The `3 1 1` record of a new key of `pki` for the MX: a record that does not match.
pub fn other_record(pki: &TestPki) -> String {
    pki.leaf(&[MX_HOST], KeyKind::EcdsaP256)
        .unwrap()
        .tlsa_311()
        .unwrap()
}

/// Add `rdata` at [`OWNER`] (TTL 300), wait until every server serves it, flush the resolver.
pub fn publish(dns: &DnsLab, rdata: &str) {
    dns.add_tlsa(OWNER, 300, rdata).unwrap();
    dns.wait_served_everywhere(OWNER, rdata, WAIT).unwrap();
    dns.flush_resolver().unwrap();
}

/// Delete `rdata` at [`OWNER`], wait until no server serves it, flush the resolver.
pub fn unpublish(dns: &DnsLab, rdata: &str) {
    dns.delete_tlsa(OWNER, rdata).unwrap();
    dns.wait_gone_everywhere(OWNER, rdata, WAIT).unwrap();
    dns.flush_resolver().unwrap();
}

/// Replace `old` by `new` at [`OWNER`] in one step of the zone, wait until every server serves
/// only the new one, flush the resolver.
pub fn replace(dns: &DnsLab, old: &str, new: &str) {
    dns.add_tlsa(OWNER, 300, new).unwrap();
    dns.delete_tlsa(OWNER, old).unwrap();
    dns.wait_served_everywhere(OWNER, new, WAIT).unwrap();
    dns.wait_gone_everywhere(OWNER, old, WAIT).unwrap();
    dns.flush_resolver().unwrap();
}

/// What a run of the binary gave.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    /// stdout as JSON (the test fails, showing both streams, if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}\n{}\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// `dane-roll ARGS…` with no configuration file (unless ARGS name one) and no colour.
pub fn dane_roll(args: &[&str]) -> Out {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_dane-roll"))
        .args(args)
        .env("DANE_ROLL_CONFIG", "/nonexistent/dane-roll.toml")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// `check TARGET --resolver RESOLVER --key-algorithm ecdsa --timeout SECS --format json`
/// and `extra`: the run and its JSON report.
pub fn check_json(resolver: &str, target: &str, timeout: &str, extra: &[&str]) -> (Out, Value) {
    let mut args = vec![
        "check",
        target,
        "--resolver",
        resolver,
        "--key-algorithm",
        "ecdsa",
        "--timeout",
        timeout,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = dane_roll(&args);
    let json = out.json();
    (out, json)
}

/// The checks of a JSON report with `kind`, as (status, message).
pub fn checks_of(json: &Value, kind: &str) -> Vec<(String, String)> {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
