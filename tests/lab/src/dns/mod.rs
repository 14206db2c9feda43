//! The DNS half of the lab: a signed zone served by two authoritative servers, a validating
//! resolver, and optionally PowerDNS, all on the lab's loopback block.
//!
//! ```text
//! 127.53.N.1:53  BIND 9 primary   example.test (inline-signed, dnssec-policy, UPDATE with TSIG)
//!                                 insecure.test (unsigned, UPDATE with TSIG)
//! 127.53.N.2:53  Knot secondary   both zones by NOTIFY + AXFR/IXFR from BIND       (optional)
//! 127.53.N.3:53  Unbound          validating; stub zones to ns1 (+ ns2); DS anchor from BIND's key
//! 127.53.N.4:53  PowerDNS         gsqlite3 + HTTP API on :8081                      (optional)
//! 127.53.N.20:53 rogue named      only while tampering: serves an edited copy of the signed zone
//! ```
//!
//! [`DnsLab::builder`] picks the parts; [`DnsLab::start`] starts them in order and waits for each
//! by probing (never a fixed sleep): BIND has signed the zone, Knot serves BIND's serial, Unbound
//! answers with AD, PowerDNS's API answers. Dropping the lab stops everything in reverse order,
//! by PID, and removes the loopback alias BIND needed (see [`alias`]).
//!
//! The helpers mirror what dane-roll does against production: UPDATE through BIND with TSIG,
//! wait until every authoritative server serves the record signed, ask the validating resolver.
//! Fault injection: [`DnsLab::pause`] (SIGSTOP: no answers), [`DnsLab::freeze_knot`] (Knot keeps
//! answering with the old zone: a lagging secondary), [`DnsLab::stop_knot`], and
//! [`DnsLab::tamper`] (the resolver sees a modified record under a valid signature: SERVFAIL).

pub mod alias;
pub mod config;
pub mod fleet;
pub mod query;
pub mod update;

pub use config::{INSECURE_ZONE, ZONE};
pub use query::{Answer, Record};
pub use update::{TsigKey, UpdateAuth, UpdateOutcome};

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::pdns::Pdns;
use crate::ports::{LoopbackBlock, loopback_block};
use crate::process::{Daemon, output_with_input};
use crate::{LabDir, tools};

use alias::LoopbackAlias;
use config::Addrs;

/// How long one server gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A binary by name, found in PATH or the sbin directories.
pub(crate) fn tool(name: &str) -> PathBuf {
    tools::which(name).unwrap_or_else(|| PathBuf::from(name))
}

/// The servers of the DNS lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// BIND, the primary (ns1).
    Bind,
    /// Knot, the secondary (ns2).
    Knot,
    /// Unbound, the validating resolver.
    Unbound,
    /// PowerDNS.
    Pdns,
}

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

/// A running DNS lab. See the [module docs](self).
///
/// Must stay on the thread that started it (the servers die with that thread).
pub struct DnsLab {
    // Servers, stopped in this order by Drop (reverse of start).
    pdns: Option<Pdns>,
    rogue: Option<Daemon>,
    unbound: Option<Daemon>,
    knot: Option<Daemon>,
    bind: Daemon,
    // Removed after the servers are gone, then the directory.
    rogue_alias: Option<LoopbackAlias>,
    _ns1_alias: Option<LoopbackAlias>,
    knot_enabled: bool,
    block: LoopbackBlock,
    addrs: Addrs,
    dir: PathBuf,
    tsig: TsigKey,
    anchor: PathBuf,
    anchor_ds: String,
    timings: StartTimings,
    _labdir: Option<LabDir>,
}

impl std::fmt::Debug for DnsLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsLab")
            .field("block", &self.block)
            .field("dir", &self.dir)
            .field("knot", &self.knot_enabled)
            .field("resolver", &self.unbound.is_some())
            .field("pdns", &self.pdns.is_some())
            .finish()
    }
}

impl DnsLab {
    /// Host number of the rogue server used by [`DnsLab::tamper`] in the lab's block.
    pub const ROGUE: u8 = 20;

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

    // ----- addresses, names, files -----

    /// The loopback block.
    pub fn block(&self) -> LoopbackBlock {
        self.block
    }

    /// The lab's DNS directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The signed zone, `example.test`.
    pub fn zone(&self) -> &'static str {
        ZONE
    }

    /// The unsigned zone, `insecure.test` (delegated insecure at the resolver).
    pub fn insecure_zone(&self) -> &'static str {
        INSECURE_ZONE
    }

    /// The MX host of the signed zone, `mail.example.test` (A = the block's MX address).
    pub fn mx_host(&self) -> String {
        format!("mail.{ZONE}")
    }

    /// The address of a server (whether or not it runs).
    pub fn addr(&self, server: Server) -> Ipv4Addr {
        match server {
            Server::Bind => self.addrs.ns1,
            Server::Knot => self.addrs.ns2,
            Server::Unbound => self.addrs.resolver,
            Server::Pdns => self.addrs.pdns,
        }
    }

    /// The resolver's address (port 53).
    pub fn resolver_addr(&self) -> Ipv4Addr {
        self.addrs.resolver
    }

    /// The authoritative servers of the zones: BIND, and Knot if the lab has it (even while it
    /// is stopped or paused: "every authoritative server" includes a lagging one).
    pub fn authoritative(&self) -> Vec<Ipv4Addr> {
        let mut v = vec![self.addrs.ns1];
        if self.knot_enabled {
            v.push(self.addrs.ns2);
        }
        v
    }

    /// The TSIG key accepted for UPDATEs of both zones.
    pub fn tsig(&self) -> &TsigKey {
        &self.tsig
    }

    /// The trust anchor file (DS of the zone's key, in zone-file form) the resolver uses.
    pub fn trust_anchor_file(&self) -> &Path {
        &self.anchor
    }

    /// The trust anchor DS record(s), as text.
    pub fn trust_anchor_ds(&self) -> &str {
        &self.anchor_ds
    }

    /// unbound.conf (for `unbound-control -c`).
    pub fn unbound_conf(&self) -> PathBuf {
        self.dir.join("unbound/unbound.conf")
    }

    /// The PowerDNS server, if started.
    pub fn pdns(&self) -> Option<&Pdns> {
        self.pdns.as_ref()
    }

    /// How long the start took.
    pub fn timings(&self) -> &StartTimings {
        &self.timings
    }

    /// PIDs of every server process the lab runs now.
    pub fn pids(&self) -> Vec<u32> {
        let mut v = vec![self.bind.pid()];
        v.extend(self.knot.iter().map(Daemon::pid));
        v.extend(self.unbound.iter().map(Daemon::pid));
        v.extend(self.rogue.iter().map(Daemon::pid));
        v.extend(self.pdns.iter().map(Pdns::pid));
        v
    }

    // ----- queries -----

    /// Query `server` (DO bit set; RD only when it is the resolver).
    pub fn query(&self, server: Ipv4Addr, name: &str, rtype: &str) -> io::Result<Answer> {
        query::dig(server, name, rtype, server == self.addrs.resolver)
    }

    /// Query the validating resolver.
    pub fn resolve(&self, name: &str, rtype: &str) -> io::Result<Answer> {
        query::dig(self.addrs.resolver, name, rtype, true)
    }

    /// The SOA serial `server` serves for `zone`.
    pub fn serial(&self, server: Ipv4Addr, zone: &str) -> io::Result<u32> {
        query::dig(server, zone, "SOA", false)?
            .soa_serial()
            .ok_or_else(|| io::Error::other(format!("{server}: no SOA for {zone}")))
    }

    // ----- updates -----

    /// Send an UPDATE through BIND signed with the lab's key. `lines` are nsupdate commands
    /// (`zone …`, `update add …`); `server` and `send` are added.
    pub fn nsupdate(&self, lines: &[&str]) -> io::Result<UpdateOutcome> {
        self.nsupdate_as(UpdateAuth::LabKey, lines)
    }

    /// Send an UPDATE through BIND, authenticated as `auth` says.
    pub fn nsupdate_as(&self, auth: UpdateAuth, lines: &[&str]) -> io::Result<UpdateOutcome> {
        let key = match auth {
            UpdateAuth::LabKey => Some(self.tsig.file.clone()),
            UpdateAuth::Unsigned => None,
            UpdateAuth::WrongSecret => {
                let f = self.dir.join("wrong-secret.key");
                TsigKey::generate(&self.tsig.name, &f)?;
                Some(f)
            }
            UpdateAuth::UnknownKey => {
                let f = self.dir.join("unknown.key");
                TsigKey::generate("unknown-key", &f)?;
                Some(f)
            }
        };
        update::nsupdate(self.addrs.ns1, key.as_deref(), lines)
    }

    /// Add a TLSA record (`rdata` like `3 1 1 <hex>`); an error unless BIND accepts it.
    pub fn add_tlsa(&self, owner: &str, ttl: u32, rdata: &str) -> io::Result<()> {
        let owner = fqdn(owner);
        let zone = zone_of(&owner);
        let add = format!("update add {owner} {ttl} IN TLSA {rdata}");
        self.expect_ok(&[&format!("zone {zone}."), &add])
    }

    /// Delete one TLSA record; an error unless BIND accepts the UPDATE.
    pub fn delete_tlsa(&self, owner: &str, rdata: &str) -> io::Result<()> {
        let owner = fqdn(owner);
        let zone = zone_of(&owner);
        let del = format!("update delete {owner} IN TLSA {rdata}");
        self.expect_ok(&[&format!("zone {zone}."), &del])
    }

    fn expect_ok(&self, lines: &[&str]) -> io::Result<()> {
        match self.nsupdate(lines)? {
            UpdateOutcome::Ok => Ok(()),
            other => Err(io::Error::other(format!(
                "lab: UPDATE {lines:?}: {}",
                other.text()
            ))),
        }
    }

    // ----- waiting -----

    /// Wait until every authoritative server ([`DnsLab::authoritative`]) serves the TLSA record
    /// `owner`/`rdata`, signed (RRSIG) when the zone is the signed one. BIND's inline signing can
    /// lag behind a successful UPDATE (docs/LAB.md), so this checks answers, not update results.
    pub fn wait_served_everywhere(
        &self,
        owner: &str,
        rdata: &str,
        timeout: Duration,
    ) -> io::Result<Duration> {
        self.wait_everywhere(owner, "TLSA", timeout, |a| a.contains("TLSA", rdata))
    }

    /// Wait until no authoritative server serves the TLSA record `owner`/`rdata` any more.
    pub fn wait_gone_everywhere(
        &self,
        owner: &str,
        rdata: &str,
        timeout: Duration,
    ) -> io::Result<Duration> {
        self.wait_everywhere(owner, "TLSA", timeout, |a| {
            !a.contains("TLSA", rdata) && (a.rcode == "NOERROR" || a.rcode == "NXDOMAIN")
        })
    }

    /// Wait until every authoritative server's answer for `owner`/`rtype` satisfies `ok` (and,
    /// in the signed zone, carries an RRSIG for the answer or the denial).
    pub fn wait_everywhere(
        &self,
        owner: &str,
        rtype: &str,
        timeout: Duration,
        ok: impl Fn(&Answer) -> bool,
    ) -> io::Result<Duration> {
        let owner = fqdn(owner);
        let signed_zone = zone_of(&owner) == ZONE;
        let servers = self.authoritative();
        poll(
            &format!("{owner} {rtype} served everywhere"),
            timeout,
            || {
                let mut last = Vec::new();
                for s in &servers {
                    match query::dig(*s, &owner, rtype, false) {
                        Ok(a) => {
                            let sig = !signed_zone
                                || a.signed(rtype)
                                || a.authority.iter().any(|r| r.rtype == "RRSIG");
                            if !(ok(&a) && sig) {
                                last.push(format!("{s}: {} {:?}", a.rcode, a.answer));
                            }
                        }
                        Err(e) => last.push(format!("{s}: {e}")),
                    }
                }
                if last.is_empty() {
                    Ok(true)
                } else {
                    Err(io::Error::other(last.join("; ")))
                }
            },
        )
    }

    /// Flush the resolver's caches for both zones (records, keys, negative and bogus answers,
    /// and server timeouts) so the next query goes to the authoritative servers.
    pub fn flush_resolver(&self) -> io::Result<()> {
        self.unbound_control(&["flush_zone", ZONE])?;
        self.unbound_control(&["flush_zone", INSECURE_ZONE])?;
        self.unbound_control(&["flush_bogus"])?;
        self.unbound_control(&["flush_negative"])?;
        self.unbound_control(&["flush_infra", "all"])?;
        Ok(())
    }

    /// Run `unbound-control -c <conf> args…`; its output, or an error if it fails.
    pub fn unbound_control(&self, args: &[&str]) -> io::Result<String> {
        if self.unbound.is_none() {
            return Err(io::Error::other("lab: no resolver in this lab"));
        }
        run_ok(
            Command::new(tool("unbound-control"))
                .arg("-c")
                .arg(self.unbound_conf())
                .args(args),
        )
    }

    // ----- Knot: lag and outage -----

    fn knot_conf(&self) -> PathBuf {
        self.dir.join("knot/knot.conf")
    }

    /// Start (or restart) Knot and wait until it serves BIND's serial for both zones.
    ///
    /// A restarted Knot serves its journal at once, but it would only notice newer serials at
    /// the next SOA refresh (BIND's NOTIFYs sent while it was down are lost, and Knot keeps its
    /// refresh timers across restarts); so once it answers, the lab asks it to refresh now
    /// (`knotc zone-refresh`), as an operator would.
    pub fn start_knot(&mut self) -> io::Result<Duration> {
        if !self.knot_enabled {
            return Err(io::Error::other("lab: started without Knot"));
        }
        if self.knot.is_some() {
            return Ok(Duration::ZERO);
        }
        let t = Instant::now();
        let mut knot = Daemon::spawn(
            "knotd",
            Command::new(tool("knotd")).arg("-c").arg(self.knot_conf()),
            &self.dir.join("knot.log"),
        )?;
        let (ns1, ns2) = (self.addrs.ns1, self.addrs.ns2);
        let conf = self.knot_conf();
        let mut refreshed = false;
        let res = knot.wait_ready("serving BIND's serial", READY_TIMEOUT, || {
            let serials: Vec<_> = [ZONE, INSECURE_ZONE]
                .iter()
                .map(|z| {
                    let primary = query::dig(ns1, z, "SOA", false)
                        .ok()
                        .and_then(|a| a.soa_serial());
                    let secondary = query::dig(ns2, z, "SOA", false)
                        .ok()
                        .and_then(|a| a.soa_serial());
                    (primary, secondary)
                })
                .collect();
            if serials.iter().all(|(p, s)| p.is_some() && p == s) {
                return true;
            }
            if !refreshed && serials.iter().all(|(_, s)| s.is_some()) {
                let refresh = Command::new(tool("knotc"))
                    .arg("-c")
                    .arg(&conf)
                    .args(["-t", "5", "zone-refresh"])
                    .output();
                refreshed = refresh.is_ok_and(|o| o.status.success());
            }
            false
        });
        self.knot = Some(knot);
        res?;
        Ok(t.elapsed())
    }

    /// Stop Knot (its data stays for [`DnsLab::start_knot`]).
    pub fn stop_knot(&mut self) {
        if let Some(mut k) = self.knot.take() {
            k.stop();
        }
    }

    /// Run `knotc -c <conf> args…`.
    pub fn knotc(&self, args: &[&str]) -> io::Result<String> {
        if self.knot.is_none() {
            return Err(io::Error::other("lab: Knot is not running"));
        }
        run_ok(
            Command::new(tool("knotc"))
                .arg("-c")
                .arg(self.knot_conf())
                .args(["-t", "5"])
                .args(args),
        )
    }

    /// Freeze Knot's zones: it keeps answering with the data it has and postpones transfers
    /// (BIND's NOTIFYs included) until [`DnsLab::thaw_knot`]. A secondary that lags.
    pub fn freeze_knot(&self) -> io::Result<()> {
        // Blocking (`-b`): knotc returns once the freeze is in effect. Without it the freeze is
        // only queued, and a NOTIFY arriving meanwhile was still transferred (seen in CI: "a
        // frozen Knot must not serve the new record").
        self.knotc(&["-b", "zone-freeze"]).map(drop)
    }

    /// Let Knot catch up again after [`DnsLab::freeze_knot`].
    pub fn thaw_knot(&self) -> io::Result<()> {
        self.knotc(&["-b", "zone-thaw"]).map(drop)
    }

    // ----- pausing -----

    fn daemon(&self, server: Server) -> io::Result<&Daemon> {
        let d = match server {
            Server::Bind => Some(&self.bind),
            Server::Knot => self.knot.as_ref(),
            Server::Unbound => self.unbound.as_ref(),
            Server::Pdns => self.pdns.as_ref().map(Pdns::daemon),
        };
        d.ok_or_else(|| io::Error::other(format!("lab: {server:?} is not running")))
    }

    /// SIGSTOP a server: it stops answering (queries to it time out) until [`DnsLab::resume`].
    pub fn pause(&self, server: Server) -> io::Result<()> {
        self.daemon(server)?.signal(Signal::SIGSTOP)
    }

    /// SIGCONT a paused server.
    pub fn resume(&self, server: Server) -> io::Result<()> {
        self.daemon(server)?.signal(Signal::SIGCONT)
    }

    // ----- tampering -----

    /// Make the resolver see tampered data: copy the signed zone from BIND (AXFR with TSIG),
    /// replace the data of every `owner`/`rtype` record with `new_rdata` (keeping the original
    /// RRSIGs), serve that copy from a rogue named on [`DnsLab::ROGUE`], and point the resolver's
    /// stub zone at it. The DNSKEYs still validate, the edited RRset does not: SERVFAIL.
    /// [`DnsLab::untamper`] restores the real servers.
    pub fn tamper(&mut self, owner: &str, rtype: &str, new_rdata: &str) -> io::Result<()> {
        if self.unbound.is_none() {
            return Err(io::Error::other("lab: tamper needs the resolver"));
        }
        self.untamper()?;
        let owner = fqdn(owner);
        let out = Command::new(tool("dig"))
            .arg("-k")
            .arg(&self.tsig.file)
            .arg(format!("@{}", self.addrs.ns1))
            .args([
                "+onesoa",
                "+nocmd",
                "+nostats",
                "+nocomments",
                "+nosplit",
                ZONE,
                "AXFR",
            ])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut edited = 0;
        let mut zone = String::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        {
            let Some(mut rec) = query::parse_record(line) else {
                continue;
            };
            if rec.class != "IN" {
                continue; // the transfer's own TSIG record (class ANY)
            }
            if rec.name.eq_ignore_ascii_case(&owner) && rec.rtype.eq_ignore_ascii_case(rtype) {
                rec.rdata = new_rdata.to_string();
                edited += 1;
            }
            zone.push_str(&format!(
                "{} {} {} {} {}\n",
                rec.name, rec.ttl, rec.class, rec.rtype, rec.rdata
            ));
        }
        if edited == 0 {
            return Err(io::Error::other(format!(
                "lab: tamper: no {owner} {rtype} in the zone transfer ({} lines)",
                text.lines().count()
            )));
        }
        let rogue_dir = self.dir.join("rogue");
        std::fs::create_dir_all(&rogue_dir)?;
        std::fs::write(rogue_dir.join(format!("{ZONE}.db")), zone)?;
        let addr = self.block.host(Self::ROGUE);
        std::fs::write(
            rogue_dir.join("named.conf"),
            config::rogue_named_conf(&rogue_dir, addr),
        )?;
        if self.rogue_alias.is_none() {
            self.rogue_alias = Some(LoopbackAlias::add(addr)?);
        }
        let mut rogue = Daemon::spawn(
            "rogue named",
            Command::new(tool("named"))
                .arg("-g")
                .arg("-c")
                .arg(rogue_dir.join("named.conf")),
            &self.dir.join("rogue.log"),
        )?;
        let (o, t, r) = (owner.clone(), rtype.to_string(), new_rdata.to_string());
        let ready = rogue.wait_ready("serving the tampered zone", READY_TIMEOUT, || {
            query::dig(addr, &o, &t, false).is_ok_and(|a| a.contains(&t, &r))
        });
        self.rogue = Some(rogue);
        ready?;
        self.repoint_stub(&[addr])
    }

    /// Undo [`DnsLab::tamper`]: the resolver asks the real servers again; the rogue stops.
    pub fn untamper(&mut self) -> io::Result<()> {
        if let Some(mut r) = self.rogue.take() {
            r.stop();
            self.repoint_stub(&self.authoritative())?;
        }
        Ok(())
    }

    fn repoint_stub(&self, addrs: &[Ipv4Addr]) -> io::Result<()> {
        let zone = format!("{ZONE}.");
        self.unbound_control(&["stub_remove", &zone])?;
        let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        let mut args = vec!["stub_add", zone.as_str()];
        args.extend(addrs.iter().map(String::as_str));
        self.unbound_control(&args)?;
        self.flush_resolver()
    }
}

impl Drop for DnsLab {
    fn drop(&mut self) {
        // Reverse order of start; the loopback aliases and the directory go afterwards, as
        // fields.
        if let Some(mut p) = self.pdns.take() {
            p.stop();
        }
        if let Some(mut r) = self.rogue.take() {
            r.stop();
        }
        if let Some(mut u) = self.unbound.take() {
            u.stop();
        }
        self.stop_knot();
        self.bind.stop();
    }
}

/// `name` with a trailing dot.
pub fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// The lab zone `owner` (absolute) belongs to.
fn zone_of(owner: &str) -> &'static str {
    let o = owner.trim_end_matches('.').to_ascii_lowercase();
    if o == INSECURE_ZONE || o.ends_with(&format!(".{INSECURE_ZONE}")) {
        INSECURE_ZONE
    } else {
        ZONE
    }
}

/// Run a command; its stdout, or an error with its stderr.
fn run_ok(cmd: &mut Command) -> io::Result<String> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{:?} failed: {}{}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Poll `f` every 20 ms until it returns `Ok(true)` or `timeout` passes; the timeout error
/// carries the last error `f` returned.
pub fn poll(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> io::Result<bool>,
) -> io::Result<Duration> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match f() {
            Ok(true) => return Ok(start.elapsed()),
            Ok(false) => {}
            Err(e) => last = e.to_string(),
        }
        if start.elapsed() > timeout {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("lab: not {what} after {timeout:?}; last: {last}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
