//! `dane-roll init` (issue 16): discovery against a real Postfix (`postconf -c DIR`), a certbot
//! layout made on disk, the lab's signed zone and validating resolver; the configuration it
//! writes passes `config check`; `--apply` switches the lab's MX to dane-roll's key+chain file
//! with mail from the DANE-enforcing sender Verified before, after and after `--undo`.
//!
//! The lab tests are skipped outside CI when a server is missing (`dane_roll_lab::require`).

mod init_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::pki::{KeyKind, self_signed};
use dane_roll_lab::require;
use dane_roll_lab::world::{OWNER, World, rdata, text};
use init_support::{
    BIN, Sources, assert_adopted, config_check, init, lab_tuned, postconf_e, postfix_on_certbot,
    status_json,
};

#[test]
fn init_on_a_certbot_postfix_then_apply_and_undo_keep_mail_verified() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = World::start(BIN, 2);
    let etc = w.rx.instance().etc();
    // Postfix as an operator with certbot has it: the legacy pair pointing into live/.
    let live = postfix_on_certbot(&w);
    w.assert_mail_verified("Postfix on certbot's files");
    let main_cf_before = std::fs::read_to_string(etc.join("main.cf")).unwrap();

    let conf = w.files.join("dane-roll/dane-roll.toml");
    let resolver = w.dns.resolver_addr().to_string();
    let args = ["--resolver", resolver.as_str()];
    let out = Sources::new(&etc, &w.files)
        .command(Path::new(BIN), Some(&w.state), &conf)
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
        "certbot reconfigure --cert-name mail.example.test --deploy-hook \"env DANE_ROLL_CONFIG=",
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
    // certbot's deploy hook: written (the package's is not there), 0755, for this configuration.
    let hook = w.files.join("le/renewal-hooks/deploy/dane-roll");
    let hook_text = std::fs::read_to_string(&hook).unwrap_or_default();
    assert!(
        hook_text.starts_with("#!/bin/sh\n# Written by `dane-roll init --apply`")
            && hook_text.contains("DANE_ROLL_CONFIG=${DANE_ROLL_CONFIG:-'")
            && hook_text.contains(&format!("DANE_ROLL=${{DANE_ROLL:-'{BIN}'}}")),
        "{}\n{hook_text}",
        text(&apply)
    );
    let mode = std::fs::metadata(&hook).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    // Adopted: the served key is the current key, its record ours.
    assert_adopted(&conf, &w.old, None);
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
    assert!(
        !hook.exists(),
        "--undo removes the hook it wrote: {}",
        text(&undo)
    );

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

    // A reload that succeeds but leaves Postfix without its key (here: the file it names is
    // gone): the probe after the switch sees no key, so main.cf goes back and Postfix is
    // reloaded on it.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh
grep -q dane-roll/mx.pem {etc}/main.cf && postconf -c {etc} -e smtpd_tls_chain_files={etc}/gone.pem
exec postfix -c {etc} reload
",
            etc = etc.display()
        ),
    )
    .unwrap();
    let broken = init(&conf, &etc, &w.files, &["--apply", "--resolver", &resolver]);
    let said = text(&broken);
    assert_eq!(broken.status.code(), Some(2), "{said}");
    assert!(
        said.contains("the handshake after the switch does not match"),
        "{said}"
    );
    assert!(said.contains("switched back"), "{said}");
    assert_eq!(
        std::fs::read_to_string(etc.join("main.cf")).unwrap(),
        main_cf_before
    );
    assert!(!etc.join("main.cf.dane-roll-init.bak").exists());
    w.rx.reload_settled().unwrap();
    w.assert_mail_verified("after the --apply whose probe failed");
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
    assert!(
        text(&out).contains(&format!(
            "found     {} (smtpd_tls_chain_files in",
            new_chain.display()
        )),
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

/// The whole adoption on the lab: Postfix on certbot's files, `init` with the provider's secret
/// (the lab's TSIG key) writes an active RFC 2136 provider, `--apply` switches Postfix, and the
/// first rollover (a new key through `deploy --wait`) completes with mail Verified after it.
/// Prints how long each step took.
#[test]
fn a_configuration_from_init_rolls_a_key() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = World::start(BIN, 2);
    let etc = w.rx.instance().etc();
    postfix_on_certbot(&w);
    let tsig = w.tsig_file();
    let conf = w.files.join("dane-roll.toml");
    let resolver = w.dns.resolver_addr().to_string();
    let state = w.state.display().to_string();
    let secret = tsig.display().to_string();

    let t0 = Instant::now();
    let out = init(
        &conf,
        &etc,
        &w.files,
        &["--resolver", &resolver, "--provider-secret-file", &secret],
    );
    let t_init = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The lab's primary has a name only the lab's resolver knows, and its TTLs are seconds:
    // what an operator tunes by hand after init.
    let written = std::fs::read_to_string(&conf).unwrap();
    assert!(
        written.contains("\nkind = \"rfc2136\"\nserver = \"ns1.example.test\"\n"),
        "{written}"
    );
    let tuned = lab_tuned(&written, &w).replace(
        "version = 1\n",
        &format!("version = 1\nstate-dir = \"{state}\"\n"),
    );
    std::fs::write(&conf, tuned).unwrap();
    let check = config_check(&conf);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    // The package's deploy hook is there: --apply uses it as it is.
    let hook = w.files.join("le/renewal-hooks/deploy/dane-roll");
    let package_hook = "#!/bin/sh\nexec /usr/bin/dane-roll hook certbot\n";
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, package_hook).unwrap();

    let t1 = Instant::now();
    let apply = init(&conf, &etc, &w.files, &["--apply", "--resolver", &resolver]);
    let t_apply = t1.elapsed();
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    w.assert_mail_verified("after --apply");
    assert_adopted(&conf, &w.old, None);
    assert!(
        text(&apply).contains(&format!(
            "hook     present: certbot's deploy hook {}",
            hook.display()
        )),
        "{}",
        text(&apply)
    );
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), package_hook);

    let (new, cert, key) = w.new_leaf("new");
    let t2 = Instant::now();
    let deploy = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .args(["deploy", "--service", "mx", "--wait", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    let t_roll = t2.elapsed();
    assert_eq!(deploy.status.code(), Some(0), "{}", text(&deploy));
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    let (new_rr, old_rr) = (rdata(&new), rdata(&w.old));
    w.wait_tlsa(OWNER, "the new record in, the old out", |set| {
        set.contains(&new_rr) && !set.contains(&old_rr)
    });
    w.assert_mail_verified("after the first rollover");
    // The adopted record of the old key was ours: the rollover retired it.
    let status = status_json(&conf);
    let published = status["services"][0]["records"]["published"].to_string();
    assert!(
        !published.to_lowercase().contains(&old_rr.to_lowercase()),
        "{published}"
    );
    eprintln!(
        "init {:.2} s, init --apply {:.2} s, first rollover (TTL 2 s) {:.2} s",
        t_init.as_secs_f64(),
        t_apply.as_secs_f64(),
        t_roll.as_secs_f64()
    );
}

/// A value the format refuses (here a service name with a space) never reaches a written file:
/// init stops with the configuration's own error (exit 2), and `--print` prints it with a
/// warning (exit 1).
#[test]
fn a_configuration_that_would_not_load_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dane-roll.toml");
    let etc = dir.path().join("no-postfix");
    let out = init(&conf, &etc, dir.path(), &["--service", "BAD NAME"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("does not load") && text(&out).contains("service name \"BAD NAME\""),
        "{}",
        text(&out)
    );
    assert!(!conf.exists());
    let printed = init(
        &conf,
        &etc,
        dir.path(),
        &["--service", "BAD NAME", "--print"],
    );
    assert_eq!(printed.status.code(), Some(1), "{}", text(&printed));
    assert!(String::from_utf8_lossy(&printed.stdout).contains("name = \"BAD NAME\""));
    assert!(!conf.exists());
}
