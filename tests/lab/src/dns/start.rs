//! Starting the DNS lab: which parts to run ([`DnsLabBuilder`]), the start in order with a
//! readiness probe for each server, and how long each took ([`StartTimings`]).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::LabDir;
use crate::pdns::Pdns;
use crate::ports::{LoopbackBlock, loopback_block};
use crate::process::{Daemon, output_with_input};

use super::alias::LoopbackAlias;
use super::config::{self, Addrs};
use super::{DnsLab, INSECURE_ZONE, READY_TIMEOUT, TsigKey, ZONE, query, tool};

/// How long each part took to become ready.
#[derive(Debug, Clone, Default)]
pub struct StartTimings {
    /// From spawning named until the zone's DNSKEY is served signed.
    pub bind_signed: Duration,
    /// From spawning knotd until it serves BIND's serials.
    pub knot_synced: Option<Duration>,
    /// From spawning unbound until an answer carries AD.
    pub resolver_ad: Option<Duration>,
    /// From spawning pdns_server until its API answers.
    pub pdns_ready: Option<Duration>,
    /// The whole start, key generation and config writing included.
    pub total: Duration,
}

/// Which parts of the DNS lab to start. BIND always runs.
#[derive(Debug, Clone)]
pub struct DnsLabBuilder {
    knot: bool,
    resolver: bool,
    pdns: bool,
    block: Option<LoopbackBlock>,
    dir: Option<PathBuf>,
}

impl DnsLabBuilder {
    /// Start Knot as a second authoritative server (default: yes).
    pub fn knot(mut self, on: bool) -> Self {
        self.knot = on;
        self
    }

    /// Start the validating Unbound (default: yes).
    pub fn resolver(mut self, on: bool) -> Self {
        self.resolver = on;
        self
    }

    /// Start PowerDNS with its API (default: no).
    pub fn pdns(mut self, on: bool) -> Self {
        self.pdns = on;
        self
    }

    /// Use this loopback block (shared with the mail half of a lab) instead of a new one.
    pub fn block(mut self, block: LoopbackBlock) -> Self {
        self.block = Some(block);
        self
    }

    /// Put the lab's files below `dir/dns` instead of a lab directory of its own.
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Start the chosen servers and wait until each is ready.
    pub fn start(self) -> io::Result<DnsLab> {
        DnsLab::start_with(self)
    }
}

impl DnsLab {
    /// A builder: BIND + Knot + Unbound by default, PowerDNS on request.
    pub fn builder() -> DnsLabBuilder {
        DnsLabBuilder {
            knot: true,
            resolver: true,
            pdns: false,
            block: None,
            dir: None,
        }
    }

    /// BIND + Knot + Unbound, in a new directory and block.
    pub fn start() -> io::Result<DnsLab> {
        Self::builder().start()
    }

    fn start_with(b: DnsLabBuilder) -> io::Result<DnsLab> {
        let t0 = Instant::now();
        let (labdir, dir) = match &b.dir {
            Some(d) => {
                let dir = d.join("dns");
                std::fs::create_dir_all(&dir)?;
                (None, dir)
            }
            None => {
                let l = LabDir::new()?;
                let dir = l.sub("dns")?;
                (Some(l), dir)
            }
        };
        let block = b.block.unwrap_or_else(loopback_block);
        let addrs = Addrs {
            ns1: block.host(LoopbackBlock::NS1),
            ns2: block.host(LoopbackBlock::NS2),
            resolver: block.host(LoopbackBlock::RESOLVER),
            mx: block.host(LoopbackBlock::MX),
            acme: block.host(LoopbackBlock::ACME),
            sender: block.host(LoopbackBlock::SENDER),
            pdns: block.host(LoopbackBlock::PDNS),
        };

        // BIND.
        let bind_dir = dir.join("bind");
        std::fs::create_dir_all(bind_dir.join("keys"))?;
        let tsig = TsigKey::generate("dane-roll-key", &dir.join("tsig.key"))?;
        std::fs::write(
            bind_dir.join(format!("{ZONE}.db")),
            config::signed_zone_source(&addrs),
        )?;
        std::fs::write(
            bind_dir.join(format!("{INSECURE_ZONE}.db")),
            config::insecure_zone_source(&addrs),
        )?;
        let named_conf = bind_dir.join("named.conf");
        std::fs::write(
            &named_conf,
            config::named_conf(&bind_dir, &addrs, &tsig.file, b.knot),
        )?;
        // In the field lab's namespaces the address is on the veth already.
        let ns1_alias = if block.is_loopback() {
            Some(LoopbackAlias::add(addrs.ns1)?)
        } else {
            None
        };
        let t = Instant::now();
        let mut bind = Daemon::spawn(
            "named",
            Command::new(tool("named"))
                .arg("-g")
                .arg("-c")
                .arg(&named_conf),
            &dir.join("named.log"),
        )?;
        let ns1 = addrs.ns1;
        bind.wait_ready("serving example.test signed", READY_TIMEOUT, || {
            query::dig(ns1, ZONE, "DNSKEY", false).is_ok_and(|a| a.signed("DNSKEY"))
                && query::dig(ns1, INSECURE_ZONE, "SOA", false).is_ok_and(|a| a.aa())
        })?;
        let mut timings = StartTimings {
            bind_signed: t.elapsed(),
            ..Default::default()
        };

        let mut lab = DnsLab {
            pdns: None,
            rogue: None,
            unbound: None,
            knot: None,
            bind,
            rogue_alias: None,
            _ns1_alias: ns1_alias,
            knot_enabled: b.knot,
            block,
            addrs,
            dir: dir.clone(),
            tsig,
            anchor: dir.join("anchor.ds"),
            anchor_ds: String::new(),
            timings: StartTimings::default(),
            _labdir: labdir,
        };

        // Knot.
        if b.knot {
            let knot_dir = dir.join("knot");
            std::fs::create_dir_all(&knot_dir)?;
            std::fs::write(
                knot_dir.join("knot.conf"),
                config::knot_conf(&knot_dir, &addrs),
            )?;
            timings.knot_synced = Some(lab.start_knot()?);
        }

        // Unbound, anchored on BIND's key.
        if b.resolver {
            lab.anchor_ds = lab.make_anchor()?;
            std::fs::write(&lab.anchor, &lab.anchor_ds)?;
            let ub_dir = dir.join("unbound");
            std::fs::create_dir_all(&ub_dir)?;
            let conf = ub_dir.join("unbound.conf");
            std::fs::write(
                &conf,
                config::unbound_conf(&ub_dir, &addrs, &lab.authoritative(), &lab.anchor),
            )?;
            let t = Instant::now();
            let mut ub = Daemon::spawn(
                "unbound",
                Command::new(tool("unbound")).arg("-d").arg("-c").arg(&conf),
                &dir.join("unbound.log"),
            )?;
            let resolver = addrs.resolver;
            let mx_host = format!("mail.{ZONE}");
            ub.wait_ready("validating (AD)", READY_TIMEOUT, || {
                query::dig(resolver, &mx_host, "A", true).is_ok_and(|a| a.ad())
            })?;
            timings.resolver_ad = Some(t.elapsed());
            lab.unbound = Some(ub);
        }

        // PowerDNS.
        if b.pdns {
            let t = Instant::now();
            lab.pdns = Some(Pdns::start(
                &dir.join("pdns"),
                addrs.pdns,
                &dir.join("pdns.log"),
            )?);
            timings.pdns_ready = Some(t.elapsed());
        }

        timings.total = t0.elapsed();
        lab.timings = timings;
        Ok(lab)
    }

    fn make_anchor(&self) -> io::Result<String> {
        let keys = Command::new(tool("dig"))
            .arg(format!("@{}", self.addrs.ns1))
            .args(["+norec", "+noall", "+answer", "+nosplit", ZONE, "DNSKEY"])
            .output()?;
        let out = output_with_input(
            Command::new(tool("dnssec-dsfromkey"))
                .args(["-2", "-f", "-", ZONE])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
            &keys.stdout,
        )?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || !text.contains(" DS ") {
            return Err(io::Error::other(format!(
                "lab: no DS from BIND's DNSKEY: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(text)
    }
}
