//! The receiving Postfix: the MX whose key and chain the tests (and dane-roll) replace, and how
//! to tell which certificate it serves after a reload.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use openssl::x509::X509;

use crate::pki;
use crate::ports::LoopbackBlock;

use super::config::{master_cf, set_mode};
use super::instance::Instance;
use super::proctree::{ProcId, alive, process_tree};
use super::starttls::starttls_chain;
use super::{DOMAIN, MX_HOST, START_TIMEOUT};

/// The receiving Postfix: the MX, STARTTLS on `127.53.N.10:25` with a key+chain file that the
/// tests (and dane-roll) replace.
#[derive(Debug)]
pub struct Receiver {
    inst: Instance,
    addr: SocketAddrV4,
}

impl Receiver {
    /// Start a receiver in `dir` listening on the block's MX address, port 25, serving
    /// `key_and_chain_pem` (private key first, then the chain).
    pub fn start(
        dir: &Path,
        block: LoopbackBlock,
        key_and_chain_pem: &[u8],
    ) -> io::Result<Receiver> {
        Self::start_on(
            dir,
            SocketAddrV4::new(block.host(LoopbackBlock::MX), 25),
            key_and_chain_pem,
        )
    }

    /// Start a receiver listening on `addr`.
    pub fn start_on(
        dir: &Path,
        addr: SocketAddrV4,
        key_and_chain_pem: &[u8],
    ) -> io::Result<Receiver> {
        let d = dir.display();
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls)?;
        set_mode(&tls, 0o700)?;
        pki::write_key_and_chain(&tls.join("chain.pem"), key_and_chain_pem)?;
        let main_cf = format!(
            "# dane-roll lab: the receiving MX\n\
             compatibility_level = 3.6\n\
             queue_directory = {d}/spool\n\
             data_directory = {d}/data\n\
             maillog_file_prefixes = {d}\n\
             maillog_file = {d}/maillog\n\
             myhostname = {MX_HOST}\n\
             mydomain = {DOMAIN}\n\
             myorigin = {DOMAIN}\n\
             mydestination = {DOMAIN}, {MX_HOST}\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             smtpd_banner = $myhostname ESMTP dane-roll lab\n\
             local_recipient_maps =\n\
             local_transport = discard:\n\
             default_transport = discard:\n\
             relay_transport = discard:\n\
             alias_maps =\n\
             alias_database =\n\
             smtp_dns_support_level = disabled\n\
             smtpd_tls_security_level = may\n\
             smtpd_tls_chain_files = {d}/tls/chain.pem\n\
             smtpd_tls_loglevel = 1\n"
        );
        let listener = format!("{addr} inet n - n - - smtpd");
        let master = master_cf(Some(&listener), &[])?;
        let mut inst = Instance::create("postfix receiver", dir, &main_cf, &master)?;
        inst.start(None)?;
        let r = Receiver { inst, addr };
        let sock = SocketAddr::V4(addr);
        let probe = || starttls_chain(sock, Duration::from_secs(2)).is_ok();
        let t0 = Instant::now();
        while !probe() {
            if t0.elapsed() > START_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "lab: receiver gives no STARTTLS on {addr}; log:\n{}",
                        r.inst.log_tail(30)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(r)
    }

    /// The listening address (`127.53.N.10:25`).
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// The key+chain file Postfix reads (`smtpd_tls_chain_files`).
    pub fn chain_file(&self) -> PathBuf {
        self.inst.dir().join("tls/chain.pem")
    }

    /// The Postfix instance (config dir, log, PIDs, stop).
    pub fn instance(&self) -> &Instance {
        &self.inst
    }

    /// Replace the key+chain file atomically (0600). Takes effect at the next [`Receiver::reload`].
    pub fn install_chain(&self, key_and_chain_pem: &[u8]) -> io::Result<()> {
        pki::write_key_and_chain(&self.chain_file(), key_and_chain_pem)
    }

    /// `postfix reload`, waiting until the master logged it. Like in production, a session
    /// opened during the next second may still get the OLD certificate: an smtpd that was idle
    /// at the reload keeps accepting connections until it notices (measured: up to ~1.1 s). Use
    /// [`Receiver::reload_settled`] or [`Receiver::wait_serving`] when that matters.
    pub fn reload(&self) -> io::Result<Duration> {
        self.inst.reload()
    }

    /// [`Receiver::reload`], then wait until every smtpd process that existed before it has
    /// exited: from then on every new session gets the new key and chain.
    pub fn reload_settled(&self) -> io::Result<Duration> {
        let t0 = Instant::now();
        let old: Vec<ProcId> = match self.inst.master_pid() {
            Some(m) => process_tree(m)
                .into_iter()
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{}/comm", p.pid))
                        .is_ok_and(|c| c.trim() == "smtpd")
                })
                .collect(),
            None => Vec::new(),
        };
        self.inst.reload()?;
        while old.iter().any(|p| alive(*p)) {
            if t0.elapsed() > START_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "lab: an smtpd from before the reload is still running",
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(t0.elapsed())
    }

    /// Whether a new session gets STARTTLS and a certificate.
    pub fn starttls_ok(&self) -> bool {
        starttls_chain(SocketAddr::V4(self.addr), Duration::from_secs(5)).is_ok()
    }

    /// The chain a new STARTTLS session is served (leaf first).
    pub fn served_chain(&self) -> io::Result<Vec<X509>> {
        starttls_chain(SocketAddr::V4(self.addr), Duration::from_secs(5))
    }

    /// The SPKI SHA-256 (TLSA `3 1 1` data) of the certificate a new session is served.
    pub fn served_spki(&self) -> io::Result<String> {
        let chain = self.served_chain()?;
        let leaf = chain
            .first()
            .ok_or_else(|| io::Error::other("lab: receiver sent no certificate"))?;
        pki::spki_sha256_hex(leaf)
    }

    /// Poll new sessions until the served SPKI is `spki` (after a reload); the time it took.
    pub fn wait_serving(&self, spki: &str, timeout: Duration) -> io::Result<Duration> {
        let t0 = Instant::now();
        loop {
            let got = self.served_spki();
            if got.as_deref().ok() == Some(spki) {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("lab: receiver serves {got:?}, not {spki}, after {timeout:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop it now (also done on drop); the time it took.
    pub fn stop(&mut self) -> Duration {
        self.inst.stop()
    }
}
