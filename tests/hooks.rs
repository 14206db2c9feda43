//! `dane-roll hook certbot|acme.sh|dehydrated` through the binary, without servers (issue 6):
//! which service and files each client's environment or arguments become (printed with `-v`
//! before the driver runs), the refusals (unknown lineage, missing variables, short arguments)
//! with their exit codes and wording, and dehydrated's other events answered with exit 0 and no
//! output even when the configuration is broken.
//!
//! The driver is given files that are not certificates, so it stops at once after the request
//! was made: the rollover itself is tested in tests/acme.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

/// A configuration with two services (no server behind it: nothing here reaches DNS).
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("dane-roll.toml");
    std::fs::write(
        &path,
        format!(
            r#"version = 1
state-dir = "{d}/state"

[resolver]
address = "127.0.0.1:9"

[[service]]
name = "mx"
lineage = "mail.example.test"
domains = ["mail.example.test", "smtp.example.test"]
endpoints = ["mail.example.test:25/smtp"]
chain-file = "{d}/mx.pem"
ttl = 2
provider = "dns"

[[service]]
name = "mx2"
domains = ["mx2.example.test"]
endpoints = ["mx2.example.test:25/smtp"]
chain-file = "{d}/mx2.pem"
ttl = 2
provider = "dns"

[provider.dns]
kind = "rfc2136"
server = "127.0.0.1:9"
tsig-env = "DANE_ROLL_TEST_TSIG"
"#,
            d = dir.display()
        ),
    )
    .unwrap();
    path
}

/// Files with these names in `dir`, holding something that is not a certificate.
fn files(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for n in names {
        std::fs::write(dir.join(n), "not a certificate\n").unwrap();
    }
}

fn hook(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DANE_ROLL_CONFIG", config)
        .arg("-v")
        .arg("hook")
        .args(args)
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line `-v` prints for the request the hook made.
fn request_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains(": service "))
        .unwrap_or_else(|| panic!("no request line in:\n{stderr}"))
}

#[test]
fn certbot_lineage_and_domains_find_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let live = dir.path().join("live/mail.example.test");
    files(
        &live,
        &["privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"],
    );
    let out = hook(
        &conf,
        &["certbot"],
        &[
            ("RENEWED_LINEAGE", live.to_str().unwrap()),
            ("RENEWED_DOMAINS", "mail.example.test smtp.example.test"),
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(
        request_line(&stderr),
        format!(
            "dane-roll hook certbot: service mx, certificate {l}/fullchain.pem, key {l}/privkey.pem",
            l = live.display()
        )
    );
    // The driver refuses the fake files: exit 2, the reason, and how to run the hook again.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("did not go through; the mail server keeps its previous certificate"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "run the hook again once fixed:\n    RENEWED_LINEAGE={} RENEWED_DOMAINS='mail.example.test smtp.example.test' dane-roll hook certbot",
            live.display()
        )),
        "{stderr}"
    );

    // A lineage no service names: found by its domains.
    let other = dir.path().join("live/mx2-0001");
    files(&other, &["privkey.pem", "fullchain.pem"]);
    let out = hook(
        &conf,
        &["certbot", "--wait"],
        &[
            ("RENEWED_LINEAGE", other.to_str().unwrap()),
            ("RENEWED_DOMAINS", "mx2.example.test"),
        ],
    );
    let (_, stderr) = text(&out);
    assert!(
        request_line(&stderr).starts_with("dane-roll hook certbot: service mx2, "),
        "{stderr}"
    );
}

#[test]
fn certbot_unknown_lineage_fails_naming_it_and_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let live = dir.path().join("live/www.example.org");
    files(&live, &["privkey.pem", "fullchain.pem"]);
    let out = hook(
        &conf,
        &["certbot"],
        &[
            ("RENEWED_LINEAGE", live.to_str().unwrap()),
            ("RENEWED_DOMAINS", "www.example.org"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    for want in [
        live.to_str().unwrap(),
        conf.to_str().unwrap(),
        "lineage = \"www.example.org\"",
        "no TLSA record was published for it and it was not installed",
        "run the hook again",
    ] {
        assert!(stderr.contains(want), "{want:?} missing from:\n{stderr}");
    }
    assert!(
        !dir.path().join("state").exists(),
        "nothing recorded for an unknown lineage"
    );
}

#[test]
fn missing_variables_name_the_variable_and_the_hook_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let out = hook(&conf, &["certbot"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("RENEWED_LINEAGE is not set"), "{stderr}");
    assert!(
        stderr.contains("--deploy-hook \"dane-roll hook certbot\""),
        "{stderr}"
    );

    let out = hook(&conf, &["acme.sh"], &[("CERT_KEY_PATH", "/k")]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("Le_Domain is not set"), "{stderr}");
    assert!(
        stderr.contains("--reloadcmd \"dane-roll hook acme.sh\""),
        "{stderr}"
    );
}

#[test]
fn acme_sh_with_and_without_next_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let d = dir.path().join(".acme.sh/mail.example.test_ecc");
    files(
        &d,
        &[
            "mail.example.test.key",
            "mail.example.test.cer",
            "ca.cer",
            "fullchain.cer",
        ],
    );
    let key = d.join("mail.example.test.key");
    let env = |extra: &[(&'static str, String)]| {
        let mut v: Vec<(&'static str, String)> = vec![
            ("Le_Domain", "mail.example.test".into()),
            (
                "CERT_PATH",
                d.join("mail.example.test.cer").display().to_string(),
            ),
            ("CERT_KEY_PATH", key.display().to_string()),
            ("CA_CERT_PATH", d.join("ca.cer").display().to_string()),
            (
                "CERT_FULLCHAIN_PATH",
                d.join("fullchain.cer").display().to_string(),
            ),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let run = |pairs: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = hook(&conf, &["acme.sh"], &pairs);
        let (_, stderr) = text(&out);
        request_line(&stderr).to_owned()
    };
    let line = run(env(&[]));
    assert_eq!(
        line,
        format!(
            "dane-roll hook acme.sh: service mx, certificate {}, key {}",
            d.join("fullchain.cer").display(),
            key.display()
        )
    );
    files(&d, &["mail.example.test.key.next"]);
    let next = d.join("mail.example.test.key.next");
    let line = run(env(&[
        ("Le_ForceNewDomainKey", "1".into()),
        ("Le_Next_Domain_Key", next.display().to_string()),
    ]));
    assert!(
        line.ends_with(&format!(", next key {}", next.display())),
        "{line}"
    );
    // Without --always-force-new-domain-key a leftover .next is not acme.sh's next key.
    let line = run(env(&[("Le_ForceNewDomainKey", String::new())]));
    assert!(!line.contains("next key"), "{line}");
}

#[test]
fn dehydrated_deploy_cert_with_and_without_roll_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let certs = dir.path().join("certs/mail.example.test");
    files(
        &certs,
        &["privkey.pem", "cert.pem", "fullchain.pem", "chain.pem"],
    );
    let arg = |f: &str| certs.join(f).display().to_string();
    let args = [
        "dehydrated".to_owned(),
        "deploy_cert".to_owned(),
        "mail.example.test".to_owned(),
        arg("privkey.pem"),
        arg("cert.pem"),
        arg("fullchain.pem"),
        arg("chain.pem"),
        "1700000000".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = hook(&conf, &args, &[]);
    let (_, stderr) = text(&out);
    assert_eq!(
        request_line(&stderr),
        format!(
            "dane-roll hook dehydrated: service mx, certificate {}, key {}",
            arg("fullchain.pem"),
            arg("privkey.pem")
        )
    );
    assert_eq!(out.status.code(), Some(2), "fake files: {stderr}");
    assert!(
        stderr.contains("\n    dane-roll hook dehydrated deploy_cert mail.example.test"),
        "{stderr}"
    );

    files(&certs, &["privkey.roll.pem"]);
    let out = hook(&conf, &args, &[]);
    let (_, stderr) = text(&out);
    assert!(
        request_line(&stderr).ends_with(&format!(", next key {}", arg("privkey.roll.pem"))),
        "{stderr}"
    );
}

#[test]
fn dehydrated_other_events_exit_0_silently_even_with_a_broken_config() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "this is = not [valid").unwrap();
    for args in [
        &["startup_hook"][..],
        &["deploy_challenge", "mail.example.test", "token", "value"],
        &["clean_challenge", "mail.example.test", "token", "value"],
        &[
            "generate_csr",
            "mail.example.test",
            "/certs/x",
            "/certs/x/alt",
        ],
        &[
            "unchanged_cert",
            "mail.example.test",
            "/k",
            "/c",
            "/f",
            "/ch",
        ],
        &["exit_hook"],
        &["some_future_event", "--with", "-args"],
        &[],
    ] {
        let mut all = vec!["dehydrated"];
        all.extend_from_slice(args);
        let out = Command::new(BIN)
            .env("DANE_ROLL_CONFIG", &broken)
            .arg("hook")
            .args(&all)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout:?}");
        assert!(stderr.is_empty(), "{args:?} printed {stderr:?}");
    }
    // deploy_cert does read the configuration, and says so when it cannot.
    let out = Command::new(BIN)
        .env("DANE_ROLL_CONFIG", &broken)
        .args([
            "hook",
            "dehydrated",
            "deploy_cert",
            "d",
            "/k",
            "/c",
            "/f",
            "/ch",
            "1",
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("The new certificate (dehydrated's certificate for d) was neither published nor installed"),
        "{stderr}"
    );
    assert!(stderr.contains(broken.to_str().unwrap()), "{stderr}");
}

#[test]
fn dehydrated_short_deploy_cert_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let out = hook(
        &conf,
        &["dehydrated", "deploy_cert", "mail.example.test"],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("deploy_cert needs at least DOMAIN KEYFILE CERTFILE FULLCHAINFILE"),
        "{stderr}"
    );
}

#[test]
fn hook_service_option_overrides_the_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let live = dir.path().join("live/anything");
    files(&live, &["privkey.pem", "fullchain.pem"]);
    let lineage = ("RENEWED_LINEAGE", live.to_str().unwrap());
    let out = hook(&conf, &["certbot", "--service", "mx2"], &[lineage]);
    let (_, stderr) = text(&out);
    assert!(
        request_line(&stderr).starts_with("dane-roll hook certbot: service mx2, "),
        "{stderr}"
    );
    let out = hook(&conf, &["certbot", "--service", "nope"], &[lineage]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no service \"nope\""), "{stderr}");
    assert!(stderr.contains("the services are: mx, mx2"), "{stderr}");
}

#[test]
fn rotate_refuses_services_without_a_certbot_lineage_and_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .args(["rotate", "mx2"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    for want in [
        "service mx2 has no certbot `lineage`",
        "acme.sh --renew -d DOMAIN --force",
        "dehydrated --cron --force --domain DOMAIN",
    ] {
        assert!(stderr.contains(want), "{want:?} missing:\n{stderr}");
    }
    // A certbot service without a published next key: nothing staged, said what to do.
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .args(["rotate", "mx"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("has no published next key; publish one with `dane-roll next-key mx`"),
        "{stderr}"
    );
}

/// A certbot config directory with a lineage `name` whose certificate is for `names`.
fn certbot_lineage(config_dir: &Path, name: &str, names: &[&str]) {
    let leaf =
        dane_roll_lab::pki::self_signed(names, dane_roll_lab::pki::KeyKind::EcdsaP256).unwrap();
    let live = config_dir.join("live").join(name);
    std::fs::create_dir_all(&live).unwrap();
    std::fs::write(live.join("cert.pem"), leaf.cert.to_pem().unwrap()).unwrap();
}

/// Issue 16: `rotate` with `domains` alone derives the certbot lineage whose certificate shares
/// the most names with them; when none (or several) fit it says which `lineage = "…"` to add.
#[test]
fn rotate_derives_the_lineage_from_domains_or_says_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let le = dir.path().join("le");
    certbot_lineage(&le, "www.example.test", &["www.example.test"]);
    let rotate = || {
        Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .args(["rotate", "mx2"])
            .arg(format!("--certbot-arg=--config-dir={}", le.display()))
            .output()
            .unwrap()
    };
    // No lineage is for mx2.example.test: the ones certbot has, as lines to add.
    let out = rotate();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for want in [
        "service mx2 has no certbot `lineage`",
        "none of certbot's lineages",
        "(www.example.test) is for its domains (mx2.example.test)",
        "add lineage = \"www.example.test\" to its [[service]]",
    ] {
        assert!(stderr.contains(want), "{want:?} missing:\n{stderr}");
    }

    // Two lineages for it equally: both named, none taken.
    certbot_lineage(&le, "a", &["mx2.example.test"]);
    certbot_lineage(&le, "b", &["mx2.example.test", "www.example.test"]);
    let out = rotate();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("several of certbot's lineages are for its domains equally (a, b)")
            && stderr.contains("add lineage = \"a\" or lineage = \"b\""),
        "{stderr}"
    );

    // One: derived (and said), then the next step's refusal (no next key published here).
    std::fs::remove_dir_all(le.join("live/b")).unwrap();
    let out = rotate();
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains(&format!(
            "certbot's lineage {} is for its domains",
            le.join("live/a").display()
        )),
        "{stdout}{stderr}"
    );
    assert!(stderr.contains("has no published next key"), "{stderr}");

    // A service whose files are another client's: no certbot lineage is looked for.
    let other = dir.path().join("other.toml");
    let text_of = std::fs::read_to_string(&conf).unwrap().replace(
        "name = \"mx2\"\n",
        "name = \"mx2\"\nacme-source = { client = \"none\" }\n",
    );
    std::fs::write(&other, text_of).unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&other)
        .args(["rotate", "mx2"])
        .arg(format!("--certbot-arg=--config-dir={}", le.display()))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("its `acme-source` is not certbot's") && !stdout.contains("is for its"),
        "{stdout}{stderr}"
    );
}

/// Run hooks/certbot-deploy-hook.sh copied to `at`, as certbot runs it (`/bin/sh`, a bare
/// environment), with dane-roll's log going to `log`.
fn certbot_shim(at: &Path, config: &Path, log: &Path, env: &[(&str, &str)]) -> Output {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/hooks/certbot-deploy-hook.sh"),
        at,
    )
    .unwrap();
    Command::new("/bin/sh")
        .arg(at)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DANE_ROLL", BIN)
        .env("DANE_ROLL_CONFIG", config)
        .env("DANE_ROLL_HOOK_LOG", log)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The package installs the shim as /etc/letsencrypt/renewal-hooks/deploy/dane-roll, where certbot
/// runs it for every lineage it renews: a lineage no service is for (a web server's) is skipped
/// with one line and exit 0, and so is every lineage before a configuration exists. Run as a
/// lineage's own `--deploy-hook`, the shim still fails on a lineage no service is for.
#[test]
fn certbot_directory_hook_skips_a_lineage_no_service_is_for() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let log = dir.path().join("hook.log");
    let live = dir.path().join("live/www.example.org");
    files(&live, &["privkey.pem", "fullchain.pem"]);
    let certbot_env = [
        ("RENEWED_LINEAGE", live.to_str().unwrap()),
        ("RENEWED_DOMAINS", "www.example.org"),
    ];
    let in_dir = dir.path().join("le/renewal-hooks/deploy/dane-roll");

    let out = certbot_shim(&in_dir, &conf, &log, &certbot_env);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    for want in [live.to_str().unwrap(), "is for no service", "skipped"] {
        assert!(stderr.contains(want), "{want:?} missing from:\n{stderr}");
    }
    assert!(
        !dir.path().join("state").exists(),
        "nothing recorded for a lineage no service is for"
    );

    // The lineage of a service is still handed over (the fake files then stop the driver).
    let mail = dir.path().join("live/mail.example.test");
    files(&mail, &["privkey.pem", "fullchain.pem"]);
    let out = certbot_shim(
        &in_dir,
        &conf,
        &log,
        &[("RENEWED_LINEAGE", mail.to_str().unwrap())],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rollover of service mx"), "{stderr}");

    // No configuration yet (the package is installed, dane-roll not set up): skipped too.
    let none = dir.path().join("missing.toml");
    let out = certbot_shim(&in_dir, &none, &log, &certbot_env);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    assert!(stderr.contains(none.to_str().unwrap()), "{stderr}");

    // dane-roll removed, the hook left behind as a conffile: skipped too.
    let out = Command::new("/bin/sh")
        .arg(&in_dir)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DANE_ROLL", dir.path().join("gone/dane-roll"))
        .env("DANE_ROLL_CONFIG", &conf)
        .env("DANE_ROLL_HOOK_LOG", &log)
        .envs(certbot_env)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is not installed"), "{stderr}");

    // A lineage's own deploy hook: the unknown lineage is an error, as from `dane-roll hook`.
    let own = dir.path().join("bin/certbot-deploy-hook.sh");
    let out = certbot_shim(&own, &conf, &log, &certbot_env);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lineage = \"www.example.org\""), "{stderr}");
}
