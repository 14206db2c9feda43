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
mod faults;
pub mod fleet;
mod knot;
pub mod query;
mod records;
mod start;
pub mod update;

pub use config::{INSECURE_ZONE, ZONE};
pub use query::{Answer, Record};
pub use start::{DnsLabBuilder, StartTimings};
pub use update::{TsigKey, UpdateAuth, UpdateOutcome};

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::pdns::Pdns;
use crate::ports::LoopbackBlock;
use crate::process::Daemon;
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
