//! `dane-roll init` with Dovecot (issue 16): Debian's dovecot-imapd on the lab's MX address,
//! IMAP over TLS on port 993, on the same certbot files as Postfix.

mod init_support;

use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::require;
use dane_roll_lab::world::{World, text};
use std::process::Command;

use init_support::{BIN, LabDovecot, config_check, init, postfix_on_certbot};

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
    let live = postfix_on_certbot(&w);
    let (cert, key) = (live.join("fullchain.pem"), live.join("privkey.pem"));
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
    // Dovecot's reload is the second command of the list, not one `sh -c` line.
    let reload = format!(
        "reload = [[\"postfix\", \"-c\", \"{}\", \"reload\"], [\"doveadm\", \"-c\", \"{dconf}\", \"reload\"]]",
        etc.display()
    );
    assert!(written.contains(&reload), "{written}");
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
    // An smtpd started while the probe key was in the file may still be idle: let it go.
    w.rx.reload_settled().unwrap();
    w.assert_mail_verified("after --undo with Dovecot");
}
