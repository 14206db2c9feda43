//! ACME on loopback: pebble (the ACME test server) and the clients dane-roll works with, certbot
//! and dehydrated, each confined to the lab directory.
//!
//! ```text
//! 127.53.N.5:14000  pebble ACME directory  https://127.53.N.5:14000/dir
//! 127.53.N.5:15000  pebble management      (/roots/0: the root that signs issued certificates)
//! ```
//!
//! Pebble's own HTTPS certificate is issued at run time by a lab CA ([`crate::pki`]) for
//! `DNS:localhost, IP:127.53.N.5`; clients trust it through [`Pebble::ca_file`]. Pebble runs with
//! `PEBBLE_VA_ALWAYS_VALID=1` (every challenge passes, so dns-01 needs no DNS and a no-op hook),
//! `PEBBLE_VA_NOSLEEP=1` and `PEBBLE_WFE_NONCEREJECT=0`. It keeps no state across restarts: a
//! client directory belongs to one pebble run.
//!
//! - [`Certbot`]: `--config-dir/--work-dir/--logs-dir` in the lab dir, `REQUESTS_CA_BUNDLE`,
//!   `--manual --preferred-challenges dns --manual-auth-hook /bin/true`; [`Certbot::certonly`],
//!   [`Certbot::renew`] (always `--no-random-sleep-on-renew`).
//! - [`Dehydrated`]: a config file in the lab dir (`CA`, `CURL_OPTS="--cacert ..."`, dns-01) and a
//!   hook that records `deploy_cert`'s arguments.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod};

use crate::pki::{self, KeyKind, TestPki};
use crate::ports::{LoopbackBlock, free_port};
use crate::process::Daemon;
use crate::tools;

/// The ACME port on the ACME address.
pub const ACME_PORT: u16 = 14000;
/// The management port.
pub const MANAGEMENT_PORT: u16 = 15000;
const READY_TIMEOUT: Duration = Duration::from_secs(20);

fn tool(name: &str) -> PathBuf {
    tools::which(name).unwrap_or_else(|| PathBuf::from(name))
}

/// A running pebble.
#[derive(Debug)]
pub struct Pebble {
    daemon: Daemon,
    dir: PathBuf,
    addr: SocketAddrV4,
    ca_file: PathBuf,
    started_in: Duration,
}

impl Pebble {
    /// Start pebble in `dir` on the block's ACME address.
    pub fn start(dir: &Path, block: LoopbackBlock) -> io::Result<Pebble> {
        Self::start_on(dir, block.host(LoopbackBlock::ACME))
    }

    /// Start pebble listening on `ip:14000` (management `ip:15000`).
    pub fn start_on(dir: &Path, ip: Ipv4Addr) -> io::Result<Pebble> {
        let t0 = Instant::now();
        std::fs::create_dir_all(dir)?;
        let ca = TestPki::new(KeyKind::EcdsaP256)?;
        let ip_s = ip.to_string();
        let leaf = ca.leaf(&["localhost", &ip_s], KeyKind::EcdsaP256)?;
        let ca_file = dir.join("pebble-ca.pem");
        let cert_file = dir.join("pebble-cert.pem");
        let key_file = dir.join("pebble-key.pem");
        pki::write_atomic(&ca_file, &ca.root_pem()?, 0o644)?;
        pki::write_atomic(&cert_file, &leaf.fullchain_pem()?, 0o644)?;
        let key_pem = leaf
            .key
            .private_key_to_pem_pkcs8()
            .map_err(io::Error::other)?;
        pki::write_atomic(&key_file, &key_pem, 0o600)?;
        let addr = SocketAddrV4::new(ip, ACME_PORT);
        let config = format!(
            r#"{{
  "pebble": {{
    "listenAddress": "{addr}",
    "managementListenAddress": "{ip}:{MANAGEMENT_PORT}",
    "certificate": "{}",
    "privateKey": "{}",
    "httpPort": {},
    "tlsPort": {},
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }}
}}
"#,
            cert_file.display(),
            key_file.display(),
            free_port(),
            free_port()
        );
        let config_file = dir.join("pebble-config.json");
        std::fs::write(&config_file, config)?;
        let mut cmd = Command::new(tool("pebble"));
        cmd.arg("-config")
            .arg(&config_file)
            .env("PEBBLE_VA_ALWAYS_VALID", "1")
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .current_dir(dir);
        let mut daemon = Daemon::spawn("pebble", &mut cmd, &dir.join("pebble.log"))?;
        let url_host = ip.to_string();
        daemon.wait_ready("serving /dir", READY_TIMEOUT, || {
            https_get(addr, &url_host, "/dir", &ca_file).is_ok_and(|(code, _)| code == 200)
        })?;
        Ok(Pebble {
            daemon,
            dir: dir.to_path_buf(),
            addr,
            ca_file,
            started_in: t0.elapsed(),
        })
    }

    /// The ACME directory URL: `https://127.53.N.5:14000/dir`.
    pub fn directory_url(&self) -> String {
        format!("https://{}/dir", self.addr)
    }

    /// The CA file that makes pebble's HTTPS trusted (for REQUESTS_CA_BUNDLE, curl --cacert).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The ACME listening address.
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// pebble's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// How long the start took (CA, config, until /dir answered).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The root that signs the certificates pebble issues (from the management interface),
    /// PEM. Pebble makes a new one at every start.
    pub fn issuing_root_pem(&self) -> io::Result<String> {
        let mgmt = SocketAddrV4::new(*self.addr.ip(), MANAGEMENT_PORT);
        let (code, body) = https_get(mgmt, &self.addr.ip().to_string(), "/roots/0", &self.ca_file)?;
        if code != 200 {
            return Err(io::Error::other(format!(
                "lab: pebble /roots/0 answered {code}"
            )));
        }
        Ok(body)
    }

    /// The end of pebble's log.
    pub fn log_tail(&self, n: usize) -> String {
        self.daemon.log_tail(n)
    }

    /// Stop pebble now (also done on drop).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }
}

/// A minimal HTTPS GET, verifying the server against `ca_file`: (status, body).
pub fn https_get(
    addr: SocketAddrV4,
    host: &str,
    path: &str,
    ca_file: &Path,
) -> io::Result<(u16, String)> {
    let timeout = Duration::from_secs(5);
    let tcp = TcpStream::connect_timeout(&addr.into(), timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(io::Error::other)?;
    b.set_ca_file(ca_file).map_err(io::Error::other)?;
    let conn = b.build();
    let mut tls = conn
        .connect(host, tcp)
        .map_err(|e| io::Error::other(format!("lab: TLS to {addr}: {e}")))?;
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\nUser-Agent: dane-roll-lab\r\n\r\n",
        addr.port()
    )?;
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other(format!("lab: no HTTP status from {addr}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// The outcome of one ACME client run.
#[derive(Debug, Clone)]
pub struct ClientRun {
    /// stdout and stderr.
    pub output: String,
    /// How long it ran.
    pub elapsed: Duration,
}

fn run_client(name: &str, cmd: &mut Command) -> io::Result<ClientRun> {
    let t0 = Instant::now();
    let out = cmd.stdin(Stdio::null()).output()?;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "lab: {name} failed ({}):\n{output}",
            out.status
        )));
    }
    Ok(ClientRun {
        output,
        elapsed: t0.elapsed(),
    })
}

/// certbot against a [`Pebble`], with all its state in one directory.
#[derive(Debug, Clone)]
pub struct Certbot {
    dir: PathBuf,
    server: String,
    ca_file: PathBuf,
}

impl Certbot {
    /// certbot with config/work/logs dirs under `dir`, for `pebble` (a fresh `dir` per pebble
    /// run: pebble forgets accounts when restarted).
    pub fn new(dir: &Path, pebble: &Pebble) -> io::Result<Certbot> {
        std::fs::create_dir_all(dir)?;
        Ok(Certbot {
            dir: dir.to_path_buf(),
            server: pebble.directory_url(),
            ca_file: pebble.ca_file().to_path_buf(),
        })
    }

    /// certbot's `--config-dir` (holds `live/`, `archive/`, `renewal/`).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// `live/<cert_name>`: the symlinks to the current key and certificate.
    pub fn live_dir(&self, cert_name: &str) -> PathBuf {
        self.config_dir().join("live").join(cert_name)
    }

    /// A certbot command with the lab's directories, server and CA bundle, non-interactive.
    pub fn command(&self, subcommand: &str) -> Command {
        let mut c = Command::new(tool("certbot"));
        c.arg(subcommand)
            .arg("--config-dir")
            .arg(self.config_dir())
            .arg("--work-dir")
            .arg(self.dir.join("work"))
            .arg("--logs-dir")
            .arg(self.dir.join("logs"))
            .args(["--server", &self.server, "--non-interactive"])
            .env("REQUESTS_CA_BUNDLE", &self.ca_file);
        c
    }

    /// `certbot certonly` for `domains` (the first names the lineage) with dns-01 through a no-op
    /// manual hook, an optional `--deploy-hook`, and `extra` arguments.
    pub fn certonly(
        &self,
        domains: &[&str],
        deploy_hook: Option<&str>,
        extra: &[&str],
    ) -> io::Result<ClientRun> {
        let mut c = self.command("certonly");
        c.args([
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            "/bin/true",
            "--agree-tos",
            "--register-unsafely-without-email",
        ]);
        for d in domains {
            c.args(["-d", d]);
        }
        if let Some(h) = deploy_hook {
            c.args(["--deploy-hook", h]);
        }
        c.args(extra);
        run_client("certbot certonly", &mut c)
    }

    /// `certbot renew --cert-name NAME --no-random-sleep-on-renew` plus `extra` (e.g.
    /// `--force-renewal`, `--reuse-key`: pebble's certificates are never due).
    pub fn renew(&self, cert_name: &str, extra: &[&str]) -> io::Result<ClientRun> {
        let mut c = self.command("renew");
        c.args(["--cert-name", cert_name, "--no-random-sleep-on-renew"]);
        c.args(extra);
        run_client("certbot renew", &mut c)
    }
}

/// dehydrated against a [`Pebble`], with its config, accounts and certificates in one directory.
#[derive(Debug, Clone)]
pub struct Dehydrated {
    dir: PathBuf,
}

impl Dehydrated {
    /// Write the config and the hook (no-op for challenges; `deploy_cert` appends its arguments
    /// to [`Dehydrated::deployed_file`]) and register an account.
    pub fn new(dir: &Path, pebble: &Pebble) -> io::Result<Dehydrated> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        let d = Dehydrated {
            dir: dir.to_path_buf(),
        };
        let hook = dir.join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\n# dane-roll lab: dns-01 is always valid at pebble; record deployments\n\
                 case \"$1\" in\n  deploy_cert) shift; echo \"$*\" >> '{}' ;;\nesac\nexit 0\n",
                d.deployed_file().display()
            ),
        )?;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))?;
        let dd = dir.display();
        std::fs::write(
            d.config_file(),
            format!(
                "# dane-roll lab\nBASEDIR=\"{dd}\"\nCA=\"{}\"\nCURL_OPTS=\"--cacert {}\"\n\
                 CHALLENGETYPE=\"dns-01\"\nHOOK=\"{}\"\nCERTDIR=\"{dd}/certs\"\n\
                 ACCOUNTDIR=\"{dd}/accounts\"\nDOMAINS_TXT=\"{dd}/domains.txt\"\n\
                 LOCKFILE=\"{dd}/lock\"\nKEY_ALGO=\"prime256v1\"\nCONTACT_EMAIL=\"\"\n",
                pebble.directory_url(),
                pebble.ca_file().display(),
                hook.display()
            ),
        )?;
        std::fs::write(dir.join("domains.txt"), "")?;
        d.run(&["--register", "--accept-terms"])?;
        Ok(d)
    }

    /// The config file (`dehydrated --config`).
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// Where the hook records each `deploy_cert` call: one line per call,
    /// `<domain> <privkey> <cert> <fullchain> <chain> <timestamp>`.
    pub fn deployed_file(&self) -> PathBuf {
        self.dir.join("deployed.txt")
    }

    /// `certs/<domain>`: privkey.pem, cert.pem, fullchain.pem, chain.pem (symlinks).
    pub fn cert_dir(&self, domain: &str) -> PathBuf {
        self.dir.join("certs").join(domain)
    }

    /// Run dehydrated with the lab config and `args`.
    pub fn run(&self, args: &[&str]) -> io::Result<ClientRun> {
        let mut c = Command::new(tool("dehydrated"));
        c.arg("--config").arg(self.config_file()).args(args);
        run_client("dehydrated", &mut c)
    }

    /// `dehydrated --cron --domain D...` (one certificate for all `domains`) plus `extra`
    /// (e.g. `--force`).
    pub fn issue(&self, domains: &[&str], extra: &[&str]) -> io::Result<ClientRun> {
        let mut args = vec!["--cron", "--accept-terms"];
        for d in domains {
            args.extend(["--domain", d]);
        }
        args.extend(extra);
        self.run(&args)
    }
}
