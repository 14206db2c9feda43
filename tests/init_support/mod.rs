//! What the `init` tests share: the binary, `postconf -e`, a certbot layout on disk and the
//! lab's Postfix on it, `init` run with every discovery source pointed into a test directory,
//! its configuration tuned for the lab, and a Dovecot on the lab.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dane_roll_lab::dns::Server;
use dane_roll_lab::pki::MX_HOST;
use dane_roll_lab::world::{OWNER, World, rdata, text};

pub const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

/// The PATH the ACME clients' timers and cron lines give their hooks (`env -i BARE_PATH …`).
pub const BARE_PATH: &str = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// `postconf -c DIR -e SETTINGS…`.
pub fn postconf_e(etc: &Path, settings: &[&str]) {
    let out = Command::new("postconf")
        .arg("-c")
        .arg(etc)
        .arg("-e")
        .args(settings)
        .output()
        .unwrap();
    assert!(out.status.success(), "postconf -e: {out:?}");
}

/// A certbot layout as certbot makes it: `renewal/NAME.conf`, `archive/NAME/*1.pem`, and
/// `live/NAME/*.pem` symbolic links into the archive. Returns the live directory.
pub fn certbot_layout(le: &Path, name: &str, fullchain: &[u8], key: &[u8]) -> PathBuf {
    let archive = le.join("archive").join(name);
    let live = le.join("live").join(name);
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::create_dir_all(&live).unwrap();
    std::fs::create_dir_all(le.join("renewal")).unwrap();
    std::fs::write(archive.join("fullchain1.pem"), fullchain).unwrap();
    std::fs::write(archive.join("privkey1.pem"), key).unwrap();
    std::fs::set_permissions(
        archive.join("privkey1.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for f in ["fullchain", "privkey"] {
        std::os::unix::fs::symlink(
            format!("../../archive/{name}/{f}1.pem"),
            live.join(format!("{f}.pem")),
        )
        .unwrap();
    }
    std::fs::write(
        le.join("renewal").join(format!("{name}.conf")),
        format!(
            "# renew_before_expiry = 30 days\nversion = 2.11.0\narchive_dir = {a}\ncert = {l}/cert.pem\nprivkey = {l}/privkey.pem\nchain = {l}/chain.pem\nfullchain = {l}/fullchain.pem\n\n[renewalparams]\nauthenticator = standalone\n",
            a = archive.display(),
            l = live.display()
        ),
    )
    .unwrap();
    live
}

/// `init`'s discovery sources, each pointed into a test directory: Postfix's configuration
/// directory, and no certbot, acme.sh, dehydrated or Dovecot unless the test points one at
/// what it made.
pub struct Sources {
    pub postfix: PathBuf,
    pub letsencrypt: PathBuf,
    pub acme_sh: PathBuf,
    pub dehydrated: PathBuf,
    /// `--dehydrated-config`, if given.
    pub dehydrated_config: Option<PathBuf>,
    /// `--dovecot-config`, if given (then no `--doveconf`).
    pub dovecot_config: Option<PathBuf>,
    /// `--doveconf`, if given.
    pub doveconf: Option<PathBuf>,
}

impl Sources {
    /// Postfix in `etc`; `files/le` for certbot; acme.sh, dehydrated and `doveconf` at paths
    /// under `files` that do not exist.
    pub fn new(etc: &Path, files: &Path) -> Sources {
        Sources {
            postfix: etc.to_path_buf(),
            letsencrypt: files.join("le"),
            acme_sh: files.join("no-acme.sh"),
            dehydrated: files.join("no-dehydrated"),
            dehydrated_config: None,
            dovecot_config: None,
            doveconf: Some(files.join("no-doveconf")),
        }
    }

    /// `BIN [--state-dir STATE] -c CONF init` with these sources, standard input from
    /// /dev/null; the test adds its arguments.
    pub fn command(&self, bin: &Path, state: Option<&Path>, conf: &Path) -> Command {
        let mut cmd = Command::new(bin);
        if let Some(state) = state {
            cmd.arg("--state-dir").arg(state);
        }
        cmd.arg("-c").arg(conf).arg("init");
        match (&self.dovecot_config, &self.doveconf) {
            (Some(config), _) => {
                cmd.arg("--dovecot-config").arg(config);
            }
            (None, Some(doveconf)) => {
                cmd.arg("--doveconf").arg(doveconf);
            }
            (None, None) => {}
        }
        cmd.arg("--postfix-dir")
            .arg(&self.postfix)
            .arg("--letsencrypt-dir")
            .arg(&self.letsencrypt)
            .arg("--acme-sh-home")
            .arg(&self.acme_sh)
            .arg("--dehydrated-dir")
            .arg(&self.dehydrated);
        if let Some(config) = &self.dehydrated_config {
            cmd.arg("--dehydrated-config").arg(config);
        }
        cmd.stdin(Stdio::null());
        cmd
    }
}

/// `dane-roll -c CONF init --postfix-dir ETC …ARGS`, with every other source pointed at `files`
/// (Dovecot: no `doveconf` unless ARGS name a `--dovecot-config`).
pub fn init(conf: &Path, etc: &Path, files: &Path, extra: &[&str]) -> Output {
    let mut sources = Sources::new(etc, files);
    if extra.contains(&"--dovecot-config") {
        sources.doveconf = None;
    }
    sources
        .command(Path::new(BIN), None, conf)
        .args(extra)
        .output()
        .unwrap()
}

/// Point the lab's Postfix at the legacy pair `cert` and `key` (no `smtpd_tls_chain_files`) and
/// reload it.
pub fn postfix_on_pair(w: &World, cert: &Path, key: &Path) {
    postconf_e(
        &w.rx.instance().etc(),
        &[
            "smtpd_tls_chain_files=",
            &format!("smtpd_tls_cert_file={}", cert.display()),
            &format!("smtpd_tls_key_file={}", key.display()),
        ],
    );
    w.rx.reload_settled().unwrap();
}

/// Postfix as an operator with certbot has it: the lab's certificate in a certbot layout under
/// `files/le`, Postfix on its `live/` pair. Returns the live directory.
pub fn postfix_on_certbot(w: &World) -> PathBuf {
    let live = certbot_layout(
        &w.files.join("le"),
        MX_HOST,
        &w.old.fullchain_pem().unwrap(),
        &w.old.key.private_key_to_pem_pkcs8().unwrap(),
    );
    postfix_on_pair(w, &live.join("fullchain.pem"), &live.join("privkey.pem"));
    live
}

/// `written` (a configuration from `init`) as an operator tunes it for the lab: the primary
/// named by its address (its name is known only to the lab's resolver), and TTLs of seconds.
pub fn lab_tuned(written: &str, w: &World) -> String {
    written
        .replace(
            "server = \"ns1.example.test\"",
            &format!("server = \"{}\"", w.dns.addr(Server::Bind)),
        )
        .replace("provider = \"dns\"", "provider = \"dns\"\nttl = 2\n")
}

/// The timer's `BIN -c CONF run --wait`, under the bare environment of a timer.
pub fn bare_run_wait(bin: &Path, conf: &Path) -> Output {
    Command::new("env")
        .args(["-i", BARE_PATH])
        .arg(bin)
        .arg("-c")
        .arg(conf)
        .args(["run", "--wait"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn config_check(conf: &Path) -> Output {
    Command::new(BIN)
        .arg("-c")
        .arg(conf)
        .args(["config", "check"])
        .output()
        .unwrap()
}

/// `status --json` of `conf`.
pub fn status_json(conf: &std::path::Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("-c")
        .arg(conf)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `status --json` shows `current` (and `next`) as the stored keys, and the record of each at
/// the MX's owner name as ours.
pub fn assert_adopted(
    conf: &std::path::Path,
    current: &dane_roll_lab::pki::Leaf,
    next: Option<&str>,
) {
    let status = status_json(conf);
    let row = &status["services"][0];
    assert_eq!(
        row["keys"]["stored"]["current"].as_str(),
        Some(current.spki_sha256_hex().unwrap().as_str()),
        "{status:#}"
    );
    assert_eq!(row["keys"]["stored"]["next"].as_str(), next, "{status:#}");
    let published = row["records"]["published"].to_string().to_lowercase();
    assert!(
        published.contains(&rdata(current).to_lowercase()) && published.contains(OWNER),
        "{status:#}"
    );
}

/// A Dovecot on the lab's MX address, IMAP over TLS on port 993, with its own configuration
/// (`dovecot -c FILE`), base and state directories; stopped on drop.
pub struct LabDovecot {
    /// Its configuration file.
    pub config: PathBuf,
}

impl LabDovecot {
    /// Start it in `dir` on `ip`:993 serving `cert` and `key`.
    pub fn start(dir: &Path, ip: std::net::Ipv4Addr, cert: &Path, key: &Path) -> LabDovecot {
        for sub in ["conf.d", "run", "state"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.display();
        let config = dir.join("dovecot.conf");
        std::fs::write(
            &config,
            format!(
                "protocols = imap\nlisten = {ip}\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
                 instance_name = dovecot-lab-{ip}\nlog_path = {d}/dovecot.log\nssl = required\n\
                 ssl_cert = <{cert}\nssl_key = <{key}\n\
                 passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home=/nonexistent\n}}\n\
                 mail_location = maildir:/nonexistent\n\
                 service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    port = 993\n  }}\n}}\n\
                 !include_try conf.d/*.conf\n",
                cert = cert.display(),
                key = key.display()
            ),
        )
        .unwrap();
        // Not `output()`: the daemon it leaves keeps the pipes open.
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("start.err")).unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "dovecot: {status}: {}",
            std::fs::read_to_string(dir.join("start.err")).unwrap_or_default()
        );
        let dovecot = LabDovecot { config };
        let t0 = std::time::Instant::now();
        while std::net::TcpStream::connect((ip, 993)).is_err() {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(20),
                "dovecot does not listen on {ip}:993"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        dovecot
    }

    /// `doveconf -c FILE -h NAME`.
    pub fn get(&self, name: &str) -> String {
        let out = Command::new("doveconf")
            .arg("-c")
            .arg(&self.config)
            .args(["-h", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The SPKI SHA-256 of the certificate a new TLS session on 993 gets.
    pub fn served_spki(&self, ip: std::net::Ipv4Addr) -> String {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        let tcp = std::net::TcpStream::connect((ip, 993)).unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        tcp.set_write_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let tls = b.build().connect(MX_HOST, tcp).unwrap();
        let cert = tls.ssl().peer_certificate().unwrap();
        dane_roll_lab::pki::spki_sha256_hex(&cert).unwrap()
    }
}

impl Drop for LabDovecot {
    fn drop(&mut self) {
        let _ = Command::new("dovecot")
            .arg("-c")
            .arg(&self.config)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
