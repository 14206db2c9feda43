//! Unit tests of loading and validation, without the binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::source::{self, edit_distance, mask_secret_line, with_suggestion};
use super::test_toml::rfc2136_provider;
use super::{
    CONFIG_VERSION, Channel, CheckSettings, Config, ConfigError, DEFAULT_MAX_RECORDS,
    DEFAULT_POWERDNS_SERVER_ID, DEFAULT_REPEAT_INTERVAL, DEFAULT_RESOLVER_TIMEOUT,
    DEFAULT_STATE_DIR, DEFAULT_TTL, Endpoint, EndpointId, Protocol, ProviderKind, ResolverOrigin,
    Scheme, Secret, SecretStatus, Subject, Tsig, first_nameserver, format_duration, parse_duration,
    parse_socket_addr,
};
use super::{build, raw};

const HEAD: &str = "[resolver]\naddress = \"127.0.0.1\"\n";

const SERVICE: &str = concat!(
    r#"
[[service]]
name = "mx"
lineage = "mail.example.com"
domains = ["Mail.Example.com."]
endpoints = ["mail.example.com:25/smtp", { host = "mail.example.com", port = 993 }, "imap.example.com:143"]
chain-file = "/etc/postfix/mx.pem"
provider = "bind"

"#,
    rfc2136_provider!("bind", "[2001:db8::53]:5353")
);

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_str_named(&format!("{HEAD}{text}"), "test.toml")
}

fn err(text: &str) -> String {
    refused(load(text), text)
}

/// The error of a configuration that must not load, in words (`text` names it when it loads).
pub(super) fn refused(loaded: Result<Config, ConfigError>, text: &str) -> String {
    match loaded {
        Ok(_) => panic!("loaded but should not:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_are_filled_in() {
    let config = load(SERVICE).unwrap();
    assert_eq!(config.version, CONFIG_VERSION);
    assert_eq!(config.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    assert_eq!(config.resolver.timeout, DEFAULT_RESOLVER_TIMEOUT);
    assert_eq!(config.resolver.origin, ResolverOrigin::Configured);
    let mx = config.service("mx").unwrap();
    assert_eq!(mx.ttl, DEFAULT_TTL);
    assert_eq!(mx.scheme, Scheme::CurrentNext);
    assert_eq!(mx.reload, [["postfix", "reload"]]);
    assert_eq!(mx.max_records, DEFAULT_MAX_RECORDS);
    assert_eq!(mx.domains, ["mail.example.com"]);
    assert_eq!(
        mx.endpoints[1],
        Endpoint {
            host: "mail.example.com".into(),
            port: 993,
            protocol: Protocol::Tls
        }
    );
    assert_eq!(mx.endpoints[2].protocol, Protocol::Imap);
    assert_eq!(mx.endpoints[0].owner_name(), "_25._tcp.mail.example.com.");
    assert_eq!(config.alerts.repeat_interval, DEFAULT_REPEAT_INTERVAL);
    assert_eq!(config.check, CheckSettings::default());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    match &config.provider_for(mx).unwrap().kind {
        ProviderKind::Rfc2136 { server, tsig, .. } => {
            assert_eq!(server.to_string(), "[2001:db8::53]:5353");
            assert_eq!(tsig, &Some(Tsig::Env(Secret::from_env("TSIG"))));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn lookups_by_lineage_and_domains() {
    let two = format!(
        "{SERVICE}\n[[service]]\nname = \"mx-ec\"\nlineage = \"/etc/letsencrypt/live/mail.example.com-ecdsa\"\n\
         domains = [\"mail.example.com\"]\nendpoints = [\"mail.example.com\"]\nchain-file = \"/x/ec.pem\"\n"
    );
    let config = load(&two).unwrap();
    assert_eq!(
        config
            .service_for_lineage("/etc/letsencrypt/live/mail.example.com/")
            .unwrap()
            .name,
        "mx"
    );
    assert_eq!(
        config.service_for_lineage("mail.example.com").unwrap().name,
        "mx"
    );
    assert_eq!(
        config
            .service_for_lineage("/etc/letsencrypt/live/mail.example.com-ecdsa")
            .unwrap()
            .name,
        "mx-ec"
    );
    assert!(
        config
            .service_for_lineage("/other/live/mail.example.com-ecdsa")
            .is_none()
    );
    // Both carry the name: ambiguous for the single lookup, both for the list.
    assert!(
        config
            .service_for_domains(&["mail.example.com".into()])
            .is_none()
    );
    assert_eq!(
        config
            .services_for_domains(&["MAIL.example.com.".into()])
            .len(),
        2
    );
    assert!(
        config
            .service_for_domains(&["other.example.com".into()])
            .is_none()
    );
}

#[test]
fn system_resolver_is_used_when_none_is_set() {
    let text = SERVICE;
    let src = source::Source::parse("t", text).unwrap();
    let raw: raw::RawConfig = toml::from_str(text).unwrap();
    let addr: SocketAddr = "192.0.2.1:53".parse().unwrap();
    let config = build::build(raw, &src, None, || Some(addr)).unwrap();
    assert_eq!(config.resolver.address, addr);
    assert_eq!(config.resolver.origin, ResolverOrigin::System);

    let raw: raw::RawConfig = toml::from_str(text).unwrap();
    let problems = build::build(raw, &src, None, || None).unwrap_err();
    assert!(
        problems[0]
            .to_string()
            .contains("[resolver]: no `address` given"),
        "{}",
        problems[0]
    );
}

#[test]
fn resolv_conf_and_addresses() {
    let conf = "# comment\nsearch example.com\nnameserver fe80::1%eth0\nnameserver 10.0.0.2 # x\nnameserver 10.0.0.3\n";
    assert_eq!(first_nameserver(conf), Some("10.0.0.2:53".parse().unwrap()));
    assert_eq!(first_nameserver(""), None);
    assert_eq!(
        parse_socket_addr("::1", 53).unwrap().to_string(),
        "[::1]:53"
    );
    assert_eq!(
        parse_socket_addr("[::1]", 53).unwrap().to_string(),
        "[::1]:53"
    );
    assert_eq!(
        parse_socket_addr("[::1]:5353", 53).unwrap().to_string(),
        "[::1]:5353"
    );
    assert_eq!(
        parse_socket_addr("127.0.0.1:5353", 53).unwrap().port(),
        5353
    );
    assert!(parse_socket_addr("localhost", 53).is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
    assert!(parse_duration("6").unwrap_err().contains("needs a unit"));
    assert!(parse_duration("6x").unwrap_err().contains("unknown unit"));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("99999999999999999999w").is_err());
    assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    assert_eq!(format_duration(DEFAULT_REPEAT_INTERVAL), "6h");
}

#[test]
fn endpoints_short_form() {
    let e = Endpoint::parse_short("MAIL.example.com.:465").unwrap();
    assert_eq!(
        (e.host.as_str(), e.port, e.protocol),
        ("mail.example.com", 465, Protocol::Tls)
    );
    assert!(
        Endpoint::parse_short("mail.example.com:2525")
            .unwrap_err()
            .contains("protocol")
    );
    assert!(
        Endpoint::parse_short("192.0.2.1:25")
            .unwrap_err()
            .contains("IP address")
    );
    assert!(Endpoint::parse_short("mail_x.example.com").is_err());
    assert!(Endpoint::parse_short("mail.example.com:0").is_err());
    assert_eq!(
        Endpoint::parse_short("mail.example.com:2525/smtp")
            .unwrap()
            .to_string(),
        "mail.example.com:2525/smtp"
    );
}

#[test]
fn semantic_errors_name_subject_key_and_line() {
    let bad_ttl = SERVICE.replace("provider = \"bind\"", "provider = \"bind\"\nttl = 0");
    let e = err(&bad_ttl);
    assert!(e.starts_with("test.toml:"), "{e}");
    assert!(e.contains("service \"mx\", key ttl: 0 is not a TTL"), "{e}");

    let bad_zone = SERVICE.replace(
        "provider = \"bind\"",
        "provider = \"bind\"\nzone = \"example.net\"",
    );
    assert!(err(&bad_zone).contains("not in zone example.net"));

    let both = SERVICE.replace(
        "tsig-env = \"TSIG\"",
        "tsig-env = \"TSIG\"\ntsig-key-file = \"/k\"",
    );
    assert!(err(&both).contains("not both"));

    let max = SERVICE.replace(
        "provider = \"bind\"",
        "provider = \"bind\"\nmax-records = 1",
    );
    assert!(err(&max).contains("key max-records: 1 is too small"));

    let bad_name = SERVICE.replace("name = \"mx\"", "name = \"MX one\"");
    assert!(err(&bad_name).contains("may only use a-z"));
}

#[test]
fn all_semantic_errors_are_reported_together() {
    let text = SERVICE
        .replace(
            "provider = \"bind\"",
            "provider = \"bind\"\nttl = -5\nmax-records = 0",
        )
        .replace("server = \"[2001:db8::53]:5353\"", "server = \"bad host!\"");
    match load(&text) {
        Err(ConfigError::Invalid { problems }) => assert!(problems.len() >= 3, "{problems:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn warnings_do_not_fail_loading() {
    let text = SERVICE.replace("provider = \"bind\"", "provider = \"bind\"\nttl = 86400")
        + "\n[provider.spare]\nkind = \"manual\"\n";
    let config = load(&text).unwrap();
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("key ttl: 86400 is outside")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("provider \"spare\": is not used")),
        "{warnings:?}"
    );
}

#[test]
fn provider_is_optional_when_there_is_one() {
    let text = SERVICE.replace("provider = \"bind\"\n", "");
    assert_eq!(load(&text).unwrap().services[0].provider, "bind");
    let two = format!("{text}\n[provider.other]\nkind = \"manual\"\n");
    assert!(err(&two).contains("needs `provider`"));
}

#[test]
fn every_provider_kind_loads() {
    let text = format!(
        "{SERVICE}\n[provider.cf]\nkind = \"cloudflare\"\ntoken-file = \"/t\"\nzone-id = \"abc\"\n\
         [provider.pdns]\nkind = \"powerdns\"\nurl = \"http://127.0.0.1:8081\"\napi-key-env = \"K\"\n\
         [provider.desec]\nkind = \"desec\"\ntoken-env = \"D\"\n\
         [provider.h]\nkind = \"hetzner\"\ntoken-file = \"/h\"\n\
         [provider.g]\nkind = \"gandi\"\ntoken-env = \"G\"\n\
         [provider.gc]\nkind = \"google\"\ncredentials-file = \"/sa.json\"\nmanaged-zone = \"z\"\n\
         [provider.t]\nkind = \"transip\"\nlogin = \"l\"\nprivate-key-file = \"/k\"\n\
         [provider.i]\nkind = \"inwx\"\nuser = \"u\"\npassword-file = \"/p\"\ntotp-secret-env = \"T\"\n\
         [provider.o]\nkind = \"ovh\"\napplication-key = \"ak\"\napplication-secret-env = \"AS\"\nconsumer-key-file = \"/ck\"\n\
         [provider.r]\nkind = \"route53\"\naccess-key-id = \"AKIAEXAMPLE\"\nsecret-key-env = \"R\"\n\
         [provider.x]\nkind = \"exec\"\ncommand = [\"/usr/local/bin/dns\", \"--zone\", \"x\"]\n\
         [provider.m]\nkind = \"manual\"\n"
    );
    let config = load(&text).unwrap();
    let kinds: Vec<&str> = config.providers.values().map(|p| p.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "rfc2136",
            "cloudflare",
            "desec",
            "gandi",
            "google",
            "hetzner",
            "inwx",
            "manual",
            "ovh",
            "powerdns",
            "route53",
            "transip",
            "exec"
        ]
    );
    match &config.provider("pdns").unwrap().kind {
        ProviderKind::PowerDns { server_id, .. } => {
            assert_eq!(server_id, DEFAULT_POWERDNS_SERVER_ID)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err(&format!(
            "{SERVICE}\n[provider.p]\nkind = \"powerdns\"\nurl = \"ftp://x\"\napi-key-env = \"K\"\n"
        ))
        .contains("not an http:// or https:// URL")
    );
    assert!(
        err(&format!("{SERVICE}\n[provider.c]\nkind = \"cloudflare\"\n"))
            .contains("needs `token-file`")
    );
}

#[test]
fn alerts_load_and_validate() {
    let text = format!(
        "{SERVICE}\n[alerts]\nrepeat-interval = \"30m\"\n\
         [alerts.channel.hook]\nkind = \"webhook\"\nurl = \"https://example.com/x\"\n\
         [alerts.channel.mail]\nkind = \"email\"\nto = [\"a@example.com\"]\nfrom = \"b@example.com\"\nvia = \"smtp\"\nsmtp-server = \"smtp.example.com\"\ncredentials-file = \"/c\"\n\
         [alerts.channel.tg]\nkind = \"telegram\"\ntoken-env = \"TG\"\nchat-id = 42\n\
         [check]\nrrsig-warn-days = 3\ncert-warn-days = 7\nmax-records = 6\n"
    );
    let config = load(&text).unwrap();
    assert_eq!(config.alerts.repeat_interval, Duration::from_secs(1800));
    assert_eq!(config.alerts.channels.len(), 3);
    assert_eq!(
        config.services[0].max_records, 6,
        "[check] max-records is the services' default"
    );
    match &config.alerts.channels["mail"] {
        Channel::Email(mail) => assert_eq!(mail.smtp_server.as_ref().unwrap().port, 587),
        other => panic!("{other:?}"),
    }
    let no_server = format!(
        "{SERVICE}\n[alerts.channel.mail]\nkind = \"email\"\nto = \"a@example.com\"\nfrom = \"b@example.com\"\nvia = \"smtp\"\n"
    );
    assert!(
        err(&no_server).contains("alert channel \"mail\": has via = \"smtp\" but no `smtp-server`")
    );
    assert!(
        err(&format!("{SERVICE}\n[alerts]\nrepeat-interval = 0\n")).contains("longer than zero")
    );
}

#[test]
fn literal_secrets_are_refused_anywhere() {
    for (table, key) in [
        ("[provider.bind]", "secret"),
        ("[provider.bind]", "api-key"),
        ("[provider.bind]", "password"),
    ] {
        let text = SERVICE.replace(table, &format!("{table}\n{key} = \"hunter2-value\""));
        let e = err(&text);
        assert!(
            e.contains(&format!("key {key}:")) && e.contains("must not be written"),
            "{e}"
        );
        assert!(!e.contains("hunter2-value"), "{e}");
    }
}

#[test]
fn secret_type_never_shows_the_value() {
    let secret = Secret::from_env("DANE_ROLL_UNIT_TEST_SURELY_UNSET");
    assert_eq!(secret.to_string(), "env DANE_ROLL_UNIT_TEST_SURELY_UNSET");
    assert!(format!("{secret:?}").contains("***"));
    assert_eq!(secret.status(), SecretStatus::Unset);
    assert!(secret.read().is_err());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    std::fs::write(&path, "  the-value\n").unwrap();
    let secret = Secret::from_file(&path);
    assert!(secret.status().is_available());
    let value = secret.read().unwrap();
    assert_eq!(value.expose(), "the-value");
    assert_eq!(format!("{value} {value:?}"), "*** ***");
    std::fs::write(&path, "").unwrap();
    assert_eq!(secret.status(), SecretStatus::Empty);
    assert_eq!(
        Secret::from_file(dir.path().join("none")).status(),
        SecretStatus::Missing
    );
    assert_eq!(
        Secret::from_file(dir.path()).status(),
        SecretStatus::NotAFile
    );
}

#[test]
fn schema_errors_have_location_snippet_and_suggestion() {
    let text = SERVICE.replace("chain-file", "chainfile");
    match load(&text) {
        Err(ConfigError::Schema(p)) => {
            assert_eq!(p.subject, Subject::Service("mx".into()));
            assert_eq!(p.location.unwrap().line, 9);
            assert!(
                p.message.contains("did you mean `chain-file`?"),
                "{}",
                p.message
            );
            assert!(p.snippet.as_deref().unwrap().contains("^^^^^^^^^"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(load("[[service]\n"), Err(ConfigError::Syntax(_))));
    assert!(matches!(
        Config::from_str_named("  \n# c\n", "x"),
        Err(ConfigError::Empty { .. })
    ));
    assert!(
        err(&format!("{SERVICE}\n[provider.k]\nkind = \"route66\"\n"))
            .contains("unknown variant `route66`")
    );
}

#[test]
fn helpers() {
    assert_eq!(edit_distance("smpt", "smtp"), 1);
    assert_eq!(edit_distance("tll", "ttl"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(
        with_suggestion("unknown field `tokne-file`, expected one of `token-file`, `token-env`"),
        "unknown field `tokne-file`, expected one of `token-file`, `token-env`; did you mean `token-file`?"
    );
    assert_eq!(
        with_suggestion("unknown field `zzz`, expected `ttl`"),
        "unknown field `zzz`, expected `ttl`"
    );
    assert_eq!(mask_secret_line("token = \"abc"), "token = ***");
    assert_eq!(
        mask_secret_line("  \"api-key\" = 'x'"),
        "  \"api-key\" = ***"
    );
    assert_eq!(mask_secret_line("ttl = 5"), "ttl = 5");
}

#[test]
fn load_reports_missing_and_non_utf8_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.toml");
    assert!(matches!(
        Config::load(&missing),
        Err(ConfigError::NotFound { .. })
    ));
    let latin1 = dir.path().join("l.toml");
    std::fs::write(&latin1, b"a = 1\n# \xe9\n").unwrap();
    match Config::load(&latin1) {
        Err(ConfigError::NotUtf8 { line, .. }) => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Config::load(dir.path()),
        Err(ConfigError::Read { .. })
    ));
}

#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let text = format!("{HEAD}{}", SERVICE.replace("/etc/postfix/mx.pem", "mx.pem"));
    std::fs::write(&path, text).unwrap();
    let config = Config::load_with_state_dir(&path, Some(Path::new("/tmp/state"))).unwrap();
    assert_eq!(
        config.services[0].chain_files,
        crate::config::ChainFiles::One(dir.path().join("mx.pem"))
    );
    assert_eq!(config.state_dir, PathBuf::from("/tmp/state"));
}

#[test]
fn the_full_example_in_docs_config_md_loads() {
    let doc = include_str!("../../docs/CONFIG.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("its end");
    let config = Config::from_str_named(&doc[start..end], "docs/CONFIG.md").unwrap();
    assert_eq!(
        config.services[0].endpoints[1].owner_name(),
        "_465._tcp.mail.example.com."
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn chain_files_one_per_key_algorithm() {
    let text = SERVICE.replace(
        "chain-file = \"/etc/postfix/mx.pem\"",
        "chain-files = { rsa = \"/etc/postfix/rsa.pem\", ec = \"/etc/postfix/ec.pem\" }",
    );
    let config = load(&text).unwrap();
    let files = &config.services[0].chain_files;
    assert_eq!(
        files.for_algorithm("rsa"),
        Some(Path::new("/etc/postfix/rsa.pem"))
    );
    assert_eq!(
        files.for_algorithm("ec"),
        Some(Path::new("/etc/postfix/ec.pem"))
    );
    assert_eq!(files.for_algorithm("ed"), None);
    assert_eq!(files.all().len(), 2);

    let both = SERVICE.replace(
        "chain-file = \"/etc/postfix/mx.pem\"",
        "chain-file = \"/etc/postfix/mx.pem\"\nchain-files = { rsa = \"/etc/postfix/rsa.pem\" }",
    );
    assert!(err(&both).contains("not both"), "{}", err(&both));
    let unknown = text.replace("ec = ", "ecdsa = ");
    let e = err(&unknown);
    assert!(
        e.contains("chain-files") && e.contains("unknown key algorithm `ecdsa`"),
        "{e}"
    );
    let none = SERVICE.replace("chain-file = \"/etc/postfix/mx.pem\"\n", "");
    let e = err(&none);
    assert!(e.contains("has no `chain-file`"), "{e}");
    let empty = SERVICE.replace("chain-file = \"/etc/postfix/mx.pem\"", "chain-files = {}");
    assert!(err(&empty).contains("is empty"), "{}", err(&empty));
}

#[test]
fn an_unknown_service_is_named_with_the_file_and_the_services() {
    let config = load(SERVICE).unwrap();
    assert_eq!(config.service_or_err("mx").unwrap().name, "mx");
    let err = config.service_or_err("mxx").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no service \"mxx\" in test.toml; the services are: mx"
    );
    let empty = load("").unwrap();
    assert_eq!(
        empty.service_or_err("mx").unwrap_err().to_string(),
        "no service \"mx\" in test.toml; the services are: (none)"
    );
}

#[test]
fn endpoint_ids_round_trip_and_name_their_owner() {
    let config = load(SERVICE).unwrap();
    let mx = &config.services[0];
    assert_eq!(
        mx.endpoint_ids(),
        [
            "mail.example.com:25",
            "mail.example.com:993",
            "imap.example.com:143"
        ]
    );
    for (endpoint, text) in mx.endpoints.iter().zip(mx.endpoint_ids()) {
        let id: EndpointId = text.parse().unwrap();
        assert_eq!(id, endpoint.id());
        assert_eq!(id.owner_name(), endpoint.owner_name());
    }
    for bad in [
        "mail.example.com",
        ":25",
        "mail.example.com:0",
        "mail.example.com:x",
    ] {
        let err = bad.parse::<EndpointId>().unwrap_err().to_string();
        assert!(err.contains(bad) && err.contains("host:port"), "{err}");
    }
}
