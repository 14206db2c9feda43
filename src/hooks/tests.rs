//! Unit tests of the hooks: environments and arguments in, deploy requests (or errors) out, with
//! a fake file system.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::*;
use crate::config::Config;
use crate::config::test_toml::rfc2136_provider;

const CONFIG: &str = concat!(
    r#"
[resolver]
address = "127.0.0.1"

[[service]]
name = "mx"
lineage = "mail.example.com"
domains = ["mail.example.com", "smtp.example.com"]
endpoints = ["mail.example.com:25/smtp"]
chain-file = "/etc/postfix/mx.pem"
provider = "dns"

[[service]]
name = "mx-ec"
lineage = "/etc/letsencrypt/live/mail-ec"
domains = ["mx2.example.com"]
endpoints = ["mx2.example.com:25/smtp"]
chain-file = "/etc/postfix/mx2.pem"
provider = "dns"

[[service]]
name = "a"
domains = ["shared.example.com"]
endpoints = ["shared.example.com:25/smtp"]
chain-file = "/etc/postfix/a.pem"
provider = "dns"

[[service]]
name = "b"
domains = ["shared.example.com"]
endpoints = ["shared.example.com:587/submission"]
chain-file = "/etc/postfix/b.pem"
provider = "dns"

"#,
    rfc2136_provider!("dns", "192.0.2.53")
);

fn config() -> Config {
    Config::from_str_named(CONFIG, "/etc/dane-roll/dane-roll.toml").unwrap()
}

/// A fake file system: the files that exist, with their state.
#[derive(Default)]
struct Fake(BTreeMap<PathBuf, FileState>);

impl Fake {
    fn with(files: &[&str]) -> Fake {
        Fake(
            files
                .iter()
                .map(|f| (PathBuf::from(f), FileState::Present))
                .collect(),
        )
    }
    fn empty(mut self, file: &str) -> Fake {
        self.0.insert(PathBuf::from(file), FileState::Empty);
        self
    }
}

impl Files for Fake {
    fn state(&self, path: &Path) -> FileState {
        self.0.get(path).copied().unwrap_or(FileState::Missing)
    }
}

const LIVE: &str = "/etc/letsencrypt/live/mail.example.com";

fn live_files(dir: &str) -> Vec<String> {
    ["privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"]
        .iter()
        .map(|f| format!("{dir}/{f}"))
        .collect()
}

fn fake(files: &[String]) -> Fake {
    Fake::with(&files.iter().map(String::as_str).collect::<Vec<_>>())
}

/// certbot's hook for the lineage `dir` (its four files there) renewed for `domains`.
fn certbot_at(dir: &str, domains: &str, service: Option<&str>) -> Result<DeployRequest, HookError> {
    let env = Env::from_pairs([("RENEWED_LINEAGE", dir), ("RENEWED_DOMAINS", domains)]);
    certbot::request(&config(), &env, &fake(&live_files(dir)), service)
}

#[test]
fn certbot_by_lineage_takes_fullchain_and_privkey() {
    let req = certbot_at(LIVE, "mail.example.com smtp.example.com", None).unwrap();
    assert_eq!(
        req,
        DeployRequest {
            service: "mx".into(),
            cert: PathBuf::from(format!("{LIVE}/fullchain.pem")),
            key: PathBuf::from(format!("{LIVE}/privkey.pem")),
            chain: None,
            next_key: None,
            origin: Origin::Certbot {
                lineage: PathBuf::from(LIVE)
            },
        }
    );
}

#[test]
fn certbot_lineage_path_and_domains() {
    // A configured lineage path matches the whole path only.
    let req = certbot_at("/etc/letsencrypt/live/mail-ec", "x.example", None).unwrap();
    assert_eq!(req.service, "mx-ec");

    // An unconfigured lineage name: found by its domains (most shared wins).
    let dir = "/etc/letsencrypt/live/mail.example.com-0001";
    let req = certbot_at(dir, "MX2.example.com. other.example", None).unwrap();
    assert_eq!(req.service, "mx-ec");
    assert_eq!(
        req.origin,
        Origin::Certbot {
            lineage: PathBuf::from(dir)
        }
    );
}

#[test]
fn certbot_without_fullchain_uses_cert_and_chain() {
    let files = Fake::with(&[
        "/etc/letsencrypt/live/mail.example.com/privkey.pem",
        "/etc/letsencrypt/live/mail.example.com/cert.pem",
        "/etc/letsencrypt/live/mail.example.com/chain.pem",
    ]);
    let env = Env::from_pairs([("RENEWED_LINEAGE", LIVE)]);
    let req = certbot::request(&config(), &env, &files, None).unwrap();
    assert_eq!(req.cert, Path::new(LIVE).join("cert.pem"));
    assert_eq!(req.chain, Some(Path::new(LIVE).join("chain.pem")));
}

#[test]
fn certbot_unknown_lineage_names_it_the_config_and_the_fix() {
    let dir = "/etc/letsencrypt/live/www.example.org";
    let err = certbot_at(dir, "www.example.org", None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HookError::NoService { .. }), "{err:?}");
    for want in [
        dir,
        "www.example.org",
        "/etc/dane-roll/dane-roll.toml",
        "lineage = \"www.example.org\"",
        "--service",
    ] {
        assert!(text.contains(want), "{want:?} missing from: {text}");
    }
}

#[test]
fn certbot_ambiguous_domains_say_which_services() {
    let dir = "/etc/letsencrypt/live/shared";
    let err = certbot_at(dir, "shared.example.com", None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HookError::Ambiguous { .. }), "{err:?}");
    assert!(text.contains("a, b"), "{text}");
    assert!(text.contains("lineage = \"shared\""), "{text}");
    // --service settles it.
    let req = certbot_at(dir, "shared.example.com", Some("b")).unwrap();
    assert_eq!(req.service, "b");
}

#[test]
fn unknown_service_option_lists_the_services() {
    let env = Env::from_pairs([("RENEWED_LINEAGE", LIVE)]);
    let err = certbot::request(&config(), &env, &fake(&live_files(LIVE)), Some("nope"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no service \"nope\""), "{err}");
    assert!(err.contains("mx, mx-ec, a, b"), "{err}");
}

#[test]
fn certbot_missing_variable_says_what_to_configure() {
    for env in [
        Env::default(),
        Env::from_pairs([("RENEWED_LINEAGE", ""), ("RENEWED_DOMAINS", "x")]),
    ] {
        let err = certbot::request(&config(), &env, &Fake::default(), None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("RENEWED_LINEAGE is not set"), "{err}");
        assert!(
            err.contains("certbot renew --deploy-hook \"dane-roll hook certbot\""),
            "{err}"
        );
        assert!(err.contains("dane-roll deploy --service"), "{err}");
    }
}

#[test]
fn certbot_missing_key_file_names_the_path() {
    let env = Env::from_pairs([("RENEWED_LINEAGE", LIVE)]);
    let files = Fake::with(&["/etc/letsencrypt/live/mail.example.com/fullchain.pem"]);
    let err = certbot::request(&config(), &env, &files, None).unwrap_err();
    assert!(
        matches!(&err, HookError::MissingFile { path, .. } if path == &Path::new(LIVE).join("privkey.pem")),
        "{err:?}"
    );
    assert!(err.to_string().contains("may this user read it"), "{err}");
}

const ACME: &str = "/root/.acme.sh/mail.example.com_ecc";

fn acme_env(extra: &[(&str, &str)]) -> Env {
    let mut pairs: Vec<(String, String)> = vec![
        ("Le_Domain".into(), "mail.example.com".into()),
        ("CERT_PATH".into(), format!("{ACME}/mail.example.com.cer")),
        (
            "CERT_KEY_PATH".into(),
            format!("{ACME}/mail.example.com.key"),
        ),
        ("CA_CERT_PATH".into(), format!("{ACME}/ca.cer")),
        (
            "CERT_FULLCHAIN_PATH".into(),
            format!("{ACME}/fullchain.cer"),
        ),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Env::from_pairs(pairs)
}

fn acme_files(next: bool) -> Fake {
    let mut files = vec![
        format!("{ACME}/mail.example.com.cer"),
        format!("{ACME}/mail.example.com.key"),
        format!("{ACME}/ca.cer"),
        format!("{ACME}/fullchain.cer"),
    ];
    if next {
        files.push(format!("{ACME}/mail.example.com.key.next"));
    }
    fake(&files)
}

#[test]
fn acme_sh_without_next_key() {
    let req = acme_sh::request(&config(), &acme_env(&[]), &acme_files(false), None).unwrap();
    assert_eq!(
        req,
        DeployRequest {
            service: "mx".into(),
            cert: PathBuf::from(format!("{ACME}/fullchain.cer")),
            key: PathBuf::from(format!("{ACME}/mail.example.com.key")),
            chain: None,
            next_key: None,
            origin: Origin::AcmeSh {
                domain: "mail.example.com".into()
            },
        }
    );
}

#[test]
fn acme_sh_with_next_key_publishes_it() {
    let next = PathBuf::from(format!("{ACME}/mail.example.com.key.next"));
    // Older acme.sh: no Le_*Key variables; the hook finds <key>.next itself.
    let req = acme_sh::request(&config(), &acme_env(&[]), &acme_files(true), None).unwrap();
    assert_eq!(req.next_key.as_ref(), Some(&next));
    // Newer acme.sh: Le_ForceNewDomainKey=1 and Le_Next_Domain_Key.
    let next_s = next.to_string_lossy().into_owned();
    let env = acme_env(&[
        ("Le_ForceNewDomainKey", "1"),
        ("Le_Next_Domain_Key", &next_s),
    ]);
    let req = acme_sh::request(&config(), &env, &acme_files(true), None).unwrap();
    assert_eq!(req.next_key, Some(next.clone()));
    // The option is off: a leftover .next is not acme.sh's next key.
    let env = acme_env(&[
        ("Le_ForceNewDomainKey", ""),
        ("Le_Next_Domain_Key", &next_s),
    ]);
    let req = acme_sh::request(&config(), &env, &acme_files(true), None).unwrap();
    assert_eq!(req.next_key, None);
    // Blanked while acme.sh renews: not a key.
    let files = acme_files(false).empty(&next_s);
    let req = acme_sh::request(&config(), &acme_env(&[]), &files, None).unwrap();
    assert_eq!(req.next_key, None);
}

#[test]
fn acme_sh_without_fullchain_uses_cert_and_ca() {
    let files = fake(&[
        format!("{ACME}/mail.example.com.cer"),
        format!("{ACME}/mail.example.com.key"),
        format!("{ACME}/ca.cer"),
    ]);
    let req = acme_sh::request(&config(), &acme_env(&[]), &files, None).unwrap();
    assert_eq!(
        req.cert,
        PathBuf::from(format!("{ACME}/mail.example.com.cer"))
    );
    assert_eq!(req.chain, Some(PathBuf::from(format!("{ACME}/ca.cer"))));
}

#[test]
fn acme_sh_missing_variables_are_named() {
    let env = Env::from_pairs([("CERT_KEY_PATH", "/k")]);
    let err = acme_sh::request(&config(), &env, &Fake::default(), None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("Le_Domain is not set"), "{err}");
    assert!(
        err.contains("--reloadcmd \"dane-roll hook acme.sh\""),
        "{err}"
    );
    let env = Env::from_pairs([("Le_Domain", "mail.example.com")]);
    let err = acme_sh::request(&config(), &env, &Fake::default(), None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("CERT_KEY_PATH is not set"), "{err}");
}

#[test]
fn acme_sh_unknown_domain_suggests_domains() {
    let env = acme_env(&[("Le_Domain", "www.example.org")]);
    let err = acme_sh::request(&config(), &env, &acme_files(false), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("domains = [\"www.example.org\"]"), "{err}");
}

const DH: &str = "/var/lib/dehydrated/certs/mail.example.com";

fn dh_args(event: &str) -> Vec<OsString> {
    let mut args = dh_args_in(DH, event, "mail.example.com");
    args.push("1700000000".into());
    args
}

/// dehydrated's arguments for `event` of `domain`, its files in `dir` (no timestamp).
fn dh_args_in(dir: &str, event: &str, domain: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![event.into(), domain.into()];
    for f in ["privkey.pem", "cert.pem", "fullchain.pem", "chain.pem"] {
        args.push(format!("{dir}/{f}").into());
    }
    args
}

/// The deploy request of dehydrated's `args`, which must be a deploy.
fn dh_deploy(config: &Config, args: &[OsString], files: &[String]) -> DeployRequest {
    match dehydrated::request(config, args, &fake(files), None).unwrap() {
        dehydrated::Event::Deploy(req) => req,
        other => panic!("not a deploy: {other:?}"),
    }
}

#[test]
fn dehydrated_deploy_cert_with_and_without_roll_key() {
    let mut files = live_files(DH);
    let req = dh_deploy(&config(), &dh_args("deploy_cert"), &files);
    assert_eq!(
        req,
        DeployRequest {
            service: "mx".into(),
            cert: PathBuf::from(format!("{DH}/fullchain.pem")),
            key: PathBuf::from(format!("{DH}/privkey.pem")),
            chain: None,
            next_key: None,
            origin: Origin::Dehydrated {
                domain: "mail.example.com".into()
            },
        }
    );
    files.push(format!("{DH}/privkey.roll.pem"));
    let req = dh_deploy(&config(), &dh_args("deploy_cert"), &files);
    assert_eq!(
        req.next_key,
        Some(PathBuf::from(format!("{DH}/privkey.roll.pem")))
    );
}

#[test]
fn dehydrated_other_events_are_ignored() {
    for event in [
        "deploy_challenge",
        "clean_challenge",
        "sync_cert",
        "deploy_ocsp",
        "unchanged_cert",
        "invalid_challenge",
        "request_failure",
        "generate_csr",
        "startup_hook",
        "exit_hook",
        "this_hookscript_is_broken__dehydrated_is_working_fine__please_ignore_unknown_hooks_in_your_script",
    ] {
        let got = dehydrated::request(&config(), &dh_args(event), &Fake::default(), None).unwrap();
        assert_eq!(
            got,
            dehydrated::Event::Ignore {
                event: event.into()
            }
        );
        assert!(!dehydrated::is_deploy(&dh_args(event)));
    }
    assert!(matches!(
        dehydrated::request(&config(), &[], &Fake::default(), None).unwrap(),
        dehydrated::Event::Ignore { event } if event.is_empty()
    ));
}

#[test]
fn dehydrated_short_deploy_cert_is_refused() {
    let args: Vec<OsString> = vec!["deploy_cert".into(), "mail.example.com".into()];
    let err = dehydrated::request(&config(), &args, &Fake::default(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("got 1 argument;"), "{err}");
    assert!(err.contains("deploy_cert DOMAIN KEYFILE"), "{err}");
}

#[test]
fn dehydrated_cert_dir_alias_matches_a_lineage() {
    // dehydrated names the directory after an alias; the lineage name finds the service.
    let dir = "/var/lib/dehydrated/certs/mail-ec";
    let args = dh_args_in(dir, "deploy_cert", "unknown.example");
    let err = dehydrated::request(&config(), &args, &fake(&live_files(dir)), None).unwrap_err();
    // `mx-ec` has a lineage path under /etc/letsencrypt: a different directory, no match.
    assert!(matches!(err, HookError::NoService { .. }), "{err:?}");
    let with_name = CONFIG.replace(
        "lineage = \"/etc/letsencrypt/live/mail-ec\"",
        "lineage = \"mail-ec\"",
    );
    let config = Config::from_str_named(&with_name, "c.toml").unwrap();
    assert_eq!(dh_deploy(&config, &args, &live_files(dir)).service, "mx-ec");
}

#[test]
fn disk_tells_missing_empty_and_present() {
    let dir = std::env::temp_dir().join(format!("dane-roll-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty");
    let full = dir.join("full");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::write(&full, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    assert_eq!(Disk.state(&dir.join("none")), FileState::Missing);
    assert_eq!(
        Disk.state(&dir),
        FileState::Missing,
        "a directory is no file"
    );
    assert_eq!(Disk.state(&empty), FileState::Empty);
    assert_eq!(Disk.state(&full), FileState::Present);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn acme_sh_fullchain_set_to_a_missing_file_is_named_as_such() {
    // CERT_FULLCHAIN_PATH is set, but the file is not there and CERT_PATH is not set: the
    // message names the file, not "is not set".
    let full = format!("{ACME}/fullchain.cer");
    let env = Env::from_pairs([
        ("Le_Domain", "mail.example.com"),
        ("CERT_KEY_PATH", &format!("{ACME}/mail.example.com.key")),
        ("CERT_FULLCHAIN_PATH", &full),
    ]);
    let files = fake(&[format!("{ACME}/mail.example.com.key")]);
    let err = acme_sh::request(&config(), &env, &files, None)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("is not set"), "{err}");
    assert!(err.contains(&full), "{err}");
    assert!(err.contains("missing or empty"), "{err}");
}
