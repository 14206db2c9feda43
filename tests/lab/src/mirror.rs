//! PowerDNS as a hidden primary: the TLSA RRset of one owner name, as PowerDNS's API holds it, is
//! copied into BIND (the signing primary that BIND and Knot serve) by dynamic update.
//!
//! ```text
//! provider ──API──▶ PowerDNS (hidden, unsigned) ──mirror──▶ BIND (inline-signed) ──▶ Knot
//!                                                UPDATE+TSIG
//! ```
//!
//! This is the lab's stand-in for a zone transfer from a hidden primary to a signer: the
//! provider talks to a real PowerDNS API (through [`crate::faultproxy`] when faults are wanted),
//! while the zone that resolvers see stays the lab's signed one on BIND and Knot, so the other
//! faults (a primary stopped, a secondary lagging) still apply.
//!
//! A background thread looks every [`INTERVAL`]: it reads the RRset from the API and from BIND's
//! answer, and when they differ sends one UPDATE with the difference (adds, then deletes by
//! rdata). Like a real secondary it catches up whenever it can: while BIND is paused (SIGSTOP)
//! its answers time out and the thread tries again; an UPDATE queued in a paused BIND and applied
//! later is simply seen as done at the next look. Only that one owner's TLSA RRset is touched.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::dns::query::{self, normalize_rdata};
use crate::dns::{fqdn, update};
use crate::faultproxy;

/// How often the mirror looks.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// What the mirror did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MirrorStats {
    /// Looks (one API read and one BIND query each).
    pub looks: u64,
    /// UPDATEs BIND accepted.
    pub updates: u64,
    /// Looks that could not finish (API or BIND not answering, UPDATE failed).
    pub failures: u64,
    /// Whether the last look found both sides equal.
    pub in_sync: bool,
    /// The last problem, if any.
    pub last_problem: Option<String>,
}

/// What to mirror and where.
#[derive(Debug, Clone)]
pub struct MirrorSpec {
    /// PowerDNS's API address (`127.53.N.4:8081`).
    pub api: SocketAddr,
    /// Its `X-API-Key`.
    pub api_key: String,
    /// The zone, e.g. `example.test`.
    pub zone: String,
    /// The owner name of the TLSA RRset.
    pub owner: String,
    /// BIND's address (port 53).
    pub bind: Ipv4Addr,
    /// The TSIG key file BIND accepts updates with.
    pub tsig_file: PathBuf,
}

/// A running mirror; stopped when dropped.
#[derive(Debug)]
pub struct Mirror {
    stats: Arc<Mutex<MirrorStats>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Mirror {
    /// Start mirroring (the first look runs at once).
    pub fn start(spec: MirrorSpec) -> io::Result<Mirror> {
        let stats = Arc::new(Mutex::new(MirrorStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&stats), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("pdns-mirror".into())
            .spawn(move || {
                while !sp.load(Ordering::SeqCst) {
                    let result = look(&spec);
                    {
                        let mut s = st.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        s.looks += 1;
                        match result {
                            Ok(Look::Equal) => {
                                s.in_sync = true;
                            }
                            Ok(Look::Updated) => {
                                s.updates += 1;
                                s.in_sync = false;
                            }
                            Err(e) => {
                                s.failures += 1;
                                s.in_sync = false;
                                s.last_problem = Some(e.to_string());
                            }
                        }
                    }
                    std::thread::sleep(INTERVAL);
                }
            })?;
        Ok(Mirror {
            stats,
            stop,
            thread: Some(thread),
        })
    }

    /// What it did so far.
    pub fn stats(&self) -> MirrorStats {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Wait until a look that began after this call found both sides equal.
    pub fn wait_synced(&self, timeout: Duration) -> io::Result<Duration> {
        let t0 = Instant::now();
        let start = self.stats().looks;
        loop {
            let s = self.stats();
            // Two looks later, the look that found equality began after this call.
            if s.in_sync && s.looks >= start + 2 {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("lab: PowerDNS and BIND not in sync after {timeout:?}: {s:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Look {
    Equal,
    Updated,
}

/// The enabled TLSA records (normalized data → TTL) at `spec.owner` in PowerDNS.
pub fn pdns_tlsa(spec: &MirrorSpec) -> io::Result<BTreeMap<String, u32>> {
    let path = format!(
        "/api/v1/servers/localhost/zones/{}",
        fqdn(&spec.zone).replace('/', "%2F")
    );
    let r = faultproxy::request(
        spec.api,
        "GET",
        &path,
        &[("X-API-Key", spec.api_key.as_str())],
        "",
    )?;
    if r.status != 200 {
        return Err(io::Error::other(format!(
            "PowerDNS API GET {path}: {}",
            r.status
        )));
    }
    let doc: serde_json::Value = serde_json::from_str(&r.body).map_err(io::Error::other)?;
    let owner = fqdn(&spec.owner).to_ascii_lowercase();
    let mut out = BTreeMap::new();
    for rrset in doc["rrsets"].as_array().into_iter().flatten() {
        let name = rrset["name"].as_str().unwrap_or("").to_ascii_lowercase();
        if name != owner || rrset["type"] != "TLSA" {
            continue;
        }
        let ttl = rrset["ttl"]
            .as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(60);
        for rec in rrset["records"].as_array().into_iter().flatten() {
            if rec["disabled"].as_bool() == Some(true) {
                continue;
            }
            if let Some(c) = rec["content"].as_str() {
                out.insert(normalize_rdata(c), ttl);
            }
        }
    }
    Ok(out)
}

fn look(spec: &MirrorSpec) -> io::Result<Look> {
    let want = pdns_tlsa(spec)?;
    let owner = fqdn(&spec.owner);
    let answer = query::dig(spec.bind, &owner, "TLSA", false)?;
    if answer.rcode != "NOERROR" && answer.rcode != "NXDOMAIN" {
        return Err(io::Error::other(format!("BIND answered {}", answer.rcode)));
    }
    let have: Vec<String> = answer
        .records("TLSA")
        .iter()
        .map(|r| normalize_rdata(&r.rdata))
        .collect();
    let mut lines = vec![format!("zone {}", fqdn(&spec.zone))];
    for (rdata, ttl) in &want {
        if !have.contains(rdata) {
            lines.push(format!("update add {owner} {ttl} IN TLSA {rdata}"));
        }
    }
    for rdata in &have {
        if !want.contains_key(rdata) {
            lines.push(format!("update delete {owner} IN TLSA {rdata}"));
        }
    }
    if lines.len() == 1 {
        return Ok(Look::Equal);
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    match update::nsupdate(spec.bind, Some(&spec.tsig_file), &refs)? {
        update::UpdateOutcome::Ok => Ok(Look::Updated),
        other => Err(io::Error::other(format!(
            "UPDATE of BIND failed: {}",
            other.text()
        ))),
    }
}
