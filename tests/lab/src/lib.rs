//! The lab: real DNS, mail and ACME servers on loopback, started and stopped by PID.
//!
//! Every lab lives in its own directory and on ports chosen for that run, so two labs (two test
//! threads, a test run beside the demo) never collide. Each server is held by a [`Daemon`] guard
//! that stops exactly the process it started when dropped, also when a test panics.
//!
//! - [`process`]: the guard; [`ports`]: free loopback ports and per-lab address blocks
//!   (127.53.N.0/24); [`tools`]: finding the servers' binaries, and the skip rule.
//! - For the chaos run: [`faultproxy`] (an HTTP proxy that answers 500 or 429 on demand),
//!   [`mirror`] (PowerDNS as a hidden primary, copied into BIND) and [`mailflow`] (a mail a
//!   second through the sender, each followed to its last delivery attempt).
//! - For alert tests: [`sink`] (a webhook receiver that keeps every body); for MTA-STS,
//!   [`https`] (an HTTPS server of fixed pages, certificate from the test PKI).
//! - For rollover tests: [`world`] (DNS lab, MX, DANE sender, dane-roll configuration); for
//!   field conditions, [`field`] (an IPv6 prefix without a route), [`netns`] (the field lab:
//!   servers and host in two network namespaces joined by a veth pair, `nft` per test) and
//!   [`relay`] (delay, jitter and loss between two loopback addresses, TCP and UDP).

pub mod acme;
pub mod conf;
pub mod dns;
pub mod faultproxy;
pub mod field;
pub mod https;
pub mod mailflow;
pub mod mirror;
pub mod netns;
pub mod pdns;
pub mod pki;
pub mod ports;
pub mod postfix;
pub mod process;
pub mod relay;
pub mod sink;
pub mod tools;
pub mod world;

pub use dns::{DnsLab, Server};
pub use ports::{LoopbackBlock, free_port, loopback_block};
pub use process::Daemon;
pub use tools::{in_ci, require, require_all};

use std::path::{Path, PathBuf};

/// A private directory for one lab run, removed when dropped (kept if `DANE_ROLL_LAB_KEEP` is
/// set, for debugging).
///
/// Made 0755: Postfix cannot open its `master.lock` below a 0700 directory (docs/LAB.md).
pub struct LabDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl LabDir {
    /// Make a new lab directory under the system's temporary directory.
    pub fn new() -> std::io::Result<LabDir> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("dane-roll-lab.")
            .tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let path = dir.path().to_path_buf();
        let dir = if std::env::var_os("DANE_ROLL_LAB_KEEP").is_some() {
            eprintln!("lab: keeping {}", path.display());
            let _ = dir.keep();
            None
        } else {
            Some(dir)
        };
        Ok(LabDir { dir, path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, created if missing.
    pub fn sub(&self, name: &str) -> std::io::Result<PathBuf> {
        let p = self.path.join(name);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }
}

impl Drop for LabDir {
    fn drop(&mut self) {
        // TempDir removes itself; nothing else to do. Spelled out so the field is used.
        let _ = self.dir.take();
    }
}
