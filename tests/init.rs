//! `dane-roll init` (issue 16): discovery against a real Postfix (`postconf -c DIR`), a certbot
//! layout made on disk, the lab's signed zone and validating resolver; the configuration it
//! writes passes `config check`; `--apply` switches the lab's MX to dane-roll's key+chain file
//! with mail from the DANE-enforcing sender Verified before, after and after `--undo`.
//!
//! The lab tests are skipped outside CI when a server is missing (`dane_roll_lab::require`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::pki::{KeyKind, MX_HOST, self_signed};
use dane_roll_lab::require;
use dane_roll_lab::world::{World, text};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

/// `postconf -c DIR -e SETTINGS…`.
fn postconf_e(etc: &Path, settings: &[&str]) {
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
fn certbot_layout(le: &Path, name: &str, fullchain: &[u8], key: &[u8]) -> PathBuf {
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
fn init(conf: &Path, etc: &Path, files: &Path, extra: &[&str]) -> Output {
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

fn config_check(conf: &Path) -> Output {
    Command::new(BIN)
        .arg("-c")
        .arg(conf)
        .args(["config", "check"])
        .output()
        .unwrap()
}

#[test]
fn init_on_a_certbot_postfix_then_apply_and_undo_keep_mail_verified() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = World::start(BIN, 2);
    let etc = w.rx.instance().etc();
    // Postfix as an operator with certbot has it: the legacy pair pointing into live/.
    let live = certbot_layout(
        &w.files.join("le"),
        MX_HOST,
        &w.old.fullchain_pem().unwrap(),
        &w.old.key.private_key_to_pem_pkcs8().unwrap(),
    );
    let cert = format!(
        "smtpd_tls_cert_file={}",
        live.join("fullchain.pem").display()
    );
    let key = format!("smtpd_tls_key_file={}", live.join("privkey.pem").display());
    postconf_e(&etc, &["smtpd_tls_chain_files=", &cert, &key]);
    w.rx.reload_settled().unwrap();
    w.assert_mail_verified("Postfix on certbot's files");
    let main_cf_before = std::fs::read_to_string(etc.join("main.cf")).unwrap();

    let conf = w.files.join("dane-roll/dane-roll.toml");
    let resolver = w.dns.resolver_addr().to_string();
    let state = w.state.display().to_string();
    let args = ["--resolver", resolver.as_str()];
    let out = Command::new(BIN)
        .arg("--state-dir")
        .arg(&state)
        .arg("-c")
        .arg(&conf)
        .arg("init")
        .arg("--doveconf")
        .arg(w.files.join("no-doveconf"))
        .arg("--postfix-dir")
        .arg(&etc)
        .arg("--letsencrypt-dir")
        .arg(w.files.join("le"))
        .arg("--acme-sh-home")
        .arg(w.files.join("no-acme.sh"))
        .arg("--dehydrated-dir")
        .arg(w.files.join("no-dehydrated"))
        .args(args)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for want in [
        "postfix   found",
        "smtpd_tls_cert_file/smtpd_tls_key_file",
        "acme      found     certbot certificate mail.example.test",
        "zone      found     example.test",
        "validates DNSSEC",
        "matches the live key",
        &format!("wrote {}", conf.display()),
    ] {
        assert!(said.contains(want), "missing {want:?} in\n{said}");
    }
    let written = std::fs::read_to_string(&conf).unwrap();
    assert!(
        written.contains(&format!("lineage = \"{}\"", live.display())),
        "{written}"
    );
    assert!(
        written.contains("endpoints = [\"mail.example.test:25/smtp\"]"),
        "{written}"
    );
    assert!(written.contains("zone = \"example.test\""), "{written}");
    assert!(written.contains("kind = \"manual\""), "{written}");
    assert!(written.contains("# kind = \"rfc2136\""), "{written}");
    let check = config_check(&conf);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    // Discovery changed nothing.
    assert_eq!(
        std::fs::read_to_string(etc.join("main.cf")).unwrap(),
        main_cf_before
    );

    // Never over an existing configuration.
    let again = init(&conf, &etc, &w.files, &args);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("never overwrites"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), written);

    // --apply: Postfix reads dane-roll's file; mail stays Verified.
    let apply = init(&conf, &etc, &w.files, &["--apply", "--resolver", &resolver]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let chain_file = etc.join("dane-roll/mx.pem");
    let main_cf = std::fs::read_to_string(etc.join("main.cf")).unwrap();
    assert!(
        main_cf.contains(&format!("smtpd_tls_chain_files = {}", chain_file.display())),
        "{main_cf}"
    );
    let mode = std::fs::metadata(&chain_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after init --apply");
    // A second --apply is refused: the backup is there.
    let twice = init(&conf, &etc, &w.files, &["--apply", "--resolver", &resolver]);
    assert_eq!(twice.status.code(), Some(2), "{}", text(&twice));
    assert!(
        text(&twice).contains("switched already"),
        "{}",
        text(&twice)
    );

    // --undo: main.cf as it was.
    let undo = init(&conf, &etc, &w.files, &["--undo"]);
    assert_eq!(undo.status.code(), Some(0), "{}", text(&undo));
    assert_eq!(
        std::fs::read_to_string(etc.join("main.cf")).unwrap(),
        main_cf_before
    );
    w.assert_mail_verified("after init --undo");

    // A reload that fails on the switched main.cf (as Postfix's would on a file it cannot
    // read): main.cf goes back, Postfix is reloaded on it, nothing is left switched.
    let script = w.files.join("reload.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh
grep -q dane-roll/mx.pem {etc}/main.cf && {{ echo 'fatal: cannot load the key' >&2; exit 1; }}
exec postfix -c {etc} reload
",
            etc = etc.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let reload_line = format!(
        "reload = [\"postfix\", \"-c\", \"{}\", \"reload\"]",
        etc.display()
    );
    assert!(written.contains(&reload_line), "{written}");
    std::fs::write(
        &conf,
        written.replace(
            &reload_line,
            &format!("reload = [\"{}\"]", script.display()),
        ),
    )
    .unwrap();
    let failed = init(&conf, &etc, &w.files, &["--apply", "--resolver", &resolver]);
    assert_eq!(failed.status.code(), Some(2), "{}", text(&failed));
    assert!(
        text(&failed).contains("cannot load the key"),
        "{}",
        text(&failed)
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("main.cf")).unwrap(),
        main_cf_before
    );
    assert!(!etc.join("main.cf.dane-roll-init.bak").exists());
    w.assert_mail_verified("after the --apply whose reload failed");
}

#[test]
fn apply_refuses_when_postfix_serves_another_key_than_its_files_hold() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = World::start(BIN, 2);
    // Postfix's files hold a new key (a renewal written, Postfix not reloaded: its record is not
    // in DNS, so switching and reloading would break DANE) while the MX serves the old one. So
    // that no fresh smtpd picks the new file up during the test, the files init reads are those
    // of a copy of the receiver's configuration directory naming the new key.
    let etc = w.files.join("postfix-renewed");
    std::fs::create_dir_all(&etc).unwrap();
    for f in ["main.cf", "master.cf"] {
        std::fs::copy(w.rx.instance().etc().join(f), etc.join(f)).unwrap();
    }
    let (new, _, _) = w.new_leaf("new");
    let new_chain = w.files.join("new-chain.pem");
    std::fs::write(&new_chain, new.key_and_chain_pem().unwrap()).unwrap();
    postconf_e(
        &etc,
        &[&format!("smtpd_tls_chain_files={}", new_chain.display())],
    );
    let conf = w.files.join("dane-roll.toml");
    let resolver = w.dns.resolver_addr().to_string();
    let out = init(&conf, &etc, &w.files, &["--resolver", &resolver]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("matches nothing known"),
        "{}",
        text(&out)
    );
    let main_cf_before = std::fs::read_to_string(etc.join("main.cf")).unwrap();
    let apply = init(&conf, &etc, &w.files, &["--apply", "--resolver", &resolver]);
    assert_eq!(apply.status.code(), Some(2), "{}", text(&apply));
    assert!(
        text(&apply).contains("does not serve the key in its files"),
        "{}",
        text(&apply)
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("main.cf")).unwrap(),
        main_cf_before
    );
    assert!(!etc.join("main.cf.dane-roll-init.bak").exists());
    assert!(!etc.join("dane-roll/mx.pem").exists());
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after the refused --apply");
}

/// Debian's snakeoil layout, no DNS: discovery says what it could not find, the configuration
/// still passes `config check`, and an --apply whose reload fails puts main.cf back.
#[test]
fn snakeoil_postfix_without_dns_and_a_failed_reload_is_undone() {
    if !require(&["postconf"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path();
    let etc = files.join("postfix");
    std::fs::create_dir_all(&etc).unwrap();
    let leaf = self_signed(&["mx1.example.org"], KeyKind::EcdsaP256).unwrap();
    let cert = files.join("ssl-cert-snakeoil.pem");
    let key = files.join("ssl-cert-snakeoil.key");
    std::fs::write(&cert, leaf.fullchain_pem().unwrap()).unwrap();
    std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let main_cf = format!(
        "myhostname = mx1.example.org\nmydomain = example.org\nsmtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nsmtpd_tls_security_level = may\n",
        cert.display(),
        key.display()
    );
    std::fs::write(etc.join("main.cf"), &main_cf).unwrap();
    let conf = files.join("conf/dane-roll.toml");
    // A resolver that answers nothing: every lookup fails fast.
    let no_dns = ["--resolver", "127.0.0.1:9"];
    let out = init(&conf, &etc, files, &no_dns);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for want in [
        "postfix   found",
        "ssl-cert-snakeoil.pem + ",
        "acme      NOT FOUND",
        "mx        guessed   endpoint mx1.example.org:25",
        "zone      NOT FOUND DNS not asked",
    ] {
        assert!(said.contains(want), "missing {want:?} in\n{said}");
    }
    let written = std::fs::read_to_string(&conf).unwrap();
    assert!(
        written.contains("acme-source = { client = \"none\" }"),
        "{written}"
    );
    assert!(written.contains("kind = \"manual\""), "{written}");
    let check = config_check(&conf);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    // --print writes nothing and prints the same configuration.
    let printed = init(
        &files.join("other.toml"),
        &etc,
        files,
        &["--print", "--resolver", "127.0.0.1:9"],
    );
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed));
    assert_eq!(String::from_utf8_lossy(&printed.stdout), written);
    assert!(!files.join("other.toml").exists());

    // No MX answers here, so the probe before the switch cannot run: refused, nothing changed.
    let apply = init(
        &conf,
        &etc,
        files,
        &["--apply", "--resolver", "127.0.0.1:9"],
    );
    assert_eq!(apply.status.code(), Some(2), "{}", text(&apply));
    assert_eq!(
        std::fs::read_to_string(etc.join("main.cf")).unwrap(),
        main_cf
    );
    assert!(!etc.join("main.cf.dane-roll-init.bak").exists());
    // --undo without a backup: refused, nothing changed.
    let undo = init(&conf, &etc, files, &["--undo"]);
    assert_eq!(undo.status.code(), Some(2), "{}", text(&undo));
    assert!(text(&undo).contains("nothing to undo"), "{}", text(&undo));
}

/// A Dovecot on the lab's MX address, IMAP over TLS on port 993, with its own configuration
/// (`dovecot -c FILE`), base and state directories; stopped on drop.
struct LabDovecot {
    config: PathBuf,
}

impl LabDovecot {
    fn start(dir: &Path, ip: std::net::Ipv4Addr, cert: &Path, key: &Path) -> LabDovecot {
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
    fn get(&self, name: &str) -> String {
        let out = Command::new("doveconf")
            .arg("-c")
            .arg(&self.config)
            .args(["-h", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The SPKI SHA-256 of the certificate a new TLS session on 993 gets.
    fn served_spki(&self, ip: std::net::Ipv4Addr) -> String {
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

/// Postfix and Dovecot (Debian's dovecot-imapd) both on certbot's files: init finds Dovecot by
/// `doveconf`, adds IMAP on 993 and Dovecot's reload, and --apply switches both to the one
/// key+chain file (Dovecot through a conf.d drop-in), mail Verified; --undo removes the drop-in.
#[test]
fn init_apply_switches_postfix_and_dovecot_together() {
    let mut tools = rollover_tools(true);
    tools.extend(["dovecot", "doveconf", "doveadm"]);
    if !require(&tools) {
        return;
    }
    let w = World::start(BIN, 2);
    let etc = w.rx.instance().etc();
    let ip = *w.rx.addr().ip();
    let live = certbot_layout(
        &w.files.join("le"),
        MX_HOST,
        &w.old.fullchain_pem().unwrap(),
        &w.old.key.private_key_to_pem_pkcs8().unwrap(),
    );
    let (cert, key) = (live.join("fullchain.pem"), live.join("privkey.pem"));
    postconf_e(
        &etc,
        &[
            "smtpd_tls_chain_files=",
            &format!("smtpd_tls_cert_file={}", cert.display()),
            &format!("smtpd_tls_key_file={}", key.display()),
        ],
    );
    w.rx.reload_settled().unwrap();
    let dovecot = LabDovecot::start(&w.files.join("dovecot"), ip, &cert, &key);
    let old_spki = w.old.spki_sha256_hex().unwrap();
    assert_eq!(dovecot.served_spki(ip), old_spki);

    let conf = w.files.join("dane-roll.toml");
    let resolver = w.dns.resolver_addr().to_string();
    let dconf = dovecot.config.display().to_string();
    let args = [
        "--resolver",
        resolver.as_str(),
        "--dovecot-config",
        dconf.as_str(),
    ];
    let out = init(&conf, &etc, &w.files, &args);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("dovecot   found"), "{said}");
    let written = std::fs::read_to_string(&conf).unwrap();
    assert!(
        written.contains("\"mail.example.test:25/smtp\", \"mail.example.test:993/tls\""),
        "{written}"
    );
    assert!(written.contains("'doveadm' '-c'"), "{written}");
    let check = config_check(&conf);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    let mut apply_args = args.to_vec();
    apply_args.push("--apply");
    let apply = init(&conf, &etc, &w.files, &apply_args);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let chain_file = etc.join("dane-roll/mx.pem");
    let want = format!("<{}", chain_file.display());
    assert_eq!(dovecot.get("ssl_cert"), want);
    assert_eq!(dovecot.get("ssl_key"), want);
    w.assert_mail_verified("after --apply with Dovecot");
    assert_eq!(dovecot.served_spki(ip), old_spki);

    // Dovecot really reads the key+chain file: a new key there and a reload, and 993 serves it.
    let (new, _, _) = w.new_leaf("probe");
    std::fs::write(&chain_file, new.key_and_chain_pem().unwrap()).unwrap();
    let reload = Command::new("doveadm")
        .arg("-c")
        .arg(&dovecot.config)
        .arg("reload")
        .output()
        .unwrap();
    assert!(reload.status.success(), "{reload:?}");
    let new_spki = new.spki_sha256_hex().unwrap();
    let t0 = std::time::Instant::now();
    while dovecot.served_spki(ip) != new_spki {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "Dovecot never served the new key"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::fs::write(&chain_file, w.old.key_and_chain_pem().unwrap()).unwrap();

    let mut undo_args = vec!["--dovecot-config", dconf.as_str()];
    undo_args.push("--undo");
    let undo = init(&conf, &etc, &w.files, &undo_args);
    assert_eq!(undo.status.code(), Some(0), "{}", text(&undo));
    assert!(!w.files.join("dovecot/conf.d/99-dane-roll.conf").exists());
    assert_eq!(dovecot.get("ssl_cert"), format!("<{}", cert.display()));
    let t0 = std::time::Instant::now();
    while dovecot.served_spki(ip) != old_spki {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "Dovecot never went back"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    w.assert_mail_verified("after --undo with Dovecot");
}
