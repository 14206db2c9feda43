//! What the `init` tests share: the binary, `postconf -e`, a certbot layout on disk, `init` run
//! with every discovery source pointed into a test directory, and a Dovecot on the lab.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dane_roll_lab::pki::MX_HOST;
use dane_roll_lab::world::{OWNER, rdata, text};

pub const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

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

/// `dane-roll -c CONF init --postfix-dir ETC …ARGS`, with every other source pointed at `files`
/// (Dovecot: no `doveconf` unless ARGS name a `--dovecot-config`).
pub fn init(conf: &Path, etc: &Path, files: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("-c").arg(conf).arg("init");
    if !extra.contains(&"--dovecot-config") {
        cmd.arg("--doveconf").arg(files.join("no-doveconf"));
    }
    cmd.arg("--postfix-dir")
        .arg(etc)
        .arg("--letsencrypt-dir")
        .arg(files.join("le"))
        .arg("--acme-sh-home")
        .arg(files.join("no-acme.sh"))
        .arg("--dehydrated-dir")
        .arg(files.join("no-dehydrated"))
        .args(extra)
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
