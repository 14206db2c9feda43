//! The mail half of the lab: a receiving Postfix (the MX whose certificate dane-roll rolls) and a
//! DANE-enforcing sending Postfix (the judge of whether mail would still flow).
//!
//! ```text
//! 127.53.N.10:25  receiver  smtpd, STARTTLS with DIR/tls/chain.pem (key + chain, one file),
//!                           accepts mail for example.test and discards it
//! 127.53.N.11     sender    smtp_tls_security_level = dane, smtp_dns_support_level = dnssec;
//!                           runs in a private mount namespace whose /etc/resolv.conf points at
//!                           the lab's validating resolver (nameserver 127.53.N.3, trust-ad)
//! ```
//!
//! Each instance has its own config directory, queue and data directory under the lab directory
//! and is started with `postfix -c DIR/etc start`; its master daemonizes, so it is adopted from
//! its pid file as a [`Daemon`]. Dropping an instance runs `postfix stop`, stops the master by
//! PID and waits until every child it had is gone (SIGKILL after a grace period).
//!
//! Pitfalls handled here (beyond docs/LAB.md):
//! - `inet_interfaces = 127.53.N.10` is fatal ("no local interface found"): Postfix checks
//!   inet_interfaces against the interface list, and only 127.0.0.1 is on `lo`. The listener's
//!   address is given in master.cf instead (`127.53.N.10:25 inet ... smtpd`), which Postfix binds
//!   as is, and `inet_interfaces = 127.0.0.1`. The sender's `smtp_bind_address = 127.53.N.11` is
//!   not checked either.
//! - The first start of a fresh spool takes ~2.5 s (post-install create-missing and the checks in
//!   postfix-script); the spool is made here with the right owners and modes and
//!   `quick-start` is touched, so a start takes ~0.1 s.
//! - Postfix re-reads main.cf in 300 ms sleeps for ~2 s when its mtime is within the last
//!   second (a file being edited): the configs are written dated 10 s back, or every start of a
//!   fresh instance costs 2 s.
//! - The sender's smtp processes cache TLSA lookups: its smtp service runs with `-o max_use=1`
//!   (a fresh process, so fresh lookups, for every delivery) and the failed-cohort limit is raised
//!   so that one deferral does not mark the destination dead for the next test mail.
//! - TLS lines ("Verified TLS connection established to ...") carry no queue ID; the verdict
//!   pairs them with the delivery by the smtp process ID.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;

use crate::pki;
use crate::ports::LoopbackBlock;
use crate::process::{Daemon, output_with_input, tail};
use crate::tools;

/// How long an instance gets to start, and a child to exit after the master stopped.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The domain the receiver accepts mail for, and its MX host.
pub const DOMAIN: &str = "example.test";
/// The MX host name (the receiver's `myhostname`, the TLSA base domain).
pub const MX_HOST: &str = pki::MX_HOST;
/// The sender's host name.
pub const SENDER_HOST: &str = "sender.example.test";
/// The default test recipient.
pub const RECIPIENT: &str = "someone@example.test";

fn tool(name: &str) -> PathBuf {
    tools::which(name).unwrap_or_else(|| PathBuf::from(name))
}

/// Quote for /bin/sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The uid of the `postfix` user and the gid of the `postdrop` group.
fn postfix_ids() -> io::Result<(u32, u32)> {
    fn field(file: &str, name: &str) -> io::Result<u32> {
        let text = std::fs::read_to_string(file)?;
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name) && f.len() > 2)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!("lab: no {name} in {file} (is postfix installed?)"))
            })
    }
    Ok((
        field("/etc/passwd", "postfix")?,
        field("/etc/group", "postdrop")?,
    ))
}

/// The stock Debian master.cf with every chroot column `n`, the pipe(8) services dropped, the
/// `smtp inet` listener replaced by `listener` (or dropped), and `smtp_opts` appended to the
/// `smtp unix` client service.
fn master_cf(listener: Option<&str>, smtp_opts: &[&str]) -> io::Result<String> {
    let stock = [
        "/usr/share/postfix/master.cf.dist",
        "/etc/postfix/master.cf",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .ok_or_else(|| io::Error::other("lab: no stock master.cf (postfix not installed?)"))?;
    let mut out = String::from("# dane-roll lab: stock master.cf, chroot off\n");
    let mut skip = false;
    for line in stock.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            if !skip {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let mut f: Vec<&str> = line.split_whitespace().collect();
        skip = false;
        if f.len() < 8 || f.get(7) == Some(&"pipe") {
            skip = true;
            continue;
        }
        if f[0] == "smtp" && f[1] == "inet" {
            if let Some(l) = listener {
                out.push_str(l);
                out.push('\n');
            }
            continue;
        }
        f[4] = "n";
        out.push_str(&f.join(" "));
        out.push('\n');
        if f[0] == "smtp" && f[1] == "unix" {
            for o in smtp_opts {
                out.push_str(&format!("  -o {o}\n"));
            }
        }
    }
    Ok(out)
}

/// One PID with its start time (to tell it from a reused PID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcId {
    pid: u32,
    start: u64,
}

fn stat_fields(pid: u32) -> Option<(u32, u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    // cutime cstime priority nice threads itrealvalue starttime
    let state = f.first()?.chars().next()?;
    let ppid = f.get(1)?.parse().ok()?;
    let start = f.get(19)?.parse().ok()?;
    Some((ppid, start, state))
}

fn alive(p: ProcId) -> bool {
    matches!(stat_fields(p.pid), Some((_, start, state)) if start == p.start && state != 'Z')
}

/// `root` and all its descendants, found by scanning /proc.
fn process_tree(root: u32) -> Vec<ProcId> {
    let mut all = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            match stat_fields(pid) {
                Some((ppid, start, state)) if state != 'Z' => all.push((pid, ppid, start)),
                _ => {}
            }
        }
    }
    let mut out: Vec<ProcId> = all
        .iter()
        .filter(|(pid, _, _)| *pid == root)
        .map(|&(pid, _, start)| ProcId { pid, start })
        .collect();
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].pid;
        for &(pid, ppid, start) in &all {
            if ppid == parent && !out.iter().any(|p| p.pid == pid) {
                out.push(ProcId { pid, start });
            }
        }
        i += 1;
    }
    out
}

/// One Postfix instance: config dir, queue, data dir, log, and its master once started.
#[derive(Debug)]
pub struct Instance {
    name: String,
    dir: PathBuf,
    master: Option<Daemon>,
}

impl Instance {
    /// Lay out `dir` (etc/, spool/ with Postfix's owners and modes, data/) and write the configs.
    fn create(name: &str, dir: &Path, main_cf: &str, master_cf: &str) -> io::Result<Instance> {
        let (postfix_uid, postdrop_gid) = postfix_ids()?;
        let inst = Instance {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            master: None,
        };
        std::fs::create_dir_all(inst.etc())?;
        set_mode(dir, 0o755)?;
        set_mode(&inst.etc(), 0o755)?;
        write_config(&inst.etc().join("main.cf"), main_cf)?;
        write_config(&inst.etc().join("master.cf"), master_cf)?;
        // What `post-install create-missing` would make (postfix-files), without its 2 s.
        let spool = inst.spool();
        std::fs::create_dir_all(&spool)?;
        set_mode(&spool, 0o755)?;
        for d in [
            "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
            "private", "saved", "trace",
        ] {
            mkdir_owned(&spool.join(d), Some(postfix_uid), None, 0o700)?;
        }
        mkdir_owned(
            &spool.join("maildrop"),
            Some(postfix_uid),
            Some(postdrop_gid),
            0o730,
        )?;
        mkdir_owned(
            &spool.join("public"),
            Some(postfix_uid),
            Some(postdrop_gid),
            0o710,
        )?;
        mkdir_owned(&spool.join("pid"), None, None, 0o755)?;
        mkdir_owned(&dir.join("data"), Some(postfix_uid), None, 0o700)?;
        Ok(inst)
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The config directory (`postfix -c` argument).
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }

    /// The queue directory.
    pub fn spool(&self) -> PathBuf {
        self.dir.join("spool")
    }

    /// The instance's log (maillog_file).
    pub fn maillog(&self) -> PathBuf {
        self.dir.join("maillog")
    }

    /// The master's PID, once started.
    pub fn master_pid(&self) -> Option<u32> {
        self.master.as_ref().map(Daemon::pid)
    }

    /// The master and all its children (pickup, qmgr, smtpd, ...), now.
    pub fn pids(&self) -> Vec<u32> {
        match self.master_pid() {
            Some(pid) => process_tree(pid).into_iter().map(|p| p.pid).collect(),
            None => Vec::new(),
        }
    }

    /// Start the master. With `resolv_conf`, it runs in a private mount namespace where that file
    /// is bind-mounted over /etc/resolv.conf (the machine's own file is never touched). Runs under
    /// `script` so that fatal errors Postfix reports before its log is open reach us.
    fn start(&mut self, resolv_conf: Option<&Path>) -> io::Result<Duration> {
        let t0 = Instant::now();
        std::fs::write(self.spool().join("quick-start"), b"")?;
        let etc = self.etc();
        let postfix = tool("postfix");
        let start = format!(
            "exec {} -c {} start",
            sh_quote(&postfix.to_string_lossy()),
            sh_quote(&etc.to_string_lossy())
        );
        let inner = match resolv_conf {
            None => start,
            Some(r) => format!(
                "exec {} -m --propagation private /bin/sh -c {}",
                sh_quote(&tool("unshare").to_string_lossy()),
                sh_quote(&format!(
                    "mount --bind {} /etc/resolv.conf && {start}",
                    sh_quote(&r.to_string_lossy())
                ))
            ),
        };
        let out = Command::new(tool("script"))
            .args(["-qec", &inner, "/dev/null"])
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        let pid_file = self.spool().join("pid/master.pid");
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab: {} did not start ({}): {}\n{}{}",
                self.name,
                out.status,
                text.trim(),
                String::from_utf8_lossy(&out.stderr),
                self.check_output()
            )));
        }
        // `postfix start` waits for the master (master -w): the pid file is there now.
        let mut master = Daemon::adopt(&self.name, &pid_file, Some(&self.maillog()))?;
        // Not the log: postlogd starts on demand and the master's first lines reach the file
        // only later. The master's public/pickup and public/qmgr FIFOs exist once it listens.
        let spool = self.spool();
        master.wait_ready("listening", START_TIMEOUT, || {
            spool.join("public/pickup").exists() && spool.join("public/qmgr").exists()
        })?;
        self.master = Some(master);
        Ok(t0.elapsed())
    }

    /// `postfix check` output (for error messages).
    fn check_output(&self) -> String {
        Command::new(tool("postfix"))
            .arg("-c")
            .arg(self.etc())
            .arg("check")
            .output()
            .map(|o| {
                format!(
                    "postfix check: {}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }

    /// Run a Postfix command with `-c etc` (postfix, postqueue, postsuper): its output.
    fn run(&self, cmd: &str, args: &[&str]) -> io::Result<String> {
        let out = Command::new(tool(cmd))
            .arg("-c")
            .arg(self.etc())
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab: {cmd} -c {} {} failed ({}): {}",
                self.etc().display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `postfix reload`, then wait until the master logged the reload (a new session after this
    /// gets a freshly started smtpd/smtp reading the new configuration and key files).
    pub fn reload(&self) -> io::Result<Duration> {
        let t0 = Instant::now();
        let count = || {
            std::fs::read_to_string(self.maillog())
                .map(|l| l.matches("reload -- version").count())
                .unwrap_or(0)
        };
        let before = count();
        self.run("postfix", &["reload"])?;
        while count() <= before {
            if t0.elapsed() > START_TIMEOUT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("lab: {} did not log its reload", self.name),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(t0.elapsed())
    }

    /// The last `n` lines of the instance's log.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.maillog(), n)
    }

    /// Stop: `postfix stop`, then the master by PID, then wait for (and if need be kill) every
    /// child it had. Idempotent; also done on drop.
    pub fn stop(&mut self) -> Duration {
        let t0 = Instant::now();
        let Some(mut master) = self.master.take() else {
            return t0.elapsed();
        };
        let tree = process_tree(master.pid());
        let _ = Command::new(tool("postfix"))
            .arg("-c")
            .arg(self.etc())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        master.stop();
        // The master signals its children as it exits; some (qmgr, an idle smtpd) take up to a
        // second or two to notice. They are ours: tell them directly.
        for p in tree.iter().filter(|p| alive(**p)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let left: Vec<ProcId> = tree.iter().copied().filter(|p| alive(*p)).collect();
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                for p in left {
                    eprintln!(
                        "lab: {} child {} outlived its master; killing",
                        self.name, p.pid
                    );
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p.pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        t0.elapsed()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Write a config file dated 10 s back: Postfix re-reads (300 ms sleeps, up to ~2 s) a
/// dictionary file whose mtime is within the last second or so, as if it were being edited.
fn write_config(path: &Path, text: &str) -> io::Result<()> {
    std::fs::write(path, text)?;
    let past = std::time::SystemTime::now() - Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(past)
}

fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

fn mkdir_owned(p: &Path, uid: Option<u32>, gid: Option<u32>, mode: u32) -> io::Result<()> {
    match std::fs::create_dir(p) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    std::os::unix::fs::chown(p, uid, gid)?;
    set_mode(p, mode)
}

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

/// Open an SMTP session to `addr`, EHLO, STARTTLS, and return the certificate chain the server
/// sent (leaf first). No verification: the lab judges certificates by their SPKI.
pub fn starttls_chain(addr: SocketAddr, timeout: Duration) -> io::Result<Vec<X509>> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut rd = BufReader::new(stream.try_clone()?);
    let mut wr = stream;
    expect_reply(&mut rd, "220")?;
    wr.write_all(b"EHLO probe.example.test\r\n")?;
    let ehlo = expect_reply(&mut rd, "250")?;
    if !ehlo.to_ascii_uppercase().contains("STARTTLS") {
        return Err(io::Error::other(format!(
            "lab: no STARTTLS offered: {ehlo}"
        )));
    }
    wr.write_all(b"STARTTLS\r\n")?;
    expect_reply(&mut rd, "220")?;
    if !rd.buffer().is_empty() {
        return Err(io::Error::other(
            "lab: server spoke before the TLS handshake",
        ));
    }
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(io::Error::other)?;
    b.set_verify(SslVerifyMode::NONE);
    let conn = b.build();
    let mut cfg = conn.configure().map_err(io::Error::other)?;
    cfg.set_verify_hostname(false);
    let mut tls = cfg
        .connect(MX_HOST, wr)
        .map_err(|e| io::Error::other(format!("lab: TLS handshake with {addr}: {e}")))?;
    let chain: Vec<X509> = tls
        .ssl()
        .peer_cert_chain()
        .map(|s| s.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    let _ = tls.write_all(b"QUIT\r\n");
    let mut sink = [0u8; 256];
    let _ = tls.read(&mut sink);
    let _ = tls.shutdown();
    if chain.is_empty() {
        return Err(io::Error::other("lab: no certificate in the TLS handshake"));
    }
    Ok(chain)
}

/// Read one (possibly multi-line) SMTP reply; error unless its code is `code`.
fn expect_reply(rd: &mut impl BufRead, code: &str) -> io::Result<String> {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("lab: SMTP server closed the connection; so far: {all}"),
            ));
        }
        all.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            break;
        }
    }
    if !all.starts_with(code) {
        return Err(io::Error::other(format!(
            "lab: expected {code}, got: {}",
            all.trim()
        )));
    }
    Ok(all)
}

/// What became of one test mail at the DANE-enforcing sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered over a DANE-verified session: the "Verified TLS connection established" line.
    Verified(String),
    /// Delivered, but not over a verified session (no usable TLSA, so plain opportunistic TLS):
    /// the TLS line, or the status line if there was none.
    SentUnverified(String),
    /// Deferred: the reason in the status line (e.g. "Server certificate not verified").
    Deferred(String),
    /// Bounced: the reason.
    Bounced(String),
    /// No delivery attempt logged yet.
    Pending,
}

impl Verdict {
    /// Whether the mail went out over a DANE-verified session.
    pub fn is_verified(&self) -> bool {
        matches!(self, Verdict::Verified(_))
    }

    /// Whether the mail was deferred.
    pub fn is_deferred(&self) -> bool {
        matches!(self, Verdict::Deferred(_))
    }
}

/// A test mail handed to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestMail {
    /// Its Message-ID, without angle brackets.
    pub message_id: String,
    /// Its recipient.
    pub to: String,
}

/// The sending Postfix that enforces DANE: the judge of whether mail to the MX would flow.
#[derive(Debug)]
pub struct Sender {
    inst: Instance,
    addr: Ipv4Addr,
    resolver: Ipv4Addr,
}

static MAIL_SEQ: AtomicU32 = AtomicU32::new(0);

impl Sender {
    /// Start a sender in `dir`: binds to the block's SENDER address and resolves through
    /// `resolver:53` (a validating resolver) in a private mount namespace.
    pub fn start(dir: &Path, block: LoopbackBlock, resolver: Ipv4Addr) -> io::Result<Sender> {
        Self::start_on(dir, block.host(LoopbackBlock::SENDER), resolver)
    }

    /// Start a sender that binds its connections to `addr`.
    pub fn start_on(dir: &Path, addr: Ipv4Addr, resolver: Ipv4Addr) -> io::Result<Sender> {
        let d = dir.display();
        std::fs::create_dir_all(dir)?;
        let resolv = dir.join("resolv.conf");
        std::fs::write(
            &resolv,
            format!(
                "# dane-roll lab: the sender's private resolv.conf (mount namespace)\n\
                 nameserver {resolver}\noptions trust-ad edns0 timeout:2 attempts:2\n"
            ),
        )?;
        let main_cf = format!(
            "# dane-roll lab: the DANE-enforcing sender (the judge)\n\
             compatibility_level = 3.6\n\
             queue_directory = {d}/spool\n\
             data_directory = {d}/data\n\
             maillog_file_prefixes = {d}\n\
             maillog_file = {d}/maillog\n\
             myhostname = {SENDER_HOST}\n\
             mydomain = {SENDER_HOST}\n\
             myorigin = {SENDER_HOST}\n\
             mydestination =\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             local_recipient_maps =\n\
             alias_maps =\n\
             alias_database =\n\
             smtp_bind_address = {addr}\n\
             smtp_dns_support_level = dnssec\n\
             smtp_tls_security_level = dane\n\
             smtp_tls_loglevel = 1\n\
             smtp_tls_connection_reuse = no\n\
             smtp_connection_cache_on_demand = no\n\
             smtp_destination_concurrency_failed_cohort_limit = 1000\n\
             smtp_connect_timeout = 5s\n\
             maximal_queue_lifetime = 1h\n\
             bounce_queue_lifetime = 1h\n"
        );
        let master = master_cf(None, &["max_use=1"])?;
        let mut inst = Instance::create("postfix sender", dir, &main_cf, &master)?;
        inst.start(Some(&resolv))?;
        Ok(Sender {
            inst,
            addr,
            resolver,
        })
    }

    /// The address its connections come from.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The resolver it asks.
    pub fn resolver(&self) -> Ipv4Addr {
        self.resolver
    }

    /// The Postfix instance (config dir, log, PIDs, stop).
    pub fn instance(&self) -> &Instance {
        &self.inst
    }

    /// `postfix reload` of the sender (drops any state its processes hold).
    pub fn reload(&self) -> io::Result<Duration> {
        self.inst.reload()
    }

    /// Hand a test mail to the sender (`sendmail -C`), with a unique Message-ID.
    pub fn send_test_mail(&self, to: &str) -> io::Result<TestMail> {
        let n = MAIL_SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let message_id = format!("lab.{}.{n}.{nanos}@{SENDER_HOST}", std::process::id());
        let msg = format!(
            "From: <lab@{SENDER_HOST}>\r\nTo: <{to}>\r\nSubject: dane-roll lab test {n}\r\n\
             Message-ID: <{message_id}>\r\n\r\nA test mail from the dane-roll lab.\r\n"
        );
        let out = output_with_input(
            Command::new(tool("sendmail"))
                .arg("-C")
                .arg(self.inst.etc())
                .args(["-i", "-f", &format!("lab@{SENDER_HOST}"), "--", to])
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
            msg.as_bytes(),
        )?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "lab: sendmail failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(TestMail {
            message_id,
            to: to.to_string(),
        })
    }

    /// The queue ID the mail got (from cleanup's `message-id=` log line), once logged.
    pub fn queue_id(&self, mail: &TestMail) -> Option<String> {
        let log = std::fs::read_to_string(self.inst.maillog()).ok()?;
        queue_id_in(&log, &mail.message_id)
    }

    /// What became of `mail` so far, from the sender's log.
    pub fn verdict_now(&self, mail: &TestMail) -> Verdict {
        let Ok(log) = std::fs::read_to_string(self.inst.maillog()) else {
            return Verdict::Pending;
        };
        let Some(qid) = queue_id_in(&log, &mail.message_id) else {
            return Verdict::Pending;
        };
        verdict_in(&log, &qid)
    }

    /// Wait until the sender logged an outcome for `mail` (sent, deferred or bounced), at most
    /// `timeout`; [`Verdict::Pending`] if none came.
    pub fn verdict(&self, mail: &TestMail, timeout: Duration) -> Verdict {
        let t0 = Instant::now();
        loop {
            let v = self.verdict_now(mail);
            if v != Verdict::Pending || t0.elapsed() > timeout {
                return v;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Send a test mail to [`RECIPIENT`] and wait for the verdict.
    pub fn send_and_judge(&self, timeout: Duration) -> io::Result<Verdict> {
        let mail = self.send_test_mail(RECIPIENT)?;
        Ok(self.verdict(&mail, timeout))
    }

    /// `postqueue -f`: retry every deferred mail now.
    pub fn flush(&self) -> io::Result<()> {
        self.inst.run("postqueue", &["-f"]).map(|_| ())
    }

    /// The queue, one JSON object per mail (`postqueue -j`).
    pub fn queue(&self) -> io::Result<Vec<serde_json::Value>> {
        let out = self.inst.run("postqueue", &["-j"])?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(io::Error::other))
            .collect()
    }

    /// How many mails wait in the deferred queue.
    pub fn deferred_count(&self) -> io::Result<usize> {
        Ok(self
            .queue()?
            .iter()
            .filter(|m| m["queue_name"] == "deferred")
            .count())
    }

    /// Whether the queue is empty.
    pub fn queue_empty(&self) -> io::Result<bool> {
        Ok(self.queue()?.is_empty())
    }

    /// Delete every queued mail (`postsuper -d ALL`).
    pub fn clear_queue(&self) -> io::Result<()> {
        self.inst.run("postsuper", &["-d", "ALL"]).map(|_| ())
    }

    /// How many mails the sender bounced so far (status=bounced lines in its log).
    pub fn bounced_count(&self) -> usize {
        std::fs::read_to_string(self.inst.maillog())
            .map(|l| l.matches("status=bounced").count())
            .unwrap_or(0)
    }

    /// Stop it now (also done on drop); the time it took.
    pub fn stop(&mut self) -> Duration {
        self.inst.stop()
    }
}

/// The queue ID of the mail with `message_id` in a maillog.
fn queue_id_in(log: &str, message_id: &str) -> Option<String> {
    let needle = format!("message-id=<{message_id}>");
    log.lines().find(|l| l.contains(&needle)).and_then(|l| {
        let (_, rest) = l.split_once("]: ")?;
        let (qid, _) = rest.split_once(": ")?;
        Some(qid.to_string())
    })
}

/// The first outcome logged for queue ID `qid`.
fn verdict_in(log: &str, qid: &str) -> Verdict {
    let lines: Vec<&str> = log.lines().collect();
    let prefix = format!("]: {qid}: ");
    (0..lines.len())
        .filter(|&i| lines[i].contains(&prefix))
        .find_map(|i| attempt(&lines, i))
        .unwrap_or(Verdict::Pending)
}

/// The process tag of a log line: `postfix/smtp[1234]`.
fn proc_tag(line: &str) -> Option<&str> {
    let end = line.find("]: ")?;
    let start = line[..end].rfind(' ')? + 1;
    Some(&line[start..=end])
}

/// The outcome the status line `lines[i]` reports; for a delivery, the TLS line of the same smtp
/// process before it says whether the session was verified.
pub(crate) fn attempt(lines: &[&str], i: usize) -> Option<Verdict> {
    let l = lines[i];
    let pos = l.find(" status=")?;
    let status = &l[pos + 8..];
    let (word, reason) = status.split_once(' ').unwrap_or((status, ""));
    let reason = reason
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .to_string();
    match word {
        "sent" => {
            let tag = proc_tag(l);
            let tls = lines[..i]
                .iter()
                .rev()
                .find(|t| proc_tag(t) == tag && t.contains("TLS connection established to"));
            Some(match tls {
                Some(t) if t.contains("]: Verified TLS connection") => {
                    Verdict::Verified(t.to_string())
                }
                Some(t) => Verdict::SentUnverified(t.to_string()),
                None => Verdict::SentUnverified(l.to_string()),
            })
        }
        "deferred" => Some(Verdict::Deferred(reason)),
        "bounced" => Some(Verdict::Bounced(reason)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Nov 23 08:50:10 sender postfix/cleanup[6988]: 9A6CF98C1BF: message-id=<lab.1.2.3@sender.example.test>
Nov 23 08:50:10 sender postfix/smtp[7001]: Verified TLS connection established to mail.example.test[127.53.9.10]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov 23 08:50:10 sender postfix/smtp[7002]: Untrusted TLS connection established to other.test[127.0.0.9]:25: TLSv1.3
Nov 23 08:50:10 sender postfix/smtp[7001]: 9A6CF98C1BF: to=<someone@example.test>, relay=mail.example.test[127.53.9.10]:25, delay=0.1, status=sent (250 2.0.0 Ok: queued as 1234)
Nov 23 08:50:11 sender postfix/cleanup[6988]: ABC: message-id=<lab.1.3.3@sender.example.test>
Nov 23 08:50:11 sender postfix/smtp[7003]: ABC: to=<someone@example.test>, relay=mail.example.test[127.53.9.10]:25, delay=0.1, status=deferred (Server certificate not verified)
";

    #[test]
    fn parses_verdicts() {
        assert_eq!(
            queue_id_in(LOG, "lab.1.2.3@sender.example.test").as_deref(),
            Some("9A6CF98C1BF")
        );
        assert!(verdict_in(LOG, "9A6CF98C1BF").is_verified());
        assert_eq!(
            verdict_in(LOG, "ABC"),
            Verdict::Deferred("Server certificate not verified".into())
        );
        assert_eq!(verdict_in(LOG, "NOPE"), Verdict::Pending);
    }

    #[test]
    fn master_cf_has_listener_and_no_chroot() {
        let m = master_cf(Some("127.53.9.10:25 inet n - n - - smtpd"), &["max_use=1"]).unwrap();
        assert!(m.contains("127.53.9.10:25 inet n - n - - smtpd"));
        assert!(!m.lines().any(|l| l.starts_with("smtp inet")));
        assert!(m.contains("  -o max_use=1"));
        for l in m.lines().filter(|l| !l.starts_with([' ', '#'])) {
            assert_eq!(l.split_whitespace().nth(4), Some("n"), "{l}");
        }
        assert!(!m.contains("pipe"));
    }
}
