//! Working with the lab's records as dane-roll does against production: queries, UPDATEs
//! through BIND with TSIG, waiting until every authoritative server serves the change signed,
//! and flushing the validating resolver.

use std::io;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use super::{
    Answer, DnsLab, INSECURE_ZONE, TsigKey, UpdateAuth, UpdateOutcome, ZONE, fqdn, poll, query,
    run_ok, tool, update, zone_of,
};

impl DnsLab {
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
}
