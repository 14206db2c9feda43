//! Unit tests of a service's outputs: `cert-file`, `key-file`, `fullchain-file` beside
//! `chain-file`, and `reload` as one command or a list of them.

use std::path::PathBuf;

use super::test_toml::rfc2136_provider;
use super::{Config, ConfigError, SplitFiles};

const SERVICE: &str = concat!(
    r#"[resolver]
address = "127.0.0.1"

[[service]]
name = "mx"
endpoints = ["mail.example.com:25/smtp"]
chain-file = "/etc/postfix/mx.pem"
provider = "bind"
EXTRA

"#,
    rfc2136_provider!("bind", "192.0.2.53")
);

fn load(extra: &str) -> Result<Config, ConfigError> {
    Config::from_str_named(&SERVICE.replace("EXTRA", extra), "test.toml")
}

fn err(extra: &str) -> String {
    super::tests::refused(load(extra), extra)
}

#[test]
fn separate_outputs_are_read_and_checked() {
    let config = load(
        "cert-file = \"/etc/dovecot/cert.pem\"\nkey-file = \"/etc/dovecot/key.pem\"\n\
         fullchain-file = \"/etc/dovecot/fullchain.pem\"",
    )
    .unwrap();
    let mx = &config.services[0];
    assert_eq!(
        mx.split_files,
        SplitFiles {
            cert: Some(PathBuf::from("/etc/dovecot/cert.pem")),
            key: Some(PathBuf::from("/etc/dovecot/key.pem")),
            fullchain: Some(PathBuf::from("/etc/dovecot/fullchain.pem")),
        }
    );
    assert_eq!(mx.split_files.all().len(), 3);
    // None by default.
    assert_eq!(
        load("").unwrap().services[0].split_files,
        SplitFiles::default()
    );

    let e = err("key-file = \"/etc/postfix/mx.pem\"");
    assert!(
        e.contains("key-file") && e.contains("same file as `chain-file`"),
        "{e}"
    );
    let e = err("cert-file = \"/etc/d/x.pem\"\nfullchain-file = \"/etc/d/x.pem\"");
    assert!(
        e.contains("fullchain-file") && e.contains("a second time"),
        "{e}"
    );
    let e = err("key-file = \"\"");
    assert!(e.contains("key-file") && e.contains("is empty"), "{e}");
    let per_algorithm = SERVICE
        .replace(
            "chain-file = \"/etc/postfix/mx.pem\"",
            "chain-files = { ec = \"/etc/postfix/ec.pem\" }",
        )
        .replace("EXTRA", "cert-file = \"/etc/d/cert.pem\"");
    let e = Config::from_str_named(&per_algorithm, "test.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cert-file") && e.contains("only with one `chain-file`"),
        "{e}"
    );
}

#[test]
fn reload_is_one_command_or_a_list_of_them() {
    let one = load("reload = [\"systemctl\", \"reload\", \"postfix\"]").unwrap();
    assert_eq!(one.services[0].reload, [["systemctl", "reload", "postfix"]]);
    let two = load("reload = [[\"postfix\", \"reload\"], [\"doveadm\", \"reload\"]]").unwrap();
    assert_eq!(
        two.services[0].reload,
        [["postfix", "reload"], ["doveadm", "reload"]]
    );
    assert_eq!(
        two.services[0].reload_line(),
        "postfix reload; doveadm reload"
    );

    let e = err("reload = []");
    assert!(e.contains("reload") && e.contains("is empty"), "{e}");
    let e = err("reload = [[]]");
    assert!(e.contains("reload") && e.contains("is empty"), "{e}");
    let e = err("reload = [[\"postfix\", \"reload\"], []]");
    assert!(e.contains("reload") && e.contains("is empty"), "{e}");
    let e = err("reload = 3");
    assert!(e.contains("list of commands"), "{e}");
}
