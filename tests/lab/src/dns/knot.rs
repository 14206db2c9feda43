//! Knot, the secondary: (re)start until it serves BIND's serials, stop, `knotc`, and freezing
//! its zones (a secondary that lags).

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Daemon;

use super::{DnsLab, INSECURE_ZONE, READY_TIMEOUT, ZONE, query, run_ok, tool};

impl DnsLab {
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
}
