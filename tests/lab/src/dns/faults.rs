//! Fault injection on the running lab: pausing a server (SIGSTOP) and tampering (a rogue named
//! serving an edited copy of the signed zone to the resolver).

use std::io;
use std::net::Ipv4Addr;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::pdns::Pdns;
use crate::process::Daemon;

use super::alias::LoopbackAlias;
use super::{DnsLab, READY_TIMEOUT, Server, ZONE, config, fqdn, query, tool};

impl DnsLab {
    /// Host number of the rogue server used by [`DnsLab::tamper`] in the lab's block.
    pub const ROGUE: u8 = 20;

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
